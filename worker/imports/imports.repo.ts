// Imports and their batches in D1. An import's progress and totals are always summed from its batch
// rows, and a batch's counts are set once, by the statement that moves it to `done`: a redelivered
// queue message can neither add to a total nor change a recorded batch.
import { sql } from "drizzle-orm";
import { batchRows, jsonEach } from "../../db/batch.ts";
import type { Db } from "../env.ts";
import type { BatchStatus, BatchView } from "./imports.schemas.ts";

export interface ImportRow {
  id: string;
  source: string | null;
  expectedBatches: number | null;
  createdAt: string;
}

/** The counts one processed batch records, as ingestion answered them (summed over an import's batches). */
export interface BatchCounts {
  accepted: number;
  duplicates: number;
  /** Of the duplicates, those stored earlier with other content (not applied). */
  changed: number;
  suppressed: number;
  ignored: number;
  merges: number;
  ignoredIdentifiers: number;
  /** Orders left out, not stored, as their identifiers link more orders than a region may hold. */
  setAside: number;
}

/**
 * What a processed batch records: its counts, the first changed duplicates and set-aside orders by id,
 * and why orders were set aside (null when none was).
 */
export type BatchRecord = BatchCounts & {
  changedIds: readonly string[];
  setAsideIds: readonly string[];
  error: string | null;
};

export interface BatchRow extends BatchView {
  digest: string;
}

/** Changed duplicates a batch records by id: enough to find them, where the count says how many. */
export const changedIdsKept = 10;

/** Set-aside orders a batch records by id, likewise. */
export const setAsideIdsKept = 10;

const batchColumns = sql`sequence, status, digest, orders, accepted, duplicates, changed, changed_ids, suppressed,
  ignored, merges, ignored_identifiers, set_aside, set_aside_ids, attempts, error, received_at, updated_at`;

/** A batch's ingestion counts (or their sums), from the columns of the same names. */
function countsOf(row: Record<string, unknown>): BatchCounts {
  return {
    accepted: Number(row.accepted),
    duplicates: Number(row.duplicates),
    changed: Number(row.changed),
    suppressed: Number(row.suppressed),
    ignored: Number(row.ignored),
    merges: Number(row.merges),
    ignoredIdentifiers: Number(row.ignored_identifiers),
    setAside: Number(row.set_aside),
  };
}

function batchOf(row: Record<string, unknown>): BatchRow {
  return {
    sequence: Number(row.sequence),
    status: row.status as BatchStatus,
    digest: String(row.digest),
    orders: Number(row.orders),
    ...countsOf(row),
    changedIds: JSON.parse(String(row.changed_ids)) as string[],
    setAsideIds: JSON.parse(String(row.set_aside_ids)) as string[],
    attempts: Number(row.attempts),
    error: row.error === null ? null : String(row.error),
    receivedAt: String(row.received_at),
    updatedAt: String(row.updated_at),
  };
}

export async function insertImport(db: Db, row: ImportRow): Promise<void> {
  await batchRows(db, [
    sql`INSERT INTO imports (id, source, expected_batches, created_at)
        VALUES (${row.id}, ${row.source}, ${row.expectedBatches}, ${row.createdAt})`,
  ]);
}

const importOf = (row: Record<string, unknown>): ImportRow => ({
  id: String(row.id),
  source: row.source === null ? null : String(row.source),
  expectedBatches: row.expected_batches === null ? null : Number(row.expected_batches),
  createdAt: String(row.created_at),
});

/**
 * A page of imports, newest first, created before import `before` (its own row first read in the same
 * statement; an id that is no import gives an empty page, so the route checks it first).
 */
export async function importsPage(db: Db, before: string | null, limit: number): Promise<ImportRow[]> {
  const [rows = []] = await batchRows(db, [
    before === null
      ? sql`SELECT id, source, expected_batches, created_at FROM imports
            ORDER BY created_at DESC, id DESC LIMIT ${limit}`
      : sql`SELECT id, source, expected_batches, created_at FROM imports
            WHERE (created_at, id) < (SELECT created_at, id FROM imports WHERE id = ${before})
            ORDER BY created_at DESC, id DESC LIMIT ${limit}`,
  ]);
  return rows.map(importOf);
}

