import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { isRetryableStatus } from "../../cli/import/client.ts";
import { createApp } from "../../worker/app.ts";
import { customerResponseSchema } from "../../worker/customers/customers.schemas.ts";
import { refusalError } from "../../worker/orders/orders.routes.ts";
import { ingestResultSchema } from "../../worker/orders/orders.schemas.ts";
import { adminKey, anOrder, client, uniquePrefix, verified } from "../fixtures/builders.ts";
import { storeRows, storeRun, storeSnapshot } from "../fixtures/store-rows.ts";
import { eventTables } from "../fixtures/tables.ts";

const api = client(SELF);

async function ingest(orders: unknown[]) {
  const response = await api.postOrders(orders);
  expect(response.status, await response.clone().text()).toBe(200);
  return ingestResultSchema.parse(await response.json()).data;
}

async function customerOf(kind: string, value: string) {
  const response = await api.lookup(kind, value);
  expect(response.status, await response.clone().text()).toBe(200);
  return customerResponseSchema.parse(await response.json()).data;
}

async function snapshot() {
  const counts: Record<string, unknown> = await storeSnapshot();
  for (const table of eventTables) {
    counts[table] = (await env.EVENTS_DB.prepare(`SELECT * FROM ${table} ORDER BY 1, 2`).all()).results;
  }
  return counts;
}

