import { describe, expect, it } from "vitest";
import {
  channelMixOf,
  defaultDiscountSensitivityOptions,
  discountSensitivityOf,
  offerGuidanceOf,
  populationDiscountShare,
  preferredHourOf,
  preferredWeekdayOf,
  priceBandOf,
  priceBandsByCategory,
  priceDistributionOf,
} from "../../../worker/core/models/preferences.ts";

describe("price band", () => {
  const heels = priceDistributionOf([20, 30, 40, 50, 60, 70, 80, 90, 100, 0, -5]);

  it.each([
    [25, "budget"],
    [55, "mid"],
    [95, "premium"],
  ] as const)("a typical price of %d is %s against the category's own prices", (price, band) => {
    expect(priceBandOf(price, heels)?.band).toBe(band);
  });

  it("ignores non-positive prices, reports the percentile and band edges, and is per category", () => {
    expect(heels.sortedPrices).toHaveLength(9);
    const mid = priceBandOf(60, heels)!;
    expect(mid.percentile).toBeCloseTo(4.5 / 9, 12);
    expect(mid.budgetBelow).toBeCloseTo(20 + (8 / 3) * 10, 10);
    const coffee = priceDistributionOf([3, 4, 5, 6]);
    // $25 is budget for heels but premium for coffee.
    const bands = priceBandsByCategory({ heels: 25, coffee: 25, unknown: 10 }, { heels, coffee });
    expect(bands.heels?.band).toBe("budget");
    expect(bands.coffee?.band).toBe("premium");
    expect(bands.unknown).toBeUndefined();
    expect(priceBandOf(10, priceDistributionOf([]))).toBeNull();
  });
});

describe("discount sensitivity", () => {
  it("weights the population share by units", () => {
    expect(
      populationDiscountShare([
        { units: 10, discountedUnits: 5 },
        { units: 30, discountedUnits: 5 },
      ]),
    ).toBeCloseTo(0.25, 12);
  });

  it.each([
    ["never buys on discount", { units: 40, discountedUnits: 0 }, 0.3, "full_price"],
    ["buys on discount as often as everyone", { units: 40, discountedUnits: 12 }, 0.3, "mixed"],
    ["buys mostly on discount", { units: 40, discountedUnits: 30 }, 0.3, "deal_seeker"],
    ["two full-price units say little yet", { units: 2, discountedUnits: 0 }, 0.3, "mixed"],
    ["where most units are discounted, 60% is ordinary", { units: 40, discountedUnits: 24 }, 0.7, "mixed"],
    [
      "where most units are discounted, all discounted is a deal seeker",
      { units: 40, discountedUnits: 40 },
      0.7,
      "deal_seeker",
    ],
  ] as const)("%s → %s", (_label, counts, populationShare, expected) => {
    expect(discountSensitivityOf(counts, populationShare, defaultDiscountSensitivityOptions).sensitivity).toBe(
      expected,
    );
  });

  it("refuses more discounted units than units", () => {
    expect(() => discountSensitivityOf({ units: 1, discountedUnits: 2 }, 0.3)).toThrow(/discountSensitivityOf/);
  });
});

describe("offer guidance", () => {
  it.each([
    ["full_price", 0.9, "no_incentive"],
    ["full_price", 0.2, "modest"],
    ["mixed", 0.9, "modest"],
    ["mixed", 0.2, "modest"],
    ["deal_seeker", 0.9, "deal_driven"],
    ["deal_seeker", 0.2, "deal_driven"],
  ] as const)("%s with P(alive) %d → %s", (sensitivity, alive, guidance) => {
    expect(offerGuidanceOf(sensitivity, alive)).toBe(guidance);
  });

  it("gives a full-price one-time buyer who has lapsed a modest incentive, whatever their P(alive) of 1", () => {
    const options = { activeMinProbabilityAlive: 0.5 };
    expect(offerGuidanceOf("full_price", 1, options, "lapsed")).toBe("modest");
    expect(offerGuidanceOf("full_price", 1, options, "fading")).toBe("modest");
    expect(offerGuidanceOf("full_price", 1, options, "new")).toBe("no_incentive");
    expect(offerGuidanceOf("full_price", 0.9, options, "active")).toBe("no_incentive");
  });
});

describe("discount sensitivity in a shop that never discounts", () => {
  it("calls everyone full price, not mixed, when no unit was ever sold below list price", () => {
    expect(discountSensitivityOf({ units: 40, discountedUnits: 0 }, 0).sensitivity).toBe("full_price");
    expect(discountSensitivityOf({ units: 1, discountedUnits: 0 }, 0).sensitivity).toBe("full_price");
  });
});

describe("channel mix", () => {
  it("reports shares and a primary channel only when one dominates", () => {
    const webHeavy = channelMixOf({ web: 8, store: 2 });
    expect(webHeavy.shares).toEqual({ web: 0.8, store: 0.2 });
    expect(webHeavy.primary).toBe("web");
    expect(channelMixOf({ web: 5, store: 4, app: 1 }).primary).toBeNull();
    expect(channelMixOf({})).toEqual({ shares: {}, primary: null });
  });
});

describe("preferred weekday and hour", () => {
  it("picks the busiest slot when it stands out, and nothing when the history is thin or even", () => {
    expect(preferredWeekdayOf([0, 0, 0, 0, 0, 0, 5])).toEqual({ slot: 6, share: 1 });
    expect(preferredWeekdayOf([1, 0, 0, 0, 0, 0, 1])).toBeNull();
    expect(preferredWeekdayOf([2, 2, 2, 2, 2, 2, 2])).toBeNull();
    const hours = Array.from({ length: 24 }, (_, hour) => (hour === 19 ? 6 : hour === 12 ? 2 : 0));
    expect(preferredHourOf(hours)).toEqual({ slot: 19, share: 0.75 });
    expect(() => preferredHourOf([1, 2, 3])).toThrow(/preferredHourOf/);
  });
});
