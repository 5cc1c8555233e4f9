// The migration of a single-database deployment into customer shards (`POST /v1/admin/shards/migrate`,
// `patron shards migrate`): the same deployment's app, run once with SHARD_COUNT=0 (D1, before) and
// once with SHARD_COUNT=4 (after), must give every identifier the same customer with the same orders,
// every table the same rows, and new orders must join the migrated customers.
import { createExecutionContext, env, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../worker/app.ts";
import { homeShard } from "../../../worker/core/shards/placement.ts";
import { customerResponseSchema } from "../../../worker/customers/customers.schemas.ts";
import { hashIdentifiers } from "../../../worker/identity/identity.keys.ts";
import { ingestResultSchema } from "../../../worker/orders/orders.schemas.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { customerTimesAged, d1TimesAged } from "../../fixtures/aged-times.ts";
import { adminKey, anOrder, client, uniquePrefix, verified } from "../../fixtures/builders.ts";
import { storeRows, storeRun } from "../../fixtures/store-rows.ts";

const app = createApp();
/** The app as a deployment still on its one D1 database sees it (the same bindings, SHARD_COUNT=0). */
const before = {
  async fetch(input: string, init?: RequestInit) {
    const context = createExecutionContext();
    const response = await app.fetch(new Request(input, init), { ...env, SHARD_COUNT: "0" }, context);
    await waitOnExecutionContext(context);
    return response;
  },
};
const d1Api = client(before);
const shardApi = client(SELF);

async function ingest(api: ReturnType<typeof client>, orders: unknown[]) {
  const response = await api.postOrders(orders);
  expect(response.status, await response.clone().text()).toBe(200);
  return ingestResultSchema.parse(await response.json()).data;
}

async function customerOf(api: ReturnType<typeof client>, kind: string, value: string) {
  const response = await api.lookup(kind, value);
  expect(response.status, `${kind} ${value}: ${await response.clone().text()}`).toBe(200);
  const { data } = customerResponseSchema.parse(await response.json());
  return { customerId: data.customerId, orders: data.orders.map((order) => order.id).sort() };
}

const migrate = (api: ReturnType<typeof client>, body: unknown) =>
  api.call("POST", "/v1/admin/shards/migrate", body, adminKey);

/** Steps the migration to its end, `limit` customers at a time; the steps' answers. */
interface MigrationStep {
  done: boolean;
  mode: "full" | "catch_up";
  phase: string | null;
  visited: number;
  total: number;
  regions: number;
  changed: number;
  pruned: number;
}

async function migrateAll(limit: number, options: { discardShardData?: boolean; full?: boolean } = {}) {
  const steps = [];
  for (let step = 0; step < 1_000; step++) {
    const response = await migrate(d1Api, { shards: 4, limit, ...options });
    expect(response.status, await response.clone().text()).toBe(200);
    const { data } = (await response.json()) as { data: MigrationStep };
    steps.push(data);
    if (data.done) return steps;
  }
  throw new Error("the migration did not finish");
}

async function counts() {
  const response = await d1Api.call("GET", "/v1/admin/shards/migrate?verify=true", undefined, adminKey);
  expect(response.status, await response.clone().text()).toBe(200);
  const { data } = (await response.json()) as {
    data: {
      counts: { d1: Record<string, number>; shards: Record<string, number>[] };
      changedSince: Record<string, number>;
    };
  };
  const summed: Record<string, number> = {};
  for (const shard of data.counts.shards)
    for (const [table, n] of Object.entries(shard)) summed[table] = (summed[table] ?? 0) + n;
  return { d1: data.counts.d1, shards: summed, changedSince: data.changedSince };
}

/**
 * As if the last pass ran a day ago over older data: every time D1 and the shards keep moves back two
 * days, and the pass's record one (a catch-up pass then finds only what is written after this).
 */
async function ageEverything() {
  const dayAgo = new Date(Date.now() - 86_400_000).toISOString();
  await env.DB.batch([
    ...[...customerTimesAged, ...d1TimesAged].map((query) => env.DB.prepare(query)),
    env.DB.prepare("UPDATE shard_migration SET started_at = ?, finished_at = ? WHERE id = 'd1-to-shards'").bind(
      dayAgo,
      dayAgo,
    ),
  ]);
  for (const query of customerTimesAged) await storeRun(query);
}

/** Web and store shoppers: a join by email, a merge by phone, a shared household card, an identify call, an order with no verified identifier. */
function history(p: string) {
  return [
    anOrder({ id: `${p}-1`, identifiers: { account: `${p}-ann`, email: verified(`ann-${p}@x.test`) } }),
    anOrder({
      id: `${p}-2`,
      channel: "store",
      placedAt: "2026-03-20T10:00:00Z",
      identifiers: { loyalty: `${p}-ANN`, email: verified(`ann-${p}@x.test`) },
    }),
    anOrder({ id: `${p}-3`, identifiers: { account: `${p}-bob` } }),
    anOrder({
      id: `${p}-4`,
      channel: "store",
      identifiers: { loyalty: `${p}-BOB`, phone: verified("+1 415 555 0101") },
    }),
    anOrder({
      id: `${p}-5`,
      placedAt: "2026-04-01T10:00:00Z",
      identifiers: { account: `${p}-bob`, phone: verified("+1 415 555 0101") },
    }),
    ...["H1", "H2", "H3"].map((member, i) =>
      anOrder({
        id: `${p}-6${i}`,
        channel: "store",
        identifiers: { loyalty: `${p}-${member}`, card: verified(`${p}-family`) },
      }),
    ),
    anOrder({ id: `${p}-7`, identifiers: { email: `guest-${p}@x.test` } }),
    anOrder({
      id: `${p}-8`,
      channel: "store",
      identifiers: { loyalty: `${p}-CAT`, email: verified(`cat-${p}@x.test`) },
    }),
  ];
}

const identifiers = (p: string): [string, string][] => [
  ["account", `${p}-ann`],
  ["loyalty", `${p}-ANN`],
  ["account", `${p}-bob`],
  ["loyalty", `${p}-BOB`],
  ["loyalty", `${p}-H1`],
  ["loyalty", `${p}-H2`],
  ["loyalty", `${p}-H3`],
  ["account", `${p}-cat`],
  ["loyalty", `${p}-CAT`],
];

describe("the migration routes", () => {
  it("answer 401 without the admin key, 404 before a migration starts, and 400 for a bad body or query", async () => {
    for (const key of [null, "test-api-key"]) {
      expect((await d1Api.call("POST", "/v1/admin/shards/migrate", { shards: 4 }, key)).status).toBe(401);
      expect((await d1Api.call("GET", "/v1/admin/shards/migrate", undefined, key)).status).toBe(401);
    }
    const none = await d1Api.call("GET", "/v1/admin/shards/migrate", undefined, adminKey);
    expect(none.status).toBe(404);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe("not_found");
    for (const body of [
      {},
      { shards: 4, limit: 501 },
      { shards: "4" },
      { shards: 4, extra: true },
      { shards: 4, discardShardData: "yes" },
    ])
      expect((await migrate(d1Api, body)).status, JSON.stringify(body)).toBe(400);
    expect((await d1Api.call("GET", "/v1/admin/shards/migrate?verify=yes", undefined, adminKey)).status).toBe(400);
    // Nothing was started by the refused requests.
    expect((await d1Api.call("GET", "/v1/admin/shards/migrate", undefined, adminKey)).status).toBe(404);
  });
});

describe("patron shards migrate", () => {
  it("refuses a first pass over shards that already hold customers of their own", async () => {
    // A deployment that started on the shards, now run with SHARD_COUNT=0 (or a local npm start).
    const p = uniquePrefix("mig-first");
    const [stored] = (await ingest(shardApi, [anOrder({ id: `${p}-1`, identifiers: { account: `${p}-own` } })]))
      .results;
    const refused = await migrate(d1Api, { shards: 4, limit: 50 });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(
      /already hold data, before a first pass: orders: 1, customers: 1/,
    );
    expect((await customerOf(shardApi, "account", `${p}-own`)).orders).toEqual([`${p}-1`]);
    // Nothing was started, and once the shards hold nothing of their own a first pass may run.
    expect((await d1Api.call("GET", "/v1/admin/shards/migrate", undefined, adminKey)).status).toBe(404);
    const erased = await shardApi.call("DELETE", `/v1/customers/${stored?.customerId}`, undefined, adminKey);
    expect(erased.status, await erased.clone().text()).toBe(200);
  });

  it("moves every customer into the shards, where each identifier finds the same customer and orders", async () => {
    const p = uniquePrefix("mig");
    // One order per request, so the later ones merge customers the earlier ones created.
    for (const order of history(p)) await ingest(d1Api, [order]);
    const call = await d1Api.identify({ account: `${p}-cat`, email: verified(`cat-${p}@x.test`) });
    expect(call.status, await call.clone().text()).toBe(200);
    const was = new Map<string, Awaited<ReturnType<typeof customerOf>>>();
    for (const [kind, value] of identifiers(p)) was.set(`${kind}:${value}`, await customerOf(d1Api, kind, value));
    // The scenario holds what it should: a join, a merge, separate household members.
    expect(was.get(`account:${p}-ann`)?.orders).toEqual([`${p}-1`, `${p}-2`]);
    expect(was.get(`account:${p}-bob`)?.customerId).toBe(was.get(`loyalty:${p}-BOB`)?.customerId);
    expect(was.get(`loyalty:${p}-H1`)?.customerId).not.toBe(was.get(`loyalty:${p}-H2`)?.customerId);
    expect(was.get(`account:${p}-cat`)?.customerId).toBe(was.get(`loyalty:${p}-CAT`)?.customerId);

    // D1 as a deployment that applied migration 0019 over these orders: its product rows wait for the
    // nightly job's backfill. The shards build them from the orders they receive.
    await env.DB.batch([
      env.DB.prepare("DELETE FROM customer_products"),
      env.DB.prepare(
        "INSERT INTO backfills (name) VALUES ('customer_products') ON CONFLICT (name) DO UPDATE SET cursor = '', done_at = NULL",
      ),
    ]);

    // Stage transitions the nightly job recorded on D1: the feed shows them by their D1 ids.
    for (const customerId of [...new Set([...was.values()].map((customer) => customer.customerId))].slice(0, 3))
      await env.DB.prepare(
        "INSERT INTO stage_transitions (customer_id, from_stage, to_stage, at, run_id) VALUES (?, NULL, 'active', ?, ?)",
      )
        .bind(customerId, "2026-04-02T00:00:00.000Z", `${p}-run`)
        .run();
    const feed = async (api: ReturnType<typeof client>) => {
      const response = await api.call(
        "GET",
        "/v1/admin/transitions?since=2026-01-01T00:00:00Z&limit=10000",
        undefined,
        adminKey,
      );
      expect(response.status, await response.clone().text()).toBe(200);
      const { data } = (await response.json()) as { data: { transitions: { runId: string }[] } };
      return data.transitions.filter((row) => row.runId === `${p}-run`);
    };
    const d1Feed = await feed(d1Api);
    expect(d1Feed.length).toBe(3);

    const steps = await migrateAll(2);
    expect(steps.length).toBeGreaterThan(1);
    // The same rows with the same ids: a client paging the feed goes on with its cursor.
    expect(await feed(shardApi)).toEqual(d1Feed);
    expect(steps.at(-1)?.visited).toBe(steps.at(-1)?.total);

    const after = await counts();
    expect(after.shards).toEqual(after.d1);
    expect(after.d1.orders).toBeGreaterThanOrEqual(10);
    const byKey = (rows: Record<string, unknown>[]) =>
      rows.sort((a, b) => `${a.customer_id} ${a.product_id}`.localeCompare(`${b.customer_id} ${b.product_id}`));
    const fromOrders = (
      await env.DB.prepare(
        `SELECT o.customer_id, l.product_id, count(DISTINCT o.id) AS orders, max(o.placed_at) AS last_purchased_at
         FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.id LIKE ? GROUP BY o.customer_id, l.product_id`,
      )
        .bind(`${p}-%`)
        .all<Record<string, unknown>>()
    ).results;
    expect(fromOrders.length).toBeGreaterThan(5);
    const inShards = await storeRows<Record<string, unknown>>(
      `SELECT customer_id, product_id, orders, last_purchased_at FROM customer_products
       WHERE customer_id IN (SELECT customer_id FROM orders WHERE id LIKE ?)`,
      `${p}-%`,
    );
    expect(byKey(inShards)).toEqual(byKey(fromOrders));

    for (const [kind, value] of identifiers(p))
      expect(await customerOf(shardApi, kind, value), `${kind} ${value}`).toEqual(was.get(`${kind}:${value}`));

    // A merged-away customer's id still answers with the survivor, as on D1.
    const merged = await env.DB.prepare("SELECT id, merged_into FROM customers WHERE merged_into = ?")
      .bind(was.get(`account:${p}-bob`)?.customerId)
      .first<{ id: string; merged_into: string }>();
    expect(merged?.merged_into).toBe(was.get(`account:${p}-bob`)?.customerId);
    const followed = await shardApi.customer(merged?.id as string);
    expect(followed.status).toBe(200);
    expect(customerResponseSchema.parse(await followed.json()).data.customerId).toBe(merged?.merged_into);

    // After the switch: resent with somebody else's account, a migrated order is found by its id where
    // it was copied (before any replay could point its entry there).
    const stored = (await counts()).shards.orders;
    const elsewhere = await ingest(
      shardApi,
      history(p).map((order, i) => ({ ...order, identifiers: { account: `${p}-someone-${i}` } })),
    );
    expect(elsewhere).toMatchObject({ accepted: 0, duplicates: history(p).length });
    expect((await counts()).shards.orders).toBe(stored);
    // Replays are duplicates, new orders join the migrated customers.
    const replay = await ingest(shardApi, history(p));
    expect(replay.duplicates).toBe(history(p).length);
    expect(replay.accepted).toBe(0);
    const more = await ingest(shardApi, [
      anOrder({ id: `${p}-9`, channel: "store", identifiers: { loyalty: `${p}-ANN` } }),
      anOrder({ id: `${p}-10`, channel: "store", identifiers: { loyalty: `${p}-BOB` } }),
    ]);
    expect(more.results.map((r) => r.customerId)).toEqual([
      was.get(`account:${p}-ann`)?.customerId,
      was.get(`account:${p}-bob`)?.customerId,
    ]);
    expect((await customerOf(shardApi, "account", `${p}-ann`)).orders).toEqual([`${p}-1`, `${p}-2`, `${p}-9`].sort());
  });

  it("copies nothing twice when run again from the start", async () => {
    const before = await counts();
    await env.DB.prepare(
      "UPDATE shard_migration SET cursor = NULL, finished_at = NULL WHERE id = 'd1-to-shards'",
    ).run();
    await migrateAll(50);
    expect(await counts()).toEqual(before);
  });

  it("refuses another shard count once one is under way, and a deployment already on shards", async () => {
    await env.DB.prepare("UPDATE shard_migration SET finished_at = NULL WHERE id = 'd1-to-shards'").run();
    const other = await migrate(d1Api, { shards: 8 });
    expect(other.status).toBe(409);
    expect(((await other.json()) as { error: { message: string } }).error.message).toMatch(/4 shards/);
    const sharded = await migrate(shardApi, { shards: 4 });
    expect(sharded.status).toBe(409);
    const bad = await migrate(d1Api, { shards: 0 });
    expect(bad.status).toBe(400);
  });

  it("refuses a new pass over shards that stored orders of their own since the last pass, unless told to discard them", async () => {
    await migrateAll(50); // finishes the pass the earlier tests left under way
    const p = uniquePrefix("mig-served");
    // The deployment switched to the shards (an order stored there alone), then back to D1.
    await ingest(shardApi, [anOrder({ id: `${p}-1`, identifiers: { account: `${p}-only` } })]);
    const refused = await migrate(d1Api, { shards: 4, limit: 50 });
    expect(refused.status).toBe(409);
    const { message } = ((await refused.json()) as { error: { message: string } }).error;
    expect(message).toMatch(/orders: 1, customers: 1/);
    expect(message).toMatch(/--discard-shard-data/);
    // Nothing was emptied: the shard's own order is still there.
    expect((await customerOf(shardApi, "account", `${p}-only`)).orders).toEqual([`${p}-1`]);
    // Told to, the pass empties the shards and copies D1, which never held that order.
    await migrateAll(50, { discardShardData: true });
    expect((await shardApi.lookup("account", `${p}-only`)).status).toBe(404);
    const after = await counts();
    expect(after.shards).toEqual(after.d1);
  });

  it("catches up on what D1 wrote since the last pass: only changed customers, regions joined across shards moved whole", async () => {
    const p = uniquePrefix("mig-catch");
    const pairs = [0, 1, 2, 3, 4, 5];
    // A web customer and a store customer each, not yet known to be one person; and one more.
    const sent: ReturnType<typeof anOrder>[] = [];
    const send = async (orders: ReturnType<typeof anOrder>[]) => {
      sent.push(...orders);
      await ingest(d1Api, orders);
    };
    for (const i of pairs)
      await send([
        anOrder({ id: `${p}-a${i}`, identifiers: { account: `${p}-web${i}` } }),
        anOrder({
          id: `${p}-l${i}`,
          channel: "store",
          identifiers: { loyalty: `${p}-CARD${i}`, email: verified(`${p}-${i}@x.test`) },
        }),
      ]);
    await ingest(d1Api, [
      anOrder({ id: `${p}-z`, identifiers: { account: `${p}-zed` } }),
      anOrder({ id: `${p}-q`, identifiers: { account: `${p}-quinn`, email: verified(`quinn-${p}@x.test`) } }),
    ]);
    const zed = await customerOf(d1Api, "account", `${p}-zed`);
    await env.DB.prepare(
      "INSERT INTO customer_browse (customer_id, day, category_id, views, last_viewed_at) VALUES (?, '2026-01-02', 'coffee', 3, ?)",
    )
      .bind(zed.customerId, new Date().toISOString())
      .run();
    await migrateAll(50);
    expect((await counts()).shards).toEqual((await counts()).d1);

    await ageEverything();

    // Where the pass put each pair: with four shards, most pairs are split.
    const shardOf = async (orderId: string) => {
      const held = await Promise.all(
        [0, 1, 2, 3].map((index) =>
          runInDurableObject(shardStub(env, index), (_instance, state) =>
            state.storage.sql.exec("SELECT count(*) AS n FROM orders WHERE id = ?", orderId).one(),
          ),
        ),
      );
      return held.findIndex((row) => Number(row.n) === 1);
    };
    const split = [];
    for (const i of pairs) if ((await shardOf(`${p}-a${i}`)) !== (await shardOf(`${p}-l${i}`))) split.push(i);
    expect(split.length).toBeGreaterThan(0);

    // D1 writes meanwhile: each web customer orders with their store email (a merge); a nightly run
    // back-dated three days (it dates what it writes so) records a transition for the other, and
    // finishes now; the other's old browse day expires.
    for (const i of pairs)
      await send([
        anOrder({ id: `${p}-j${i}`, identifiers: { account: `${p}-web${i}`, email: verified(`${p}-${i}@x.test`) } }),
      ]);
    const threeDaysAgo = new Date(Date.now() - 3 * 86_400_000).toISOString();
    await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO job_runs (id, kind, status, started_at, finished_at, as_of) VALUES (?, 'nightly', 'done', ?, ?, ?)",
      ).bind(`${p}-run`, new Date().toISOString(), new Date().toISOString(), threeDaysAgo),
      env.DB.prepare(
        "INSERT INTO stage_transitions (customer_id, from_stage, to_stage, at, run_id) VALUES (?, NULL, 'active', ?, ?)",
      ).bind(zed.customerId, threeDaysAgo, `${p}-run`),
      env.DB.prepare("DELETE FROM customer_browse WHERE customer_id = ?").bind(zed.customerId),
    ]);
    // An identify call with two identifiers the customer holds already: only sightings are new.
    const call = await d1Api.identify({ account: `${p}-quinn`, email: verified(`quinn-${p}@x.test`) });
    expect(call.status, await call.clone().text()).toBe(200);
    const customersInD1 = await env.DB.prepare("SELECT count(*) AS n FROM customers").first<{ n: number }>();

    const steps = await migrateAll(50);
    const last = steps.at(-1) as MigrationStep;
    // Both customers of each pair (one merged into the other), the one with a transition and the one
    // identified: nothing else.
    expect(last).toMatchObject({ mode: "catch_up", phase: "copy", changed: 14, visited: 14, pruned: 0, regions: 8 });
    expect(customersInD1?.n).toBeGreaterThan(14);
    const after = await counts();
    expect(after.shards).toEqual(after.d1);
    for (const i of pairs) {
      const joined = await customerOf(d1Api, "account", `${p}-web${i}`);
      expect(joined.orders).toEqual([`${p}-a${i}`, `${p}-j${i}`, `${p}-l${i}`]);
      expect(await customerOf(shardApi, "account", `${p}-web${i}`)).toEqual(joined);
      expect(await customerOf(shardApi, "loyalty", `${p}-CARD${i}`)).toEqual(joined);
      // The whole region in one shard, its old copies gone from the others.
      const shards = await Promise.all([`${p}-a${i}`, `${p}-j${i}`, `${p}-l${i}`].map(shardOf));
      expect(new Set(shards).size, `pair ${i}: ${shards}`).toBe(1);
    }
    expect(await storeRows("SELECT * FROM customer_browse WHERE customer_id = ?", zed.customerId)).toEqual([]);
    // Every directory entry of these orders names the shard holding the order now.
    const entries = await Promise.all(
      [0, 1, 2, 3].map((index) =>
        runInDurableObject(shardStub(env, index), (_instance, state) =>
          state.storage.sql.exec("SELECT key, shard FROM shard_directory WHERE key LIKE ?", `order:${p}-%`).toArray(),
        ),
      ),
    );
    for (const entry of entries.flat())
      expect(Number(entry.shard), String(entry.key)).toBe(await shardOf(String(entry.key).slice("order:".length)));
    // Every order is found by its id where the catch-up put it: resent with somebody else's account,
    // each is a duplicate (an entry an earlier pass left would send it to its old shard, to be stored again).
    const resent = await ingest(
      shardApi,
      sent.map((order, k) => ({ ...order, identifiers: { account: `${p}-someone-${k}` } })),
    );
    expect(resent).toMatchObject({ accepted: 0, duplicates: sent.length });

    // --full starts a full pass instead, which leaves the same rows; asked for during a catch-up, it
    // replaces that.
    const begun = await migrate(d1Api, { shards: 4, limit: 50 });
    expect(((await begun.json()) as { data: MigrationStep }).data).toMatchObject({ mode: "catch_up", done: false });
    const full = await migrateAll(50, { full: true });
    expect(full[0]).toMatchObject({ mode: "full", phase: null });
    expect(full.at(-1)).toMatchObject({ mode: "full", done: true });
    expect((await counts()).shards).toEqual(after.d1);
  });

  it("points an order's directory entry at its region's new shard when a catch-up moves the region to the order's home", async () => {
    const p = uniquePrefix("mig-home");
    const keyOf = async (identifiers: Record<string, unknown>) =>
      (await hashIdentifiers(identifiers, env.IDENTITY_HASH_SECRET)).identities[0]?.key as string;
    const email = `${p}@x.test`;
    const emailHome = homeShard(await keyOf({ email: verified(email) }), 4);
    // An account whose home differs from the email's, and a first order homed where that account is.
    let account = "";
    for (let n = 0; !account; n++) {
      const candidate = `${p}-acct-${n}`;
      if (homeShard(await keyOf({ account: candidate }), 4) !== emailHome) account = candidate;
    }
    const accountHome = homeShard(await keyOf({ account }), 4);
    let first = "";
    for (let n = 0; !first; n++) if (homeShard(`order:${p}-o${n}`, 4) === accountHome) first = `${p}-o${n}`;
    // The first pass puts the store customer (email and card) at the email's home, with an entry for the
    // order at its home, the account's.
    await ingest(d1Api, [
      anOrder({ id: first, channel: "store", identifiers: { loyalty: `${p}-CARD`, email: verified(email) } }),
    ]);
    await migrateAll(50);
    await ageEverything();
    // The account joins them: the region's place is the account's home now.
    await ingest(d1Api, [anOrder({ id: `${p}-web`, identifiers: { account, email: verified(email) } })]);
    await migrateAll(50);
    expect((await counts()).shards).toEqual((await counts()).d1);
    const entry = await runInDurableObject(shardStub(env, accountHome), (_instance, state) =>
      state.storage.sql.exec("SELECT shard FROM shard_directory WHERE key = ?", `order:${first}`).toArray(),
    );
    expect(entry.map((row) => Number(row.shard))).not.toContain(emailHome);
    const resent = await ingest(shardApi, [anOrder({ id: first, identifiers: { account: `${p}-someone` } })]);
    expect(resent).toMatchObject({ accepted: 0, duplicates: 1 });
    expect((await customerOf(shardApi, "account", account)).orders).toEqual([first, `${p}-web`].sort());
  });

  it("copies D1 again when run after it changed: new orders in, an erased customer gone", async () => {
    const p = uniquePrefix("mig-again");
    // The customer erased later, and somebody else whose order carried their email unverified.
    await ingest(d1Api, [
      anOrder({ id: `${p}-1`, identifiers: { account: `${p}-gone`, email: verified(`gone-${p}@x.test`) } }),
      anOrder({ id: `${p}-w`, identifiers: { account: `${p}-witness`, email: `gone-${p}@x.test` } }),
    ]);
    await migrateAll(50);
    const gone = await customerOf(shardApi, "account", `${p}-gone`);
    expect(gone).toEqual(await customerOf(d1Api, "account", `${p}-gone`));
    await ageEverything();

    const witnessed = await env.DB.prepare(
      "SELECT identity_key AS key FROM identity_observations WHERE source = ? AND identity_key LIKE 'email:%'",
    )
      .bind(`order:${p}-w`)
      .first<{ key: string }>();
    expect(witnessed?.key).toMatch(/^email:/);
    // D1 changes after the copy: the customer is erased, another one orders.
    const erased = await d1Api.call("DELETE", `/v1/customers/${gone.customerId}`, undefined, adminKey);
    expect(erased.status, await erased.clone().text()).toBe(200);
    await ingest(d1Api, [anOrder({ id: `${p}-2`, identifiers: { account: `${p}-kept` } })]);
    // The same number of rows as before (one customer gone, one new): what tells is what D1 wrote since.
    const stale = await counts();
    expect(stale.changedSince.orders).toBe(1);
    expect(stale.changedSince.suppressions).toBeGreaterThan(0);

    // A catch-up pass: the erased customer is found in the shards and dropped.
    const caughtUp = (await migrateAll(50)).at(-1);
    expect(caughtUp).toMatchObject({ mode: "catch_up", pruned: 1 });
    const after = await counts();
    expect(after.shards).toEqual(after.d1);
    expect(Object.values(after.changedSince).every((n) => n === 0)).toBe(true);
    expect(await customerOf(shardApi, "account", `${p}-kept`)).toEqual(await customerOf(d1Api, "account", `${p}-kept`));
    expect((await shardApi.lookup("account", `${p}-gone`)).status).toBe(404);
    expect((await shardApi.customer(gone.customerId)).status).toBe(404);
    // The erased email is gone from the witness's order in the shards too, as in D1.
    const sightings = "SELECT source, verified FROM identity_observations WHERE identity_key = ?";
    const inD1Now = (await env.DB.prepare(sightings).bind(witnessed?.key).all()).results;
    expect(await storeRows(sightings, witnessed?.key)).toEqual(inD1Now);
    expect(await storeRows("SELECT key FROM identities WHERE key = ?", witnessed?.key)).toEqual([]);

    // After the switch, an erasure reaches D1's copy as well as the shard, and the catch-up's list of
    // the customers it copied again, which named this one.
    const kept = await customerOf(shardApi, "account", `${p}-kept`);
    const listed = "SELECT count(*) AS n FROM shard_migration_changes WHERE customer_id = ?";
    expect((await env.DB.prepare(listed).bind(kept.customerId).first<{ n: number }>())?.n).toBe(1);
    // The catch-up's copy of the customer is recorded in its shard, as a move in from D1.
    const copies = "SELECT id, customers FROM shard_moves WHERE direction = 'in' AND peer = -1 AND customers LIKE ?";
    expect(await storeRows(copies, `%${kept.customerId}%`)).toHaveLength(1);
    const erasedAfter = await shardApi.call("DELETE", `/v1/customers/${kept.customerId}`, undefined, adminKey);
    expect(erasedAfter.status, await erasedAfter.clone().text()).toBe(200);
    const inD1 = await env.DB.prepare("SELECT count(*) AS n FROM orders WHERE id IN (?, ?)")
      .bind(`${p}-1`, `${p}-2`)
      .first<{ n: number }>();
    expect(inD1?.n).toBe(0);
    expect((await env.DB.prepare(listed).bind(kept.customerId).first<{ n: number }>())?.n).toBe(0);
    expect((await shardApi.lookup("account", `${p}-kept`)).status).toBe(404);
    // Nothing left that names the customer, in any table of any shard or of D1: the catch-up's record of
    // its copy stays (by move id, until the prune) with nothing of it, its name included. (The erasure's
    // own to-do, erasure_scrubs, is done and gone after its later pass: tests/worker/shards/erasure.test.ts.)
    const traces = [kept.customerId, `${p}-kept`, `${p}-2`];
    const left = (await everyTable()).flatMap(([where, rows]) =>
      traces.filter((trace) => JSON.stringify(rows).includes(trace)).map((trace) => `${trace} in ${where}`),
    );
    expect(left).toEqual([]);
  });

  it("goes on from the customer before one erased where an unfinished pass stood, naming it no more", async () => {
    const p = uniquePrefix("mig-cursor");
    await ingest(d1Api, [
      anOrder({ id: `${p}-1`, identifiers: { account: `${p}-a` } }),
      anOrder({ id: `${p}-2`, identifiers: { account: `${p}-b` } }),
    ]);
    await migrateAll(50); // a catch-up, listing both as changed

    // A full pass that last visited the customer: it goes on after the one before it in id order.
    const a = (await customerOf(d1Api, "account", `${p}-a`)).customerId;
    const beforeA = await previous("SELECT max(id) AS id FROM customers WHERE id < ?", a);
    await standAt("full", null, a);
    await erase(a);
    expect(await cursor()).toBe(beforeA);

    // A catch-up copying the customers it listed: it goes on after the listed one before it.
    const b = (await customerOf(d1Api, "account", `${p}-b`)).customerId;
    const beforeB = await previous(
      "SELECT max(customer_id) AS id FROM shard_migration_changes WHERE customer_id < ?",
      b,
    );
    await standAt("catch_up", "copy", b);
    await erase(b);
    expect(await cursor()).toBe(beforeB);

    // A catch-up's prune, on a page of shard 2 that ended with the customer: that shard's pages again.
    const c = (await ingest(d1Api, [anOrder({ id: `${p}-3`, identifiers: { account: `${p}-c` } })])).results[0]
      ?.customerId as string;
    await standAt("catch_up", "prune", `2:${c}`);
    await erase(c);
    expect(await cursor()).toBe("2:");
    expect((await migrateAll(50)).at(-1)).toMatchObject({ done: true });
  });

  it("records the customer before the last one a step visited when an erasure took it after the step read its page", async () => {
    const p = uniquePrefix("mig-race");
    await ingest(d1Api, [
      anOrder({ id: `${p}-1`, identifiers: { account: `${p}-a` } }),
      anOrder({ id: `${p}-2`, identifiers: { account: `${p}-b` } }),
    ]);
    await migrateAll(50); // a catch-up, listing both as changed

    // A full pass's step of one customer: the erasure finds the cursor naming the one before (not erased),
    // and the step, recording after it, goes on from that one too.
    const a = (await customerOf(d1Api, "account", `${p}-a`)).customerId;
    const beforeA = await previous("SELECT max(id) AS id FROM customers WHERE id < ?", a);
    await standAt("full", null, beforeA);
    await stepAround({ shards: 4, limit: 1 }, () => erase(a));
    expect(await cursor()).toBe(beforeA);

    // A catch-up copying the customers it listed: the listed one before.
    const b = (await customerOf(d1Api, "account", `${p}-b`)).customerId;
    const beforeB = await previous(
      "SELECT max(customer_id) AS id FROM shard_migration_changes WHERE customer_id < ?",
      b,
    );
    await standAt("catch_up", "copy", beforeB);
    await stepAround({ shards: 4, limit: 1 }, () => erase(b));
    expect(await cursor()).toBe(beforeB);
    expect((await migrateAll(50)).at(-1)).toMatchObject({ done: true });
  });

  it("goes on in a catch-up's prune after the last customer of a full page that D1 still holds, naming none it dropped", async () => {
    // A full page of shard 0 (1,000 ids, in order by their prefix) whose last customer D1 erased since
    // the shard's copy was taken: the prune drops it, and goes on after the one before it.
    const p = uniquePrefix("mig-prune");
    const seed = (last: number) =>
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${last})
       INSERT INTO customers (id, created_at, updated_at)
       SELECT '${p}-' || printf('%04d', i), '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM n`;
    await env.DB.prepare(seed(998)).run();
    await runInDurableObject(shardStub(env, 0), (_instance, state) => {
      state.storage.sql.exec(seed(999));
    });
    await standAt("catch_up", "prune", `0:${p}-`);
    const step = await migrate(d1Api, { shards: 4, limit: 50 });
    expect(step.status, await step.clone().text()).toBe(200);
    expect(await cursor()).toBe(`0:${p}-0998`);
    const dropped = await runInDurableObject(shardStub(env, 0), (_instance, state) =>
      state.storage.sql.exec("SELECT count(*) AS n FROM customers WHERE id = ?", `${p}-0999`).one(),
    );
    expect(dropped.n).toBe(0);
    expect((await migrateAll(50)).at(-1)).toMatchObject({ done: true });
    await env.DB.prepare("DELETE FROM customers WHERE id LIKE ?").bind(`${p}-%`).run();
    await runInDurableObject(shardStub(env, 0), (_instance, state) => {
      state.storage.sql.exec("DELETE FROM customers WHERE id LIKE ?", `${p}-%`);
    });
  });
});

