// An order resent in a later batch with other content is still a duplicate that writes nothing, and
// the answer says so: `changed` per result (with the fields that differ) and in all, for
// POST /v1/orders and for import batches. Runs on both customer stores (the worker and worker-shards
// projects): the fingerprint is read with the stored ids wherever the orders are.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { batchesResponseSchema, importResponseSchema } from "../../worker/imports/imports.schemas.ts";
import { ingestResultSchema } from "../../worker/orders/orders.schemas.ts";
import { adminKey, anOrder, client, uniquePrefix, verified } from "../fixtures/builders.ts";
import { storeRows, storeRun, storeSnapshot } from "../fixtures/store-rows.ts";

const api = client(SELF);

async function ingest(orders: unknown[]) {
  const response = await api.postOrders(orders);
  expect(response.status, await response.clone().text()).toBe(200);
  return ingestResultSchema.parse(await response.json()).data;
}

/** Four orders of one customer, and each resent: as it was in other spellings, or corrected. */
function ordersAndResends(p: string) {
  const identifiers = { account: `${p}-acct`, email: verified(`${p}@example.test`) };
  const line = { productId: "sku-1", categoryId: "heels", quantity: 1, unitPrice: 89, listPrice: 120 };
  const order = (name: string) => anOrder({ id: `${p}-${name}`, identifiers, lines: [line] });
  const [same, lines, who, where] = [order("same"), order("lines"), order("who"), order("where")] as const;
  const orders = [same, lines, who, where];
  const resends = [
    // The same content: another spelling of the instant and of the email.
    {
      ...same,
      placedAt: "2026-03-14T11:22:00+01:00",
      identifiers: { account: `${p}-acct`, email: verified(` ${p.toUpperCase()}@Example.TEST `) },
    },
    // A corrected total: an extra line.
    { ...lines, lines: [line, { productId: "sku-2", categoryId: "bags", quantity: 1, unitPrice: 40 }] },
    // Another customer identifier.
    { ...who, identifiers: { ...identifiers, loyalty: `${p}-card` } },
    // Another channel, store and time.
    { ...where, channel: "store", storeId: "store-9", placedAt: "2026-03-15T09:00:00Z" },
  ];
  return { orders, resends };
}

