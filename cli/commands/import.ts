// `patron import orders|products <file>`: bulk-load wire-format NDJSON or a mapped CSV into a Patron
// worker, in batches, with retries, a resumable state file and a progress bar. Orders go through the
// worker's queue-backed import (POST /v1/imports) unless --direct sends them to POST /v1/orders.
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import type { WireOrder, WireProduct } from "../../db/seed/wire.ts";
import { defaultWorkerUrl, keyFrom, patronUrlProblem, talksToLocalWorker } from "../dev-vars.ts";
import { BatchRejected, describeRetry, IngestClient, IngestFailed } from "../import/client.ts";
import { collectListPrices, completeJourneyOrders, completeJourneyProduct } from "../import/completejourney.ts";
import { dataFileIn, plainOrGzipped, UnreadableGzip } from "../import/files.ts";
import { type GroupingStats, type Mapping, MappingError, parseMapping } from "../import/mapping.ts";
import { describeProgress, type ProgressDisplay, progressBar, summaryLines } from "../import/progress.ts";
import {
  countQueuedBatches,
  ImportIncomplete,
  ImportStalled,
  maxQueuedBatchBytes,
  openQueuedImport,
  type QueuedImportResult,
  runQueuedImport,
  unusedImport,
} from "../import/queued.ts";
import {
  type ImportKind,
  type ImportProgress,
  type ImportResult,
  ImportStopped,
  maxBatchSize,
  ReadStopped,
  runImport,
  type SourceRecord,
} from "../import/run.ts";
import {
  checkCsvProducts,
  countNonEmptyLines,
  InputError,
  loadLookups,
  readCsvOrders,
  readCsvProducts,
  readCsvRows,
  readNdjson,
} from "../import/sources.ts";
import {
  countConfirmed,
  defaultStatePath,
  emptyState,
  fingerprintOf,
  type ImportState,
  type ImportTotals,
  loadState,
  saveState,
  unconfirmedImports,
} from "../import/state.ts";
import { wholeNumber, workerUrl } from "../options.ts";

/** "1 batch", "17 batches". */
const batchesConfirmed = (n: number) => `${n} ${n === 1 ? "batch" : "batches"}`;

export interface ImportCommandOptions {
  url: string;
  key: string;
  /** Where the key came from, named if the worker refuses it. */
  keyFrom?: string;
  /** The worker is on this machine (talksToLocalWorker): an unreachable one says how to point elsewhere. */
  local?: boolean;
  mapping?: string;
  preset?: string;
  batchSize: number;
  concurrency: number;
  state?: string;
  restart?: boolean;
  transactions?: string;
  progress?: boolean;
  /** Orders: post each batch to POST /v1/orders and wait for it, instead of the queue-backed import. */
  direct?: boolean;
  /** Orders from a CSV: send a row that repeats an earlier row exactly once, not as another line. */
  dropRepeatedRows?: boolean;
  /** How often a queued import's progress is read, in ms. */
  pollInterval?: number;
}

export const presets = ["completejourney"] as const;

interface Prepared<T> {
  records: AsyncIterable<SourceRecord<T>> | Iterable<SourceRecord<T>>;
  total: number | null;
  notes: string[];
  mappingId: string;
  /** Orders through the queue: the batches the run posts in all, told to the import when it is created. */
  batches?: number;
}

