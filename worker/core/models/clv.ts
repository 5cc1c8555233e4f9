// Customer lifetime value over a finite horizon: expected repeat purchases (BG/NBD, bg-nbd.ts) ×
// expected order value (Gamma-Gamma, gamma-gamma.ts) × margin, discounted month by month, as in
// Fader, Hardie & Lee (2005) "RFM and CLV" but over a horizon in months rather than to infinity.
// Money is in the currency of the order values; the models' time unit is stated in days by the
// options. It does not fit anything and does not count the purchase that made someone a customer.
import { type BgNbdParameters, expectedPurchasesConditional, probabilityAlive } from "./bg-nbd.ts";
import { expectedAverageOrderValue, type GammaGammaParameters, type SpendSummary } from "./gamma-gamma.ts";
import type { CustomerSummary } from "./summary.ts";

export interface ClvOptions {
  horizonMonths: number;
  /** Share of revenue kept as profit; 1 reports revenue-based CLV. */
  margin: number;
  /** Yearly discount rate, converted to a monthly one as (1 + annual)^(1/12) − 1. */
  annualDiscountRate: number;
  /** Overrides annualDiscountRate when given. */
  monthlyDiscountRate?: number;
  /** Length of the models' time unit in days (7 when fitted in weeks). */
  timeUnitDays: number;
}

export const defaultClvOptions: ClvOptions = {
  horizonMonths: 12,
  margin: 1,
  annualDiscountRate: 0.1,
  timeUnitDays: 7,
};

// Average Gregorian month, so twelve months are exactly one year.
const daysPerMonth = 365.25 / 12;

export interface ClvModels {
  bgnbd: BgNbdParameters;
  gammaGamma: GammaGammaParameters;
}

export interface CustomerValue {
  /** Discounted value over the horizon, in currency × margin. */
  clv: number;
  /** Undiscounted expected repeat purchases over the horizon. */
  expectedPurchases: number;
  expectedOrderValue: number;
  probabilityAlive: number;
}

export function monthlyDiscountRateOf(options: ClvOptions): number {
  return options.monthlyDiscountRate ?? (1 + options.annualDiscountRate) ** (1 / 12) - 1;
}

export function customerLifetimeValue(
  models: ClvModels,
  customer: CustomerSummary & SpendSummary,
  options: ClvOptions = defaultClvOptions,
): CustomerValue {
  const { horizonMonths, margin, timeUnitDays } = options;
  if (!(Number.isInteger(horizonMonths) && horizonMonths >= 0 && timeUnitDays > 0)) {
    throw new Error("customerLifetimeValue: horizonMonths must be a whole number >= 0 and timeUnitDays > 0");
  }
  const monthlyRate = monthlyDiscountRateOf(options);
  const expectedOrderValue = expectedAverageOrderValue(models.gammaGamma, customer);
  const alive = probabilityAlive(models.bgnbd, customer);
  const unitsPerMonth = daysPerMonth / timeUnitDays;
  let clv = 0;
  let previous = 0;
  for (let month = 1; month <= horizonMonths; month++) {
    const cumulative = expectedPurchasesConditional(models.bgnbd, customer, month * unitsPerMonth);
    // Purchases expected during this month, valued at its end.
    clv += ((cumulative - previous) * expectedOrderValue * margin) / (1 + monthlyRate) ** month;
    previous = cumulative;
  }
  return { clv, expectedPurchases: previous, expectedOrderValue, probabilityAlive: alive };
}
