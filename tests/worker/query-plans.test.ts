// The hot paths read along indexes only. Each request below runs through the real app with a D1 binding
// that records every statement it prepares (SQL and bound values); each recorded statement is then
// planned with EXPLAIN QUERY PLAN. A plan step that SCANs a table fails the test, so a change that
// makes a hot read scan fails here. Allowed: SEARCH (an index or the primary key), the json_each of a
// bound list, a CTE or subquery built from indexed reads, and one kind of SCAN: a keyset page, which
// walks an index in the query's ORDER BY and stops at its LIMIT (no sort). On the customer shards (the
// worker-shards project) each shard's own database records too, and a statement a shard ran is planned
// in that shard's SQLite; the nightly job's reads, which run in every shard there, are planned in each.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { type SQL, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import { orderSource } from "../../worker/core/identity/plan.ts";
import { homeShard } from "../../worker/core/shards/placement.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { identityKey } from "../../worker/identity/identity.keys.ts";
import { normalizeForKey } from "../../worker/identity/phone.ts";
import {
  copurchaseQuery,
  countTransitionsQuery,
  fitSampleQuery,
  pairCountsQuery,
  productSalesQuery,
  shopperLabelsQuery,
  transitionSummaryQueries,
  transitionsOfRunQuery,
} from "../../worker/jobs/nightly.repo.ts";
import {
  firstFeedId,
  numberOlderTransitionsQuery,
  transitionsFeedQuery,
} from "../../worker/jobs/transitions-feed.repo.ts";
import { inForceModelsQuery } from "../../worker/models/models.repo.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, apiKey, uniquePrefix, verified } from "../fixtures/builders.ts";
import { dbOf, onEachStorePart, onShard, wrapShardDatabases } from "../fixtures/events-store.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const app = createApp();

interface Recorded {
  sql: string;
  params: unknown[];
  /** The customer shard that ran it; undefined: D1. */
  shard?: number;
}

/** env.DB (or a shard's database), recording each statement that runs (alone or in a batch). */
function recordingDb(real: D1Database, log: Recorded[], shard?: number): D1Database {
  const realOf = new WeakMap<object, D1PreparedStatement>();
  const recordOf = new WeakMap<object, Recorded>();
  const wrap = (statement: D1PreparedStatement, record: Recorded): D1PreparedStatement => {
    const run =
      <T>(call: () => Promise<T>) =>
      () => {
        log.push(record);
        return call();
      };
    const fake = {
      bind: (...values: unknown[]) => wrap(statement.bind(...values), { sql: record.sql, params: values, shard }),
      first: (column?: string) => run(() => statement.first(column as string))(),
      all: () => run(() => statement.all())(),
      raw: (options?: { columnNames?: boolean }) =>
        run(() => statement.raw(options as { columnNames: true }) as Promise<unknown[]>)(),
      run: () => run(() => statement.run())(),
    } as unknown as D1PreparedStatement;
    realOf.set(fake, statement);
    recordOf.set(fake, record);
    return fake;
  };
  return {
    prepare: (sql: string) => wrap(real.prepare(sql), { sql, params: [], shard }),
    batch: (statements: D1PreparedStatement[]) => {
      for (const statement of statements) log.push(recordOf.get(statement) as Recorded);
      return real.batch(statements.map((statement) => realOf.get(statement) ?? statement));
    },
  } as unknown as D1Database;
}

/** Every statement one request runs, in D1 and in the customer shards. */
async function statementsOf(request: Request): Promise<{ status: number; statements: Recorded[] }> {
  const log: Recorded[] = [];
  const restoreShards = await wrapShardDatabases((real, index) => recordingDb(real, log, index));
  try {
    const context = createExecutionContext();
    const response = await app.fetch(request, { ...env, DB: recordingDb(env.DB, log) }, context);
    await response.arrayBuffer();
    await waitOnExecutionContext(context);
    return { status: response.status, statements: log };
  } finally {
    await restoreShards();
  }
}

/** The plan of a recorded statement, in the database that ran it. */
async function planSteps({ sql, params, shard }: Recorded): Promise<string[]> {
  const explain = async (database: D1Database) =>
    (
      await database
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>()
    ).results.map((row) => row.detail);
  return shard === undefined ? explain(env.DB) : onShard(shard, explain);
}

const names = (pattern: RegExp, sql: string) => [...sql.matchAll(pattern)].map((match) => match[1]!.toLowerCase());

