// D1 reads and writes of the nightly model job, one function per step. Each step is idempotent:
// re-running it after a restart writes the same rows or none (scores are upserts of changed rows only,
// transitions are unique per customer and run, progress is set, not added), so a resumed run never
// double-counts.
import { sql } from "drizzle-orm";
import { batchRows, jsonEach, runBatch } from "../../db/batch.ts";
import {
  clvAtStakeOf,
  countTrait,
  customerTraits,
  pruneCounts,
  type TraitCounts,
} from "../core/insights/best-customers.ts";
import { type ClvHistogram, countClv, emptyClvHistogram } from "../core/insights/clv-distribution.ts";
import { type ScoreProblem, scoreCustomer } from "../core/profile/customer-profile.ts";
import { fitPopulationModels, type PopulationModels, type SummaryRow } from "../core/profile/population-models.ts";
import { type ScoreFigures, scoreChanged } from "../core/profile/score-change.ts";
import { createPopulationBuilder, type PopulationStats, type ProductSales } from "../core/ranking/population.ts";
import type { CategoryStat, Product } from "../core/ranking/types.ts";
import { type PairCount, type PairCountsPart, pairCountsPart } from "../core/shards/nightly-merge.ts";
import type { Db } from "../env.ts";
import { modelNames, saveModels } from "../models/models.repo.ts";
import { rebuildProductRangeStatements } from "../orders/orders.repo.ts";
import { productsBackfill } from "./backfills.repo.ts";
import { nextFeedIdSql } from "./transitions-feed.repo.ts";

/**
 * Customers used to fit the population models; beyond this a sample is fitted (fitSampleQuery). The
 * fit's CPU time grows with the sample: 17.8 s for 100,000 customers measured (docs/scaling.md), so
 * this keeps the step inside a Workflow step's default 30 s of CPU; 100,000 customers pin down the
 * models' four parameters far more closely than the nightly refit moves them.
 */
export const maxFitCustomers = 100_000;
export const populationPageSize = 2_000;
/**
 * Orders the popular shelf's units sold are counted over: the newest, so the step reads a bounded
 * number of orders and lines at any size. Below it (most retailers) every order counts, as before;
 * above it the shelf ranks by recent sales, which at 100 million orders a year is the last few hours'
 * 200,000 orders and some 300,000 lines: enough to rank a catalog's best sellers, and one index walk.
 */
export const productSalesOrders = 200_000;

/**
 * Units sold per product over the newest `limit` orders, read along orders_placed_idx. CROSS JOIN keeps
 * the orders as the outer loop (SQLite never reorders it): otherwise the planner may walk all of
 * order_lines in product order to save the GROUP BY's sort.
 */
export function productSalesQuery(limit = productSalesOrders) {
  return sql`
    WITH newest AS (SELECT id FROM orders ORDER BY placed_at DESC LIMIT ${limit})
    SELECT l.product_id AS productId, sum(l.quantity) AS units
    FROM newest n CROSS JOIN order_lines l ON l.order_id = n.id GROUP BY l.product_id`;
}

export interface SummaryDbRow {
  customer_id: string;
  purchase_days: number;
  first_order_at: string;
  last_order_at: string;
  second_purchase_at: string | null;
  gap_square_sum: number;
  positive_days: number;
  positive_day_spend: number;
  first_day_spend: number;
  units: number;
  discounted_units: number;
}

export const toSummaryRow = (row: SummaryDbRow): SummaryRow => ({
  customerId: row.customer_id,
  purchaseDays: row.purchase_days,
  firstOrderAt: row.first_order_at,
  lastOrderAt: row.last_order_at,
  secondPurchaseAt: row.second_purchase_at,
  gapSquareSum: row.gap_square_sum,
  positiveDays: row.positive_days,
  positiveDaySpend: row.positive_day_spend,
  firstDaySpend: row.first_day_spend,
  units: row.units,
  discountedUnits: row.discounted_units,
});

const summaryColumns = sql`s.customer_id, s.purchase_days, s.first_order_at, s.last_order_at, s.second_purchase_at, s.gap_square_sum, s.positive_days, s.positive_day_spend, s.first_day_spend, s.units, s.discounted_units`;

/**
 * The summaries the customer models are fitted on: the first maxFitCustomers in customer id order, read
 * along the primary-key index (no sort, no scan of the table past the sample). Customer ids are random
 * (ingest.ts newCustomerId), independent of anything the models see, so this is a uniform sample, and
 * the same one every night while the customers stay the same; `ORDER BY random()` would read and sort
 * the whole table.
 */
export function fitSampleQuery(limit = maxFitCustomers, after?: string) {
  // A customer shard reads its part of the sample in pages, each after the last id of the one before.
  const from = after === undefined ? sql`` : sql`WHERE s.customer_id > ${after}`;
  return sql`SELECT ${summaryColumns} FROM customer_summaries s ${from} ORDER BY s.customer_id LIMIT ${limit}`;
}

export async function fitCustomerModelsStep(db: Db, now: Date) {
  const rows = await db.all<SummaryDbRow>(fitSampleQuery());
  return saveCustomerModels(db, rows.map(toSummaryRow), now);
}

/** Fits the customer models on `sample` and stores them in `db` (the shared database): the step's result. */
export async function saveCustomerModels(db: Db, sample: readonly SummaryRow[], now: Date) {
  const models = fitPopulationModels([...sample], now);
  const id = await saveModels(db, {
    model: modelNames.customer,
    params: models,
    fittedAt: models.fittedAt,
    sampleSize: models.sampleSize,
    logLikelihood: models.bgnbd.logLikelihood,
    inForceAt: null,
  });
  return {
    id,
    sampleSize: models.sampleSize,
    source: models.source,
    logLikelihood: models.bgnbd.logLikelihood,
    converged: { bgnbd: models.bgnbd.converged, gammaGamma: models.gammaGamma.converged },
    fallbacks: models.fallbacks ?? [],
    excluded: models.excluded ?? {},
  };
}

