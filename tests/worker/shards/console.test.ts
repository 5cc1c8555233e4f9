// The console's reads with customer data in four customer shards: one customer's history, shelf and
// export read where the customer is (at the home of `customer:<id>`, forwarded once when a move placed
// it elsewhere), and the lists, segments and transitions fanned out to every shard and merged. Each
// answer is compared with D1's for the same data (the D1 database is still there in this project).
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../../worker/app.ts";
import { customerIdHomedAt, customerKey, homeShard } from "../../../worker/core/shards/placement.ts";
import { transitionsSince } from "../../../worker/jobs/nightly.repo.ts";
import { shardedShopperSample } from "../../../worker/shards/console.ts";
import { customerHistoryIn, customerShelfIn } from "../../../worker/shards/console-shard.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { adminKey, anOrder, apiKey, client, uniquePrefix, verified } from "../../fixtures/builders.ts";
import { d1, moveRegion, type Seeded, seedBoth, shardRows, withShardIds } from "../../fixtures/shard-seed-console.ts";

const api = client(SELF);
const day = 86_400_000;
const now = new Date();
const get = (path: string, key: string | null = adminKey) => api.call("GET", path, undefined, key);

/**
 * The same request answered by the one-database code path of the same worker (SHARD_COUNT=0: customer
 * data read from the D1 database, which holds the same data as the shards here).
 */
const onD1 = (method: string, path: string, body?: unknown) =>
  createApp().request(
    `http://patron.test${path}`,
    {
      method,
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${adminKey}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    },
    { ...env, SHARD_COUNT: "0" },
  );

async function ok<T = { data: Record<string, unknown> }>(path: string, d1 = false): Promise<T> {
  const response = d1 ? await onD1("GET", path) : await get(path);
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as T;
}

const categories = ["coffee", "tea", "snacks"];
const products = categories.flatMap((categoryId, c) =>
  [0, 1, 2].map((n) => ({
    id: `${categoryId}-${n}`,
    title: `${categoryId} ${n}`,
    categoryId,
    categoryName: categoryId,
    url: `https://shop.test/p/${categoryId}-${n}`,
    imageUrl: `https://shop.test/i/${categoryId}-${n}.jpg`,
    listPrice: 10 + c * 5 + n * 3,
    salePrice: null,
    inStock: true,
  })),
);
const line = (categoryId: string, n: number) => ({
  productId: `${categoryId}-${n}`,
  categoryId,
  quantity: 1 + (n % 2),
  unitPrice: 10 + n * 3,
  listPrice: 10 + n * 3,
});

/**
 * One customer's history: web orders under a verified account and email, a store order under a
 * loyalty card (a customer of its own at first), then an order carrying both the account and the card,
 * which merges the store customer into the web one (it has more orders, so it survives on D1 as in the shard).
 */
function history(p: string) {
  const at = (daysAgo: number) => new Date(now.getTime() - daysAgo * day).toISOString();
  const account = `${p}-acct`;
  return {
    first: [
      anOrder({
        id: `${p}-w1`,
        placedAt: at(90),
        identifiers: { account, email: verified(`${p}@mail.test`) },
        lines: [line("coffee", 0), line("tea", 1)],
      }),
      anOrder({ id: `${p}-w2`, placedAt: at(60), identifiers: { account }, lines: [line("coffee", 1)] }),
      anOrder({
        id: `${p}-w3`,
        placedAt: at(30),
        identifiers: { account },
        lines: [line("coffee", 0), line("snacks", 2)],
      }),
      anOrder({
        id: `${p}-s1`,
        channel: "store",
        placedAt: at(20),
        identifiers: { loyalty: verified(`${p}-L`) },
        lines: [line("tea", 2)],
      }),
    ],
    join: [
      anOrder({
        id: `${p}-j1`,
        placedAt: at(10),
        identifiers: { account, loyalty: verified(`${p}-L`) },
        lines: [line("coffee", 2)],
      }),
    ],
  };
}

/**
 * An export compared ids aside: each list in one order (rows read without an ORDER BY come in the
 * order of their random ids) and a summary's revision (a random token per write) left out.
 */
