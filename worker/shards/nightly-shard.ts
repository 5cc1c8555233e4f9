// A customer shard's part of the nightly job (docs/scaling.md, the nightly job over customer shards):
// its share of the fit samples and of the newest orders' rollups, the scoring of its own customers,
// its transitions, its browse-day expiry and the members of saved audiences among its customers. Each is the single database's repository code run on the
// shard's own database; worker/shards/nightly.ts calls them on every shard and merges the answers.
// Values cross Durable Object RPC, so requests and answers are plain data (times as ISO strings).

import { sql } from "drizzle-orm";
import { runBatch } from "../../db/batch.ts";
import { type ListedRow, type ListFilter, listCustomers } from "../admin/customer-lists.repo.ts";
import { countMembers } from "../audiences/audiences.repo.ts";
import type { AudienceFilters } from "../audiences/audiences.schemas.ts";
import { type ScoredMembers, scoredMembers } from "../audiences/audiences.sync.ts";
import { emptyClvHistogram } from "../core/insights/clv-distribution.ts";
import type { PopulationModels, SummaryRow } from "../core/profile/population-models.ts";
import type { PopulationStats, ProductSales } from "../core/ranking/population.ts";
import type { PairCountsPart } from "../core/shards/nightly-merge.ts";
import type { Db } from "../env.ts";
import { expireBrowseChunks } from "../events/events.upkeep.ts";
import type { MatchKeyName } from "../identity/match-keys.ts";
import {
  countTransitions,
  fitSampleQuery,
  type PopulationCustomer,
  pairCounts,
  populationCustomersPage,
  productSalesQuery,
  type ScoredPage,
  type SummaryDbRow,
  scorePageStep,
  type TransitionRow,
  toSummaryRow,
  transitionsOfRun,
} from "../jobs/nightly.repo.ts";
import { type DiagnosticsSample, diagnosticsSample } from "../models/diagnostics.repo.ts";

/** The summaries of the next `limit` customers after `after` in id order: a page of the fit sample. */
export async function fitSamplePage(db: Db, after: string, limit: number): Promise<SummaryRow[]> {
  const rows = await db.all<SummaryDbRow>(fitSampleQuery(limit, after));
  return rows.map(toSummaryRow);
}

/** The category stats of the next `limit` customers after `after`: a page of the ranking statistics' sample. */
export function populationPage(
  db: Db,
  after: string,
  limit: number,
): Promise<{ customers: PopulationCustomer[]; last: string | null }> {
  return populationCustomersPage(db, after, limit);
}

/** Units sold per product over the shard's newest `orders` orders. */
export function productSales(db: Db, orders: number): Promise<ProductSales[]> {
  return db.all<ProductSales>(productSalesQuery(orders));
}

/** Every product pair's orders and shoppers over the shard's newest `orders` orders placed in [since, until]. */
export function copurchaseCounts(db: Db, since: string, until: string, orders: number): Promise<PairCountsPart> {
  return pairCounts(db, since, until, orders);
}

/** The purchase days of the shard's first `customers` customers by id, as of `now`. */
export function diagnosticsPart(db: Db, now: string, customers: number): Promise<DiagnosticsSample> {
  return diagnosticsSample(db, new Date(now), customers);
}

export interface ShardPageRequest {
  models: PopulationModels;
  population: PopulationStats | null;
  cursor: string;
  pageSize: number;
  runId: string;
  now: string;
  timeZone: string;
  /** The first of the `pageSize` transitions feed ids D1 handed out for this page (takeFeedIds). */
  feedFrom: number;
}

/** How long a shard remembers when a run's pages started here: longer than any run takes. */
const runStartRetentionMs = 30 * 86_400_000;

/**
 * Scores one page of the shard's customers with the run's parameters: the single database's page step
 * on the shard's database, writing changed scores, lapses and transitions here. The run's progress is
 * the caller's to record (job_runs is in D1). A run's first page here records when it started (this
 * shard's clock; a retried first page keeps the first time): the customers moves bring here after that
 * are the run's arrivals (scoreArrivalsPage).
 */