export async function fitPopulationStep(db: Db, now: Date) {
  const builder = createPopulationBuilder(now, await catalogProducts(db));
  let cursor = "";
  // Customer ids are random, so the first maxFitCustomers in id order are a uniform random sample:
  // the statistics stay as good and the step's memory stays bounded at any number of customers.
  for (let seen = 0; seen < maxFitCustomers; seen += populationPageSize) {
    const page = await populationCustomersPage(db, cursor, populationPageSize);
    for (const customer of page.customers) builder.add(customer);
    if (page.last === null) break;
    cursor = page.last;
  }
  builder.addProductSales(await db.all<ProductSales>(productSalesQuery()));
  return savePopulation(db, builder.build());
}

/** The catalog as the ranking statistics read it. */
export async function catalogProducts(db: Db): Promise<Product[]> {
  return (await db.query.products.findMany()).map(
    (p): Product => ({ ...p, url: p.url ?? null, imageUrl: p.imageUrl ?? null, salePrice: p.salePrice ?? null }),
  );
}

export interface PopulationCustomer {
  customerId: string;
  categories: CategoryStat[];
}

/**
 * The category stats of the next `limit` customers after `after` in id order (one range read each on
 * customer_summaries and customer_category_stats), and the last id read, where the next page starts
 * (null when this page was the last: fewer than `limit` customers were left, so no call is spent on
 * an empty page). Customers without category stats are read past and left out.
 */
export async function populationCustomersPage(db: Db, after: string, limit: number) {
  const ids = await db.all<{ customer_id: string }>(sql`
    SELECT customer_id FROM customer_summaries WHERE customer_id > ${after} ORDER BY customer_id LIMIT ${limit}`);
  const first = ids[0]?.customer_id;
  const last = ids[ids.length - 1]?.customer_id;
  if (first === undefined || last === undefined) return { customers: [] as PopulationCustomer[], last: null };
  const next = ids.length < limit ? null : last;
  const stats = await db.query.customerCategoryStats.findMany({
    where: (s, { and, gte, lte }) => and(gte(s.customerId, first), lte(s.customerId, last)),
  });
  const byCustomer = new Map<string, CategoryStat[]>();
  for (const { customerId, ...stat } of stats)
    byCustomer.set(customerId, [...(byCustomer.get(customerId) ?? []), stat]);
  const customers = [...byCustomer].map(([customerId, categories]): PopulationCustomer => ({ customerId, categories }));
  return { customers, last: next };
}

/** Stores fitted ranking statistics in `db` (the shared database): the step's result. */
export async function savePopulation(db: Db, population: PopulationStats) {
  const id = await saveModels(db, {
    model: modelNames.population,
    params: population,
    fittedAt: population.fittedAt,
    sampleSize: population.customers,
    logLikelihood: null,
    inForceAt: null,
  });
  return { id, customers: population.customers, categories: Object.keys(population.categories).length };
}

interface ChannelCounts {
  web_orders: number;
  store_orders: number;
  app_orders: number;
  phone_orders: number;
}

export interface ScoredPage {
  nextCursor: string | null;
  scored: number;
  /** Customers of the page the models could not score, by reason: left unscored, never fatal. */
  skipped: Partial<Record<ScoreProblem, number>>;
  transitions: number;
  /** Customers per value tier and the traits they have, for the best-customers rollup. */
  traits: TraitCounts;
  /** The page's customers per 12-month CLV bucket, for the CLV distribution. */
  clvHistogram: ClvHistogram;
}

export interface ScoreContext {
  /** This run's ranking statistics: category price quantiles and repurchase intervals. */
  population?: PopulationStats | null;
  /** The retailer's time zone, for the preferred weekday. */
  timeZone?: string;
  /** Customers the run's earlier pages scored: the progress shown is this plus this page's. */
  scoredBefore?: number;
  /**
   * False in a customer shard: the run's progress lives in the shared database (job_runs), which the
   * shard cannot write, so the caller records it (worker/shards/nightly.ts).
   */
  recordProgress?: boolean;
  /**
   * In a customer shard: the first of the page's `pageSize` transitions feed ids (takeFeedIds); the
   * page's i-th transition gets feedFrom + i. Absent on D1, whose feed shows the rows' own ids.
   */
  feedFrom?: number;
  /**
   * In a customer shard: score these customers (those held here), not the page after `cursor`. The
   * run's arrivals (worker/shards/nightly-shard.ts): the product backfill does not go along, and the
   * answer's `nextCursor` is null (the caller pages the list).
   */
  only?: readonly string[];
}

/** A list of customer ids for `customer_id IN …`: one JSON parameter, whatever its length. */
const customerList = (ids: readonly string[]) => sql`(SELECT value FROM ${jsonEach(ids)})`;

/** The score a customer has stored from an earlier run (columns null when they have none). */
interface StoredScoreColumns {
  previous_stage: string | null;
  previous_run: string | null;
  previous_value_tier: string | null;
  previous_discount_sensitivity: string | null;
  previous_offer_guidance: string | null;
  previous_clv_12: number | null;
  previous_clv_24: number | null;
  previous_clv_at_stake: number | null;
  previous_probability_alive: number | null;
  previous_overdue_ratio: number | null;
  previous_expected_next_order_at: string | null;
  previous_purchase_days: number | null;
}

const storedScoreColumns = sql`c.stage AS previous_stage, c.run_id AS previous_run,
  c.value_tier AS previous_value_tier, c.discount_sensitivity AS previous_discount_sensitivity,
  c.offer_guidance AS previous_offer_guidance, c.clv_12 AS previous_clv_12, c.clv_24 AS previous_clv_24,
  c.clv_at_stake AS previous_clv_at_stake, c.probability_alive AS previous_probability_alive,
  c.overdue_ratio AS previous_overdue_ratio, c.expected_next_order_at AS previous_expected_next_order_at,
  c.purchase_days AS previous_purchase_days`;

