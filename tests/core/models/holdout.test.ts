// Holdout check as in Fader, Hardie & Lee (2005) §4: calibrate on weeks 1–39 of CDNOW, forecast each
// customer's repeat purchases in weeks 40–78, and compare with what they actually bought, in total
// and by number of calibration-period repeat purchases (0, 1, ..., 7+). The table is printed so
// docs/models.md can quote it.
import { describe, expect, it } from "vitest";
import { expectedPurchasesConditional, fitBgNbd } from "../../../worker/core/models/bg-nbd.ts";
import { summarizeEvents } from "../../../worker/core/models/summary.ts";
import { cdnowCutoffDay, cdnowHoldoutEndDay, cdnowSampleEvents } from "./reference-data.ts";

const holdoutWeeks = (cdnowHoldoutEndDay - cdnowCutoffDay) / 7;

describe("BG/NBD holdout forecast on CDNOW (weeks 40–78)", () => {
  const customers = summarizeEvents(cdnowSampleEvents(), {
    cutoffDay: cdnowCutoffDay,
    unit: "week",
    holdoutEndDay: cdnowHoldoutEndDay,
  });
  const fit = fitBgNbd(customers);
  const forecasts = customers.map((customer) => expectedPurchasesConditional(fit, customer, holdoutWeeks));

  it("forecasts the total holdout purchases to within 15% and beats a run-rate forecast per customer", () => {
    expect(holdoutWeeks).toBe(39);
    const actualTotal = customers.reduce((sum, customer) => sum + customer.holdoutPurchases, 0);
    const forecastTotal = forecasts.reduce((sum, value) => sum + value, 0);
    const totalError = (forecastTotal - actualTotal) / actualTotal;
    console.info(
      `CDNOW holdout: actual ${actualTotal}, forecast ${forecastTotal.toFixed(1)}, error ${(100 * totalError).toFixed(1)}%`,
    );
    expect(actualTotal).toBeGreaterThan(0);
    expect(Math.abs(totalError)).toBeLessThan(0.15);

    // Naive baseline: keep buying at the calibration rate x / T forever.
    const runRate = customers.map((customer) => (customer.T > 0 ? (customer.x / customer.T) * holdoutWeeks : 0));
    const meanAbsoluteError = (predictions: number[]) =>
      predictions.reduce((sum, value, index) => sum + Math.abs(value - customers[index]!.holdoutPurchases), 0) /
      customers.length;
    const modelError = meanAbsoluteError(forecasts);
    const runRateError = meanAbsoluteError(runRate);
    console.info(`per-customer MAE: BG/NBD ${modelError.toFixed(3)}, run rate ${runRateError.toFixed(3)}`);
    expect(modelError).toBeLessThan(runRateError);
  });

  it("tracks the actual holdout mean in every calibration-frequency group (0..7+)", () => {
    const groups = Array.from({ length: 8 }, () => ({ customers: 0, actual: 0, forecast: 0 }));
    customers.forEach((customer, index) => {
      const group = groups[Math.min(customer.x, 7)]!;
      group.customers++;
      group.actual += customer.holdoutPurchases;
      group.forecast += forecasts[index]!;
    });
    const rows = groups.map((group, x) => ({
      x: x === 7 ? "7+" : String(x),
      customers: group.customers,
      actual: group.actual / group.customers,
      forecast: group.forecast / group.customers,
    }));
    console.info(
      ["x | customers | actual mean | forecast mean | error", "--|---|---|---|---"]
        .concat(
          rows.map(
            (row) =>
              `${row.x} | ${row.customers} | ${row.actual.toFixed(3)} | ${row.forecast.toFixed(3)} | ${(row.forecast - row.actual).toFixed(3)}`,
          ),
        )
        .join("\n"),
    );
    for (const row of rows) {
      expect(row.customers).toBeGreaterThan(0);
      // Within 0.4 purchases per customer over 39 weeks, and ordered like the actuals at the ends.
      expect(Math.abs(row.forecast - row.actual)).toBeLessThan(0.4);
    }
    expect(rows[7]!.forecast).toBeGreaterThan(rows[1]!.forecast);
    expect(rows[1]!.forecast).toBeGreaterThan(rows[0]!.forecast);
  });
});