describe("POST /v1/orders", () => {
  it("joins a web order and an in-store order through the e-receipt email", async () => {
    const p = uniquePrefix();
    const email = `Jane.${p}@Example.com`;
    const result = await ingest([
      anOrder({ id: `${p}-web`, channel: "web", identifiers: { account: `${p}-u1`, email: verified(email) } }),
      anOrder({
        id: `${p}-pos`,
        channel: "store",
        placedAt: "2026-04-02T16:00:00Z",
        // The email on file for the loyalty account: the retailer verified it when the card was issued.
        identifiers: { loyalty: `${p}-L77`, email: verified(`  ${email.toLowerCase()} `) },
        lines: [{ productId: "sku-9", categoryId: "jewellery", quantity: 2, unitPrice: 30, listPrice: 30 }],
      }),
    ]);
    expect(result.accepted).toBe(2);
    expect(result.results[0]?.customerId).toBe(result.results[1]?.customerId);

    const customer = await customerOf("loyalty", `${p}-L77`);
    expect(customer.customerId).toBe(result.results[0]?.customerId);
    expect(customer.orders.map((o) => o.id).sort()).toEqual([`${p}-pos`, `${p}-web`]);
    expect(customer.identities.map((i) => `${i.kind}:${i.trust}`).sort()).toEqual([
      "account:verified",
      "email:verified",
      "loyalty:verified",
    ]);
    expect(JSON.stringify(customer)).not.toContain(email.toLowerCase());
    expect(customer.summary).toMatchObject({
      orders: 2,
      purchaseDays: 2,
      spend: 149,
      channels: { web: 1, store: 1, app: 0, phone: 0 },
      units: 3,
      discountedUnits: 1,
      firstOrderAt: "2026-03-14T10:22:00.000Z",
      lastOrderAt: "2026-04-02T16:00:00.000Z",
    });
    const [firstOrder] = await storeRows<{ spend: number }>(
      "SELECT first_order_spend AS spend FROM customer_summaries WHERE customer_id = ?",
      customer.customerId,
    );
    expect(firstOrder?.spend).toBe(89); // the web order came first: the spend model leaves it out
    const jewellery = customer.summary?.categories.find((c) => c.categoryId === "jewellery");
    expect(jewellery).toMatchObject({
      units: 2,
      spend: 60,
      typicalPricePaid: 30,
      discountedShare: 0,
      storeUnits: 2,
      onlineUnits: 0,
    });
  });

  it("merges two existing customers when a later order links them, and the old id follows the survivor", async () => {
    const p = uniquePrefix();
    const first = await ingest([
      anOrder({ id: `${p}-a1`, identifiers: { account: `${p}-acct` } }),
      anOrder({ id: `${p}-a2`, identifiers: { account: `${p}-acct` }, placedAt: "2026-03-20T10:00:00Z" }),
    ]);
    const second = await ingest([anOrder({ id: `${p}-s1`, channel: "store", identifiers: { loyalty: `${p}-LOY1` } })]);
    const [webCustomer, storeCustomer] = [first.results[0]?.customerId, second.results[0]?.customerId];
    expect(webCustomer).not.toBe(storeCustomer);

    const linked = await api.identify({ account: `${p}-acct`, loyalty: `${p}-LOY1` });
    expect(linked.status).toBe(200);
    const merged = await customerOf("loyalty", `${p}-LOY1`);
    expect(merged.customerId).toBe(webCustomer); // the customer with more orders survives
    expect(merged.mergedFrom).toEqual([storeCustomer]);
    expect(merged.summary?.orders).toBe(3);

    const viaOldId = await api.customer(storeCustomer as string);
    expect(customerResponseSchema.parse(await viaOldId.json()).data.customerId).toBe(webCustomer);
  });

  it("keeps a loyalty customer's store orders together", async () => {
    const p = uniquePrefix();
    await ingest(
      [1, 2, 3].map((n) =>
        anOrder({
          id: `${p}-${n}`,
          channel: "store",
          placedAt: `2026-0${n}-10T12:00:00Z`,
          identifiers: { loyalty: `${p}-card` },
        }),
      ),
    );
    const customer = await customerOf("loyalty", `${p.toUpperCase()}-CARD`);
    expect(customer.orders).toHaveLength(3);
    expect(customer.summary?.purchaseDays).toBe(3);
  });

  it("does not merge five household members who share one payment card", async () => {
    const p = uniquePrefix();
    const members = [1, 2, 3, 4, 5];
    await ingest(
      members.map((n) =>
        anOrder({
          id: `${p}-${n}`,
          channel: "store",
          identifiers: { loyalty: `${p}-member-${n}`, card: verified(`${p}-family-card`) },
        }),
      ),
    );
    const ids = new Set<string>();
    for (const n of members) {
      const customer = await customerOf("loyalty", `${p}-member-${n}`);
      expect(customer.orders).toHaveLength(1);
      expect(customer.identities).toEqual([
        { kind: "card", masked: expect.any(String), trust: "verified", shared: true },
        { kind: "loyalty", masked: expect.any(String), trust: "verified", shared: false },
      ]);
      ids.add(customer.customerId);
    }
    expect(ids.size).toBe(5);
    const shared = await api.lookup("card", `${p}-family-card`);
    expect(shared.status).toBe(404);
    expect(((await shared.json()) as { error: { message: string } }).error.message).toMatch(/shared/);
    // A later order with only the shared card links nobody: it starts its own customer.
    const later = await ingest([
      anOrder({ id: `${p}-later`, channel: "store", identifiers: { card: verified(`${p}-family-card`) } }),
    ]);
    expect(ids.has(later.results[0]?.customerId as string)).toBe(false);
  });

  it("refuses a merge that would give one customer two loyalty numbers", async () => {
    const p = uniquePrefix();
    await ingest([
      anOrder({
        id: `${p}-1`,
        channel: "store",
        identifiers: { loyalty: `${p}-LA`, phone: verified("+44 20 7946 0958") },
      }),
      anOrder({
        id: `${p}-2`,
        channel: "store",
        identifiers: { loyalty: `${p}-LB`, email: verified(`${p}@mail.test`) },
      }),
      anOrder({
        id: `${p}-3`,
        channel: "web",
        identifiers: { email: verified(`${p}@mail.test`), phone: verified("+44 20 7946 0958") },
      }),
    ]);
    const a = await customerOf("loyalty", `${p}-LA`);
    const b = await customerOf("loyalty", `${p}-LB`);
    expect(a.customerId).not.toBe(b.customerId);
  });

  it("ignores junk identifiers instead of linking strangers through them", async () => {
    const p = uniquePrefix();
    const result = await ingest([
      anOrder({
        id: `${p}-1`,
        channel: "store",
        identifiers: { loyalty: `${p}-J1`, email: "n/a", phone: "0000000000" },
      }),
      anOrder({
        id: `${p}-2`,
        channel: "store",
        identifiers: { loyalty: `${p}-J2`, email: "n/a", phone: "0000000000" },
      }),
      anOrder({ id: `${p}-3`, channel: "store", identifiers: { email: "noemail@gmail.com" } }),
    ]);
    expect(result.accepted).toBe(3);
    expect(new Set(result.results.map((r) => r.customerId)).size).toBe(3);
    expect(result.ignoredIdentifiers.map((i) => `${i.index}:${i.kind}`)).toEqual([
      "0:email",
      "0:phone",
      "1:email",
      "1:phone",
      "2:email",
    ]);
    expect((await api.lookup("email", "noemail@gmail.com")).status).toBe(400);
  });

  it("changes nothing when a batch is replayed, or the whole history again", async () => {
    const p = uniquePrefix();
    const batch = [
      anOrder({ id: `${p}-1`, identifiers: { account: `${p}-a`, email: verified(`${p}@x.test`) } }),
      anOrder({ id: `${p}-2`, channel: "store", identifiers: { loyalty: `${p}-l`, email: verified(`${p}@x.test`) } }),
      anOrder({ id: `${p}-3`, channel: "store", identifiers: { loyalty: `${p}-l`, phone: "+1 415 555 0199" } }),
    ];
    await ingest(batch);
    const before = await snapshot();
    const replay = await ingest([...batch, ...batch]);
    expect(replay).toMatchObject({ accepted: 0, duplicates: 6 });
    expect(await snapshot()).toEqual(before);
  });

  it("rejects a batch with any invalid order whole, listing every problem, and writes nothing", async () => {
    const p = uniquePrefix();
    const before = await snapshot();
    const response = await api.postOrders([
      anOrder({ id: `${p}-ok` }),
      { ...anOrder({ id: `${p}-bad1` }), channel: "fax" },
      { ...anOrder({ id: `${p}-bad2` }), placedAt: "yesterday", lines: [] },
      { ...anOrder({ id: `${p}-bad3` }), identifiers: {} },
    ]);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; issues: { path: (string | number)[] }[] } };
    expect(body.error.code).toBe("invalid_request");
    const paths = body.error.issues.map((issue) => issue.path.join("."));
    expect(paths).toEqual(
      expect.arrayContaining(["orders.1.channel", "orders.2.placedAt", "orders.2.lines", "orders.3.identifiers"]),
    );
    expect(await snapshot()).toEqual(before);
  });

  it.each([
    ["a body that is not JSON", "not json"],
    ["too many orders", JSON.stringify({ orders: Array.from({ length: 1001 }, () => anOrder()) })],
    ["an unknown field", JSON.stringify({ orders: [{ ...anOrder(), colour: "red" }] })],
    ["a future date", JSON.stringify({ orders: [anOrder({ placedAt: "2099-01-01T00:00:00Z" })] })],
  ])("answers 400 for %s", async (_, body) => {
    const response = await SELF.fetch("http://patron.test/v1/orders", {
      method: "POST",
      headers: { Authorization: "Bearer test-api-key", "Content-Type": "application/json" },
      body,
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
  });

  it.each([
    ["no key", null],
    ["a wrong key", "nope"],
  ])("answers 401 with %s and writes nothing", async (_, key) => {
    const before = await snapshot();
    const response = await api.postOrders([anOrder()], key);
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    expect(await snapshot()).toEqual(before);
  });
});

