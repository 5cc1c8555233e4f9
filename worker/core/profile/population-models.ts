// Fits the population-level customer models the nightly job stores in model_params: the BG/NBD with
// each customer's regularity (repeat purchases, P(alive) and rhythm; bg-nbd.ts, rhythm.ts),
// Gamma-Gamma (order value), the population's time to a second purchase, CLV tier thresholds, the
// discounted-unit share and a cadence prior. Purchase occasions are distinct days for both the
// frequency and the spend model, as in the papers. Time unit: weeks (7 days), as in the BG/NBD paper;
// dates are ISO strings and `now` is passed in. It reads plain summary rows; it loads nothing and does
// not score individual customers (customer-profile.ts does).
import { medianOf } from "../math/quantile.ts";
import { type BgNbdParameters, fitBgNbd, probabilityAlive } from "../models/bg-nbd.ts";
import { type ClvOptions, customerLifetimeValue, defaultClvOptions } from "../models/clv.ts";
import {
  fitGammaGamma,
  type GammaGammaParameters,
  type GammaGammaProblem,
  gammaGammaProblem,
  momentGammaGamma,
} from "../models/gamma-gamma.ts";
import {
  fadingLineForExpectedF1,
  floorShareOfPurchaseDay,
  type SecondPurchaseTiming,
  secondPurchaseTiming,
  type ValueTierThresholds,
  valueTierThresholds,
} from "../models/lifecycle.ts";
import { populationDiscountShare } from "../models/preferences.ts";
import {
  defaultRegularityPrior,
  type PurchaseHistory,
  type RegularityPrior,
  type RhythmModel,
  rhythmSummaryOf,
  sampleGapCv2,
} from "../models/rhythm.ts";

/** The customer_summaries fields the models read. A purchase day is every order of one UTC day. */
export interface SummaryRow {
  customerId: string;
  purchaseDays: number;
  firstOrderAt: string;
  lastOrderAt: string;
  /** The second purchase day (ISO date), null before a repeat purchase. */
  secondPurchaseAt: string | null;
  /** Σ over consecutive purchase days of the gap², in days²: the regularity of the customer's rhythm. */
  gapSquareSum: number;
  /** Purchase days whose orders total more than zero: the spend model's occasions. */
  positiveDays: number;
  positiveDaySpend: number;
  /** The first purchase day's total when positive, else 0. */
  firstDaySpend: number;
  units: number;
  discountedUnits: number;
}

/** An order as summaryRowFromOrders reads it. */
export interface SummaryOrder {
  placedAt: string;
  total: number;
  units?: number;
  discountedUnits?: number;
}

/**
 * The summary of one customer's orders, computed as the ingestion SQL computes it
 * (orders.repo.ts rebuildSummaryStatements); for evaluations and tests that have orders, not rows.
 */
export function summaryRowFromOrders(customerId: string, orders: readonly SummaryOrder[]): SummaryRow {
  if (orders.length === 0) throw new Error("summaryRowFromOrders: a customer has at least one order");
  const days = new Map<string, number>();
  let units = 0;
  let discountedUnits = 0;
  for (const order of orders) {
    const day = order.placedAt.slice(0, 10);
    days.set(day, (days.get(day) ?? 0) + order.total);
    units += order.units ?? 0;
    discountedUnits += order.discountedUnits ?? 0;
  }
  const ordered = [...days.keys()].sort();
  const times = orders.map((order) => order.placedAt).sort();
  let gapSquareSum = 0;
  for (let index = 1; index < ordered.length; index++) {
    const gap = (Date.parse(ordered[index]!) - Date.parse(ordered[index - 1]!)) / dayMs;
    gapSquareSum += gap * gap;
  }
  const totals = ordered.map((day) => days.get(day)!);
  return {
    customerId,
    purchaseDays: ordered.length,
    firstOrderAt: times[0]!,
    lastOrderAt: times[times.length - 1]!,
    secondPurchaseAt: ordered[1] ?? null,
    gapSquareSum,
    positiveDays: totals.filter((total) => total > 0).length,
    positiveDaySpend: totals.reduce((sum, total) => sum + Math.max(0, total), 0),
    firstDaySpend: Math.max(0, totals[0]!),
    units,
    discountedUnits,
  };
}

