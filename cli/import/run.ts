// The import loop: cut records into batches, skip the ones a previous run confirmed, post the rest
// (a few in flight at once), record each confirmation, and stop at the first rejected batch with its
// issues traced back to input line numbers. Knows nothing about files or terminals: sources and the
// progress display are the caller's.
import { BatchRejected, type IngestClient } from "./client.ts";
import {
  confirmBatch,
  emptyTotals,
  type ImportState,
  type ImportTotals,
  isConfirmed,
  markPosted,
  unmarkPosted,
} from "./state.ts";

export type ImportKind = "orders" | "products";

export interface SourceRecord<T> {
  value: T;
  /** 1-based input line numbers this record came from (several for a CSV order). */
  lines: number[];
}

export interface ImportProgress {
  records: number;
  /** Of `records`, those in batches skipped as confirmed by an earlier run (no time spent on them). */
  skippedRecords: number;
  batches: number;
  skippedBatches: number;
  retries: number;
  totals: ImportTotals;
  /** This run's first changed duplicates by id (totals.changed counts them all). */
  changedIds: string[];
  /** Through the queue: since when the worker has customer writes paused (its batches wait), or null. */
  writesPausedAt?: string | null;
}

/** Changed duplicates a run keeps by id, to name in its summary. */
export const changedIdsKept = 5;

/** `ids` added to `kept` (each once), up to changedIdsKept. */
export function keepChangedIds(kept: string[], ids: readonly string[]): void {
  for (const id of ids) if (kept.length < changedIdsKept && !kept.includes(id)) kept.push(id);
}

export const emptyProgress = (): ImportProgress => ({
  records: 0,
  skippedRecords: 0,
  batches: 0,
  skippedBatches: 0,
  retries: 0,
  totals: emptyTotals(),
  changedIds: [],
});

export interface ImportOptions<T> {
  kind: ImportKind;
  records: AsyncIterable<SourceRecord<T>> | Iterable<SourceRecord<T>>;
  client: IngestClient;
  batchSize: number;
  concurrency?: number;
  state?: ImportState;
  /** Called with the new state as every batch is posted and after it is confirmed, to persist it. */
  onState?: (state: ImportState) => void;
  onProgress?: (progress: ImportProgress) => void;
  now?: () => Date;
}

export interface ImportResult extends ImportProgress {
  elapsedMs: number;
  state: ImportState | undefined;
}

export interface LocatedIssue {
  lines: number[];
  recordId: string | null;
  path: (string | number)[];
  message: string;
}

