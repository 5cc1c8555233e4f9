// D1 reads and writes of the nightly model job, one function per step. Each step is idempotent:
// re-running it after a restart rewrites the same rows (scores are upserts, transitions are unique
// per customer and run), so a resumed run never double-counts.
import { sql } from "drizzle-orm";
import { jsonEach, runBatch } from "../../db/batch.ts";
import { type ScoreProblem, scoreCustomer } from "../core/profile/customer-profile.ts";
import { fitPopulationModels, type PopulationModels, type SummaryRow } from "../core/profile/population-models.ts";
import { createPopulationBuilder } from "../core/ranking/population.ts";
import type { CategoryStat, Product } from "../core/ranking/types.ts";
import type { Db } from "../env.ts";
import { modelNames, saveModels } from "../models/models.repo.ts";

/** Customers used to fit the population models; beyond this a random sample is fitted. */
const maxFitCustomers = 200_000;
const populationPageSize = 2_000;

interface SummaryDbRow {
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

const toSummaryRow = (row: SummaryDbRow): SummaryRow => ({
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

export async function fitCustomerModelsStep(db: Db, now: Date) {
  const rows = await db.all<SummaryDbRow>(sql`
    SELECT ${summaryColumns} FROM customer_summaries s ORDER BY random() LIMIT ${maxFitCustomers}`);
  const models = fitPopulationModels(rows.map(toSummaryRow), now);
  const id = await saveModels(
    db,
    modelNames.customer,
    models,
    models.fittedAt,
    models.sampleSize,
    models.bgnbd.logLikelihood,
  );
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
  const catalog = (await db.query.products.findMany()).map(
    (p): Product => ({ ...p, url: p.url ?? null, imageUrl: p.imageUrl ?? null, salePrice: p.salePrice ?? null }),
  );
  const builder = createPopulationBuilder(now, catalog);
  let cursor = "";
  // Customer ids are random, so the first maxFitCustomers in id order are a uniform random sample:
  // the statistics stay as good and the step's memory stays bounded at any number of customers.
  for (let seen = 0; seen < maxFitCustomers; seen += populationPageSize) {
    const ids = await db.all<{ customer_id: string }>(sql`
      SELECT customer_id FROM customer_summaries WHERE customer_id > ${cursor} ORDER BY customer_id LIMIT ${populationPageSize}`);
    if (ids.length === 0) break;
    cursor = ids[ids.length - 1]?.customer_id ?? cursor;
    const stats = await db.query.customerCategoryStats.findMany({
      where: (s, { and, gte, lte }) => and(gte(s.customerId, ids[0]?.customer_id ?? ""), lte(s.customerId, cursor)),
    });
    const byCustomer = new Map<string, CategoryStat[]>();
    for (const { customerId, ...stat } of stats)
      byCustomer.set(customerId, [...(byCustomer.get(customerId) ?? []), stat]);
    for (const categories of byCustomer.values()) builder.add({ categories });
  }
  const sales = await db.all<{ productId: string; units: number }>(sql`
    SELECT product_id AS productId, sum(quantity) AS units FROM order_lines GROUP BY product_id`);
  builder.addProductSales(sales);
  const population = builder.build();
  const id = await saveModels(db, modelNames.population, population, population.fittedAt, population.customers, null);
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
}

/** Scores one page of customers and records stage changes against their previous score. */
export async function scorePageStep(
  db: Db,
  models: PopulationModels,
  cursor: string,
  pageSize: number,
  runId: string,
  now: Date,
): Promise<ScoredPage> {
  const page = await db.all<
    SummaryDbRow & ChannelCounts & { previous_stage: string | null; previous_run: string | null }
  >(sql`
    SELECT ${summaryColumns}, s.web_orders, s.store_orders, s.app_orders, s.phone_orders,
      c.stage AS previous_stage, c.run_id AS previous_run
    FROM customer_summaries s LEFT JOIN customer_scores c ON c.customer_id = s.customer_id
    WHERE s.customer_id > ${cursor} ORDER BY s.customer_id LIMIT ${pageSize}`);
  if (page.length === 0) return { nextCursor: null, scored: 0, skipped: {}, transitions: 0 };
  const nextCursor = page.length < pageSize ? null : (page[page.length - 1]?.customer_id ?? null);
  // A retried step finds the customers it already scored in this run: they are done, and comparing
  // their stage with itself would hide the transitions the first attempt recorded.
  const rows = page.filter((row) => row.previous_run !== runId);
  const at = now.toISOString();
  const skipped: Partial<Record<ScoreProblem, number>> = {};
  const scores = rows.flatMap((row) => {
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
        categories: [],
        models,
        now,
      });
    } catch {
      outcome = { ok: false, reason: "model_error" };
    }
    if (!outcome.ok) {
      skipped[outcome.reason] = (skipped[outcome.reason] ?? 0) + 1;
      return [];
    }
    const { profile } = outcome;
    return {
      customerId: row.customer_id,
      clv12: profile.clv12,
      clv24: profile.clv24,
      probabilityAlive: profile.probabilityAlive,
      stage: profile.lifecycle.stage,
      previousStage: row.previous_stage,
      valueTier: profile.valueTier,
      discountSensitivity: profile.discount.sensitivity,
    };
  });
  const transitions = scores.filter((s) => s.previousStage !== s.stage);
  await runBatch(db, [
    sql`
      INSERT INTO customer_scores (customer_id, clv_12, clv_24, probability_alive, stage, value_tier, discount_sensitivity, scored_at, run_id)
      SELECT value ->> 'customerId', value ->> 'clv12', value ->> 'clv24', value ->> 'probabilityAlive', value ->> 'stage',
        value ->> 'valueTier', value ->> 'discountSensitivity', ${at}, ${runId}
      FROM ${jsonEach(scores)} WHERE true
      ON CONFLICT (customer_id) DO UPDATE SET clv_12 = excluded.clv_12, clv_24 = excluded.clv_24,
        probability_alive = excluded.probability_alive, stage = excluded.stage, value_tier = excluded.value_tier,
        discount_sensitivity = excluded.discount_sensitivity, scored_at = excluded.scored_at, run_id = excluded.run_id`,
    sql`
      INSERT OR IGNORE INTO stage_transitions (customer_id, from_stage, to_stage, at, run_id)
      SELECT value ->> 'customerId', value ->> 'previousStage', value ->> 'stage', ${at}, ${runId}
      FROM ${jsonEach(transitions)}`,
    sql`
      UPDATE job_runs SET processed = (SELECT count(*) FROM customer_scores WHERE run_id = ${runId}),
        cursor = ${page[page.length - 1]?.customer_id ?? cursor} WHERE id = ${runId}`,
  ]);
  const skippedCount = Object.values(skipped).reduce((sum, n) => sum + (n ?? 0), 0);
  return { nextCursor, scored: page.length - skippedCount, skipped, transitions: transitions.length };
}