describe("one currency per shop (RETAILER_CURRENCY)", () => {
  type Refusal = { error: { code: string; message: string; issues: { path: (string | number)[]; message: string }[] } };

  it("refuses a batch with an order in another currency whole, naming the field, and writes nothing", async () => {
    // The trial: a JPY 12,000 order and a USD 80 order added up to "Lifetime spend 12,080.00".
    const p = uniquePrefix();
    const account = `${p}-a`;
    const before = await snapshot();
    const line = (unitPrice: number) => [{ productId: "sku-1", categoryId: "heels", quantity: 1, unitPrice }];
    const response = await api.postOrders([
      anOrder({ id: `${p}-usd`, identifiers: { account }, lines: line(80) }),
      { ...anOrder({ id: `${p}-jpy`, identifiers: { account }, lines: line(12_000) }), currency: "JPY" },
      { ...anOrder({ id: `${p}-fax` }), channel: "fax" },
    ]);
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as Refusal;
    expect(error.code).toBe("invalid_request");
    // Every problem of the batch at once, the currency one among them.
    expect(error.issues).toEqual([
      { path: ["orders", 1, "currency"], message: expect.any(String) },
      { path: ["orders", 2, "channel"], message: expect.any(String) },
    ]);
    expect(error.issues[0]?.message).toBe(
      "this shop's figures are in USD (RETAILER_CURRENCY): convert the order's amounts to USD first",
    );
    expect(await snapshot()).toEqual(before);
    expect((await api.lookup("account", account)).status).toBe(404);
  });

  it("gives an order without currency the shop's, and refuses any other, in a shop set to EUR", async () => {
    const app = createApp();
    const inEuros = (orders: unknown[]) =>
      app.request(
        "http://patron.test/v1/orders",
        {
          method: "POST",
          headers: { Authorization: "Bearer test-api-key", "Content-Type": "application/json" },
          body: JSON.stringify({ orders }),
        },
        { ...env, RETAILER_CURRENCY: "EUR" },
      );
    const p = uniquePrefix();
    const { currency: _, ...withoutCurrency } = anOrder({ id: `${p}-1`, identifiers: { account: `${p}-a` } });
    const stored = await inEuros([withoutCurrency]);
    expect(stored.status, await stored.clone().text()).toBe(200);
    expect((await customerOf("account", `${p}-a`)).orders.map((order) => order.currency)).toEqual(["EUR"]);

    const before = await snapshot();
    const refused = await inEuros([anOrder({ id: `${p}-2`, identifiers: { account: `${p}-a` } })]);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as Refusal).error.issues).toEqual([
      {
        path: ["orders", 0, "currency"],
        message: "this shop's figures are in EUR (RETAILER_CURRENCY): convert the order's amounts to EUR first",
      },
    ]);
    expect(await snapshot()).toEqual(before);
  });
});