/** A batch was rejected: nothing of it was written; earlier batches stay confirmed. */
export class ImportStopped extends Error {
  constructor(
    readonly batchIndex: number,
    readonly requestId: string | null,
    readonly issues: LocatedIssue[],
    readonly result: ImportResult,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The input could not be read past a point (a line that is not JSON, a row the mapping cannot read, a
 * corrupt gzip): the run stopped there once the batches already in flight were answered. `result` is
 * what the batches before it did, or null when nothing was sent (the input was read before posting).
 */
export class ReadStopped extends Error {
  constructor(
    readonly reason: unknown,
    readonly result: ImportResult | null,
  ) {
    super(reason instanceof Error ? reason.message : String(reason));
    this.name = "ReadStopped";
  }
}

/** `records`, with an error the source itself throws wrapped as a ReadStopped (no result yet), so a loop tells it from its own. */
export async function* whileReadable<T>(records: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T, void, undefined> {
  try {
    yield* records;
  } catch (reason) {
    throw new ReadStopped(reason, null);
  }
}

export const maxBatchSize = 1000;

/** An upper bound on the size of a batch besides its count: each record weighs `weigh(record)`. */
export interface BatchWeight<T> {
  weigh: (record: T) => number;
  max: number;
}

/** Two records that must not share a batch: the same key, other content. */
export interface BatchClash<T> {
  key: (record: T) => string | undefined;
  content: (record: T) => string;
}

/** A batch; `afterClash` when it was begun at a record that clashes with one of the batch before it. */
export type Batch<T> = T[] & { afterClash?: true };

/**
 * Cuts records into batches of `size`, or fewer when the next record would take the batch past
 * `weight.max` (a record heavier than that on its own goes alone) or clashes with one the batch holds
 * (the next batch then says so: `afterClash`). The same records always give the same batches, which is
 * what resuming by batch index relies on.
 */
export async function* batchesOf<T>(
  records: AsyncIterable<T> | Iterable<T>,
  size: number,
  weight?: BatchWeight<T>,
  clash?: BatchClash<T>,
): AsyncGenerator<Batch<T>, void, undefined> {
  if (!Number.isInteger(size) || size < 1 || size > maxBatchSize)
    throw new Error(`batchesOf: batch size must be 1–${maxBatchSize}, got ${size}`);
  let batch: Batch<T> = [];
  let load = 0;
  const held = new Map<string, T>();
  for await (const record of records) {
    const heft = weight ? weight.weigh(record) : 0;
    const key = clash?.key(record);
    const earlier = key === undefined ? undefined : held.get(key);
    const clashes = clash !== undefined && earlier !== undefined && clash.content(earlier) !== clash.content(record);
    if (batch.length > 0 && ((weight && load + heft > weight.max) || clashes)) {
      yield batch;
      batch = [];
      if (clashes) batch.afterClash = true;
      load = 0;
      held.clear();
    }
    batch.push(record);
    load += heft;
    if (key !== undefined && !held.has(key)) held.set(key, record);
    if (batch.length === size) {
      yield batch;
      batch = [];
      load = 0;
      held.clear();
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * An order id reused with other content (in the file as read: a copy alike but for spacing clashes too).
 * Sent in one batch, the API refuses the whole batch (400); in two, the later is a duplicate, counted
 * under `changed` and named in the summary, not applied. Cut there, a file's reused id gives the same
 * outcome wherever its copies fall; a direct run sends the batch after the cut only once every batch
 * before it is answered, so the first copy is the one stored. Exact copies share a batch as before (the
 * repeat is a duplicate). Products are not cut: in two batches the later would overwrite the earlier
 * unsaid, where in one the 400 names both.
 */
export const orderIdClash: BatchClash<SourceRecord<unknown>> = {
  key: (record) => {
    const id = (record.value as { id?: unknown } | null)?.id;
    return typeof id === "string" ? id.trim() : undefined;
  },
  content: (record) => JSON.stringify(record.value),
};

/** Server issue paths start `[<kind>, <index in batch>, ...]`: map them to the records' input lines. */
export function locateIssues<T>(
  issues: { path: (string | number)[]; message: string }[],
  batch: SourceRecord<T>[],
  kind: ImportKind,
): LocatedIssue[] {
  return issues.map((issue) => {
    const [head, index, ...rest] = issue.path;
    const record = head === kind && typeof index === "number" ? batch[index] : undefined;
    if (!record) return { lines: [], recordId: null, path: issue.path, message: issue.message };
    const id = (record.value as { id?: unknown }).id;
    return { lines: record.lines, recordId: typeof id === "string" ? id : null, path: rest, message: issue.message };
  });
}

interface OrdersResponse {
  accepted: number;
  duplicates: number;
  /** Duplicates stored with other content (read as 0 when missing: a server from before it). */
  changed?: number;
  results?: { id: string; status?: string; changed?: boolean | null }[];
  /** Orders of erased customers, not stored (read as 0 when missing). */
  suppressed?: number;
  ignoredIdentifiers?: unknown[];
}

interface ProductsResponse {
  upserted: number;
}

/**
 * What stops a run when posting batch `index` failed: a rejected batch, with its issues traced back to
 * input lines and what was confirmed before it; any other error as it is.
 */
export function stopOf<T>(
  error: unknown,
  batch: SourceRecord<T>[],
  index: number,
  kind: ImportKind,
  before: ImportResult,
): ImportStopped | Error {
  if (!(error instanceof BatchRejected)) return error instanceof Error ? error : new Error(String(error));
  const issues = locateIssues(error.issues, batch, kind);
  return new ImportStopped(index, error.requestId, issues, before, `batch ${index + 1} rejected: ${error.message}`);
}

export async function runImport<T>(options: ImportOptions<T>): Promise<ImportResult> {
  const now = options.now ?? (() => new Date());
  const started = Date.now();
  const concurrency = Math.max(1, options.concurrency ?? 2);
  let state = options.state;
  const progress = emptyProgress();
  const result = (): ImportResult => ({
    ...progress,
    totals: { ...progress.totals },
    changedIds: [...progress.changedIds],
    elapsedMs: Date.now() - started,
    state,
  });
  const inFlight = new Set<Promise<void>>();
  let stopped: ImportStopped | Error | null = null;
  // Batches an earlier run posted and never confirmed (killed, or stopped, while they were in flight).
  const postedBefore = new Set(options.state?.posted ?? []);

  const send = async (batch: SourceRecord<T>[], index: number) => {
    const body = { [options.kind]: batch.map((record) => record.value) };
    try {
      const response = await options.client.post<OrdersResponse | ProductsResponse>(`/v1/${options.kind}`, body);
      const totals = emptyTotals();
      totals.records = batch.length;
      if (options.kind === "orders") {
        const data = response.data as OrdersResponse;
        // Stored by an attempt refused before this answer (customer shards), or by an earlier run that
        // posted this batch and stopped before its answer: this import's, not duplicates. (Through the
        // queue, the worker keeps each batch's own counts, which the rerun reads.)
        // Only an id's first copy in the batch: an exact copy after it is a duplicate of the file's own.
        const firstOfId = new Set<string>();
        const storedBefore = (at: number) => postedBefore.has(index) || response.storedBeforeRetry.includes(at);
        const ours = (data.results ?? []).filter((entry, at) => {
          const first = !firstOfId.has(entry.id);
          firstOfId.add(entry.id);
          return first && storedBefore(at) && entry.status === "duplicate" && entry.changed !== true;
        }).length;
        totals.accepted = data.accepted + ours;
        totals.duplicates = data.duplicates - ours;
        totals.changed = data.changed ?? 0;
        totals.suppressed = data.suppressed ?? 0;
        const changed = (data.results ?? []).filter((entry) => entry.changed === true).map((entry) => entry.id);
        keepChangedIds(progress.changedIds, changed);
        totals.ignoredIdentifiers = data.ignoredIdentifiers?.length ?? 0;
      } else totals.upserted = (response.data as ProductsResponse).upserted;
      progress.retries += response.attempts - 1;
      progress.batches++;
      progress.records += batch.length;
      for (const key of Object.keys(totals) as (keyof ImportTotals)[]) progress.totals[key] += totals[key];
      if (state) {
        state = confirmBatch(state, index, totals, now());
        options.onState?.(state);
      }
      options.onProgress?.(progress);
    } catch (error) {
      // Refused whole, the batch stored nothing: a rerun's duplicates in it are not this run's.
      if (state && error instanceof BatchRejected) {
        state = unmarkPosted(state, index, now());
        options.onState?.(state);
      }
      if (stopped) return;
      stopped = stopOf(error, batch, index, options.kind, result());
    }
  };

  let index = 0;
  let unreadable: ReadStopped | null = null;
  try {
    for await (const batch of batchesOf(
      whileReadable(options.records),
      options.batchSize,
      undefined,
      options.kind === "orders" ? orderIdClash : undefined,
    )) {
      if (stopped) break;
      if (state && isConfirmed(state, index)) {
        progress.skippedBatches++;
        progress.records += batch.length;
        progress.skippedRecords += batch.length;
        options.onProgress?.(progress);
      } else {
        // An order id's other copy goes after the one before it is answered, so the first copy is stored.
        if (batch.afterClash) {
          await Promise.all(inFlight);
          if (stopped) break;
        }
        // Recorded before it is sent: a run killed now leaves it in the state for the rerun (postedBefore).
        if (state) {
          state = markPosted(state, index, now());
          options.onState?.(state);
        }
        const task = send(batch, index).finally(() => inFlight.delete(task));
        inFlight.add(task);
        if (inFlight.size >= concurrency) await Promise.race(inFlight);
      }
      index++;
    }
  } catch (error) {
    // The input stopped making sense part-way: let the batches in flight finish, so the state and the
    // summary of what was written before it are complete, then stop.
    if (!(error instanceof ReadStopped)) throw error;
    unreadable = error;
  }
  await Promise.all(inFlight);
  if (stopped) {
    const error = stopped as ImportStopped | Error;
    if (error instanceof ImportStopped)
      throw new ImportStopped(error.batchIndex, error.requestId, error.issues, result(), error.message);
    throw error;
  }
  if (unreadable) throw new ReadStopped(unreadable.reason, result());
  return result();
}