/** The migration's recorded cursor. */
const cursor = async () =>
  (await env.DB.prepare("SELECT cursor FROM shard_migration WHERE id = 'd1-to-shards'").first<{ cursor: string }>())
    ?.cursor;

/** An unfinished pass, as if it had stopped at `at`. */
const standAt = (mode: string, phase: string | null, at: string | null) =>
  env.DB.prepare(
    "UPDATE shard_migration SET mode = ?, phase = ?, cursor = ?, finished_at = NULL WHERE id = 'd1-to-shards'",
  )
    .bind(mode, phase, at)
    .run();

const previous = async (query: string, id: string) =>
  (await env.DB.prepare(query).bind(id).first<{ id: string | null }>())?.id ?? null;

async function erase(id: string) {
  const erased = await d1Api.call("DELETE", `/v1/customers/${id}`, undefined, adminKey);
  expect(erased.status, await erased.clone().text()).toBe(200);
}

/**
 * A step of the migration run on D1 whose statement recording the step's cursor waits until `meanwhile`
 * has run: it read its page of customers before, and records after.
 */
async function stepAround(body: unknown, meanwhile: () => Promise<void>) {
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const atGate = new Promise<void>((resolve) => (reached = resolve));
  const held = (statement: D1PreparedStatement): D1PreparedStatement =>
    new Proxy(statement, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (property === "bind") return (...args: unknown[]) => held(target.bind(...args));
        if (property === "run")
          return async () => {
            reached();
            await gate;
            return target.run();
          };
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  const db = new Proxy(env.DB, {
    get(target, property) {
      if (property === "prepare")
        return (query: string) =>
          /^\s*UPDATE shard_migration SET cursor =/.test(query) ? held(target.prepare(query)) : target.prepare(query);
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const context = createExecutionContext();
  const stepping = app.fetch(
    new Request("http://patron.test/v1/admin/shards/migrate", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${adminKey}` },
      body: JSON.stringify(body),
    }),
    { ...env, SHARD_COUNT: "0", DB: db },
    context,
  );
  // (A step that fails before recording answers without reaching the gate: its status says why.)
  await Promise.race([atGate, stepping]);
  await meanwhile();
  release();
  const response = await stepping;
  await waitOnExecutionContext(context);
  expect(response.status, await response.clone().text()).toBe(200);
}

/** Every row of every table, by table, in each shard and in D1. */
async function everyTable(): Promise<[string, unknown[]][]> {
  const tablesQuery =
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%' AND name != 'erasure_scrubs'";
  const found: [string, unknown[]][] = [];
  for (const shard of [0, 1, 2, 3])
    await runInDurableObject(shardStub(env, shard), (_instance, state) => {
      for (const { name } of state.storage.sql.exec<{ name: string }>(tablesQuery).toArray())
        found.push([`${name} in shard ${shard}`, state.storage.sql.exec(`SELECT * FROM ${name}`).toArray()]);
    });
  for (const { name } of (await env.DB.prepare(tablesQuery).all<{ name: string }>()).results)
    found.push([`${name} in D1`, (await env.DB.prepare(`SELECT * FROM ${name}`).all()).results]);
  return found;
}
