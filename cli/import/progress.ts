// The terminal side of long runs: a cli-progress bar with records/s and ETA, and the closing
// summary. Where stderr is not a terminal (a CI log, a file, a pipe), a plain line every 30 s instead
// of the bar, so an hour-long run still shows where it is.
import cliProgress from "cli-progress";
import type { QueuedImportResult } from "./queued.ts";
import { changedIdsKept, type ImportProgress, type ImportResult } from "./run.ts";
import { countConfirmed } from "./state.ts";

export interface ProgressDisplay {
  enabled: boolean;
  /**
   * `done` counts everything behind the bar; `skipped`, of it, what took no time (batches an earlier
   * run confirmed), which the rate and the ETA leave out.
   */
  update(done: number, extra?: Record<string, string | number>, skipped?: number): void;
  /** Shows a transient note (a retry) until the next update. */
  note(text: string): void;
  stop(): void;
}

/** How often a run whose stderr is not a terminal prints where it stands. */
export const progressLineEveryMs = 30_000;

/**
 * A progress bar when stderr is a terminal (or `enabled`), else a line every `lineEveryMs`; `enabled`
 * false shows nothing. `enabled` on the answer says whether a bar is drawn, so transient notes (retries)
 * go in it; otherwise the caller prints them.
 */
export function progressBar(
  total: number | null,
  unit: string,
  enabled?: boolean,
  /** Where the bar starts (a resumed run's earlier progress): its ETA counts only what follows. */
  from = 0,
  lineEveryMs = progressLineEveryMs,
): ProgressDisplay {
  if (!(enabled ?? process.stderr.isTTY === true)) {
    return enabled === false
      ? { enabled: false, update() {}, note() {}, stop() {} }
      : progressLines(total, unit, from, lineEveryMs);
  }
  const started = Date.now();
  const bar = new cliProgress.SingleBar(
    {
      format:
        total === null
          ? `{value} ${unit} | {rate} ${unit}/s | {elapsed}s {note}`
          : `{bar} {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {left} {note}`,
      stream: process.stderr,
      hideCursor: true,
      fps: 5,
      // Asked for (--progress) where stderr is no terminal: drawn there all the same.
      noTTYOutput: enabled === true,
    },
    cliProgress.Presets.shades_classic,
  );
  // Our own ETA as `left`: cli-progress writes its own `eta` over a payload's of that name.
  bar.start(total ?? 0, from, { rate: 0, left: "?", note: "", elapsed: 0 });
  return {
    enabled: true,
    note(text) {
      bar.update({ note: text });
    },
    update(done, extra = {}, skipped = 0) {
      const seconds = (Date.now() - started) / 1000;
      const rate = rateOf(done - from - skipped, seconds);
      bar.update(done, {
        rate: Math.round(rate),
        left: etaText(etaOf(total, done, rate)),
        elapsed: Math.round(seconds),
        note: "",
        ...extra,
      });
    },
    stop() {
      bar.stop();
    },
  };
}

/**
 * Progress as plain lines on stderr, at most one every `everyMs` (the first after `everyMs`, so a short
 * run prints none), e.g. `customers 120000 of 1000000 (12%), 812/s, ETA 18m03s, 2m28s elapsed: 3 retries`.
 */
function progressLines(total: number | null, unit: string, from: number, everyMs: number): ProgressDisplay {
  const started = Date.now();
  let printed = started;
  return {
    enabled: false,
    note() {},
    update(done, extra = {}, skipped = 0) {
      const now = Date.now();
      if (now - printed < everyMs) return;
      printed = now;
      const seconds = (now - started) / 1000;
      const rate = rateOf(done - from - skipped, seconds);
      const parts = [
        total === null
          ? `${unit} ${done}`
          : `${unit} ${done} of ${total} (${total > 0 ? Math.floor((100 * done) / total) : 100}%)`,
        `${Math.round(rate)}/s`,
      ];
      if (total !== null) parts.push(`ETA ${etaText(etaOf(total, done, rate))}`);
      parts.push(`${etaText(seconds)} elapsed`);
      const note = extra.note ? `: ${extra.note}` : "";
      console.error(`${parts.join(", ")}${note}`);
    },
    stop() {},
  };
}

/** Units a second over what this run did itself (0 until it has done something: the ETA is then "?"). */
const rateOf = (units: number, seconds: number) => (seconds > 0 && units > 0 ? units / seconds : 0);

/** Seconds left at `rate`: 0 when nothing is, NaN or Infinity while the rate is unknown. */
const etaOf = (total: number | null, done: number, rate: number) =>
  total === null ? Number.NaN : done >= total ? 0 : (total - done) / rate;

