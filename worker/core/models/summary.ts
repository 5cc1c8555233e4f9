// Calibration summaries for the repeat-purchase models: from an event log (customer, day, amount) to
// each customer's { x, tx, T } (Fader, Hardie & Lee 2005 notation) plus the mean repeat-purchase
// value Gamma-Gamma needs. Purchases on the same day are merged into one transaction, as in the
// papers' CDNOW preparation. Time is counted in whole days internally and reported in the chosen
// unit (weeks = days / 7). It reads no files; the CLI parses CSV and hands plain events in.

export type TimeUnit = "week" | "day";

export const daysPerUnit: Record<TimeUnit, number> = { week: 7, day: 1 };

export interface PurchaseEvent {
  customer: string;
  /** Whole days since 1970-01-01 (UTC); see parseDay. */
  day: number;
  /** Order value; optional because some logs (grocery) carry none. */
  amount?: number;
}

export interface CustomerSummary {
  /** Repeat purchases in the calibration period (distinct purchase days − 1). */
  x: number;
  /** Time of the last purchase, measured from the first purchase (0 when x = 0). */
  tx: number;
  /** Time from the first purchase to the end of calibration. */
  T: number;
  /**
   * Erlang shape k of the gaps between purchases (bg-nbd.ts): 1 (the default) is the BG/NBD's
   * memoryless buyer, larger is more regular.
   */
  regularity?: number;
}

export interface CalibrationSummary extends CustomerSummary {
  customer: string;
  firstDay: number;
  lastDay: number;
  /** Repeat transactions with a positive value: the spend model's sample size. */
  monetaryCount: number;
  /** Mean value of those repeat transactions (0 when there are none). */
  monetaryMean: number;
  /** Time from the first to the second purchase day (in the unit), null without a repeat purchase. */
  secondPurchaseAfter: number | null;
  /** Purchase days after the cutoff and up to holdoutEndDay, when one was given. */
  holdoutPurchases: number;
}

export interface SummaryOptions {
  /** Last calibration day (inclusive), as a day number. */
  cutoffDay: number;
  unit: TimeUnit;
  /** Last holdout day (inclusive); holdout counts stay 0 without it. */
  holdoutEndDay?: number;
}

const dayMs = 86_400_000;

/** YYYYMMDD, YYYY-MM-DD or a full ISO timestamp (its UTC date) → day number; null when unreadable. */
export function parseDay(text: string): number | null {
  const trimmed = text.trim();
  const compact = /^(\d{4})(\d{2})(\d{2})$/.exec(trimmed);
  const iso = compact ? `${compact[1]}-${compact[2]}-${compact[3]}` : trimmed;
  const dateOnly = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  if (dateOnly) {
    const [year, month, day] = [Number(dateOnly[1]), Number(dateOnly[2]), Number(dateOnly[3])];
    const ms = Date.UTC(year, month - 1, day);
    const check = new Date(ms);
    // Date.UTC rolls 1997-02-30 over to March; refuse it instead.
    if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return null;
    return ms / dayMs;
  }
  if (!/^\d{4}-\d{2}-\d{2}T/.test(iso)) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : Math.floor(ms / dayMs);
}

export function dayToIsoDate(day: number): string {
  return new Date(day * dayMs).toISOString().slice(0, 10);
}

/**
 * One summary per customer whose first purchase falls on or before the cutoff, in order of first
 * appearance in `events`. Events after the cutoff count only towards the holdout.
 */
export function summarizeEvents(events: Iterable<PurchaseEvent>, options: SummaryOptions): CalibrationSummary[] {
  const perCustomer = new Map<string, Map<number, number>>();
  for (const event of events) {
    let days = perCustomer.get(event.customer);
    if (!days) {
      days = new Map();
      perCustomer.set(event.customer, days);
    }
    days.set(event.day, (days.get(event.day) ?? 0) + (event.amount ?? 0));
  }
  const unitDays = daysPerUnit[options.unit];
  const summaries: CalibrationSummary[] = [];
  for (const [customer, days] of perCustomer) {
    const ordered = [...days.keys()].sort((left, right) => left - right);
    const calibration = ordered.filter((day) => day <= options.cutoffDay);
    const firstDay = calibration[0];
    if (firstDay === undefined) continue;
    const lastDay = calibration[calibration.length - 1]!;
    let monetaryCount = 0;
    let monetaryTotal = 0;
    for (const day of calibration.slice(1)) {
      const value = days.get(day)!;
      // Zero or negative days (returns, free samples) say nothing about spend per order.
      if (value > 0) {
        monetaryCount++;
        monetaryTotal += value;
      }
    }
    const holdoutEnd = options.holdoutEndDay;
    const holdoutPurchases =
      holdoutEnd === undefined ? 0 : ordered.filter((day) => day > options.cutoffDay && day <= holdoutEnd).length;
    summaries.push({
      customer,
      x: calibration.length - 1,
      tx: (lastDay - firstDay) / unitDays,
      T: (options.cutoffDay - firstDay) / unitDays,
      firstDay,
      lastDay,
      monetaryCount,
      monetaryMean: monetaryCount > 0 ? monetaryTotal / monetaryCount : 0,
      secondPurchaseAfter: calibration.length > 1 ? (calibration[1]! - firstDay) / unitDays : null,
      holdoutPurchases,
    });
  }
  return summaries;
}