export async function loadImport(db: Db, id: string): Promise<ImportRow | null> {
  const [rows = []] = await batchRows(db, [
    sql`SELECT id, source, expected_batches, created_at FROM imports WHERE id = ${id}`,
  ]);
  return rows[0] ? importOf(rows[0]) : null;
}

export async function loadBatch(db: Db, importId: string, sequence: number): Promise<BatchRow | null> {
  const [rows = []] = await batchRows(db, [
    sql`SELECT ${batchColumns} FROM import_batches WHERE import_id = ${importId} AND sequence = ${sequence}`,
  ]);
  return rows[0] ? batchOf(rows[0]) : null;
}

/**
 * Where a batch cut in halves stopped when its invocation ran out of calls, kept until it is done: the
 * ranges of its orders not tried yet, [start, end) in the order they come next, the indices of the
 * orders set aside so far with the limit their regions reached, and the counts of the orders stored
 * so far (their `accepted` read back), which the delivery that finishes the batch adds its own to.
 * No order ids: an erasure meanwhile finds none here to take out (changed duplicates are named by the
 * delivery that finishes the batch).
 */
export interface SplitProgress {
  pending: [number, number][];
  setAside: number[];
  limit: number;
  counts: Omit<BatchCounts, "setAside">;
}

/** What the import consumer needs of a batch: its status, deliveries so far, and split progress. */
export async function batchProgress(
  db: Db,
  importId: string,
  sequence: number,
): Promise<{ status: BatchStatus; attempts: number; progress: SplitProgress | null } | null> {
  const [rows = []] = await batchRows(db, [
    sql`SELECT status, attempts, split_progress FROM import_batches
        WHERE import_id = ${importId} AND sequence = ${sequence}`,
  ]);
  const row = rows[0];
  if (!row) return null;
  const progress = row.split_progress === null ? null : (JSON.parse(String(row.split_progress)) as SplitProgress);
  return { status: row.status as BatchStatus, attempts: Number(row.attempts), progress };
}

/**
 * Keeps a queued batch's split progress as its invocation sends it back to the queue (undefined: the
 * invocation tried nothing, and the progress stored stays, whichever delivery kept it), its time
 * refreshed as holdBatch does. False when the batch is not queued any more (another delivery recorded
 * it failed or done): nothing is kept.
 */
export async function keepBatchProgress(
  db: Db,
  importId: string,
  sequence: number,
  progress: SplitProgress | undefined,
  now: string,
): Promise<boolean> {
  const kept = progress === undefined ? sql`split_progress` : sql`${JSON.stringify(progress)}`;
  const [rows = []] = await batchRows(db, [
    sql`UPDATE import_batches SET split_progress = ${kept}, updated_at = ${now}
        WHERE import_id = ${importId} AND sequence = ${sequence} AND status = 'queued'
        RETURNING sequence`,
  ]);
  return rows.length > 0;
}

/**
 * Records a newly received batch as queued. `inserted` is false when the sequence was already there
 * (a resend), with the stored batch as it is.
 */
export async function insertBatch(
  db: Db,
  batch: { importId: string; sequence: number; digest: string; orders: number; receivedAt: string },
): Promise<{ inserted: boolean; batch: BatchRow }> {
  const [inserted = []] = await batchRows(db, [
    sql`INSERT INTO import_batches (import_id, sequence, status, digest, orders, received_at, updated_at)
        VALUES (${batch.importId}, ${batch.sequence}, 'queued', ${batch.digest}, ${batch.orders},
                ${batch.receivedAt}, ${batch.receivedAt})
        ON CONFLICT (import_id, sequence) DO NOTHING
        RETURNING ${batchColumns}`,
  ]);
  if (inserted[0]) return { inserted: true, batch: batchOf(inserted[0]) };
  const stored = await loadBatch(db, batch.importId, batch.sequence);
  if (!stored) throw new Error(`import batch ${batch.importId}/${batch.sequence} vanished`);
  return { inserted: false, batch: stored };
}

