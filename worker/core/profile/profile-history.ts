// One customer's P(alive), rhythm, stage and CLV as the product would have given them at past dates,
// recomputed from the order history (not from stored snapshots): at each date only the orders placed
// by then count, summarised as ingestion summarises them (summaryRowFromOrders) and scored by the
// very function the nightly job and GET /v1/customers/:id use (scoreCustomer), with the current
// models. The dates are each purchase day (just before and just after), weekly points into the
// silence after the last purchase, monthly points between, and now, bounded in number. Pure.
import { defaultLifecycleOptions, type Lifecycle, type ValueTier } from "../models/lifecycle.ts";
import type { Channel } from "../vocabulary.ts";
import { type ProfileSummary, type ScoreOutcome, scoreCustomer } from "./customer-profile.ts";
import type { PopulationModels, SummaryOrder } from "./population-models.ts";
import { summaryRowFromOrders } from "./population-models.ts";

export interface HistoryOrder extends SummaryOrder {
  channel: Channel;
}

/**
 * Why a date is on the chart: just before a purchase day's first order, just after its last, a week
 * into the silence after the last purchase, a month between, now, or the midnight (UTC) the stage changed
 * between two of those with no order in between (`stage`, found by bisection: stageChangesBetween).
 */
export const historyPointKinds = ["before_order", "order", "week", "month", "now", "stage"] as const;
export type HistoryPointKind = (typeof historyPointKinds)[number];

export interface HistoryDate {
  at: Date;
  kind: HistoryPointKind;
}

export interface HistoryPoint {
  at: string;
  kind: HistoryPointKind;
  probabilityAlive: number;
  expectedIntervalDays: number;
  daysSinceLast: number;
  overdueRatio: number;
  stage: Lifecycle["stage"];
  /** Why: a one-time buyer's (`one_time_…`) goes by the days since their one order, not P(alive). */
  stageReason: Lifecycle["reason"];
  valueTier: ValueTier;
  clv12: number;
}

export interface HistoryOptions {
  /** At most this many dates besides now (see historyDates). */
  maxPoints: number;
}

export const defaultHistoryOptions: HistoryOptions = { maxPoints: 120 };

const dayMs = 86_400_000;

/**
 * The summary a customer had at `at`: their orders placed at or before it, with the channel counts
 * the profile reads. Null before their first order.
 */
export function summaryAt(customerId: string, orders: readonly HistoryOrder[], at: Date): ProfileSummary | null {
  const until = at.getTime();
  const placed = orders.filter((order) => Date.parse(order.placedAt) <= until);
  if (placed.length === 0) return null;
  const count = (channel: Channel) => placed.filter((order) => order.channel === channel).length;
  return {
    ...summaryRowFromOrders(customerId, placed),
    webOrders: count("web"),
    storeOrders: count("store"),
    appOrders: count("app"),
    phoneOrders: count("phone"),
  };
}

/** The single-date score: what scoreCustomer gave for this customer at `at`, from the orders placed by then. */
export function scoreAt(
  customerId: string,
  orders: readonly HistoryOrder[],
  models: PopulationModels,
  at: Date,
): ScoreOutcome | null {
  const summary = summaryAt(customerId, orders, at);
  // Only the whole-customer figures are charted, so the per-category part of the profile is left out.
  return summary ? scoreCustomer({ summary, categories: [], models, now: at }) : null;
}

/** `count` indices spread evenly over 0..length-1, the first and last always among them. */
function spread(length: number, count: number): number[] {
  if (length <= count) return Array.from({ length }, (_, index) => index);
  if (count <= 1) return [length - 1];
  return [...new Set(Array.from({ length: count }, (_, i) => Math.round((i * (length - 1)) / (count - 1))))];
}

/** Adds whole calendar months (UTC), keeping the time of day; a 31st steps to the month's last day. */
function addMonths(date: Date, months: number): Date {
  const next = new Date(date.getTime());
  const day = next.getUTCDate();
  next.setUTCDate(1);
  next.setUTCMonth(next.getUTCMonth() + months);
  const lastDay = new Date(Date.UTC(next.getUTCFullYear(), next.getUTCMonth() + 1, 0)).getUTCDate();
  next.setUTCDate(Math.min(day, lastDay));
  return next;
}