/** Plan steps that read a table without an index, or walk one without a LIMIT to stop them. */
async function scansIn(statement: Recorded): Promise<string[]> {
  const { sql } = statement;
  const steps = await planSteps(statement);
  expect(steps.length, `no plan for ${sql}`).toBeGreaterThan(0);
  // Names of CTEs: SCANs of them read what their own (checked) steps produced.
  const ctes = names(/(?:\bWITH(?:\s+RECURSIVE)?|,)\s*(\w+)(?:\s*\([^)]*\))?\s+AS\s*\(/gi, sql);
  const aliases = ctes.flatMap((cte) => names(new RegExp(`\\b${cte}\\s+(?:AS\\s+)?(\\w+)`, "gi"), sql));
  const derived = new Set([...ctes, ...aliases]);
  const keysetPage = /\bORDER BY\b[\s\S]*\bLIMIT\b/i.test(sql) && !steps.some((step) => /FOR ORDER BY/.test(step));
  return steps.filter((step) => {
    const scan = /^SCAN (\S+)/.exec(step);
    if (!scan) return false;
    const target = scan[1]!.toLowerCase();
    if (target === "constant" || target.startsWith("(subquery") || derived.has(target)) return false;
    if (/VIRTUAL TABLE/.test(step)) return false;
    return !(keysetPage && /USING (COVERING )?INDEX/.test(step));
  });
}

async function expectIndexedOnly(label: string, request: Request, status = 200) {
  const { status: answered, statements } = await statementsOf(request);
  expect(answered, label).toBe(status);
  expect(statements.length, `${label}: ran no statement`).toBeGreaterThan(0);
  // On shards the customer reads run there: a recording that missed them would check nothing.
  if (shardCount(env) > 0)
    expect(
      statements.filter((statement) => statement.shard !== undefined).length,
      `${label}: none in a shard`,
    ).toBeGreaterThan(0);
  for (const statement of statements) {
    const scans = await scansIn(statement);
    expect(scans, `${label}: ${statement.sql.replace(/\s+/g, " ").trim()}`).toEqual([]);
  }
}

const admin = { Authorization: `Bearer ${adminKey}` };
const request = (path: string, init: RequestInit = {}) => new Request(`http://patron.test${path}`, init);
/** `POST /v1/orders` of one order. */
const ordersRequest = (order: unknown) =>
  request("/v1/orders", {
    method: "POST",
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ orders: [order] }),
  });
const p = uniquePrefix("plans");
const shoppers = [`${p}-a`, `${p}-b`];
let customerId = "";

beforeAll(async () => {
  const day = 86_400_000;
  const orders = shoppers.flatMap((account, c) =>
    [40, 20, 5].map((daysAgo, k) =>
      anOrder({
        id: `${p}-${c}-${k}`,
        placedAt: new Date(Date.now() - daysAgo * day).toISOString(),
        identifiers: { account },
        lines: [{ productId: `sku-${k}`, categoryId: `cat-${k}`, quantity: 1, unitPrice: 10 + k }],
      }),
    ),
  );
  const post = (path: string, body: unknown, key = apiKey) =>
    app.fetch(
      request(path, {
        method: "POST",
        headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      }),
      env,
      createExecutionContext(),
    );
  expect((await post("/v1/orders", { orders })).status).toBe(200);
  const products = [0, 1, 2].map((k) => ({
    id: `sku-${k}`,
    title: `Item ${k}`,
    categoryId: `cat-${k}`,
    listPrice: 20,
  }));
  expect((await post("/v1/products", { products })).status).toBe(200);
  const run = await post("/v1/admin/jobs/nightly?wait=1", {}, adminKey);
  expect(run.status, await run.clone().text()).toBe(200);
  const [owner] = await storeRows<{ customer_id: string }>("SELECT customer_id FROM orders WHERE id = ?", `${p}-0-0`);
  customerId = owner!.customer_id;
});