export interface ModelOptions {
  /** Length of the models' time unit in days. */
  timeUnitDays: number;
  clv: Omit<ClvOptions, "horizonMonths" | "timeUnitDays">;
  /** Fewer repeat customers than this and the fit is not trusted: defaults are used instead. */
  minRepeatCustomers: number;
  /** Soft bound on |log parameter| for the BG/NBD fit (see BgNbdFitOptions.logParameterBound). */
  logParameterBound: number;
  /** How each customer's regularity is shrunk to the population's (weight, cap). */
  regularity: Omit<RegularityPrior, "cv2">;
  /** Points kept from the second-purchase curve (it is stored as JSON). */
  secondPurchasePoints: number;
  /**
   * Which dropout story the frequency model tells: "likelier" fits the BG/NBD and the MBG/NBD
   * (dropout possible after the first purchase too) and keeps the MBG/NBD only when its
   * log-likelihood is higher by at least `mbgnbdLogLikelihoodGain`; "bg-nbd" or "mbg-nbd" fits only
   * that one.
   */
  dropout: "likelier" | "bg-nbd" | "mbg-nbd";
  /**
   * The paper's BG/NBD stays unless the data favour the MBG/NBD by this much log-likelihood. Both
   * have four parameters, so this is a likelihood ratio (a Bayes factor under BIC) of e: "positive
   * evidence" on Kass & Raftery's (1995) scale, 2·Δ ln L ≥ 2. A near-tie is no reason to switch.
   */
  mbgnbdLogLikelihoodGain: number;
}

export const defaultModelOptions: ModelOptions = {
  timeUnitDays: 7,
  clv: { margin: defaultClvOptions.margin, annualDiscountRate: defaultClvOptions.annualDiscountRate },
  minRepeatCustomers: 20,
  logParameterBound: 6,
  secondPurchasePoints: 200,
  regularity: { weight: defaultRegularityPrior.weight, max: defaultRegularityPrior.max },
  dropout: "likelier",
  mbgnbdLogLikelihoodGain: 1,
};

/** Why a customer's summary cannot be fitted or scored (the nightly job skips and counts them). */
export type SummaryProblem =
  | "invalid_number"
  | "invalid_date"
  | "date_before_1970"
  | "dates_out_of_order"
  | "first_order_after_now";

/** Earliest order date the models read: 1970-01-01. */
const earliestOrderMs = 0;

const finiteAtLeastZero = (value: unknown) => typeof value === "number" && Number.isFinite(value) && value >= 0;

/**
 * What makes a summary row unusable, or null when the models can read it: counts and money that are
 * not finite and ≥ 0 (or more positive days than purchase days), dates that do not parse, orders
 * before 1970, a last order before the first, or a first purchase day more than a day after `now`
 * (a customer who did not exist yet at `now`). A last order up to any time after `now` is usable: the
 * rhythm reads it as today.
 */
export function summaryRowProblem(row: SummaryRow, now: Date): SummaryProblem | null {
  const counts = [
    row.gapSquareSum,
    row.positiveDays,
    row.positiveDaySpend,
    row.firstDaySpend,
    row.units,
    row.discountedUnits,
  ];
  if (!(Number.isInteger(row.purchaseDays) && row.purchaseDays >= 1) || !counts.every(finiteAtLeastZero))
    return "invalid_number";
  if (row.positiveDays > row.purchaseDays || row.discountedUnits > row.units) return "invalid_number";
  const dates = [row.firstOrderAt, row.lastOrderAt, ...(row.secondPurchaseAt === null ? [] : [row.secondPurchaseAt])];
  const times = dates.map((date) => (typeof date === "string" ? Date.parse(date.slice(0, 10)) : Number.NaN));
  if (!times.every(Number.isFinite)) return "invalid_date";
  const [first, last] = times as [number, number];
  if (first < earliestOrderMs) return "date_before_1970";
  if (last < first) return "dates_out_of_order";
  if (first > Math.floor(now.getTime() / dayMs) * dayMs + dayMs) return "first_order_after_now";
  return null;
}

/** A model whose fit was degenerate and was replaced by its documented fallback (docs/models.md). */
export interface ModelFallback {
  model: "bgnbd" | "gammaGamma";
  reason: GammaGammaProblem | "fit_error" | "non_finite";
  /** What was used instead. */
  estimate: "default_parameters" | "method_of_moments";
}