function canonical(exported: Record<string, unknown>) {
  return Object.fromEntries(
    Object.entries(exported).map(([name, rows]) => [
      name,
      (rows as Record<string, unknown>[]).map(({ revision: _, ...row }) => JSON.stringify(row)).sort(),
    ]),
  );
}

interface Customer {
  seeded: Seeded[];
  shard: number;
  /** The survivor in the shard and in D1, and the merged-away store customer in the shard. */
  id: string;
  d1Id: string;
  mergedAway: string;
}

/**
 * One customer's history in D1 and in a shard: at the home of the survivor's id (`home`), or moved to
 * another shard (`away`), whichever shard rule 5 placed it in first (a move as a merge or reshard does).
 */
async function seedCustomer(placement: "home" | "away"): Promise<Customer> {
  const p = uniquePrefix("cons");
  const { first, join } = history(p);
  const before = await seedBoth(first, now);
  const after = await seedBoth(join, now, before.shard);
  const id = after.shardCustomer.get(`${p}-j1`) as string;
  const home = homeShard(customerKey(id), 4);
  const shard = placement === "home" ? home : (home + 1) % 4;
  if (shard !== before.shard)
    await moveRegion(
      before.shard,
      shard,
      [...first, ...join].map((order) => order.id),
      now.toISOString(),
    );
  return {
    seeded: [before, after],
    shard,
    id,
    d1Id: after.d1Customer.get(`${p}-j1`) as string,
    mergedAway: before.shardCustomer.get(`${p}-s1`) as string,
  };
}

// Customers at the home of their id, and moved away from it (a `customer:<id>` entry at the home says where).
let homed: Customer;
let moved: Customer;

beforeAll(async () => {
  expect((await api.postProducts(products)).status).toBe(200);
  homed = await seedCustomer("home");
  moved = await seedCustomer("away");
});