describe("hot queries use indexes only", () => {
  it("a known shopper's recommendations", async () => {
    const secret = env.SHOPPER_TOKEN_SECRET;
    const [warm, measured] = await Promise.all(
      shoppers.map((account) => signShopperToken(account, secret, 3600, new Date())),
    );
    // The first request fills the isolate's caches (catalog, models, rules); the second is the hot path.
    await statementsOf(request("/v1/recommendations?limit=8", { headers: { Authorization: `Bearer ${warm}` } }));
    for (const placement of ["home", "buy-again"])
      await expectIndexedOnly(
        `recommendations ${placement}`,
        request(`/v1/recommendations?limit=8&placement=${placement}`, {
          headers: { Authorization: `Bearer ${measured}` },
        }),
      );
  });

  it("a known shopper's view beacon: the shopper's customer and the browse rollup (on shards, the moves out too)", async () => {
    const token = await signShopperToken(shoppers[0]!, env.SHOPPER_TOKEN_SECRET, 3600, new Date());
    const view = { type: "view", productId: "sku-1", categoryId: "cat-1", token };
    await expectIndexedOnly(
      "events",
      request("/v1/events", { method: "POST", headers: { "Content-Type": "text/plain" }, body: JSON.stringify(view) }),
      202,
    );
  });

  it("an identity lookup and a customer's summary", async () => {
    await expectIndexedOnly(
      "lookup",
      request(`/v1/customers/lookup?kind=account&value=${encodeURIComponent(shoppers[0]!)}`, { headers: admin }),
    );
    await expectIndexedOnly("customer", request(`/v1/customers/${customerId}`, { headers: admin }));
  });

  it("the holders of an identifier, for a privacy request: along identity_observations' key index", async () => {
    await expectIndexedOnly(
      "holders",
      request(`/v1/customers/holders?kind=account&value=${encodeURIComponent(shoppers[0]!)}`, { headers: admin }),
    );
  });

  it("the order idempotency check: a replayed batch", async () => {
    const replay = anOrder({ id: `${p}-0-0`, identifiers: { account: shoppers[0]! } });
    await expectIndexedOnly("replayed order", ordersRequest(replay));
  });

  it("a late order (before its customer's last purchase day): the stored day is read along indexes", async () => {
    const late = anOrder({
      id: `${p}-late`,
      placedAt: new Date(Date.now() - 30 * 86_400_000).toISOString(),
      identifiers: { account: shoppers[1]! },
    });
    const { status, statements } = await statementsOf(ordersRequest(late));
    expect(status).toBe(200);
    const dayReads = statements.filter((statement) => /AS "previousDay"/.test(statement.sql));
    expect(dayReads.length, "the late order's day was not read").toBe(1);
    for (const statement of dayReads) expect(await scansIn(statement)).toEqual([]);
    // Folded, not rebuilt: nothing deletes the customer's totals to write them again.
    expect(statements.filter((statement) => /DELETE FROM customer_summaries/.test(statement.sql))).toEqual([]);
  });

  it("an order repeating its customer's identifiers: the repeat is found along indexes, no region walked", async () => {
    const repeat = anOrder({ id: `${p}-repeat`, identifiers: { account: shoppers[0]! } });
    const { status, statements } = await statementsOf(ordersRequest(repeat));
    expect(status).toBe(200);
    const repeatReads = statements.filter((statement) => /LIMIT 1\) AS source/.test(statement.sql));
    expect(repeatReads.length, "the repeat was not looked for").toBe(1);
    for (const statement of repeatReads) expect(await scansIn(statement)).toEqual([]);
    // Nothing walks the region: no read of the observations of every source a key was seen on.
    expect(statements.filter((statement) => /o\.source IN \(\s*SELECT source/.test(statement.sql))).toEqual([]);
  });

  it("an order repeating its customer's email, which more guest orders carried unverified since: still a repeat", async () => {
    const email = `${p}-guest-typed@mail.test`;
    const post = async (order: unknown) => {
      const response = await app.fetch(ordersRequest(order), env, createExecutionContext());
      expect(response.status, await response.clone().text()).toBe(200);
    };
    await post(anOrder({ id: `${p}-own-1`, identifiers: { email: verified(email) } }));
    // More guest orders with the email typed (unverified) than the window of a key's newest observations,
    // all where the customer is (on shards a guest order is placed at its own home; the customer at the
    // email's, as they have no account).
    const count = shardCount(env);
    const normalized = normalizeForKey("email", email);
    if (!normalized.ok) throw new Error(normalized.reason);
    const emailKey = await identityKey("email", normalized.value, env.IDENTITY_HASH_SECRET);
    const guestIds = Array.from({ length: 200 }, (_, n) => `${p}-guest-${n}`)
      .filter((id) => count === 0 || homeShard(orderSource(id), count) === homeShard(emailKey, count))
      .slice(0, 10);
    expect(guestIds).toHaveLength(10);
    for (const id of guestIds) await post(anOrder({ id, identifiers: { email } }));
    const { status, statements } = await statementsOf(
      ordersRequest(anOrder({ id: `${p}-own-2`, identifiers: { email: verified(email) } })),
    );
    expect(status).toBe(200);
    const repeatReads = statements.filter((statement) => /LIMIT 1\) AS source/.test(statement.sql));
    expect(repeatReads.length, "the repeat was not looked for").toBe(1);
    for (const statement of repeatReads) expect(await scansIn(statement)).toEqual([]);
    // Found among the email's verified observations: no region walked.
    expect(statements.filter((statement) => /o\.source IN \(\s*SELECT source/.test(statement.sql))).toEqual([]);
    const [first, second] = await Promise.all(
      [`${p}-own-1`, `${p}-own-2`].map((id) => storeRows("SELECT customer_id FROM orders WHERE id = ?", id)),
    );
    expect(second).toEqual(first);
  });

  it("an email typed unverified on hundreds of orders since its holder's last: the repeat check reads a bounded part of them", async () => {
    const email = `${p}-till-typed@mail.test`;
    const post = async (orders: unknown[]) => {
      const response = await app.fetch(
        request("/v1/orders", {
          method: "POST",
          headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
          body: JSON.stringify({ orders }),
        }),
        env,
        createExecutionContext(),
      );
      expect(response.status, await response.clone().text()).toBe(200);
    };
    await post([anOrder({ id: `${p}-holder-1`, identifiers: { email: verified(email) } })]);
    const count = shardCount(env);
    const normalized = normalizeForKey("email", email);
    if (!normalized.ok) throw new Error(normalized.reason);
    const emailKey = await identityKey("email", normalized.value, env.IDENTITY_HASH_SECRET);
    const typed = Array.from({ length: 2000 }, (_, n) => `${p}-till-${n}`)
      .filter((id) => count === 0 || homeShard(orderSource(id), count) === homeShard(emailKey, count))
      .slice(0, 300);
    expect(typed).toHaveLength(300);
    await post(typed.map((id) => anOrder({ id, identifiers: { email } })));
    const { status, statements } = await statementsOf(
      ordersRequest(anOrder({ id: `${p}-holder-2`, identifiers: { email: verified(email) } })),
    );
    expect(status).toBe(200);
    const [repeatRead, ...more] = statements.filter((statement) => /LIMIT 1\) AS source/.test(statement.sql));
    expect(repeatRead, "the repeat was not looked for").toBeDefined();
    expect(more).toEqual([]);
    // Run again where it ran: what it read, against the 300 observations typed since.
    const { sql: text, params, shard } = repeatRead as Recorded;
    const rowsRead = async (database: D1Database) =>
      (
        await database
          .prepare(text)
          .bind(...params)
          .all()
      ).meta.rows_read;
    const read = shard === undefined ? await rowsRead(env.DB) : await onShard(shard, rowsRead);
    // Two looks among the key's newest 64 observations and the rows of the match (135 here), where a
    // look through every observation since the holder's last read more than the 300 typed.
    expect(read).toBeLessThan(200);
    // Typed on more orders than the check looks among, the holder's order is placed by the walk, to them.
    const [first, second] = await Promise.all(
      [`${p}-holder-1`, `${p}-holder-2`].map((id) => storeRows("SELECT customer_id FROM orders WHERE id = ?", id)),
    );
    expect(second).toEqual(first);
  });

  it("admin customer list pages, first and next", async () => {
    for (const query of ["", "sort=-overdueRatio", "stage=active", "sort=probabilityAlive&limit=1"]) {
      const first = await statementsOf(request(`/v1/admin/customers?${query}`, { headers: admin }));
      expect(first.status).toBe(200);
      await expectIndexedOnly(`list ${query}`, request(`/v1/admin/customers?${query}`, { headers: admin }));
    }
    const page = await app.fetch(
      request("/v1/admin/customers?sort=probabilityAlive&limit=1", { headers: admin }),
      env,
      createExecutionContext(),
    );
    const { next } = ((await page.json()) as { data: { next: string | null } }).data;
    expect(next).toBeTruthy();
    await expectIndexedOnly(
      "list next page",
      request(`/v1/admin/customers?sort=probabilityAlive&limit=1&cursor=${encodeURIComponent(next!)}`, {
        headers: admin,
      }),
    );
  });
});