export async function startRunStep(db: Db, runId: string, now: Date) {
  await db.run(sql`
    INSERT INTO job_runs (id, kind, status, cursor, processed, started_at) VALUES (${runId}, 'nightly', 'running', '', 0, ${now.toISOString()})
    ON CONFLICT (id) DO NOTHING`);
}

export async function finishRunStep(db: Db, runId: string, detail: unknown, now: Date) {
  await db.run(sql`
    UPDATE job_runs SET status = 'done', finished_at = ${now.toISOString()}, detail = ${JSON.stringify(detail)} WHERE id = ${runId}`);
}

export interface TransitionRow {
  id: number;
  customer_id: string;
  from_stage: string | null;
  to_stage: string;
  at: string;
  run_id: string;
}

/** Transitions at or after `since`, in id order, after the cursor `afterId` (0 for the first page). */
export async function transitionsSince(db: Db, since: string, afterId: number, limit: number) {
  return db.all<TransitionRow>(sql`
    SELECT id, customer_id, from_stage, to_stage, at, run_id FROM stage_transitions
    WHERE at >= ${since} AND id > ${afterId} ORDER BY id LIMIT ${limit}`);
}

/** One run's transitions, a page at a time, for the webhook. */
export async function transitionsOfRun(db: Db, runId: string, afterId: number, limit: number) {
  return db.all<TransitionRow>(sql`
    SELECT id, customer_id, from_stage, to_stage, at, run_id FROM stage_transitions
    WHERE run_id = ${runId} AND id > ${afterId} ORDER BY id LIMIT ${limit}`);
}

export async function jobRun(db: Db, runId: string) {
  return db.query.jobRuns.findFirst({ where: (r, { eq }) => eq(r.id, runId) });
}

export async function countTransitions(db: Db, runId: string): Promise<number> {
  const row = await db.get<{ n: number }>(sql`SELECT count(*) AS n FROM stage_transitions WHERE run_id = ${runId}`);
  return row?.n ?? 0;
}
