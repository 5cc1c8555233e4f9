// The nightly job over four customer shards (SHARD_COUNT=4) gives what it gives on the one D1
// database for the same orders: the same models, ranking statistics, co-purchase table and
// diagnostics, and for every customer the same stored labels, with figures within the score-change
// tolerances. The same orders are ingested into D1 and, each customer's orders into one shard, into
// the shards; the D1 run is the single database's own steps, the sharded run the real Workflow.
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, inject, it, vi } from "vitest";
import * as schema from "../../../db/schema.ts";
import { jobRunResponseSchema } from "../../../worker/admin/admin.schemas.ts";
import { listCustomers } from "../../../worker/admin/customer-lists.repo.ts";
import { listedCustomerView } from "../../../worker/admin/customer-rows.ts";
import { audienceListFilter } from "../../../worker/audiences/audiences.repo.ts";
import {
  type AudienceFilters,
  audienceResponseSchema,
  audienceWebhookPayloadSchema,
  audienceWithSecretResponseSchema,
} from "../../../worker/audiences/audiences.schemas.ts";
import type { AudienceSyncSummary } from "../../../worker/audiences/audiences.sync.ts";
import { fitPopulationModels, type PopulationModels } from "../../../worker/core/profile/population-models.ts";
import { createPopulationBuilder, type PopulationStats } from "../../../worker/core/ranking/population.ts";
import { shareOf } from "../../../worker/core/shards/nightly-merge.ts";
import type { Db } from "../../../worker/env.ts";
import { retailerTimeZone } from "../../../worker/http/config.ts";
import { catalogProducts, finishRunStep, jobRun, startRunStep } from "../../../worker/jobs/nightly.repo.ts";
import { d1NightlyStore } from "../../../worker/jobs/nightly.store.ts";
import type { StoredDiagnostics } from "../../../worker/models/diagnostics.repo.ts";
import { modelsById } from "../../../worker/models/models.repo.ts";
import { ingestOrders } from "../../../worker/orders/ingest.ts";
import { type OrderInput, orderSchema } from "../../../worker/orders/orders.schemas.ts";
import { attributionSettings } from "../../../worker/recommendations/attribution.ts";
import { type NightlyBounds, nightlyBounds, shardedNightlyStore } from "../../../worker/shards/nightly.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { adminKey, anOrder } from "../../fixtures/builders.ts";
import type { ReceivedRequest } from "../../fixtures/webhook-receiver.types.ts";

const db = drizzle(env.DB, { schema }) as Db;
const day = 86_400_000;
const customers = 96;
const shards = 4;
const pageSize = 10;
const asOf = new Date(Date.UTC(2026, 5, 1));
const nextDay = new Date(asOf.getTime() + day);

/** Customer `c`'s orders: regulars still buying, regulars who stopped, one-time buyers; two products an order. */
function ordersOf(c: number): OrderInput[] {
  const interval = 9 + (c % 7) * 6;
  const stopped = c % 3 === 0;
  const count = c % 10 === 9 ? 1 : 3 + (c % 5);
  const last = asOf.getTime() - (stopped ? interval * 4 : interval * 0.4) * day;
  return Array.from({ length: count }, (_, k) =>
    orderSchema.parse(
      anOrder({
        id: `shard-night-${c}-${k}`,
        channel: k % 2 ? "store" : "web",
        placedAt: new Date(last - (count - 1 - k) * interval * day).toISOString(),
        identifiers: { loyalty: `SHARD-NIGHT-${c}` },
        lines: [
          { productId: `p-${c % 6}`, categoryId: `cat-${c % 4}`, quantity: 1, unitPrice: 15 + (c % 40) },
          { productId: `p-${(c + k) % 6}`, categoryId: `cat-${(c + k) % 4}`, quantity: 1, unitPrice: 8 + k },
        ],
      }),
    ),
  );
}

/** Customers of shard `i`: every fourth, so each shard holds whole customers. */
const customersOfShard = (i: number) => Array.from({ length: customers }, (_, c) => c).filter((c) => c % shards === i);