export interface PopulationModels {
  fittedAt: string;
  /** Customers the models were fitted on (rows with a SummaryProblem are left out and counted in `excluded`). */
  sampleSize: number;
  /** Rows left out of the fit, by reason. */
  excluded?: Partial<Record<SummaryProblem, number>>;
  /** Fits that were degenerate and what replaced them; empty when every fit was used as fitted. */
  fallbacks?: ModelFallback[];
  /** "fitted" when maximum likelihood ran on enough data; "default" when the history was too thin. */
  source: "fitted" | "default";
  timeUnitDays: number;
  /**
   * Fitted with each customer's regularity; log-likelihood up to terms free of the parameters. Both
   * the BG/NBD and its MBG/NBD variant (dropout possible after the first purchase too) are fitted, and
   * the MBG/NBD is kept when it is likelier by `mbgnbdLogLikelihoodGain`: `dropoutAtFirstPurchase`
   * says which.
   */
  bgnbd: BgNbdParameters & { logLikelihood: number | null; converged: boolean | null };
  /**
   * P(alive) below which a repeat buyer is fading: the expected-F1 line of this base
   * (fadingLineForExpectedF1). Absent in models fitted before it existed and in default models, where
   * the lifecycle's default applies.
   */
  fadingBelowProbabilityAlive?: number;
  gammaGamma: GammaGammaParameters & { converged: boolean | null };
  /** The population's rhythm regularity: the prior each customer's own is shrunk toward. */
  regularity: RegularityPrior;
  /** Days from first to second purchase (Kaplan–Meier), downsampled. */
  secondPurchase: SecondPurchaseTiming;
  valueTiers: ValueTierThresholds;
  /**
   * The least 12-month CLV of a tier above low: `floorShareOfPurchaseDay` of the median customer's
   * mean purchase-day value. Absent in models fitted before it existed.
   */
  valueTierFloor?: number;
  discountShare: number;
  /** Median of repeat customers' mean interval between purchase days, in days: the fallback prior of a category. */
  cadencePriorDays: number;
}

// Weak, neutral parameters for a store with too little history to fit: everyone is a likely repeat
// buyer with a long, uncertain rhythm. Marked source "default" so nobody mistakes them for a fit.
const defaultBgNbd: BgNbdParameters = { r: 0.5, alpha: 10, a: 0.5, b: 2 };
const defaultGammaGamma: GammaGammaParameters = { p: 6, q: 4, gamma: 15 };

const dayMs = 86_400_000;

/** The purchase history of a summary row, as rhythm.ts reads it. */
export function historyOf(row: Pick<SummaryRow, "purchaseDays" | "firstOrderAt" | "lastOrderAt" | "gapSquareSum">) {
  return {
    purchaseDays: row.purchaseDays,
    firstPurchaseAt: row.firstOrderAt,
    lastPurchaseAt: row.lastOrderAt,
    gapSquareSum: row.gapSquareSum,
  } satisfies PurchaseHistory;
}

/** The rhythm model (rhythm.ts) of fitted population models. */
export function rhythmModelOf(models: Pick<PopulationModels, "bgnbd" | "timeUnitDays" | "regularity">): RhythmModel {
  return { parameters: models.bgnbd, timeUnitDays: models.timeUnitDays, regularity: models.regularity };
}

/**
 * The spend model's input, as Fader, Hardie & Lee (2005) use it: the mean value of REPEAT purchase
 * days with a positive total (the first is left out; it says little about what a customer spends once
 * they come back). A one-time buyer has count 0, and Gamma-Gamma then gives the population mean.
 */
export function spendOf(row: Pick<SummaryRow, "positiveDays" | "positiveDaySpend" | "firstDaySpend">) {
  const firstCounted = row.firstDaySpend > 0 ? 1 : 0;
  const count = Math.max(0, row.positiveDays - firstCounted);
  return { count, meanValue: count > 0 ? Math.max(0, row.positiveDaySpend - row.firstDaySpend) / count : 0 };
}

/**
 * The population's gap CV²: the mean over customers with at least three gaps of their unbiased sample
 * CV², weighted by gaps − 1 and each capped at 4 so a few bursty buyers cannot swamp it. A mean, not a
 * median: the sample CV² of few exponential gaps is skewed, and its median would call a memoryless
 * base regular. 1, the memoryless buyer, when nobody has three gaps.
 */
function populationGapCv2(histories: readonly PurchaseHistory[]): number {
  let weighted = 0;
  let weights = 0;
  for (const history of histories) {
    const gaps = history.purchaseDays - 1;
    const cv2 = gaps >= 3 ? sampleGapCv2(history) : null;
    if (cv2 === null) continue;
    weighted += (gaps - 1) * Math.min(cv2, 4);
    weights += gaps - 1;
  }
  return weights > 0 ? weighted / weights : 1;
}

function downsample(timing: SecondPurchaseTiming, points: number): SecondPurchaseTiming {
  if (timing.times.length <= points) return timing;
  const step = timing.times.length / points;
  const keep = Array.from({ length: points }, (_, i) =>
    Math.min(timing.times.length - 1, Math.round((i + 1) * step) - 1),
  );
  return {
    ...timing,
    times: keep.map((i) => timing.times[i] as number),
    cumulativeShare: keep.map((i) => timing.cumulativeShare[i] as number),
  };
}

