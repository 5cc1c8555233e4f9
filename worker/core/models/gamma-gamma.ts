// Gamma-Gamma spend model: Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for
// Customer Base Analysis", Journal of Marketing Research 42(4), 415–430, and Fader & Hardie's note
// "The Gamma-Gamma Model of Monetary Value" (2013). Each transaction's value is Gamma(p, ν) with ν
// Gamma(q, γ) across customers; p and q are unitless, γ is in currency units. It is fitted on
// customers with at least one repeat purchase, using the mean value of those repeat purchases
// (zero or negative values are left out upstream; see summary.ts). It assumes spend is independent
// of purchase frequency and says nothing about how many orders will come (bg-nbd.ts does).
import { gammaln } from "../math/gammaln.ts";
import { minimizeNelderMead, type NelderMeadOptions } from "../math/nelder-mead.ts";

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
