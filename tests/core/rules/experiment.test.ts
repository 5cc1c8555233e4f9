import { describe, expect, it } from "vitest";
import {
  anytimeSampleSize,
  clusterDesignEffect,
  meanEstimate,
  minValuesForMeanInterval,
  normalInterval,
  proportionRatio,
  ratioEstimate,
  twoProportionSampleSize,
  wilsonInterval,
} from "../../../worker/core/math/intervals.ts";
import { type ArmTotals, emptyArm, readExperiment } from "../../../worker/core/rules/experiment.ts";

/** mulberry32: a small seeded generator, so every run draws the same experiments. */
function seeded(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function binomial(random: () => number, n: number, p: number): number {
  let k = 0;
  for (let i = 0; i < n; i++) if (random() < p) k++;
  return k;
}

/** An arm of `shoppers` of whom `converted` placed one order worth `value` each, one impression each. */
function arm(shoppers: number, converted: number, value = 20): ArmTotals {
  return {
    ...emptyArm,
    shoppers,
    impressions: shoppers,
    impressionsSquares: shoppers,
    clicks: converted,
    clicksSquares: converted,
    clicksImpressions: converted,
    orders: converted,
    ordersSquares: converted,
    converted,
    revenue: converted * value,
    revenueSquares: converted * value * value,
  };
}

describe("wilsonInterval", () => {
  it("matches Newcombe's (1998) worked values", () => {
    const at4 = (interval: [number, number] | null) => interval?.map((x) => Math.round(x * 10_000) / 10_000);
    expect(at4(wilsonInterval(81, 263))).toEqual([0.2553, 0.3662]);
    expect(at4(wilsonInterval(15, 148))).toEqual([0.0624, 0.1605]);
    expect(at4(wilsonInterval(0, 20))).toEqual([0, 0.1611]);
    expect(at4(wilsonInterval(1, 29))).toEqual([0.0061, 0.1718]);
    expect(wilsonInterval(0, 0)).toBeNull();
  });

  it("covers the true proportion about 95% of the time", () => {
    const random = seeded(7);
    let covered = 0;
    const runs = 2000;
    for (let run = 0; run < runs; run++) {
      const [low, high] = wilsonInterval(binomial(random, 120, 0.08), 120)!;
      if (low <= 0.08 && 0.08 <= high) covered++;
    }
    expect(covered / runs).toBeGreaterThan(0.93);
    expect(covered / runs).toBeLessThan(0.975);
  });
});

describe("meanEstimate and ratioEstimate", () => {
  it("computes the mean and its standard error from sums", () => {
    // 1, 2, 3, 4: mean 2.5, sample variance 5/3, SE √(5/12).
    const estimate = meanEstimate(10, 30, 4)!;
    expect(estimate.value).toBe(2.5);
    expect(estimate.se).toBeCloseTo(Math.sqrt(5 / 12), 12);
    expect(meanEstimate(3, 9, 1)).toBeNull();
  });

  // Two shoppers with 3 impressions each have a standard deviation of 0: an interval of no width, as if
  // the mean were known exactly. Too few values, or none apart, give the mean without an interval.
  it("gives no interval from fewer than 30 values, nor from values all alike", () => {
    expect(minValuesForMeanInterval).toBe(30);
    expect(normalInterval(meanEstimate(6, 18, 2)!)).toBeNull();
    expect(normalInterval(meanEstimate(29, 29 + 28 * 2, 29)!)).toBeNull(); // 29 values, spread
    expect(normalInterval(meanEstimate(60, 120, 30)!)).toBeNull(); // 30 values, all 2
    const [low, high] = normalInterval(meanEstimate(31, 33, 30)!)!; // one 2 among 29 ones
    expect(low).toBeLessThan(31 / 30);
    expect(high).toBeGreaterThan(31 / 30);
    const few = meanEstimate(6, 18, 2)!;
    const many = meanEstimate(31, 33, 30)!;
    expect(ratioEstimate(few, many)).toEqual({ value: 3 / (31 / 30), ci95: null });
    expect(ratioEstimate(many, many)?.ci95).not.toBeNull();
  });

  it("gives a ratio of means an interval that covers the true ratio about 95% of the time with a 10% holdout", () => {
    const random = seeded(11);
    let covered = 0;
    const runs = 2000;
    for (let run = 0; run < runs; run++) {
      // Orders per shopper, each shopper 0 or 1: the sum of squares is the sum.
      const [k1, k2] = [binomial(random, 1800, 0.12), binomial(random, 200, 0.06)];
      const ratio = ratioEstimate(meanEstimate(k1, k1, 1800)!, meanEstimate(k2, k2, 200)!);
      if (ratio?.ci95 && ratio.ci95[0] <= 2 && 2 <= ratio.ci95[1]) covered++;
    }
    expect(covered / runs).toBeGreaterThan(0.93);
    expect(covered / runs).toBeLessThan(0.975);
  });
});

describe("proportionRatio", () => {
  it("keeps the uncertainty of an arm that converted every shopper it has", () => {
    // 3 of 10 against 1 of 1: the 1 of 1 is anywhere from 0.21 to 1 (Wilson), so the ratio 0.3 cannot
    // exclude 1. The delta method's SE of 0 for 1 of 1 gave 0.12 to 0.77: a verdict from one shopper.
    const ratio = proportionRatio(3, 10, 1, 1)!;
    expect(ratio.value).toBe(0.3);
    expect(ratio.ci95.map((x) => Math.round(x * 1e4) / 1e4)).toEqual([0.1078, 1.6837]);
    expect(proportionRatio(0, 10, 1, 1)).toBeNull();
    expect(proportionRatio(3, 10, 0, 5)).toBeNull();
    expect(proportionRatio(3, 0, 1, 1)).toBeNull();
  });

  // With a handful of held-out shoppers converting often, many draws convert them all; an interval that
  // ignores that arm's uncertainty then covers far less than 95% (82% and 90% here with the delta method, on the same draws).
  it.each([
    [1800, 0.12, 200, 0.06],
    [50, 0.95, 6, 0.95],
    [30, 0.5, 3, 0.8],
  ])("covers the true ratio about 95%% of the time: %i shoppers at %f against %i at %f", (n1, p1, n2, p2) => {
    const random = seeded(5);
    let covered = 0;
    let runs = 0;
    for (let run = 0; run < 4000; run++) {
      const ratio = proportionRatio(binomial(random, n1, p1), n1, binomial(random, n2, p2), n2);
      if (!ratio) continue;
      runs++;
      if (ratio.ci95[0] <= p1 / p2 && p1 / p2 <= ratio.ci95[1]) covered++;
    }
    expect(runs).toBeGreaterThan(3900);
    expect(covered / runs).toBeGreaterThan(0.935);
    expect(covered / runs).toBeLessThan(0.975);
  });
});

describe("twoProportionSampleSize", () => {
  it("matches the textbook figure for 25% vs 15% in equal groups", () => {
    // (1.96 √(2 × 0.2 × 0.8) + 0.8416 √(0.25 × 0.75 + 0.15 × 0.85))² / 0.1² ≈ 249.97.
    expect(twoProportionSampleSize(0.25, 0.15, 1)).toBe(250);
    expect(twoProportionSampleSize(0.2, 0.2, 1)).toBeNull();
  });

  it("sizes unequal groups so the verdict's always-valid interval excludes no difference about 80% of the time", () => {
    const [p1, p2, ratio] = [0.15, 0.1, 9];
    const holdout = anytimeSampleSize(p1, p2, ratio)!;
    // The price of an interval that may be read every day: more shoppers than one look needs.
    expect(holdout).toBeGreaterThan(twoProportionSampleSize(p1, p2, ratio)!);
    const personalized = holdout * ratio;
    const random = seeded(3);
    let decided = 0;
    const runs = 1000;
    for (let run = 0; run < runs; run++) {
      const reading = readExperiment(
        arm(personalized, binomial(random, personalized, p1)),
        arm(holdout, binomial(random, holdout, p2)),
        ratio,
      );
      if (reading.verdict.decided) decided++;
    }
    expect(decided / runs).toBeGreaterThan(0.75);
    expect(decided / runs).toBeLessThan(0.85);
  });
});

describe("a verdict read every day", () => {
  it("calls a difference that is not there at most 5% of the time, where one look's interval read daily calls it far more", () => {
    // A/A: both arms convert 10%; 40 daily looks as 25 held-out and 225 personalized shoppers arrive a
    // day; an experiment stops at its first decided look.
    const random = seeded(11);
    const runs = 400;
    let falseVerdicts = 0;
    let falseSingleLook = 0;
    for (let run = 0; run < runs; run++) {
      let [personalized, holdout] = [arm(0, 0), arm(0, 0)];
      let [verdict, singleLook] = [false, false];
      for (let day = 1; day <= 40; day++) {
        personalized = arm(personalized.shoppers + 225, personalized.converted + binomial(random, 225, 0.1));
        holdout = arm(holdout.shoppers + 25, holdout.converted + binomial(random, 25, 0.1));
        const reading = readExperiment(personalized, holdout, 9);
        const ci = reading.lift.conversion.ci95;
        verdict ||= reading.verdict.decided;
        singleLook ||= ci !== null && (ci[0] > 1 || ci[1] < 1);
      }
      if (verdict) falseVerdicts++;
      if (singleLook) falseSingleLook++;
    }
    expect(falseVerdicts / runs).toBeLessThanOrEqual(0.05);
    expect(falseSingleLook / runs).toBeGreaterThan(0.15);
  });

  it("decides on the difference alone while an arm has no attributed order, and keeps the interval within ±1", () => {
    const none = readExperiment(arm(1000, 100), arm(500, 0), 9);
    expect(none.lift.conversion.value).toBeNull();
    expect(none.verdict).toMatchObject({ decided: true, winner: "personalized", difference: { value: 0.1 } });
    expect(none.verdict.text).toBe(
      "personalized shelves convert, the holdout does not: a difference of +10.0 points (always-valid 95% CI +7.0 to +13.0), over 1,500 shoppers",
    );
    const tiny = readExperiment(arm(1, 1), arm(1, 0), 9);
    expect(tiny.verdict.decided).toBe(false);
    expect(tiny.verdict.difference?.ci95).toEqual([-1, 1]);
    expect(tiny.verdict.text).not.toContain("likely smaller");
  });

  it("says when one look's interval excludes no difference and the always-valid one does not yet", () => {
    // 30 of 150 against 4 of 55: 20% against 7.3%, a lift whose single-look interval excludes 1.
    const reading = readExperiment(arm(150, 30), arm(55, 4), 9);
    expect(reading.lift.conversion.ci95?.[0]).toBeGreaterThan(1);
    const [low, high] = reading.verdict.difference?.ci95 ?? [0, 0];
    expect(low).toBeLessThan(0);
    expect(high).toBeGreaterThan(0);
    expect(reading.verdict).toMatchObject({ decided: false, winner: null });
    expect(reading.verdict.text).toMatch(
      /^not enough data yet: conversion lift 2\.750×, 95% CI 1\.090× to 7\.329×, excludes no difference on this one look, but the verdict waits for the always-valid interval, which holds however often the results are read: the difference in conversion is \+12\.7 points, always-valid 95% CI −8\.6 to \+34\.0, over 205 shoppers$/,
    );
  });
});

describe("click-through over shoppers' impressions", () => {
  /**
   * An arm of `shoppers` each shown 1–20 impressions, a fifth of them clicking 40% of what they see
   * and the rest 2% (true click-through 9.6% whoever is shown what): impressions are clustered in
   * shoppers who differ, as on a real storefront.
   */
  function clickingArm(random: () => number, shoppers: number): ArmTotals {
    const totals = { ...emptyArm, shoppers };
    for (let s = 0; s < shoppers; s++) {
      const impressions = 1 + Math.floor(random() * 20);
      const clicks = binomial(random, impressions, random() < 0.2 ? 0.4 : 0.02);
      totals.impressions += impressions;
      totals.impressionsSquares += impressions * impressions;
      totals.clicks += clicks;
      totals.clicksSquares += clicks * clicks;
      totals.clicksImpressions += clicks * impressions;
    }
    return totals;
  }

  it("keeps an A/A experiment's click-through lift to about 1 false result in 20, where independent impressions gave about 1 in 3", () => {
    const random = seeded(11);
    const runs = 400;
    let [falseLifts, falseIfIndependent, covered] = [0, 0, 0];
    for (let run = 0; run < runs; run++) {
      const [personalized, holdout] = [clickingArm(random, 500), clickingArm(random, 100)];
      const [low, high] = readExperiment(personalized, holdout, 5).lift.clickThroughRate.ci95 ?? [1, 1];
      if (low > 1 || high < 1) falseLifts++;
      const [iLow, iHigh] = proportionRatio(
        personalized.clicks,
        personalized.impressions,
        holdout.clicks,
        holdout.impressions,
      )?.ci95 ?? [1, 1];
      if (iLow > 1 || iHigh < 1) falseIfIndependent++;
      const [armLow, armHigh] = readExperiment(personalized, holdout, 5).arms.holdout.clickThroughRate.ci95 ?? [0, 0];
      if (armLow <= 0.096 && 0.096 <= armHigh) covered++;
    }
    expect(falseLifts / runs).toBeLessThanOrEqual(0.08);
    expect(falseIfIndependent / runs).toBeGreaterThan(0.2);
    expect(covered / runs).toBeGreaterThanOrEqual(0.92);
  });

  it("is the independent-impressions interval where every shopper clicks alike, and never narrower", () => {
    expect(clusterDesignEffect(100, 10, 10, 100, 100, 10)).toBeCloseTo(1, 1); // n ÷ (n − 1)
    expect(clusterDesignEffect(1, 3, 9, 10, 100, 30)).toBe(1);
    expect(clusterDesignEffect(50, 0, 0, 500, 5_000, 0)).toBe(1);
    // Ten shoppers of 10 impressions, one clicking all of them: worth far fewer than 100 trials.
    expect(clusterDesignEffect(10, 10, 100, 100, 1_000, 100)).toBeCloseTo(100 / 9, 6); // 10 × n ÷ (n − 1)
  });
});

describe("readExperiment", () => {
  it("says 'not enough data yet' and how many more shoppers a small experiment needs", () => {
    const reading = readExperiment(arm(90, 9), arm(10, 0), 9);
    expect(reading.verdict).toMatchObject({ decided: false, winner: null });
    expect(reading.verdict.text).toMatch(/^not enough data yet: no attributed orders in the holdout yet/);
    // A 10% vs 0% difference: the power calculation still has an answer.
    expect(reading.verdict.moreShoppersNeeded).toBe((reading.verdict.shoppersNeeded ?? 0) - 100);
    expect(reading.verdict.text).toContain(`about ${reading.verdict.moreShoppersNeeded} more shoppers`);
    // From 10 held-out shoppers the estimate says it is rough; from 100 it does not.
    expect(reading.verdict.text).toMatch(
      /80% power; a rough guess while an arm has under 30 shoppers: it moves as the rates settle\)$/,
    );

    const close = readExperiment(arm(900, 110), arm(100, 10), 9);
    expect(close.verdict.decided).toBe(false);
    expect(close.lift.conversion.value).toBeCloseTo(1.222, 3);
    expect(close.verdict.text).toMatch(
      /^not enough data yet: conversion lift 1\.222×, 95% CI 0\.\d\d\d× to \d\.\d\d\d×/,
    );
    expect(close.verdict.moreShoppersNeeded).toBeGreaterThan(1000);
    expect(close.verdict.text).toMatch(/80% power\)$/);
    // Tiny arms: the estimate says it is rough.
    const tiny = readExperiment(arm(3, 3), arm(3, 1), 9);
    expect(tiny.verdict.moreShoppersNeeded).toBe((tiny.verdict.shoppersNeeded ?? 0) - 6);
    expect(tiny.verdict.text).toMatch(
      /80% power; a rough guess while an arm has under 30 shoppers: it moves as the rates settle\)$/,
    );
  });

  it("decides nothing from one held-out shopper who bought", () => {
    const reading = readExperiment(arm(10, 3), arm(1, 1), 9);
    expect(reading.verdict).toMatchObject({ decided: false, winner: null });
    expect(reading.lift.conversion).toEqual({ value: 0.3, ci95: [0.108, 1.684] });
    expect(reading.verdict.text).toMatch(/^not enough data yet: conversion lift 0\.300×, 95% CI 0\.108× to 1\.684×/);
  });

  it("decides once the lift's interval excludes 1, naming the better arm", () => {
    const reading = readExperiment(arm(9000, 1800), arm(1000, 100), 9);
    expect(reading.verdict).toMatchObject({ decided: true, winner: "personalized", moreShoppersNeeded: 0 });
    expect(reading.lift.conversion.value).toBe(2);
    const [low, high] = reading.lift.conversion.ci95!;
    expect(low).toBeGreaterThan(1);
    expect(high).toBeGreaterThan(2);
    // The headline's interval is the one that decided, the always-valid difference's, not the lift's
    // single-look interval, which is narrower.
    const [first, last] = reading.verdict.difference?.ci95 ?? [0, 0];
    expect(reading.verdict.text).toBe(
      `personalized shelves convert 2.000× as often as the holdout: a difference of +10.0 points (always-valid 95% CI +${(first * 100).toFixed(1)} to +${(last * 100).toFixed(1)}), over 10,000 shoppers`,
    );
    expect(reading.verdict.text).not.toContain(low.toFixed(3));
    const worse = readExperiment(arm(9000, 450), arm(1000, 100), 9);
    expect(worse.verdict).toMatchObject({ decided: true, winner: "holdout" });
    expect(worse.verdict.text).toMatch(
      /^personalized shelves convert less often than the holdout, 0\.500× as often: a difference of −5\.0 points \(always-valid 95% CI −\d+\.\d to −\d+\.\d\), over 10,000 shoppers$/,
    );
  });

  it("does not decide on a bound that reads 1.000× to the 3 places the lift is shown with", () => {
    // 309 of 2,500 against 100 of 1,000: the interval's low end is 1.00036, shown as 1.000.
    const unrounded = proportionRatio(309, 2500, 100, 1000);
    expect(unrounded?.ci95[0]).toBeGreaterThan(1);
    const reading = readExperiment(arm(2500, 309), arm(1000, 100), 9);
    expect(reading.lift.conversion.ci95?.[0]).toBe(1);
    expect(reading.verdict.decided).toBe(false);
    expect(reading.verdict.text).toMatch(/95% CI 1\.000× to 1\.531×, still includes no difference/);
  });

  it("gives every per-arm metric and lift a value and an interval around it", () => {
    const reading = readExperiment(arm(900, 90, 30), arm(100, 5, 30), 9);
    for (const side of [reading.arms.personalized, reading.arms.holdout, reading.lift]) {
      for (const [metric, measured] of Object.entries(side)) {
        // One impression each: every shopper alike, so a value and no interval.
        if (metric === "impressionsPerShopper") {
          expect(measured).toEqual({ value: 1, ci95: null });
          continue;
        }
        const [low, high] = measured.ci95 ?? [Number.NaN, Number.NaN];
        expect(low, metric).toBeLessThanOrEqual(measured.value ?? Number.NaN);
        expect(high, metric).toBeGreaterThanOrEqual(measured.value ?? Number.NaN);
      }
    }
    expect(reading.arms.personalized.conversion.value).toBe(0.1);
    expect(reading.arms.personalized.revenuePerShopper.value).toBe(3);
  });

  it("reads an empty experiment without dividing by zero", () => {
    const reading = readExperiment(emptyArm, emptyArm, 9);
    expect(reading.lift.conversion).toEqual({ value: null, ci95: null });
    expect(reading.verdict.text).toBe("not enough data yet: no shoppers in the personalized arm yet");
  });
});
