// Resumable runs: which batches of a source the server has confirmed. Batches are cut the same way
// on every read of an unchanged file, so a rerun skips confirmed batches by index. A state that does
// not match the source (file changed, other batch size or mapping) is discarded: starting over is
// always safe because the server is idempotent on order id. Kept compact for long runs: a prefix
// count plus the few out-of-order confirmations that concurrency leaves above it.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface ImportTotals {
  records: number;
  accepted: number;
  duplicates: number;
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
}

export const emptyTotals = (): ImportTotals => ({
  records: 0,
  accepted: 0,
  duplicates: 0,
  upserted: 0,
  ignoredIdentifiers: 0,
});

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

/** A new state with the batch confirmed and its totals added. */
export function confirmBatch(state: ImportState, batchIndex: number, totals: ImportTotals, now: Date): ImportState {
  if (isConfirmed(state, batchIndex)) return state;
  const above = [...state.confirmedAbove, batchIndex].sort((a, b) => a - b);
  let through = state.confirmedThrough;
  while (above[0] === through) {
    above.shift();
    through++;
  }
  const sum = { ...state.totals };
  for (const key of Object.keys(sum) as (keyof ImportTotals)[]) sum[key] += totals[key];
  return { ...state, confirmedThrough: through, confirmedAbove: above, totals: sum, updatedAt: now.toISOString() };
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

export function loadState(file: string): ImportState | null {
  try {
    const state = JSON.parse(readFileSync(file, "utf8")) as ImportState;
    return state.version === 1 ? state : null;
  } catch {
    return null;
  }
}

/** Written to a temporary file and renamed, so an interrupted run never leaves half a state. */
export function saveState(file: string, state: ImportState): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 1)}\n`);
  renameSync(temporary, file);
}