function storedFigures(row: StoredScoreColumns, lapsedCategories: readonly string[]): ScoreFigures | null {
  if (row.previous_stage === null) return null;
  return {
    stage: row.previous_stage,
    valueTier: row.previous_value_tier ?? "",
    discountSensitivity: row.previous_discount_sensitivity,
    offerGuidance: row.previous_offer_guidance,
    clv12: row.previous_clv_12 ?? 0,
    clv24: row.previous_clv_24 ?? 0,
    clvAtStake: row.previous_clv_at_stake ?? 0,
    probabilityAlive: row.previous_probability_alive ?? 0,
    overdueRatio: row.previous_overdue_ratio ?? 0,
    expectedNextOrderAt: row.previous_expected_next_order_at ?? "",
    purchaseDays: row.previous_purchase_days ?? 0,
    lapsedCategories,
  };
}

interface PageCategoryRow {
  customer_id: string;
  category_id: string;
  purchase_days: number;
  first_purchase_at: string;
  last_purchase_at: string;
  avg_unit_price: number;
  spend: number;
}

/**
 * The product rows' backfill moved on from `read` (the cursor this page found) to `cursor`, finished
 * when `doneAt` is set. A pass finished or restarted meanwhile (`patron backfill rerun`) is left alone.
 */
const productBackfillStep = (read: string, cursor: string, doneAt: string | null) =>
  sql`UPDATE backfills SET cursor = ${cursor}, done_at = ${doneAt}
      WHERE name = ${productsBackfill} AND done_at IS NULL AND cursor = ${read}`;

/**
 * Scores one page of customers and records stage changes against their previous score. Only the
 * customers whose score changed for a reader (core/profile/score-change.ts) are written, with this
 * run's id and time: `run_id` and `scored_at` say which run last changed the row. Progress is set to
 * `context.scoredBefore` plus this page's count, so a retried page sets the same figure again (unless
 * `context.recordProgress` is false).
 */
