// Widget events in a database of their own (EVENTS_DB): where they land, the browse rollups the shelf
// reads instead (customer_browse), conversions for the holdout read, retention, merges, erasure and
// export across both databases, and the move of a single-database deployment's events. Runs on both
// stores: customer rows (the rollups among them) are read and planted where they live, in D1 or in the
// customer shards (the worker-shards project); events and conversions stay in EVENTS_DB and legacy events in
// D1 on both.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import * as eventsSchema from "../../db/events-schema.ts";
import * as schema from "../../db/schema.ts";
import { jobRunResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { createApp } from "../../worker/app.ts";
import type { Db, EventsDb } from "../../worker/env.ts";
import {
  deleteChunk,
  expireBrowseChunks,
  expireConversionsChunks,
  expireEventsChunks,
} from "../../worker/events/events.upkeep.ts";
import { moveLegacyEventsPage } from "../../worker/events/legacy-events.ts";
import { defaultEventRetentionDays, eventRetentionDays } from "../../worker/events/retention.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { browseWindowStart } from "../../worker/recommendations/recommendations.repo.ts";
import { recommendationsResponseSchema } from "../../worker/recommendations/recommendations.schemas.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../fixtures/builders.ts";
import { stopClock } from "../fixtures/clock.ts";
import { dbOf, onEachStorePart, runWhereCustomerIs } from "../fixtures/events-store.ts";
import { personalizedAccount } from "../fixtures/shoppers.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);
const app = createApp();
/**
 * The app as a deployment on its one D1 database sees it (SHARD_COUNT=0), whichever project runs: the
 * move of legacy events runs there, before a deployment moves to shards (docs/scaling.md).
 */
const singleDatabaseApi = client({
  async fetch(input: string, init?: RequestInit) {
    const context = createExecutionContext();
    const response = await app.fetch(new Request(input, init), { ...env, SHARD_COUNT: "0" }, context);
    await waitOnExecutionContext(context);
    return response;
  },
});
const day = 86_400_000;
const db = drizzle(env.DB, { schema }) as Db;
const eventsDb = drizzle(env.EVENTS_DB, { schema: eventsSchema }) as EventsDb;

const categories = ["garden", "kitchen", "games"];
const products = categories.flatMap((categoryId) =>
  [0, 1, 2, 3, 4, 5].map((n) => ({
    id: `es-${categoryId}-${n}`,
    title: `${categoryId} ${n}`,
    categoryId,
    url: `https://shop.test/p/es-${categoryId}-${n}`,
    listPrice: 10 + n,
  })),
);

async function knownShopper(label: string, through = api) {
  const account = await personalizedAccount(label);
  const response = await through.postOrders(
    [0, 1].map((k) =>
      anOrder({
        id: `${account}-o${k}`,
        placedAt: new Date(Date.now() - (10 + 30 * k) * day).toISOString(),
        identifiers: { account },
        lines: [{ productId: `es-garden-${k}`, categoryId: "garden", quantity: 1, unitPrice: 10, listPrice: 10 }],
      }),
    ),
  );
  expect(response.status, await response.clone().text()).toBe(200);
  const lookup = (await (await through.lookup("account", account)).json()) as { data: { customerId: string } };
  const token = await signShopperToken(account, env.SHOPPER_TOKEN_SECRET, 3600, new Date());
  return { account, customerId: lookup.data.customerId, token };
}

async function shelf(token: string) {
  const response = await SELF.fetch("http://patron.test/v1/recommendations?limit=12", {
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(response.status, await response.clone().text()).toBe(200);
  return recommendationsResponseSchema.parse(await response.json()).data;
}

async function beacon(body: unknown) {
  const response = await SELF.fetch("http://patron.test/v1/events", {
    method: "POST",
    headers: { "Content-Type": "text/plain" },
    body: JSON.stringify(body),
  });
  expect(response.status, await response.clone().text()).toBe(202);
  return ((await response.json()) as { data: { accepted: number; duplicates: number } }).data;
}

async function rows<T>(database: D1Database, query: string, ...values: unknown[]): Promise<T[]> {
  return (
    await database
      .prepare(query)
      .bind(...values)
      .all<T>()
  ).results;
}

const browseQuery =
  "SELECT category_id, sum(views) AS views FROM customer_browse WHERE customer_id = ? GROUP BY category_id ORDER BY category_id";

/** A customer's browse rollup by category, wherever the store keeps it (a customer is in one part). */
const browseOf = (customerId: string) => storeRows<{ category_id: string; views: number }>(browseQuery, customerId);

/** How many of the shelf's items are in the category. */
const itemsIn = (data: { items: { categoryId: string }[] }, categoryId: string) =>
  data.items.filter((item) => item.categoryId === categoryId).length;

beforeAll(async () => {
  expect((await api.postProducts(products)).status).toBe(200);
});

describe("widget events in EVENTS_DB", () => {
  it("stores events in the events database only; the main database has no events table", async () => {
    const shopper = await knownShopper("land");
    expect(
      await beacon({ type: "view", productId: "es-kitchen-0", categoryId: "kitchen", token: shopper.token }),
    ).toEqual(expect.objectContaining({ accepted: 1 }));
    expect(
      await rows(env.EVENTS_DB, "SELECT type, product_id FROM events WHERE customer_id = ?", shopper.customerId),
    ).toEqual([{ type: "view", product_id: "es-kitchen-0" }]);
    expect(await rows(env.DB, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'")).toEqual([]);
    expect(await storeRows("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'")).toEqual([]);
    expect(await rows(env.DB, "SELECT id FROM legacy_events WHERE customer_id = ?", shopper.customerId)).toEqual([]);
  });

  it("rolls new views and clicks up per customer, category and day; a replay adds nothing", async () => {
    const shopper = await knownShopper("rollup");
    const views = ["es-kitchen-1", "es-kitchen-2", "es-games-1"].map((productId) => ({
      type: "view",
      productId,
      categoryId: productId.split("-")[1],
    }));
    // A known customer's view counts once a minute: the retry must come in the same minute.
    stopClock();
    expect(await beacon({ events: views, token: shopper.token })).toMatchObject({ accepted: 3, duplicates: 0 });
    // The same beacon again (a retry), and a repeat inside one batch: duplicates, not views.
    expect(await beacon({ events: [...views, views[0]], token: shopper.token })).toMatchObject({
      accepted: 0,
      duplicates: 4,
    });
    expect(await browseOf(shopper.customerId)).toEqual([
      { category_id: "games", views: 1 },
      { category_id: "kitchen", views: 2 },
    ]);
    expect(
      await rows(env.EVENTS_DB, "SELECT count(*) AS n FROM events WHERE customer_id = ?", shopper.customerId),
    ).toEqual([{ n: 3 }]);
    const [rollup] = await storeRows<{ day: string; last_viewed_at: string }>(
      "SELECT day, last_viewed_at FROM customer_browse WHERE customer_id = ? AND category_id = 'kitchen'",
      shopper.customerId,
    );
    expect(rollup?.day).toBe(rollup?.last_viewed_at.slice(0, 10));
  });

  it("ranks a category the shopper browses higher, from the rollup", async () => {
    const shopper = await knownShopper("ranked");
    const before = await shelf(shopper.token);
    const views = [0, 1, 2, 3, 4, 5].map((n) => ({ type: "view", productId: `es-games-${n}`, categoryId: "games" }));
    expect(await beacon({ events: views, token: shopper.token })).toMatchObject({ accepted: 6 });
    const after = await shelf(shopper.token);
    expect(itemsIn(after, "games")).toBeGreaterThan(itemsIn(before, "games"));

    // The shelf reads the rollup itself: a rollup written without any event moves it the same way.
    const planted = await knownShopper("planted");
    const plain = await shelf(planted.token);
    const now = new Date().toISOString();
    await runWhereCustomerIs(
      planted.customerId,
      "INSERT INTO customer_browse (customer_id, day, category_id, views, last_viewed_at) VALUES (?, ?, 'games', 6, ?)",
      planted.customerId,
      now.slice(0, 10),
      now,
    );
    expect(itemsIn(await shelf(planted.token), "games")).toBeGreaterThan(itemsIn(plain, "games"));
    expect(itemsIn(await shelf(planted.token), "games")).toBe(itemsIn(after, "games"));
  });

  it("moves events and browse rollups to the survivor of a merge", async () => {
    const web = await knownShopper("mergeweb");
    const loyalty = `${web.account}-card`;
    await beacon({ type: "view", productId: "es-kitchen-3", categoryId: "kitchen", token: web.token });
    const store = await api.postOrders(
      [0, 1, 2].map((k) =>
        anOrder({
          id: `${web.account}-store-${k}`,
          channel: "store",
          placedAt: new Date(Date.now() - (5 + k) * day).toISOString(),
          identifiers: { loyalty },
          lines: [{ productId: "es-kitchen-4", categoryId: "kitchen", quantity: 1, unitPrice: 11, listPrice: 11 }],
        }),
      ),
    );
    expect(store.status).toBe(200);
    const storeCustomer = (await (await api.lookup("loyalty", loyalty)).json()) as { data: { customerId: string } };
    await runWhereCustomerIs(
      storeCustomer.data.customerId,
      "INSERT INTO customer_browse (customer_id, day, category_id, views, last_viewed_at) VALUES (?, ?, 'kitchen', 2, ?)",
      storeCustomer.data.customerId,
      new Date().toISOString().slice(0, 10),
      new Date().toISOString(),
    );
    expect((await api.identify({ account: web.account, loyalty })).status).toBe(200);
    const merged = (await (await api.lookup("account", web.account)).json()) as {
      data: { customerId: string; mergedFrom: string[] };
    };
    expect(merged.data.mergedFrom.length).toBeGreaterThan(0);
    const survivor = merged.data.customerId;
    const gone = [web.customerId, storeCustomer.data.customerId].find((id) => id !== survivor) as string;
    expect(await browseOf(survivor)).toEqual([{ category_id: "kitchen", views: 3 }]);
    expect(await browseOf(gone)).toEqual([]);
    expect(
      await rows(
        env.EVENTS_DB,
        "SELECT customer_id FROM events WHERE product_id = 'es-kitchen-3' AND type = 'view' AND customer_id IN (?, ?)",
        survivor,
        gone,
      ),
    ).toEqual([{ customer_id: survivor }]);
  });
});

describe("conversions", () => {
  it("records an attributed order once in the events database, and again after a lost write", async () => {
    const shopper = await knownShopper("convert");
    const served = await shelf(shopper.token);
    const item = served.items[0] as { id: string; categoryId: string };
    const order = anOrder({
      id: `${shopper.account}-bought`,
      placedAt: new Date().toISOString(),
      identifiers: { account: shopper.account },
      recommendationId: served.recommendationId,
      lines: [{ productId: item.id, categoryId: item.categoryId, quantity: 2, unitPrice: 7.5, listPrice: 7.5 }],
    });
    const conversions = () =>
      rows(env.EVENTS_DB, "SELECT order_id, recommendation_id, total FROM conversions WHERE order_id = ?", order.id);
    expect((await api.postOrders([order])).status).toBe(200);
    const expected = [{ order_id: order.id, recommendation_id: served.recommendationId, total: 15 }];
    expect(await conversions()).toEqual(expected);
    expect((await api.postOrders([order])).status).toBe(200);
    expect(await conversions()).toEqual(expected);
    // As if the process died between the two databases' writes: the client's resend records it.
    await env.EVENTS_DB.prepare("DELETE FROM conversions WHERE order_id = ?").bind(order.id).run();
    expect((await api.postOrders([order])).status).toBe(200);
    expect(await conversions()).toEqual(expected);
    // An order without an attribution records nothing.
    const plain = anOrder({ id: `${shopper.account}-plain`, identifiers: { account: shopper.account } });
    expect((await api.postOrders([plain])).status).toBe(200);
    expect(await rows(env.EVENTS_DB, "SELECT 1 FROM conversions WHERE order_id = ?", plain.id)).toEqual([]);
  });
});

describe("retention", () => {
  it("reads EVENT_RETENTION_DAYS, keeping the default for a malformed value and the floor for a short one", () => {
    const windows = { eventWindowDays: 7, orderWindowDays: 30 };
    expect(eventRetentionDays(undefined, windows)).toBe(defaultEventRetentionDays);
    expect(eventRetentionDays("730", windows)).toBe(730);
    expect(eventRetentionDays("soon", windows)).toBe(defaultEventRetentionDays);
    expect(eventRetentionDays("12.5", windows)).toBe(defaultEventRetentionDays);
    expect(eventRetentionDays("-3", windows)).toBe(defaultEventRetentionDays);
    // The console's longest holdout window (90 days) plus both attribution windows.
    expect(eventRetentionDays("10", windows)).toBe(127);
    expect(eventRetentionDays("127", windows)).toBe(127);
    expect(eventRetentionDays("10", { eventWindowDays: 14, orderWindowDays: 90 })).toBe(194);
  });

  it("deletes expired events, conversions and browse days in chunks and keeps the rest", async () => {
    const p = uniquePrefix("ret");
    const now = Date.now();
    // A cutoff far enough back that no other test's rows are older.
    const cutoff = new Date(now - 3000 * day).toISOString();
    const at = (days: number) => new Date(now - days * day).toISOString();
    const expired = deleteChunk + 3;
    const insert = env.EVENTS_DB.prepare(
      "INSERT INTO events (type, customer_id, product_id, category_id, at, dedupe_key) VALUES ('view', ?, 'p', 'c', ?, ?)",
    );
    const statements = [
      ...Array.from({ length: expired }, (_, i) => insert.bind(`${p}-old`, at(3001 + (i % 5)), `${p}-old-${i}`)),
      insert.bind(`${p}-kept`, at(2999), `${p}-kept-1`),
      insert.bind(`${p}-kept`, at(1), `${p}-kept-2`),
      env.EVENTS_DB.prepare(
        "INSERT INTO conversions (order_id, recommendation_id, total, at) VALUES (?, 'r', 1, ?)",
      ).bind(`${p}-old-order`, at(3010)),
      env.EVENTS_DB.prepare(
        "INSERT INTO conversions (order_id, recommendation_id, total, at) VALUES (?, 'r', 1, ?)",
      ).bind(`${p}-new-order`, at(2)),
    ];
    for (let i = 0; i < statements.length; i += 1000) await env.EVENTS_DB.batch(statements.slice(i, i + 1000));

    expect(await expireEventsChunks(eventsDb, cutoff)).toEqual({ deleted: expired, done: true });
    expect(await expireConversionsChunks(eventsDb, cutoff)).toEqual({ deleted: 1, done: true });
    expect(await rows(env.EVENTS_DB, "SELECT count(*) AS n FROM events WHERE customer_id = ?", `${p}-old`)).toEqual([
      { n: 0 },
    ]);
    expect(
      await rows(env.EVENTS_DB, "SELECT dedupe_key FROM events WHERE customer_id = ? ORDER BY 1", `${p}-kept`),
    ).toEqual([{ dedupe_key: `${p}-kept-1` }, { dedupe_key: `${p}-kept-2` }]);
    expect(await rows(env.EVENTS_DB, "SELECT order_id FROM conversions WHERE order_id LIKE ?", `${p}-%`)).toEqual([
      { order_id: `${p}-new-order` },
    ]);

    // Browse days before the window go; the window's first day stays. The rollups are customer data:
    // the job expires them in D1, or in each shard's own database (nightlyExpireBrowse), with this function.
    const windowStart = browseWindowStart(new Date(now));
    const dayBefore = new Date(Date.parse(windowStart) - day).toISOString().slice(0, 10);
    const parts = await onEachStorePart(async (database) => {
      const browse = database.prepare(
        "INSERT INTO customer_browse (customer_id, day, category_id, views, last_viewed_at) VALUES (?, ?, 'c', 1, ?)",
      );
      await database.batch([
        browse.bind(`${p}-b`, dayBefore, `${dayBefore}T12:00:00.000Z`),
        browse.bind(`${p}-b`, windowStart, `${windowStart}T12:00:00.000Z`),
      ]);
      const result = await expireBrowseChunks(dbOf(database), windowStart);
      const left = await rows(database, "SELECT day FROM customer_browse WHERE customer_id = ?", `${p}-b`);
      return { result, left };
    });
    expect(parts).toHaveLength(Math.max(1, shardCount(env)));
    for (const { result, left } of parts) {
      expect(result.done).toBe(true);
      expect(result.deleted).toBeGreaterThanOrEqual(1);
      expect(left).toEqual([{ day: windowStart }]);
    }
  });
});

/** The database, recording the SQL and values of every statement run through it. */
function recording(real: D1Database, log: { sql: string; params: unknown[] }[]): D1Database {
  return {
    prepare: (query: string) => {
      const statement = real.prepare(query);
      return {
        bind: (...params: unknown[]) => {
          const bound = statement.bind(...params);
          return {
            run: () => {
              log.push({ sql: query, params });
              return bound.run();
            },
          };
        },
      };
    },
  } as unknown as D1Database;
}

/** The plan steps of a statement that touch a table without an index: none is allowed. */
async function scans(database: D1Database, statement: { sql: string; params: unknown[] }) {
  const { results } = await database
    .prepare(`EXPLAIN QUERY PLAN ${statement.sql}`)
    .bind(...statement.params)
    .all<{ detail: string }>();
  // No plan at all would pass as "no scan": each part must answer one.
  expect(results.length, `no plan for ${statement.sql}`).toBeGreaterThan(0);
  return results.map((row) => row.detail).filter((detail) => /^SCAN (?!json_each)/.test(detail));
}

describe("upkeep reads along indexes", () => {
  it("deletes expired events, conversions and browse days by index, never by a scan", async () => {
    const eventsLog: { sql: string; params: unknown[] }[] = [];
    const recordedEvents = drizzle(recording(env.EVENTS_DB, eventsLog), { schema: eventsSchema }) as EventsDb;
    const cutoff = new Date(Date.now() - 5000 * day).toISOString();
    await expireEventsChunks(recordedEvents, cutoff);
    await expireConversionsChunks(recordedEvents, cutoff);
    expect(eventsLog).toHaveLength(2);
    for (const statement of eventsLog) expect(await scans(env.EVENTS_DB, statement), statement.sql).toEqual([]);
    // The browse days are planned where they are deleted: in D1, or in each shard's own SQLite.
    const parts = await onEachStorePart(async (database) => {
      const mainLog: { sql: string; params: unknown[] }[] = [];
      await expireBrowseChunks(dbOf(recording(database, mainLog)), "2000-01-01");
      return { mainLog, scans: await Promise.all(mainLog.map((statement) => scans(database, statement))) };
    });
    expect(parts).toHaveLength(Math.max(1, shardCount(env)));
    for (const part of parts) {
      expect(part.mainLog).toHaveLength(1);
      expect(part.scans, part.mainLog[0]?.sql).toEqual([[]]);
    }
  });
});

describe("erasure and export", () => {
  it("export lists events, conversions and browse rollups; erasure deletes them from both databases", async () => {
    const shopper = await knownShopper("erase");
    const served = await shelf(shopper.token);
    const item = served.items[0] as { id: string; categoryId: string };
    await beacon({
      events: [
        { type: "impression", recommendationId: served.recommendationId, productId: item.id },
        { type: "click", recommendationId: served.recommendationId, productId: item.id, categoryId: item.categoryId },
      ],
      token: shopper.token,
    });
    const order = anOrder({
      id: `${shopper.account}-rec`,
      placedAt: new Date().toISOString(),
      identifiers: { account: shopper.account },
      recommendationId: served.recommendationId,
      lines: [{ productId: item.id, categoryId: item.categoryId, quantity: 1, unitPrice: 9, listPrice: 9 }],
    });
    expect((await api.postOrders([order])).status).toBe(200);
    // A row from before the events database, not moved yet.
    await env.DB.prepare(
      "INSERT INTO legacy_events (type, customer_id, product_id, category_id, at, dedupe_key) VALUES ('view', ?, 'es-games-0', 'games', ?, ?)",
    )
      .bind(shopper.customerId, new Date(Date.now() - 3 * day).toISOString(), `${shopper.account}-legacy`)
      .run();

    const exported = await api.call("GET", `/v1/customers/${shopper.customerId}/export`, undefined, adminKey);
    expect(exported.status).toBe(200);
    const { data } = (await exported.json()) as {
      data: {
        events: { type: string; productId: string }[];
        conversions: { orderId: string; total: number }[];
        browse: { categoryId: string; views: number }[];
      };
    };
    expect(data.events.map((event) => event.type).sort()).toEqual(["click", "impression", "view"]);
    expect(data.conversions).toEqual([expect.objectContaining({ orderId: order.id, total: 9 })]);
    expect(data.browse).toEqual([expect.objectContaining({ categoryId: item.categoryId, views: 1 })]);

    const erased = await api.call("DELETE", `/v1/customers/${shopper.customerId}`, undefined, adminKey);
    expect(erased.status).toBe(200);
    const { deleted } = ((await erased.json()) as { data: { deleted: Record<string, number> } }).data;
    expect(deleted).toMatchObject({ events: 3, conversions: 1, customer_browse: 1 });
    expect(await rows(env.EVENTS_DB, "SELECT 1 FROM events WHERE customer_id = ?", shopper.customerId)).toEqual([]);
    expect(await rows(env.EVENTS_DB, "SELECT 1 FROM conversions WHERE order_id = ?", order.id)).toEqual([]);
    expect(await rows(env.DB, "SELECT 1 FROM legacy_events WHERE customer_id = ?", shopper.customerId)).toEqual([]);
    expect(await browseOf(shopper.customerId)).toEqual([]);
    // Retrying the erasure finds nothing left to erase.
    expect((await api.call("DELETE", `/v1/customers/${shopper.customerId}`, undefined, adminKey)).status).toBe(404);
  });
});

describe("events from a single-database deployment", () => {
  // A deployment's legacy events are moved while its customers are in D1, before it moves to shards (the
  // nightly job over shards skips the move, below): so on both projects the customer is D1's here.
  const singleDatabaseBrowseOf = (customerId: string) =>
    rows<{ category_id: string; views: number }>(env.DB, browseQuery, customerId);

  it("moves legacy_events into EVENTS_DB page by page, rolling recent browsing up once, even when rerun", async () => {
    const shopper = await knownShopper("legacy", singleDatabaseApi);
    const p = uniquePrefix("leg");
    const now = new Date();
    const at = (days: number) => new Date(now.getTime() - days * day).toISOString();
    const legacy = env.DB.prepare(
      "INSERT INTO legacy_events (type, recommendation_id, arm, customer_id, product_id, category_id, at, dedupe_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    await env.DB.batch([
      legacy.bind("view", null, null, shopper.customerId, "es-kitchen-5", "kitchen", at(2), `${p}-v1`),
      legacy.bind(
        "click",
        "rid-legacy",
        "personalized",
        shopper.customerId,
        "es-kitchen-5",
        "kitchen",
        at(2),
        `${p}-c1`,
      ),
      legacy.bind("view", null, null, shopper.customerId, "es-games-5", "games", at(5), `${p}-v2`),
      legacy.bind(
        "impression",
        "rid-legacy",
        "personalized",
        shopper.customerId,
        "es-kitchen-5",
        null,
        at(2),
        `${p}-i1`,
      ),
      // Older than the browse window: moved, not rolled up.
      legacy.bind("view", null, null, shopper.customerId, "es-games-4", "games", at(90), `${p}-v3`),
      // Older than retention: dropped.
      legacy.bind("view", null, null, shopper.customerId, "es-games-3", "games", at(900), `${p}-v4`),
    ]);
    // As if a run stopped after copying a row but before deleting it from legacy_events.
    await env.EVENTS_DB.prepare(
      "INSERT INTO events (type, customer_id, product_id, category_id, at, dedupe_key) VALUES ('view', ?, 'es-kitchen-5', 'kitchen', ?, ?)",
    )
      .bind(shopper.customerId, at(2), `${p}-v1`)
      .run();

    const retainSince = at(defaultEventRetentionDays);
    // Small pages until none is left (another test's nightly run may move some of them meanwhile).
    while ((await moveLegacyEventsPage(db, eventsDb, now, retainSince, 2)) > 0);
    expect(await rows(env.DB, "SELECT 1 FROM legacy_events WHERE dedupe_key LIKE ?", `${p}-%`)).toEqual([]);
    expect(
      await rows(
        env.EVENTS_DB,
        "SELECT dedupe_key, type, arm FROM events WHERE dedupe_key LIKE ? ORDER BY 1",
        `${p}-%`,
      ),
    ).toEqual([
      { dedupe_key: `${p}-c1`, type: "click", arm: "personalized" },
      { dedupe_key: `${p}-i1`, type: "impression", arm: "personalized" },
      { dedupe_key: `${p}-v1`, type: "view", arm: null },
      { dedupe_key: `${p}-v2`, type: "view", arm: null },
      { dedupe_key: `${p}-v3`, type: "view", arm: null },
    ]);
    expect(await singleDatabaseBrowseOf(shopper.customerId)).toEqual([
      { category_id: "games", views: 1 },
      { category_id: "kitchen", views: 2 },
    ]);
    // Nothing left: another pass moves and adds nothing.
    expect(await moveLegacyEventsPage(db, eventsDb, now, retainSince)).toBeGreaterThanOrEqual(0);
    expect(await singleDatabaseBrowseOf(shopper.customerId)).toEqual([
      { category_id: "games", views: 1 },
      { category_id: "kitchen", views: 2 },
    ]);
  });

  it("the nightly job applies retention, and moves legacy events on the one database only", async () => {
    const p = uniquePrefix("nightly");
    const now = Date.now();
    await env.DB.prepare(
      "INSERT INTO legacy_events (type, customer_id, product_id, category_id, at, dedupe_key) VALUES ('view', NULL, 'p', 'c', ?, ?)",
    )
      .bind(new Date(now - 3 * day).toISOString(), `${p}-moved`)
      .run();
    await env.EVENTS_DB.prepare(
      "INSERT INTO events (type, customer_id, product_id, category_id, at, dedupe_key) VALUES ('view', NULL, 'p', 'c', ?, ?)",
    )
      .bind(new Date(now - (defaultEventRetentionDays + 5) * day).toISOString(), `${p}-expired`)
      .run();
    const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ asOf: new Date(now).toISOString() }),
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const run = jobRunResponseSchema.parse(await response.json()).data;
    expect(run.status).toBe("done");
    expect(run.detail).toMatchObject({ events: { retentionDays: defaultEventRetentionDays, complete: true } });
    const moved = await rows(env.EVENTS_DB, "SELECT dedupe_key FROM events WHERE dedupe_key LIKE ?", `${p}-%`);
    const left = await rows(env.DB, "SELECT dedupe_key FROM legacy_events WHERE dedupe_key LIKE ?", `${p}-%`);
    if (shardCount(env) === 0) {
      expect(moved).toEqual([{ dedupe_key: `${p}-moved` }]);
      expect(left).toEqual([]);
    } else {
      // Over shards the move is skipped (its rollup would go to D1, which no request reads then): the row
      // stays in D1's legacy_events, where export and erasure find it; the expired event is deleted all the same.
      expect(run.detail).toMatchObject({ events: { movedLegacyEvents: 0 } });
      expect(moved).toEqual([]);
      expect(left).toEqual([{ dedupe_key: `${p}-moved` }]);
    }
  });

  it("a run dated ahead of today keeps today's events: retention counts back from the wall clock then", async () => {
    const p = uniquePrefix("ahead");
    const now = Date.now();
    await env.EVENTS_DB.prepare(
      "INSERT INTO events (type, customer_id, product_id, category_id, at, dedupe_key) VALUES ('view', NULL, 'p', 'c', ?, ?)",
    )
      .bind(new Date(now - 10 * day).toISOString(), `${p}-recent`)
      .run();
    const asOf = new Date(now + 2 * 365 * day).toISOString();
    const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ asOf }),
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const run = jobRunResponseSchema.parse(await response.json()).data;
    expect(run.status).toBe("done");
    const { retainSince } = (run.detail as { events: { retainSince: string } }).events;
    expect(Date.parse(retainSince)).toBeLessThanOrEqual(now - (defaultEventRetentionDays - 1) * day);
    expect(await rows(env.EVENTS_DB, "SELECT dedupe_key FROM events WHERE dedupe_key LIKE ?", `${p}-%`)).toEqual([
      { dedupe_key: `${p}-recent` },
    ]);
  });
});
