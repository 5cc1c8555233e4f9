// Lifecycle stage (new, active, fading, lapsed) and value tier for one customer, from numbers the
// other models produce: the probability that a repeat buyer is still buying, judged by their own
// rhythm (rhythm.ts: rate, regularity and the silence since their last purchase in one model), and
// CLV (clv.ts). Times in days. The model gives P(alive) = 1 to anyone without a repeat purchase, so
// one-time buyers are judged instead by time since their first order against how long the
// population takes to come back (Kaplan–Meier, 1958, on time to second purchase, censored at the end
// of observation). It does not compute P(alive) or CLV itself.
import { quantileSorted } from "../math/quantile.ts";
import type { LifecycleStage, ValueTier } from "../vocabulary.ts";

export type { LifecycleStage, ValueTier };

export interface SecondPurchaseObservation {
  /** Time from first to second purchase, or null if there has been no second purchase yet. */
  secondPurchaseAfter: number | null;
  /** Time from first purchase to the end of observation (T in summary.ts). */
  T: number;
}

export interface SecondPurchaseTiming {
  /** Customers the estimate is based on. */
  sample: number;
  /** Estimated share who came back within the longest observed time (1 − Kaplan–Meier survival). */
  returnedShare: number;
  /** Times at which a second purchase happened, ascending (same unit as the input). */
  times: number[];
  /** Among those who come back within the observed span, the share who did so by times[i]. */
  cumulativeShare: number[];
}

/**
 * Kaplan–Meier estimate of time to second purchase. Customers who have not come back are censored at
 * T, so a young cohort does not make returning look faster than it is. Quantiles are taken among
 * customers who return at all (within the longest span observed), because many never do.
 */
export function secondPurchaseTiming(observations: readonly SecondPurchaseObservation[]): SecondPurchaseTiming {
  const ordered = observations
    .map((observation) => ({
      time: observation.secondPurchaseAfter ?? observation.T,
      returned: observation.secondPurchaseAfter !== null,
    }))
    .sort((left, right) => left.time - right.time || Number(right.returned) - Number(left.returned));
  let atRisk = ordered.length;
  let survival = 1;
  const times: number[] = [];
  const survivals: number[] = [];
  let index = 0;
  while (index < ordered.length) {
    const time = ordered[index]!.time;
    let returned = 0;
    let leaving = 0;
    while (index < ordered.length && ordered[index]!.time === time) {
      if (ordered[index]!.returned) returned++;
      leaving++;
      index++;
    }
    if (returned > 0) {
      survival *= 1 - returned / atRisk;
      times.push(time);
      survivals.push(survival);
    }
    atRisk -= leaving;
  }
  const returnedShare = 1 - survival;
  const cumulativeShare = survivals.map((value) => (returnedShare > 0 ? (1 - value) / returnedShare : 0));
  return { sample: observations.length, returnedShare, times, cumulativeShare };
}

/** Smallest time by which `level` of eventual returners had come back; NaN when nobody returned. */
export function secondPurchaseQuantile(timing: SecondPurchaseTiming, level: number): number {
  if (!(level > 0 && level <= 1)) throw new Error(`secondPurchaseQuantile: level must be in (0, 1], got ${level}`);
  for (let index = 0; index < timing.times.length; index++) {
    // The small slack absorbs rounding in the running product, so level 1 finds the last time.
    if (timing.cumulativeShare[index]! >= level - 1e-12) return timing.times[index]!;
  }
  return Number.NaN;
}

export interface LifecycleOptions {
  /**
   * Repeat buyers are fading below this probability of still buying, and lapsed below the next. The
   * fitted models carry their own fading line (fadingLineForExpectedF1); this one is the fallback for
   * a base too thin to fit, above ½ on purpose: a marketer would rather reach someone who may be
   * leaving than miss them.
   */
  fadingBelowProbabilityAlive: number;
  lapsedBelowProbabilityAlive: number;
  /** One-time buyers stay new until this share of returners has come back... */
  oneTimeNewUntilLevel: number;
  /** ...are fading until this share has, and lapsed after. */
  oneTimeLapsedAfterLevel: number;
}