export async function scorePageStep(
  db: Db,
  models: PopulationModels,
  cursor: string,
  pageSize: number,
  runId: string,
  now: Date,
  context: ScoreContext = {},
): Promise<ScoredPage> {
  const { only } = context;
  const [page = [], [backfill] = []] = (await batchRows(db, [
    sql`
      SELECT ${summaryColumns}, s.web_orders, s.store_orders, s.app_orders, s.phone_orders, ${storedScoreColumns}
      FROM customer_summaries s LEFT JOIN customer_scores c ON c.customer_id = s.customer_id
      WHERE ${only ? sql`s.customer_id IN ${customerList(only)}` : sql`s.customer_id > ${cursor}`}
      ORDER BY s.customer_id LIMIT ${pageSize}`,
    sql`SELECT cursor FROM backfills WHERE name = ${productsBackfill} AND done_at IS NULL`,
  ])) as [(SummaryDbRow & ChannelCounts & StoredScoreColumns)[]?, { cursor: string }[]?];
  // The product rows' backfill (migration 0019) goes along with the scoring: a pass starts on a run's
  // first page and goes on from the page where it stopped, so a run deployed mid-way starts it again
  // the next night. A retried page finds its pass moved on and leaves it.
  const backfills = !only && backfill !== undefined && (cursor === "" || backfill.cursor === cursor);
  if (page.length === 0) {
    if (backfills) await runBatch(db, [productBackfillStep(backfill.cursor, cursor, now.toISOString())]);
    return { nextCursor: null, scored: 0, skipped: {}, transitions: 0, traits: {}, clvHistogram: emptyClvHistogram() };
  }
  const nextCursor = only || page.length < pageSize ? null : (page[page.length - 1]?.customer_id ?? null);
  const first = page[0]?.customer_id ?? "";
  const last = page[page.length - 1]?.customer_id ?? "";
  // The page's categories, order places/times and stored lapses, each one range read on a (customer_id, …)
  // index; for a list of customers, one search per customer on the same index.
  const ofPage = only
    ? sql`customer_id IN ${customerList(page.map((row) => row.customer_id))}`
    : sql`customer_id >= ${first} AND customer_id <= ${last}`;
  const [categoryRows, orderRows, lapseRows] = await Promise.all([
    db.all<PageCategoryRow>(sql`
      SELECT customer_id, category_id, purchase_days, first_purchase_at, last_purchase_at, avg_unit_price, spend
      FROM customer_category_stats WHERE ${ofPage}`),
    db.all<{ customer_id: string; store_id: string | null; placed_at: string }>(sql`
      SELECT customer_id, store_id, placed_at FROM orders WHERE ${ofPage}`),
    db.all<{ customer_id: string; category_id: string }>(sql`
      SELECT customer_id, category_id FROM customer_category_lapses WHERE ${ofPage}`),
  ]);
  const categoriesOf = groupBy(categoryRows);
  const ordersOf = groupBy(orderRows);
  const storedLapsesOf = groupBy(lapseRows);
  const populationCategories = Object.entries(context.population?.categories ?? {});
  const categoryPrices = Object.fromEntries(populationCategories.map(([id, c]) => [id, c.priceQuantiles]));
  const categoryIntervalDays = Object.fromEntries(
    populationCategories.map(([id, c]) => [id, c.repurchaseIntervalDays]),
  );
  const traits: TraitCounts = {};
  const clvHistogram = emptyClvHistogram();
  const at = now.toISOString();
  const skipped: Partial<Record<ScoreProblem, number>> = {};
  const scores = page.flatMap((row) => {
    // One customer's odd history never stops the others being scored: they are skipped and counted.
    let outcome: ReturnType<typeof scoreCustomer>;
    try {
      outcome = scoreCustomer({
        summary: {
          ...toSummaryRow(row),
          webOrders: row.web_orders,
          storeOrders: row.store_orders,
          appOrders: row.app_orders,
          phoneOrders: row.phone_orders,
        },
        categories: (categoriesOf.get(row.customer_id) ?? []).map((c) => ({
          categoryId: c.category_id,
          purchaseDays: c.purchase_days,
          firstPurchaseAt: c.first_purchase_at,
          lastPurchaseAt: c.last_purchase_at,
          avgUnitPrice: c.avg_unit_price,
        })),
        categoryPrices,
        categoryIntervalDays,
        orderTimes: (ordersOf.get(row.customer_id) ?? []).map((o) => o.placed_at),
        timeZone: context.timeZone ?? "UTC",
        models,
        now,
      });
    } catch {
      outcome = { ok: false, reason: "model_error" };
    }
    if (!outcome.ok) {
      skipped[outcome.reason] = (skipped[outcome.reason] ?? 0) + 1;
      // Skipped, a customer keeps the score stored before, which the segments count: so does the distribution.
      if (row.previous_stage !== null) countClv(clvHistogram, row.previous_clv_12 ?? 0);
      return [];
    }
    const { profile } = outcome;
    const stage = profile.lifecycle.stage;
    const sortKeys = {
      clvAtStake: clvAtStakeOf(profile),
      overdueRatio: profile.cadence.overdueRatio,
      probabilityAlive: profile.probabilityAlive,
      expectedNextOrderAt: profile.cadence.nextExpectedAt,
    };
    // Active overall but lapsed in these categories: the lapsing-category lists.
    const lapsedCategories =
      stage === "active" ? profile.categories.filter((c) => c.cadence.lapsed).map((c) => c.categoryId) : [];
    const score = {
      clv12: profile.clv12,
      clv24: profile.clv24,
      stage,
      valueTier: profile.valueTier,
      discountSensitivity: profile.discount.sensitivity,
      offerGuidance: profile.offerGuidance,
      purchaseDays: row.purchase_days,
      ...sortKeys,
    };
    const stored = storedFigures(
      row,
      (storedLapsesOf.get(row.customer_id) ?? []).map((lapse) => lapse.category_id),
    );
    const changed = scoreChanged(stored, { ...score, lapsedCategories }, now);
    // The rollup counts the CLV the scores table holds once this page is written: a score within
    // scoreChanged's tolerance keeps its stored figures, so the distribution's total is the segments' total.
    countClv(clvHistogram, changed || !stored ? profile.clv12 : stored.clv12);
    countTrait(
      traits,
      profile.valueTier,
      customerTraits({
        profile,
        purchaseDays: row.purchase_days,
        categorySpend: Object.fromEntries(
          (categoriesOf.get(row.customer_id) ?? []).map((c) => [c.category_id, c.spend]),
        ),
        orderStores: (ordersOf.get(row.customer_id) ?? []).map((o) => o.store_id),
      }),
    );
    // A retried step finds the customers it already scored in this run: their rows are done (and
    // comparing their stage with itself would hide the transitions the first attempt recorded); they
    // are only counted for the rollup.
    if (row.previous_run === runId || !changed) return [];
    return {
      customerId: row.customer_id,
      previousStage: row.previous_stage,
      ...score,
      lapses: lapsedCategories.map((categoryId) => ({ categoryId, ...sortKeys })),
    };
  });
  // Each with its place in the page (`i`: the shards' feed id is feedFrom + i), and only what the row
  // needs: json_each's own `key` is not readable once a large array is bound in chunks (jsonEach).
  const transitions = scores
    .filter((s) => s.previousStage !== s.stage)
    .map((s, i) => ({ customerId: s.customerId, previousStage: s.previousStage, stage: s.stage, i }));
  const scored = page.length - Object.values(skipped).reduce((sum, n) => sum + (n ?? 0), 0);
  const lapses = scores.flatMap((s) => s.lapses.map((lapse) => ({ customerId: s.customerId, ...lapse })));
  // Only customers still held when the write lands: on D1 an erasure or a merge can commit between the
  // page's read and this batch, and its customer must not come back as a score, lapse or transition.
  const stillHeld = sql`EXISTS (SELECT 1 FROM customer_summaries h WHERE h.customer_id = value ->> 'customerId')`;
  await runBatch(db, [
    ...(backfills
      ? [
          ...rebuildProductRangeStatements(first, last),
          productBackfillStep(backfill.cursor, last, nextCursor === null ? at : null),
        ]
      : []),
    sql`
      INSERT INTO customer_scores (customer_id, clv_12, clv_24, probability_alive, stage, value_tier, discount_sensitivity,
        scored_at, run_id, clv_at_stake, overdue_ratio, expected_next_order_at, offer_guidance, purchase_days)
      SELECT value ->> 'customerId', value ->> 'clv12', value ->> 'clv24', value ->> 'probabilityAlive', value ->> 'stage',
        value ->> 'valueTier', value ->> 'discountSensitivity', ${at}, ${runId}, value ->> 'clvAtStake',
        value ->> 'overdueRatio', value ->> 'expectedNextOrderAt', value ->> 'offerGuidance', value ->> 'purchaseDays'
      FROM ${jsonEach(scores)} WHERE ${stillHeld}
      ON CONFLICT (customer_id) DO UPDATE SET clv_12 = excluded.clv_12, clv_24 = excluded.clv_24,
        probability_alive = excluded.probability_alive, stage = excluded.stage, value_tier = excluded.value_tier,
        discount_sensitivity = excluded.discount_sensitivity, scored_at = excluded.scored_at, run_id = excluded.run_id,
        clv_at_stake = excluded.clv_at_stake, overdue_ratio = excluded.overdue_ratio,
        expected_next_order_at = excluded.expected_next_order_at, offer_guidance = excluded.offer_guidance,
        purchase_days = excluded.purchase_days`,
    sql`
      DELETE FROM customer_category_lapses
      WHERE customer_id IN (SELECT value ->> 'customerId' FROM ${jsonEach(scores)})`,
    sql`
      INSERT INTO customer_category_lapses (category_id, customer_id, clv_at_stake, overdue_ratio, probability_alive,
        expected_next_order_at, run_id)
      SELECT value ->> 'categoryId', value ->> 'customerId', value ->> 'clvAtStake', value ->> 'overdueRatio',
        value ->> 'probabilityAlive', value ->> 'expectedNextOrderAt', ${runId}
      FROM ${jsonEach(lapses)} WHERE ${stillHeld}
      ON CONFLICT (category_id, customer_id) DO NOTHING`,
    sql`
      INSERT OR IGNORE INTO stage_transitions (customer_id, from_stage, to_stage, at, run_id, feed_id)
      SELECT value ->> 'customerId', value ->> 'previousStage', value ->> 'stage', ${at}, ${runId},
        ${context.feedFrom ?? null} + (value ->> 'i')
      FROM ${jsonEach(transitions)} WHERE ${stillHeld}`,
    ...(context.recordProgress === false
      ? []
      : [
          sql`
            UPDATE job_runs SET processed = ${(context.scoredBefore ?? 0) + scored},
              cursor = ${last} WHERE id = ${runId}`,
        ]),
  ]);
  return {
    nextCursor,
    scored,
    skipped,
    transitions: transitions.length,
    traits,
    clvHistogram,
  };
}

