// Orders per recommendation: the personalized ÷ holdout lift with its 95% interval, from each arm's
// recommendations, attributed orders and Σ orders² (a recommendation's orders are its unit).
import { describe, expect, it } from "vitest";
import { meanEstimate, ratioEstimate } from "../../../worker/core/math/intervals.ts";
import { ordersPerRecommendationLift } from "../../../worker/core/rules/per-recommendation.ts";

describe("ordersPerRecommendationLift", () => {
  it("is the ratio of the two arms' mean orders per recommendation, with the log-scale interval, to 3 places", () => {
    // 1,800 shelves of which 360 led to one order, and 200 of which 20 did (one led to two).
    const personalized = { recommendations: 1800, orders: 360, ordersSquares: 360 };
    const holdout = { recommendations: 200, orders: 21, ordersSquares: 23 };
    const expected = ratioEstimate(
      meanEstimate(360, 360, 1800) as NonNullable<ReturnType<typeof meanEstimate>>,
      meanEstimate(21, 23, 200) as NonNullable<ReturnType<typeof meanEstimate>>,
    );
    const lift = ordersPerRecommendationLift(personalized, holdout);
    expect(lift.value).toBe(Math.round((0.2 / 0.105) * 1000) / 1000);
    expect(expected?.ci95).not.toBeNull();
    expect(lift.ci95).toEqual(expected?.ci95?.map((bound) => Math.round(bound * 1000) / 1000));
    expect(lift.ci95?.[0]).toBeLessThan(lift.value as number);
    expect(lift.ci95?.[1]).toBeGreaterThan(lift.value as number);
  });

  it("is not measurable without an arm, below two recommendations, or without an order in an arm", () => {
    const some = { recommendations: 50, orders: 5, ordersSquares: 5 };
    const none = { value: null, ci95: null };
    expect(ordersPerRecommendationLift(some, undefined)).toEqual(none);
    expect(ordersPerRecommendationLift(undefined, some)).toEqual(none);
    expect(ordersPerRecommendationLift(some, { recommendations: 1, orders: 1, ordersSquares: 1 })).toEqual(none);
    expect(ordersPerRecommendationLift({ recommendations: 50, orders: 0, ordersSquares: 0 }, some)).toEqual(none);
    expect(ordersPerRecommendationLift(some, { recommendations: 50, orders: 0, ordersSquares: 0 })).toEqual(none);
  });
});