export async function scoreShardPage(db: Db, request: ShardPageRequest, clock: Date): Promise<ScoredPage> {
  if (request.cursor === "")
    await runBatch(db, [
      sql`INSERT OR IGNORE INTO shard_nightly_runs (run_id, started_at) VALUES (${request.runId}, ${clock.toISOString()})`,
      sql`DELETE FROM shard_nightly_runs WHERE started_at < ${new Date(clock.getTime() - runStartRetentionMs).toISOString()}`,
    ]);
  return scorePageStep(db, request.models, request.cursor, request.pageSize, request.runId, new Date(request.now), {
    population: request.population,
    timeZone: request.timeZone,
    recordProgress: false,
    feedFrom: request.feedFrom,
  });
}

/** The customers (`c.value`) of the moves into here since run `runId`'s first page here: FROM … WHERE, for more ANDs. */
const arrivalsOf = (runId: string) => sql`
  shard_nightly_runs r, shard_moves m, json_each(m.customers) c
  WHERE r.run_id = ${runId} AND m.direction = 'in' AND m.created_at >= r.started_at`;

/** How many customers moves brought here since run `runId`'s first page here (0 if it had none). */
export async function arrivalsCount(db: Db, runId: string): Promise<number> {
  const row = await db.get<{ n: number }>(sql`SELECT count(DISTINCT c.value) AS n FROM ${arrivalsOf(runId)}`);
  return row?.n ?? 0;
}

/**
 * Scores the next page of the run's arrivals here: the customers of every move into this shard since
 * the run's first page here, after `cursor` in id order. A customer a move brought here behind the
 * run's pages (after they passed its id, or after its source's pages scored it and before the move's
 * delete took that score away) is otherwise left with the score it came with until the next run.
 * Scoring an arrival the pages scored already writes nothing: a score this run wrote is kept as it is,
 * one that did not change is not written. Arrivals are not added to the run's rollups (traits, CLV
 * histogram, progress): the shard cannot tell which of them a page counted already.
 */
export async function scoreArrivalsPage(db: Db, request: ShardPageRequest): Promise<ScoredPage & { arrivals: number }> {
  const arrived = await db.all<{ id: string }>(sql`
    SELECT DISTINCT c.value AS id FROM ${arrivalsOf(request.runId)}
    AND c.value > ${request.cursor} ORDER BY c.value LIMIT ${request.pageSize}`);
  const ids = arrived.map((row) => row.id);
  const nextCursor = ids.length < request.pageSize ? null : (ids[ids.length - 1] ?? null);
  const scored =
    ids.length === 0
      ? { scored: 0, skipped: {}, transitions: 0, traits: {}, clvHistogram: emptyClvHistogram() }
      : await scorePageStep(db, request.models, "", request.pageSize, request.runId, new Date(request.now), {
          population: request.population,
          timeZone: request.timeZone,
          recordProgress: false,
          feedFrom: request.feedFrom,
          only: ids,
        });
  return { ...scored, nextCursor, arrivals: ids.length };
}

/** How many stage transitions run `runId` recorded in this shard. */
export function runTransitionCount(db: Db, runId: string): Promise<number> {
  return countTransitions(db, runId);
}

/** The run's transitions in this shard after `afterId`, in id order. */
export function runTransitionsPage(db: Db, runId: string, afterId: number, limit: number): Promise<TransitionRow[]> {
  return transitionsOfRun(db, runId, afterId, limit);
}

/** Deletes up to a step's chunks of this shard's browse rollup days before `since`. */
export function expireShardBrowse(db: Db, since: string) {
  return expireBrowseChunks(db, since);
}

/** How many of the shard's scored customers an audience's filters select. */
export function audienceCount(db: Db, filters: AudienceFilters): Promise<number> {
  return countMembers(db, filters);
}

/** One keyset page of the shard's customer list: an audience's members, a page at a time. */
export function audienceMembers(db: Db, filter: ListFilter): Promise<ListedRow[]> {
  return listCustomers(db, filter);
}

/** The scored rows and match keys of those of `customerIds` held here. */
export function audienceRows(db: Db, customerIds: string[], matchKeys: MatchKeyName[]): Promise<ScoredMembers> {
  return scoredMembers(db, customerIds, matchKeys);
}
