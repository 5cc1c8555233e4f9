import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  defaultLifecycleOptions,
  fadingLineForExpectedF1,
  type LifecycleInput,
  lifecycleStage,
  secondPurchaseQuantile,
  secondPurchaseTiming,
  valueTier,
  valueTierThresholds,
} from "../../../worker/core/models/lifecycle.ts";
import { summarizeEvents } from "../../../worker/core/models/summary.ts";
import { cdnowCutoffDay, cdnowSampleEvents } from "./reference-data.ts";

describe("secondPurchaseTiming", () => {
  it("without censoring gives the empirical quantiles of the returners", () => {
    const observations = [
      ...[10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((after) => ({ secondPurchaseAfter: after, T: 400 })),
      ...Array.from({ length: 10 }, () => ({ secondPurchaseAfter: null, T: 400 })),
    ];
    const timing = secondPurchaseTiming(observations);
    expect(timing.returnedShare).toBeCloseTo(0.5, 12);
    expect(secondPurchaseQuantile(timing, 0.5)).toBe(50);
    expect(secondPurchaseQuantile(timing, 0.9)).toBe(90);
    expect(secondPurchaseQuantile(timing, 1)).toBe(100);
  });

  it("does not let a young, censored cohort make returning look faster", () => {
    // Half of these customers are only 15 days old: counting them as 'never returned' would shrink the
    // returned share; Kaplan–Meier removes them from the risk set instead.
    const old = [10, 30, 60, 90].map((after) => ({ secondPurchaseAfter: after, T: 200 }));
    const young = Array.from({ length: 4 }, () => ({ secondPurchaseAfter: null, T: 15 }));
    const timing = secondPurchaseTiming([...old, ...young]);
    // Survival: 7/8 after day 10 (8 at risk), then the young four leave the risk set at day 15, so
    // 7/8·2/3 after day 30, 7/12·1/2 after day 60, 0 after day 90. Cumulative 1/8, 5/12, 17/24, 1:
    // the median return is at 60 days, not the 30 that the returners' own times would suggest.
    expect(timing.returnedShare).toBeCloseTo(1, 12);
    expect(timing.times).toEqual([10, 30, 60, 90]);
    expect(timing.cumulativeShare[1]).toBeCloseTo(5 / 12, 12);
    expect(secondPurchaseQuantile(timing, 0.5)).toBe(60);
  });

  it("is NaN with nobody returning, and works from real CDNOW summaries in days", () => {
    expect(secondPurchaseQuantile(secondPurchaseTiming([{ secondPurchaseAfter: null, T: 10 }]), 0.5)).toBeNaN();
    const summaries = summarizeEvents(cdnowSampleEvents(), { cutoffDay: cdnowCutoffDay, unit: "day" });
    const timing = secondPurchaseTiming(summaries);
    const median = secondPurchaseQuantile(timing, 0.5);
    const p90 = secondPurchaseQuantile(timing, 0.9);
    expect(timing.sample).toBe(2357);
    expect(timing.returnedShare).toBeGreaterThan(0.3);
    expect(median).toBeGreaterThan(0);
    expect(p90).toBeGreaterThan(median);
    console.info(
      `CDNOW time to second purchase (days, returners within 39 weeks): median ${median}, p90 ${p90}, returned ${(100 * timing.returnedShare).toFixed(1)}%`,
    );
  });
});

describe("lifecycleStage", () => {
  // Returners came back after 10, 20, ..., 100 days.
  const timing = secondPurchaseTiming(
    [10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((after) => ({ secondPurchaseAfter: after, T: 365 })),
  );
  const base: LifecycleInput = {
    repeatPurchases: 4,
    probabilityAlive: 0.9,
    daysSinceFirstPurchase: 300,
  };

  it.each([
    ["one-time buyer inside the usual return window", { repeatPurchases: 0, daysSinceFirstPurchase: 40 }, "new"],
    ["one-time buyer at the median return time", { repeatPurchases: 0, daysSinceFirstPurchase: 50 }, "new"],
    ["one-time buyer past the median", { repeatPurchases: 0, daysSinceFirstPurchase: 70 }, "fading"],
    ["one-time buyer past nearly all returners", { repeatPurchases: 0, daysSinceFirstPurchase: 120 }, "lapsed"],
    ["repeat buyer, likely alive and on cadence", {}, "active"],
    ["repeat buyer at the fading line", { probabilityAlive: 0.65 }, "active"],
    ["repeat buyer just below it", { probabilityAlive: 0.64 }, "fading"],
    ["repeat buyer with middling P(alive)", { probabilityAlive: 0.35 }, "fading"],
    ["repeat buyer at the lapsed line", { probabilityAlive: 0.25 }, "fading"],
    ["repeat buyer with low P(alive)", { probabilityAlive: 0.1 }, "lapsed"],
  ] as Array<[string, Partial<LifecycleInput>, string]>)("%s → %s", (_label, change, stage) => {
    // P(alive) = 1 for one-time buyers under BG/NBD; the stage must not lean on it.
    const input = { ...base, ...change, ...(change.repeatPurchases === 0 ? { probabilityAlive: 1 } : {}) };
    expect(lifecycleStage(input, timing, defaultLifecycleOptions).stage).toBe(stage);
  });

  it("calls every one-time buyer new when nobody has returned yet", () => {
    const nobody = secondPurchaseTiming([{ secondPurchaseAfter: null, T: 30 }]);
    expect(lifecycleStage({ ...base, repeatPurchases: 0, daysSinceFirstPurchase: 999 }, nobody).stage).toBe("new");
  });
});

describe("valueTier", () => {
  it("splits 10% top, 20% high, 30% medium, 40% low", () => {
    const clvs = Array.from({ length: 1000 }, (_, index) => index * 1.5 + 3);
    const thresholds = valueTierThresholds(clvs);
    const counts = { top: 0, high: 0, medium: 0, low: 0 };
    for (const clv of clvs) counts[valueTier(clv, thresholds)]++;
    expect(counts).toEqual({ top: 100, high: 200, medium: 300, low: 400 });
  });

  it("never ranks a higher CLV in a lower tier", () => {
    const order = { low: 0, medium: 1, high: 2, top: 3 };
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1e5, noNaN: true }), { minLength: 1, maxLength: 200 }),
        fc.double({ min: 0, max: 1e5, noNaN: true }),
        fc.double({ min: 0, max: 1e5, noNaN: true }),
        (clvs, left, right) => {
          const thresholds = valueTierThresholds(clvs);
          const [low, high] = left <= right ? [left, right] : [right, left];
          expect(order[valueTier(high, thresholds)]).toBeGreaterThanOrEqual(order[valueTier(low, thresholds)]);
        },
      ),
    );
  });

  it("ranks nobody above low under the floor, nor with a CLV of 0", () => {
    // A base that stopped buying: 95% expected to spend fractions of a cent, 5% still buying.
    const clvs = Array.from({ length: 1000 }, (_, index) => (index < 950 ? index * 1e-6 : 50 + index));
    const plain = valueTierThresholds(clvs);
    expect(plain.medium).toBeLessThan(0.001);
    const floored = valueTierThresholds(clvs, { floor: 4 });
    const counts = { top: 0, high: 0, medium: 0, low: 0 };
    for (const clv of clvs) counts[valueTier(clv, floored)]++;
    // The 50 still buying are the top tenth of the base; nobody else is worth a tier above low.
    expect(counts).toEqual({ top: 50, high: 0, medium: 0, low: 950 });
    // Nobody over the floor: every cut-off is the floor.
    expect(valueTierThresholds([0, 1e-6, 2], { floor: 4 })).toEqual({ top: 4, high: 4, medium: 4 });
    expect(valueTier(0, { top: 0, high: 0, medium: 0 })).toBe("low");
    expect(valueTier(Number.NaN, { top: 0, high: 0, medium: 0 })).toBe("low");
    expect(() => valueTierThresholds([1], { floor: -1 })).toThrow(/floor/);
    // An option given as undefined (a stored model fitted before the floor) is its default.
    expect(valueTierThresholds([1, 2, 3], { floor: undefined })).toEqual(valueTierThresholds([1, 2, 3]));
  });

  it("refuses shares over 100% and an empty population", () => {
    expect(() => valueTierThresholds([1, 2], { topShare: 0.5, highShare: 0.5, mediumShare: 0.1 })).toThrow(
      /valueTierThresholds/,
    );
    expect(() => valueTierThresholds([])).toThrow(/valueTierThresholds/);
  });
});