/** Weekly points after the last purchase cover at most this many weeks; monthly points take over after. */
const maxSilenceWeeks = 13;

/** Points at the same instant keep the purchase ones, which say why the instant is there. */
const kindOrder: Record<HistoryPointKind, number> = { before_order: 0, order: 1, week: 2, month: 3, now: 4, stage: 5 };

/**
 * The dates to evaluate, oldest first: each purchase day (UTC, as the summaries count days) just
 * before its first order and just after its last, so the rise of the overdue ratio up to each return
 * shows; weekly points for up to 13 weeks after the last purchase, so someone who stops is seen
 * fading; a point every month (or every few months for a long history) from the first order; and
 * `now`. Orders after `now` are left out. At most `maxPoints` dates and now: with more purchase days
 * than a third of `maxPoints` an evenly spread subset of them is kept (always the first and the last),
 * and the weekly points are dropped when they would take more than half of what is left.
 */
export function historyDates(
  orders: readonly HistoryOrder[],
  now: Date,
  options: HistoryOptions = defaultHistoryOptions,
): HistoryDate[] {
  const days = new Map<string, { first: number; last: number }>();
  for (const order of orders) {
    const ms = Date.parse(order.placedAt);
    if (Number.isNaN(ms) || ms > now.getTime()) continue;
    const day = order.placedAt.slice(0, 10);
    const seen = days.get(day);
    days.set(day, { first: Math.min(seen?.first ?? ms, ms), last: Math.max(seen?.last ?? ms, ms) });
  }
  const purchases = [...days.values()].sort((a, b) => a.first - b.first);
  if (purchases.length === 0) return [];
  const dates: HistoryDate[] = [];
  for (const index of spread(purchases.length, Math.max(1, Math.floor(options.maxPoints / 3)))) {
    const purchase = purchases[index]!;
    if (index > 0) dates.push({ at: new Date(purchase.first - 1), kind: "before_order" });
    dates.push({ at: new Date(purchase.last), kind: "order" });
  }
  let budget = Math.max(1, options.maxPoints - dates.length);
  const lastPurchase = purchases.at(-1)!.last;
  const weeks: number[] = [];
  for (let at = lastPurchase + 7 * dayMs; at < now.getTime() && weeks.length < maxSilenceWeeks; at += 7 * dayMs)
    weeks.push(at);
  const weekly = weeks.length <= budget / 2 ? weeks : [];
  for (const at of weekly) dates.push({ at: new Date(at), kind: "week" });
  budget = Math.max(1, budget - weekly.length);
  const first = new Date(purchases[0]!.first);
  const spanMonths = (now.getTime() - first.getTime()) / (dayMs * (365.25 / 12));
  const step = Math.max(1, Math.ceil(spanMonths / budget));
  const weeklyUntil = weekly.at(-1) ?? Number.NEGATIVE_INFINITY;
  for (let months = step; ; months += step) {
    const at = addMonths(first, months);
    if (at.getTime() >= now.getTime()) break;
    if (at.getTime() > lastPurchase && at.getTime() <= weeklyUntil) continue;
    dates.push({ at, kind: "month" });
  }
  dates.sort((a, b) => a.at.getTime() - b.at.getTime() || kindOrder[a.kind] - kindOrder[b.kind]);
  const unique: HistoryDate[] = [];
  for (const date of dates) if (unique.at(-1)?.at.getTime() !== date.at.getTime()) unique.push(date);
  if (unique.at(-1)?.at.getTime() !== now.getTime()) unique.push({ at: new Date(now.getTime()), kind: "now" });
  return unique;
}

/** The P(alive) lines the stages are drawn at with these models, as customerProfile applies them. */
export function stageThresholds(models: Pick<PopulationModels, "fadingBelowProbabilityAlive">) {
  return {
    fadingBelowProbabilityAlive:
      models.fadingBelowProbabilityAlive ?? defaultLifecycleOptions.fadingBelowProbabilityAlive,
    lapsedBelowProbabilityAlive: defaultLifecycleOptions.lapsedBelowProbabilityAlive,
  };
}

