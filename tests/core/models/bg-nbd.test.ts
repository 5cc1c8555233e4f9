import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hyp2f1 } from "../../../worker/core/math/hyp2f1.ts";
import {
  type BgNbdParameters,
  bgnbdLogLikelihood,
  expectedPurchasesConditional,
  expectedPurchasesUnconditional,
  fitBgNbd,
  probabilityAlive,
  probabilityOfPurchases,
} from "../../../worker/core/models/bg-nbd.ts";
import { type CustomerSummary, summarizeEvents } from "../../../worker/core/models/summary.ts";
import { cdnowCutoffDay, cdnowPublishedSummary, cdnowSampleEvents } from "./reference-data.ts";

// Fader, Hardie & Lee (2005), CDNOW sample, weeks, 39-week calibration.
const published: BgNbdParameters = { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
const publishedLogLikelihood = -9582.4;

function expectPublishedFit(fit: ReturnType<typeof fitBgNbd>) {
  expect(fit.converged).toBe(true);
  // toBeCloseTo(v, 3) means |difference| < 0.0005: equal to the published three decimals.
  expect(fit.r).toBeCloseTo(published.r, 3);
  expect(fit.alpha).toBeCloseTo(published.alpha, 3);
  expect(fit.a).toBeCloseTo(published.a, 3);
  expect(fit.b).toBeCloseTo(published.b, 3);
  expect(fit.logLikelihood).toBeCloseTo(publishedLogLikelihood, 1);
}

describe("BG/NBD on CDNOW (golden values from the paper)", () => {
  it("fits the published parameters from the published weekly summary", () => {
    expectPublishedFit(fitBgNbd(cdnowPublishedSummary()));
  });

  it("fits the published parameters from the raw event log", () => {
    const summaries = summarizeEvents(cdnowSampleEvents(), { cutoffDay: cdnowCutoffDay, unit: "week" });
    expect(summaries).toHaveLength(2357);
    expectPublishedFit(fitBgNbd(summaries));
  });

  it("reaches the same optimum from a distant start", () => {
    const fit = fitBgNbd(cdnowPublishedSummary(), { start: { r: 5, alpha: 0.5, a: 0.05, b: 20 }, optimizer: {} });
    expectPublishedFit(fit);
  });

  it("gives E[Y(39) | x=2, tx=30.43, T=38.86] = 1.226 and P(X(39)=0) = 0.5737864 at the published parameters", () => {
    expect(expectedPurchasesConditional(published, { x: 2, tx: 30.43, T: 38.86 }, 39)).toBeCloseTo(1.226, 3);
    // Eq. 8 at n = 0 is (α/(α+t))^r (the Beta terms cancel): 0.5737864 is that closed form, computed
    // independently, not a figure from the paper.
    expect(probabilityOfPurchases(published, 39, 0)).toBeCloseTo(0.5737864, 7);
  });
});

describe("BG/NBD numerical safety", () => {
  it("gives P(alive) = 0, not NaN, for a heavy buyer who went quiet, and finite expectations", () => {
    const heavy = { x: 1000, tx: 20, T: 52 };
    expect(probabilityAlive(published, heavy)).toBe(0);
    expect(expectedPurchasesConditional(published, heavy, 52)).toBe(0);
    const heavyStillBuying = { x: 1000, tx: 52, T: 52 };
    const alive = probabilityAlive(published, heavyStillBuying);
    expect(alive).toBeGreaterThan(0.99);
    const expected = expectedPurchasesConditional(published, heavyStillBuying, 52);
    expect(Number.isFinite(expected)).toBe(true);
    // About 1000 purchases in 52 weeks, damped by churn: hundreds, not millions.
    expect(expected).toBeGreaterThan(100);
    expect(expected).toBeLessThan(1000);
    expect(Number.isFinite(bgnbdLogLikelihood(published, [heavy, heavyStillBuying]))).toBe(true);
  });

  it("stays finite for a large a, where (1 − z)^(a−1) underflows while its 2F1 overflows", () => {
    // Dropout alike for everyone (a = b large), a new customer and two years ahead: the Euler-transformed
    // closed form multiplies 0 by ∞ unless taken in logs.
    const alike = { r: 1.8, alpha: 7.8, a: 300, b: 300 };
    const t = 104;
    // The untransformed eq. 9, whose series here neither overflows nor underflows: the reference.
    const z = t / (alike.alpha + t);
    const reference =
      ((alike.a + alike.b - 1) / (alike.a - 1)) *
      (1 - (alike.alpha / (alike.alpha + t)) ** alike.r * hyp2f1(alike.r, alike.b, alike.a + alike.b - 1, z));
    const unconditional = expectedPurchasesUnconditional(alike, t);
    expect(Number.isFinite(unconditional)).toBe(true);
    expect(Math.abs(unconditional - reference) / reference).toBeLessThan(1e-9);
    // A new customer (x = 0, T = 0) conditionally is the same customer as eq. 9's.
    expect(expectedPurchasesConditional(alike, { x: 0, tx: 0, T: 0 }, t)).toBeCloseTo(unconditional, 9);
    for (const a of [270, 1000, 5000])
      expect(Number.isFinite(expectedPurchasesConditional({ ...alike, a, b: a }, { x: 0, tx: 0, T: 0 }, t))).toBe(true);
  });

  it("handles a = 1, where the closed form is 0/0", () => {
    const atOne = { ...published, a: 1 };
    const customer = { x: 3, tx: 20, T: 30 };
    const value = expectedPurchasesConditional(atOne, customer, 26);
    expect(value).toBeCloseTo(expectedPurchasesConditional({ ...published, a: 1.001 }, customer, 26), 2);
    expect(value).toBeCloseTo(expectedPurchasesConditional({ ...published, a: 0.999 }, customer, 26), 2);
  });

  it("refuses impossible summaries", () => {
    expect(() => probabilityAlive(published, { x: 0, tx: 3, T: 10 })).toThrow(/probabilityAlive/);
    expect(() => probabilityAlive(published, { x: 2, tx: 11, T: 10 })).toThrow(/probabilityAlive/);
    expect(() => fitBgNbd([])).toThrow(/fitBgNbd/);
  });
});

const parametersArbitrary = fc.record({
  r: fc.double({ min: 0.05, max: 5, noNaN: true }),
  alpha: fc.double({ min: 0.1, max: 50, noNaN: true }),
  a: fc.double({ min: 0.05, max: 5, noNaN: true }),
  b: fc.double({ min: 0.05, max: 10, noNaN: true }),
});

const customerArbitrary = fc
  .record({
    x: fc.integer({ min: 0, max: 2000 }),
    T: fc.double({ min: 0, max: 200, noNaN: true }),
    share: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ x, T, share }): CustomerSummary => ({ x, tx: x === 0 ? 0 : share * T, T }));

