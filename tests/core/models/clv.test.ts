import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { expectedPurchasesConditional } from "../../../worker/core/models/bg-nbd.ts";
import { customerLifetimeValue, defaultClvOptions, monthlyDiscountRateOf } from "../../../worker/core/models/clv.ts";
import { expectedAverageOrderValue } from "../../../worker/core/models/gamma-gamma.ts";

// Published CDNOW parameters (weeks, dollars).
const models = {
  bgnbd: { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 },
  gammaGamma: { p: 6.25, q: 3.74, gamma: 15.44 },
};
const customer = { x: 2, tx: 30.43, T: 38.86, count: 2, meanValue: 22.35 };

describe("customerLifetimeValue", () => {
  it("without discounting is expected purchases × expected order value × margin over the horizon", () => {
    const options = { ...defaultClvOptions, horizonMonths: 12, margin: 0.3, annualDiscountRate: 0 };
    const value = customerLifetimeValue(models, customer, options);
    // Twelve average months are 365.25 days: 52.18 weeks.
    const purchases = expectedPurchasesConditional(models.bgnbd, customer, 365.25 / 7);
    const orderValue = expectedAverageOrderValue(models.gammaGamma, customer);
    expect(value.expectedPurchases).toBeCloseTo(purchases, 10);
    expect(value.clv).toBeCloseTo(purchases * orderValue * 0.3, 8);
  });

  it("discounts: a higher rate lowers CLV, a longer horizon raises it, margin scales it", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.integer({ min: 1, max: 36 }),
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        (rate, horizonMonths, margin) => {
          const base = { ...defaultClvOptions, annualDiscountRate: rate, horizonMonths, margin };
          const value = customerLifetimeValue(models, customer, base).clv;
          expect(customerLifetimeValue(models, customer, { ...base, annualDiscountRate: rate + 0.1 }).clv).toBeLessThan(
            value,
          );
          expect(
            customerLifetimeValue(models, customer, { ...base, horizonMonths: horizonMonths + 1 }).clv,
          ).toBeGreaterThan(value);
          expect(customerLifetimeValue(models, customer, { ...base, margin: margin * 2 }).clv).toBeCloseTo(
            value * 2,
            8,
          );
        },
      ),
      { numRuns: 30 },
    );
  });

  it("gives the same value whether the models were fitted in weeks or days", () => {
    const weekly = customerLifetimeValue(models, customer, { ...defaultClvOptions, timeUnitDays: 7 });
    const daily = customerLifetimeValue(
      { ...models, bgnbd: { ...models.bgnbd, alpha: models.bgnbd.alpha * 7 } },
      { ...customer, tx: customer.tx * 7, T: customer.T * 7 },
      { ...defaultClvOptions, timeUnitDays: 1 },
    );
    expect(daily.clv).toBeCloseTo(weekly.clv, 8);
  });

  it("is zero over a zero horizon and for a customer the model says has left", () => {
    expect(customerLifetimeValue(models, customer, { ...defaultClvOptions, horizonMonths: 0 }).clv).toBe(0);
    const gone = { x: 500, tx: 1, T: 38, count: 500, meanValue: 20 };
    expect(customerLifetimeValue(models, gone).clv).toBe(0);
  });

  it("converts an annual rate to the equivalent monthly one unless a monthly rate is given", () => {
    expect((1 + monthlyDiscountRateOf({ ...defaultClvOptions, annualDiscountRate: 0.1 })) ** 12).toBeCloseTo(1.1, 12);
    expect(monthlyDiscountRateOf({ ...defaultClvOptions, monthlyDiscountRate: 0.01 })).toBe(0.01);
    expect(() => customerLifetimeValue(models, customer, { ...defaultClvOptions, horizonMonths: 1.5 })).toThrow(
      /customerLifetimeValue/,
    );
  });
});
