// Attributed orders per recommendation: the personalized ÷ holdout lift of one arm's mean orders per
// recommendation seen (a shelf served whose widget reported an impression or click) with its 95%
// interval, computed as core/rules/experiment.ts computes the per-shopper lifts: each arm's mean and
// standard error (meanEstimate), their ratio on the log scale (ratioEstimate). The unit is the
// recommendation, not the shopper: a shopper shown several shelves counts several times, and those are
// taken as independent (as impressions are for the click-through rate), so the interval is narrower
// than a per-shopper one would be when shoppers see many shelves.

import { meanEstimate, ratioEstimate } from "../math/intervals.ts";
import { type Measured, rounded } from "./experiment.ts";

/** One arm's recommendations seen, the orders attributed to them, and Σ orders² over recommendations. */
export interface RecommendationTotals {
  recommendations: number;
  orders: number;
  ordersSquares: number;
}

/** Personalized ÷ holdout orders per recommendation, rounded to 3 places as the other lifts are. */
export function ordersPerRecommendationLift(
  personalized: RecommendationTotals | undefined,
  holdout: RecommendationTotals | undefined,
): Measured {
  const mean = (arm: RecommendationTotals | undefined) =>
    arm ? meanEstimate(arm.orders, arm.ordersSquares, arm.recommendations) : null;
  const a = mean(personalized);
  const b = mean(holdout);
  const ratio = a && b ? ratioEstimate(a, b) : null;
  return ratio ? rounded(ratio.value, ratio.ci95, 3) : { value: null, ci95: null };
}
