// Model diagnostics as in Fader, Hardie & Lee (2005) §4 and figures 2–4: split each customer's
// purchase days at a cutoff, fit the BG/NBD on the calibration period only, then compare
// (1) the tracking plot: repeat purchases per week, actual vs expected, over calibration and holdout
//     (expected = Σ over customers of E[X(t − tᵢ)] increments, tᵢ their first purchase, eq. 9);
// (2) the conditional expectations: mean holdout repeat purchases by number of calibration repeat
//     purchases (0, 1, …, 7+), actual vs E[Y(t) | x, tx, T] (eq. 10).
// The in-force model is fitted on all of the history, so it cannot be checked against data it saw;
// this refit on the calibration period is what the holdout judges. Plain data in and out: the nightly
// job loads a bounded sample of customers' purchase days and stores the result.

import { roundTo } from "../math/round.ts";
import { expectedPurchasesConditional, expectedPurchasesUnconditional, fitBgNbd } from "./bg-nbd.ts";
import { dayToIsoDate, type PurchaseEvent, summarizeEvents } from "./summary.ts";

export interface DiagnosticsOptions {
  /** Days per tracking-plot period and per model time unit (7: weeks, as in the paper). */
  periodDays: number;
  /** Holdout length in days at most; shorter histories hold out this share of their span (whole periods). */
  maxHoldoutDays: number;
  holdoutShareOfHistory: number;
  /** Calibration starts at most this many days before the holdout (bounds the periods reported). */
  maxCalibrationDays: number;
  /** Calibration repeat purchases from this many up are grouped together ("7+"). */
  topFrequency: number;
  /** Fewer calibration customers than this give no diagnostics. */
  minCustomers: number;
  /** Soft bound on |log parameter| of the fit (BgNbdFitOptions.logParameterBound). */
  logParameterBound: number;
}

export const defaultDiagnosticsOptions: DiagnosticsOptions = {
  periodDays: 7,
  maxHoldoutDays: 182,
  holdoutShareOfHistory: 1 / 3,
  maxCalibrationDays: 728,
  topFrequency: 7,
  minCustomers: 10,
  logParameterBound: 6,
};

export interface TrackingPeriod {
  /** First and last day of the period (UTC dates, inclusive). */
  from: string;
  to: string;
  phase: "calibration" | "holdout";
  /** Repeat purchase days in the period, over the calibration cohort. */
  actual: number;
  expected: number;
  cumulativeActual: number;
  cumulativeExpected: number;
}

export interface FrequencyGroup {
  /** Calibration-period repeat purchases: "0" … "6", then "7+". */
  purchases: string;
  customers: number;
  actualMean: number;
  expectedMean: number;
}

export interface Diagnostics {
  calibration: { from: string; to: string };
  holdout: { from: string; to: string };
  periodDays: number;
  /** Customers in the calibration cohort (first purchase on or before the cutoff). */
  customers: number;
  fit: { r: number; alpha: number; a: number; b: number; logLikelihood: number; converged: boolean };
  tracking: TrackingPeriod[];
  byFrequency: FrequencyGroup[];
  totals: {
    calibration: { actual: number; expected: number };
    holdout: { actual: number; expected: number; conditionalExpected: number };
  };
}

export type DiagnosticsOutcome =
  | { ok: true; diagnostics: Diagnostics }
  | { ok: false; reason: "not_enough_history" | "not_enough_customers" | "fit_failed" };

/**
 * Diagnostics for purchases (one event per order; same-day orders count once) up to `asOfDay`
 * (a day number, inclusive).
 */