describe("identity resolution through the worker", () => {
  // The same evidence, sent in different orders and batchings, must give the same partition.
  function household(p: string, phone: string) {
    return [
      anOrder({ id: `${p}-1`, identifiers: { account: `${p}-mum`, email: verified(`mum-${p}@home.test`) } }),
      anOrder({
        id: `${p}-2`,
        channel: "store",
        identifiers: { loyalty: `${p}-MUM`, email: verified(`mum-${p}@home.test`), card: verified(`${p}-fam`) },
      }),
      anOrder({
        id: `${p}-3`,
        channel: "store",
        identifiers: { loyalty: `${p}-DAD`, card: verified(`${p}-fam`), phone: verified(phone) },
      }),
      anOrder({ id: `${p}-4`, channel: "web", identifiers: { account: `${p}-dad`, phone: verified(phone) } }),
      anOrder({ id: `${p}-5`, channel: "store", identifiers: { loyalty: `${p}-KID`, card: verified(`${p}-fam`) } }),
      anOrder({ id: `${p}-6`, channel: "app", identifiers: { device: `${p}-ipad`, account: `${p}-mum` } }),
      anOrder({
        id: `${p}-7`,
        channel: "app",
        identifiers: { device: `${p}-ipad`, email: verified(`mum-${p}@home.test`) },
      }),
      // Repeats of 1 and 4: arriving after them, they are placed without walking the region.
      anOrder({ id: `${p}-8`, identifiers: { account: `${p}-mum`, email: verified(`mum-${p}@home.test`) } }),
      anOrder({ id: `${p}-9`, channel: "web", identifiers: { account: `${p}-dad`, phone: verified(phone) } }),
    ];
  }

  async function partition(p: string) {
    const groups: string[] = [];
    for (const [kind, value] of [
      ["account", `${p}-mum`],
      ["account", `${p}-dad`],
      ["loyalty", `${p}-KID`],
    ] as const) {
      const customer = await customerOf(kind, value);
      groups.push(
        customer.orders
          .map((o) => o.id.slice(p.length))
          .sort()
          .join(","),
      );
    }
    return groups;
  }

  it("gives the same partition for random arrival orders and batchings", async () => {
    const results: string[][] = [];
    for (let trial = 0; trial < 4; trial++) {
      const p = uniquePrefix("perm");
      const orders = household(p, `+1 415 555 ${1000 + trial}`);
      for (let i = orders.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [orders[i], orders[j]] = [orders[j] as (typeof orders)[number], orders[i] as (typeof orders)[number]];
      }
      let rest = orders;
      const batches: string[] = [];
      while (rest.length > 0) {
        const size = 1 + Math.floor(Math.random() * 3);
        batches.push(
          rest
            .slice(0, size)
            .map((o) => o.id.slice(p.length))
            .join(" "),
        );
        await ingest(rest.slice(0, size));
        rest = rest.slice(size);
      }
      const result = await partition(p);
      results.push(result);
      expect(result, `arrival: ${batches.join(" | ")}`).toEqual(["-1,-2,-6,-7,-8", "-3,-4,-9", "-5"]);
    }
    for (const result of results) expect(result).toEqual(results[0]);
  });
});

