// A customer's own purchase rhythm and whether they are still on it: how regular their gaps are, the
// interval they buy at, when the next purchase is due, the probability they are still buying, and
// the chance of a purchase within a horizon. One model for all of it: the BG/NBD with Erlang-k gaps of
// bg-nbd.ts (k = the customer's regularity), fitted on the whole base, so a short history is read
// through the population (the Gamma prior on rates) and the time since the last purchase counts as
// evidence both ways: a long silence lowers the rate if they are still buying and raises the odds that
// they have stopped. Dates are ISO strings; results in days. It fits nothing (population-models.ts does).
import { type BgNbdParameters, logGapSurvival, maxRegularity, probabilityAlive, ratePosterior } from "./bg-nbd.ts";
import type { CustomerSummary } from "./summary.ts";

export interface PurchaseHistory {
  /** Distinct days with a purchase. */
  purchaseDays: number;
  firstPurchaseAt: string;
  lastPurchaseAt: string;
  /** Σ over consecutive purchase days of the gap², in days²; absent when unknown (regularity falls back to the prior). */
  gapSquareSum?: number;
}

export interface RegularityPrior {
  /** The population's squared coefficient of variation of gaps between purchases (1 for memoryless buyers). */
  cv2: number;
  /** Weight of the prior in gaps: with this many observed gaps beyond the first, own and prior count equally. */
  weight: number;
  /** Largest regularity assigned (Erlang shape). */
  max: number;
}

export const defaultRegularityPrior: RegularityPrior = { cv2: 1, weight: 8, max: 16 };

export interface RhythmModel {
  /** Fitted (r, α, a, b), α in the model's time unit. */
  parameters: BgNbdParameters;
  timeUnitDays: number;
  regularity: RegularityPrior;
}

export interface Rhythm {
  /** Erlang shape of the customer's gaps: 1 is memoryless (Poisson), larger is more regular. */
  regularity: number;
  /** Probability the customer is still buying (P(alive)); 1 before any repeat purchase under the BG/NBD, below 1 under the MBG/NBD. */
  probabilityAlive: number;
  /** Expected days between purchases: 1 / E[rate | history], alive or not. */
  expectedIntervalDays: number;
  /** Intervals actually observed (purchase days − 1). */
  observedIntervals: number;
  daysSinceLast: number;
  /** Days since the last purchase ÷ expected interval: 1 means due now, 2 means twice as late as usual. */
  overdueRatio: number;
  /**
   * When the next purchase is expected if they are still buying. Before it is due: last purchase +
   * interval. Once overdue: now + the expected remaining wait of a gap that has already lasted this
   * long (a memoryless buyer still waits a whole interval; a regular one much less), never in the past.
   */
  nextExpectedAt: string;
  /** Probability of at least one purchase in the next `horizonDays`. */
  probabilityPurchase: number;
  horizonDays: number;
}

const dayMs = 86_400_000;

function dayOf(iso: string): number {
  const ms = Date.parse(iso.slice(0, 10));
  if (Number.isNaN(ms)) throw new Error(`rhythmOf: purchase dates must be ISO strings, got ${iso}`);
  return ms / dayMs;
}

/**
 * Sample squared coefficient of variation of the gaps (unbiased variance over mean²), shrunk toward
 * the population's with `weight` pseudo-gaps, turned into an Erlang shape k = round(1/CV²). A
 * moment estimate because a summary keeps Σgap² but not Σlog gap; it is what the regularity measure
 * of Platzer & Reutterer (2016) looks at, without their MCMC.
 */
export function regularityOf(history: PurchaseHistory, prior: RegularityPrior = defaultRegularityPrior): number {
  const gaps = Math.max(0, history.purchaseDays - 1);
  const own = sampleGapCv2(history);
  const cv2 = own === null ? prior.cv2 : ((gaps - 1) * own + prior.weight * prior.cv2) / (gaps - 1 + prior.weight);
  const max = Math.min(prior.max, maxRegularity);
  return cv2 > 1 / max ? Math.max(1, Math.min(max, Math.round(1 / cv2))) : max;
}

/**
 * The unbiased sample variance of the gaps between purchase days over their squared mean; null with
 * fewer than two gaps (no spread to measure) or without Σgap².
 */
export function sampleGapCv2(history: PurchaseHistory): number | null {
  const gaps = history.purchaseDays - 1;
  if (gaps < 2 || history.gapSquareSum === undefined) return null;
  const mean = (dayOf(history.lastPurchaseAt) - dayOf(history.firstPurchaseAt)) / gaps;
  if (!(mean > 0)) return null;
  return Math.max(0, (history.gapSquareSum - gaps * mean * mean) / (gaps - 1)) / (mean * mean);
}

