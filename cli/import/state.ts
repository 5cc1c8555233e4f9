// Resumable runs: which batches of a source the server has confirmed. Batches are cut the same way
// on every read of an unchanged file, so a rerun skips confirmed batches by index. A state that does
// not match the source (file changed, other batch size or mapping) is discarded: starting over is
// always safe because the server is idempotent on order id. Kept compact for long runs: a prefix
// count plus the few out-of-order confirmations that concurrency leaves above it.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";

/** What the confirmed batches add up to. Orders: accepted + duplicates + suppressed = records. */
export interface ImportTotals {
  records: number;
  accepted: number;
  duplicates: number;
  /** Of the duplicates, those the server had stored with other content (not applied). */
  changed: number;
  /** Orders not stored because an erasure suppressed their id or one of their identifiers. */
  suppressed: number;
  upserted: number;
  ignoredIdentifiers: number;
}

export interface ImportState {
  version: 1;
  fingerprint: string;
  source: string;
  /** Every batch index below this is confirmed. */
  confirmedThrough: number;
  /** Confirmed indexes at or above `confirmedThrough`, sorted. */
  confirmedAbove: number[];
  totals: ImportTotals;
  updatedAt: string;
  /** The server's import (POST /v1/imports) a queued run posts its batches to, once created. */
  importId?: string;
  /**
   * Direct runs: batches posted and not confirmed yet, recorded before each is sent. A run killed with
   * batches in flight leaves them here; the rerun sends them again and counts the orders the server
   * then calls unchanged duplicates as accepted (that run stored them), not as duplicates.
   */
  posted?: number[];
}

export const emptyTotals = (): ImportTotals => ({
  records: 0,
  accepted: 0,
  duplicates: 0,
  changed: 0,
  suppressed: 0,
  upserted: 0,
  ignoredIdentifiers: 0,
});

/** Every total, as a finite number: 0 for one missing (a state written before it existed) or unreadable. */
export function totalsFrom(value: unknown): ImportTotals {
  const totals = emptyTotals();
  const given = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  for (const key of Object.keys(totals) as (keyof ImportTotals)[]) {
    const count = given[key];
    if (typeof count === "number" && Number.isFinite(count)) totals[key] = count;
  }
  return totals;
}

export function emptyState(fingerprint: string, source: string, now: Date): ImportState {
  return {
    version: 1,
    fingerprint,
    source,
    confirmedThrough: 0,
    confirmedAbove: [],
    totals: emptyTotals(),
    updatedAt: now.toISOString(),
  };
}

export function isConfirmed(state: ImportState, batchIndex: number): boolean {
  return batchIndex < state.confirmedThrough || state.confirmedAbove.includes(batchIndex);
}

/** A new state with the batch recorded as posted, not confirmed yet (ImportState.posted). */
export function markPosted(state: ImportState, batchIndex: number, now: Date): ImportState {
  const posted = state.posted ?? [];
  if (posted.includes(batchIndex)) return state;
  return { ...state, posted: [...posted, batchIndex].sort((a, b) => a - b), updatedAt: now.toISOString() };
}

/** A new state without the batch among those posted: the server refused it whole, so it stored none of it. */
export function unmarkPosted(state: ImportState, batchIndex: number, now: Date): ImportState {
  if (!state.posted?.includes(batchIndex)) return state;
  return { ...state, posted: state.posted.filter((index) => index !== batchIndex), updatedAt: now.toISOString() };
}

/** A new state with the batch confirmed and its totals added (and no longer posted unconfirmed). */
export function confirmBatch(state: ImportState, batchIndex: number, totals: ImportTotals, now: Date): ImportState {
  if (isConfirmed(state, batchIndex)) return state;
  const above = [...state.confirmedAbove, batchIndex].sort((a, b) => a - b);
  let through = state.confirmedThrough;
  while (above[0] === through) {
    above.shift();
    through++;
  }
  const sum = totalsFrom(state.totals);
  const added = totalsFrom(totals);
  for (const key of Object.keys(sum) as (keyof ImportTotals)[]) sum[key] += added[key];
  const posted = state.posted?.filter((index) => index !== batchIndex);
  return {
    ...state,
    confirmedThrough: through,
    confirmedAbove: above,
    totals: sum,
    ...(posted === undefined ? {} : { posted }),
    updatedAt: now.toISOString(),
  };
}

export function countConfirmed(state: ImportState): number {
  return state.confirmedThrough + state.confirmedAbove.length;
}

/** What must be unchanged for batch i to mean the same records: file identity, kind, batch size, mapping, target. */
export function fingerprintOf(parts: Record<string, string | number>): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 16);
}

export function defaultStatePath(directory: string, fingerprint: string, kind: string): string {
  return path.join(directory, ".patron", `import-${kind}-${fingerprint}.json`);
}

/** The state in `file`, or null when there is none or it is unreadable; totals it lacks are 0. */
export function loadState(file: string): ImportState | null {
  try {
    const state = JSON.parse(readFileSync(file, "utf8")) as ImportState;
    return state.version === 1 ? { ...state, totals: totalsFrom(state.totals) } : null;
  } catch {
    return null;
  }
}

/**
 * The imports that earlier queued runs of `source` (an absolute path) created and confirmed nothing
 * of, newest first, from the state files in `directory` and `alsoFile` (an explicit --state). A run
 * whose first batch was refused leaves such an import behind (the API has no way to delete one); once
 * the file is fixed its fingerprint, and so its state file, changes, and this is how the rerun finds
 * the import again. Whether the server's import really received no batch is for the caller to ask.
 */
export function unconfirmedImports(directory: string, source: string, alsoFile?: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(directory).filter((name) => /^import-orders-.*\.json$/.test(name));
  } catch {
    // no state directory yet
  }
  const files = new Set(names.map((name) => path.join(directory, name)));
  if (alsoFile) files.add(path.resolve(alsoFile));
  const states = [...files]
    .map((file) => loadState(file))
    .filter(
      (state): state is ImportState & { importId: string } =>
        state !== null &&
        typeof state.importId === "string" &&
        state.source === source &&
        state.confirmedThrough === 0 &&
        Array.isArray(state.confirmedAbove) &&
        state.confirmedAbove.length === 0,
    )
    .sort((a, b) => String(b.updatedAt).localeCompare(String(a.updatedAt)));
  return [...new Set(states.map((state) => state.importId))];
}

/** Written to a temporary file and renamed, so an interrupted run never leaves half a state. */
export function saveState(file: string, state: ImportState): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 1)}\n`);
  renameSync(temporary, file);
}
