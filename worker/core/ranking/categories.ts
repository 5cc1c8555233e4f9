// Category propensity for one shopper from their unified (web + store) history: recency-weighted
// purchases and views, their own cadence per category, complementary lift and a popularity prior,
// combined as a Dirichlet-style posterior mean so the prior dominates only when history is thin.
// Every score keeps machine-readable reasons and a sentence. It does not pick items (items.ts) or
// apply merchandiser rules (rules/apply.ts), and it reads no clock: `now` is passed in.

import { roundTo } from "../math/round.ts";
import { cadenceOf } from "../models/cadence.ts";
import { own } from "../records.ts";
import { calendarDaysBefore, channelMixOf, describeAgo, describeChannel, describeEvery } from "./describe.ts";
import { type CategoryOptions, defaultRankingOptions } from "./options.ts";
import type { PopulationStats } from "./population.ts";
import type { BrowseSignal, CategoryStat, RankedCategory, Reason } from "./types.ts";

export interface CategoryRankingInput {
  /** Wording threshold shared with the default shelf; defaults to defaultRankingOptions.popular.trendingAbove. */
  trendingAbove?: number;
  categories: readonly CategoryStat[];
  browse?: readonly BrowseSignal[];
  population: PopulationStats;
  now: Date;
  /** The retailer's time zone (RETAILER_TIME_ZONE): "yesterday" in the reasons is the day before on its clock. UTC when absent. */
  timeZone?: string;
  /** Display names for sentences; the id is used when a name is missing. */
  categoryNames?: Readonly<Record<string, string>>;
}

const dayMs = 86_400_000;

/**
 * Mean of 2^(−age/halfLife) over ages spread evenly between the newest and oldest purchase. The
 * aggregates keep only first and last dates, so the `orders` in between are taken as evenly spaced;
 * the closed form is ∫ e^(−λa) da / (a₂ − a₁) with λ = ln 2 / halfLife.
 */
export function meanDecay(newestAgeDays: number, oldestAgeDays: number, halfLifeDays: number): number {
  const lambda = Math.LN2 / halfLifeDays;
  const newest = Math.max(0, newestAgeDays);
  const oldest = Math.max(newest, oldestAgeDays);
  const spread = oldest - newest;
  if (spread * lambda < 1e-9) return Math.exp(-lambda * newest);
  return (Math.exp(-lambda * newest) - Math.exp(-lambda * oldest)) / (lambda * spread);
}

const popularityCache = new WeakMap<PopulationStats, Map<number, { order: string[]; shares: Map<string, number> }>>();

/** Popularity prior: penetration × trend^trendWeight, normalised to sum to 1 over categories. */
export function popularityShares(
  population: PopulationStats,
  trendWeight: number,
): { order: string[]; shares: Map<string, number> } {
  let byWeight = popularityCache.get(population);
  if (!byWeight) {
    byWeight = new Map();
    popularityCache.set(population, byWeight);
  }
  const cached = byWeight.get(trendWeight);
  if (cached) return cached;
  const raw = Object.values(population.categories).map(
    (c) => [c.categoryId, c.penetration * c.trend ** trendWeight] as const,
  );
  const total = raw.reduce((sum, [, weight]) => sum + weight, 0);
  const shares = new Map(raw.map(([id, weight]) => [id, total > 0 ? weight / total : 0]));
  const order = raw
    .filter(([, weight]) => weight > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([id]) => id);
  const result = { order, shares };
  byWeight.set(trendWeight, result);
  return result;
}

interface Evidence {
  categoryId: string;
  purchaseWeight: number;
  browseWeight: number;
  cadenceFactor: number;
  liftGain: number;
  topComplement?: { fromCategoryId: string; lift: number; contribution: number };
  reasons: Reason[];
  sentences: Map<string, string>;
}

function evidenceFor(map: Map<string, Evidence>, categoryId: string): Evidence {
  let e = map.get(categoryId);
  if (!e) {
    e = {
      categoryId,
      purchaseWeight: 0,
      browseWeight: 0,
      cadenceFactor: 1,
      liftGain: 0,
      reasons: [],
      sentences: new Map(),
    };
    map.set(categoryId, e);
  }
  return e;
}

