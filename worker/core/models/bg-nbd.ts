// BG/NBD repeat-purchase model: Fader, Hardie & Lee (2005), "Counting Your Customers" the Easy Way:
// An Alternative to the Pareto/NBD Model, Marketing Science 24(2), 275–284. Equation numbers below
// refer to that paper. A customer is summarised as { x, tx, T }: x repeat purchases, the last at tx,
// observed for T, all in one time unit chosen by the caller (weeks on CDNOW); alpha is in that unit,
// r, a and b are unitless, and horizons t are in the same unit. It does not model spend (see
// gamma-gamma.ts) nor turn counts into money (clv.ts).
//
// Regularity. A customer may carry an integer `regularity` k ≥ 1: their gaps between purchases are
// then Gamma(k, kλ) (Erlang-k, mean 1/λ) instead of exponential, as in the MBG/CNBD-k model
// (Reutterer, Platzer & Schröder 2021) and Pareto/GGG (Platzer & Reutterer 2016), with the BG/NBD's
// dropout after each repeat purchase kept. With λ ~ Gamma(r, α) the rate's posterior after x gaps
// spanning tx is Gamma(r + kx, α + k·tx), and the chance that a gap of a live customer outlasts the
// time u since the last purchase is a negative binomial CDF (logGapSurvival), so every formula stays
// closed-form. Without `regularity` (k = 1) every function here is exactly the paper's BG/NBD.
//
// Dropout at the first purchase. With `dropoutAtFirstPurchase` the customer may also stop right after
// the FIRST purchase, as in the MBG/NBD of Batislam, Denizel & Filiztekin (2007), "Empirical validation
// and comparison of models for customer base analysis", IJRM 24(3): a customer with x repeat purchases
// has then survived x coin flips instead of x − 1, so b + x − 1 becomes b + x throughout, one-time
// buyers can be gone (P(alive) < 1 at x = 0), and the likelihood gains a dropout term at x = 0. Same
// four parameters; which variant fits a base better is for the caller to decide (the likelihood).
import { gammaln, logBeta } from "../math/gammaln.ts";
import { logHyp2f1 } from "../math/hyp2f1.ts";
import { minimizeNelderMead, type NelderMeadOptions } from "../math/nelder-mead.ts";
import type { CustomerSummary } from "./summary.ts";

/** r, alpha: Gamma heterogeneity of purchase rates; a, b: Beta heterogeneity of dropout probability. */
export interface BgNbdParameters {
  r: number;
  alpha: number;
  a: number;
  b: number;
  /** MBG/NBD: dropout possible right after the first purchase too; absent or false is the BG/NBD. */
  dropoutAtFirstPurchase?: boolean;
}

export interface BgNbdFit extends BgNbdParameters {
  logLikelihood: number;
  iterations: number;
  converged: boolean;
}

export interface BgNbdFitOptions {
  /** Starting point; by default r = a = b = 1 and alpha = the mean observation time T. */
  start?: BgNbdParameters;
  optimizer: Partial<NelderMeadOptions>;
  /**
   * Soft bound on |log parameter|: past e^±bound a quadratic wall is added to the objective. A base
   * whose customers all buy like clockwork has no maximum-likelihood optimum (the Gamma mixing
   * collapses to a point and the parameters run off to infinity, where the expectations overflow);
   * the wall keeps such a fit finite and leaves ordinary fits (CDNOW's are within e^±2) untouched.
   * Off when absent.
   */
  logParameterBound?: number;
  /** Fit the MBG/NBD variant (see the top of this file) instead of the BG/NBD. */
  dropoutAtFirstPurchase?: boolean;
}

export const defaultBgNbdFitOptions: BgNbdFitOptions = { optimizer: {} };

/**
 * Customers packed once for repeated likelihood evaluations. Identical summaries are stored once with
 * a weight (in a cohort, every one-time buyer acquired on the same day is the same { 0, 0, T }), and
 * the Gamma-function terms depend only on x, so they are computed once per distinct x.
 */
export interface PreparedCustomers {
  /** Customers represented (the sum of the weights). */
  count: number;
  /** Each group is one (x, regularity) pair: the Gamma-function terms depend on nothing else. */
  distinctX: Float64Array;
  distinctRegularity: Float64Array;
  groupOf: Int32Array;
  weight: Float64Array;
  x: Float64Array;
  tx: Float64Array;
  T: Float64Array;
}