describe("the imports list (D1 on either store)", () => {
  it("pages newest first along imports_created_idx and tallies each page's batches by import", async () => {
    for (let i = 0; i < 3; i++) {
      const created = await app.fetch(
        request("/v1/imports", {
          method: "POST",
          headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
          body: JSON.stringify({ source: `${p} plan ${i}` }),
        }),
        env,
        createExecutionContext(),
      );
      expect(created.status).toBe(201);
    }
    const imports = { Authorization: `Bearer ${apiKey}` };
    const first = await statementsOf(request("/v1/imports?limit=1", { headers: imports }));
    expect(first.status).toBe(200);
    const page = await app.fetch(request("/v1/imports?limit=1", { headers: imports }), env, createExecutionContext());
    const { next } = ((await page.json()) as { data: { next: string | null } }).data;
    expect(next).toMatch(/^imp_/);
    const second = await statementsOf(request(`/v1/imports?limit=1&before=${next}`, { headers: imports }));
    expect(second.status).toBe(200);
    const listed = [...first.statements, ...second.statements].filter((statement) =>
      /FROM (imports|import_batches)\b/.test(statement.sql),
    );
    expect(listed.length).toBeGreaterThanOrEqual(4);
    for (const statement of listed)
      expect(await scansIn(statement), statement.sql.replace(/\s+/g, " ").trim()).toEqual([]);
  });
});

