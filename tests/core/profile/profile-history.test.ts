// A customer's P(alive), rhythm and stage at past dates, recomputed from their orders with the current
// models: the chart on the console's customer page (GET /v1/customers/:id/history).
import { describe, expect, it } from "vitest";
import { scoreCustomer } from "../../../worker/core/profile/customer-profile.ts";
import {
  fitPopulationModels,
  type SummaryRow,
  summaryRowFromOrders,
} from "../../../worker/core/profile/population-models.ts";
import {
  type HistoryOrder,
  historyDates,
  profileHistory,
  scoreAt,
  stageThresholds,
} from "../../../worker/core/profile/profile-history.ts";

const day = 86_400_000;
const now = new Date("2026-06-01T12:00:00Z");

function ordersOf(count: number, intervalDays: number, daysSinceLast: number, value = 40): HistoryOrder[] {
  const last = now.getTime() - daysSinceLast * day;
  return Array.from({ length: count }, (_, index) => ({
    placedAt: new Date(last - (count - 1 - index) * intervalDays * day).toISOString(),
    total: value,
    units: 2,
    discountedUnits: index % 3 === 0 ? 1 : 0,
    channel: index % 2 ? "store" : "web",
  }));
}

/** A population with varied rhythms (most still buying, some stopped, some one-time) to fit the models on. */
function population(): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (let c = 0; c < 150; c++) {
    const interval = 7 + ((c * 37) % 60);
    const stopped = c % 3 === 0;
    const orders = c % 5 === 4 ? 1 : 2 + ((c * 7) % 9);
    const sinceLast = stopped ? interval * (3 + (c % 4)) : (((c * 13) % 10) / 10) * interval;
    rows.push(summaryRowFromOrders(`c${c}`, ordersOf(orders, interval, sinceLast, 15 + ((c * 29) % 80))));
  }
  return rows;
}

const models = fitPopulationModels(population(), now);

// Bought every two weeks for a year, then stopped four months ago.
const regularWhoStops = ordersOf(27, 14, 120);
const lastOrderAt = Date.parse(regularWhoStops.at(-1)!.placedAt);

describe("profileHistory", () => {
  const history = profileHistory("regular", regularWhoStops, models, now);

  it("scores every date from the fitted models", () => {
    expect(models.source).toBe("fitted");
    expect(history.skipped).toBe(0);
    expect(history.points.filter((p) => p.kind === "order")).toHaveLength(27);
    expect(history.points.filter((p) => p.kind === "before_order")).toHaveLength(26);
    expect(history.points.filter((p) => p.kind === "week")).toHaveLength(13);
    expect(history.points.at(-1)).toMatchObject({ at: now.toISOString(), kind: "now" });
  });

  it("keeps a regular buyer active while the rhythm holds", () => {
    const { fadingBelowProbabilityAlive } = stageThresholds(models);
    const onRhythm = history.points.filter((p) => p.kind === "order" && Date.parse(p.at) > now.getTime() - 300 * day);
    expect(onRhythm.length).toBeGreaterThan(10);
    for (const point of onRhythm) {
      expect(point.stage, point.at).toBe("active");
      expect(point.probabilityAlive, point.at).toBeGreaterThan(fadingBelowProbabilityAlive);
      expect(point.overdueRatio, point.at).toBeLessThan(0.05);
    }
  });

  it("shows the overdue ratio climbing to about 1 before each return, and back to 0 after", () => {
    const before = history.points.filter((p) => p.kind === "before_order");
    for (const point of before.slice(5)) {
      expect(point.overdueRatio, point.at).toBeGreaterThan(0.8);
      expect(point.overdueRatio, point.at).toBeLessThan(1.2);
    }
  });

  it("lets P(alive) fall, and the overdue ratio climb, once the rhythm is missed", () => {
    const atLastOrder = history.points.find((p) => Date.parse(p.at) === lastOrderAt)!;
    const after = history.points.filter((p) => Date.parse(p.at) > lastOrderAt);
    expect(after.length).toBeGreaterThanOrEqual(14);
    let previous = atLastOrder;
    for (const point of after) {
      expect(point.probabilityAlive, point.at).toBeLessThanOrEqual(previous.probabilityAlive);
      expect(point.overdueRatio, point.at).toBeGreaterThan(previous.overdueRatio);
      previous = point;
    }
    const today = history.points.at(-1)!;
    expect(today.probabilityAlive).toBeLessThan(atLastOrder.probabilityAlive - 0.5);
    expect(["fading", "lapsed"]).toContain(today.stage);
    expect(today.overdueRatio).toBeGreaterThan(4);
    expect(today.daysSinceLast).toBeCloseTo(120, 5);
  });

  it("gives at each date exactly what the single-date score gave with the orders placed by then", () => {
    for (const point of history.points) {
      const at = new Date(point.at);
      const placed = regularWhoStops.filter((order) => Date.parse(order.placedAt) <= at.getTime());
      const outcome = scoreCustomer({
        summary: {
          ...summaryRowFromOrders("regular", placed),
          webOrders: placed.filter((order) => order.channel === "web").length,
          storeOrders: placed.filter((order) => order.channel === "store").length,
          appOrders: 0,
          phoneOrders: 0,
        },
        categories: [],
        models,
        now: at,
      });
      if (!outcome.ok) throw new Error(`not scored at ${point.at}: ${outcome.reason}`);
      const { profile } = outcome;
      expect(point, point.at).toEqual({
        at: point.at,
        kind: point.kind,
        probabilityAlive: profile.probabilityAlive,
        expectedIntervalDays: profile.cadence.expectedIntervalDays,
        daysSinceLast: profile.cadence.daysSinceLast,
        overdueRatio: profile.cadence.overdueRatio,
        stage: profile.lifecycle.stage,
        stageReason: profile.lifecycle.reason,
        valueTier: profile.valueTier,
        clv12: profile.clv12,
      });
      // While they had one order the stage went by the days since it; after, by their rhythm.
      expect(point.stageReason.startsWith("one_time_"), point.at).toBe(placed.length === 1);
    }
  });

  it("dates each stage change to the midnight (UTC) it happened, not to the next date on the chart", () => {
    // Too few dates for weekly points: after the last purchase only monthly ones, a month apart.
    const sparse = profileHistory("regular", regularWhoStops, models, now, { maxPoints: 60 });
    expect(sparse.points.filter((p) => p.kind === "week")).toEqual([]);
    const changes = sparse.points.filter((p) => p.kind === "stage");
    expect(changes.map((p) => p.stage)).toEqual(["fading", "lapsed"]);
    for (const change of changes) {
      const index = sparse.points.indexOf(change);
      const [before, after] = [sparse.points[index - 1]!, sparse.points[index + 1]!];
      expect(before.stage, change.at).not.toBe(change.stage);
      // Active to lapsed between two monthly points passes through fading: a change point each.
      if (after.kind !== "stage") expect(after.stage, change.at).toBe(change.stage);
      expect(Date.parse(change.at)).toBeGreaterThan(lastOrderAt);
      expect(Date.parse(change.at) % day, change.at).toBe(0);
      // A moment earlier the customer was still in the stage before: the change is dated to the day.
      const earlier = scoreAt("regular", regularWhoStops, models, new Date(Date.parse(change.at) - 1));
      expect(earlier?.ok && earlier.profile.lifecycle.stage, change.at).toBe(before.stage);
    }
    // The dense history (weekly points) dates the same changes to the same midnights.
    const dense = history.points.filter((p) => p.kind === "stage");
    expect(dense.map((p) => [p.at, p.stage])).toEqual(changes.map((p) => [p.at, p.stage]));
  });

  it("answers no points for a customer with no order yet", () => {
    expect(profileHistory("nobody", [], models, now)).toEqual({ points: [], skipped: 0 });
  });
});

