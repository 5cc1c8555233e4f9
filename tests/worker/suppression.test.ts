// Erasure that sticks: after DELETE /v1/customers/:id, replays and new data carrying the erased
// customer's order ids or own identifiers are suppressed (nothing stored, no customer created) until
// an admin lifts the suppression; the list holds keyed hashes only. Runs on both customer stores (D1
// and the customer shards): rows are read wherever they are stored, and the erasure and the write
// batch's guard run where the customer's data lives (inside its shard on the sharded store, over the
// shard's own suppression list, as a sharded deployment runs them).
import { env, SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { runBatch } from "../../db/batch.ts";
import * as eventsSchema from "../../db/events-schema.ts";
import * as schema from "../../db/schema.ts";
import { eraseCustomer } from "../../worker/customers/erasure.repo.ts";
import type { Db, EventsDb } from "../../worker/env.ts";
import { eventsResponseSchema } from "../../worker/events/events.schemas.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { identityKey } from "../../worker/identity/identity.keys.ts";
import { isStaleRegion } from "../../worker/identity/identity.repo.ts";
import { ingestResultSchema } from "../../worker/orders/orders.schemas.ts";
import { eraseCustomerIn } from "../../worker/shards/console-shard.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { orderSuppressionKey, suppressionGuard } from "../../worker/suppressions/suppressions.repo.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../fixtures/builders.ts";
import { dbOf, inCustomerStore, inStore } from "../fixtures/ingest-store.ts";
import { storeRows, storeSnapshot } from "../fixtures/store-rows.ts";
import { eventTables } from "../fixtures/tables.ts";

const api = client(SELF);

const sharded = () => shardCount(env) > 0;

/** Every customer, catalog and event row, wherever the store keeps it. */
async function snapshot() {
  const tables: Record<string, unknown> = await storeSnapshot();
  for (const table of eventTables) {
    tables[table] = (await env.EVENTS_DB.prepare(`SELECT * FROM ${table} ORDER BY 1, 2`).all()).results;
  }
  return tables;
}

/** Rows of the write-batch guard table left behind, wherever ingestion writes (D1, or every shard). */
async function ingestChecksLeft(): Promise<number> {
  const counts = await storeRows<{ n: number }>("SELECT count(*) AS n FROM ingest_checks");
  return counts.reduce((sum, row) => sum + row.n, 0);
}

async function ingest(orders: unknown[]) {
  const response = await api.postOrders(orders);
  expect(response.status, await response.clone().text()).toBe(200);
  return ingestResultSchema.parse(await response.json()).data;
}

async function identify(identifiers: Record<string, string>) {
  const response = await api.identify(identifiers);
  expect(response.status, await response.clone().text()).toBe(200);
  return ((await response.json()) as { data: { linked: number; merges: number; suppressed: boolean } }).data;
}

const lift = (body: unknown, key: string | null = adminKey) => api.call("DELETE", "/v1/admin/suppressions", body, key);
const check = (kind: string, value: string) =>
  api.call("GET", `/v1/admin/suppressions?kind=${kind}&value=${encodeURIComponent(value)}`, undefined, adminKey);

/** An identifier the retailer vouches for (a verified email, a card paid with): only these join customers. */
const verified = (value: string) => ({ value, verified: true });

/** Creates a web + store customer (merged through the email) next to a neighbour sharing a card, then erases it. */
async function erasedShopper() {
  const p = uniquePrefix("erased");
  const shopper = {
    account: `${p}-acct`,
    email: `${p}@mail.test`,
    loyalty: `${p}-L`,
    card: `${p}-family-card`,
    orders: [
      anOrder({ id: `${p}-w1`, identifiers: { account: `${p}-acct`, email: verified(`${p}@mail.test`) } }),
      anOrder({
        id: `${p}-s1`,
        channel: "store",
        identifiers: { loyalty: `${p}-L`, email: verified(`${p}@mail.test`), card: verified(`${p}-family-card`) },
      }),
    ],
  };
  // The neighbour shares the household card: it is nobody's own identifier and is not suppressed.
  const neighbour = anOrder({
    id: `${p}-n1`,
    channel: "store",
    identifiers: { loyalty: `${p}-N`, card: verified(shopper.card) },
  });
  await ingest([...shopper.orders, neighbour]);
  const found = (await (await api.lookup("account", shopper.account)).json()) as { data: { customerId: string } };
  const erased = await api.call("DELETE", `/v1/customers/${found.data.customerId}`, undefined, adminKey);
  expect(erased.status, await erased.clone().text()).toBe(200);
  const body = (await erased.json()) as { data: { suppressed: { orders: number; identifiers: number } } };
  // Two orders; account, email and loyalty were the customer's own (the card is shared).
  expect(body.data.suppressed).toEqual({ orders: 2, identifiers: 3 });
  return { p, ...shopper };
}

describe("erasure that sticks", () => {
  it("lifts an account id that starts with another space as that id, never the erased one it folds to", async () => {
    const shopper = await erasedShopper();
    const suppressed = async (value: string) =>
      ((await (await check("account", value)).json()) as { data: { suppressed: boolean } }).data.suppressed;
    expect(await suppressed(` ${shopper.account}\t`)).toBe(true);
    // Another id that folds to the erased one (an ideographic space first) is not suppressed, and lifting
    // it lifts nothing: the erased id stays refused.
    expect(await suppressed(`\u3000${shopper.account}`)).toBe(false);
    const lookAlike = await lift({ kind: "account", value: `\u3000${shopper.account}` });
    expect(lookAlike.status, await lookAlike.clone().text()).toBe(404);
    expect(await suppressed(shopper.account)).toBe(true);
    // An order id is trimmed of any space, as ingestion trims it: the same order.
    const order = await check("order", `\u3000${shopper.p}-s1\u00a0`);
    expect(((await order.json()) as { data: { suppressed: boolean } }).data.suppressed).toBe(true);
  });

  it("answers a replayed erased order as suppressed and stores nothing", async () => {
    const shopper = await erasedShopper();
    const before = await snapshot();
    const result = await ingest(shopper.orders);
    expect(result).toMatchObject({ accepted: 0, duplicates: 0, suppressed: 2 });
    expect(result.results.map((r) => [r.id, r.status, r.customerId])).toEqual([
      [`${shopper.p}-w1`, "suppressed", null],
      [`${shopper.p}-s1`, "suppressed", null],
    ]);
    expect(await snapshot()).toEqual(before);
    expect((await api.lookup("account", shopper.account)).status).toBe(404);
  });

  it("suppresses a whole new order carrying an erased identifier, and keeps the rest of the batch", async () => {
    const shopper = await erasedShopper();
    const fresh = anOrder({ id: `${shopper.p}-fresh`, identifiers: { account: `${shopper.p}-someone-else` } });
    const before = await snapshot();
    const result = await ingest([
      // A new order id, a new account, and the erased customer's email (case and spaces differ).
      anOrder({
        id: `${shopper.p}-new`,
        identifiers: { account: `${shopper.p}-new-acct`, email: ` ${shopper.email.toUpperCase()} ` },
      }),
      fresh,
      fresh,
    ]);
    expect(result).toMatchObject({ accepted: 1, duplicates: 1, suppressed: 1 });
    expect(result.results.map((r) => r.status)).toEqual(["suppressed", "created", "duplicate"]);
    const after = (await snapshot()) as Record<string, unknown[]>;
    const was = before as Record<string, unknown[]>;
    // Only the fresh order's customer was created: nothing for the suppressed one.
    expect(after.orders?.length).toBe((was.orders?.length ?? 0) + 1);
    expect(after.customers?.length).toBe((was.customers?.length ?? 0) + 1);
    expect((await api.lookup("account", `${shopper.p}-new-acct`)).status).toBe(404);
    // The shared card is not the erased customer's alone: an order carrying only it is accepted.
    expect(
      await ingest([anOrder({ id: `${shopper.p}-card`, channel: "store", identifiers: { card: shopper.card } })]),
    ).toMatchObject({ accepted: 1, suppressed: 0 });
  });

  it("suppresses identify calls and events carrying an erased identifier", async () => {
    const shopper = await erasedShopper();
    const before = await snapshot();
    expect(await identify({ email: shopper.email, device: `${shopper.p}-phone` })).toEqual({
      linked: 0,
      unverified: 0,
      merges: 0,
      suppressed: true,
      ignoredIdentifiers: [],
    });
    const token = await signShopperToken(shopper.account, env.SHOPPER_TOKEN_SECRET, 600, new Date());
    const beacon = await SELF.fetch("http://patron.test/v1/events", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({
        events: [
          { type: "view", productId: "sku-1", categoryId: "heels", token },
          { type: "view", productId: "sku-2", categoryId: "heels" },
        ],
      }),
    });
    expect(eventsResponseSchema.parse(await beacon.json()).data).toEqual({
      accepted: 1,
      duplicates: 0,
      ignored: 0,
      suppressed: 1,
    });
    const after = (await snapshot()) as Record<string, unknown[]>;
    expect({ ...after, events: [] }).toEqual({ ...(before as Record<string, unknown[]>), events: [] });
    expect(after.events?.length).toBe(((before as Record<string, unknown[]>).events?.length ?? 0) + 1);
  });

  it("accepts the data again once an admin lifts the suppression", async () => {
    const shopper = await erasedShopper();
    expect(((await (await check("email", shopper.email)).json()) as { data: unknown }).data).toEqual({
      kind: "email",
      suppressed: true,
    });
    // Only the admin key lifts; bad input is a 400; an unknown value a 404.
    expect((await lift({ kind: "email", value: shopper.email }, "test-api-key")).status).toBe(401);
    expect((await lift({ kind: "nickname", value: shopper.email })).status).toBe(400);
    expect((await lift({ kind: "email", value: `${shopper.p}.unknown@mail.test` })).status).toBe(404);

    const lifted = await lift({ kind: "email", value: shopper.email.toUpperCase() });
    expect(lifted.status, await lifted.clone().text()).toBe(200);
    expect(await lifted.json()).toEqual({ data: { kind: "email", lifted: true } });
    expect(((await (await check("email", shopper.email)).json()) as { data: unknown }).data).toEqual({
      kind: "email",
      suppressed: false,
    });
    expect(
      await ingest([anOrder({ id: `${shopper.p}-back`, identifiers: { email: verified(shopper.email) } })]),
    ).toMatchObject({
      accepted: 1,
      suppressed: 0,
    });
    expect((await api.lookup("email", shopper.email)).status).toBe(200);

    // The erased order ids stay suppressed until lifted one by one.
    expect(await ingest([shopper.orders[1]])).toMatchObject({ accepted: 0, suppressed: 1 });
    expect((await lift({ kind: "order", value: `${shopper.p}-s1` })).status).toBe(200);
    // The store order still carries the erased loyalty card.
    expect(await ingest([shopper.orders[1]])).toMatchObject({ accepted: 0, suppressed: 1 });
    expect((await lift({ kind: "loyalty", value: shopper.loyalty })).status).toBe(200);
    expect(await ingest([shopper.orders[1]])).toMatchObject({ accepted: 1, suppressed: 0 });
  });

  it("keeps refusing an account id whose erasure listed its NFKC-folded key, from before ids were keyed as sent", async () => {
    const p = uniquePrefix("folded");
    const sent = `ｆｏｌｄ-${p}`; // full-width letters: keyed as "fold-…" while account ids were NFKC-folded
    const folded = sent.normalize("NFKC");
    expect(folded).toBe(`fold-${p}`);
    // What an erasure of this account recorded then: the folded form's key (marked by the migration that
    // added folded_era as listed in that era).
    await env.DB.prepare("INSERT INTO suppressions (key, kind, created_at, folded_era) VALUES (?, 'account', ?, 1)")
      .bind(await identityKey("account", folded, env.IDENTITY_HASH_SECRET), new Date().toISOString())
      .run();
    const before = await snapshot();
    expect(await ingest([anOrder({ id: `${p}-1`, identifiers: { account: sent } })])).toMatchObject({
      accepted: 0,
      suppressed: 1,
    });
    expect(await identify({ account: sent, device: `${p}-phone` })).toMatchObject({ linked: 0, suppressed: true });
    const token = await signShopperToken(sent, env.SHOPPER_TOKEN_SECRET, 600, new Date());
    const beacon = await SELF.fetch("http://patron.test/v1/events", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ events: [{ type: "view", productId: "sku-1", categoryId: "heels", token }] }),
    });
    expect(eventsResponseSchema.parse(await beacon.json()).data).toMatchObject({ accepted: 0, suppressed: 1 });
    expect(await snapshot()).toEqual(before);

    expect(((await (await check("account", sent)).json()) as { data: unknown }).data).toEqual({
      kind: "account",
      suppressed: true,
    });
    const refused = await lift({ kind: "account", value: sent });
    expect(refused.status).toBe(404);
    const { error } = (await refused.json()) as { error: { message: string } };
    expect(error.message).toContain(`its NFKC-folded form "fold-${p}" is`);
    expect((await lift({ kind: "account", value: folded })).status).toBe(200);
    expect(await ingest([anOrder({ id: `${p}-1`, identifiers: { account: sent } })])).toMatchObject({ accepted: 1 });
  });

  it("never refuses a full-width account id for a later erasure of the plain id it folds to: another person's", async () => {
    const p = uniquePrefix("fold-now");
    const plain = `fk-${p}`;
    const wide = [...plain].map((c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0 * Number(c !== "-"))).join("");
    expect(wide.normalize("NFKC")).toBe(plain);
    expect(wide).not.toBe(plain);
    expect(await ingest([anOrder({ id: `${p}-plain`, identifiers: { account: plain } })])).toMatchObject({
      accepted: 1,
    });
    const found = (await (await api.lookup("account", plain)).json()) as { data: { customerId: string } };
    const erased = await api.call("DELETE", `/v1/customers/${found.data.customerId}`, undefined, adminKey);
    expect(erased.status, await erased.clone().text()).toBe(200);
    // The erased id stays refused; the full-width one, another shopper's, is taken everywhere.
    expect(await ingest([anOrder({ id: `${p}-plain-2`, identifiers: { account: plain } })])).toMatchObject({
      suppressed: 1,
    });
    expect(await ingest([anOrder({ id: `${p}-wide`, identifiers: { account: wide } })])).toMatchObject({ accepted: 1 });
    expect(await identify({ account: wide, device: `${p}-phone` })).toMatchObject({ suppressed: false });
    expect(((await (await check("account", wide)).json()) as { data: unknown }).data).toEqual({
      kind: "account",
      suppressed: false,
    });
  });

  it("refuses a query parameter it does not take, naming it, rather than answering the counts", async () => {
    const response = await api.call("GET", "/v1/admin/suppressions?kindd=email&value=a%40b.test", undefined, adminKey);
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { code: string; issues: { path: string[] }[] } };
    expect(error.code).toBe("invalid_request");
    expect(error.issues.map((issue) => issue.path[0])).toEqual(["kindd"]);
  });

  it("checks and lifts a phone read as ingestion reads it (E.164 in the default region)", async () => {
    const p = uniquePrefix("erased-phone");
    // A trunk "(0)" inside an international number: libphonenumber drops it, a naive digit count keeps it.
    const typed = "+44 (0)20 7946 0123";
    await ingest([anOrder({ id: `${p}-1`, identifiers: { account: `${p}-acct`, phone: verified(typed) } })]);
    const found = (await (await api.lookup("phone", typed)).json()) as { data: { customerId: string } };
    expect((await api.call("DELETE", `/v1/customers/${found.data.customerId}`, undefined, adminKey)).status).toBe(200);
    expect(await ingest([anOrder({ id: `${p}-2`, identifiers: { phone: verified(typed) } })])).toMatchObject({
      suppressed: 1,
    });

    expect(((await (await check("phone", typed)).json()) as { data: unknown }).data).toEqual({
      kind: "phone",
      suppressed: true,
    });
    const lifted = await lift({ kind: "phone", value: typed });
    expect(lifted.status, await lifted.clone().text()).toBe(200);
    expect(await ingest([anOrder({ id: `${p}-2`, identifiers: { phone: verified(typed) } })])).toMatchObject({
      accepted: 1,
    });
  });

  it("keeps keyed hashes only, never a raw order id or identifier", async () => {
    const shopper = await erasedShopper();
    type Suppression = { key: string; kind: string; created_at: string };
    const { results: listed } = await env.DB.prepare("SELECT * FROM suppressions").all<Suppression>();
    expect(listed.length).toBeGreaterThanOrEqual(5);
    // With shards, the shard that held the customer keeps its own copy of the list: checked alike.
    const inShards = sharded() ? await storeRows<Suppression>("SELECT * FROM suppressions") : [];
    if (sharded()) expect(inShards.length).toBeGreaterThanOrEqual(5);
    const results = [...listed, ...inShards];
    const stored = JSON.stringify(results).toLowerCase();
    for (const raw of [shopper.p, shopper.account, shopper.email, shopper.loyalty, `${shopper.p}-w1`]) {
      expect(stored).not.toContain(raw.toLowerCase());
    }
    for (const row of results) {
      expect(row.key).toMatch(/^(order|account|email|phone|loyalty|card|device):[0-9a-f]{40}$/);
      expect(row.key.startsWith(`${row.kind}:`)).toBe(true);
    }
    const counts = (await (await api.call("GET", "/v1/admin/suppressions", undefined, adminKey)).json()) as {
      data: { counts: Record<string, number> };
    };
    expect(counts.data.counts.order).toBeGreaterThanOrEqual(2);
    expect(counts.data.counts.email).toBeGreaterThanOrEqual(1);
  });

  it("suppresses an order that reaches the customer while the erasure is under way", async () => {
    const p = uniquePrefix("race");
    await ingest([anOrder({ id: `${p}-1`, identifiers: { account: `${p}-acct` } })]);
    const found = (await (await api.lookup("account", `${p}-acct`)).json()) as { data: { customerId: string } };
    let calls = 0;
    const arrives = async (orderId: string) => {
      // Between the erasure's read of the order ids and its write, another order arrives.
      if (calls++ === 0) await ingest([anOrder({ id: `${p}-2`, identifiers: { account: `${p}-acct` } })]);
      return orderSuppressionKey(orderId, env.IDENTITY_HASH_SECRET);
    };
    const mainDb = drizzle(env.DB, { schema }) as unknown as Db;
    const eventsDb = drizzle(env.EVENTS_DB, { schema: eventsSchema }) as unknown as EventsDb;
    // The erasure as the store runs it: on D1, or inside the customer's shard (the order then lands in
    // that shard while the erasure awaits).
    const erasure = await inCustomerStore(found.data.customerId, async (d1) => {
      if (!sharded()) return eraseCustomer(dbOf(d1), eventsDb, found.data.customerId, arrives, new Date());
      const erased = await eraseCustomerIn(
        dbOf(d1),
        mainDb,
        eventsDb,
        found.data.customerId,
        arrives,
        new Date(),
        async () => [], // no guest identifiers here
      );
      return erased?.erasure;
    });
    expect(erasure).toMatchObject({ kind: "erased", suppressed: { orders: 2, identifiers: 1 } });
    expect(await ingest([anOrder({ id: `${p}-2`, identifiers: { email: `${p}@mail.test` } })])).toMatchObject({
      accepted: 0,
      suppressed: 1,
    });
    expect(await ingestChecksLeft()).toBe(0);
  });

  it("aborts an ingestion's write batch when one of its keys was suppressed after the request checked", async () => {
    const key = `email:${"ab".repeat(20)}`;
    // The list the write batch checks: D1's, or a shard's own (the guard runs in the shard's batch).
    await inStore(sharded() ? 0 : null, async (d1) => {
      const db = dbOf(d1);
      await d1
        .prepare("INSERT INTO suppressions (key, kind, created_at) VALUES (?, 'email', ?)")
        .bind(key, new Date().toISOString())
        .run();
      const clear = sql`DELETE FROM ingest_checks`;
      const aborted = await runBatch(db, [suppressionGuard([`order:${"cd".repeat(20)}`, key]), clear]).then(
        () => null,
        (error: unknown) => error,
      );
      expect(isStaleRegion(aborted)).toBe(true);
      await runBatch(db, [suppressionGuard([`email:${"ef".repeat(20)}`]), clear]);
    });
    expect(await ingestChecksLeft()).toBe(0);
  });
});
