// The nightly job's fit (summary rows → fitPopulationModels) on the CDNOW sample: the spend model counts
// purchase days as the frequency model does, so it reproduces the published Gamma-Gamma values.
import { describe, expect, it } from "vitest";
import { secondPurchaseQuantile } from "../../../worker/core/models/lifecycle.ts";
import {
  defaultModelOptions,
  fitPopulationModels,
  type SummaryOrder,
  summaryRowFromOrders,
} from "../../../worker/core/profile/population-models.ts";
import { cdnowCutoffDay, cdnowSampleEvents } from "../models/reference-data.ts";

const dayMs = 86_400_000;

describe("fitPopulationModels on CDNOW (calibration to 1997-09-30)", () => {
  const orders = new Map<string, SummaryOrder[]>();
  for (const event of cdnowSampleEvents()) {
    if (event.day > cdnowCutoffDay) continue;
    const list = orders.get(event.customer) ?? [];
    list.push({ placedAt: new Date(event.day * dayMs).toISOString(), total: event.amount ?? 0 });
    orders.set(event.customer, list);
  }
  const rows = [...orders].map(([customer, list]) => summaryRowFromOrders(customer, list));
  const models = fitPopulationModels(rows, new Date(cdnowCutoffDay * dayMs));

  it("gives the published Gamma-Gamma p 6.25, q 3.74, γ 15.44", () => {
    expect(models.sampleSize).toBe(2357);
    expect(models.gammaGamma.converged).toBe(true);
    expect(models.gammaGamma.p).toBeCloseTo(6.2496, 3);
    expect(models.gammaGamma.q).toBeCloseTo(3.7442, 3);
    expect(models.gammaGamma.gamma).toBeCloseTo(15.4435, 2);
  });

  const bgnbdOnly = fitPopulationModels(rows, new Date(cdnowCutoffDay * dayMs), {
    ...defaultModelOptions,
    dropout: "bg-nbd",
  });

  it("finds CDNOW's buyers memoryless, so the BG/NBD frequency fit stays near the paper's", () => {
    expect(bgnbdOnly.regularity.cv2).toBeGreaterThan(0.9);
    expect(bgnbdOnly.bgnbd.converged).toBe(true);
    expect(bgnbdOnly.bgnbd.dropoutAtFirstPurchase).toBe(false);
    expect(bgnbdOnly.bgnbd.r).toBeCloseTo(0.243, 1);
    expect(bgnbdOnly.bgnbd.alpha).toBeCloseTo(4.414, 0);
  });

  it("keeps the BG/NBD on CDNOW, where the MBG/NBD is likelier only by a near-tie", () => {
    const mbgnbdOnly = fitPopulationModels(rows, new Date(cdnowCutoffDay * dayMs), {
      ...defaultModelOptions,
      dropout: "mbg-nbd",
    });
    expect(mbgnbdOnly.bgnbd.converged).toBe(true);
    expect(mbgnbdOnly.bgnbd.dropoutAtFirstPurchase).toBe(true);
    const gain = mbgnbdOnly.bgnbd.logLikelihood! - bgnbdOnly.bgnbd.logLikelihood!;
    expect(gain).toBeGreaterThan(0);
    expect(gain).toBeLessThan(defaultModelOptions.mbgnbdLogLikelihoodGain);
    expect(models.bgnbd).toEqual(bgnbdOnly.bgnbd);
    // With no evidence threshold at all, the likelier MBG/NBD is kept.
    const anyGain = fitPopulationModels(rows, new Date(cdnowCutoffDay * dayMs), {
      ...defaultModelOptions,
      mbgnbdLogLikelihoodGain: 0,
    });
    expect(anyGain.bgnbd).toEqual(mbgnbdOnly.bgnbd);
    // The fading line is the expected-F1 line of this base, between the lapsed line and 1.
    expect(models.fadingBelowProbabilityAlive).toBeGreaterThan(0.25);
    expect(models.fadingBelowProbabilityAlive).toBeLessThan(1);
  });

  it("times the second purchase from the real second purchase day: median 45 days, p90 205", () => {
    expect(secondPurchaseQuantile(models.secondPurchase, 0.5)).toBe(45);
    expect(secondPurchaseQuantile(models.secondPurchase, 0.9)).toBe(205);
  });
});
