// addOrder folds one order into a customer's totals; whatever it folds must equal the full recompute
// (totalsOfOrders) over the same orders. Amounts are multiples of 1/4, exact in binary floating point,
// so sums compare exactly whatever order they were added in: the test checks the maths, not rounding.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  addOrder,
  addOrders,
  type CustomerTotals,
  type StoredDay,
  storedDaysNeeded,
  type TotalsOrder,
  totalsOfOrders,
} from "../../../worker/core/profile/customer-totals.ts";
import { channels } from "../../../worker/core/vocabulary.ts";

const quarter = (max: number) => fc.integer({ min: 0, max: max * 4 }).map((n) => n / 4);

const lineArbitrary = fc.record({
  categoryId: fc.constantFrom("tea", "cups", "kettles"),
  quantity: fc.integer({ min: 1, max: 4 }),
  unitPrice: quarter(40),
  listPrice: quarter(50),
});

/** Orders over a few weeks, several per day and some at the same instant, some free. */
const ordersArbitrary = fc
  .array(
    fc.record({
      day: fc.integer({ min: 0, max: 20 }),
      minute: fc.constantFrom(0, 30, 600, 1439),
      channel: fc.constantFrom(...channels),
      lines: fc.array(lineArbitrary, { minLength: 1, maxLength: 4 }),
    }),
    { minLength: 1, maxLength: 12 },
  )
  .map((drafts) =>
    drafts.map((draft, index): TotalsOrder => {
      const placedAt = new Date(Date.UTC(2026, 0, 1 + draft.day) + draft.minute * 60_000).toISOString();
      let total = 0;
      let units = 0;
      let discountedUnits = 0;
      for (const line of draft.lines) {
        total += line.quantity * line.unitPrice;
        units += line.quantity;
        if (line.unitPrice < line.listPrice - 0.005) discountedUnits += line.quantity;
      }
      return { id: `o${index}`, placedAt, channel: draft.channel, total, units, discountedUnits, lines: draft.lines };
    }),
  );

const byTime = (orders: readonly TotalsOrder[]) =>
  [...orders].sort((a, b) => (a.placedAt === b.placedAt ? (a.id < b.id ? -1 : 1) : a.placedAt < b.placedAt ? -1 : 1));

/** One order of one unit in one category, paid at list price. */
const anOrderOf = (id: string, placedAt: string, total: number, categoryId = "tea"): TotalsOrder => ({
  id,
  placedAt,
  channel: "store",
  total,
  units: 1,
  discountedUnits: 0,
  lines: [{ categoryId, quantity: 1, unitPrice: total, listPrice: total }],
});

const dayOf = (order: TotalsOrder) => order.placedAt.slice(0, 10);

/** What `stored` orders say about `day`: the reference for the indexed reads of orders.repo.ts loadDays. */
function storedDayOf(stored: readonly TotalsOrder[], day: string): StoredDay {
  const on = stored.filter((order) => dayOf(order) === day);
  const days = [...new Set(stored.map(dayOf))].sort();
  return {
    total: on.length > 0 ? on.reduce((sum, order) => sum + order.total, 0) : null,
    previousDay: days.filter((other) => other < day).at(-1) ?? null,
    nextDay: days.find((other) => other > day) ?? null,
    categories: [...new Set(on.flatMap((order) => order.lines.map((line) => line.categoryId)))],
  };
}

/** Categories in one order, so two totals compare whichever order their categories were first met in. */
const normalised = (totals: CustomerTotals) => ({
  summary: totals.summary,
  categories: [...totals.categories].sort((a, b) => (a.categoryId < b.categoryId ? -1 : 1)),
});