/**
 * `crypto.randomUUID` as a counter, from `start`: customer ids (its first 20 hex digits) then grow with
 * the order customers are created in.
 */
function countedIds(start: number) {
  let next = start;
  return vi.spyOn(crypto, "randomUUID").mockImplementation(() => {
    const hex = `${(next++).toString(16).padStart(12, "0")}${"0".repeat(20)}`;
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` as ReturnType<
      typeof crypto.randomUUID
    >;
  });
}

/**
 * The same orders into D1 and into the shards, one customer at a time in the same order, with the same
 * run of counted ids: customer ids grow with the customer's number in both stores (today they are even
 * the same), so the fit samples, in id order, are the same rows in the same order and every result can
 * be compared exactly (with random ids the sums over the same customers run in another order and
 * differ in their last bits). Customers are matched across the stores by their identity key.
 */
async function seed() {
  const ids = countedIds(1);
  try {
    for (let c = 0; c < customers; c++) {
      const outcome = await ingestOrders(db, env.IDENTITY_HASH_SECRET, ordersOf(c), asOf, attributionSettings(env));
      expect(outcome.kind).toBe("ingested");
    }
    ids.mockRestore();
    countedIds(1);
    for (let c = 0; c < customers; c++) {
      const outcome = await shardStub(env, c % shards).ingest(ordersOf(c), asOf.toISOString());
      expect(outcome.kind).toBe("ingested");
    }
  } finally {
    vi.restoreAllMocks();
  }
}

type Row = Record<string, string | number | null>;

/** Rows of `query` in shard `i`. */
function inShard(i: number, query: string, ...params: (string | number)[]): Promise<Row[]> {
  return runInDurableObject(
    shardStub(env, i),
    (_instance, state) => state.storage.sql.exec(query, ...params).toArray() as Row[],
  );
}

/** Rows of `query` in every shard, concatenated. */
async function inShards(query: string, ...params: (string | number)[]): Promise<Row[]> {
  return (await Promise.all(Array.from({ length: shards }, (_, i) => inShard(i, query, ...params)))).flat();
}

async function inD1(query: string, ...params: (string | number)[]): Promise<Row[]> {
  return (
    await env.DB.prepare(query)
      .bind(...params)
      .all<Row>()
  ).results;
}

/**
 * Each customer's stored score and lapsed categories, by loyalty identity key (customer ids are drawn
 * at random by each store, the keys are the same).
 */
const scoresQuery = `
  SELECT i.key, s.*, (SELECT group_concat(category_id) FROM (
    SELECT category_id FROM customer_category_lapses l WHERE l.customer_id = s.customer_id ORDER BY category_id)) AS lapsed
  FROM customer_scores s JOIN identities i ON i.customer_id = s.customer_id`;

const byKey = (rows: Row[]) => new Map(rows.map((row) => [String(row.key), row]));

/** A stored score without the run that wrote it (the two stores' runs have different ids) or the customer id. */
const scoreOf = (row: Row | undefined) => {
  if (!row) return row;
  const { run_id: _runId, customer_id: _customerId, ...score } = row;
  return score;
};

/**
 * Every customer's stored score, lapsed categories included, equal in both stores. The fits are the
 * same (seed), so the figures are equal too, not only the labels.
 */
function expectSameScores(d1Rows: Row[], shardRows: Row[]) {
  const d1 = byKey(d1Rows);
  const sharded = byKey(shardRows);
  expect(sharded.size).toBe(customers);
  expect([...sharded.keys()].sort()).toEqual([...d1.keys()].sort());
  for (const [key, row] of d1) expect(scoreOf(sharded.get(key)), key).toEqual(scoreOf(row));
}

/** The single database's run, step by step as the Workflow runs it over D1. */
async function d1Run(runId: string, at: Date) {
  const store = d1NightlyStore(db);
  await startRunStep(db, runId, at);
  const fit = await store.fitCustomerModels(at);
  const population = await store.fitPopulation(at);
  const pairs = await store.copurchase(at);
  const models = await modelsById<PopulationModels>(db, fit.id);
  const stats = await modelsById<PopulationStats>(db, population.id);
  let cursor = "";
  let scored = 0;
  for (;;) {
    const result = await store.scorePage(0, {
      models,
      population: stats,
      cursor,
      pageSize,
      runId,
      now: at,
      timeZone: retailerTimeZone(env.RETAILER_TIME_ZONE),
      scoredBefore: scored,
    });
    scored += result.scored;
    if (!result.nextCursor) break;
    cursor = result.nextCursor;
  }
  const diagnostics = await store.diagnostics(at, models);
  const result = { fit, population, pairs, diagnostics, scored, transitions: await store.countTransitions(runId) };
  await finishRunStep(db, runId, result, new Date());
  return result;
}

/** The real Workflow, started through the admin route (SHARD_COUNT=4: over the shards). */
async function shardedRun(at: Date, params: { audiencePageSize?: number } = {}) {
  const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ asOf: at.toISOString(), pageSize, ...params }),
  });
  expect(response.status, await response.clone().text()).toBe(200);
  const run = jobRunResponseSchema.parse(await response.json()).data;
  expect(run.status, JSON.stringify(run)).toBe("done");
  return run as typeof run & {
    detail: Awaited<ReturnType<typeof d1Run>> & {
      arrivals: number;
      events: Record<string, unknown>;
      audiences: AudienceSyncSummary;
    };
  };
}

const pairsQuery = "SELECT product_id, other_id, orders FROM product_pairs ORDER BY product_id, other_id";

describe("the nightly job over customer shards", () => {
  let reference: Awaited<ReturnType<typeof d1Run>>;
  let d1Scores: Row[];
  let d1Pairs: Row[];
  let d1Transitions: Row[];
  let run: Awaited<ReturnType<typeof shardedRun>>;

  beforeAll(async () => {
    await seed();
    reference = await d1Run("d1-first", asOf);
    d1Scores = await inD1(scoresQuery);
    d1Pairs = await inD1(pairsQuery);
    d1Transitions = await inD1(
      "SELECT i.key, t.from_stage, t.to_stage FROM stage_transitions t JOIN identities i ON i.customer_id = t.customer_id WHERE t.run_id = ?",
      "d1-first",
    );
    // Recomputed by the sharded run: what it writes is what is compared.
    await env.DB.prepare("DELETE FROM product_pairs").run();
    run = await shardedRun(asOf);
  }, 240_000);

  it("holds every customer in the shard it was seeded into", async () => {
    for (let i = 0; i < shards; i++)
      expect((await inShard(i, "SELECT count(*) AS n FROM customer_summaries"))[0]?.n).toBe(customersOfShard(i).length);
    expect((await inD1("SELECT count(*) AS n FROM customer_summaries"))[0]?.n).toBe(customers);
    // What comparing the fits exactly takes (seed): customers in the same id order in both stores.
    const keysById = "SELECT s.customer_id, i.key FROM customer_summaries s JOIN identities i USING (customer_id)";
    const keysInIdOrder = (rows: Row[]) =>
      [...rows].sort((a, b) => (String(a.customer_id) < String(b.customer_id) ? -1 : 1)).map((row) => row.key);
    expect(keysInIdOrder(await inShards(keysById))).toEqual(keysInIdOrder(await inD1(keysById)));
  });

  it("fits the same models and ranking statistics on the shards' merged samples", async () => {
    expect(run.detail.fit.sampleSize).toBe(customers);
    expect(run.detail.fit.sampleSize).toBe(reference.fit.sampleSize);
    const models = await modelsById<PopulationModels>(db, run.detail.fit.id);
    expect(models).toEqual(await modelsById<PopulationModels>(db, reference.fit.id));
    expect(run.detail.population).toMatchObject({ customers: reference.population.customers });
    const stats = await modelsById<PopulationStats>(db, run.detail.population.id);
    expect(stats).toEqual(await modelsById<PopulationStats>(db, reference.population.id));
    expect(Object.keys(stats.productUnits).length).toBeGreaterThan(0);
  });

  it("writes the same co-purchase table from the shards' pair counts", async () => {
    expect(d1Pairs.length).toBeGreaterThan(0);
    expect(await inD1(pairsQuery)).toEqual(d1Pairs);
  });

  it("computes the same diagnostics on the shards' merged sample", async () => {
    expect(run.detail.diagnostics).toMatchObject({ ok: reference.diagnostics.ok });
    const stored = async (id: number) =>
      JSON.parse(
        String((await inD1("SELECT params FROM model_params WHERE id = ?", id))[0]?.params),
      ) as StoredDiagnostics;
    const sharded = await stored(run.detail.diagnostics.id);
    const single = await stored(reference.diagnostics.id);
    expect(sharded.sampledCustomers).toBe(customers);
    expect(sharded.ok).toBe(true);
    expect(sharded).toEqual(single);
  });

  it("stores every customer's score in their shard: equal to the D1 run's, labels and figures", async () => {
    expect(run.processed).toBe(customers);
    expect(run.detail.scored).toBe(customers);
    expectSameScores(d1Scores, await inShards(scoresQuery));
    // Nothing of a customer's score is written to D1 by the sharded run.
    expect(await inD1("SELECT count(*) AS n FROM customer_scores WHERE run_id = ?", run.runId)).toEqual([{ n: 0 }]);
  });

  it("records the same transitions in the shards, counted and paged over every shard", async () => {
    expect(run.detail.transitions).toBe(reference.transitions);
    const shardTransitions = await inShards(
      "SELECT i.key, t.from_stage, t.to_stage FROM stage_transitions t JOIN identities i ON i.customer_id = t.customer_id WHERE t.run_id = ?",
      run.runId,
    );
    const sorted = (rows: Row[]) => [...rows].sort((a, b) => String(a.key).localeCompare(String(b.key)));
    expect(sorted(shardTransitions)).toEqual(sorted(d1Transitions));
    // What the transitions webhook is sent: each shard's, a page at a time.
    const paged: string[] = [];
    const store = shardedNightlyStore(env, db);
    for (let partition = 0; partition < store.partitions; partition++)
      for (let afterId = 0; ; ) {
        const rows = await store.transitionsPage(run.runId, partition, afterId, 7);
        expect(rows.length).toBeLessThanOrEqual(7);
        if (rows.length === 0) break;
        paged.push(...rows.map((row) => row.customer_id));
        afterId = rows.at(-1)?.id ?? afterId;
      }
    expect(paged).toHaveLength(customers);
    expect(new Set(paged).size).toBe(customers);
  });

  it("counts every scored customer in the run's progress, per shard and in total", async () => {
    const perShard = await inD1(
      "SELECT shard, processed FROM job_run_shards WHERE run_id = ? ORDER BY shard",
      run.runId,
    );
    expect(perShard).toEqual(
      Array.from({ length: shards }, (_, i) => ({ shard: i, processed: customersOfShard(i).length })),
    );
    expect((await jobRun(db, run.runId))?.processed).toBe(customers);
    // No customer moved during the run: the shards had no arrivals to score after their pages.
    expect(run.detail.arrivals).toBe(0);
  });

  it("a retried page writes nothing new in its shard and sets the same progress", async () => {
    const snapshot = () =>
      Promise.all([
        inShard(1, "SELECT * FROM customer_scores ORDER BY customer_id"),
        inShard(1, "SELECT * FROM customer_category_lapses ORDER BY customer_id, category_id"),
        inShard(1, "SELECT * FROM stage_transitions ORDER BY id"),
      ]);
    const before = await snapshot();
    const models = await modelsById<PopulationModels>(db, run.detail.fit.id);
    const population = await modelsById<PopulationStats>(db, run.detail.population.id);
    // The first page of shard 1 again, as Workflows re-runs a step whose result was not recorded.
    const retried = await shardedNightlyStore(env, db).scorePage(1, {
      models,
      population,
      cursor: "",
      pageSize,
      runId: run.runId,
      now: asOf,
      timeZone: retailerTimeZone(env.RETAILER_TIME_ZONE),
      scoredBefore: 0,
    });
    expect(retried.scored).toBe(pageSize);
    expect(await snapshot()).toEqual(before);
    expect(
      (await inD1("SELECT processed FROM job_run_shards WHERE run_id = ? AND shard = 1", run.runId))[0]?.processed,
    ).toBe(pageSize);
    // Put back as the run left it.
    await shardedNightlyStore(env, db).scorePage(1, {
      models,
      population,
      cursor: "",
      pageSize: customers,
      runId: run.runId,
      now: asOf,
      timeZone: retailerTimeZone(env.RETAILER_TIME_ZONE),
      scoredBefore: 0,
    });
    expect((await jobRun(db, run.runId))?.processed).toBe(customers);
    expect(await snapshot()).toEqual(before);
  });

  it("a second run a day later writes only changed scores, and still agrees with D1", async () => {
    const before = byKey(await inShards(scoresQuery));
    const second = await shardedRun(nextDay);
    expect(second.processed).toBe(customers);
    const after = byKey(await inShards(scoresQuery));
    const rewritten = [...after.values()].filter((row) => row.run_id === second.runId);
    expect(rewritten.length).toBeLessThan(customers / 4);
    for (const [key, row] of after) if (row.run_id !== second.runId) expect(row, key).toEqual(before.get(key));

    await d1Run("d1-second", nextDay);
    expectSameScores(await inD1(scoresQuery), [...after.values()]);
  }, 120_000);
});

describe("the nightly job's samples above their bounds", () => {
  // Small bounds, so each shard sends only its first customers, over several RPC pages.
  const bounds: NightlyBounds = {
    ...nightlyBounds,
    fitCustomers: 30,
    fitPageSize: 4,
    populationPageSize: 3,
    productSalesOrders: 50,
  };
  const store = shardedNightlyStore(env, db, bounds);
  const shareOfShard = (cap: number, i: number) => shareOf(cap, shards, i);
  const everyShard = <T>(work: (i: number) => Promise<T>) =>
    Promise.all(Array.from({ length: shards }, (_, i) => work(i)));

  it("fits the customer models on each shard's first share of customers by id, read in pages", async () => {
    const fit = await store.fitCustomerModels(asOf);
    expect(fit.sampleSize).toBe(30);
    // Each shard's first customers in one read, in id order over all shards.
    const sample = (await everyShard((i) => shardStub(env, i).nightlyFitSample("", shareOfShard(30, i))))
      .flat()
      .sort((a, b) => (a.customerId < b.customerId ? -1 : 1));
    expect(new Set(sample.map((row) => row.customerId)).size).toBe(30);
    expect(await modelsById<PopulationModels>(db, fit.id)).toEqual(
      JSON.parse(JSON.stringify(fitPopulationModels(sample, asOf))),
    );
  });

  it("fits the ranking statistics on the same shares, and product sales on each shard's newest orders", async () => {
    const population = await store.fitPopulation(asOf);
    const builder = createPopulationBuilder(asOf, await catalogProducts(db));
    const pages = await everyShard((i) => shardStub(env, i).nightlyPopulation("", shareOfShard(30, i)));
    for (const customer of pages.flatMap((page) => page.customers)) builder.add(customer);
    const sales = await everyShard((i) => shardStub(env, i).nightlyProductSales(shareOfShard(50, i)));
    builder.addProductSales(sales.flat());
    const expected = builder.build();
    expect(population.customers).toBe(expected.customers);
    expect(await modelsById<PopulationStats>(db, population.id)).toEqual(JSON.parse(JSON.stringify(expected)));
    // Fewer units than all the orders hold: only the newest orders of each shard count.
    const everyOrder = await everyShard((i) => shardStub(env, i).nightlyProductSales(1_000_000));
    const units = (parts: { units: number }[][]) => parts.flat().reduce((sum, sale) => sum + sale.units, 0);
    expect(units(sales)).toBeLessThan(units(everyOrder));
  });
});

describe("saved audiences over customer shards", () => {
  async function save(name: string, filters: Record<string, string>, box: string | null) {
    const webhookUrl = box === null ? null : `${inject("webhookReceiver")}/hooks/${box}`;
    const response = await SELF.fetch("http://patron.test/v1/admin/audiences", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name, filters, webhookUrl, matchKeys: [] }),
    });
    expect(response.status, await response.clone().text()).toBe(201);
    return audienceWithSecretResponseSchema.parse(await response.json()).data;
  }

  const keysOf = (rows: Row[]) => new Map(rows.map((row) => [String(row.customer_id), String(row.key)]));
  const identityKeys = "SELECT customer_id, key FROM identities";

  /** The members' keys the one database's list gives for `filters` (its scores equal the shards', above). */
  async function d1Members(filters: AudienceFilters) {
    const keys = keysOf(await inD1(identityKeys));
    const rows = await listCustomers(db, audienceListFilter(filters, customers));
    return rows.map((row) => keys.get(row.customerId)).sort();
  }

  it("sizes them and POSTs their members from every shard, as the one database lists them", async () => {
    const box = `shard-audience-${crypto.randomUUID().slice(0, 8)}`;
    const sized = await save("Active", { stage: "active" }, null);
    const hooked = await save("Everyone", {}, box);
    const run = await shardedRun(nextDay, { audiencePageSize: 7 });
    expect(run.detail.audiences).toEqual({ audiences: 2, delivered: 1, failed: 0 });

    const active = await d1Members({ stage: "active" });
    expect(active.length).toBeGreaterThan(0);
    expect(active.length).toBeLessThan(customers);
    const view = async (id: string) =>
      audienceResponseSchema.parse(
        await (
          await SELF.fetch(`http://patron.test/v1/admin/audiences/${id}`, {
            headers: { Authorization: `Bearer ${adminKey}` },
          })
        ).json(),
      ).data;
    expect((await view(sized.id)).size).toBe(active.length);
    expect((await view(hooked.id)).size).toBe(customers);

    const received = (await (await fetch(`${inject("webhookReceiver")}/received/${box}`)).json()) as ReceivedRequest[];
    const pages = received.map((request) => audienceWebhookPayloadSchema.parse(JSON.parse(request.body)));
    expect(pages.length).toBe(Math.ceil(customers / 7));
    const joined = pages.flatMap((page) => page.joined);
    const shardKeys = keysOf(await inShards(identityKeys));
    expect(joined.map((row) => shardKeys.get(String(row.customerId))).sort()).toEqual(await d1Members({}));
    // Each row as the one database's scores give it, shown as every export shows a listed customer.
    const [first] = await listCustomers(db, audienceListFilter({}, 1));
    const firstKey = keysOf(await inD1(identityKeys)).get(String(first?.customerId));
    const shown = listedCustomerView(first!);
    expect(joined.find((row) => shardKeys.get(String(row.customerId)) === firstKey)).toMatchObject({
      stage: shown.stage,
      clv12: shown.clv12,
      valueTier: shown.valueTier,
    });
  }, 120_000);
});

describe("the events upkeep over customer shards", () => {
  it("expires browse days before the window in every shard, and keeps the rest", async () => {
    const old = "2026-01-02";
    const recent = asOf.toISOString().slice(0, 10);
    for (let i = 0; i < shards; i++) {
      const [customer] = await inShard(i, "SELECT id FROM customers LIMIT 1");
      for (const browseDay of [old, recent])
        await inShard(
          i,
          "INSERT OR IGNORE INTO customer_browse (customer_id, day, category_id, views, last_viewed_at) VALUES (?, ?, 'cat-1', 2, ?)",
          String(customer?.id),
          browseDay,
          `${browseDay}T10:00:00Z`,
        );
    }
    // As of the last run's day (a run cannot go back before it): the old day is still before the window.
    const run = await shardedRun(nextDay);
    expect(run.detail.events).toMatchObject({ expiredBrowseDays: shards, complete: true, movedLegacyEvents: 0 });
    expect(await inShards("SELECT day FROM customer_browse")).toEqual(
      Array.from({ length: shards }, () => ({ day: recent })),
    );
  }, 120_000);
});