/**
 * The plans of a nightly read where the job runs it: in D1, or in every customer shard (one plan each,
 * checked alike).
 */
async function plansOf(query: SQL): Promise<string[][]> {
  const plans = await onEachStorePart(async (database) =>
    (await dbOf(database).all<{ detail: string }>(sql`EXPLAIN QUERY PLAN ${query}`)).map((step) => step.detail),
  );
  expect(plans).toHaveLength(Math.max(1, shardCount(env)));
  return plans;
}

describe("the nightly job's fit sample", () => {
  it("reads the first customers along the primary-key index: no sort, no random()", async () => {
    for (const plan of await plansOf(fitSampleQuery(1000)))
      expect(plan).toEqual(["SCAN s USING INDEX sqlite_autoindex_customer_summaries_1"]);
  });

  it("reads a customer shard's next page of it as a range of the primary key", async () => {
    for (const plan of await plansOf(fitSampleQuery(1000, "c_0")))
      expect(plan).toEqual(["SEARCH s USING INDEX sqlite_autoindex_customer_summaries_1 (customer_id>?)"]);
  });
});

describe("the nightly job's bounded reads", () => {
  const readsLinesByOrder = (plan: string[]) =>
    plan.some((step) => /^SEARCH l USING (COVERING )?INDEX sqlite_autoindex_order_lines_1 \(order_id=\?\)/.test(step));

  it("product sales walk orders_placed_idx newest first, stopped by the limit, and read lines by order", async () => {
    for (const plan of await plansOf(productSalesQuery(1000))) {
      expect(plan).toContain("SCAN orders USING COVERING INDEX orders_placed_idx");
      expect(readsLinesByOrder(plan), plan.join("; ")).toBe(true);
      // The only other scan is of the CTE itself; no sort stands between the index walk and its LIMIT.
      const otherScans = plan.filter((step) => /^SCAN /.test(step) && !/orders_placed_idx|^SCAN n$/.test(step));
      expect(otherScans).toEqual([]);
      expect(plan.some((step) => /FOR ORDER BY/.test(step))).toBe(false);
    }
  });

  // Co-purchase counts each pair's shoppers too, so it reads each order's row (by the rowid its
  // orders_placed_idx entry holds) for customer_id: the index is no longer covering, still no scan. Who
  // the shoppers are comes from each order's identifiers (identity_observations by source) and each
  // customer's (identities by customer); the label passing between them reads only its own CTEs.
  const readsShoppersByIndex = (plan: string[]) => {
    expect(plan).toContain("SEARCH ob USING COVERING INDEX sqlite_autoindex_identity_observations_1 (source=?)");
    expect(plan).toContain("SEARCH i USING INDEX identities_customer_idx (customer_id=?)");
    expect(plan.filter((step) => /^SCAN (identity_observations|identities|ob|i)\b/.test(step))).toEqual([]);
  };
  // Each order's shopper is looked up among the shoppers by customer, not found by scanning them.
  const looksShoppersUp = (plan: string[]) =>
    expect(
      plan.some((step) => /^SEARCH s USING .*INDEX \(customer_id=\?\)/.test(step)),
      plan.join("; "),
    ).toBe(true);
  const lastYear = ["2026-01-01T00:00:00.000Z", "2026-12-31T00:00:00.000Z", 1000] as const;

  it("co-purchase reads a range of orders_placed_idx, each order's lines and identifiers by order: no table scan", async () => {
    for (const plan of await plansOf(copurchaseQuery(...lastYear))) {
      expect(plan).toContain("SEARCH orders USING INDEX orders_placed_idx (placed_at>? AND placed_at<?)");
      expect(readsLinesByOrder(plan), plan.join("; ")).toBe(true);
      expect(plan.filter((step) => /^SCAN (orders|order_lines|l|o)\b/.test(step))).toEqual([]);
      readsShoppersByIndex(plan);
      looksShoppersUp(plan);
    }
  });

  it("a customer shard's pair counts and its shoppers' labels read the same way: no table scan", async () => {
    for (const plan of await plansOf(pairCountsQuery(...lastYear))) {
      expect(plan).toContain("SEARCH orders USING INDEX orders_placed_idx (placed_at>? AND placed_at<?)");
      expect(readsLinesByOrder(plan), plan.join("; ")).toBe(true);
      expect(plan.filter((step) => /^SCAN (orders|order_lines|l|o)\b/.test(step))).toEqual([]);
      readsShoppersByIndex(plan);
      looksShoppersUp(plan);
    }
    for (const plan of await plansOf(shopperLabelsQuery(...lastYear))) {
      expect(plan).toContain("SEARCH orders USING INDEX orders_placed_idx (placed_at>? AND placed_at<?)");
      expect(plan.filter((step) => /^SCAN (orders|order_lines|l|o)\b/.test(step))).toEqual([]);
      readsShoppersByIndex(plan);
    }
  });

  it("pages the sharded transitions feed as a range of stage_transitions_feed_idx, and finds unnumbered rows there", async () => {
    for (const plan of await plansOf(transitionsFeedQuery("2026-01-01T00:00:00Z", 10, firstFeedId, 1000)))
      expect(plan).toEqual([
        "SEARCH stage_transitions USING INDEX stage_transitions_feed_idx (feed_id>? AND feed_id<?)",
      ]);
    for (const plan of await plansOf(numberOlderTransitionsQuery(1, 4)))
      expect(plan).toEqual(["SEARCH stage_transitions USING INDEX stage_transitions_feed_idx (feed_id=?)"]);
  });

  it("sums the Overview's stage changes and sorts the newest from the rows since the date, along stage_transitions_at_idx", async () => {
    for (const [column, below] of [
      ["id", Number.MAX_SAFE_INTEGER],
      ["feed_id", firstFeedId],
    ] as const) {
      const [kinds, newest] = transitionSummaryQueries(column, "2026-01-01T00:00:00Z", below, 10);
      for (const plan of await plansOf(kinds))
        expect(plan).toEqual([
          "SEARCH stage_transitions USING INDEX stage_transitions_at_idx (at>?)",
          "USE TEMP B-TREE FOR GROUP BY",
        ]);
      for (const plan of await plansOf(newest))
        expect(plan).toEqual([
          "SEARCH stage_transitions USING INDEX stage_transitions_at_idx (at>?)",
          "USE TEMP B-TREE FOR ORDER BY",
        ]);
    }
  });

  it("counts and pages one run's transitions along stage_transitions_run_id_idx, not every run's", async () => {
    for (const plan of await plansOf(countTransitionsQuery("run-1")))
      expect(plan).toEqual(["SEARCH stage_transitions USING COVERING INDEX stage_transitions_run_id_idx (run_id=?)"]);
    for (const plan of await plansOf(transitionsOfRunQuery("run-1", 10, 1000)))
      expect(plan).toEqual([
        "SEARCH stage_transitions USING INDEX stage_transitions_run_id_idx (run_id=? AND rowid>?)",
      ]);
  });
});

describe("the models in force (each isolate's refresh, once a minute)", () => {
  it("are read with a seek per model on the in-force index, not a scan of every night's fits", async () => {
    const steps = (await drizzle(env.DB).all<{ detail: string }>(sql`EXPLAIN QUERY PLAN ${inForceModelsQuery()}`)).map(
      (step) => step.detail,
    );
    expect(
      steps.some((step) => /SEARCH model_params USING (COVERING )?INDEX model_params_in_force_idx/.test(step)),
    ).toBe(true);
    expect(steps.filter((step) => /^SCAN model_params\b/.test(step))).toEqual([]);
  });
});
