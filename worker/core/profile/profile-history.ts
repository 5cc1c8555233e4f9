// One customer's P(alive), rhythm, stage and CLV as the product would have given them at past dates,
// recomputed from the order history (not from stored snapshots): at each date only the orders placed
// by then count, summarised as ingestion summarises them (summaryRowFromOrders) and scored by the
// very function the nightly job and GET /v1/customers/:id use (scoreCustomer), with the current
// models. The dates are each purchase day, monthly points between, and now, bounded in number. Pure.
import { defaultLifecycleOptions, type Lifecycle, type ValueTier } from "../models/lifecycle.ts";
import type { Channel } from "../vocabulary.ts";
import { type ProfileSummary, type ScoreOutcome, scoreCustomer } from "./customer-profile.ts";
import type { PopulationModels, SummaryOrder } from "./population-models.ts";
import { summaryRowFromOrders } from "./population-models.ts";

export interface HistoryOrder extends SummaryOrder {
  channel: Channel;
}

/** Why a date is on the chart: just after a purchase day's last order, a month between, or now. */
export type HistoryPointKind = "order" | "month" | "now";

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
  valueTier: ValueTier;
  clv12: number;
}

export interface HistoryOptions {
  /** At most this many dates besides now: half for purchase days, the rest for monthly points. */
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

/**
 * The dates to evaluate, oldest first: the last order of each purchase day (UTC, as the summaries
 * count days), a point every month (or every few months for a long history) from the first order,
 * and `now`. Orders after `now` are left out. With more purchase days than half of `maxPoints`, an
 * evenly spread subset of them is kept, always with the first and the last.
 */
export function historyDates(
  orders: readonly HistoryOrder[],
  now: Date,
  options: HistoryOptions = defaultHistoryOptions,
): HistoryDate[] {
  const lastOfDay = new Map<string, number>();
  for (const order of orders) {
    const ms = Date.parse(order.placedAt);
    if (Number.isNaN(ms) || ms > now.getTime()) continue;
    const day = order.placedAt.slice(0, 10);
    lastOfDay.set(day, Math.max(lastOfDay.get(day) ?? ms, ms));
  }
  const purchases = [...lastOfDay.values()].sort((a, b) => a - b);
  if (purchases.length === 0) return [];
  const orderBudget = Math.max(1, Math.floor(options.maxPoints / 2));
  const kept = spread(purchases.length, orderBudget).map((index) => purchases[index]!);
  const first = new Date(purchases[0]!);
  const spanMonths = (now.getTime() - first.getTime()) / (dayMs * (365.25 / 12));
  const monthBudget = Math.max(1, options.maxPoints - kept.length);
  const step = Math.max(1, Math.ceil(spanMonths / monthBudget));
  const dates: HistoryDate[] = kept.map((ms) => ({ at: new Date(ms), kind: "order" }));
  for (let months = step; ; months += step) {
    const at = addMonths(first, months);
    if (at.getTime() >= now.getTime()) break;
    dates.push({ at, kind: "month" });
  }
  dates.sort((a, b) => a.at.getTime() - b.at.getTime() || (a.kind === "order" ? -1 : 1));
  // A month that falls on a purchase instant adds nothing; nor does now on the last purchase.
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

/** P(alive), rhythm, stage, value tier and 12-month CLV at each of historyDates. */
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
    const outcome = scoreAt(customerId, orders, models, at);
    if (!outcome?.ok) {
      skipped++;
      continue;
    }
    const { profile } = outcome;
    points.push({
      at: at.toISOString(),
      kind,
      probabilityAlive: profile.probabilityAlive,
      expectedIntervalDays: profile.cadence.expectedIntervalDays,
      daysSinceLast: profile.cadence.daysSinceLast,
      overdueRatio: profile.cadence.overdueRatio,
      stage: profile.lifecycle.stage,
      valueTier: profile.valueTier,
      clv12: profile.clv12,
    });
  }
  return { points, skipped };
}
