// Fits the population-level customer models the nightly job stores in model_params: BG/NBD (repeat
// purchases and P(alive)), Gamma-Gamma (order value), the population's time to a second purchase,
// CLV tier thresholds, the discounted-unit share and a cadence prior. Time unit: weeks (7 days), as
// in the BG/NBD paper; dates are ISO strings and `now` is passed in. It reads plain summary rows;
// it loads nothing and does not score individual customers (customer-profile.ts does).
import { minimizeNelderMead } from "../math/nelder-mead.ts";
import { type BgNbdParameters, bgnbdLogLikelihood, prepareCustomers } from "../models/bg-nbd.ts";
import { type ClvOptions, customerLifetimeValue, defaultClvOptions } from "../models/clv.ts";
import { fitGammaGamma, type GammaGammaParameters } from "../models/gamma-gamma.ts";
import {
  type SecondPurchaseTiming,
  secondPurchaseTiming,
  type ValueTierThresholds,
  valueTierThresholds,
} from "../models/lifecycle.ts";
import { populationDiscountShare } from "../models/preferences.ts";

/** The customer_summaries fields the models read. */
export interface SummaryRow {
  customerId: string;
  purchaseDays: number;
  firstOrderAt: string;
  lastOrderAt: string;
  positiveOrders: number;
  positiveSpend: number;
  /** The first order's total when positive, else 0. */
  firstOrderSpend: number;
  units: number;
  discountedUnits: number;
}

export interface ModelOptions {
  /** Length of the models' time unit in days. */
  timeUnitDays: number;
  clv: Omit<ClvOptions, "horizonMonths" | "timeUnitDays">;
  /** Fewer repeat customers than this and the fit is not trusted: defaults are used instead. */
  minRepeatCustomers: number;
  /**
   * Soft bound on |log parameter| for the BG/NBD fit. A store whose customers all buy like clockwork
   * has no maximum-likelihood optimum (the Gamma mixing collapses to a point and the parameters run
   * off to infinity, where the expectations overflow); a quadratic wall past e^±bound keeps the fit
   * finite while leaving ordinary fits (CDNOW's parameters are within e^±2) untouched.
   */
  logParameterBound: number;
  /** Points kept from the second-purchase curve (it is stored as JSON). */
  secondPurchasePoints: number;
}

export const defaultModelOptions: ModelOptions = {
  timeUnitDays: 7,
  clv: { margin: defaultClvOptions.margin, annualDiscountRate: defaultClvOptions.annualDiscountRate },
  minRepeatCustomers: 20,
  logParameterBound: 6,
  secondPurchasePoints: 200,
};

export interface PopulationModels {
  fittedAt: string;
  sampleSize: number;
  /** "fitted" when maximum likelihood ran on enough data; "default" when the history was too thin. */
  source: "fitted" | "default";
  timeUnitDays: number;
  bgnbd: BgNbdParameters & { logLikelihood: number | null };
  gammaGamma: GammaGammaParameters;
  /** Days from first to second purchase (Kaplan–Meier), downsampled. */
  secondPurchase: SecondPurchaseTiming;
  valueTiers: ValueTierThresholds;
  discountShare: number;
  /** Median of repeat customers' mean interval between purchase days, in days. */
  cadencePriorDays: number;
}

// Weak, neutral parameters for a store with too little history to fit: everyone is a likely repeat
// buyer with a long, uncertain rhythm. Marked source "default" so nobody mistakes them for a fit.
const defaultBgNbd: BgNbdParameters = { r: 0.5, alpha: 10, a: 0.5, b: 2 };
const defaultGammaGamma: GammaGammaParameters = { p: 6, q: 4, gamma: 15 };

const dayMs = 86_400_000;

/** BG/NBD inputs for one customer, in the models' unit. */
export function rfmOf(
  row: Pick<SummaryRow, "purchaseDays" | "firstOrderAt" | "lastOrderAt">,
  now: Date,
  unitDays: number,
) {
  const first = Date.parse(row.firstOrderAt.slice(0, 10));
  const last = Date.parse(row.lastOrderAt.slice(0, 10));
  const today = Date.parse(now.toISOString().slice(0, 10));
  const x = Math.max(0, row.purchaseDays - 1);
  return { x, tx: x > 0 ? (last - first) / dayMs / unitDays : 0, T: Math.max(0, (today - first) / dayMs / unitDays) };
}