describe("orders repeating their customer's identifiers", () => {
  it("keep one customer when a batch holds two of them with different identifiers (account alone, card alone)", async () => {
    const p = uniquePrefix("repeats");
    const both = { account: `${p}-web`, loyalty: `${p}-card` };
    const order = (n: number, identifiers: Record<string, string>) =>
      anOrder({ id: `${p}-${n}`, placedAt: `2026-02-0${n}T12:00:00Z`, identifiers });
    await ingest([order(1, both)]);
    await ingest([order(2, { account: both.account })]);
    await ingest([order(3, { loyalty: both.loyalty })]);
    // Each repeats a stored order's identifiers; nothing in the batch joins the two.
    await ingest([order(4, { account: both.account }), order(5, { loyalty: both.loyalty })]);
    const byAccount = await customerOf("account", both.account);
    const byCard = await customerOf("loyalty", both.loyalty);
    expect(byCard.customerId).toBe(byAccount.customerId);
    expect(byAccount.orders.map((o) => o.id.slice(p.length)).sort()).toEqual(["-1", "-2", "-3", "-4", "-5"]);
    expect(byAccount.summary?.orders).toBe(5);
  });
});

describe("orders repeating the identifiers of a customer near the region bound", () => {
  it("count toward the 20,000: a batch that would take the region past it is refused, one that reaches it is not", async () => {
    const p = uniquePrefix("bound");
    const account = `${p}-acct`;
    await ingest([anOrder({ id: `${p}-0`, identifiers: { account } })]);
    const [held] = await storeRows<{ key: string; customer_id: string }>(
      "SELECT key, customer_id FROM identities WHERE customer_id = (SELECT customer_id FROM orders WHERE id = ?)",
      `${p}-0`,
    );
    // 19,999 orders carrying the account, as far as resolution sees them: their sightings and the summary.
    await storeRun(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 19998)
       INSERT INTO identity_observations (source, identity_key, verified) SELECT 'order:' || ? || '-old-' || i, ?, 1 FROM n`,
      p,
      held?.key,
    );
    await storeRun("UPDATE customer_summaries SET orders = 19999 WHERE customer_id = ?", held?.customer_id);
    const repeat = (n: number) => anOrder({ id: `${p}-${n}`, identifiers: { account } });

    // Two more would make 20,001: the region is walked, and refused as too large; nothing is stored.
    const refused = await api.postOrders([repeat(1), repeat(2)]);
    expect(refused.status, await refused.clone().text()).toBe(409);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/link more than 20,?000/);
    expect(await storeRows("SELECT id FROM orders WHERE id IN (?, ?)", `${p}-1`, `${p}-2`)).toEqual([]);
    // A repeat beside an order with a new identifier, which is walked: 20,001 too, refused likewise.
    const withEmail = anOrder({ id: `${p}-3`, identifiers: { account, email: verified(`${p}@mail.test`) } });
    const alsoRefused = await api.postOrders([repeat(1), withEmail]);
    expect(alsoRefused.status, await alsoRefused.clone().text()).toBe(409);
    expect(await storeRows("SELECT id FROM orders WHERE id IN (?, ?)", `${p}-1`, `${p}-3`)).toEqual([]);
    // One more makes 20,000, within the bound: a repeat, stored without a walk.
    expect(await ingest([repeat(1)])).toMatchObject({ accepted: 1 });
  });
});

describe("an erasure that removes the identify call joining a customer's identifiers", () => {
  it("splits that customer as the evidence left says, so a later repeat goes where a full resolution puts it", async () => {
    const p = uniquePrefix("unjoined");
    const phone = (n: number) => verified(`+1 415 555 ${String(n).padStart(4, "0")}`);
    const e1 = verified(`${p}-e1@mail.test`);
    await ingest([anOrder({ id: `${p}-1`, identifiers: { account: `${p}-D`, loyalty: `${p}-LD` } })]);
    await ingest([anOrder({ id: `${p}-2`, identifiers: { account: `${p}-C`, phone: phone(9) } })]);
    // Joins the email to D's loyalty number; the loyalty number and C's phone (two accounts) stay apart.
    expect((await api.identify({ loyalty: `${p}-LD`, email: e1, phone: phone(9) })).status).toBe(200);
    await ingest([anOrder({ id: `${p}-3`, identifiers: { email: e1 } })]);
    await ingest([anOrder({ id: `${p}-4`, identifiers: { email: e1, phone: phone(1) } })]);
    await ingest([anOrder({ id: `${p}-5`, identifiers: { email: e1, phone: phone(2) } })]);
    const d = await customerOf("account", `${p}-D`);
    expect(d.orders.map((o) => o.id.slice(p.length)).sort()).toEqual(["-1", "-3", "-4", "-5"]);

    const c = await customerOf("account", `${p}-C`);
    expect((await api.call("DELETE", `/v1/customers/${c.customerId}`, undefined, adminKey)).status).toBe(200);
    // Nothing left joins the account and loyalty number to the email and phones: two customers.
    const byAccount = await customerOf("account", `${p}-D`);
    const byEmail = await customerOf("email", e1.value);
    expect(byEmail.customerId).not.toBe(byAccount.customerId);
    expect(byAccount.orders.map((o) => o.id.slice(p.length))).toEqual(["-1"]);
    expect(byEmail.orders.map((o) => o.id.slice(p.length)).sort()).toEqual(["-3", "-4", "-5"]);

    // The email alone repeats order 3; the other order walks from the account.
    await ingest([
      anOrder({ id: `${p}-6`, identifiers: { account: `${p}-D`, email: verified(`${p}-e9@mail.test`) } }),
      anOrder({ id: `${p}-7`, identifiers: { email: e1 } }),
    ]);
    expect((await customerOf("account", `${p}-D`)).orders.map((o) => o.id.slice(p.length)).sort()).toEqual([
      "-1",
      "-6",
    ]);
    const emailCustomer = await customerOf("email", e1.value);
    expect(emailCustomer.orders.map((o) => o.id.slice(p.length)).sort()).toEqual(["-3", "-4", "-5", "-7"]);
    expect(emailCustomer.summary?.orders).toBe(4);
  });
});

describe("concurrent ingestion", () => {
  it("never splits a new customer across requests that arrive at the same time", async () => {
    const p = uniquePrefix("race");
    const responses = await Promise.all(
      [1, 2, 3, 4, 5, 6].map((n) =>
        api.postOrders([
          anOrder({
            id: `${p}-${n}`,
            channel: "store",
            placedAt: `2026-0${n}-02T12:00:00Z`,
            identifiers: { loyalty: `${p}-card`, ...(n % 2 ? { email: `${p}@race.test` } : {}) },
          }),
        ]),
      ),
    );
    for (const response of responses) expect(response.status, await response.clone().text()).toBe(200);
    const customer = await customerOf("loyalty", `${p}-card`);
    expect(customer.orders).toHaveLength(6);
    expect(customer.summary?.orders).toBe(6);
    const summaries = await storeRows(
      "SELECT customer_id FROM customer_summaries WHERE customer_id IN (SELECT customer_id FROM orders WHERE id LIKE ?)",
      `${p}-%`,
    );
    expect(summaries).toHaveLength(1);
  });
});

describe("the two 409 refusals of POST /v1/orders", () => {
  it("mark the one that clears by itself with Retry-After, so clients retry only that one", () => {
    const busy = refusalError({ kind: "busy" });
    const placeholder = refusalError({ kind: "region_too_large", limit: 20_000 });
    expect([busy.status, busy.code, busy.retryAfterSeconds]).toEqual([409, "conflict", 1]);
    expect([placeholder.status, placeholder.code, placeholder.retryAfterSeconds]).toEqual([409, "conflict", undefined]);
    expect(isRetryableStatus(409, String(busy.retryAfterSeconds))).toBe(true);
    expect(isRetryableStatus(409, null)).toBe(false);
  });
});