function groupBy<Row extends { customer_id: string }>(rows: readonly Row[]): Map<string, Row[]> {
  const groups = new Map<string, Row[]>();
  for (const row of rows) {
    const group = groups.get(row.customer_id);
    if (group) group.push(row);
    else groups.set(row.customer_id, [row]);
  }
  return groups;
}

/** Stores the run's best-customers rollup and CLV histogram (idempotent: one row per run). */
export async function saveInsightRollupStep(
  db: Db,
  runId: string,
  asOf: Date,
  counts: TraitCounts,
  now: Date,
  clvHistogram: ClvHistogram = emptyClvHistogram(),
) {
  await db.run(sql`
    INSERT INTO insight_rollups (run_id, computed_at, as_of, counts, clv_histogram)
    VALUES (${runId}, ${now.toISOString()}, ${asOf.toISOString()}, ${JSON.stringify(pruneCounts(counts))}, ${JSON.stringify(clvHistogram)})
    ON CONFLICT (run_id) DO UPDATE SET computed_at = excluded.computed_at, as_of = excluded.as_of, counts = excluded.counts,
      clv_histogram = excluded.clv_histogram`);
  return { tiers: Object.fromEntries(Object.entries(counts).map(([tier, entry]) => [tier, entry?.customers ?? 0])) };
}

export interface InsightRollupRow {
  run_id: string;
  computed_at: string;
  as_of: string;
  counts: string;
  /** JSON ClvHistogram; null in rows stored before the CLV distribution existed. */
  clv_histogram: string | null;
}

export const latestInsightRollupQuery = sql`
  SELECT run_id, computed_at, as_of, counts, clv_histogram FROM insight_rollups ORDER BY computed_at DESC LIMIT 1`;

/** The newest best-customers rollup: one read on insight_rollups_computed_idx. */
export async function latestInsightRollup(db: Db): Promise<InsightRollupRow | undefined> {
  return db.get<InsightRollupRow>(latestInsightRollupQuery);
}

/** A start's claim on the next run: made, or what stood in its way. */
export type RunClaim =
  | { claimed: true }
  | {
      claimed: false;
      /** The run holding the claim, if one is running. */
      running: { id: string; startedAt: string } | null;
      /** The latest asOf of a finished run (null before the first). */
      lastAsOf: string | null;
    };

/** The asOf of the nightly run that finished last. */
const lastFinishedAsOf = sql`
  SELECT as_of FROM job_runs WHERE kind = 'nightly' AND status = 'done' ORDER BY finished_at DESC LIMIT 1`;

/**
 * Claims the next nightly run: its job_runs row written as running, started `now`, as of `asOf` (ISO,
 * as toISOString writes it). One statement, which writes nothing when another run is running
 * (job_runs_one_running_idx: at most one running row) or, for a `backDated` run, when the run that
 * finished last is as of a later instant (a run replaces the live scores: it cannot go back before the
 * last one). Read in the same batch, so a refusal names what stood in the way.
 */
export async function claimRun(db: Db, runId: string, asOf: string, now: Date, backDated: boolean): Promise<RunClaim> {
  const [inserted = [], running = [], last = []] = await batchRows(db, [
    sql`
      INSERT INTO job_runs (id, kind, status, cursor, processed, started_at, as_of, feed_from)
      SELECT ${runId}, 'nightly', 'running', '', 0, ${now.toISOString()}, ${asOf}, ${nextFeedIdSql}
      WHERE ${backDated ? 0 : 1}
        OR coalesce((${lastFinishedAsOf}), '') <= ${asOf}
      ON CONFLICT DO NOTHING RETURNING id`,
    sql`SELECT id, started_at FROM job_runs WHERE kind = 'nightly' AND status = 'running'`,
    sql`SELECT (${lastFinishedAsOf}) AS as_of`,
  ]);
  if (inserted.length > 0) return { claimed: true };
  const [holder] = running as { id: string; started_at: string }[];
  const [latest] = last as { as_of: string | null }[];
  return {
    claimed: false,
    running: holder ? { id: holder.id, startedAt: holder.started_at } : null,
    lastAsOf: latest?.as_of ?? null,
  };
}

/** Ends a claim whose run stopped without finishing: its row marked `status` ("errored" or "terminated"). */
export async function releaseRun(db: Db, runId: string, status: "errored" | "terminated", now: Date) {
  await db.run(sql`
    UPDATE job_runs SET status = ${status}, finished_at = ${now.toISOString()} WHERE id = ${runId} AND status = 'running'`);
}

/** Takes back a claim whose Workflow instance could not be created: nothing was started. */
export async function dropClaim(db: Db, runId: string) {
  await db.run(sql`DELETE FROM job_runs WHERE id = ${runId} AND status = 'running' AND processed = 0`);
}

/**
 * The run's row, for a run started without a claim (a Workflow instance created before claims existed):
 * a no-op when its claim wrote it, and when another run holds the one running row. True when the run
 * holds its claim (its row is running): a run that does not must stop, as another run may be running.
 */
export async function startRunStep(db: Db, runId: string, now: Date, asOf: Date = now): Promise<boolean> {
  const [, held = []] = await batchRows(db, [
    sql`
      INSERT INTO job_runs (id, kind, status, cursor, processed, started_at, as_of, feed_from)
      VALUES (${runId}, 'nightly', 'running', '', 0, ${now.toISOString()}, ${asOf.toISOString()}, ${nextFeedIdSql})
      ON CONFLICT DO NOTHING`,
    sql`SELECT 1 AS held FROM job_runs WHERE id = ${runId} AND status = 'running'`,
  ]);
  return held.length > 0;
}

