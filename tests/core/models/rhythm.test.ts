import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bgnbdLogLikelihood, fitBgNbd, logGapSurvival, probabilityAlive } from "../../../worker/core/models/bg-nbd.ts";
import {
  defaultRegularityPrior,
  type RhythmModel,
  regularityOf,
  rhythmOf,
} from "../../../worker/core/models/rhythm.ts";
import { summarizeEvents } from "../../../worker/core/models/summary.ts";
import { cdnowCutoffDay, cdnowSampleEvents } from "./reference-data.ts";

const dayMs = 86_400_000;
const plusDays = (iso: string, days: number) => new Date(Date.parse(iso) + days * dayMs).toISOString();

/** E over λ ~ Gamma(shape, scale) of P(Erlang(k, kλ) gap > u), by quadrature on a fine grid. */
function numericGapSurvival(shape: number, scale: number, k: number, u: number): number {
  const logGammaShape = Math.log(gammaFunction(shape));
  let total = 0;
  const step = 1e-4;
  for (let lambda = step / 2; lambda < (40 / scale) * shape; lambda += step) {
    const density = Math.exp(shape * Math.log(scale) + (shape - 1) * Math.log(lambda) - scale * lambda - logGammaShape);
    let survival = 0;
    let term = Math.exp(-k * lambda * u);
    for (let j = 0; j < k; j++) {
      survival += term;
      term *= (k * lambda * u) / (j + 1);
    }
    total += density * survival * step;
  }
  return total;
}

function gammaFunction(x: number): number {
  // Small integer-ish shapes only in these tests: Γ(x) via the recurrence down to (0, 1] and Euler's limit.
  let value = 1;
  let y = x;
  while (y > 1) value *= --y;
  return value * integralGamma(y);
}

function integralGamma(y: number): number {
  if (y === 1) return 1;
  let total = 0;
  for (let t = 1e-6; t < 60; t += 1e-3) total += t ** (y - 1) * Math.exp(-t) * 1e-3;
  return total;
}

describe("logGapSurvival", () => {
  it.each([
    [1, 3, 2.5, 0.7],
    [3, 4, 6, 1.2],
    [6, 5, 9, 2],
  ])("matches quadrature over the rate for k = %i", (k, shape, scale, u) => {
    expect(Math.exp(logGapSurvival(shape, scale, k, u))).toBeCloseTo(numericGapSurvival(shape, scale, k, u), 3);
  });

  it("is the BG/NBD's ((α+tx)/(α+T))^(r+x) for memoryless gaps", () => {
    expect(logGapSurvival(2.24, 7.5, 1, 3)).toBeCloseTo(2.24 * Math.log(7.5 / 10.5), 12);
  });
});

describe("BG/NBD with regularity", () => {
  const customers = summarizeEvents(cdnowSampleEvents(), { cutoffDay: cdnowCutoffDay, unit: "week" });
  const parameters = { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };

  it("is exactly the paper's model when every customer's regularity is 1", () => {
    const explicit = customers.map((customer) => ({ ...customer, regularity: 1 }));
    expect(bgnbdLogLikelihood(parameters, explicit)).toBe(bgnbdLogLikelihood(parameters, customers));
    const fit = fitBgNbd(explicit);
    expect(fit.converged).toBe(true);
    expect(fit.r).toBeCloseTo(0.2426, 3);
    expect(fit.logLikelihood).toBeCloseTo(-9582.43, 1);
  });

  it("leaves an ordinary fit alone with a bound, and keeps a clockwork base finite", () => {
    const bounded = fitBgNbd(customers, { optimizer: {}, logParameterBound: 6 });
    expect(bounded.r).toBeCloseTo(0.2426, 3);
    const clockwork = Array.from({ length: 200 }, (_, i) => ({ x: 10, tx: 10, T: 10 + (i % 3) * 0.1 }));
    const fit = fitBgNbd(clockwork, { optimizer: {}, logParameterBound: 6 });
    for (const value of [fit.r, fit.alpha, fit.a, fit.b]) expect(Number.isFinite(value)).toBe(true);
    // Kept finite by the wall, not at a maximum: said not to have converged. The ordinary fit has.
    expect([fit.r, fit.alpha, fit.a, fit.b].some((value) => Math.abs(Math.log(value)) > 6)).toBe(true);
    expect(fit.converged).toBe(false);
    expect(bounded.converged).toBe(true);
  });

  it("judges a silence of two intervals more severely for a regular buyer than a memoryless one", () => {
    const customer = { x: 10, tx: 20, T: 24 };
    const memoryless = probabilityAlive(parameters, customer);
    const regular = probabilityAlive(parameters, { ...customer, regularity: 8 });
    expect(regular).toBeLessThan(memoryless);
    // On time, regularity reassures: a regular buyer mid-gap is surely still buying.
    const midGap = { x: 10, tx: 20, T: 21 };
    expect(probabilityAlive(parameters, { ...midGap, regularity: 8 })).toBeGreaterThan(
      probabilityAlive(parameters, midGap),
    );
  });
});

