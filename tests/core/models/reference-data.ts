// Loads the reference datasets in tests/fixtures for the model tests: CDNOW (Fader & Hardie) and the
// online grocer (BTYDplus); sources and licences in each folder's SOURCE.md. Plain CSV splitting is enough for these files: no quoted commas.
import { readFileSync } from "node:fs";
import path from "node:path";
import { type PurchaseEvent, parseDay } from "../../../worker/core/models/summary.ts";

export const dataDir = path.join(import.meta.dirname, "../../fixtures");

/** 1997-09-30: end of the 39-week calibration period in the papers. */
export const cdnowCutoffDay = parseDay("1997-09-30")!;
/** 1998-06-30: end of the 39-week holdout period (weeks 40–78). */
export const cdnowHoldoutEndDay = parseDay("1998-06-30")!;

function rowsOf(file: string): string[][] {
  const lines = readFileSync(path.join(dataDir, file), "utf8").trim().split(/\r?\n/);
  return lines.slice(1).map((line) => line.split(",").map((cell) => cell.replace(/^"|"$/g, "")));
}

/** cdnowElog.csv: masterid, sampleid, date (YYYYMMDD), cds, sales. */
export function cdnowSampleEvents(): PurchaseEvent[] {
  return rowsOf("cdnow/cdnowElog.csv").map(([customer, , date, , sales]) => ({
    customer: customer!,
    day: parseDay(date!)!,
    amount: Number(sales),
  }));
}

/** The published per-customer calibration summary (weeks): ID, x, t_x, T, zbar. */
export function cdnowPublishedSummary(): Array<{ x: number; tx: number; T: number; zbar: number }> {
  return rowsOf("cdnow/cdnow_customers_summary_with_transactions.csv").map(([, x, tx, T, zbar]) => ({
    x: Number(x),
    tx: Number(tx),
    T: Number(T),
    zbar: Number(zbar),
  }));
}

/** groceryElog.csv: cust, date (YYYY-MM-DD), no amounts. */
export function groceryEvents(): PurchaseEvent[] {
  return rowsOf("grocery/groceryElog.csv").map(([customer, date]) => ({ customer: customer!, day: parseDay(date!)! }));
}
