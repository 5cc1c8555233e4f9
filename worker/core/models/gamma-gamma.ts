// Gamma-Gamma spend model: Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for
// Customer Base Analysis", Journal of Marketing Research 42(4), 415–430, and Fader & Hardie's note
// "The Gamma-Gamma Model of Monetary Value" (2013). Each transaction's value is Gamma(p, ν) with ν
// Gamma(q, γ) across customers; p and q are unitless, γ is in currency units. It is fitted on
// customers with at least one repeat purchase, using the mean value of those repeat purchases
// (zero or negative values are left out upstream; see summary.ts). It assumes spend is independent
// of purchase frequency and says nothing about how many orders will come (bg-nbd.ts does).
import { gammaln } from "../math/gammaln.ts";
import { minimizeNelderMead, type NelderMeadOptions } from "../math/nelder-mead.ts";
import { quantileSorted } from "../math/quantile.ts";

export interface GammaGammaParameters {
  p: number;
  q: number;
  gamma: number;
}

export interface GammaGammaFit extends GammaGammaParameters {
  logLikelihood: number;
  iterations: number;
  converged: boolean;
  /** Customers the fit used (x > 0 and a positive mean value). */
  customers: number;
}

/** A customer's spend summary: `count` repeat transactions with mean value `meanValue`. */
export interface SpendSummary {
  count: number;
  meanValue: number;
}

export interface GammaGammaFitOptions {
  start: GammaGammaParameters;
  optimizer: Partial<NelderMeadOptions>;
}

export const defaultGammaGammaFitOptions: GammaGammaFitOptions = { start: { p: 1, q: 1, gamma: 1 }, optimizer: {} };

function usable(customer: SpendSummary): boolean {
  return customer.count > 0 && customer.meanValue > 0 && Number.isFinite(customer.meanValue);
}

/** Usable customers packed once; Γ-function terms depend only on the count, so they are shared per count. */
interface PreparedSpend {
  distinctCounts: Float64Array;
  groupOf: Int32Array;
  count: Float64Array;
  logMean: Float64Array;
  mean: Float64Array;
}

function prepareSpend(customers: readonly SpendSummary[]): PreparedSpend {
  const sample = customers.filter(usable);
  const groups = new Map<number, number>();
  const prepared: PreparedSpend = {
    distinctCounts: new Float64Array(0),
    groupOf: new Int32Array(sample.length),
    count: new Float64Array(sample.length),
    logMean: new Float64Array(sample.length),
    mean: new Float64Array(sample.length),
  };
  sample.forEach((customer, index) => {
    let group = groups.get(customer.count);
    if (group === undefined) {
      group = groups.size;
      groups.set(customer.count, group);
    }
    prepared.groupOf[index] = group;
    prepared.count[index] = customer.count;
    prepared.logMean[index] = Math.log(customer.meanValue);
    prepared.mean[index] = customer.meanValue;
  });
  prepared.distinctCounts = Float64Array.from(groups.keys());
  return prepared;
}

/**
 * Log-likelihood of the observed mean values (the density of z̄ given x, marginalised over ν).
 * Γ(px + q) and (γ + x·z̄)^(px+q) leave double range for frequent, high-spending customers, so the
 * density is assembled from logs. Customers without usable spend contribute nothing.
 */
export function gammaGammaLogLikelihood(parameters: GammaGammaParameters, customers: readonly SpendSummary[]): number {
  return preparedLogLikelihood(parameters, prepareSpend(customers));
}

function preparedLogLikelihood(parameters: GammaGammaParameters, prepared: PreparedSpend): number {
  const { p, q, gamma } = parameters;
  if (!(p > 0 && q > 0 && gamma > 0)) return Number.NEGATIVE_INFINITY;
  const shared = q * Math.log(gamma) - gammaln(q);
  const perCount = Array.from(
    prepared.distinctCounts,
    (x) => shared + gammaln(p * x + q) - gammaln(p * x) + p * x * Math.log(x),
  );
  let total = 0;
  for (let index = 0; index < prepared.count.length; index++) {
    const x = prepared.count[index]!;
    total +=
      perCount[prepared.groupOf[index]!]! +
      (p * x - 1) * prepared.logMean[index]! -
      (p * x + q) * Math.log(gamma + x * prepared.mean[index]!);
  }
  return total;
}

