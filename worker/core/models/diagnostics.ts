// Model diagnostics as in Fader, Hardie & Lee (2005) §4 and figures 2–4: split each customer's
// purchase days at a cutoff, fit the frequency model on the calibration period only, then compare
// (1) the tracking plot: repeat purchases per week, actual vs expected, over calibration and holdout
//     (expected = Σ over customers of E[X(t − tᵢ)] increments, tᵢ their first purchase, eq. 9 of the
//     variant, with memoryless gaps: E[X(t)] has no closed form with Erlang-k gaps);
// (2) the conditional expectations: mean holdout repeat purchases by number of calibration repeat
//     purchases (0, 1, …, 7+), actual vs E[Y(t) | x, tx, T] (eq. 10), each customer's regularity in
//     their P(alive): the forecast the CLV uses (clv.ts).
// The model checked is the one in force: the nightly fit's variant (BG/NBD or MBG/NBD) with each
// customer's regularity, fitted by the nightly fit's own functions (population-models.ts) on summaries
// computed as the nightly job computes them. The in-force fit has seen every purchase, so it cannot be
// checked against data it saw; this refit on the calibration period is what the holdout judges. Plain
// data in and out: the nightly job loads a bounded sample of customers' purchase days and stores the result.

import { roundTo } from "../math/round.ts";
import {
  defaultModelOptions,
  fitFrequencyModel,
  frequencyCustomersOf,
  historyOf,
  type ModelOptions,
  summaryRowFromOrders,
} from "../profile/population-models.ts";
import { type BgNbdParameters, expectedPurchasesConditional, expectedPurchasesUnconditional } from "./bg-nbd.ts";
import { dayToIsoDate, type PurchaseEvent } from "./summary.ts";

export interface DiagnosticsOptions {
  /** Days per tracking-plot period (7: weeks, as in the paper; the model's time unit is `model.timeUnitDays`). */
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
  /**
   * The frequency model's options, the nightly fit's (time unit, regularity prior, parameter bound,
   * dropout story); diagnosticsOptionsFor fixes `dropout` to the variant in force.
   */
  model: ModelOptions;
}

export const defaultDiagnosticsOptions: DiagnosticsOptions = {
  periodDays: 7,
  maxHoldoutDays: 182,
  holdoutShareOfHistory: 1 / 3,
  maxCalibrationDays: 728,
  topFrequency: 7,
  minCustomers: 10,
  model: defaultModelOptions,
};

/** The options that check the fit in force: its variant, fitted as the nightly fit fits it. */
export function diagnosticsOptionsFor(
  inForce: Pick<BgNbdParameters, "dropoutAtFirstPurchase">,
  options: DiagnosticsOptions = defaultDiagnosticsOptions,
): DiagnosticsOptions {
  return { ...options, model: { ...options.model, dropout: inForce.dropoutAtFirstPurchase ? "mbg-nbd" : "bg-nbd" } };
}

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
  /** The model checked: the BG/NBD or its MBG/NBD variant (dropout right after the first purchase too). */
  model: "bgnbd" | "mbgnbd";
  /** Whether the fit used each customer's gap regularity (Erlang-k gaps), as the nightly fit does. */
  regularity: boolean;
  /**
   * The tracking plot's calibration weeks, `from` – `to` (at most `maxCalibrationDays`), and the first
   * purchase day the fit saw, `firstPurchase`: the fit reads every calibration purchase up to `to`,
   * so a history older than the plot is fitted too. Absent in diagnostics stored before it.
   */
  calibration: { from: string; to: string; firstPurchase?: string };
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

const dayMs = 86_400_000;

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

  // Each customer's distinct purchase days up to asOfDay, in order; the cohort bought on or before the cutoff.
  const daysOf = new Map<string, Set<number>>();
  for (const event of events) {
    if (event.day > asOfDay) continue;
    let days = daysOf.get(event.customer);
    if (!days) {
      days = new Set();
      daysOf.set(event.customer, days);
    }
    days.add(event.day);
  }
  const cohort: { customer: string; firstDay: number; days: number[]; calibrationDays: number }[] = [];
  for (const [customer, set] of daysOf) {
    const days = [...set].sort((left, right) => left - right);
    const calibrationDays = days.filter((day) => day <= cutoffDay).length;
    if (calibrationDays > 0) cohort.push({ customer, firstDay: days[0]!, days, calibrationDays });
  }
  if (cohort.length < options.minCustomers) return { ok: false, reason: "not_enough_customers" };

  // The calibration period's summary rows, as the nightly job's, read through the nightly fit's functions.
  const unit = options.model.timeUnitDays;
  const histories = cohort.map(({ customer, days, calibrationDays }) =>
    historyOf(
      summaryRowFromOrders(
        customer,
        days.slice(0, calibrationDays).map((day) => ({ placedAt: dayToIsoDate(day), total: 0 })),
      ),
    ),
  );
  const { customers } = frequencyCustomersOf(histories, new Date(cutoffDay * dayMs), options.model);
  const { fit } = fitFrequencyModel(customers, options.model);
  if (!fit) return { ok: false, reason: "fit_failed" };

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
  const firstDays = new Map<number, number>();
  const repeatDays = new Map<number, number>();
  for (const { firstDay, days } of cohort) {
    firstDays.set(firstDay, (firstDays.get(firstDay) ?? 0) + 1);
    for (const day of days.slice(1)) repeatDays.set(day, (repeatDays.get(day) ?? 0) + 1);
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
  customers.forEach((customer, index) => {
    const { days, calibrationDays } = cohort[index]!;
    const group = groups[Math.min(customer.x, options.topFrequency)]!;
    const expected = expectedPurchasesConditional(fit, customer, holdoutUnits);
    group.customers++;
    group.actual += days.length - calibrationDays;
    group.expected += Number.isFinite(expected) ? expected : 0;
    totals.holdout.conditionalExpected += Number.isFinite(expected) ? expected : 0;
  });
  const byFrequency = groups.map((group, x) => ({
    purchases: x === options.topFrequency ? `${x}+` : String(x),
    customers: group.customers,
    actualMean: group.customers > 0 ? roundTo(group.actual / group.customers, 3) : 0,
    expectedMean: group.customers > 0 ? roundTo(group.expected / group.customers, 3) : 0,
  }));

  return {
    ok: true,
    diagnostics: {
      model: fit.dropoutAtFirstPurchase ? "mbgnbd" : "bgnbd",
      regularity: options.model.regularity.max > 1,
      calibration: { from: dayToIsoDate(startDay), to: dayToIsoDate(cutoffDay), firstPurchase: dayToIsoDate(firstDay) },
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