/**
 * The spend model's input, as Fader, Hardie & Lee (2005) use it: the mean value of REPEAT orders with
 * a positive total (the first order is left out; it says little about what a customer spends once
 * they come back). A one-time buyer has count 0, and Gamma-Gamma then gives the population mean.
 */
export function spendOf(row: Pick<SummaryRow, "positiveOrders" | "positiveSpend" | "firstOrderSpend">) {
  const firstCounted = row.firstOrderSpend > 0 ? 1 : 0;
  const count = Math.max(0, row.positiveOrders - firstCounted);
  return { count, meanValue: count > 0 ? Math.max(0, row.positiveSpend - row.firstOrderSpend) / count : 0 };
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
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

/** Maximum likelihood in log-parameter space (as bg-nbd.ts fitBgNbd), with the soft bound above. */
export function fitBoundedBgNbd(
  customers: { x: number; tx: number; T: number }[],
  bound: number,
): PopulationModels["bgnbd"] {
  const prepared = prepareCustomers(customers);
  const meanT = customers.reduce((sum, c) => sum + c.T, 0) / customers.length;
  const fromLog = (point: number[]): BgNbdParameters => ({
    r: Math.exp(point[0] as number),
    alpha: Math.exp(point[1] as number),
    a: Math.exp(point[2] as number),
    b: Math.exp(point[3] as number),
  });
  const wall = (point: number[]) => point.reduce((sum, v) => sum + Math.max(0, Math.abs(v) - bound) ** 2, 0);
  const result = minimizeNelderMead(
    (point) => -bgnbdLogLikelihood(fromLog(point), prepared) / prepared.count + wall(point),
    [0, Math.log(Math.max(meanT, 1e-3)), 0, 0],
  );
  const parameters = fromLog(result.point);
  return { ...parameters, logLikelihood: bgnbdLogLikelihood(parameters, prepared) };
}

export function fitPopulationModels(
  rows: readonly SummaryRow[],
  now: Date,
  options: ModelOptions = defaultModelOptions,
): PopulationModels {
  const unit = options.timeUnitDays;
  const rfm = rows.map((row) => rfmOf(row, now, unit));
  const repeaters = rfm.filter((c) => c.x > 0).length;
  const enough = repeaters >= options.minRepeatCustomers;

  let bgnbd: PopulationModels["bgnbd"] = { ...defaultBgNbd, logLikelihood: null };
  let gammaGamma = defaultGammaGamma;
  if (enough) {
    bgnbd = fitBoundedBgNbd(rfm, options.logParameterBound);
    // Gamma-Gamma on repeat customers with a positive mean order value.
    const spend = rows
      .map((row, i) => ({ ...spendOf(row), x: rfm[i]?.x ?? 0 }))
      .filter((s) => s.x > 0 && s.meanValue > 0);
    if (spend.length >= options.minRepeatCustomers) {
      const gg = fitGammaGamma(spend.map(({ count, meanValue }) => ({ count, meanValue })));
      gammaGamma = { p: gg.p, q: gg.q, gamma: gg.gamma };
    }
  }

  const secondPurchase = downsample(
    secondPurchaseTiming(
      rfm.map((c) => {
        // With only first/last dates stored, a repeat customer's second purchase is estimated as one
        // mean interval after the first: tx / x.
        return { secondPurchaseAfter: c.x > 0 ? (c.tx / c.x) * unit : null, T: c.T * unit };
      }),
    ),
    options.secondPurchasePoints,
  );

  const models = { bgnbd, gammaGamma };
  const clvs = rows.map(
    (row, i) =>
      customerLifetimeValue(
        models,
        { ...(rfm[i] as { x: number; tx: number; T: number }), ...spendOf(row) },
        {
          ...options.clv,
          horizonMonths: 12,
          timeUnitDays: unit,
        },
      ).clv,
  );
  const intervals = rfm.filter((c) => c.x > 0).map((c) => (c.tx / c.x) * unit);
  return {
    fittedAt: now.toISOString(),
    sampleSize: rows.length,
    source: enough ? "fitted" : "default",
    timeUnitDays: unit,
    bgnbd,
    gammaGamma,
    secondPurchase,
    valueTiers: clvs.length > 0 ? valueTierThresholds(clvs) : { top: 0, high: 0, medium: 0 },
    discountShare: populationDiscountShare(rows),
    cadencePriorDays: Number.isNaN(median(intervals)) ? 45 : median(intervals),
  };
}
