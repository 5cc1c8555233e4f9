import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cadenceOf, daysBetween, defaultCadenceOptions } from "../../../worker/core/models/cadence.ts";

const dayMs = 86_400_000;
const at = (iso: string) => new Date(iso);
const plusDays = (iso: string, days: number) => new Date(Date.parse(iso) + days * dayMs).toISOString();

describe("cadenceOf", () => {
  const options = { priorIntervalDays: 45, priorWeight: 2 };

  it("shrinks a short history toward the prior and trusts a long one", () => {
    // Two orders ten days apart: one interval of 10 against two pseudo-intervals of 45.
    const short = cadenceOf(
      { purchaseDays: 2, firstPurchaseAt: "2024-01-01", lastPurchaseAt: "2024-01-11" },
      at("2024-01-12"),
      options,
    );
    expect(short.expectedIntervalDays).toBeCloseTo((10 + 2 * 45) / 3, 10);
    // Twenty-one orders ten days apart: 200 days over 20 intervals, plus the prior's 90 over 2.
    const long = cadenceOf(
      { purchaseDays: 21, firstPurchaseAt: "2024-01-01", lastPurchaseAt: plusDays("2024-01-01", 200) },
      at("2024-07-20"),
      options,
    );
    expect(long.expectedIntervalDays).toBeCloseTo((200 + 90) / 22, 10);
    expect(Math.abs(long.expectedIntervalDays - 10)).toBeLessThan(Math.abs(short.expectedIntervalDays - 10));
  });

  it("gives a one-time buyer the prior interval, even with no prior weight", () => {
    const oneTime = { purchaseDays: 1, firstPurchaseAt: "2024-01-01", lastPurchaseAt: "2024-01-01" };
    expect(cadenceOf(oneTime, at("2024-02-01"), options).expectedIntervalDays).toBe(45);
    const unweighted = cadenceOf(oneTime, at("2024-02-01"), { ...options, priorWeight: 0 });
    expect(unweighted.expectedIntervalDays).toBe(45);
    expect(Number.isFinite(unweighted.overdueRatio)).toBe(true);
  });

  it.each([
    [10, 10 / 30],
    [30, 1],
    [60, 2],
  ])("is %i days since the last order → overdue ratio %d", (daysSince, ratio) => {
    // 31 orders every 30 days with the prior also at 30 days: interval 30.
    const history = { purchaseDays: 31, firstPurchaseAt: "2020-01-01", lastPurchaseAt: plusDays("2020-01-01", 900) };
    const cadence = cadenceOf(history, new Date(Date.parse(history.lastPurchaseAt) + daysSince * dayMs), {
      priorIntervalDays: 30,
      priorWeight: 2,
    });
    expect(cadence.expectedIntervalDays).toBeCloseTo(30, 10);
    expect(cadence.daysSinceLast).toBeCloseTo(daysSince, 10);
    expect(cadence.overdueRatio).toBeCloseTo(ratio, 10);
  });

  it("expects the next order one interval after the last while not yet due", () => {
    const history = { purchaseDays: 5, firstPurchaseAt: "2024-01-01", lastPurchaseAt: "2024-03-01" };
    const cadence = cadenceOf(history, at("2024-03-05"), options);
    expect(Date.parse(cadence.nextExpectedAt)).toBeCloseTo(
      Date.parse("2024-03-01") + cadence.expectedIntervalDays * dayMs,
      -1,
    );
  });

  it("never puts the next expected date in the past, and moves it with today once overdue", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 1, max: 100 }),
        (purchaseDays, spanDays, daysSince, laterBy) => {
          const first = "2020-01-01T00:00:00.000Z";
          const last = plusDays(first, purchaseDays === 1 ? 0 : spanDays);
          const history = { purchaseDays, firstPurchaseAt: first, lastPurchaseAt: last };
          const now = new Date(Date.parse(last) + daysSince * dayMs);
          const cadence = cadenceOf(history, now, defaultCadenceOptions);
          expect(Date.parse(cadence.nextExpectedAt)).toBeGreaterThanOrEqual(now.getTime());
          if (cadence.overdueRatio > 1) {
            const later = cadenceOf(history, new Date(now.getTime() + laterBy * dayMs), defaultCadenceOptions);
            expect(Date.parse(later.nextExpectedAt) - Date.parse(cadence.nextExpectedAt)).toBeCloseTo(
              laterBy * dayMs,
              -1,
            );
          }
        },
      ),
    );
  });

  it("refuses nonsensical options and dates", () => {
    const history = { purchaseDays: 2, firstPurchaseAt: "2024-01-01", lastPurchaseAt: "2024-01-11" };
    expect(() => cadenceOf(history, at("2024-02-01"), { priorIntervalDays: 0, priorWeight: 2 })).toThrow(/cadenceOf/);
    expect(() => cadenceOf({ ...history, lastPurchaseAt: "soon" }, at("2024-02-01"))).toThrow(/cadenceOf/);
    expect(daysBetween("2024-01-01", at("2024-01-31"))).toBe(30);
  });
});