/**
 * The frequency model's customers as the nightly fit reads them: each one's { x, tx, T } as of `now`
 * in the models' time unit, with their gap regularity shrunk toward the population's (whose CV² is
 * measured on these histories). The diagnostics read a calibration period through it too.
 */
export function frequencyCustomersOf(histories: readonly PurchaseHistory[], now: Date, options: ModelOptions) {
  const regularity: RegularityPrior = { ...options.regularity, cv2: populationGapCv2(histories) };
  const model = { parameters: defaultBgNbd, timeUnitDays: options.timeUnitDays, regularity };
  return { regularity, customers: histories.map((history) => rhythmSummaryOf(history, now, model)) };
}

/**
 * The frequency model as the nightly fit chooses it: the BG/NBD and the MBG/NBD have the same
 * parameters, so the likelihood picks the dropout story the base tells (`options.dropout`); the
 * BG/NBD stays on a near-tie and stands alone if the MBG/NBD fit fails. `fit` is null, with the
 * reason, when no variant gave a usable fit.
 */
export function fitFrequencyModel(customers: readonly CustomerSummaryWithRegularity[], options: ModelOptions) {
  const none = { fit: null, reason: null };
  const classic = options.dropout === "mbg-nbd" ? none : checkedBgNbd(customers, options, false);
  const modified = options.dropout === "bg-nbd" ? none : checkedBgNbd(customers, options, true);
  return modified.fit &&
    (!classic.fit || modified.fit.logLikelihood >= classic.fit.logLikelihood + options.mbgnbdLogLikelihoodGain)
    ? modified
    : classic;
}

/** The BG/NBD fit, or null when it failed or gave parameters that cannot score anyone. */
function checkedBgNbd(
  rfm: readonly CustomerSummaryWithRegularity[],
  options: ModelOptions,
  dropoutAtFirstPurchase: boolean,
) {
  try {
    const fit = fitBgNbd(rfm, { optimizer: {}, logParameterBound: options.logParameterBound, dropoutAtFirstPurchase });
    const finite = [fit.r, fit.alpha, fit.a, fit.b].every((value) => Number.isFinite(value) && value > 0);
    return finite && Number.isFinite(fit.logLikelihood)
      ? { fit, reason: null }
      : { fit: null, reason: "non_finite" as const };
  } catch {
    return { fit: null, reason: "fit_error" as const };
  }
}

/** The Gamma-Gamma fit when it is usable, else the method-of-moments fallback and why. */
function checkedGammaGamma(spend: readonly { count: number; meanValue: number }[]) {
  let reason: ModelFallback["reason"];
  try {
    const fit = fitGammaGamma(spend);
    const problem = gammaGammaProblem(fit, spend);
    if (problem === null) return { parameters: { p: fit.p, q: fit.q, gamma: fit.gamma }, converged: fit.converged };
    reason = problem;
  } catch {
    reason = "fit_error";
  }
  const moments = momentGammaGamma(spend);
  return moments
    ? { parameters: moments, converged: null, fallback: { model: "gammaGamma", reason, estimate: "method_of_moments" } }
    : {
        parameters: defaultGammaGamma,
        converged: null,
        fallback: { model: "gammaGamma", reason, estimate: "default_parameters" },
      };
}

/** A customer's 12-month CLV for the value tiers, or null when the models cannot value them. */
function clvOrNull(
  models: { bgnbd: BgNbdParameters; gammaGamma: GammaGammaParameters },
  customer: Parameters<typeof customerLifetimeValue>[1],
  options: ClvOptions,
) {
  try {
    const { clv } = customerLifetimeValue(models, customer, options);
    return Number.isFinite(clv) ? clv : null;
  } catch {
    return null;
  }
}

/**
 * Fits the population models. Never throws for any input: rows the models cannot read are left out
 * and counted (`excluded`), a degenerate fit is replaced by its fallback and reported (`fallbacks`),
 * and a customer the CLV cannot value is left out of the value-tier thresholds.
 */