/** Maximum-likelihood fit over log(p, q, γ). */
export function fitGammaGamma(
  customers: readonly SpendSummary[],
  options: GammaGammaFitOptions = defaultGammaGammaFitOptions,
): GammaGammaFit {
  const prepared = prepareSpend(customers);
  const size = prepared.count.length;
  if (size === 0) throw new Error("fitGammaGamma: no customer with a repeat purchase of positive value");
  const fromLog = (point: number[]): GammaGammaParameters => ({
    p: Math.exp(point[0]!),
    q: Math.exp(point[1]!),
    gamma: Math.exp(point[2]!),
  });
  const { start } = options;
  const result = minimizeNelderMead(
    (point) => -preparedLogLikelihood(fromLog(point), prepared) / size,
    [Math.log(start.p), Math.log(start.q), Math.log(start.gamma)],
    options.optimizer,
  );
  const parameters = fromLog(result.point);
  return {
    ...parameters,
    logLikelihood: preparedLogLikelihood(parameters, prepared),
    iterations: result.iterations,
    converged: result.converged,
    customers: size,
  };
}

/** Why a Gamma-Gamma fit cannot be used to value customers. */
export type GammaGammaProblem = "fit_error" | "non_finite" | "no_finite_mean" | "out_of_range" | "implausible_mean";

export interface GammaGammaCheckOptions {
  /** p and q (unitless) beyond e^±bound mean the Gamma mixing collapsed or ran off: the fit is degenerate. */
  logParameterBound: number;
}

export const defaultGammaGammaCheckOptions: GammaGammaCheckOptions = { logParameterBound: 10 };

/**
 * What is wrong with fitted parameters, or null when they can value customers: all finite and
 * positive, q > 1 (else the population mean pγ/(q−1) does not exist and expectedAverageOrderValue
 * refuses), p and q within e^±bound, and the population mean within the customers' own mean values.
 * Subscription-like spend (many customers repeating one constant value) and a single huge value are
 * what drive a maximum-likelihood fit here.
 */
export function gammaGammaProblem(
  parameters: GammaGammaParameters,
  customers: readonly SpendSummary[],
  options: GammaGammaCheckOptions = defaultGammaGammaCheckOptions,
): GammaGammaProblem | null {
  const { p, q, gamma } = parameters;
  if (![p, q, gamma].every((value) => Number.isFinite(value) && value > 0)) return "non_finite";
  if (!(q > 1)) return "no_finite_mean";
  const bound = options.logParameterBound;
  if (Math.abs(Math.log(p)) > bound || Math.abs(Math.log(q)) > bound) return "out_of_range";
  const mean = (p * gamma) / (q - 1);
  let low = Number.POSITIVE_INFINITY;
  let high = 0;
  for (const customer of customers) {
    if (!usable(customer)) continue;
    low = Math.min(low, customer.meanValue);
    high = Math.max(high, customer.meanValue);
  }
  if (!(Number.isFinite(mean) && mean >= low && mean <= high)) return "implausible_mean";
  return null;
}

/** Bounds of the moment estimate's q: at least 3 (a finite spread), at most 1000 (the population mean). */
const momentQ = { min: 3, max: 1000 };

/**
 * The fallback spend model when the fit is degenerate: a robust method-of-moments estimate with p = 1.
 * The population mean pγ/(q−1) is set to the median customer's mean value, and the spread of
 * customers' means to the one the interquartile range gives ((IQR / 1.349)², a normal-consistent
 * variance): across customers ζ = p/ν has CV² = 1/(q − 2), so q = 2 + median² / variance, kept in
 * [3, 1000]. With p = 1, expectedAverageOrderValue is ((q−1)·median + x·z̄) / (x + q − 1): a customer's
 * own mean value counts once per repeat purchase day against q − 1 for the population's. Quantiles,
 * not a mean and a variance, so one huge or zero value cannot move it. Null with no usable customer.
 */
export function momentGammaGamma(customers: readonly SpendSummary[]): GammaGammaParameters | null {
  const means = Float64Array.from(customers.filter(usable).map((customer) => customer.meanValue)).sort();
  if (means.length === 0) return null;
  const median = quantileSorted(means, 0.5);
  const spread = (quantileSorted(means, 0.75) - quantileSorted(means, 0.25)) / 1.349;
  const ratio = (median / spread) ** 2;
  const q = Math.min(momentQ.max, Math.max(momentQ.min, 2 + (Number.isFinite(ratio) ? ratio : momentQ.max)));
  const p = 1;
  return { p, q, gamma: (median * (q - 1)) / p };
}

/**
 * E[M | p, q, γ, x, z̄] (eq. 5 of the 2013 note): a weighted average of the population mean
 * pγ/(q−1) and the customer's own mean, weighted towards their own as x grows. A customer with no
 * usable repeat purchase gets the population mean. Needs q > 1 for the population mean to exist.
 */
export function expectedAverageOrderValue(parameters: GammaGammaParameters, customer: SpendSummary): number {
  const { p, q, gamma } = parameters;
  if (!(q > 1)) throw new Error(`expectedAverageOrderValue: q must be > 1 for a finite mean, got ${q}`);
  if (!usable(customer)) return (p * gamma) / (q - 1);
  const x = customer.count;
  return (p * (gamma + x * customer.meanValue)) / (p * x + q - 1);
}