/** { x, tx, T } in the model's unit, with the customer's regularity, for the BG/NBD functions. */
export function rhythmSummaryOf(
  history: PurchaseHistory,
  now: Date,
  model: RhythmModel,
): CustomerSummary & { regularity: number } {
  const first = dayOf(history.firstPurchaseAt);
  const last = dayOf(history.lastPurchaseAt);
  const today = Math.floor(now.getTime() / dayMs);
  const x = Math.max(0, history.purchaseDays - 1);
  const unit = model.timeUnitDays;
  // An order dated after `now` (clocks differ) counts as today, so T ≥ tx always holds.
  const T = Math.max(0, today - first, last - first) / unit;
  return { x, tx: x > 0 ? (last - first) / unit : 0, T, regularity: regularityOf(history, model.regularity) };
}

export interface RhythmOptions {
  /** Horizon of probabilityPurchase, in days. */
  horizonDays: number;
}

export const defaultRhythmOptions: RhythmOptions = { horizonDays: 90 };

export function rhythmOf(
  history: PurchaseHistory,
  now: Date,
  model: RhythmModel,
  options: RhythmOptions = defaultRhythmOptions,
): Rhythm {
  const unit = model.timeUnitDays;
  const customer = rhythmSummaryOf(history, now, model);
  const { shape, scale, regularity } = ratePosterior(model.parameters, customer);
  const silence = customer.T - customer.tx;
  const alive = probabilityAlive(model.parameters, customer);
  const survival = logGapSurvival(shape, scale, regularity, silence);
  // E[λ | still buying] = E[λ S(u)] / E[S(u)] = (shape/scale) · E_{shape+1}[S(u)] / E_shape[S(u)];
  // a customer who stopped did so right after their last purchase, so the silence says nothing of
  // their rate and E[λ | stopped] = shape/scale.
  const rateIfStopped = shape / scale;
  const rateIfAlive = rateIfStopped * Math.exp(logGapSurvival(shape + 1, scale, regularity, silence) - survival);
  const rate = alive * rateIfAlive + (1 - alive) * rateIfStopped;
  const expectedIntervalDays = unit / rate;

  const lastMs = Date.parse(history.lastPurchaseAt);
  const daysSinceLast = Math.max(0, (now.getTime() - lastMs) / dayMs);
  const dueAt = lastMs + expectedIntervalDays * dayMs;
  const remainingDays = remainingWait(rateIfAlive, regularity, silence) * unit;
  const next = dueAt > now.getTime() ? dueAt : now.getTime() + remainingDays * dayMs;

  const horizon = options.horizonDays / unit;
  const quietThroughHorizon = Math.exp(logGapSurvival(shape, scale, regularity, silence + horizon) - survival);
  return {
    regularity,
    probabilityAlive: alive,
    expectedIntervalDays,
    observedIntervals: customer.x,
    daysSinceLast,
    overdueRatio: daysSinceLast / expectedIntervalDays,
    nextExpectedAt: new Date(next).toISOString(),
    probabilityPurchase: alive * (1 - quietThroughHorizon),
    horizonDays: options.horizonDays,
  };
}

/**
 * E[G − u | G > u] for a gap G ~ Gamma(k, kλ): (1/λ)·Q(k+1, z)/Q(k, z) − u with z = kλu, and for whole
 * k the ratio is 1 + z/(k·s) with s = Σ_{j<k} (z^j/j!)/(z^(k−1)/(k−1)!), summed from the top so large
 * z cannot overflow. For k = 1 it is 1/λ whatever u: the memoryless wait.
 */
function remainingWait(rate: number, k: number, waited: number): number {
  const z = k * rate * waited;
  if (z === 0) return 1 / rate;
  let term = 1;
  let sum = 1;
  for (let j = k - 1; j >= 1; j--) {
    term *= j / z;
    sum += term;
  }
  return Math.max(0, (1 + z / (k * sum)) / rate - waited);
}

/**
 * The model for one category of one customer: the population's rates and dropout, with the rate prior
 * rescaled so its mean interval (α/r) is that category's typical interval, and memoryless gaps (no
 * per-category gap spread is kept).
 */
export function categoryRhythmModel(model: RhythmModel, priorIntervalDays: number): RhythmModel {
  const { r } = model.parameters;
  return {
    ...model,
    parameters: { ...model.parameters, alpha: (r * priorIntervalDays) / model.timeUnitDays },
    regularity: { ...model.regularity, cv2: 1, max: 1 },
  };
}