export function fitPopulationModels(
  allRows: readonly SummaryRow[],
  now: Date,
  options: ModelOptions = defaultModelOptions,
): PopulationModels {
  const excluded: Partial<Record<SummaryProblem, number>> = {};
  const rows = allRows.filter((row) => {
    const problem = summaryRowProblem(row, now);
    if (problem) excluded[problem] = (excluded[problem] ?? 0) + 1;
    return problem === null;
  });
  const fallbacks: ModelFallback[] = [];
  const unit = options.timeUnitDays;
  const { regularity, customers: rfm } = frequencyCustomersOf(rows.map(historyOf), now, options);
  const repeaters = rfm.filter((c) => c.x > 0).length;
  const enough = repeaters >= options.minRepeatCustomers;
  const source: PopulationModels["source"] = enough ? "fitted" : "default";

  let bgnbd: PopulationModels["bgnbd"] = { ...defaultBgNbd, logLikelihood: null, converged: null };
  let gammaGamma: PopulationModels["gammaGamma"] = { ...defaultGammaGamma, converged: null };
  if (enough) {
    const { fit, reason } = fitFrequencyModel(rfm, options);
    if (fit) {
      bgnbd = {
        r: fit.r,
        alpha: fit.alpha,
        a: fit.a,
        b: fit.b,
        dropoutAtFirstPurchase: fit.dropoutAtFirstPurchase === true,
        logLikelihood: fit.logLikelihood,
        converged: fit.converged,
      };
    } else {
      fallbacks.push({ model: "bgnbd", reason: reason ?? "fit_error", estimate: "default_parameters" });
    }
    // Gamma-Gamma on repeat customers with a positive, finite mean purchase-day value.
    const spend = rows.map(spendOf).filter((s) => s.count > 0 && s.meanValue > 0 && Number.isFinite(s.meanValue));
    if (spend.length >= options.minRepeatCustomers) {
      const checked = checkedGammaGamma(spend);
      gammaGamma = { ...checked.parameters, converged: checked.converged };
      if (checked.fallback) fallbacks.push(checked.fallback as ModelFallback);
    }
  }

  const secondPurchase = downsample(
    secondPurchaseTiming(
      rows.map((row, i) => ({
        secondPurchaseAfter:
          row.secondPurchaseAt === null
            ? null
            : (Date.parse(row.secondPurchaseAt.slice(0, 10)) - Date.parse(row.firstOrderAt.slice(0, 10))) / dayMs,
        T: (rfm[i] as { T: number }).T * unit,
      })),
    ),
    options.secondPurchasePoints,
  );

  const models = { bgnbd, gammaGamma };
  const clvs = rows.flatMap((row, i) => {
    const clv = clvOrNull(
      models,
      { ...(rfm[i] as CustomerSummaryWithRegularity), ...spendOf(row) },
      { ...options.clv, horizonMonths: 12, timeUnitDays: unit },
    );
    return clv === null ? [] : [clv];
  });
  const dayValues = rows
    .filter((row) => row.positiveDays > 0)
    .map((row) => row.positiveDaySpend / row.positiveDays)
    .filter((value) => Number.isFinite(value) && value > 0);
  const valueTierFloor = dayValues.length > 0 ? floorShareOfPurchaseDay * medianOf(dayValues) : 0;
  const intervals = rfm.filter((c) => c.x > 0).map((c) => (c.tx / c.x) * unit);
  const fadingLine =
    source === "fitted" && bgnbd.logLikelihood !== null
      ? fadingLineForExpectedF1(rfm.filter((c) => c.x > 0).map((c) => probabilityAlive(bgnbd, c)))
      : null;
  return {
    fittedAt: now.toISOString(),
    sampleSize: rows.length,
    excluded,
    fallbacks,
    source,
    timeUnitDays: unit,
    bgnbd,
    gammaGamma,
    regularity,
    secondPurchase,
    valueTiers:
      clvs.length > 0
        ? valueTierThresholds(clvs, { floor: valueTierFloor })
        : { top: valueTierFloor, high: valueTierFloor, medium: valueTierFloor },
    valueTierFloor,
    discountShare: populationDiscountShare(rows),
    cadencePriorDays: intervals.length > 0 ? medianOf(intervals) : 45,
    ...(fadingLine === null ? {} : { fadingBelowProbabilityAlive: fadingLine }),
  };
}

type CustomerSummaryWithRegularity = ReturnType<typeof rhythmSummaryOf>;

/**
 * Whether the purchase and dropout model in force is placeholders, not a fit of this data: too little
 * history to fit (`source` "default"), or a fit that failed and fell back to default parameters. Every
 * customer's CLV, stage and P(alive) then comes from them.
 */
export function placeholderModels(models: Pick<PopulationModels, "source" | "fallbacks">): boolean {
  return (
    models.source === "default" ||
    (models.fallbacks ?? []).some(
      (fallback) => fallback.model === "bgnbd" && fallback.estimate === "default_parameters",
    )
  );
}