export const defaultLifecycleOptions: LifecycleOptions = {
  fadingBelowProbabilityAlive: 0.65,
  lapsedBelowProbabilityAlive: 0.25,
  oneTimeNewUntilLevel: 0.5,
  oneTimeLapsedAfterLevel: 0.9,
};

/**
 * The fading line for one base: the P(alive) below which flagging repeat buyers as "fading or lapsed"
 * maximises the expected F1 of that flag for "has stopped buying", taking each customer's 1 − P(alive)
 * as the probability that they have stopped; the model's own belief, no outcome needed. For calibrated
 * probabilities the F1-optimal flag takes customers in order of P(alive) (Lipton, Elkan &
 * Narayanaswamy 2014, "Optimal Thresholding of Classifiers to Maximize F1 Measure", ECML PKDD), and
 * over n customers E[F1] ≈ 2·Σ_flagged(1 − p) / (flagged + Σ_all(1 − p)), the ratio of expectations,
 * accurate for the thousands of customers a fit needs. The line is halfway between the last customer
 * flagged and the next, never below `lapsedBelow` (so fading stays between active and lapsed); null
 * without any repeat buyer.
 */
export function fadingLineForExpectedF1(
  probabilitiesAlive: readonly number[],
  lapsedBelow = defaultLifecycleOptions.lapsedBelowProbabilityAlive,
): number | null {
  const sorted = Float64Array.from(probabilitiesAlive).sort();
  if (sorted.length === 0) return null;
  let stopped = 0;
  for (const alive of sorted) stopped += 1 - alive;
  let flaggedStopped = 0;
  let best = { expectedF1: 0, flagged: 0 };
  for (let i = 0; i < sorted.length; i++) {
    flaggedStopped += 1 - sorted[i]!;
    // Customers with the same P(alive) are flagged together or not at all.
    if (i + 1 < sorted.length && sorted[i + 1] === sorted[i]) continue;
    const expectedF1 = (2 * flaggedStopped) / (i + 1 + stopped);
    if (expectedF1 > best.expectedF1) best = { expectedF1, flagged: i + 1 };
  }
  const lastFlagged = best.flagged > 0 ? sorted[best.flagged - 1]! : 0;
  const nextUnflagged = best.flagged < sorted.length ? sorted[best.flagged]! : 1;
  return Math.max(lapsedBelow, (lastFlagged + nextUnflagged) / 2);
}

export interface LifecycleInput {
  /** Repeat purchases (x): 0 for a one-time buyer. */
  repeatPurchases: number;
  /** Probability the customer is still buying, from their rhythm (rhythm.ts). */
  probabilityAlive: number;
  daysSinceFirstPurchase: number;
}

export type LifecycleReason =
  | "one_time_within_usual_return"
  | "one_time_past_usual_return"
  | "one_time_past_late_return"
  | "alive_and_on_cadence"
  | "slipping"
  | "low_probability_alive";

export interface Lifecycle {
  stage: LifecycleStage;
  reason: LifecycleReason;
  /**
   * A one-time buyer's stage is judged by how long returning customers took to come back: within
   * `usualDays` of their first order for half of them (new until then), within `lateDays` for 90%
   * (fading until then, lapsed after), against `sinceFirstDays`, the days since their purchase day as
   * the stage counts them. Null for repeat buyers, and while nobody has returned.
   */
  returnWindow: { usualDays: number; lateDays: number; sinceFirstDays: number } | null;
}