async function prepareOrders(
  file: string,
  options: ImportCommandOptions,
  queued: boolean,
): Promise<Prepared<WireOrder>> {
  if (isNdjson(file)) {
    if (!queued)
      return {
        records: readNdjson<WireOrder>(file),
        total: await countNonEmptyLines(file),
        notes: [],
        mappingId: "ndjson",
      };
    // Through the queue the import is told how many batches it gets, so that one stopped part-way is
    // not read as done: the file is read through once to cut them, before anything is sent. A line
    // that is not JSON stops the run here.
    let counted: { records: number; batches: number };
    try {
      counted = await countQueuedBatches(readNdjson<WireOrder>(file), options.batchSize);
    } catch (error) {
      throw new ReadStopped(error, null);
    }
    return {
      records: readNdjson<WireOrder>(file),
      total: counted.records,
      notes: [],
      mappingId: "ndjson",
      batches: counted.batches,
    };
  }
  const { mapping, baseDir, mappingId } = resolveMapping(file, options);
  if (mapping.kind !== "orders") throw new InputError(`the mapping is for ${mapping.kind}, not orders`);
  const lookups = await loadLookups(mapping, (lookupFile) => plainOrGzipped(path.resolve(baseDir, lookupFile)));
  const dropRepeatedRows = options.dropRepeatedRows === true;
  const { orders, stats } = await readCsvOrders(file, mapping, lookups, { dropRepeatedRows });
  const notes = [`read ${stats.rows} rows into ${orders.length} orders to send`];
  if (stats.skippedLines > 0) {
    const reasons = Object.entries(stats.skipReasons)
      .map(([reason, count]) => `${count} × ${reason}`)
      .join(", ");
    notes.push(
      `skipped ${stats.skippedLines} ${stats.skippedLines === 1 ? "line" : "lines"} (${reasons})` +
        (stats.emptyOrders > 0
          ? `; ${stats.emptyOrders} ${stats.emptyOrders === 1 ? "order had no other line and is" : "orders had no other line and are"} not sent`
          : ""),
    );
  }
  if (stats.anonymousOrders > 0 && stats.firstAnonymous)
    notes.push(
      `skipped ${stats.anonymousOrders} ${stats.anonymousOrders === 1 ? "order" : "orders"} with no identifier on any of ${stats.anonymousOrders === 1 ? "its" : "their"} rows ` +
        `(first: line ${stats.firstAnonymous.line}, order ${JSON.stringify(stats.firstAnonymous.orderId)}): a sale with no account, email, phone, loyalty number, card or device belongs to no customer, so it is not sent`,
    );
  if (stats.countedAsOneUnit > 0)
    notes.push(
      `counted ${stats.countedAsOneUnit} ${stats.countedAsOneUnit === 1 ? "line" : "lines"} sold by measure as one unit each, at the line's prices (countAsOneUnit)`,
    );
  const conflict = stats.firstConflict;
  if (conflict)
    notes.push(
      `warning: ${stats.headerConflicts === 1 ? "1 row differs from the first row of its" : `${stats.headerConflicts} rows differ from the first row of their`} ` +
        `order (first: line ${conflict.line}, order ${JSON.stringify(conflict.orderId)}, in ${conflict.fields.join(", ")} ` +
        `against line ${conflict.firstLine}); each order keeps its first row's, so an order id reused by another ` +
        "store, day or customer merges two purchases: give each order its own id in the file",
    );
  const repeated = repeatedRowsNote(stats, dropRepeatedRows);
  if (repeated) notes.push(repeated);
  const batches = queued ? (await countQueuedBatches(orders, options.batchSize)).batches : undefined;
  return { records: orders, total: orders.length, notes, mappingId, batches };
}

/**
 * What the run says of rows that repeat an earlier row exactly, naming the first: kept, a warning (a
 * till's line per unit is right; a file exported or joined twice doubles its orders' totals, and only
 * the engineer can tell which); dropped with --drop-repeated-rows, a note. Null when there are none.
 */
export function repeatedRowsNote(stats: GroupingStats, dropped: boolean): string | null {
  const first = stats.firstRepeat;
  if (!first) return null;
  const at = `line ${first.line}, order ${JSON.stringify(first.orderId)}, the same as line ${first.firstLine}`;
  const one = stats.repeatedRows === 1;
  const rows = one
    ? `1 row ${dropped ? "that repeats" : "repeats"} an earlier row of its order exactly, every column alike (${at})`
    : `${stats.repeatedRows} rows ${dropped ? "that repeat" : "repeat"} an earlier row of their order exactly, every column alike, in ${stats.ordersWithRepeats === 1 ? "1 order" : `${stats.ordersWithRepeats} orders`} (first: ${at})`;
  if (dropped) return `dropped ${rows} (--drop-repeated-rows)`;
  return (
    `warning: ${rows}; ${one ? "it is sent as a line of its own" : "they are sent as lines of their own"}, as a till that ` +
    "writes a line per unit means them, but a file exported or joined twice doubles such lines and its orders' totals: " +
    `check the export, and if ${one ? "the repeat is a copy" : "the repeats are copies"}, rerun with --drop-repeated-rows to send each row once`
  );
}