/** Marks the run done; a run whose claim was released meanwhile (marked errored or terminated) stays so. */
export async function finishRunStep(db: Db, runId: string, detail: unknown, now: Date) {
  await db.run(sql`
    UPDATE job_runs SET status = 'done', finished_at = ${now.toISOString()}, detail = ${JSON.stringify(detail)}
    WHERE id = ${runId} AND status = 'running'`);
}

/** The newest `limit` nightly runs, newest first: a range of job_runs_started_idx. */
export async function recentRuns(db: Db, limit: number) {
  return db.query.jobRuns.findMany({
    where: (r, { eq }) => eq(r.kind, "nightly"),
    orderBy: (r, { desc }) => [desc(r.startedAt), desc(r.id)],
    limit,
  });
}

/**
 * A customer shard's progress in a run: its row in job_run_shards set to the customers its pages
 * scored so far, and the run's progress to the sum over its shards, in one batch. Set, not added: a
 * retried page sets the same figures, and pages of different shards recorded at once each count once.
 */
export async function recordShardProgressStep(db: Db, runId: string, shard: number, processed: number, cursor: string) {
  await runBatch(db, [
    sql`
      INSERT INTO job_run_shards (run_id, shard, processed, cursor) VALUES (${runId}, ${shard}, ${processed}, ${cursor})
      ON CONFLICT (run_id, shard) DO UPDATE SET processed = excluded.processed, cursor = excluded.cursor`,
    sql`
      UPDATE job_runs SET processed = (SELECT sum(processed) FROM job_run_shards WHERE run_id = ${runId})
      WHERE id = ${runId}`,
  ]);
}

export interface TransitionRow {
  id: number;
  customer_id: string;
  from_stage: string | null;
  to_stage: string;
  at: string;
  run_id: string;
}

/** Stage changes since a date by kind (from → to), and the newest of them: the Overview's summary. */
export interface TransitionSummaryPart {
  kinds: { from_stage: string | null; to_stage: string; changes: number }[];
  recent: TransitionRow[];
}

/**
 * The summary's two reads, below `below` by `idColumn` (D1's id, a shard's feed_id: a running run's rows
 * stay out of the sharded feed, transitions-feed.repo.ts). Both read the rows since `since` along
 * stage_transitions_at_idx and no others (the id's `+`, in the filter and the order, keeps the planner off
 * the id's index, whose walk would reach every older row when the window holds fewer than `recent`): the
 * kinds counted, the newest sorted from them, so a quiet window costs little.
 */
export function transitionSummaryQueries(idColumn: "id" | "feed_id", since: string, below: number, recent: number) {
  const id = sql.raw(idColumn);
  return [
    sql`SELECT from_stage, to_stage, count(*) AS changes FROM stage_transitions
      WHERE at >= ${since} AND +${id} < ${below} GROUP BY from_stage, to_stage`,
    sql`SELECT ${id} AS id, customer_id, from_stage, to_stage, at, run_id FROM stage_transitions
      WHERE at >= ${since} AND +${id} < ${below} ORDER BY +${id} DESC LIMIT ${recent}`,
  ] as const;
}

export async function transitionSummary(
  db: Db,
  since: string,
  recent: number,
  ids: { column: "id" | "feed_id"; below: number } = { column: "id", below: Number.MAX_SAFE_INTEGER },
): Promise<TransitionSummaryPart> {
  const [kinds = [], rows = []] = (await batchRows(db, [
    ...transitionSummaryQueries(ids.column, since, ids.below, recent),
  ])) as [TransitionSummaryPart["kinds"]?, TransitionRow[]?];
  return { kinds, recent: rows };
}

/** Transitions at or after `since`, in id order, after the cursor `afterId` (0 for the first page). */
export async function transitionsSince(db: Db, since: string, afterId: number, limit: number) {
  return db.all<TransitionRow>(sql`
    SELECT id, customer_id, from_stage, to_stage, at, run_id FROM stage_transitions
    WHERE at >= ${since} AND id > ${afterId} ORDER BY id LIMIT ${limit}`);
}

/** One run's transitions after `afterId`, in id order: a range of stage_transitions_run_id_idx. */
export function transitionsOfRunQuery(runId: string, afterId: number, limit: number) {
  return sql`
    SELECT id, customer_id, from_stage, to_stage, at, run_id FROM stage_transitions
    WHERE run_id = ${runId} AND id > ${afterId} ORDER BY id LIMIT ${limit}`;
}

/** One run's transitions, a page at a time, for the webhook. */
export async function transitionsOfRun(db: Db, runId: string, afterId: number, limit: number) {
  return db.all<TransitionRow>(transitionsOfRunQuery(runId, afterId, limit));
}

export async function jobRun(db: Db, runId: string) {
  return db.query.jobRuns.findFirst({ where: (r, { eq }) => eq(r.id, runId) });
}

/** How many transitions one run recorded: read along stage_transitions_run_id_idx, not every run's. */
export const countTransitionsQuery = (runId: string) =>
  sql`SELECT count(*) AS n FROM stage_transitions WHERE run_id = ${runId}`;

export async function countTransitions(db: Db, runId: string): Promise<number> {
  const row = await db.get<{ n: number }>(countTransitionsQuery(runId));
  return row?.n ?? 0;
}

/** Rows kept per product in product_pairs (the most co-bought first). */
export const maxPairsPerProduct = 20;
/** Orders older than this do not count towards co-purchase. */
export const copurchaseWindowDays = 365;
/**
 * A pair is kept only when at least this many different shoppers bought it together: a product page
 * then never reveals what one or two shoppers bought together (however many orders they placed, and
 * however many customers their guest checkouts made), and a one-off basket is not a pattern. Pairs
 * still rank by the orders that hold them.
 */
export const minShoppersPerPair = 3;
/** Orders with more distinct products than this are left out: a huge basket says little about pairs, and bounds the self-join. */
export const maxProductsPerPairOrder = 30;