describe("BG/NBD properties", () => {
  it("keeps 0 <= P(alive) <= 1", () => {
    fc.assert(
      fc.property(parametersArbitrary, customerArbitrary, (parameters, customer) => {
        const alive = probabilityAlive(parameters, customer);
        expect(alive).toBeGreaterThanOrEqual(0);
        expect(alive).toBeLessThanOrEqual(1);
      }),
    );
  });

  it("gives P(alive) = 1 to anyone without a repeat purchase", () => {
    fc.assert(
      fc.property(parametersArbitrary, fc.double({ min: 0, max: 500, noNaN: true }), (parameters, T) => {
        expect(probabilityAlive(parameters, { x: 0, tx: 0, T })).toBe(1);
      }),
    );
  });

  it("ranks customers the same by P(alive) and expected purchases whether time is in days or weeks", () => {
    fc.assert(
      fc.property(
        parametersArbitrary,
        fc.array(customerArbitrary, { minLength: 2, maxLength: 12 }),
        fc.double({ min: 1, max: 52, noNaN: true }),
        (weekly, customers, horizonWeeks) => {
          // Days are weeks × 7; the same population in days has alpha × 7 and the same r, a, b.
          const daily = { ...weekly, alpha: weekly.alpha * 7 };
          const inDays = customers.map((c) => ({ x: c.x, tx: c.tx * 7, T: c.T * 7 }));
          const aliveWeeks = customers.map((c) => probabilityAlive(weekly, c));
          const aliveDays = inDays.map((c) => probabilityAlive(daily, c));
          const expectedWeeks = customers.map((c) => expectedPurchasesConditional(weekly, c, horizonWeeks));
          const expectedDays = inDays.map((c) => expectedPurchasesConditional(daily, c, horizonWeeks * 7));
          expect(rankOf(aliveDays)).toEqual(rankOf(aliveWeeks));
          expect(rankOf(expectedDays)).toEqual(rankOf(expectedWeeks));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("P(X(t) = n) sums to 1 and its mean is E[X(t)] computed through 2F1", () => {
    // Horizons up to 4 alpha keep t/(alpha+t) <= 0.8, so the count distribution's tail is short
    // enough to sum directly.
    const moderate = fc.record({
      r: fc.double({ min: 0.1, max: 3, noNaN: true }),
      alpha: fc.double({ min: 1, max: 30, noNaN: true }),
      a: fc.double({ min: 0.2, max: 3, noNaN: true }),
      b: fc.double({ min: 0.5, max: 8, noNaN: true }),
    });
    fc.assert(
      fc.property(moderate, fc.double({ min: 0.01, max: 4, noNaN: true }), (parameters, horizon) => {
        const t = horizon * parameters.alpha;
        let total = 0;
        let mean = 0;
        for (let n = 0; n < 400; n++) {
          const probability = probabilityOfPurchases(parameters, t, n);
          total += probability;
          mean += n * probability;
          if (n > 20 && n * probability < 1e-12) break;
        }
        expect(total).toBeCloseTo(1, 6);
        const expected = expectedPurchasesUnconditional(parameters, t);
        expect(Math.abs(mean - expected)).toBeLessThan(1e-5 * Math.max(1, expected));
      }),
      { numRuns: 40 },
    );
  });

  it("expected purchases grow with the horizon", () => {
    fc.assert(
      fc.property(parametersArbitrary, customerArbitrary, fc.double({ min: 0.1, max: 100, noNaN: true }), (p, c, t) => {
        const shorter = expectedPurchasesConditional(p, c, t);
        expect(shorter).toBeGreaterThanOrEqual(0);
        expect(expectedPurchasesConditional(p, c, t * 2)).toBeGreaterThanOrEqual(shorter * (1 - 1e-12));
      }),
    );
  });
});

describe("BG/NBD fit in days versus weeks on CDNOW", () => {
  it("gives alpha × 7 with the same r, a, b, and the same customer rankings", () => {
    const events = cdnowSampleEvents();
    const weeks = summarizeEvents(events, { cutoffDay: cdnowCutoffDay, unit: "week" });
    const days = summarizeEvents(events, { cutoffDay: cdnowCutoffDay, unit: "day" });
    const weekly = fitBgNbd(weeks);
    const daily = fitBgNbd(days);
    expect(daily.alpha / weekly.alpha).toBeCloseTo(7, 2);
    expect(daily.r).toBeCloseTo(weekly.r, 3);
    expect(daily.a).toBeCloseTo(weekly.a, 3);
    expect(daily.b).toBeCloseTo(weekly.b, 3);
    // Same data, rescaled: the log-likelihood differs only by −Σx·ln 7.
    const repeatPurchases = weeks.reduce((sum, c) => sum + c.x, 0);
    expect(daily.logLikelihood).toBeCloseTo(weekly.logLikelihood - repeatPurchases * Math.log(7), 2);
    const top = (values: number[]) => rankOf(values).slice(0, 200);
    expect(top(days.map((c) => probabilityAlive(daily, c)))).toEqual(
      top(weeks.map((c) => probabilityAlive(weekly, c))),
    );
    expect(top(days.map((c) => expectedPurchasesConditional(daily, c, 39 * 7)))).toEqual(
      top(weeks.map((c) => expectedPurchasesConditional(weekly, c, 39))),
    );
  });
});

/** Indices ordered by value, descending; near-equal values are ordered by index so rounding cannot reorder ties. */
function rankOf(values: number[]): number[] {
  return values
    .map((value, index) => ({ value, index }))
    .sort((left, right) => {
      const gap = right.value - left.value;
      return Math.abs(gap) > 1e-9 * Math.max(1, Math.abs(left.value)) ? gap : left.index - right.index;
    })
    .map((entry) => entry.index);
}

describe("MBG/NBD variant (dropout possible right after the first purchase too)", () => {
  const parameters = { r: 0.6, alpha: 5, a: 0.8, b: 2.5 };
  const modified = { ...parameters, dropoutAtFirstPurchase: true };

  it("writes the likelihood of Batislam, Denizel & Filiztekin (2007) for one-time and repeat buyers", () => {
    const { r, alpha, a, b } = parameters;
    const T = 30;
    // One-time buyer: survived the first flip (b/(a+b)) and bought nothing in T, or dropped at once.
    const oneTime = (b / (a + b)) * (alpha / (alpha + T)) ** r + a / (a + b);
    expect(bgnbdLogLikelihood(modified, [{ x: 0, tx: 0, T }])).toBeCloseTo(Math.log(oneTime), 10);
    // One repeat at tx: Γ(r+1)/Γ(r) α^r = r α^r; survived two flips, or survived one and dropped after the repeat.
    const tx = 12;
    const bothStayed = ((b * (b + 1)) / ((a + b) * (a + b + 1))) * ((r * alpha ** r) / (alpha + T) ** (r + 1));
    const droppedAfter = ((a * b) / ((a + b) * (a + b + 1))) * ((r * alpha ** r) / (alpha + tx) ** (r + 1));
    expect(bgnbdLogLikelihood(modified, [{ x: 1, tx, T }])).toBeCloseTo(Math.log(bothStayed + droppedAfter), 10);
  });

  it("gives one-time buyers P(alive) < 1 and repeat buyers the odds a/(b+x) of having dropped", () => {
    const { r, alpha, a, b } = parameters;
    const oneTime = probabilityAlive(modified, { x: 0, tx: 0, T: 30 });
    expect(oneTime).toBeCloseTo(1 / (1 + (a / b) * ((alpha + 30) / alpha) ** r), 12);
    expect(probabilityAlive(parameters, { x: 0, tx: 0, T: 30 })).toBe(1);
    const repeat = { x: 3, tx: 20, T: 40 };
    const odds = (a / (b + 3)) * ((alpha + 40) / (alpha + 20)) ** (r + 3);
    expect(probabilityAlive(modified, repeat)).toBeCloseTo(1 / (1 + odds), 12);
    expect(probabilityAlive(modified, repeat)).toBeGreaterThan(probabilityAlive(parameters, repeat));
  });

  it("E[X(t)] starts at the rate of those who stayed, b/(a+b) · r/α, and stays below the BG/NBD's", () => {
    const { r, alpha, a, b } = parameters;
    const t = 1e-4;
    expect(expectedPurchasesUnconditional(modified, t) / t).toBeCloseTo(((b / (a + b)) * r) / alpha, 5);
    for (const horizon of [1, 10, 52, 200]) {
      expect(expectedPurchasesUnconditional(modified, horizon)).toBeLessThan(
        expectedPurchasesUnconditional(parameters, horizon),
      );
    }
    expect(() => probabilityOfPurchases(modified, 10, 1)).toThrow(/BG\/NBD only/);
  });

  it("fits by maximum likelihood and marks the fit as the variant", () => {
    const customers = cdnowPublishedSummary();
    const fit = fitBgNbd(customers, { optimizer: {}, dropoutAtFirstPurchase: true });
    expect(fit.converged).toBe(true);
    expect(fit.dropoutAtFirstPurchase).toBe(true);
    expect(fit.logLikelihood).toBeCloseTo(bgnbdLogLikelihood(fit, customers), 8);
    // It is a maximum: nudging any parameter lowers the likelihood.
    for (const key of ["r", "alpha", "a", "b"] as const) {
      for (const factor of [0.98, 1.02]) {
        expect(bgnbdLogLikelihood({ ...fit, [key]: fit[key] * factor }, customers)).toBeLessThan(fit.logLikelihood);
      }
    }
  });
});