// Which reason speaks for the category in its one sentence, strongest first; for a category the shopper
// buys by habit (options.habitOrders), their own purchases come before other shoppers' and their views.
const sentencePriority = ["due_now", "just_bought", "complements", "viewed", "bought_before", "popular"];
const habitSentencePriority = ["due_now", "just_bought", "bought_before", "complements", "viewed", "popular"];

/** Ranks categories for one shopper, best first, each with its score and reasons. */
export function rankCategories(
  input: CategoryRankingInput,
  options: CategoryOptions = defaultRankingOptions.categories,
): RankedCategory[] {
  const { population, now } = input;
  const daysAgo = calendarDaysBefore(now, input.timeZone ?? "UTC");
  const nameOf = (id: string) => own(input.categoryNames, id) ?? id;
  const evidence = new Map<string, Evidence>();

  const habits = new Set<string>();
  for (const stat of input.categories) {
    if (stat.orders <= 0) continue;
    if (stat.orders >= options.habitOrders) habits.add(stat.categoryId);
    const e = evidenceFor(evidence, stat.categoryId);
    const newestAge = (now.getTime() - Date.parse(stat.lastPurchaseAt)) / dayMs;
    const oldestAge = (now.getTime() - Date.parse(stat.firstPurchaseAt)) / dayMs;
    e.purchaseWeight = stat.orders * meanDecay(newestAge, oldestAge, options.purchaseHalfLifeDays);
    const channel = channelMixOf(stat.webUnits, stat.storeUnits);
    const where = channel ? `, ${describeChannel(channel)}` : "";
    const daysSinceLast = daysAgo(stat.lastPurchaseAt);
    e.reasons.push({
      code: "bought_before",
      orders: stat.orders,
      daysSinceLast,
      channel,
      webUnits: stat.webUnits,
      storeUnits: stat.storeUnits,
    });
    const times = stat.orders === 1 ? "once" : stat.orders === 2 ? "twice" : `${stat.orders} times`;
    e.sentences.set(
      "bought_before",
      `You've bought ${nameOf(stat.categoryId)} ${times}, last ${describeAgo(daysSinceLast)}${where}`,
    );

    const cadence = cadenceOf(
      { purchaseDays: stat.purchaseDays, firstPurchaseAt: stat.firstPurchaseAt, lastPurchaseAt: stat.lastPurchaseAt },
      now,
      {
        priorIntervalDays:
          own(population.categories, stat.categoryId)?.repurchaseIntervalDays ?? population.overallIntervalDays,
        priorWeight: options.cadencePriorWeight,
      },
    );
    const intervalDays = Math.round(cadence.expectedIntervalDays);
    // Bought on one day only, the shopper has no interval of their own: theirs is all shoppers' for the
    // category, and the sentence says so rather than calling it their habit.
    const fromOwnHistory = cadence.observedIntervals > 0;
    const usually = `it is usually bought ${describeEvery(cadence.expectedIntervalDays)}`;
    if (cadence.overdueRatio >= options.dueFrom && cadence.overdueRatio <= options.dueUntil) {
      e.cadenceFactor = options.dueBoost;
      e.reasons.push({
        code: "due_now",
        intervalDays,
        daysSinceLast,
        overdueRatio: roundTo(cadence.overdueRatio, 2),
        channel,
        fromOwnHistory,
      });
      e.sentences.set(
        "due_now",
        fromOwnHistory
          ? `You buy ${nameOf(stat.categoryId)} ${describeEvery(cadence.expectedIntervalDays)}; last time ${describeAgo(daysSinceLast)}${where}`
          : `You bought ${nameOf(stat.categoryId)} ${describeAgo(daysSinceLast)}${where}; ${usually}`,
      );
    } else if (
      cadence.overdueRatio < options.justBoughtUntil &&
      cadence.expectedIntervalDays >= options.longCycleDays
    ) {
      e.cadenceFactor = options.justBoughtFactor;
      e.reasons.push({
        code: "just_bought",
        intervalDays,
        daysSinceLast,
        overdueRatio: roundTo(cadence.overdueRatio, 2),
        channel,
        fromOwnHistory,
      });
      e.sentences.set(
        "just_bought",
        `You bought ${nameOf(stat.categoryId)} ${describeAgo(daysSinceLast)}${where}; ${usually}`,
      );
    }
  }

  for (const signal of input.browse ?? []) {
    if (signal.views <= 0) continue;
    const e = evidenceFor(evidence, signal.categoryId);
    const age = Math.max(0, (now.getTime() - Date.parse(signal.lastViewedAt)) / dayMs);
    e.browseWeight = signal.views * options.viewWeight * meanDecay(age, age, options.browseHalfLifeDays);
    const daysSinceViewed = daysAgo(signal.lastViewedAt);
    e.reasons.push({ code: "viewed", views: signal.views, daysSinceViewed });
    e.sentences.set("viewed", `You looked at ${nameOf(signal.categoryId)} ${describeAgo(daysSinceViewed)}`);
  }

  const ownWeights = [...evidence.values()].map((e) => [e.categoryId, e.purchaseWeight + e.browseWeight] as const);
  const historyWeight = ownWeights.reduce((sum, [, w]) => sum + w, 0);

  // Complementary lift raises the prior of categories that tend to follow what this shopper buys,
  // in proportion to how much of their (recency-weighted) history each source category makes up.
  if (historyWeight > 0) {
    for (const [fromId, weight] of ownWeights) {
      const share = weight / historyWeight;
      for (const complement of own(population.complements, fromId) ?? []) {
        const lift = Math.min(complement.lift, options.maxLift);
        const e = evidenceFor(evidence, complement.categoryId);
        e.liftGain += share * (lift - 1);
        const contribution = share * (lift - 1);
        if (!e.topComplement || contribution > e.topComplement.contribution) {
          e.topComplement = { fromCategoryId: fromId, lift, contribution };
        }
      }
    }
  }

  const popularity = popularityShares(population, options.trendWeight);
  for (const id of popularity.order.slice(0, options.maxCategories)) evidenceFor(evidence, id);

  const priorStrength =
    options.priorStrength === "fitted"
      ? (population.tasteConcentration ?? options.fallbackPriorStrength)
      : options.priorStrength;
  const denominator = historyWeight + priorStrength;
  const ranked: RankedCategory[] = [];
  for (const e of evidence.values()) {
    const prior = popularity.shares.get(e.categoryId) ?? 0;
    const liftFactor = 1 + options.liftWeight * e.liftGain;
    const ownPart = (e.purchaseWeight + e.browseWeight) * e.cadenceFactor;
    const priorPart = priorStrength * prior * liftFactor;
    const score = (ownPart + priorPart) / denominator;
    if (!(score > 0)) continue;
    if (e.topComplement && e.liftGain > 0) {
      e.reasons.push({
        code: "complements",
        fromCategoryId: e.topComplement.fromCategoryId,
        lift: roundTo(e.topComplement.lift, 2),
      });
      e.sentences.set(
        "complements",
        `Shoppers who buy ${nameOf(e.topComplement.fromCategoryId)} often buy ${nameOf(e.categoryId)} next`,
      );
    }
    // The prior is named as a reason only where it carries most of the score.
    if (priorPart >= ownPart && prior > 0) {
      const stats = own(population.categories, e.categoryId);
      e.reasons.push({
        code: "popular",
        penetration: roundTo(stats?.penetration ?? 0, 4),
        trend: roundTo(stats?.trend ?? 1, 2),
        priorShare: roundTo(priorPart / (ownPart + priorPart), 2),
      });
      e.sentences.set(
        "popular",
        (stats?.trend ?? 1) > (input.trendingAbove ?? defaultRankingOptions.popular.trendingAbove)
          ? `${nameOf(e.categoryId)} is trending with shoppers right now`
          : `${nameOf(e.categoryId)} is popular with shoppers like you`,
      );
    }
    const priority = habits.has(e.categoryId) ? habitSentencePriority : sentencePriority;
    const lead = priority.find((code) => e.sentences.has(code));
    ranked.push({
      categoryId: e.categoryId,
      score,
      reasons: e.reasons,
      sentence: lead ? e.sentences.get(lead)! : nameOf(e.categoryId),
    });
  }
  ranked.sort((a, b) => b.score - a.score || a.categoryId.localeCompare(b.categoryId));
  return ranked.slice(0, options.maxCategories);
}
