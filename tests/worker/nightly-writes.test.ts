// The nightly job's scoring writes only the customers whose scores changed (meta.rows_written, counted
// on every batch the steps run), keeps the stored rows of the others as they were, keeps progress and
// transitions right on a retried step. Runs on either store: on shards each shard scores its own
// customers in its own database (its writes counted there) and the run's progress is kept in D1.
import { env, SELF } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PopulationModels } from "../../worker/core/profile/population-models.ts";
import { type ScoreFigures, scoreChanged } from "../../worker/core/profile/score-change.ts";
import type { PopulationStats } from "../../worker/core/ranking/population.ts";
import type { Db } from "../../worker/env.ts";
import { finishRunStep, jobRun, startRunStep } from "../../worker/jobs/nightly.repo.ts";
import { modelsById } from "../../worker/models/models.repo.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { anOrder, client } from "../fixtures/builders.ts";
import {
  countedScorePage,
  d1Db,
  nightlyStore,
  scoringPartitions,
  type WriteCounter,
} from "../fixtures/nightly-store.ts";
import { storeRows, storeRun } from "../fixtures/store-rows.ts";

const api = client(SELF);
const day = 86_400_000;
const customers = 240;
const pageSize = 40;

/** Regulars still buying, regulars who stopped, one-time buyers, each on their own rhythm. */
function base(asOf: Date) {
  const orders = [];
  for (let c = 0; c < customers; c++) {
    const interval = 9 + (c % 7) * 6;
    const stopped = c % 3 === 0;
    const count = c % 10 === 9 ? 1 : 3 + (c % 5);
    const last = asOf.getTime() - (stopped ? interval * 4 : interval * 0.4) * day;
    for (let k = 0; k < count; k++)
      orders.push(
        anOrder({
          id: `writes-${c}-${k}`,
          channel: k % 2 ? "store" : "web",
          placedAt: new Date(last - (count - 1 - k) * interval * day).toISOString(),
          identifiers: { loyalty: `WRITES-${c}` },
          lines: [
            { productId: `p-${c % 9}`, categoryId: `cat-${c % 4}`, quantity: 1, unitPrice: 15 + (c % 40) },
            { productId: `p-${(c + k) % 9}`, categoryId: `cat-${(c + k) % 4}`, quantity: 1, unitPrice: 8 + k },
          ],
        }),
      );
  }
  return orders;
}

interface ScoreRow {
  customer_id: string;
  stage: string;
  clv_12: number;
  run_id: string;
  scored_at: string;
  [column: string]: unknown;
}