describe("one customer, read where they are", () => {
  it("finds a customer at its id's home and one a move placed elsewhere", async () => {
    const entryOf = (id: string) =>
      shardRows(homeShard(customerKey(id), 4), "SELECT shard FROM shard_directory WHERE key = ?", customerKey(id));
    expect(await entryOf(homed.id)).toEqual([]);
    expect(await entryOf(moved.id)).toEqual([{ shard: moved.shard }]);
    expect(homeShard(customerKey(moved.id), 4)).not.toBe(moved.shard);
    for (const customer of [homed, moved]) {
      expect(await shardRows(customer.shard, "SELECT id FROM customers WHERE id = ?", customer.id)).toHaveLength(1);
      expect(await shardStub(env, homeShard(customerKey(customer.id), 4)).customerHistory(customer.id)).toMatchObject({
        customerId: customer.id,
      });
    }
  });

  it("GET /v1/customers/:id/history answers what D1 answers, for the survivor and a merged-away id", async () => {
    for (const customer of [homed, moved]) {
      const { asOf: _, ...fromD1 } = (await ok(`/v1/customers/${customer.d1Id}/history`, true)).data;
      for (const asked of [customer.id, customer.mergedAway]) {
        const { asOf, ...body } = (await ok(`/v1/customers/${asked}/history`)).data;
        expect(asOf).toEqual(expect.any(String));
        expect(body).toMatchObject({ customerId: customer.id, orders: 5, truncated: false });
        expect(body).toEqual(withShardIds(fromD1, customer.seeded));
      }
      // Asked at the merged-away id's home, as the route asks: the same orders as D1's read.
      const shardRead = await shardStub(env, homeShard(customerKey(customer.mergedAway), 4)).customerHistory(
        customer.mergedAway,
      );
      expect(shardRead).toEqual(withShardIds(await customerHistoryIn(d1, customer.d1Id), customer.seeded));
    }
  });

  it("GET /v1/customers/:id/shelf shows what D1 shows for the same history", async () => {
    for (const customer of [homed, moved]) {
      const at = new Date();
      const fromShard = await shardStub(env, homeShard(customerKey(customer.id), 4)).customerShelf(
        customer.id,
        at.toISOString(),
      );
      expect(fromShard?.shopper?.summary).toBeTruthy();
      expect(fromShard).toEqual(withShardIds(await customerShelfIn(d1, customer.d1Id, at), customer.seeded));

      const query = "limit=6&categories=3";
      const body = (await ok(`/v1/customers/${customer.mergedAway}/shelf?${query}`)).data;
      expect(body).toMatchObject({ customerId: customer.id, storefrontAccount: true, customerKnown: true });
      // Only a personalized shelf surely has items here: the holdout arm's (HOLDOUT_SHARE of accounts) is
      // the population's, and no nightly run has ranked the population in this test.
      if (body.arm === "personalized") expect((body.items as unknown[]).length).toBeGreaterThan(0);
      const fromD1 = (await ok(`/v1/customers/${customer.d1Id}/shelf?${query}`, true)).data;
      expect(body).toEqual(withShardIds(fromD1, customer.seeded));
    }
  });

  it("GET /v1/customers/:id/export lists what D1's export lists, events included", async () => {
    for (const customer of [homed, moved]) {
      // A widget view for the customer in the events database, and one from before it in D1's
      // legacy_events, under each store's customer id.
      for (const id of [customer.id, customer.d1Id])
        for (const table of ["events", "legacy_events"])
          await (table === "events" ? env.EVENTS_DB : env.DB)
            .prepare(
              `INSERT INTO ${table} (type, customer_id, category_id, at, dedupe_key) VALUES ('view', ?, 'coffee', ?, ?)`,
            )
            .bind(id, now.toISOString(), `${id}-${table}-view`)
            .run();
      const { customerId, exportedAt, ...exported } = (await ok(`/v1/customers/${customer.mergedAway}/export`)).data;
      expect(customerId).toBe(customer.id);
      expect(exportedAt).toEqual(expect.any(String));
      const {
        customerId: d1Id,
        exportedAt: _,
        ...fromD1
      } = (await ok(`/v1/customers/${customer.d1Id}/export`, true)).data;
      expect(d1Id).toBe(customer.d1Id);
      expect(canonical(exported)).toEqual(canonical(withShardIds(fromD1, customer.seeded)));
      expect((exported.orders as unknown[]).length).toBe(5);
      expect((exported.customers as unknown[]).length).toBe(2);
      expect((exported.events as unknown[]).length).toBe(2);
    }
  });

  it("answers 404 for an unknown id and 401 without the admin key", async () => {
    for (const path of ["history", "shelf", "export"]) {
      const missing = await get(`/v1/customers/c_00000000000000000000/${path}`);
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
      expect((await get(`/v1/customers/${homed.id}/${path}`, apiKey)).status).toBe(401);
    }
  });
});

describe("rule preview and simulation over the shards", () => {
  const boostSnacks = {
    name: "Snack week",
    action: "boost",
    targetType: "category",
    targetId: "snacks",
    strength: 1000,
  };

  it("POST /v1/admin/rules/preview shows a moved customer's shelves as D1 does", async () => {
    for (const customer of [homed, moved]) {
      const sharded = await api.call(
        "POST",
        "/v1/admin/rules/preview",
        { rule: boostSnacks, customerId: customer.mergedAway },
        adminKey,
      );
      expect(sharded.status, await sharded.clone().text()).toBe(200);
      const d1 = await onD1("POST", "/v1/admin/rules/preview", { rule: boostSnacks, customerId: customer.d1Id });
      expect(d1.status).toBe(200);
      const body = (await sharded.json()) as { data: { customerId: string; before: unknown[] } };
      expect(body.data.customerId).toBe(customer.id);
      expect(body.data.before.length).toBeGreaterThan(0);
      expect(body).toEqual(withShardIds(await d1.json(), customer.seeded));
    }
  });

  it("POST /v1/admin/rules/simulate samples every shard's shoppers and measures what D1 measures", async () => {
    const sharded = await api.call("POST", "/v1/admin/rules/simulate", { rule: boostSnacks, sample: 1000 }, adminKey);
    expect(sharded.status, await sharded.clone().text()).toBe(200);
    const d1 = await onD1("POST", "/v1/admin/rules/simulate", { rule: boostSnacks, sample: 1000 });
    const body = (await sharded.json()) as { data: { shoppers: number } };
    expect(body.data.shoppers).toBeGreaterThanOrEqual(2);
    expect(body).toEqual(await d1.json());
    // A smaller sample is the first shoppers by id over every shard.
    const ids = (await shardedShopperSample(env, 1000, now)).map((row) => row.customerId);
    expect(ids).toEqual([...ids].sort());
    expect((await shardedShopperSample(env, 2, now)).map((row) => row.customerId)).toEqual(ids.slice(0, 2));
  });

  it("answers 404 for an unknown customer", async () => {
    const missing = await api.call(
      "POST",
      "/v1/admin/rules/preview",
      { rule: boostSnacks, customerId: "c_00000000000000000000" },
      adminKey,
    );
    expect(missing.status).toBe(404);
  });
});