describe("addOrder", () => {
  it("folding the orders one by one in time order equals the recompute", () => {
    fc.assert(
      fc.property(ordersArbitrary, (orders) => {
        let totals: CustomerTotals | null = null;
        const ordered = byTime(orders);
        for (const [index, order] of ordered.entries()) {
          const outcome = addOrder(totals, order);
          // In time order only an order at the very instant of the first one is refused.
          if (outcome.kind === "recompute") expect(outcome.reason).toBe("ties_first_order");
          totals = outcome.kind === "added" ? outcome.totals : totalsOfOrders(ordered.slice(0, index + 1));
        }
        expect(normalised(totals!)).toEqual(normalised(totalsOfOrders(orders)));
      }),
      { numRuns: 300 },
    );
  });

  it("addOrders folds a batch in time order, or answers null when one order cannot be folded", () => {
    fc.assert(
      fc.property(ordersArbitrary, fc.integer({ min: 0, max: 12 }), (orders, split) => {
        const ordered = byTime(orders);
        const stored = ordered.slice(0, Math.min(split, ordered.length - 1));
        const batch = ordered.slice(stored.length);
        const start = stored.length > 0 ? totalsOfOrders(stored) : null;
        const folded = addOrders(start, [...batch].reverse());
        if (folded) expect(normalised(folded)).toEqual(normalised(totalsOfOrders(orders)));
        else expect(batch.some((order) => order.placedAt === ordered[0]!.placedAt && order !== ordered[0])).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("in any arrival order, given its stored day, every order folds to the recompute (but one at the first instant); without it, only one on or after the last day", () => {
    fc.assert(
      fc.property(
        ordersArbitrary.chain((orders) => fc.shuffledSubarray(orders, { minLength: orders.length })),
        (arrival) => {
          let totals: CustomerTotals | null = null;
          for (const [index, order] of arrival.entries()) {
            const stored = arrival.slice(0, index);
            const recomputed = normalised(totalsOfOrders([...stored, order]));
            const alone = addOrder(totals, order);
            if (alone.kind === "added") expect(normalised(alone.totals)).toEqual(recomputed);
            else if (alone.reason === "before_last_day")
              expect(dayOf(order) < totals!.summary.lastOrderAt.slice(0, 10)).toBe(true);
            const outcome = addOrder(totals, order, storedDayOf(stored, dayOf(order)));
            if (outcome.kind === "added") {
              expect(normalised(outcome.totals)).toEqual(recomputed);
              totals = outcome.totals;
            } else {
              expect(outcome.reason).toBe("ties_first_order");
              expect(order.placedAt).toBe(totals!.summary.firstOrderAt);
              totals = totalsOfOrders([...stored, order]);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("addOrders folds any batch on top of any stored orders, given the stored days the batch falls on and only the stored rows of its categories", () => {
    fc.assert(
      fc.property(
        ordersArbitrary.chain((orders) =>
          fc.tuple(fc.shuffledSubarray(orders, { minLength: orders.length }), fc.integer({ min: 1, max: 12 })),
        ),
        ([arrival, split]) => {
          const stored = arrival.slice(0, Math.min(split, arrival.length - 1));
          const batch = arrival.slice(stored.length);
          const start = stored.length > 0 ? totalsOfOrders(stored) : null;
          // What ingestion reads: the stored days before the last purchase day that the batch falls on.
          const days = new Map(storedDaysNeeded(start, batch).map((day) => [day, storedDayOf(stored, day)]));
          const folded = addOrders(start, batch, days);
          // What ingestion reads of the stored categories: the batch's own (orders.repo.ts loadTotals).
          const touched = new Set(batch.flatMap((order) => order.lines.map((line) => line.categoryId)));
          const own = (totals: CustomerTotals) => ({
            summary: totals.summary,
            categories: normalised(totals).categories.filter((category) => touched.has(category.categoryId)),
          });
          const partly = addOrders(start && { ...start, categories: own(start).categories }, batch, days);
          if (folded) {
            expect(normalised(folded)).toEqual(normalised(totalsOfOrders(arrival)));
            expect(own(partly!)).toEqual(own(folded));
          } else {
            // Refused only for an order at the first order's instant (which of them is first goes by id).
            const first = byTime(arrival)[0]!;
            expect(arrival.some((order) => order !== first && order.placedAt === first.placedAt)).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("folds an order into a gap, onto an earlier day and before the first day, given what is stored about its day", () => {
    const stored = [
      anOrderOf("a", "2026-01-01T10:00:00.000Z", 4),
      anOrderOf("b", "2026-01-11T10:00:00.000Z", -4, "cups"),
      anOrderOf("c", "2026-01-21T10:00:00.000Z", 6),
    ];
    const start = totalsOfOrders(stored);
    expect(start.summary).toMatchObject({ purchaseDays: 3, gapSquareSum: 200, positiveDays: 2 });
    const fold = (late: TotalsOrder) => {
      const outcome = addOrder(start, late, storedDayOf(stored, dayOf(late)));
      if (outcome.kind !== "added") throw new Error(`not folded: ${outcome.reason}`);
      return outcome.totals;
    };
    // Into the gap between the 1st and the 11th: 10² becomes 4² + 6².
    expect(fold(anOrderOf("d", "2026-01-05T09:00:00.000Z", 2)).summary).toMatchObject({
      purchaseDays: 4,
      gapSquareSum: 16 + 36 + 100,
      secondPurchaseAt: "2026-01-05",
      positiveDays: 3,
    });
    // Onto the 11th, whose refund it outweighs: the day turns positive; cups was bought that day, tea was not.
    const sameDay = fold(anOrderOf("e", "2026-01-11T18:00:00.000Z", 5));
    expect(sameDay.summary).toMatchObject({
      purchaseDays: 3,
      gapSquareSum: 200,
      positiveDays: 3,
      positiveDaySpend: 11,
    });
    expect(sameDay.categories.find((c) => c.categoryId === "tea")).toMatchObject({ orders: 3, purchaseDays: 3 });
    // Before the first day: a new first order and first day, and the old first day becomes the second.
    expect(fold(anOrderOf("f", "2025-12-29T10:00:00.000Z", 3)).summary).toMatchObject({
      firstOrderAt: "2025-12-29T10:00:00.000Z",
      firstOrderSpend: 3,
      firstDaySpend: 3,
      secondPurchaseAt: "2026-01-01",
      gapSquareSum: 9 + 200,
    });
  });

  it("refuses an order older than the last purchase day and folds a later one on the last day", () => {
    const start = totalsOfOrders([
      anOrderOf("a", "2026-01-01T10:00:00.000Z", 0),
      anOrderOf("b", "2026-01-05T10:00:00.000Z", 0),
    ]);
    expect(addOrder(start, anOrderOf("c", "2026-01-03T10:00:00.000Z", 5))).toEqual({
      kind: "recompute",
      reason: "before_last_day",
    });
    const sameDay = addOrder(start, anOrderOf("d", "2026-01-05T08:00:00.000Z", 5));
    expect(sameDay.kind).toBe("added");
    if (sameDay.kind !== "added") return;
    // The last day was free; with this order it counts as a paid day.
    expect(sameDay.totals.summary).toMatchObject({
      orders: 3,
      purchaseDays: 2,
      positiveDays: 1,
      positiveDaySpend: 5,
      lastDaySpend: 5,
      lastOrderAt: "2026-01-05T10:00:00.000Z",
      gapSquareSum: 16,
    });
    expect(sameDay.totals.categories).toEqual([
      expect.objectContaining({ categoryId: "tea", orders: 3, purchaseDays: 2 }),
    ]);
  });

  it("counts a day whose orders net to nothing (0.1 + 0.2 - 0.3) as no positive day, folded or recomputed", () => {
    const orders = [
      anOrderOf("a", "2026-01-01T10:00:00.000Z", 0.1),
      anOrderOf("b", "2026-01-01T11:00:00.000Z", 0.2),
      anOrderOf("c", "2026-01-01T12:00:00.000Z", -0.3),
    ];
    let folded = totalsOfOrders(orders.slice(0, 1));
    for (const next of orders.slice(1)) {
      const added = addOrder(folded, next);
      if (added.kind !== "added") throw new Error(`not folded: ${added.reason}`);
      folded = added.totals;
    }
    for (const totals of [folded, totalsOfOrders(orders)])
      expect(totals.summary).toMatchObject({ positiveDays: 0, positiveDaySpend: 0, lastDaySpend: 0, firstDaySpend: 0 });
  });
});