export function modelDiagnostics(
  events: readonly PurchaseEvent[],
  asOfDay: number,
  options: DiagnosticsOptions = defaultDiagnosticsOptions,
): DiagnosticsOutcome {
  const { periodDays } = options;
  let firstDay = Number.POSITIVE_INFINITY;
  for (const event of events) if (event.day <= asOfDay && event.day < firstDay) firstDay = event.day;
  const span = asOfDay - firstDay + 1;
  const holdoutPeriods = Math.min(
    Math.floor(options.maxHoldoutDays / periodDays),
    Math.floor((span * options.holdoutShareOfHistory) / periodDays),
  );
  if (!Number.isFinite(span) || holdoutPeriods < 1) return { ok: false, reason: "not_enough_history" };
  const cutoffDay = asOfDay - holdoutPeriods * periodDays;
  const calibrationPeriods = Math.min(
    Math.ceil((cutoffDay - firstDay + 1) / periodDays),
    Math.floor(options.maxCalibrationDays / periodDays),
  );
  const startDay = cutoffDay - calibrationPeriods * periodDays + 1;

  const customers = summarizeEvents(
    events.filter((event) => event.day <= asOfDay),
    { cutoffDay, unit: periodDays === 7 ? "week" : "day", holdoutEndDay: asOfDay },
  );
  if (customers.length < options.minCustomers) return { ok: false, reason: "not_enough_customers" };
  const unit = periodDays === 7 ? 7 : 1;

  let fit: ReturnType<typeof fitBgNbd>;
  try {
    fit = fitBgNbd(customers, { optimizer: {}, logParameterBound: options.logParameterBound });
  } catch {
    return { ok: false, reason: "fit_failed" };
  }

  // Tracking plot. E[X(t)] depends only on t, so it is memoised per whole day since acquisition.
  const memo = new Map<number, number>();
  const cumulative = (days: number) => {
    if (days <= 0) return 0;
    let value = memo.get(days);
    if (value === undefined) {
      value = expectedPurchasesUnconditional(fit, days / unit);
      memo.set(days, value);
    }
    return value;
  };
  const cohort = new Set(customers.map((customer) => customer.customer));
  const firstDays = new Map<number, number>();
  for (const customer of customers) firstDays.set(customer.firstDay, (firstDays.get(customer.firstDay) ?? 0) + 1);
  const repeatDays = new Map<number, number>();
  const seen = new Set<string>();
  const firstOf = new Map(customers.map((customer) => [customer.customer, customer.firstDay]));
  for (const event of events) {
    if (event.day > asOfDay || !cohort.has(event.customer)) continue;
    const key = `${event.customer}\u0000${event.day}`;
    if (seen.has(key) || event.day === firstOf.get(event.customer)) continue;
    seen.add(key);
    repeatDays.set(event.day, (repeatDays.get(event.day) ?? 0) + 1);
  }
  const expectedBy = (day: number) => {
    let total = 0;
    for (const [first, count] of firstDays) total += count * cumulative(day - first);
    return total;
  };

  const tracking: TrackingPeriod[] = [];
  let cumulativeActual = 0;
  let previousExpected = expectedBy(startDay - 1);
  const totals = {
    calibration: { actual: 0, expected: 0 },
    holdout: { actual: 0, expected: 0, conditionalExpected: 0 },
  };
  for (let period = 0; period < calibrationPeriods + holdoutPeriods; period++) {
    const from = startDay + period * periodDays;
    const to = from + periodDays - 1;
    let actual = 0;
    for (let day = from; day <= to; day++) actual += repeatDays.get(day) ?? 0;
    const expectedSoFar = expectedBy(to);
    const expected = expectedSoFar - previousExpected;
    previousExpected = expectedSoFar;
    cumulativeActual += actual;
    const phase = to <= cutoffDay ? "calibration" : "holdout";
    totals[phase].actual += actual;
    totals[phase].expected += expected;
    tracking.push({
      from: dayToIsoDate(from),
      to: dayToIsoDate(to),
      phase,
      actual,
      expected: roundTo(expected, 3),
      cumulativeActual,
      cumulativeExpected: roundTo(expectedSoFar - expectedBy(startDay - 1), 3),
    });
  }

  // Conditional expectations by calibration frequency.
  const holdoutUnits = (holdoutPeriods * periodDays) / unit;
  const groups = Array.from({ length: options.topFrequency + 1 }, () => ({ customers: 0, actual: 0, expected: 0 }));
  for (const customer of customers) {
    const group = groups[Math.min(customer.x, options.topFrequency)]!;
    const expected = expectedPurchasesConditional(fit, customer, holdoutUnits);
    group.customers++;
    group.actual += customer.holdoutPurchases;
    group.expected += Number.isFinite(expected) ? expected : 0;
    totals.holdout.conditionalExpected += Number.isFinite(expected) ? expected : 0;
  }
  const byFrequency = groups.map((group, x) => ({
    purchases: x === options.topFrequency ? `${x}+` : String(x),
    customers: group.customers,
    actualMean: group.customers > 0 ? roundTo(group.actual / group.customers, 3) : 0,
    expectedMean: group.customers > 0 ? roundTo(group.expected / group.customers, 3) : 0,
  }));

  return {
    ok: true,
    diagnostics: {
      calibration: { from: dayToIsoDate(startDay), to: dayToIsoDate(cutoffDay) },
      holdout: { from: dayToIsoDate(cutoffDay + 1), to: dayToIsoDate(asOfDay) },
      periodDays,
      customers: customers.length,
      fit: {
        r: fit.r,
        alpha: fit.alpha,
        a: fit.a,
        b: fit.b,
        logLikelihood: roundTo(fit.logLikelihood, 3),
        converged: fit.converged,
      },
      tracking,
      byFrequency,
      totals: {
        calibration: { actual: totals.calibration.actual, expected: roundTo(totals.calibration.expected, 3) },
        holdout: {
          actual: totals.holdout.actual,
          expected: roundTo(totals.holdout.expected, 3),
          conditionalExpected: roundTo(totals.holdout.conditionalExpected, 3),
        },
      },
    },
  };
}