describe("historyDates", () => {
  it("marks each purchase day just before and just after, weeks into the silence after, months between, and now", () => {
    const orders: HistoryOrder[] = [
      { placedAt: "2026-01-10T09:00:00.000Z", total: 10, channel: "web" },
      { placedAt: "2026-01-10T18:30:00.000Z", total: 5, channel: "store" },
      { placedAt: "2026-03-02T08:00:00.000Z", total: 12, channel: "store" },
    ];
    const dates = historyDates(orders, now);
    expect(dates.map((d) => [d.at.toISOString(), d.kind])).toEqual([
      ["2026-01-10T18:30:00.000Z", "order"],
      ["2026-02-10T09:00:00.000Z", "month"],
      ["2026-03-02T07:59:59.999Z", "before_order"],
      ["2026-03-02T08:00:00.000Z", "order"],
      ...Array.from({ length: 13 }, (_, week) => [
        new Date(Date.parse("2026-03-02T08:00:00.000Z") + (week + 1) * 7 * day).toISOString(),
        "week",
      ]),
      [now.toISOString(), "now"],
    ]);
  });

  it("goes on monthly after thirteen weeks of silence", () => {
    const orders: HistoryOrder[] = [{ placedAt: "2025-06-01T10:00:00.000Z", total: 10, channel: "web" }];
    const kinds = historyDates(orders, now).map((d) => d.kind);
    expect(kinds.filter((kind) => kind === "week")).toHaveLength(13);
    expect(kinds.filter((kind) => kind === "month")).toHaveLength(10);
    expect(kinds[0]).toBe("order");
    expect(kinds.at(-1)).toBe("now");
  });

  it("leaves out orders dated after now", () => {
    const orders: HistoryOrder[] = [
      { placedAt: "2026-05-20T10:00:00.000Z", total: 10, channel: "web" },
      { placedAt: "2026-06-03T10:00:00.000Z", total: 10, channel: "web" },
    ];
    expect(historyDates(orders, now).map((d) => d.kind)).toEqual(["order", "week", "now"]);
  });

  it("stays within the bound for a long, busy history, keeping the first and the last purchase", () => {
    const busy = ordersOf(900, 3, 1);
    const dates = historyDates(busy, now, { maxPoints: 60 });
    expect(dates.length).toBeLessThanOrEqual(61);
    const purchases = dates.filter((d) => d.kind === "order");
    expect(purchases.length).toBe(20);
    expect(dates.filter((d) => d.kind === "before_order").length).toBe(19);
    expect(purchases[0]?.at.toISOString()).toBe(busy[0]?.placedAt);
    expect(purchases.at(-1)?.at.toISOString()).toBe(busy.at(-1)?.placedAt);
    expect(dates.filter((d) => d.kind === "month").length).toBeGreaterThan(10);
    const times = dates.map((d) => d.at.getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(times).size).toBe(times.length);
  });
});