export function prepareCustomers(customers: readonly CustomerSummary[]): PreparedCustomers {
  const groups = new Map<string, number>();
  const groupX: number[] = [];
  const groupRegularity: number[] = [];
  const rows = new Map<string, number>();
  const groupOf: number[] = [];
  const weight: number[] = [];
  const x: number[] = [];
  const tx: number[] = [];
  const T: number[] = [];
  for (const customer of customers) {
    checkCustomer(customer, "prepareCustomers");
    const regularity = customer.regularity ?? 1;
    const key = `${customer.x}|${customer.tx}|${customer.T}|${regularity}`;
    const row = rows.get(key);
    if (row !== undefined) {
      weight[row]! += 1;
      continue;
    }
    const groupKey = `${customer.x}|${regularity}`;
    let group = groups.get(groupKey);
    if (group === undefined) {
      group = groups.size;
      groups.set(groupKey, group);
      groupX.push(customer.x);
      groupRegularity.push(regularity);
    }
    rows.set(key, weight.length);
    groupOf.push(group);
    weight.push(1);
    x.push(customer.x);
    tx.push(customer.tx);
    T.push(customer.T);
  }
  return {
    count: customers.length,
    distinctX: Float64Array.from(groupX),
    distinctRegularity: Float64Array.from(groupRegularity),
    groupOf: Int32Array.from(groupOf),
    weight: Float64Array.from(weight),
    x: Float64Array.from(x),
    tx: Float64Array.from(tx),
    T: Float64Array.from(T),
  };
}

/**
 * Total log-likelihood (eq. 6, taken in logs). Each customer's likelihood is a sum of two terms that
 * are each a product of powers far outside double range for heavy buyers, so both are kept as logs
 * and added with log-sum-exp. With regularity k > 1 the same structure holds with r + kx and α + k·tx
 * in place of r + x and α + tx, and logGapSurvival in place of ((α+tx)/(α+T))^(r+x); the gap
 * densities' factors that do not depend on (r, α, a, b), k^(kx) Π g^(k−1) / Γ(k)^x, are left out.
 */
export function bgnbdLogLikelihood(
  parameters: BgNbdParameters,
  customers: readonly CustomerSummary[] | PreparedCustomers,
): number {
  const prepared = "groupOf" in customers ? customers : prepareCustomers(customers);
  const { r, alpha, a, b } = parameters;
  if (!(r > 0 && alpha > 0 && a > 0 && b > 0)) return Number.NEGATIVE_INFINITY;
  // MBG/NBD: one more survived coin flip (x + 1 in the Beta terms) and dropout possible at x = 0.
  const flips = parameters.dropoutAtFirstPurchase ? 1 : 0;
  const groups = prepared.distinctX.length;
  const gammaTerms = new Float64Array(groups);
  const dropoutTerms = new Float64Array(groups);
  const sharedGamma = gammaln(a + b) - gammaln(b) - gammaln(r) + r * Math.log(alpha);
  for (let group = 0; group < groups; group++) {
    const x = prepared.distinctX[group]!;
    const shape = r + prepared.distinctRegularity[group]! * x;
    gammaTerms[group] = sharedGamma + gammaln(shape) + gammaln(b + x + flips) - gammaln(a + b + x + flips);
    dropoutTerms[group] = x + flips > 0 ? Math.log(a) - Math.log(b + x + flips - 1) : Number.NEGATIVE_INFINITY;
  }
  let total = 0;
  for (let index = 0; index < prepared.weight.length; index++) {
    const group = prepared.groupOf[index]!;
    const k = prepared.distinctRegularity[group]!;
    const shape = r + k * prepared.distinctX[group]!;
    const scale = alpha + k * prepared.tx[index]!;
    const stillActive = logGapSurvival(shape, scale, k, prepared.T[index]! - prepared.tx[index]!);
    const mixture = logSumExp(stillActive, dropoutTerms[group]!);
    total += prepared.weight[index]! * (gammaTerms[group]! - shape * Math.log(scale) + mixture);
  }
  return total;
}

/**
 * log E[P(gap > u)] for a live customer whose rate λ ~ Gamma(shape, scale) (`scale` is the rate
 * parameter) and whose gaps are Gamma(k, kλ): the probability of fewer than k events of a negative
 * binomial, Σ_{j<k} C(shape+j−1, j) (1−z)^shape z^j with z = ku/(scale+ku). For k = 1 it is
 * (scale/(scale+u))^shape, the BG/NBD's ((α+tx)/(α+T))^(r+x). Each term is the previous one times
 * (shape+j−1)z/j, and the power stays in logs, so nothing overflows for heavy buyers.
 */
export function logGapSurvival(shape: number, scale: number, k: number, u: number): number {
  if (u <= 0) return 0;
  const logStay = Math.log(scale) - Math.log(scale + k * u);
  if (k === 1) return shape * logStay;
  const z = (k * u) / (scale + k * u);
  let term = 1;
  let sum = 1;
  for (let j = 1; j < k; j++) {
    term *= ((shape + j - 1) * z) / j;
    sum += term;
  }
  return shape * logStay + Math.log(sum);
}