/** Rows of the store in `keys` order (each shard's rows come sorted; merged, they are sorted again). */
function sortedBy<T extends Record<string, unknown>>(rows: T[], ...keys: string[]): T[] {
  const key = (row: T) => keys.map((name) => String(row[name])).join("\u0000");
  return rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

async function storedScores(): Promise<Map<string, ScoreRow>> {
  const rows = await storeRows<ScoreRow>("SELECT * FROM customer_scores ORDER BY customer_id");
  return new Map(sortedBy(rows, "customer_id").map((row) => [row.customer_id, row]));
}

async function storedLapses() {
  const rows = await storeRows("SELECT * FROM customer_category_lapses ORDER BY customer_id, category_id");
  return sortedBy(rows, "customer_id", "category_id");
}

function lapsesByCustomer(rows: Record<string, unknown>[]) {
  const byCustomer = new Map<string, string[]>();
  for (const row of rows)
    byCustomer.set(row.customer_id as string, [
      ...(byCustomer.get(row.customer_id as string) ?? []),
      row.category_id as string,
    ]);
  return byCustomer;
}

/** A stored score row as the comparison the job makes reads it. */
const figuresOf = (row: ScoreRow, lapsedCategories: string[]): ScoreFigures => ({
  stage: row.stage,
  valueTier: row.value_tier as string,
  discountSensitivity: row.discount_sensitivity as string | null,
  offerGuidance: row.offer_guidance as string | null,
  clv12: row.clv_12,
  clv24: row.clv_24 as number,
  clvAtStake: row.clv_at_stake as number,
  probabilityAlive: row.probability_alive as number,
  overdueRatio: row.overdue_ratio as number,
  expectedNextOrderAt: row.expected_next_order_at as string,
  purchaseDays: row.purchase_days as number,
  lapsedCategories,
});

async function transitionsOf(runId: string) {
  const rows = await storeRows<{ customer_id: string; from_stage: string | null; to_stage: string }>(
    "SELECT customer_id, from_stage, to_stage FROM stage_transitions WHERE run_id = ? ORDER BY customer_id",
    runId,
  );
  return sortedBy(rows, "customer_id");
}

/** The run's fits, as the workflow makes them (on shards, from every shard's sample), saved in `db`. */
async function fits(db: Db, asOf: Date) {
  const store = nightlyStore(env, db);
  const fit = await store.fitCustomerModels(asOf);
  const population = await store.fitPopulation(asOf);
  return {
    models: await modelsById<PopulationModels>(db, fit.id),
    population: await modelsById<PopulationStats>(db, population.id),
  };
}

/** A page request of run `runId` with the run's fits; the time zone is the steps' default. */
const pageRequest = (
  runId: string,
  asOf: Date,
  { models, population }: Awaited<ReturnType<typeof fits>>,
  cursor: string,
  scoredBefore: number,
) => ({ models, population, cursor, pageSize, runId, now: asOf, timeZone: "UTC", scoredBefore });

/**
 * The scoring steps of one nightly run, page by page as the workflow runs them (each part's pages: the
 * one database's, or each shard's); rows written counted.
 */
async function scoringRun(runId: string, asOf: Date) {
  const counter: WriteCounter = { rowsWritten: 0 };
  const db = d1Db(counter);
  const fitted = await fits(db, asOf);
  await startRunStep(db, runId, asOf);
  counter.rowsWritten = 0;
  let scored = 0;
  for (let partition = 0; partition < scoringPartitions(); partition++) {
    let cursor = "";
    let scoredInPart = 0;
    for (;;) {
      const page = await countedScorePage(partition, pageRequest(runId, asOf, fitted, cursor, scoredInPart), counter);
      scoredInPart += page.scored;
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    scored += scoredInPart;
  }
  const { rowsWritten } = counter;
  // Finished as the Workflow's last step finishes it: the next run's row can then be the running one.
  await finishRunStep(db, runId, { scored }, new Date());
  return { rowsWritten, scored };
}

describe("nightly scoring writes only changed scores", () => {
  const asOf = new Date(Date.UTC(2026, 5, 1));
  const nextDay = new Date(asOf.getTime() + day);
  const figures: Record<string, number> = {};

  // The figures docs/scaling.md quotes.
  afterAll(() => {
    const store = shardCount(env) > 0 ? `, ${shardCount(env)} shards` : "";
    console.info(`nightly scoring rows written (${customers} customers${store}): ${JSON.stringify(figures)}`);
  });

  beforeAll(async () => {
    const orders = base(asOf);
    for (let i = 0; i < orders.length; i += 250)
      expect((await api.postOrders(orders.slice(i, i + 250))).status).toBe(200);
  });

  it("a second run a day later with no new orders rewrites no unchanged customer", async () => {
    const first = await scoringRun("writes-1", asOf);
    expect(first.scored).toBe(customers);
    figures.firstRun = first.rowsWritten;
    const before = await storedScores();
    const lapsesBefore = await storedLapses();
    expect(before.size).toBe(customers);

    const second = await scoringRun("writes-2", nextDay);
    figures.secondRun = second.rowsWritten;
    const after = await storedScores();
    const rewritten = [...after.values()].filter((row) => row.run_id === "writes-2");
    figures.secondRunCustomersRewritten = rewritten.length;
    // Most scores are the same a day later at the precision they are compared at; those rows are untouched.
    expect(rewritten.length).toBeLessThan(customers / 4);
    for (const [id, row] of after) if (row.run_id !== "writes-2") expect(row, id).toEqual(before.get(id));
    const lapsesAfter = await storedLapses();
    const untouched = new Set([...after.values()].filter((row) => row.run_id !== "writes-2").map((r) => r.customer_id));
    expect(lapsesAfter.filter((l) => untouched.has(l.customer_id as string))).toEqual(
      lapsesBefore.filter((l) => untouched.has(l.customer_id as string)),
    );
    // Far fewer rows than the first run, which wrote every customer.
    expect(second.rowsWritten).toBeLessThan(first.rowsWritten / 3);
    // Progress still counts every customer the run scored.
    expect(second.scored).toBe(customers);
    expect((await jobRun(d1Db(), "writes-2"))?.processed).toBe(customers);
  });

  it("leaves what lists and audiences read as a full rescore would write it: labels exact, figures within tolerance", async () => {
    const kept = await storedScores();
    const keptLapses = lapsesByCustomer(await storedLapses());
    await storeRun("DELETE FROM customer_scores");
    await storeRun("DELETE FROM customer_category_lapses");
    // The same instant and data: the same fits, every customer written afresh.
    await scoringRun("writes-full", nextDay);
    const full = await storedScores();
    const fullLapses = lapsesByCustomer(await storedLapses());
    expect([...full.keys()]).toEqual([...kept.keys()]);
    for (const [id, fresh] of full) {
      const stored = kept.get(id) as ScoreRow;
      const labels = (row: ScoreRow) => [row.stage, row.value_tier, row.discount_sensitivity, row.offer_guidance];
      expect(labels(stored), id).toEqual(labels(fresh));
      expect(keptLapses.get(id) ?? [], id).toEqual(fullLapses.get(id) ?? []);
      const figures = figuresOf(stored, keptLapses.get(id) ?? []);
      expect(scoreChanged(figures, figuresOf(fresh, fullLapses.get(id) ?? []), nextDay), id).toBe(false);
    }
  });

  it("rewrites the customers whose orders or stored figures changed, and only them", async () => {
    const before = await storedScores();
    // Three customers order again; one stored row is off (as if written by different figures).
    const buyers = [1, 2, 4];
    expect(
      (
        await api.postOrders(
          buyers.map((c) =>
            anOrder({
              id: `writes-new-${c}`,
              placedAt: new Date(nextDay.getTime() - 3_600_000).toISOString(),
              identifiers: { loyalty: `WRITES-${c}` },
              lines: [{ productId: "p-1", categoryId: `cat-${c % 4}`, quantity: 1, unitPrice: 15 + c }],
            }),
          ),
        )
      ).status,
    ).toBe(200);
    const idOf = async (c: number) =>
      ((await (await api.lookup("loyalty", `WRITES-${c}`)).json()) as { data: { customerId: string } }).data.customerId;
    const buyerIds = await Promise.all(buyers.map(idOf));
    const tampered = await idOf(5);
    const truth = before.get(tampered) as ScoreRow;
    await storeRun("UPDATE customer_scores SET clv_12 = clv_12 * 2 + 10 WHERE customer_id = ?", tampered);

    // Scored again as of the same instant as the last run: what changed is the orders and the tampering.
    const third = await scoringRun("writes-3", nextDay);
    figures.afterNewOrders = third.rowsWritten;
    const after = await storedScores();
    for (const id of buyerIds) {
      expect(after.get(id)?.run_id, id).toBe("writes-3");
      expect(after.get(id)?.scored_at).toBe(nextDay.toISOString());
      // Bought an hour ago: no longer overdue at all.
      expect(after.get(id)?.overdue_ratio).toBeLessThan(before.get(id)?.overdue_ratio as number);
      expect(after.get(id)?.overdue_ratio).toBeLessThan(0.1);
    }
    expect(after.get(tampered)?.run_id).toBe("writes-3");
    // Rewritten with the figure computed again, not the tampered one.
    expect(Math.abs((after.get(tampered)?.clv_12 as number) / truth.clv_12 - 1)).toBeLessThan(0.1);
    const rewritten = [...after.values()].filter((row) => row.run_id === "writes-3");
    figures.afterNewOrdersCustomersRewritten = rewritten.length;
    expect(rewritten.length).toBeLessThan(customers / 4);
  });

  it("a retried page records each stage transition once and writes nothing more", async () => {
    // Two months on with no orders: many customers change stage.
    const later = new Date(asOf.getTime() + 60 * day);
    const counter: WriteCounter = { rowsWritten: 0 };
    const db = d1Db(counter);
    const fitted = await fits(db, later);
    await startRunStep(db, "writes-retry", later);
    // The first page of the first part (the one database, or shard 0).
    const firstPage = pageRequest("writes-retry", later, fitted, "", 0);
    const first = await countedScorePage(0, firstPage, counter);
    const transitions = await transitionsOf("writes-retry");
    expect(first.transitions).toBeGreaterThan(0);
    expect(transitions).toHaveLength(first.transitions);
    const stored = await storedScores();

    // Workflows re-runs the step when the isolate died before its result was recorded.
    counter.rowsWritten = 0;
    const retried = await countedScorePage(0, firstPage, counter);
    expect(await transitionsOf("writes-retry")).toEqual(transitions);
    expect(await storedScores()).toEqual(stored);
    expect(retried.scored).toBe(first.scored);
    // Only the run's progress is written again: its row in D1 (on shards, the shard's progress row and
    // the run's sum of them).
    expect(counter.rowsWritten).toBe(shardCount(env) > 0 ? 2 : 1);
    expect((await jobRun(db, "writes-retry"))?.processed).toBe(first.scored);
  });
});