/** Forgets a batch whose message could not be queued, so a resend starts it afresh. */
export async function deleteQueuedBatch(db: Db, importId: string, sequence: number): Promise<void> {
  await batchRows(db, [
    sql`DELETE FROM import_batches WHERE import_id = ${importId} AND sequence = ${sequence} AND status = 'queued'`,
  ]);
}

/**
 * Moves a failed batch back to queued (a resend), keeping its attempts so the consumer knows an earlier
 * delivery may have written some of it; null when it was not failed (any more).
 */
export async function requeueFailedBatch(
  db: Db,
  importId: string,
  sequence: number,
  now: string,
): Promise<BatchRow | null> {
  const [rows = []] = await batchRows(db, [
    sql`UPDATE import_batches SET status = 'queued', error = NULL, updated_at = ${now}
        WHERE import_id = ${importId} AND sequence = ${sequence} AND status = 'failed'
        RETURNING ${batchColumns}`,
  ]);
  return rows[0] ? batchOf(rows[0]) : null;
}

/**
 * Claims a batch that has been queued since before `olderThan` for sending again (its message was
 * lost); marks it as delivered before (attempts at least 1) so the consumer reads its counts back.
 * Null when it is not such a batch.
 */
export async function reclaimStaleBatch(
  db: Db,
  importId: string,
  sequence: number,
  olderThan: string,
  now: string,
): Promise<BatchRow | null> {
  const [rows = []] = await batchRows(db, [
    sql`UPDATE import_batches SET attempts = max(attempts, 1), updated_at = ${now}
        WHERE import_id = ${importId} AND sequence = ${sequence} AND status = 'queued' AND updated_at < ${olderThan}
        RETURNING ${batchColumns}`,
  ]);
  return rows[0] ? batchOf(rows[0]) : null;
}

/** Undoes reclaimStaleBatch when the message could not be sent, so the next resend reclaims it again. */
export async function unclaimBatch(db: Db, importId: string, sequence: number, updatedAt: string): Promise<void> {
  await batchRows(db, [
    sql`UPDATE import_batches SET updated_at = ${updatedAt}
        WHERE import_id = ${importId} AND sequence = ${sequence} AND status = 'queued'`,
  ]);
}

/**
 * Records a batch processed with its counts. Only the first delivery that gets here records anything:
 * a batch already done keeps the counts it has.
 */
export async function recordBatchDone(
  db: Db,
  importId: string,
  sequence: number,
  counts: BatchRecord,
  attempts: number,
  now: string,
): Promise<void> {
  await batchRows(db, [
    sql`UPDATE import_batches SET status = 'done', accepted = ${counts.accepted}, duplicates = ${counts.duplicates},
          changed = ${counts.changed}, changed_ids = ${JSON.stringify(counts.changedIds.slice(0, changedIdsKept))},
          suppressed = ${counts.suppressed}, ignored = ${counts.ignored}, merges = ${counts.merges},
          ignored_identifiers = ${counts.ignoredIdentifiers}, set_aside = ${counts.setAside},
          set_aside_ids = ${JSON.stringify(counts.setAsideIds.slice(0, setAsideIdsKept))}, attempts = ${attempts},
          error = ${counts.error}, split_progress = NULL,
          updated_at = ${now}
        WHERE import_id = ${importId} AND sequence = ${sequence} AND status <> 'done'`,
  ]);
}

/** Records a batch failed with its error, unless it is done already. */
export async function recordBatchFailed(
  db: Db,
  importId: string,
  sequence: number,
  error: string,
  attempts: number,
  now: string,
): Promise<void> {
  await batchRows(db, [
    sql`UPDATE import_batches SET status = 'failed', error = ${error}, attempts = ${attempts}, updated_at = ${now}
        WHERE import_id = ${importId} AND sequence = ${sequence} AND status <> 'done'`,
  ]);
}