// --- lists, segments and transitions: the same score rows in D1 and in the shards ---

const stages = ["active", "fading", "lapsed"];
const tiers = ["top", "high", "medium", "low"];
const sensitivities = [null, "full_price", "mixed", "deal_seeker"];
const lapsedCategory = uniquePrefix("lapsed-cat");
const runId = uniquePrefix("run");
const since = new Date(now.getTime() - 30 * day).toISOString();

/** Scored customers with many ties on each sort (few distinct values), each in the shard its id is homed at. */
function scoreRows(count: number) {
  let seed = 12345;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const hex = () =>
    Math.floor(next() * 2 ** 52)
      .toString(16)
      .padStart(13, "0") +
    Math.floor(next() * 2 ** 32)
      .toString(16)
      .padStart(8, "0");
  return Array.from({ length: count }, (_, i) => {
    const shard = i % 4;
    const id = customerIdHomedAt(shard, 4, hex);
    return {
      shard,
      id,
      clv12: Math.round(next() * 40) * 12.5,
      clv24: Math.round(next() * 80) * 12.5,
      probabilityAlive: Math.round(next() * 10) / 10,
      stage: stages[Math.floor(next() * stages.length)] as string,
      valueTier: tiers[Math.floor(next() * tiers.length)] as string,
      sensitivity: sensitivities[Math.floor(next() * sensitivities.length)] ?? null,
      clvAtStake: Math.round(next() * 8) * 25,
      overdueRatio: Math.round(next() * 6) / 2,
      expectedNextOrderAt: new Date(now.getTime() + Math.round(next() * 5) * day).toISOString().slice(0, 10),
      lapsed: next() < 0.4,
      transition: next() < 0.5,
    };
  });
}

const scored = scoreRows(120);

const scoreInsert = `INSERT INTO customer_scores (customer_id, clv_12, clv_24, probability_alive, stage, value_tier,
  discount_sensitivity, scored_at, run_id, clv_at_stake, overdue_ratio, expected_next_order_at, offer_guidance)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

beforeAll(async () => {
  for (const row of scored) {
    const values = [
      row.id,
      row.clv12,
      row.clv24,
      row.probabilityAlive,
      row.stage,
      row.valueTier,
      row.sensitivity,
      now.toISOString(),
      runId,
      row.clvAtStake,
      row.overdueRatio,
      row.expectedNextOrderAt,
      row.sensitivity === "deal_seeker" ? "deal_driven" : "no_incentive",
    ];
    const statements: [string, unknown[]][] = [[scoreInsert, values]];
    if (row.lapsed)
      statements.push([
        "INSERT INTO customer_category_lapses (customer_id, category_id, run_id, clv_at_stake, overdue_ratio, probability_alive, expected_next_order_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
          row.id,
          lapsedCategory,
          runId,
          row.clvAtStake,
          row.overdueRatio,
          row.probabilityAlive,
          row.expectedNextOrderAt,
        ],
      ]);
    if (row.transition)
      statements.push([
        "INSERT INTO stage_transitions (customer_id, from_stage, to_stage, at, run_id) VALUES (?, ?, ?, ?, ?)",
        [row.id, "active", row.stage, now.toISOString(), runId],
      ]);
    for (const [query, params] of statements) {
      await env.DB.prepare(query)
        .bind(...params)
        .run();
      await shardRows(row.shard, query, ...params);
    }
  }
});

/** Every page of a list, following `next`, from the sharded route or (`d1`) the D1 route. */
async function allPages(query: string, limit: number, d1 = false) {
  const pages: { customers: { customerId: string }[]; sort: string; next: string | null }[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 500; page++) {
    const body: { data: (typeof pages)[number] } = await ok(
      `/v1/admin/customers?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      d1,
    );
    expect(body.data.customers.length).toBeLessThanOrEqual(limit);
    pages.push(body.data);
    cursor = body.data.next;
    if (!cursor) break;
  }
  return pages;
}