export interface ProfileHistory {
  points: HistoryPoint[];
  /** Dates the models could not score (an odd history, a degenerate fit): left off the chart. */
  skipped: number;
}

/** The point scoreCustomer gives at `at` (null when it cannot score the customer there). */
function pointAt(
  customerId: string,
  orders: readonly HistoryOrder[],
  models: PopulationModels,
  at: Date,
  kind: HistoryPointKind,
): HistoryPoint | null {
  const outcome = scoreAt(customerId, orders, models, at);
  if (!outcome?.ok) return null;
  const { profile } = outcome;
  return {
    at: at.toISOString(),
    kind,
    probabilityAlive: profile.probabilityAlive,
    expectedIntervalDays: profile.cadence.expectedIntervalDays,
    daysSinceLast: profile.cadence.daysSinceLast,
    overdueRatio: profile.cadence.overdueRatio,
    stage: profile.lifecycle.stage,
    stageReason: profile.lifecycle.reason,
    valueTier: profile.valueTier,
    clv12: profile.clv12,
  };
}

/**
 * Where the stage changed between two points with no order placed after the first up to the second:
 * each UTC midnight from which it reads a new stage, found by bisection over the days between, as
 * `stage` points (active to lapsed within a month passes through fading: both changes are found). The
 * models count whole UTC days since the purchase days, so a stage can only change at midnight UTC;
 * and without an order only time passes, so P(alive) only falls (and a one-time buyer only ages): the
 * stage moves one way, and each change is dated where it happened, not at the later date the points
 * fell on. Empty when the points share a stage, an order lies between, or a date in between cannot be
 * scored.
 */
export function stageChangesBetween(
  customerId: string,
  orders: readonly HistoryOrder[],
  models: PopulationModels,
  before: HistoryPoint,
  after: HistoryPoint,
): HistoryPoint[] {
  const from = Date.parse(before.at);
  const to = Date.parse(after.at);
  if (orders.some((order) => Date.parse(order.placedAt) > from && Date.parse(order.placedAt) <= to)) return [];
  const changes: HistoryPoint[] = [];
  let last = before;
  // The midnights strictly after `from`, up to `to`: days firstDay..lastDay (in days since the epoch).
  let firstDay = Math.floor(from / dayMs) + 1;
  const lastDay = Math.floor(to / dayMs);
  while (last.stage !== after.stage && firstDay <= lastDay) {
    // The first midnight whose stage is not last's (lastDay + 1: none before `after`).
    let low = firstDay;
    let high = lastDay + 1;
    let found: HistoryPoint | null = null;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const point = pointAt(customerId, orders, models, new Date(middle * dayMs), "stage");
      if (!point) return changes;
      if (point.stage === last.stage) low = middle + 1;
      else {
        high = middle;
        found = point;
      }
    }
    if (!found || Date.parse(found.at) !== high * dayMs) break;
    changes.push(found);
    last = found;
    firstDay = high + 1;
  }
  return changes;
}

/**
 * P(alive), rhythm, stage, value tier and 12-month CLV at each of historyDates, and at each UTC
 * midnight the stage changed between two of them with no order in between (stageChangesBetween).
 */
export function profileHistory(
  customerId: string,
  orders: readonly HistoryOrder[],
  models: PopulationModels,
  now: Date,
  options: HistoryOptions = defaultHistoryOptions,
): ProfileHistory {
  const points: HistoryPoint[] = [];
  let skipped = 0;
  for (const { at, kind } of historyDates(orders, now, options)) {
    const point = pointAt(customerId, orders, models, at, kind);
    if (!point) {
      skipped++;
      continue;
    }
    const previous = points.at(-1);
    if (previous) points.push(...stageChangesBetween(customerId, orders, models, previous, point));
    points.push(point);
  }
  return { points, skipped };
}