describe("fadingLineForExpectedF1", () => {
  /** E[F1] (ratio of expectations) of flagging everyone below the line, each stopped with 1 − P(alive). */
  const expectedF1 = (alive: readonly number[], line: number) => {
    const stopped = alive.reduce((sum, p) => sum + 1 - p, 0);
    const flagged = alive.filter((p) => p < line);
    const denominator = flagged.length + stopped;
    // Nobody flagged and nobody likely to have stopped (every P(alive) is 1): nothing to find, F1 0.
    return denominator === 0 ? 0 : (2 * flagged.reduce((sum, p) => sum + 1 - p, 0)) / denominator;
  };

  it("flags exactly the sure losses when the model is sure", () => {
    expect(fadingLineForExpectedF1([0, 0, 1, 1, 1])).toBe(0.5);
  });

  it("is null without repeat buyers and never below the lapsed line", () => {
    expect(fadingLineForExpectedF1([])).toBeNull();
    expect(fadingLineForExpectedF1([0.01, 0.02, 0.2, 0.21])).toBeGreaterThanOrEqual(
      defaultLifecycleOptions.lapsedBelowProbabilityAlive,
    );
  });

  it("maximises the expected F1 over every possible line", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 60 }), (alive) => {
        const line = fadingLineForExpectedF1(alive, 0)!;
        const candidates = [...alive, 1.0000001].map((p) => p + 1e-12);
        const best = Math.max(...candidates.map((candidate) => expectedF1(alive, candidate)));
        expect(expectedF1(alive, line)).toBeCloseTo(best, 12);
      }),
    );
  });

  it("sits where the flagged customer's chance of having stopped is half the F1 reached (Lipton et al. 2014)", () => {
    // 20,000 customers with P(alive) spread evenly: the F1-optimal cut on P(stopped) is F1*/2.
    const alive = Array.from({ length: 20_000 }, (_, i) => (i + 0.5) / 20_000);
    const line = fadingLineForExpectedF1(alive, 0)!;
    expect(1 - line).toBeCloseTo(expectedF1(alive, line) / 2, 3);
  });
});