async function prepareProducts(file: string, options: ImportCommandOptions): Promise<Prepared<WireProduct>> {
  if (options.preset === "completejourney") {
    const transactions = options.transactions ?? dataFileIn(path.dirname(file), "transactions_sample.csv");
    const observed = new Map<string, number[]>();
    const lookups = await loadLookups(completeJourneyOrders, () => file);
    for await (const { row } of readCsvRows(transactions)) collectListPrices([row], lookups, observed);
    const products: SourceRecord<WireProduct>[] = [];
    let unpriced = 0;
    for await (const { row, line } of readCsvRows(file)) {
      const product = completeJourneyProduct(row, observed);
      if (product) products.push({ value: product, lines: [line] });
      else unpriced++;
    }
    const notes = [`list prices estimated from ${path.basename(transactions)} (median observed shelf price)`];
    if (unpriced > 0) notes.push(`skipped ${unpriced} products never seen in the transactions (no price to give them)`);
    return { records: products, total: products.length, notes, mappingId: `completejourney:${transactions}` };
  }
  if (isNdjson(file))
    return {
      records: readNdjson<WireProduct>(file),
      total: await countNonEmptyLines(file),
      notes: [],
      mappingId: "ndjson",
    };
  const { mapping, baseDir, mappingId } = resolveMapping(file, options);
  if (mapping.kind !== "products") throw new InputError(`the mapping is for ${mapping.kind}, not products`);
  const lookups = await loadLookups(mapping, (lookupFile) => plainOrGzipped(path.resolve(baseDir, lookupFile)));
  await checkCsvProducts(file, mapping, lookups);
  return {
    records: readCsvProducts(file, mapping, lookups),
    total: (await countNonEmptyLines(file)) - 1,
    notes: [],
    mappingId,
  };
}

function resolveMapping(
  file: string,
  options: ImportCommandOptions,
): { mapping: Mapping; baseDir: string; mappingId: string } {
  if (options.preset === "completejourney")
    return { mapping: completeJourneyOrders, baseDir: path.dirname(file), mappingId: "completejourney" };
  if (options.preset) throw new InputError(`unknown preset "${options.preset}" (known: ${presets.join(", ")})`);
  if (!options.mapping) throw new InputError(`${file}: a CSV needs --mapping <mapping.json> or --preset`);
  if (!existsSync(options.mapping)) throw new InputError(`No such file: ${options.mapping} (--mapping)`);
  const text = readFileSync(options.mapping, "utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${options.mapping} (--mapping) is not JSON: ${(error as Error).message}`);
  }
  return { mapping: parseMapping(json), baseDir: path.dirname(options.mapping), mappingId: text };
}

function isNdjson(file: string): boolean {
  return /\.(nd)?jsonl?(\.gz)?$/i.test(file);
}

/**
 * Mistakes in what was asked, before anything is read: a file that is not there, an unknown preset, and
 * a preset or mapping (which read CSV columns) given for an NDJSON file, which holds wire-format
 * records and is read as it is.
 */
function checkRequest(file: string, absolute: string, options: ImportCommandOptions): void {
  if (!existsSync(absolute)) throw new InputError(`No such file: ${file}`);
  if (!statSync(absolute).isFile()) throw new InputError(`Not a file: ${file}`);
  if (options.preset && !(presets as readonly string[]).includes(options.preset))
    throw new InputError(`unknown preset "${options.preset}" (known: ${presets.join(", ")})`);
  if (!isNdjson(file)) return;
  const given = options.preset
    ? `--preset ${options.preset}`
    : options.mapping
      ? "--mapping"
      : options.dropRepeatedRows
        ? "--drop-repeated-rows"
        : null;
  if (given)
    throw new InputError(
      `${given} is for CSV files, and ${file} is NDJSON: its lines are wire-format records, imported as they are. Drop ${given.split(" ")[0]}, or give it the CSV export (docs/import.md).`,
    );
}

/**
 * What a stopped import says: the same command resumes it, but one started with --restart would start
 * over (all its batches sent again, as duplicates), so that flag is to be left out.
 */
export function stoppedNote(stateFile: string, restarted: boolean): string {
  const command = restarted ? "the same command again without --restart" : "the same command again";
  return `stopped: run ${command} to resume (what is confirmed is kept in ${stateFile}; nothing is counted twice)`;
}