/** Counts the delivery attempt of a batch still being processed (shown while it is retried). */
export async function recordBatchAttempt(db: Db, importId: string, sequence: number, attempts: number, now: string) {
  await batchRows(db, [
    sql`UPDATE import_batches SET attempts = ${attempts}, updated_at = ${now}
        WHERE import_id = ${importId} AND sequence = ${sequence} AND status = 'queued'`,
  ]);
}

/** Refreshes the time of a queued batch that waits for customer writes to open (its attempts unchanged). */
export async function holdBatch(db: Db, importId: string, sequence: number, now: string) {
  await batchRows(db, [
    sql`UPDATE import_batches SET updated_at = ${now}
        WHERE import_id = ${importId} AND sequence = ${sequence} AND status = 'queued'`,
  ]);
}

/**
 * Of `orderIds`, the orders stored with `createdAt` exactly: the ones a batch received at that instant
 * wrote, whichever delivery of it wrote them. With their stored recommendation id, to tell the
 * attributions ingestion ignored.
 */
export async function ordersWrittenAt(
  db: Db,
  orderIds: readonly string[],
  createdAt: string,
): Promise<Map<string, string | null>> {
  const [rows = []] = await batchRows(db, [
    sql`SELECT id, recommendation_id FROM orders
        WHERE id IN (SELECT value FROM ${jsonEach([...new Set(orderIds)])}) AND created_at = ${createdAt}`,
  ]);
  return new Map(
    rows.map((row) => [String(row.id), row.recommendation_id === null ? null : String(row.recommendation_id)]),
  );
}

export interface BatchTally extends BatchCounts {
  status: BatchStatus;
  batches: number;
  orders: number;
  updatedAt: string;
}

/** Batches, orders and counts of an import, per status. */
export async function batchTallies(db: Db, importId: string): Promise<BatchTally[]> {
  return (await batchTalliesOf(db, [importId])).get(importId) ?? [];
}

/** Batches, orders and counts of each of `importIds`, per status (an import with no batch is absent). */
export async function batchTalliesOf(db: Db, importIds: readonly string[]): Promise<Map<string, BatchTally[]>> {
  const [rows = []] = await batchRows(db, [
    sql`SELECT import_id, status, count(*) AS batches, sum(orders) AS orders, sum(accepted) AS accepted,
          sum(duplicates) AS duplicates, sum(changed) AS changed, sum(suppressed) AS suppressed,
          sum(ignored) AS ignored, sum(merges) AS merges, sum(ignored_identifiers) AS ignored_identifiers,
          sum(set_aside) AS set_aside, max(updated_at) AS updated_at
        FROM import_batches WHERE import_id IN (SELECT value FROM ${jsonEach(importIds)}) GROUP BY import_id, status`,
  ]);
  const tallies = new Map<string, BatchTally[]>();
  for (const row of rows) {
    const id = String(row.import_id);
    tallies.set(id, [
      ...(tallies.get(id) ?? []),
      {
        status: row.status as BatchStatus,
        batches: Number(row.batches),
        orders: Number(row.orders),
        ...countsOf(row),
        updatedAt: String(row.updated_at),
      },
    ]);
  }
  return tallies;
}

/** A page of an import's batches in sequence order, of one status or all, after sequence `after`. */
export async function batchesPage(
  db: Db,
  importId: string,
  status: BatchStatus | undefined,
  after: number,
  limit: number,
): Promise<BatchRow[]> {
  const [rows = []] = await batchRows(db, [
    status
      ? sql`SELECT ${batchColumns} FROM import_batches
            WHERE import_id = ${importId} AND status = ${status} AND sequence > ${after}
            ORDER BY sequence LIMIT ${limit}`
      : sql`SELECT ${batchColumns} FROM import_batches
            WHERE import_id = ${importId} AND sequence > ${after} ORDER BY sequence LIMIT ${limit}`,
  ]);
  return rows.map(batchOf);
}