/** `timing` must be in days, like the input; build it from day-unit summaries. */
export function lifecycleStage(
  input: LifecycleInput,
  timing: SecondPurchaseTiming,
  options: LifecycleOptions = defaultLifecycleOptions,
): Lifecycle {
  if (input.repeatPurchases === 0) {
    const usualDays = secondPurchaseQuantile(timing, options.oneTimeNewUntilLevel);
    const lateDays = secondPurchaseQuantile(timing, options.oneTimeLapsedAfterLevel);
    // With no returning customer to learn from, nobody can be called late yet.
    if (Number.isNaN(usualDays)) return { stage: "new", reason: "one_time_within_usual_return", returnWindow: null };
    const returnWindow = { usualDays, lateDays, sinceFirstDays: input.daysSinceFirstPurchase };
    if (input.daysSinceFirstPurchase <= usualDays)
      return { stage: "new", reason: "one_time_within_usual_return", returnWindow };
    if (input.daysSinceFirstPurchase <= lateDays)
      return { stage: "fading", reason: "one_time_past_usual_return", returnWindow };
    return { stage: "lapsed", reason: "one_time_past_late_return", returnWindow };
  }
  const repeat = (stage: LifecycleStage, reason: LifecycleReason): Lifecycle => ({ stage, reason, returnWindow: null });
  if (input.probabilityAlive < options.lapsedBelowProbabilityAlive) return repeat("lapsed", "low_probability_alive");
  if (input.probabilityAlive < options.fadingBelowProbabilityAlive) return repeat("fading", "slipping");
  return repeat("active", "alive_and_on_cadence");
}

export interface ValueTierOptions {
  /** Share of customers in the top tier (highest CLV). */
  topShare: number;
  /** Share in the next tier down. */
  highShare: number;
  mediumShare: number;
  /**
   * Least 12-month CLV of any tier above low, in currency. Quantiles alone would name the best of a
   * base that has stopped buying "top": after years of old history are loaded, most CLVs are ~0 and so
   * are the quantiles. The nightly fit sets it to `floorShareOfPurchaseDay` of a typical purchase day.
   */
  floor: number;
}

export const defaultValueTierOptions: ValueTierOptions = { topShare: 0.1, highShare: 0.2, mediumShare: 0.3, floor: 0 };

/** The share of the population's median purchase-day value under which no customer ranks above low. */
export const floorShareOfPurchaseDay = 0.1;

/**
 * Minimum CLV of each tier: the population's CLV quantiles (top the highest 10% of customers, high
 * the next 20%, medium the next 30%), none below the floor.
 */
export interface ValueTierThresholds {
  top: number;
  high: number;
  medium: number;
}

export function valueTierThresholds(
  clvs: readonly number[],
  options: Partial<ValueTierOptions> = {},
): ValueTierThresholds {
  // Field by field: an option given as undefined (a model fitted before the floor) takes its default.
  const topShare = options.topShare ?? defaultValueTierOptions.topShare;
  const highShare = options.highShare ?? defaultValueTierOptions.highShare;
  const mediumShare = options.mediumShare ?? defaultValueTierOptions.mediumShare;
  const floor = options.floor ?? defaultValueTierOptions.floor;
  if (!(topShare >= 0 && highShare >= 0 && mediumShare >= 0 && topShare + highShare + mediumShare <= 1)) {
    throw new Error("valueTierThresholds: tier shares must be >= 0 and sum to at most 1");
  }
  if (!(floor >= 0 && Number.isFinite(floor)))
    throw new Error("valueTierThresholds: floor must be a finite number >= 0");
  if (clvs.length === 0) throw new Error("valueTierThresholds: need at least one CLV");
  // Shares of all customers, so top stays the highest tenth of the base; the floor only keeps anyone
  // expected to spend next to nothing out of the tiers above low (a tier then holds fewer).
  const sorted = Float64Array.from(clvs).sort();
  const cut = (level: number) => Math.max(floor, quantileSorted(sorted, level));
  return {
    top: cut(1 - topShare),
    high: cut(1 - topShare - highShare),
    medium: cut(1 - topShare - highShare - mediumShare),
  };
}

/** A customer expected to spend nothing in the next 12 months is low, whatever the cut-offs. */
export function valueTier(clv: number, thresholds: ValueTierThresholds): ValueTier {
  if (!(clv > 0)) return "low";
  if (clv >= thresholds.top) return "top";
  if (clv >= thresholds.high) return "high";
  if (clv >= thresholds.medium) return "medium";
  return "low";
}