describe("regularityOf", () => {
  const history = (gaps: number[]) => {
    const first = "2025-01-01T00:00:00Z";
    const span = gaps.reduce((sum, gap) => sum + gap, 0);
    return {
      purchaseDays: gaps.length + 1,
      firstPurchaseAt: first,
      lastPurchaseAt: plusDays(first, span),
      gapSquareSum: gaps.reduce((sum, gap) => sum + gap * gap, 0),
    };
  };

  it("reads a long clockwork history as regular and a scattered one as memoryless", () => {
    // 29 degrees of freedom at CV² 0 against the memoryless prior's 8 pseudo-gaps: CV² 8/37, k = 5.
    expect(regularityOf(history(Array(30).fill(14)))).toBe(5);
    // Against a regular population it reaches the cap.
    expect(regularityOf(history(Array(30).fill(14)), { ...defaultRegularityPrior, cv2: 0.1 })).toBe(
      defaultRegularityPrior.max,
    );
    expect(regularityOf(history([1, 40, 3, 60, 2, 25, 90, 5, 1, 30, 70, 2]))).toBe(1);
  });

  it("keeps the population's regularity for short histories", () => {
    const prior = { ...defaultRegularityPrior, cv2: 0.2 };
    expect(regularityOf(history([14]), prior)).toBe(5);
    expect(regularityOf({ ...history([14, 15, 14]), gapSquareSum: undefined }, prior)).toBe(5);
    // Two near-equal gaps move it only a little toward clockwork.
    expect(regularityOf(history([14, 15]), prior)).toBe(6);
  });
});

describe("rhythmOf", () => {
  const model: RhythmModel = {
    parameters: { r: 1.3, alpha: 8, a: 1, b: 10 },
    timeUnitDays: 7,
    regularity: defaultRegularityPrior,
  };
  const now = new Date("2026-06-01T00:00:00Z");

  it("expects the next purchase from today on once overdue, never in the past", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 0, max: 400 }),
        (repeats, gapDays, silence) => {
          const last = new Date(now.getTime() - silence * dayMs).toISOString();
          const first = new Date(Date.parse(last) - repeats * gapDays * dayMs).toISOString();
          const history = {
            purchaseDays: repeats + 1,
            firstPurchaseAt: first,
            lastPurchaseAt: last,
            gapSquareSum: repeats * gapDays ** 2,
          };
          const rhythm = rhythmOf(history, now, model);
          expect(Date.parse(rhythm.nextExpectedAt)).toBeGreaterThanOrEqual(now.getTime());
          expect(rhythm.probabilityAlive).toBeGreaterThanOrEqual(0);
          expect(rhythm.probabilityAlive).toBeLessThanOrEqual(1);
          expect(rhythm.probabilityPurchase).toBeLessThanOrEqual(rhythm.probabilityAlive + 1e-12);
          expect(rhythm.expectedIntervalDays).toBeGreaterThan(0);
        },
      ),
    );
  });

  it("lowers P(alive) and the chance of a purchase as the silence grows", () => {
    const history = (silence: number) => ({
      purchaseDays: 6,
      firstPurchaseAt: new Date(now.getTime() - (silence + 100) * dayMs).toISOString(),
      lastPurchaseAt: new Date(now.getTime() - silence * dayMs).toISOString(),
      gapSquareSum: 5 * 20 * 20,
    });
    const silences = [0, 20, 40, 80, 160];
    const rhythms = silences.map((silence) => rhythmOf(history(silence), now, model));
    for (let i = 1; i < rhythms.length; i++) {
      expect(rhythms[i]!.probabilityAlive).toBeLessThan(rhythms[i - 1]!.probabilityAlive);
      expect(rhythms[i]!.probabilityPurchase).toBeLessThan(rhythms[i - 1]!.probabilityPurchase);
    }
    expect(rhythms[0]!.expectedIntervalDays).toBeGreaterThan(15);
    expect(rhythms[0]!.expectedIntervalDays).toBeLessThan(25);
  });
});
