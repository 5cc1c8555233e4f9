// Orders through the server's queue-backed import (POST /v1/imports, docs/api.md): create the import
// with the number of batches the run will post (so a run stopped part-way leaves it open, not done),
// or take up the one a previous run recorded in the state file, confirm the batches the server
// already processed, post the rest (a few in flight; each is validated at once, so a bad batch stops
// the run with its input lines as the direct path does), then follow the import's progress until the
// queue has processed every batch. Batches are cut by count and by size, as one batch is one queue
// message. Knows nothing about files or terminals, like run.ts.
import { type IngestClient, IngestFailed } from "./client.ts";
import {
  batchesOf,
  emptyProgress,
  type ImportOptions,
  type ImportResult,
  ImportStopped,
  keepChangedIds,
  orderIdClash,
  ReadStopped,
  type SourceRecord,
  stopOf,
  whileReadable,
} from "./run.ts";
import {
  confirmBatch,
  countConfirmed,
  emptyState,
  emptyTotals,
  type ImportState,
  type ImportTotals,
  isConfirmed,
} from "./state.ts";

/**
 * Orders per batch are also capped at this many bytes of JSON: a queue message holds 128,000 bytes,
 * and the worker's validation may add a little (a default currency) to what is sent.
 */
export const maxQueuedBatchBytes = 112_000;

interface ImportView {
  id: string;
  status: "open" | "done" | "failed";
  /** The batches the import was told to expect when it was created; it stays open until that many arrived. */
  expectedBatches?: number | null;
  batches: { received: number; queued: number; done: number; failed: number };
  orders: { received: number; processed: number };
  /** A missing `suppressed` or `changed` is read as 0. */
  totals: { accepted: number; duplicates: number; suppressed?: number; changed?: number };
  /** Since when customer writes are paused for a migration's last pass (missing from older workers). */
  writesPausedAt?: string | null;
}

interface BatchView {
  sequence: number;
  status: "queued" | "done" | "failed";
  orders: number;
  accepted: number;
  duplicates: number;
  suppressed?: number;
  /** Duplicates stored with other content, and the first few by id (missing from a server before them). */
  changed?: number;
  changedIds?: string[];
  ignoredIdentifiers: number;
  /**
   * Orders of a done batch the worker set aside, not stored, as their identifiers link too many orders
   * (a placeholder), the first few by id; `error` says why (missing from a server before them).
   */
  setAside?: number;
  setAsideIds?: string[];
  error: string | null;
}

/**
 * The wait for the queue gives up after this long without a batch processed: a message the queue lost
 * leaves its batch queued for good, and the server requeues a batch resent after it has been queued 15
 * minutes without news, so a rerun then sends it again.
 */
export const defaultStallMs = 20 * 60_000;

/**
 * Each read of an import's progress is given this long before it is asked again. It answers in
 * milliseconds (a few indexed rows); under the local dev server a read that met a dropped connection
 * between wrangler's proxy and the worker waits there for a reload that never comes, and without this
 * the run stood still for the client's whole request timeout (2 minutes).
 */
export const progressReadTimeoutMs = 20_000;
const quickRead = { timeoutMs: progressReadTimeoutMs };

