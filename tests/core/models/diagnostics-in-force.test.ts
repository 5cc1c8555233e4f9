// The diagnostics check the model in force: on a base where the nightly fit keeps the MBG/NBD, they
// name that model and fit it on the calibration period exactly as the nightly fit would fit those
// purchases (same variant, each customer's regularity, same options), not a plain BG/NBD.
import { describe, expect, it } from "vitest";
import { simulateScenario } from "../../../cli/evaluate/fading.ts";
import { fitBgNbd } from "../../../worker/core/models/bg-nbd.ts";
import { diagnosticsOptionsFor, modelDiagnostics } from "../../../worker/core/models/diagnostics.ts";
import { parseDay, summarizeEvents } from "../../../worker/core/models/summary.ts";
import {
  defaultModelOptions,
  fitPopulationModels,
  summaryRowFromOrders,
} from "../../../worker/core/profile/population-models.ts";

const dayMs = 86_400_000;

describe("modelDiagnostics checks the model in force", () => {
  // Customers who may also leave right after their first purchase, with Erlang gaps k = 1…4.
  const base = simulateScenario("young", { seed: 5, customersPerScenario: 2000 });
  const rows = base.customers.map((customer) => summaryRowFromOrders(customer.customerId, customer.orders));
  const inForce = fitPopulationModels(rows, base.now);
  const events = base.customers.flatMap((customer) =>
    customer.orders.map((order) => ({ customer: customer.customerId, day: parseDay(order.placedAt)! })),
  );
  const asOfDay = Math.floor(base.now.getTime() / dayMs);
  const outcome = modelDiagnostics(events, asOfDay, diagnosticsOptionsFor(inForce.bgnbd));
  if (!outcome.ok) throw new Error(`no diagnostics: ${outcome.reason}`);
  const { diagnostics } = outcome;

  it("names the MBG/NBD with regularity when the nightly fit keeps it", () => {
    expect(inForce.bgnbd.dropoutAtFirstPurchase).toBe(true);
    expect(diagnostics.model).toBe("mbgnbd");
    expect(diagnostics.regularity).toBe(true);
  });

  it("fits the calibration period as the nightly fit fits the same purchases", () => {
    const cutoffDay = parseDay(diagnostics.calibration.to)!;
    const calibrationRows = base.customers.flatMap((customer) => {
      const orders = customer.orders.filter((order) => parseDay(order.placedAt)! <= cutoffDay);
      return orders.length > 0 ? [summaryRowFromOrders(customer.customerId, orders)] : [];
    });
    expect(calibrationRows).toHaveLength(diagnostics.customers);
    const nightly = fitPopulationModels(calibrationRows, new Date(cutoffDay * dayMs), {
      ...defaultModelOptions,
      dropout: "mbg-nbd",
    });
    expect(nightly.bgnbd.dropoutAtFirstPurchase).toBe(true);
    const { r, alpha, a, b, logLikelihood, converged } = nightly.bgnbd;
    expect(diagnostics.fit).toEqual({
      r,
      alpha,
      a,
      b,
      logLikelihood: Math.round(logLikelihood! * 1000) / 1000,
      converged,
    });
    // Not the plain BG/NBD of the calibration summaries (no variant, no regularity) the check once refitted.
    const plain = fitBgNbd(summarizeEvents(events, { cutoffDay, unit: "week" }), {
      optimizer: {},
      logParameterBound: 6,
    });
    console.info(
      `young world: ${diagnostics.model} a ${diagnostics.fit.a.toFixed(3)}, b ${diagnostics.fit.b.toFixed(2)}; plain BG/NBD a ${plain.a.toFixed(4)}, b ${plain.b.toFixed(3)}`,
    );
    expect(Math.abs(diagnostics.fit.a - plain.a)).toBeGreaterThan(0.01);
  });
});