/**
 * Co-purchase counts at most this many orders: the newest in the window, read along orders_placed_idx.
 * The self-join's work is then bounded at any size (at most this × 30 × 29 pairs, a few per order in
 * practice) instead of growing with a year of orders (100 million and more at 10 million customers).
 * A pair needs orders of `minShoppersPerPair` different shoppers among those (3 orders at least,
 * 0.003%) to count: a pair rarer than that among a retailer's newest 100,000 orders says little about
 * what to show next to a product. Below this many orders in the window (most retailers) every order
 * counts, as before.
 */
export const copurchaseOrders = 100_000;

/**
 * Rounds of label passing that settle who the shopper behind each customer is (shoppersOfNewestOrders):
 * each round carries the least label one step further, from the customers seen with an identifier to
 * the identifier and on to the other customers seen with it. A person's guest checkouts settle in one
 * or two; what is still settling after these is counted as one shopper altogether.
 */
export const shopperRounds = 4;
/** The one shopper every customer still settling after `shopperRounds` counts as. */
export const unsettledShopper = "?";

/**
 * Who placed the newest `limit` orders in [since, until], as shoppers rather than customers: a WITH
 * clause ending in the tables `newest (id, customer_id)`, `shoppers (customer_id, shopper, number)`
 * (every customer of those orders, with its shopper's label and that label's number in label order,
 * cheaper to count than the label) and `keyed (key, shopper, number)` (every identifier of theirs),
 * for what follows to read.
 *
 * Each guest checkout with only unverified identifiers is a customer of its own (docs/identity.md), so
 * one person's three guest orders are three customers. Here customers who share any identifier (an
 * identity key observed on one of those orders, verified or not, or held by the customer) are one
 * shopper, and so is every customer joined to them through a chain of shared identifiers: the
 * connected components of customers and identifiers, each labelled by its least identity key
 * (`customer:<id>` for a customer with none). A customer who shares no identifier with another is a
 * shopper of its own, labelled at once; between the others (`joins`, the identifiers seen with two
 * customers or more: guest checkouts, households) the least label is passed `shopperRounds` times. A
 * component still settling after that has a customer and an identifier labelled differently, and every
 * label that shows up so is replaced by `unsettledShopper`: that takes in all of such a component's
 * labels (two labels of one component meet somewhere), so it counts as one shopper, never as several.
 *
 * The orders are found along orders_placed_idx, each one's identifiers along identity_observations'
 * primary key (source = `order:<id>`), and each customer's along identities_customer_idx.
 */
function shoppersOfNewestOrders(since: string, until: string, limit: number) {
  const rounds = Array.from(
    { length: shopperRounds },
    (_, index) => `
      k${index + 1} AS MATERIALIZED (
        SELECT jn.key, min(c.label) AS label FROM joins jn JOIN c${index} c USING (customer_id) GROUP BY jn.key
      ), c${index + 1} AS MATERIALIZED (
        SELECT jn.customer_id, min(k.label) AS label FROM joins jn JOIN k${index + 1} k USING (key) GROUP BY jn.customer_id
      )`,
  ).join(",");
  const [customers, keys] = [sql.raw(`c${shopperRounds}`), sql.raw(`k${shopperRounds}`)];
  return sql`
      WITH newest AS MATERIALIZED (
        SELECT id, customer_id FROM orders WHERE placed_at >= ${since} AND placed_at <= ${until}
        ORDER BY placed_at DESC LIMIT ${limit}
      ), buyers AS MATERIALIZED (
        SELECT DISTINCT customer_id FROM newest
      ), links AS MATERIALIZED (
        SELECT n.customer_id, ob.identity_key AS key
        FROM newest n CROSS JOIN identity_observations ob ON ob.source = 'order:' || n.id
        UNION
        SELECT i.customer_id, i.key FROM buyers b CROSS JOIN identities i ON i.customer_id = b.customer_id
      ), labelled AS MATERIALIZED (
        SELECT customer_id, min(key) AS label FROM links GROUP BY customer_id
      ), joins AS MATERIALIZED (
        SELECT customer_id, key FROM links
        WHERE key IN (SELECT key FROM links GROUP BY key HAVING count(*) > 1)
      ), c0 AS MATERIALIZED (
        SELECT customer_id, label FROM labelled WHERE customer_id IN (SELECT customer_id FROM joins)
      ),${sql.raw(rounds)}, apart AS MATERIALIZED (
        SELECT c.label AS customer_label, k.label AS key_label
        FROM joins jn JOIN ${customers} c USING (customer_id) JOIN ${keys} k USING (key)
        WHERE c.label <> k.label
      ), unsettled AS MATERIALIZED (
        SELECT customer_label AS label FROM apart UNION SELECT key_label FROM apart
      ), shoppers AS MATERIALIZED (
        SELECT customer_id, shopper, dense_rank() OVER (ORDER BY shopper) AS number FROM (
          SELECT customer_id, CASE WHEN label IN (SELECT label FROM unsettled) THEN ${unsettledShopper} ELSE label END AS shopper
          FROM ${customers}
          UNION ALL
          SELECT customer_id, label FROM labelled WHERE customer_id NOT IN (SELECT customer_id FROM ${customers})
          UNION ALL
          SELECT customer_id, 'customer:' || customer_id FROM buyers WHERE customer_id NOT IN (SELECT customer_id FROM labelled)
        )
      ), keyed AS MATERIALIZED (
        SELECT DISTINCT lk.key, s.shopper, s.number FROM links lk CROSS JOIN shoppers s ON s.customer_id = lk.customer_id
      )`;
}

/**
 * How many of the newest `limit` orders placed in [since, until] hold each ordered pair of products,
 * and which shoppers (shoppersOfNewestOrders) placed them (`shoppers`: `count`, how many; `list`, their
 * numbers as a JSON array), counting only orders of 2 to `maxProductsPerPairOrder` distinct products: a
 * WITH clause ending in the table `counted (product_id, other_id, orders, shoppers)`, for the statement
 * that follows it to read.
 * Each order's shopper is looked up once and its lines read by order (CROSS JOIN keeps the orders
 * outside: the planner would otherwise walk every line and look its order up among the newest).
 */