/** The ETA, or "?" while it is unknown (nothing done yet by this run). */
export function etaText(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const whole = Math.round(seconds);
  const twoDigits = (n: number) => String(n).padStart(2, "0");
  if (whole >= 3600) return `${Math.floor(whole / 3600)}h${twoDigits(Math.floor((whole % 3600) / 60))}m`;
  if (whole >= 60) return `${Math.floor(whole / 60)}m${twoDigits(whole % 60)}s`;
  return `${whole}s`;
}

export function describeProgress(progress: ImportProgress): string {
  const parts = [`${progress.totals.accepted} new`, `${progress.totals.duplicates} dup`];
  if (progress.totals.changed > 0) parts.push(`${progress.totals.changed} changed`);
  if (progress.totals.suppressed > 0) parts.push(`${progress.totals.suppressed} suppressed`);
  if (progress.retries > 0) parts.push(`${progress.retries} retries`);
  if (progress.writesPausedAt)
    parts.push(`waiting: customer writes paused since ${progress.writesPausedAt} for a move into customer shards`);
  return parts.join(", ");
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/**
 * Duplicates the server had stored with other content, and the first by id: what was sent for them was
 * not applied (docs/import.md). None when there are none.
 */
function changedLines(result: ImportResult): string[] {
  const { changed } = result.totals;
  if (changed === 0) return [];
  const named = result.changedIds.length;
  // Copies of one id count once each, so below the kept number the ids named are all there are.
  const more = named === changedIdsKept && changed > named ? ` and up to ${changed - named} more` : "";
  const ids = named > 0 ? `: ${result.changedIds.join(", ")}${more}` : "";
  return [`changed            ${changed} of them differ from the stored orders and were not applied${ids}`];
}

/**
 * The closing summary. For orders, every order sent is in exactly one of the lines under `orders
 * sent`: accepted, duplicates (`changed` under it, when there are any, counts those the server had
 * stored with other content), suppressed (orders of erased customers, not stored) and, when a batch
 * through the queue failed, failed, and set aside (orders the worker left out of a done batch for an
 * identifier linking too many orders). Batches skipped as confirmed by an earlier run are not sent: those
 * counts are this run's, and a resumed run (batches skipped) says so and adds an `in all` line with
 * what the state file holds over every confirmed batch, this run's and the earlier runs'.
 */
export function summaryLines(kind: "orders" | "products", result: ImportResult | QueuedImportResult): string[] {
  const failed = "failed" in result ? result.failed.reduce((sum, batch) => sum + batch.orders, 0) : 0;
  const setAside =
    "setAside" in result
      ? result.setAside.filter((batch) => !batch.earlier).reduce((sum, batch) => sum + batch.orders, 0)
      : 0;
  const sent = result.totals.records + failed + setAside;
  const seconds = result.elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(sent / seconds) : sent;
  const resumed = result.skippedBatches > 0 && result.state !== undefined;
  const thisRun = resumed ? " in this run" : "";
  const lines =
    kind === "orders"
      ? [
          `orders sent        ${sent} (${rate}/s)${thisRun}`,
          `accepted           ${result.totals.accepted}`,
          `duplicates         ${result.totals.duplicates}`,
          ...changedLines(result),
          `suppressed         ${result.totals.suppressed}`,
          ...(failed > 0 ? [`failed             ${failed} (in batches the server could not ingest)`] : []),
          ...(setAside > 0 ? [`set aside          ${setAside} (identifiers linking too many orders: below)`] : []),
          `ignored identifiers ${result.totals.ignoredIdentifiers}`,
        ]
      : [`products upserted  ${result.totals.upserted} (${rate}/s)${thisRun}`];
  lines.push(
    `batches            ${result.batches} sent, ${result.skippedBatches} skipped (confirmed by an earlier run)`,
  );
  if (resumed && result.state) {
    const all = result.state.totals;
    const batches = countConfirmed(result.state);
    lines.push(
      kind === "orders"
        ? `in all             ${all.records} orders in ${batches} batches: ${all.accepted} accepted, ${all.duplicates} duplicates, ${all.suppressed} suppressed${all.changed > 0 ? `; ${all.changed} of the duplicates changed` : ""} (this run and earlier ones)`
        : `in all             ${all.upserted} products upserted in ${batches} batches (this run and earlier ones)`,
    );
  }
  lines.push(`retries            ${result.retries}`, `elapsed            ${formatDuration(result.elapsedMs)}`);
  return lines;
}
