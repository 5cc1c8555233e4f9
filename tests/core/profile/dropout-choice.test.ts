// The nightly fit keeps the likelier dropout story: on a base simulated from the exact BG/NBD it keeps the
// BG/NBD, on one where customers also leave right after their first purchase it keeps the MBG/NBD; and the
// fading line it derives sits between the lapsed line and 1.
import { describe, expect, it } from "vitest";
import { simulateScenario } from "../../../cli/evaluate/fading.ts";
import {
  defaultModelOptions,
  fitPopulationModels,
  summaryRowFromOrders,
} from "../../../worker/core/profile/population-models.ts";

const options = { seed: 5, customersPerScenario: 2000 };

function fitBoth(scenario: "bgnbd" | "young") {
  const base = simulateScenario(scenario, options);
  const rows = base.customers.map((customer) => summaryRowFromOrders(customer.customerId, customer.orders));
  const fitWith = (dropout: "likelier" | "bg-nbd" | "mbg-nbd") =>
    fitPopulationModels(rows, base.now, { ...defaultModelOptions, dropout });
  return { likelier: fitWith("likelier"), bgnbd: fitWith("bg-nbd"), mbgnbd: fitWith("mbg-nbd") };
}

describe("dropout story chosen by likelihood", () => {
  it.each([
    { scenario: "bgnbd", expected: false },
    { scenario: "young", expected: true },
  ] as const)("$scenario world: dropout at first purchase = $expected", ({ scenario, expected }) => {
    const { likelier, bgnbd, mbgnbd } = fitBoth(scenario);
    expect(bgnbd.bgnbd.dropoutAtFirstPurchase).toBe(false);
    expect(mbgnbd.bgnbd.dropoutAtFirstPurchase).toBe(true);
    const truer = expected ? mbgnbd : bgnbd;
    const other = expected ? bgnbd : mbgnbd;
    expect(truer.bgnbd.logLikelihood!).toBeGreaterThan(other.bgnbd.logLikelihood!);
    expect(likelier.bgnbd).toEqual(truer.bgnbd);
    expect(likelier.fadingBelowProbabilityAlive).toBeGreaterThan(0.25);
    expect(likelier.fadingBelowProbabilityAlive).toBeLessThan(1);
  });
});