function pairCountsOfNewestOrders(since: string, until: string, limit: number, shoppers: "count" | "list") {
  const aggregate = shoppers === "count" ? sql`count(DISTINCT a.shopper)` : sql`json_group_array(DISTINCT a.shopper)`;
  return sql`
      ${shoppersOfNewestOrders(since, until, limit)}, recent AS (
        SELECT DISTINCT l.order_id, l.product_id, s.number AS shopper
        FROM newest n CROSS JOIN shoppers s ON s.customer_id = n.customer_id CROSS JOIN order_lines l ON l.order_id = n.id
      ), small AS (
        SELECT r.order_id, r.product_id, r.shopper FROM recent r
        WHERE r.order_id IN (SELECT order_id FROM recent GROUP BY order_id HAVING count(*) BETWEEN 2 AND ${maxProductsPerPairOrder})
      ), counted AS (
        SELECT a.product_id, b.product_id AS other_id, count(*) AS orders, ${aggregate} AS shoppers
        FROM small a JOIN small b ON a.order_id = b.order_id AND a.product_id <> b.product_id
        GROUP BY a.product_id, b.product_id
      )`;
}

/** The product_pairs rebuild over the newest `limit` orders placed in [since, computedAt]. */
export function copurchaseQuery(since: string, computedAt: string, limit = copurchaseOrders) {
  return sql`
      ${pairCountsOfNewestOrders(since, computedAt, limit, "count")}, ranked AS (
        SELECT product_id, other_id, orders,
          row_number() OVER (PARTITION BY product_id ORDER BY orders DESC, other_id) AS rank
        FROM counted WHERE shoppers >= ${minShoppersPerPair}
      )
      INSERT INTO product_pairs (product_id, other_id, orders, computed_at)
      SELECT product_id, other_id, orders, ${computedAt} FROM ranked WHERE rank <= ${maxPairsPerProduct}`;
}

/**
 * Every pair's orders and shoppers over the newest `limit` orders placed in [since, until], none left
 * out: a customer shard's part of the co-purchase table (`shoppers` a JSON array of the shoppers'
 * numbers, shopperLabelsQuery naming them), whose threshold and ranking apply over every shard's part
 * (rankPairs).
 */
export function pairCountsQuery(since: string, until: string, limit: number) {
  return sql`
      ${pairCountsOfNewestOrders(since, until, limit, "list")}
      SELECT product_id AS productId, other_id AS otherId, orders, shoppers FROM counted`;
}

/**
 * The labels of the shoppers pairCountsQuery numbers (rows with a `label`), and the identifiers of
 * theirs that are not their label, each with its shopper's number (rows with a `key`): what joins a
 * shopper of one shard to a shopper of another who shares an identifier with it (one person's guest
 * orders stored in several shards).
 */
export function shopperLabelsQuery(since: string, until: string, limit: number) {
  return sql`
      ${shoppersOfNewestOrders(since, until, limit)}
      SELECT number, shopper AS label, NULL AS key FROM (SELECT DISTINCT number, shopper FROM shoppers)
      UNION ALL
      SELECT number, NULL, key FROM keyed WHERE key <> shopper`;
}

/**
 * A shard's part of the co-purchase table: its pairs, each with up to `maxShoppers` of its shoppers
 * (the least numbers), and its shoppers' other identifiers. Shoppers left out can only make a pair
 * count fewer, never more (the merge may find two of those sent to be one, where a third left out was
 * not): what a shard sends never shows a pair its shoppers would not. Both statements read the same
 * rows, in one batch.
 */
export async function pairCounts(
  db: Db,
  since: string,
  until: string,
  limit: number,
  maxShoppers = minShoppersPerPair,
): Promise<PairCountsPart> {
  const [pairRows = [], labelRows = []] = (await batchRows(db, [
    pairCountsQuery(since, until, limit),
    shopperLabelsQuery(since, until, limit),
  ])) as [
    { productId: string; otherId: string; orders: number; shoppers: string }[],
    { number: number; label: string | null; key: string | null }[],
  ];
  const labels = new Map<number, string>();
  for (const row of labelRows) if (row.label !== null) labels.set(row.number, row.label);
  const labelOf = (number: number) => labels.get(number) ?? unsettledShopper;
  return pairCountsPart(
    pairRows.map((row) => ({
      productId: row.productId,
      otherId: row.otherId,
      orders: row.orders,
      shoppers: (JSON.parse(row.shoppers) as number[])
        .sort((a, b) => a - b)
        .slice(0, maxShoppers)
        .map(labelOf),
    })),
    labelRows.flatMap((row) => (row.key === null ? [] : [{ key: row.key, shopper: labelOf(row.number) }])),
  );
}

/** The co-purchase window's start for a run as of `now`. */
export const copurchaseSince = (now: Date) => new Date(now.getTime() - copurchaseWindowDays * 86_400_000).toISOString();

/**
 * Replaces product_pairs with `pairs` (already thresholded and ranked), in one batch, as copurchaseStep
 * does: readers see the old table or the new one.
 */
export async function savePairs(db: Db, pairs: readonly PairCount[], computedAt: string) {
  await runBatch(db, [
    sql`DELETE FROM product_pairs`,
    sql`
      INSERT INTO product_pairs (product_id, other_id, orders, computed_at)
      SELECT value ->> 'productId', value ->> 'otherId', value ->> 'orders', ${computedAt}
      FROM ${jsonEach(pairs)} WHERE true`,
  ]);
  return { pairs: pairs.length };
}

/**
 * Rebuilds product_pairs: for each product, the `maxPairsPerProduct` products bought in the most of
 * the same orders, by at least `minShoppersPerPair` different shoppers, among the newest
 * `copurchaseOrders` of the last `copurchaseWindowDays`. Delete and insert run in one batch (one
 * transaction), so readers see the old table or the new one, and a re-run rewrites the same rows.
 */
export async function copurchaseStep(db: Db, now: Date, limit = copurchaseOrders) {
  await runBatch(db, [sql`DELETE FROM product_pairs`, copurchaseQuery(copurchaseSince(now), now.toISOString(), limit)]);
  const [row] = await db.all<{ pairs: number }>(sql`SELECT count(*) AS pairs FROM product_pairs`);
  return { pairs: row?.pairs ?? 0 };
}