describe("an order resent with other content", () => {
  it("is a duplicate answered changed, naming the fields, and nothing is written", async () => {
    const p = uniquePrefix("chg");
    const { orders, resends } = ordersAndResends(p);
    const first = await ingest(orders);
    expect(first).toMatchObject({ accepted: 4, duplicates: 0, changed: 0 });
    const [stored] = await storeRows<{ fingerprint: string | null }>(
      "SELECT fingerprint FROM orders WHERE id = ?",
      `${p}-same`,
    );
    expect(stored?.fingerprint).toMatch(/^[0-9a-f]{56}$/);

    const before = await storeSnapshot();
    const again = await ingest(resends);
    expect(again).toMatchObject({ accepted: 0, duplicates: 4, changed: 3, suppressed: 0 });
    expect(again.accepted + again.duplicates + again.suppressed).toBe(resends.length);
    expect(again.results).toEqual([
      { id: `${p}-same`, customerId: null, status: "duplicate", changed: false },
      { id: `${p}-lines`, customerId: null, status: "duplicate", changed: true, changedFields: ["lines"] },
      { id: `${p}-who`, customerId: null, status: "duplicate", changed: true, changedFields: ["identifiers"] },
      {
        id: `${p}-where`,
        customerId: null,
        status: "duplicate",
        changed: true,
        changedFields: ["channel", "storeId", "placedAt"],
      },
    ]);
    expect(await storeSnapshot()).toEqual(before);

    // An exact replay of the first batch: every duplicate unchanged.
    const replay = await ingest(orders);
    expect(replay).toMatchObject({ duplicates: 4, changed: 0 });
    expect(replay.results.map((result) => result.changed)).toEqual([false, false, false, false]);
  });

  it("counts a repeat within the batch as unchanged, next to a changed duplicate and a new order", async () => {
    const p = uniquePrefix("chg");
    const { orders, resends } = ordersAndResends(p);
    await ingest(orders.slice(1, 2));
    const fresh = anOrder({ id: `${p}-new` });
    const answer = await ingest([resends[1], fresh, fresh, resends[1]]);
    expect(answer).toMatchObject({ accepted: 1, duplicates: 3, changed: 2, suppressed: 0 });
    expect(answer.results.map((result) => [result.status, result.changed])).toEqual([
      ["duplicate", true],
      ["created", undefined],
      ["duplicate", false],
      ["duplicate", true],
    ]);
  });

  it("is still compared after its customer was merged (with shards, after a region moved between them)", async () => {
    const p = uniquePrefix("chg");
    const first = anOrder({ id: `${p}-1`, identifiers: { account: `${p}-acct` } });
    const second = anOrder({ id: `${p}-2`, channel: "store", identifiers: { loyalty: `${p}-card` } });
    await ingest([first]);
    await ingest([second]);
    const linking = anOrder({ id: `${p}-3`, identifiers: { account: `${p}-acct`, loyalty: `${p}-card` } });
    expect(await ingest([linking])).toMatchObject({ accepted: 1, merges: 1 });
    const answer = await ingest([first, { ...second, storeId: "store-2" }]);
    expect(answer.results.map((result) => [result.changed, result.changedFields])).toEqual([
      [false, undefined],
      [true, ["storeId"]],
    ]);
  });

  it("answers changed: null for an order stored before orders kept a fingerprint", async () => {
    const p = uniquePrefix("chg");
    const { orders, resends } = ordersAndResends(p);
    await ingest(orders.slice(1, 2));
    await storeRun("UPDATE orders SET fingerprint = NULL WHERE id = ?", `${p}-lines`);
    const answer = await ingest(resends.slice(1, 2));
    expect(answer).toMatchObject({ accepted: 0, duplicates: 1, changed: 0 });
    expect(answer.results).toEqual([{ id: `${p}-lines`, customerId: null, status: "duplicate", changed: null }]);
  });

  it("is counted by an import batch, with its id, and in the import's totals; an erasure takes the id out", async () => {
    const p = uniquePrefix("chg");
    const { orders, resends } = ordersAndResends(p);
    const customerId = (await ingest(orders)).results[0]?.customerId as string;
    const created = await api.call("POST", "/v1/imports", { expectedBatches: 1 });
    expect(created.status).toBe(201);
    const { id } = importResponseSchema.parse(await created.json()).data;
    const posted = await api.call("POST", `/v1/imports/${id}/batches`, { sequence: 0, orders: resends });
    expect(posted.status, await posted.clone().text()).toBe(202);
    const progress = async () =>
      importResponseSchema.parse(await (await api.call("GET", `/v1/imports/${id}`)).json()).data;
    await expect.poll(async () => (await progress()).status, { timeout: 45_000, interval: 200 }).toBe("done");
    expect((await progress()).totals).toMatchObject({ accepted: 0, duplicates: 4, changed: 3, suppressed: 0 });
    const page = await api.call("GET", `/v1/imports/${id}/batches`);
    const [batch] = batchesResponseSchema.parse(await page.json()).data.batches;
    expect(batch).toMatchObject({ duplicates: 4, changed: 3, changedIds: [`${p}-lines`, `${p}-who`, `${p}-where`] });

    // After the customer's erasure only keyed hashes of its order ids may stay (SECURITY.md).
    const erased = await api.call("DELETE", `/v1/customers/${customerId}`, undefined, adminKey);
    expect(erased.status, await erased.clone().text()).toBe(200);
    const after = await api.call("GET", `/v1/imports/${id}/batches`);
    const [scrubbed] = batchesResponseSchema.parse(await after.json()).data.batches;
    expect(scrubbed).toMatchObject({ duplicates: 4, changed: 3, changedIds: [] });
  });
});