export interface QueuedImportOptions<T> extends ImportOptions<T> {
  /** A label for the import (the file name). */
  source: string;
  /** How many batches the run posts in all (countQueuedBatches), sent when the import is created. */
  expectedBatches?: number;
  /** The import already opened by openQueuedImport (the caller printed what it found); else it is opened here. */
  opened?: OpenedImport;
  /** How often the import's progress is read while waiting. */
  pollIntervalMs?: number;
  /** How long the wait goes on without a batch processed before it stops (defaultStallMs). */
  stallMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface QueuedImportResult extends ImportResult {
  importId: string;
  /** Batches of this run the server recorded failed, with their error and their number of orders. */
  failed: { sequence: number; orders: number; error: string }[];
  /**
   * Done batches with orders the server set aside, with their count, first ids and reason: this run's,
   * and (`earlier`) those of batches an earlier run confirmed and this one skipped, whose orders are
   * still not stored.
   */
  setAside: { sequence: number; orders: number; ids: string[]; error: string; earlier?: boolean }[];
  /** Batches this run posted and the server took (queued or resent). */
  posted: number;
  /** Batches the import had received when this run took it up (0 for a new import). */
  receivedBefore: number;
  /** The import's status as last read (`GET /v1/imports/:id`), null before it was read. */
  status: ImportView["status"] | null;
}

/** The queue processed nothing for too long: its messages for the batches still queued may be lost. */
export class ImportStalled extends Error {
  constructor(
    readonly importId: string,
    readonly queued: number,
    minutes: number,
  ) {
    super(
      `${queued} batch(es) of import ${importId} are still queued after ${minutes} minutes without a batch processed: the worker's queue consumer may be stopped, or their messages lost. Rerun the same command: it skips the batches already in and resends these (the server queues a batch again once it has waited 15 minutes).`,
    );
    this.name = "ImportStalled";
  }
}

/** Every batch was posted and processed, but some failed on the server: a rerun sends them again. */
export class ImportIncomplete extends Error {
  constructor(readonly result: QueuedImportResult) {
    super(`${result.failed.length} batch(es) of import ${result.importId} failed on the server`);
  }
}

const encoder = new TextEncoder();
const bytesOf = (value: unknown) => encoder.encode(JSON.stringify(value)).byteLength;

/** What a queued batch weighs: each order's JSON and a comma, against maxQueuedBatchBytes. */
const queuedBatchWeight = {
  weigh: (record: SourceRecord<unknown>) => bytesOf(record.value) + 1,
  max: maxQueuedBatchBytes,
};

/** The most batches an import can be told to expect (the API's limit). */
const maxExpectedBatches = 10_000_000;

/**
 * The records and the batches a queued run of `records` posts, cut as runQueuedImport cuts them (by
 * count and by size). Reads every record: a source that cannot be read through throws here, before
 * anything is sent.
 */
export async function countQueuedBatches<T>(
  records: AsyncIterable<SourceRecord<T>> | Iterable<SourceRecord<T>>,
  batchSize: number,
): Promise<{ records: number; batches: number }> {
  let count = 0;
  let batches = 0;
  for await (const batch of batchesOf(records, batchSize, queuedBatchWeight, orderIdClash)) {
    batches++;
    count += batch.length;
  }
  return { records: count, batches };
}

function totalsOf(batch: BatchView): ImportTotals {
  return {
    ...emptyTotals(),
    // Set-aside orders are not stored: the confirmed totals add up without them.
    records: batch.orders - (batch.setAside ?? 0),
    accepted: batch.accepted,
    duplicates: batch.duplicates,
    changed: batch.changed ?? 0,
    suppressed: batch.suppressed ?? 0,
    ignoredIdentifiers: batch.ignoredIdentifiers,
  };
}

/** Every batch of the import (of one status, or all), page by page. */
async function* batchesOfImport(
  client: IngestClient,
  importId: string,
  status?: BatchView["status"],
): AsyncGenerator<BatchView> {
  let after = -1;
  for (;;) {
    const query = `${status ? `status=${status}&` : ""}after=${after}&limit=1000`;
    const page = await client.get<{ batches: BatchView[]; next: number | null }>(
      `/v1/imports/${importId}/batches?${query}`,
      quickRead,
    );
    yield* page.data.batches;
    if (page.data.next === null) return;
    after = page.data.next;
  }
}

/** What opening a queued run found: its import, and the state with the batches the server reports done. */
export interface OpenedImport {
  importId: string;
  state: ImportState | undefined;
  /** Batches the state had not confirmed that the server reports done (an earlier run stopped while they were queued). */
  foundDone: number;
  /**
   * The import the state named, when the server no longer has it and `importId` is a new one; the state
   * then confirms nothing (every batch goes again).
   */
  lost: string | null;
}

type OpenOptions = Pick<
  QueuedImportOptions<unknown>,
  "client" | "state" | "source" | "expectedBatches" | "onState" | "now"
>;

/** A batch count the API accepts as `expectedBatches` (1 to its limit), else undefined: not sent. */
const sendableCount = (expected: number | undefined) =>
  expected !== undefined && expected >= 1 && expected <= maxExpectedBatches ? expected : undefined;

/** The body that creates an import: its label and, when sendable, its batch count. */
function createBody(options: OpenOptions): { source: string; expectedBatches?: number } {
  const expectedBatches = sendableCount(options.expectedBatches);
  return { source: options.source.slice(-200), ...(expectedBatches === undefined ? {} : { expectedBatches }) };
}

/**
 * The import the state names, if the server still has it, otherwise a new one (told how many batches
 * to expect); and the state with every batch the server reports done confirmed, saved through onState.
 */
export async function openQueuedImport(options: OpenOptions): Promise<OpenedImport> {
  const now = options.now ?? (() => new Date());
  const recorded = options.state?.importId;
  let importId: string | null = null;
  if (recorded) {
    try {
      await options.client.get<ImportView>(`/v1/imports/${recorded}`, quickRead);
      importId = recorded;
    } catch (error) {
      if (!(error instanceof IngestFailed && error.status === 404)) throw error;
    }
  }
  // An import the worker does not know is a store reset, or another worker at the same address: what
  // the state file confirmed may not be there, so every batch goes again (orders the worker already
  // holds come back as duplicates, counted once).
  const known = recorded === undefined || importId !== null;
  const from =
    options.state && !known ? emptyState(options.state.fingerprint, options.state.source, now()) : options.state;
  // A new import receives only the batches the state has not confirmed: it expects that many, or it
  // would stay open for good.
  const confirmed = from ? countConfirmed(from) : 0;
  const expectedBatches = options.expectedBatches === undefined ? undefined : options.expectedBatches - confirmed;
  importId ??= (await options.client.post<ImportView>("/v1/imports", createBody({ ...options, expectedBatches }))).data
    .id;
  let state: ImportState | undefined = from && { ...from, importId };
  let foundDone = 0;
  if (state) {
    // Batches an interrupted run left to the queue may have been processed since.
    for await (const batch of batchesOfImport(options.client, importId, "done")) {
      if (!isConfirmed(state, batch.sequence)) foundDone++;
      state = confirmBatch(state, batch.sequence, totalsOf(batch), now());
    }
    options.onState?.(state);
  }
  return { importId, state, foundDone, lost: recorded && recorded !== importId ? recorded : null };
}

/**
 * The first of `importIds` (imports earlier runs created: state.ts's unconfirmedImports) that the
 * server still has, that has received no batch and that expects `expectedBatches` (as many as this run
 * posts; none when unknown), or null. A run that takes it up, rather than creating another, leaves no
 * empty import open for good behind a first batch the server refused. One expecting another count
 * would read done too early, or never: it is left alone.
 */
export async function unusedImport(
  client: IngestClient,
  importIds: readonly string[],
  expectedBatches?: number,
): Promise<string | null> {
  const wanted = sendableCount(expectedBatches) ?? null;
  for (const importId of importIds) {
    try {
      const { data } = await client.get<ImportView>(`/v1/imports/${importId}`, quickRead);
      if (data.batches.received === 0 && (data.expectedBatches ?? null) === wanted) return importId;
    } catch (error) {
      // Gone, or another worker's import (404): not this one. Anything else (the key, the network) is
      // the run's problem, and creating an import would meet it too.
      if (!(error instanceof IngestFailed && error.status === 404)) throw error;
    }
  }
  return null;
}

export async function runQueuedImport<T>(options: QueuedImportOptions<T>): Promise<QueuedImportResult> {
  const now = options.now ?? (() => new Date());
  const sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const started = Date.now();
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const progress = emptyProgress();

  const opened = options.opened ?? (await openQueuedImport(options));
  const importId = opened.importId;
  let state: ImportState | undefined = opened.state;
  const saveState = (next: ImportState) => {
    state = next;
    options.onState?.(next);
  };
  // The progress shown: records skipped as confirmed, then orders the queue processed since this run
  // first read the import (atStart); the running counts likewise, until the batches' own replace them.
  let atStart: ImportView | null = null;
  let latest: ImportView | null = null;
  const sent = new Map<number, number>();
  const setAside: QueuedImportResult["setAside"] = [];
  const result = (failed: QueuedImportResult["failed"] = []): QueuedImportResult => ({
    ...progress,
    totals: { ...progress.totals },
    changedIds: [...progress.changedIds],
    elapsedMs: Date.now() - started,
    state,
    importId,
    failed,
    setAside,
    posted: sent.size,
    receivedBefore: atStart?.batches.received ?? 0,
    // As the wait above last read it, once nothing was queued: `done`, `failed`, or `open` while
    // batches of an earlier, stopped run are still to come.
    status: latest?.status ?? null,
  });

  const showProgress = async (): Promise<ImportView> => {
    const { data: view } = await options.client.get<ImportView>(`/v1/imports/${importId}`, quickRead);
    atStart ??= view;
    latest = view;
    const since = (count: (view: ImportView) => number) => Math.max(0, count(view) - count(atStart ?? view));
    progress.records = progress.skippedRecords + since((v) => v.orders.processed);
    progress.totals.accepted = since((v) => v.totals.accepted);
    progress.totals.duplicates = since((v) => v.totals.duplicates);
    progress.totals.changed = since((v) => v.totals.changed ?? 0);
    progress.totals.suppressed = since((v) => v.totals.suppressed ?? 0);
    progress.writesPausedAt = view.writesPausedAt ?? null;
    options.onProgress?.(progress);
    return view;
  };
  await showProgress();

  const inFlight = new Set<Promise<void>>();
  let stopped: ImportStopped | Error | null = null;
  const send = async (batch: SourceRecord<T>[], sequence: number) => {
    try {
      const response = await options.client.post<BatchView>(`/v1/imports/${importId}/batches`, {
        sequence,
        orders: batch.map((record) => record.value),
      });
      progress.retries += response.attempts - 1;
      sent.set(sequence, batch.length);
    } catch (error) {
      if (stopped) return;
      stopped = stopOf(error, batch, sequence, "orders", result());
    }
  };

  let sequence = 0;
  let lastShown = Date.now();
  let unreadable: ReadStopped | null = null;
  try {
    for await (const batch of batchesOf(
      whileReadable(options.records),
      options.batchSize,
      queuedBatchWeight,
      orderIdClash,
    )) {
      if (stopped) break;
      if (state && isConfirmed(state, sequence)) {
        progress.skippedBatches++;
        progress.skippedRecords += batch.length;
      } else {
        const task = send(batch, sequence).finally(() => inFlight.delete(task));
        inFlight.add(task);
        if (inFlight.size >= concurrency) await Promise.race(inFlight);
      }
      if (Date.now() - lastShown >= pollIntervalMs) {
        lastShown = Date.now();
        await showProgress();
      }
      sequence++;
    }
  } catch (error) {
    // The input stopped making sense part-way (it changed since it was counted, say): let the batches
    // in flight be taken, then stop, saying what was posted.
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

  // Every batch is posted: wait until the queue has processed all of them, or has stalled.
  const stallMs = options.stallMs ?? defaultStallMs;
  let settled = -1;
  let settledAt = now().getTime();
  for (let view = await showProgress(); view.batches.queued > 0; view = await showProgress()) {
    const outcomes = view.batches.done + view.batches.failed;
    if (outcomes !== settled) {
      settled = outcomes;
      settledAt = now().getTime();
    } else if (now().getTime() - settledAt >= stallMs) {
      if (state) saveState(state);
      throw new ImportStalled(importId, view.batches.queued, Math.round(stallMs / 60_000));
    }
    await sleep(pollIntervalMs);
  }

  const failed: QueuedImportResult["failed"] = [];
  progress.totals = emptyTotals();
  const keepSetAside = (batch: BatchView, earlier: boolean) => {
    if ((batch.setAside ?? 0) > 0)
      setAside.push({
        sequence: batch.sequence,
        orders: batch.setAside ?? 0,
        ids: batch.setAsideIds ?? [],
        error: batch.error ?? "set aside",
        ...(earlier ? { earlier } : {}),
      });
  };
  for await (const batch of batchesOfImport(options.client, importId)) {
    if (!sent.has(batch.sequence)) {
      // A batch an earlier run confirmed and this one skipped: the orders set aside from it are still
      // not stored, so this run names them again rather than finishing as if the import were whole.
      if (state && isConfirmed(state, batch.sequence) && batch.status === "done") keepSetAside(batch, true);
      continue;
    }
    progress.batches++;
    if (batch.status === "failed") {
      failed.push({ sequence: batch.sequence, orders: batch.orders, error: batch.error ?? "failed" });
      continue;
    }
    keepSetAside(batch, false);
    const totals = totalsOf(batch);
    for (const key of Object.keys(totals) as (keyof ImportTotals)[]) progress.totals[key] += totals[key];
    keepChangedIds(progress.changedIds, batch.changedIds ?? []);
    if (state) state = confirmBatch(state, batch.sequence, totals, now());
  }
  if (state) saveState(state);
  progress.records = progress.skippedRecords + [...sent.values()].reduce((sum, count) => sum + count, 0);
  options.onProgress?.(progress);
  if (failed.length > 0) throw new ImportIncomplete(result(failed));
  return result();
}