/** The rate's posterior from completed gaps only, Gamma(r + kx, α + k·tx), with the customer's k. */
export function ratePosterior(parameters: BgNbdParameters, customer: CustomerSummary) {
  const k = customer.regularity ?? 1;
  return { shape: parameters.r + k * customer.x, scale: parameters.alpha + k * customer.tx, regularity: k };
}

/**
 * Maximum-likelihood fit, searched over log(r, alpha, a, b) so the optimiser needs no constraints.
 * `converged` is false when the optimiser stopped at its iteration limit, or past the soft bound on a
 * parameter (the likelihood had no maximum inside it); callers report it.
 */
export function fitBgNbd(
  customers: readonly CustomerSummary[],
  options: BgNbdFitOptions = defaultBgNbdFitOptions,
): BgNbdFit {
  if (customers.length === 0) throw new Error("fitBgNbd: no customers to fit");
  const prepared = prepareCustomers(customers);
  const meanT = customers.reduce((sum, customer) => sum + customer.T, 0) / customers.length;
  const start = options.start ?? { r: 1, alpha: Math.max(meanT, 1e-3), a: 1, b: 1 };
  const variant = options.dropoutAtFirstPurchase ? { dropoutAtFirstPurchase: true } : {};
  const fromLog = (point: number[]): BgNbdParameters => ({
    r: Math.exp(point[0]!),
    alpha: Math.exp(point[1]!),
    a: Math.exp(point[2]!),
    b: Math.exp(point[3]!),
    ...variant,
  });
  const bound = options.logParameterBound;
  const wall = (point: number[]) =>
    bound === undefined ? 0 : point.reduce((sum, value) => sum + Math.max(0, Math.abs(value) - bound) ** 2, 0);
  // Minimise the mean negative log-likelihood so tolerances mean the same at 2k and 2M customers.
  const result = minimizeNelderMead(
    (point) => -bgnbdLogLikelihood(fromLog(point), prepared) / prepared.count + wall(point),
    [Math.log(start.r), Math.log(start.alpha), Math.log(start.a), Math.log(start.b)],
    options.optimizer,
  );
  const parameters = fromLog(result.point);
  // Stopped past the soft bound, the optimiser found no maximum: the likelihood still rose into the
  // wall (a base with no dropout to speak of, say). Reported as not converged, not as a fit.
  const atBound = bound !== undefined && result.point.some((value) => Math.abs(value) > bound);
  return {
    ...parameters,
    logLikelihood: bgnbdLogLikelihood(parameters, prepared),
    iterations: result.iterations,
    converged: result.converged && !atBound,
  };
}

/** Log-odds that the customer has dropped out rather than merely not bought since tx. */
function logOddsDroppedOut(parameters: BgNbdParameters, customer: CustomerSummary): number {
  const { a, b } = parameters;
  const { x, tx, T } = customer;
  const flips = x + (parameters.dropoutAtFirstPurchase ? 1 : 0);
  if (flips === 0) return Number.NEGATIVE_INFINITY;
  // ((α+T)/(α+tx))^(r+x) overflows for heavy buyers who went quiet; in logs it is just large.
  const { shape, scale, regularity } = ratePosterior(parameters, customer);
  return Math.log(a) - Math.log(b + flips - 1) - logGapSurvival(shape, scale, regularity, T - tx);
}

/**
 * P(alive | x, tx, T), eq. (A8) in closed form. Exactly 1 with no repeat purchase in the BG/NBD: the
 * model lets a customer drop out only right after a repeat purchase, which is why lifecycle.ts judges
 * one-time buyers separately (the MBG/NBD variant gives them P(alive) < 1 as well).
 */
export function probabilityAlive(parameters: BgNbdParameters, customer: CustomerSummary): number {
  checkCustomer(customer, "probabilityAlive");
  return logistic(-logOddsDroppedOut(parameters, customer));
}

/**
 * E[Y(t) | x, tx, T]: expected repeat purchases in the next t time units (eq. 10). The factor
 * ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; z) is rewritten with Euler's transformation as
 * (1−z)^(a−1) · 2F1(a+b−1−r, a−1; a+b+x−1; z): same value, but no huge power times a huge series
 * for heavy buyers, and the series converges faster as x grows.
 */
export function expectedPurchasesConditional(
  parameters: BgNbdParameters,
  customer: CustomerSummary,
  t: number,
): number {
  checkCustomer(customer, "expectedPurchasesConditional");
  if (!(t >= 0)) throw new Error(`expectedPurchasesConditional: t must be >= 0, got ${t}`);
  if (t === 0) return 0;
  const alive = probabilityAlive(parameters, customer);
  if (alive === 0) return 0;
  return alive * expectedWhileAlive(survivedOneMoreFlip(parameters), customer.x, customer.T, t);
}

/**
 * The MBG/NBD's dropout after the first purchase is one more coin flip survived: from then on the
 * customer is a BG/NBD customer with b one larger (Beta(a, b) updated by one success).
 */
