// The diagnostics on CDNOW with the paper's split (calibrate on weeks 1–39, hold out weeks 40–78):
// the tracking plot and the conditional expectations by frequency, checked against the actual
// purchases and against each other.
import { describe, expect, it } from "vitest";
import { defaultDiagnosticsOptions, modelDiagnostics } from "../../../worker/core/models/diagnostics.ts";
import { parseDay } from "../../../worker/core/models/summary.ts";
import { cdnowHoldoutEndDay, cdnowSampleEvents } from "./reference-data.ts";

const paperSplit = { ...defaultDiagnosticsOptions, maxHoldoutDays: 273, holdoutShareOfHistory: 0.5 };

describe("modelDiagnostics on CDNOW", () => {
  const events = cdnowSampleEvents();
  const outcome = modelDiagnostics(events, cdnowHoldoutEndDay, paperSplit);
  if (!outcome.ok) throw new Error(`no diagnostics: ${outcome.reason}`);
  const { diagnostics } = outcome;

  it("splits as the paper does: 39 + 39 weeks, the 2,357-customer cohort", () => {
    // The nightly fit's choice on these purchases: the BG/NBD (the MBG/NBD is likelier by a near-tie only).
    expect(diagnostics).toMatchObject({ model: "bgnbd", regularity: true });
    expect(diagnostics.calibration).toEqual({ from: "1997-01-01", to: "1997-09-30", firstPurchase: "1997-01-01" });
    expect(diagnostics.holdout).toEqual({ from: "1997-10-01", to: "1998-06-30" });
    expect(diagnostics.customers).toBe(2357);
    expect(diagnostics.tracking).toHaveLength(78);
    expect(diagnostics.tracking.filter((period) => period.phase === "holdout")).toHaveLength(39);
    // Near the paper's calibration fit (FHL 2005 table 1): r 0.243, α 4.414, a 0.793, b 2.426.
    expect(diagnostics.fit.r).toBeCloseTo(0.243, 2);
    expect(diagnostics.fit.alpha).toBeCloseTo(4.414, 1);
  });

  it("sums consistently: periods add up to the totals, groups to the holdout purchases", () => {
    const sum = (phase: string, pick: (p: (typeof diagnostics.tracking)[number]) => number) =>
      diagnostics.tracking.filter((p) => p.phase === phase).reduce((total, p) => total + pick(p), 0);
    expect(sum("calibration", (p) => p.actual)).toBe(diagnostics.totals.calibration.actual);
    expect(sum("holdout", (p) => p.actual)).toBe(diagnostics.totals.holdout.actual);
    expect(sum("holdout", (p) => p.expected)).toBeCloseTo(diagnostics.totals.holdout.expected, 1);
    const last = diagnostics.tracking.at(-1)!;
    expect(last.cumulativeActual).toBe(diagnostics.totals.calibration.actual + diagnostics.totals.holdout.actual);
    expect(diagnostics.byFrequency.map((g) => g.purchases)).toEqual(["0", "1", "2", "3", "4", "5", "6", "7+"]);
    expect(diagnostics.byFrequency.reduce((total, g) => total + g.customers, 0)).toBe(2357);
    const groupActual = diagnostics.byFrequency.reduce((total, g) => total + g.actualMean * g.customers, 0);
    expect(groupActual).toBeCloseTo(diagnostics.totals.holdout.actual, 0);
  });

  it("tracks the actual purchases: cumulative within 5% at week 78, holdout within 15%", () => {
    const last = diagnostics.tracking.at(-1)!;
    console.info(
      `CDNOW diagnostics (${diagnostics.model}, regularity ${diagnostics.regularity}): fit r ${diagnostics.fit.r.toFixed(4)}, α ${diagnostics.fit.alpha.toFixed(3)}, a ${diagnostics.fit.a.toFixed(3)}, b ${diagnostics.fit.b.toFixed(3)}, LL ${diagnostics.fit.logLikelihood}; tracking: cumulative actual ${last.cumulativeActual}, expected ${last.cumulativeExpected}; holdout actual ${diagnostics.totals.holdout.actual}, expected ${diagnostics.totals.holdout.expected}, conditional ${diagnostics.totals.holdout.conditionalExpected}`,
    );
    expect(Math.abs(last.cumulativeExpected / last.cumulativeActual - 1)).toBeLessThan(0.05);
    const { actual, conditionalExpected } = diagnostics.totals.holdout;
    expect(Math.abs(conditionalExpected / actual - 1)).toBeLessThan(0.15);
    // The model in force (each customer's regularity) under-forecasts the 6-purchase group by 0.41,
    // the plain BG/NBD of holdout.test.ts by 0.36.
    for (const group of diagnostics.byFrequency)
      expect(Math.abs(group.expectedMean - group.actualMean)).toBeLessThan(0.45);
    expect(diagnostics.byFrequency[7]!.expectedMean).toBeGreaterThan(diagnostics.byFrequency[1]!.expectedMean);
  });

  it("names the first purchase the fit saw when the history is older than the weeks it plots", () => {
    const later = modelDiagnostics(events, cdnowHoldoutEndDay + 1200);
    if (!later.ok) throw new Error(`no diagnostics: ${later.reason}`);
    const { calibration, tracking } = later.diagnostics;
    expect(calibration.firstPurchase).toBe("1997-01-01");
    expect(calibration.from).toBe(tracking[0]!.from);
    expect(Date.parse(calibration.from) - Date.parse(calibration.firstPurchase ?? "")).toBeGreaterThan(
      365 * 86_400_000,
    );
    expect(later.diagnostics.customers).toBe(2357);
  });

  it("declines histories too short or too small to split", () => {
    const day = parseDay("2026-01-10")!;
    expect(modelDiagnostics([{ customer: "a", day }], day)).toEqual({ ok: false, reason: "not_enough_history" });
    const few = [0, 30, 60].flatMap((offset) => [{ customer: "a", day: day - offset }]);
    expect(modelDiagnostics(few, day)).toEqual({ ok: false, reason: "not_enough_customers" });
  });
});