describe("GET /v1/admin/customers over four shards", () => {
  const cases: [string, string][] = [
    ["", "-clvAtStake"],
    ["stage=fading", "-overdueRatio"],
    ["valueTier=top", "probabilityAlive"],
    ["discountSensitivity=deal_seeker", "expectedNextOrderAt"],
    [`lapsedCategory=${lapsedCategory}`, "-clvAtStake"],
    [`lapsedCategory=${lapsedCategory}&stage=active`, "overdueRatio"],
  ];
  for (const [query, sort] of cases)
    it(`pages through the same list as D1, cursors included (${query || "no filter"}, sort=${sort})`, async () => {
      const whole = (await allPages(`${query}&sort=${sort}`, 1000, true)).flatMap((page) => page.customers);
      expect(whole.length).toBeGreaterThan(3);
      // One page holding everything, and small pages whose cursor crosses shards: page for page D1's.
      for (const limit of [1000, 7, 3]) {
        const pages = await allPages(`${query}&sort=${sort}`, limit);
        expect(pages).toEqual(await allPages(`${query}&sort=${sort}`, limit, true));
        expect(pages.flatMap((page) => page.customers)).toEqual(whole);
      }
    });

  it("exports the same CSV as D1", async () => {
    const path = "/v1/admin/customers?format=csv&sort=-clvAtStake";
    const response = await get(path);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toBe(await (await onD1("GET", path)).text());
    expect(text.trim().split("\n").length).toBe(scored.length + 1);
  });
});

describe("GET /v1/admin/segments over four shards", () => {
  const cases = [
    { limit: 100, offset: 0 },
    { stage: "active", limit: 5, offset: 0 },
    { valueTier: "high", limit: 4, offset: 3 },
    { stage: "lapsed", discountSensitivity: "mixed", limit: 10, offset: 2 },
  ];
  for (const filter of cases)
    it(`answers what D1 answers for ${JSON.stringify(filter)}`, async () => {
      const query = new URLSearchParams(Object.entries(filter).map(([k, v]) => [k, String(v)])).toString();
      const body = await ok<{ data: { customers: unknown[] } }>(`/v1/admin/segments?${query}`);
      expect(body.data.customers.length).toBeGreaterThan(0);
      expect(body).toEqual(await ok(`/v1/admin/segments?${query}`, true));
    });
});

describe("GET /v1/admin/transitions over four shards", () => {
  it("pages through every shard's transitions once, as D1 lists them (ids aside)", async () => {
    const expected = await transitionsSince(d1, since, 0, 10_000);
    expect(expected.length).toBeGreaterThan(10);
    const seen: { id: number; customerId: string; from: string | null; to: string; at: string; runId: string }[] = [];
    let after = 0;
    for (let page = 0; page < 100; page++) {
      const body: { data: { transitions: typeof seen; next: number | null } } = await ok(
        `/v1/admin/transitions?since=${since}&after=${after}&limit=7`,
      );
      seen.push(...body.data.transitions);
      if (body.data.next === null) break;
      after = body.data.next;
    }
    expect(new Set(seen.map((row) => row.id)).size).toBe(seen.length);
    const key = (row: { customerId: string; from: string | null; to: string; at: string; runId: string }) =>
      JSON.stringify([row.customerId, row.from, row.to, row.at, row.runId]);
    expect(seen.map(key).sort()).toEqual(
      expected
        .map((row) =>
          key({ customerId: row.customer_id, from: row.from_stage, to: row.to_stage, at: row.at, runId: row.run_id }),
        )
        .sort(),
    );
  });
});