function survivedOneMoreFlip(parameters: BgNbdParameters): BgNbdParameters {
  return parameters.dropoutAtFirstPurchase ? { ...parameters, b: parameters.b + 1 } : parameters;
}

/** E[X(t)]: expected purchases in (0, t] for a customer acquired at time 0 (eq. 9). */
export function expectedPurchasesUnconditional(parameters: BgNbdParameters, t: number): number {
  if (!(t >= 0)) throw new Error(`expectedPurchasesUnconditional: t must be >= 0, got ${t}`);
  if (t === 0) return 0;
  // MBG/NBD: E[(1 − p) · BG/NBD(p)] = b/(a+b) · the BG/NBD's with b + 1.
  const { a, b } = parameters;
  const stays = parameters.dropoutAtFirstPurchase ? b / (a + b) : 1;
  return stays * expectedWhileAlive(survivedOneMoreFlip(parameters), 0, 0, t);
}

// Below |a − 1| < this, eq. (9)/(10)'s 0/0 is evaluated as the mean of its values on either side.
const nearOneA = 1e-4;

function expectedWhileAlive(parameters: BgNbdParameters, x: number, T: number, t: number): number {
  const { a } = parameters;
  if (Math.abs(a - 1) < nearOneA) {
    return (
      0.5 *
      (closedFormWhileAlive(parameters, 1 + nearOneA, x, T, t) +
        closedFormWhileAlive(parameters, 1 - nearOneA, x, T, t))
    );
  }
  return closedFormWhileAlive(parameters, a, x, T, t);
}

function closedFormWhileAlive(parameters: BgNbdParameters, a: number, x: number, T: number, t: number): number {
  const { r, alpha, b } = parameters;
  const z = t / (alpha + T + t);
  const c = a + b + x - 1;
  // (1 − z)^(a−1) · 2F1(…) taken in logs: for a large a the power underflows while the series
  // overflows (0 · ∞), though their product is an ordinary number.
  const series = logHyp2f1(a + b - 1 - r, a - 1, c, z);
  const transformed = series.sign * Math.exp((a - 1) * Math.log1p(-z) + series.log);
  return (c / (a - 1)) * (1 - transformed);
}

/** P(X(t) = n) for a customer acquired at time 0 (eq. 8); every term assembled in logs. */
export function probabilityOfPurchases(parameters: BgNbdParameters, t: number, n: number): number {
  if (!(t >= 0) || !Number.isInteger(n) || n < 0) {
    throw new Error(`probabilityOfPurchases: need t >= 0 and integer n >= 0, got t=${t}, n=${n}`);
  }
  if (parameters.dropoutAtFirstPurchase) throw new Error("probabilityOfPurchases: the BG/NBD only, not the MBG/NBD");
  const { r, alpha, a, b } = parameters;
  if (t === 0) return n === 0 ? 1 : 0;
  const logStay = Math.log(alpha) - Math.log(alpha + t);
  const logBuy = Math.log(t) - Math.log(alpha + t);
  const logNbd = (j: number) => gammaln(r + j) - gammaln(r) - gammaln(j + 1) + r * logStay + j * logBuy;
  const logBetaAB = logBeta(a, b);
  let probability = Math.exp(logBeta(a, b + n) - logBetaAB + logNbd(n));
  if (n > 0) {
    let below = 0;
    for (let j = 0; j < n; j++) below += Math.exp(logNbd(j));
    probability += Math.exp(logBeta(a + 1, b + n - 1) - logBetaAB) * Math.max(0, 1 - below);
  }
  return probability;
}

/** Largest regularity (Erlang shape) accepted: CV 1/8, a customer who buys almost like a clock. */
export const maxRegularity = 64;

function logSumExp(left: number, right: number): number {
  const high = Math.max(left, right);
  if (high === Number.NEGATIVE_INFINITY) return high;
  return high + Math.log1p(Math.exp(Math.min(left, right) - high));
}

function logistic(value: number): number {
  if (value >= 0) return 1 / (1 + Math.exp(-value));
  const e = Math.exp(value);
  return e / (1 + e);
}

function checkCustomer(customer: CustomerSummary, caller: string): void {
  const { x, tx, T } = customer;
  const k = customer.regularity ?? 1;
  if (!(x >= 0 && tx >= 0 && T >= tx) || (x === 0 && tx !== 0)) {
    throw new Error(`${caller}: need x >= 0, 0 <= tx <= T and tx = 0 when x = 0; got x=${x}, tx=${tx}, T=${T}`);
  }
  if (!(Number.isInteger(k) && k >= 1 && k <= maxRegularity)) {
    throw new Error(`${caller}: regularity must be a whole number in [1, ${maxRegularity}], got ${k}`);
  }
}