/** Runs one import; prints progress to stderr and returns the result. Throws on rejection or failure. */
export async function importFile(
  kind: ImportKind,
  file: string,
  options: ImportCommandOptions,
  log: (line: string) => void = (line) => console.log(line),
): Promise<ImportResult> {
  const absolute = path.resolve(file);
  checkRequest(file, absolute, options);
  const stat = statSync(absolute);
  const queued = kind === "orders" && !options.direct;
  const prepared: Prepared<WireOrder | WireProduct> =
    // Read by the name as typed, so a bad line is reported as `orders.ndjson:7`, like a rejected batch's lines.
    kind === "orders" ? await prepareOrders(file, options, queued) : await prepareProducts(file, options);
  for (const note of prepared.notes) log(note);
  // An empty export (or one whose every line was skipped) is a failed export, not a successful import:
  // it stops before an import is opened that nothing would ever finish.
  if (prepared.total !== null && prepared.total <= 0)
    throw new InputError(`${file}: no ${kind} to import: nothing was sent. Check the export`);
  const fingerprint = fingerprintOf({
    // Queued batches are also cut by size, so batch i of a queued run is not batch i of a direct one.
    ...(queued ? { mode: "queue", maxBatchBytes: maxQueuedBatchBytes } : {}),
    // Orders are also cut before an id reused with other content (orderIdClash).
    ...(kind === "orders" ? { cut: "order-id-clash" } : {}),
    // Dropping repeated rows changes the orders, so a run with it is not a resumption of one without it.
    ...(options.dropRepeatedRows ? { dropRepeatedRows: "yes" } : {}),
    kind,
    file: absolute,
    size: stat.size,
    mtimeMs: Math.round(stat.mtimeMs),
    batchSize: options.batchSize,
    mapping: prepared.mappingId,
    url: options.url.replace(/\/+$/, ""),
  });
  const stateFile = options.state ?? defaultStatePath(process.cwd(), fingerprint, kind);
  let state: ImportState | null = options.restart ? null : loadState(stateFile);
  if (state && state.fingerprint !== fingerprint) {
    log(`state file ${stateFile} is for a different file, batch size or mapping: starting over`);
    state = null;
  }
  const resuming = state !== null;
  // Through the queue the worker is asked first which of the import's batches it has processed: an
  // interrupted run leaves them to the queue, unconfirmed in the state file.
  if (state && !queued) {
    // Batches a run stopped while they were in flight: the worker may hold their orders already.
    const unanswered = state.posted?.length ?? 0;
    const posted =
      unanswered > 0
        ? `; ${batchesConfirmed(unanswered)} sent and not answered before it stopped go again, the orders the worker already holds of them counted as accepted`
        : "";
    log(`resuming: ${batchesConfirmed(countConfirmed(state))} already confirmed${posted} (${stateFile})`);
  }
  state ??= emptyState(fingerprint, absolute, new Date());

  let shown: ProgressDisplay | null = null;
  const client = new IngestClient({
    url: options.url,
    apiKey: options.key,
    keyFrom: options.keyFrom ?? "--key",
    unreachableHint: options.local
      ? "Is the worker running there? Pass --url, or set PATRON_URL (or PORT for a local one)."
      : "Is the worker running there?",
    onRetry: (info) => {
      const note = describeRetry(info);
      if (shown?.enabled) shown.note(note);
      else console.error(note);
    },
  });
  if (queued && !state.importId) {
    // An earlier run of this file whose first batch was refused left an import with no batch (the API
    // cannot delete one); the fixed file has another fingerprint and state file, so look for it.
    const importId = await unusedImport(
      client,
      unconfirmedImports(path.dirname(stateFile), absolute, stateFile),
      prepared.batches,
    );
    if (importId) {
      state = { ...state, importId };
      log(`taking up import ${importId}: an earlier run of this file created it and posted no batch to it`);
    }
  }
  saveState(stateFile, state);
  const opened = queued
    ? await openQueuedImport({
        client,
        state,
        source: path.basename(absolute),
        expectedBatches: prepared.batches,
        onState: (next) => saveState(stateFile, next),
      })
    : undefined;
  if (opened?.state) {
    state = opened.state;
    if (opened.lost)
      log(
        `import ${opened.lost} is not on the worker any more (its store was reset, or this is another worker): every batch goes again, to ${opened.importId}; orders it already holds come back as duplicates, counted once`,
      );
    if (resuming) {
      const found = opened.foundDone > 0 ? ` (${opened.foundDone} found done in import ${opened.importId})` : "";
      log(`resuming: ${batchesConfirmed(countConfirmed(state))} already confirmed${found} (${stateFile})`);
    }
  }

  const bar = progressBar(prepared.total, kind, options.progress);
  shown = bar;
  // Ctrl-C (or a SIGTERM): the state file keeps what was confirmed, so the same command takes up where
  // this one stopped.
  const interrupted = (signal: NodeJS.Signals) => {
    bar.stop();
    console.error(`\n${stoppedNote(stateFile, options.restart === true)}`);
    process.exit(signal === "SIGTERM" ? 143 : 130);
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  const common = {
    kind,
    records: prepared.records,
    client,
    batchSize: options.batchSize,
    concurrency: options.concurrency,
    state,
    onState: (next: ImportState) => saveState(stateFile, next),
    onProgress: (progress: ImportProgress) =>
      bar.update(
        progress.records,
        { note: kind === "orders" ? describeProgress(progress) : "" },
        progress.skippedRecords,
      ),
  };
  try {
    const result = queued
      ? await runQueuedImport<WireOrder | WireProduct>({
          ...common,
          source: path.basename(absolute),
          expectedBatches: prepared.batches,
          opened,
          pollIntervalMs: options.pollInterval,
        })
      : await runImport<WireOrder | WireProduct>(common);
    bar.stop();
    for (const line of summaryLines(kind, result)) log(line);
    if ("importId" in result) for (const line of importLines(result as QueuedImportResult)) log(line);
    log(`state              ${stateFile}`);
    return result;
  } catch (error) {
    bar.stop();
    if (error instanceof ImportIncomplete) {
      for (const line of summaryLines(kind, error.result)) log(line);
      for (const line of importLines(error.result)) log(line);
      log(`state              ${stateFile}`);
    }
    throw error;
  } finally {
    process.removeListener("SIGINT", interrupted);
    process.removeListener("SIGTERM", interrupted);
  }
}

/** The queued import, and its status as the server last answered it (`GET /v1/imports/:id`). */
function importLines(result: QueuedImportResult): string[] {
  return [
    `import             ${result.importId} (queued)`,
    ...(result.status ? [`import status      ${result.status}`] : []),
  ];
}

/** What the confirmed batches wrote, in a stop's closing account. */
function confirmedCounts(kind: ImportKind, totals: ImportTotals): string {
  return kind === "orders"
    ? `${totals.accepted} accepted, ${totals.duplicates} duplicates, ${totals.suppressed} suppressed`
    : `${totals.upserted} products upserted`;
}

/**
 * The last line of a stop (a rejected batch, input that cannot be read further): what the run had done
 * before it, and what a rerun does. `fix` says what to do first ("Fix the input").
 */
function beforeTheStop(kind: ImportKind, done: ImportResult | QueuedImportResult, fix = "Fix the input"): string {
  if ("importId" in done) {
    // Through the queue nothing is confirmed before the run waits, but the batches already posted are
    // queued and will be ingested: say so rather than "0 batches confirmed".
    // A fixed file is a new file to the state: its rerun creates a new import and sends every batch
    // again (their orders count as duplicates), so this one stays open.
    if (done.posted > 0)
      return `Besides it: the batches posted, before it and any sent beside it while it was answered, are queued in import ${done.importId}, and the worker ingests them. ${fix} and rerun: the fixed file goes to a new import (the orders already stored count as duplicates), and this one stays open.`;
    if (done.receivedBefore > 0)
      return `No batch was posted in this run; import ${done.importId} keeps the ${done.receivedBefore} batches earlier runs posted. ${fix} and rerun: the fixed file goes to a new import (the orders already stored count as duplicates).`;
    return `No batch was posted; import ${done.importId} has received nothing and is kept in the state file: ${fix.toLowerCase()} and rerun, and the rerun posts its batches to that import instead of creating another.`;
  }
  if (done.batches > 0)
    return `Before it: ${done.batches} batches confirmed (${confirmedCounts(kind, done.totals)}). ${fix} and rerun to continue.`;
  if (done.skippedBatches > 0)
    return `No batch was posted in this run; ${done.skippedBatches} batches were confirmed by an earlier run. ${fix} and rerun to continue.`;
  return `No batch was posted; nothing was written. ${fix} and rerun.`;
}

/** An error's own words: a missing file as one line, anything unforeseen with its stack. */
function describeCause(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const where = (error as { path?: unknown } | null)?.path;
  if (code === "ENOENT" && typeof where === "string") return `No such file: ${where}`;
  if (code === "EISDIR") return `Not a file: ${typeof where === "string" ? where : String(error)}`;
  if (
    error instanceof InputError ||
    error instanceof MappingError ||
    error instanceof IngestFailed ||
    error instanceof UnreadableGzip
  )
    return error.message;
  return String(error instanceof Error ? (error.stack ?? error.message) : error);
}

/**
 * The lines of a stop where the input could not be read further (a line that is not JSON, say): the
 * reason, what was written before it, and what a rerun does. A fixed file is another file to the state
 * (its size and modification time are part of its key), so the rerun starts over.
 */
function describeReadStop(kind: ImportKind, error: ReadStopped): string[] {
  const fix = error.reason instanceof InputError && error.reason.line !== undefined ? "Fix that line" : "Fix the input";
  const reason = describeCause(error.reason);
  const done = error.result;
  if (done === null)
    return [
      reason,
      `Nothing was sent: through the import queue the whole file is read, to count its batches, before the import is created. ${fix} and rerun.`,
    ];
  if ("importId" in done) return [reason, beforeTheStop(kind, done, fix)];
  const again =
    kind === "orders"
      ? "the server counts their orders as duplicates"
      : "the server upserts their products again, which changes nothing";
  const startsOver = `the fixed file starts a new state file, so the rerun sends those batches again and ${again}`;
  if (done.batches > 0) {
    const earlier = done.skippedBatches > 0 ? `, besides ${done.skippedBatches} confirmed by an earlier run` : "";
    return [
      reason,
      `Before it: ${done.batches} batches confirmed (${confirmedCounts(kind, done.totals)})${earlier}. ${fix} and rerun: ${startsOver}.`,
    ];
  }
  if (done.skippedBatches > 0)
    return [
      reason,
      `No batch was posted in this run; ${done.skippedBatches} batches were confirmed by an earlier run. ${fix} and rerun: ${startsOver}.`,
    ];
  return [reason, `No batch was posted; nothing was written. ${fix} and rerun.`];
}

/** What a run started with --restart adds where it says to rerun: the flag would start over again. */
const restartedNote = "This run was started with --restart: leave it out when you rerun, or every batch is sent again.";

export function describeFailure(
  error: unknown,
  file: string,
  kind: ImportKind = "orders",
  restarted = false,
): string[] {
  if (error instanceof ImportStopped) {
    const lines = [
      `Stopped: ${error.message}${error.requestId ? ` (request ${error.requestId})` : ""}. Nothing of that batch was written.`,
    ];
    for (const issue of error.issues.slice(0, 50)) {
      const where =
        issue.lines.length > 0
          ? `${file}:${issue.lines.slice(0, 5).join(",")}${issue.lines.length > 5 ? ",…" : ""}`
          : file;
      const what = issue.recordId ? ` ${issue.recordId}` : "";
      lines.push(`  ${where}${what} ${issue.path.join(".")}: ${issue.message}`);
    }
    if (error.issues.length > 50) lines.push(`  … and ${error.issues.length - 50} more`);
    lines.push(beforeTheStop(kind, error.result));
    return lines;
  }
  if (error instanceof ReadStopped) return describeReadStop(kind, error);
  if (error instanceof ImportIncomplete) {
    const { failed } = error.result;
    const lines = failed.slice(0, 50).map(({ sequence, error: reason }) => `  batch ${sequence + 1} failed: ${reason}`);
    if (failed.length > 50) lines.push(`  … and ${failed.length - 50} more`);
    const placeholders = failed.filter(({ error: reason }) => placeholderRefusal.test(reason ?? ""));
    const named = placeholders.slice(0, 5).map(({ sequence }) => sequence + 1);
    const more = placeholders.length > named.length ? ` and ${placeholders.length - named.length} more` : "";
    return [
      `Failed: ${failed.length} batch(es) could not be ingested by the server's import queue:`,
      ...lines,
      ...(placeholders.length === failed.length
        ? ["The other batches are in."]
        : ["The other batches are in. Rerun the same command to send the failed batches again."]),
      ...(placeholders.length > 0
        ? [
            `Batch ${named.join(", ")}${more}, refused for an identifier linking too many orders, would be refused again as it is: find the identifier many of ${placeholders.length === 1 ? "its" : "their"} orders share (a store's walk-in card or email, a till's default phone), leave it out of those orders in the export (or its column out of the mapping), and import the fixed file (orders of it already stored come back as duplicates).`,
          ]
        : []),
      ...setAsideLines(error.result),
      ...(restarted ? [restartedNote] : []),
    ];
  }
  if (error instanceof ImportStalled)
    return [`Stopped waiting: ${error.message}`, ...(restarted ? [restartedNote] : [])];
  if (error instanceof BatchRejected) return [error.message];
  return [describeCause(error)];
}

/**
 * The orders the worker set aside from done batches (their identifiers link too many orders: a
 * placeholder), by batch with their first ids and its reason, and what to fix; none when there are none.
 * Sent again as they are, they are set aside again, so the fix is in the export.
 */
export function setAsideLines(result: QueuedImportResult): string[] {
  const { setAside } = result;
  if (setAside.length === 0) return [];
  const count = setAside.reduce((sum, batch) => sum + batch.orders, 0);
  const lines = setAside.slice(0, 50).map(({ sequence, orders, ids, error: reason, earlier }) => {
    const more = orders > ids.length ? ` and ${orders - ids.length} more` : "";
    return `  batch ${sequence + 1}${earlier ? ", sent by an earlier run" : ""}: ${ids.join(", ")}${more}: ${reason}`;
  });
  if (setAside.length > 50) lines.push(`  … and ${setAside.length - 50} more batches`);
  return [
    `Set aside: ${count === 1 ? "1 order was" : `${count.toLocaleString("en-US")} orders were`} not stored, as their identifiers link too many orders; every other order is in:`,
    ...lines,
    "Find the identifier those orders share (a store's walk-in card or email, a till's default phone), leave it out of them in the export (or its column out of the mapping), and import the fixed file (the orders already stored come back as duplicates).",
  ];
}

/**
 * The error the worker records for a batch whose identifiers reach past its region limit (one is
 * almost always a placeholder on many orders): sent again as it is, the batch is refused again.
 */
const placeholderRefusal = /identifiers link more than [\d,]+ orders/;

/** An import as GET /v1/imports lists it (the fields `patron import list` prints). */
interface ListedImport {
  id: string;
  source: string | null;
  status: string;
  expectedBatches: number | null;
  batches: { received: number; queued: number; done: number; failed: number };
  orders: { received: number; processed: number };
  /** `setAside` is missing from a server before it. */
  totals: { accepted: number; setAside?: number };
  createdAt: string;
}

/** `patron import list` in words: one import a line, newest first, and how to read the next page. */
export function importsListText(imports: readonly ListedImport[], next: string | null): string[] {
  if (imports.length === 0) return ["No imports yet."];
  const rows = [
    ["import", "created (UTC)", "status", "batches", "orders processed", "accepted", "source"],
    ...imports.map((job) => [
      job.id,
      job.createdAt.slice(0, 16).replace("T", " "),
      job.status === "open" && job.batches.queued === 0 ? "open (waiting for batches)" : job.status,
      `${job.batches.received}${job.expectedBatches === null ? "" : ` of ${job.expectedBatches}`}` +
        (job.batches.failed > 0 ? `, ${job.batches.failed} failed` : "") +
        (job.batches.queued > 0 ? `, ${job.batches.queued} queued` : ""),
      `${job.orders.processed.toLocaleString("en-US")} of ${job.orders.received.toLocaleString("en-US")}`,
      job.totals.accepted.toLocaleString("en-US") +
        ((job.totals.setAside ?? 0) > 0 ? ` (${(job.totals.setAside ?? 0).toLocaleString("en-US")} set aside)` : ""),
      job.source ?? "",
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const lines = rows.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd(),
  );
  if (next) lines.push("", `More: the same command with --before ${next}`);
  return lines;
}

/** The worker and API key options every import subcommand takes. */
function withWorkerOptions(command: Command): Command {
  return command
    .option("--url <url>", "the worker (default: $PATRON_URL, else the local one on $PORT or 8787)", workerUrl)
    .option(
      "--key <key>",
      "API key (default: $PATRON_API_KEY, else the local .dev.vars unless --url or $PATRON_URL names a worker on another machine)",
    );
}

/**
 * The API key a subcommand sends, with the same defaults as the other commands that talk to a worker
 * (cli/dev-vars.ts): the local .dev.vars key only for a worker on this machine, never sent to one on
 * another. Null after the command has said what is missing.
 */
async function workerKey(
  command: Command,
  given: { url?: string; key?: string },
): Promise<{ key: string; keyFrom: string; local: boolean } | null> {
  const urlProblem = patronUrlProblem(given.url);
  if (urlProblem) return command.error(urlProblem);
  const local = talksToLocalWorker(given.url);
  const found = await keyFrom("PATRON_API_KEY", given.key, local);
  if (!found?.key)
    return command.error(
      `--key is required (or PATRON_API_KEY${local ? ", or a .dev.vars here or in a folder above" : ""})`,
    );
  return { key: found.key, keyFrom: found.from === ".dev.vars" ? "PATRON_API_KEY in .dev.vars" : found.from, local };
}

export function register(program: Command): void {
  const command = program
    .command("import")
    .description("Bulk-load orders or products (NDJSON in the wire format, or CSV through a column mapping).");
  const list = withWorkerOptions(
    command
      .command("list")
      .description(
        "List the imports through the queue, newest first, with their progress (GET /v1/imports): one a stopped run left open shows here.",
      ),
  )
    .option("--limit <n>", "imports to list (1–100)", wholeNumber(1, 100), 20)
    .option("--before <import id>", "list those created before this one (the next page)")
    .option("--json", "print the answer as JSON");
  list.action(async (given: { url?: string; key?: string; limit: number; before?: string; json?: boolean }) => {
    const found = await workerKey(list, given);
    if (!found) return;
    const client = new IngestClient({
      url: given.url ?? defaultWorkerUrl(),
      apiKey: found.key,
      keyFrom: found.keyFrom,
      unreachableHint: found.local
        ? "Is the worker running there? Pass --url, or set PATRON_URL (or PORT for a local one)."
        : "Is the worker running there?",
      onRetry: (info) => console.error(describeRetry(info)),
    });
    const query = new URLSearchParams({
      limit: String(given.limit),
      ...(given.before ? { before: given.before } : {}),
    });
    try {
      const { data } = await client.get<{ imports: ListedImport[]; next: string | null }>(`/v1/imports?${query}`);
      if (given.json) console.log(JSON.stringify(data, null, 2));
      else for (const line of importsListText(data.imports, data.next)) console.log(line);
    } catch (error) {
      console.error(error instanceof Error ? error.message : String(error));
      process.exitCode = 1;
    }
  });
  for (const kind of ["orders", "products"] as const) {
    const subcommand = withWorkerOptions(
      command
        .command(`${kind} <file>`)
        .description(`Import ${kind} from a .ndjson or .csv file (either may be gzipped, .gz).`),
    )
      .option("--mapping <file>", "JSON column mapping for a CSV (docs/import.md)")
      .option("--preset <name>", `a built-in mapping: ${presets.join(", ")}`)
      .option("--batch-size <n>", `records per request (1–${maxBatchSize})`, wholeNumber(1, maxBatchSize), 500)
      .option("--concurrency <n>", "requests in flight", wholeNumber(1), 2)
      .option("--state <file>", "state file for resuming (default .patron/import-<kind>-<fingerprint>.json)")
      .option("--restart", "ignore confirmed batches from an earlier run and start over");
    if (kind === "products")
      subcommand.option(
        "--transactions <file>",
        "with --preset completejourney: the transactions to price products from (default: transactions_sample.csv beside the file)",
      );
    if (kind === "orders")
      subcommand
        .option(
          "--direct",
          "post each batch to POST /v1/orders and wait for its answer, instead of the server's import queue",
        )
        .option("--poll-interval <ms>", "how often to read the queued import's progress", wholeNumber(1), 1000)
        .option(
          "--drop-repeated-rows",
          "CSV: send a row that repeats an earlier row of its order exactly (every column alike) once, not as another line; without it such rows are kept and counted in a warning",
        );
    subcommand.action(async (file: string, given: Partial<ImportCommandOptions>) => {
      const found = await workerKey(subcommand, given);
      if (!found) return;
      const options = { ...given, ...found, url: given.url ?? defaultWorkerUrl() } as ImportCommandOptions;
      try {
        const result = await importFile(kind, file, options);
        const aside = "setAside" in result ? setAsideLines(result as QueuedImportResult) : [];
        for (const line of aside) console.error(line);
        // The rest is in, but some orders are not: a script running the import must see that.
        if (aside.length > 0) process.exitCode = 1;
      } catch (error) {
        for (const line of describeFailure(error, file, kind, options.restart === true)) console.error(line);
        process.exitCode = 1;
      }
    });
  }
}
