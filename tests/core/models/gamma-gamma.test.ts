import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  expectedAverageOrderValue,
  fitGammaGamma,
  gammaGammaLogLikelihood,
} from "../../../worker/core/models/gamma-gamma.ts";
import { summarizeEvents } from "../../../worker/core/models/summary.ts";
import { cdnowCutoffDay, cdnowPublishedSummary, cdnowSampleEvents } from "./reference-data.ts";

// Fader, Hardie & Lee (2005) "RFM and CLV", CDNOW sample, repeat purchases in the 39-week calibration.
const published = { p: 6.25, q: 3.74, gamma: 15.44 };

describe("Gamma-Gamma on CDNOW (golden values from the paper)", () => {
  it("fits p = 6.25, q = 3.74, γ = 15.44 from the published summary", () => {
    const fit = fitGammaGamma(cdnowPublishedSummary().map((row) => ({ count: row.x, meanValue: row.zbar })));
    expect(fit.converged).toBe(true);
    expect(fit.customers).toBe(946);
    expect(fit.p).toBeCloseTo(published.p, 2);
    expect(fit.q).toBeCloseTo(published.q, 2);
    // The paper prints 15.44; the summary's cents rounding leaves the optimum at 15.447.
    expect(Math.abs(fit.gamma - published.gamma)).toBeLessThan(0.01);
  });

  it("fits the same from the raw event log, zero-value repeat days left out", () => {
    const summaries = summarizeEvents(cdnowSampleEvents(), { cutoffDay: cdnowCutoffDay, unit: "week" });
    const fit = fitGammaGamma(summaries.map((s) => ({ count: s.monetaryCount, meanValue: s.monetaryMean })));
    expect(fit.p).toBeCloseTo(published.p, 2);
    expect(fit.q).toBeCloseTo(published.q, 2);
    expect(Math.abs(fit.gamma - published.gamma)).toBeLessThan(0.01);
  });

  it("is a likelihood maximum: every coordinate nudge lowers the log-likelihood", () => {
    const sample = cdnowPublishedSummary().map((row) => ({ count: row.x, meanValue: row.zbar }));
    const fit = fitGammaGamma(sample);
    const best = gammaGammaLogLikelihood(fit, sample);
    for (const key of ["p", "q", "gamma"] as const) {
      for (const factor of [0.99, 1.01]) {
        expect(gammaGammaLogLikelihood({ ...fit, [key]: fit[key] * factor }, sample)).toBeLessThan(best);
      }
    }
  });
});

describe("expected average order value", () => {
  it("lies between the population mean and the customer's own mean, moving toward their own with more orders", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 20, noNaN: true }),
        fc.double({ min: 1.1, max: 20, noNaN: true }),
        fc.double({ min: 0.5, max: 100, noNaN: true }),
        fc.double({ min: 0.5, max: 500, noNaN: true }),
        fc.integer({ min: 1, max: 50 }),
        (p, q, gamma, meanValue, count) => {
          const parameters = { p, q, gamma };
          const population = (p * gamma) / (q - 1);
          const value = expectedAverageOrderValue(parameters, { count, meanValue });
          const slack = 1e-9 * Math.max(population, meanValue);
          expect(value).toBeGreaterThanOrEqual(Math.min(population, meanValue) - slack);
          expect(value).toBeLessThanOrEqual(Math.max(population, meanValue) + slack);
          const more = expectedAverageOrderValue(parameters, { count: count + 10, meanValue });
          expect(Math.abs(more - meanValue)).toBeLessThanOrEqual(Math.abs(value - meanValue) + slack);
        },
      ),
    );
  });

  it("gives the population mean without usable repeat spend, and refuses q <= 1", () => {
    expect(expectedAverageOrderValue(published, { count: 0, meanValue: 0 })).toBeCloseTo(
      (published.p * published.gamma) / (published.q - 1),
      10,
    );
    expect(expectedAverageOrderValue(published, { count: 3, meanValue: -5 })).toBeCloseTo(
      (published.p * published.gamma) / (published.q - 1),
      10,
    );
    expect(() => expectedAverageOrderValue({ ...published, q: 0.9 }, { count: 1, meanValue: 10 })).toThrow(
      /expectedAverageOrderValue/,
    );
    expect(() => fitGammaGamma([{ count: 0, meanValue: 0 }])).toThrow(/fitGammaGamma/);
  });
});
