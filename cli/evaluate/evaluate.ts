// Time-split evaluation of category propensity: fit on lines before the cutoff, rank each customer's
// top-k categories with the core, and score them against what the customer bought after it. Patron
// is compared with two baselines: global popularity and the customer's own most frequent categories.
// It does no file I/O; the datasets are read by their own modules.

import { rankCategories } from "../../worker/core/ranking/categories.ts";
import { defaultRankingOptions, type RankingOptions } from "../../worker/core/ranking/options.ts";
import { buildPopulation } from "../../worker/core/ranking/population.ts";
import type { CategoryStat } from "../../worker/core/ranking/types.ts";
import { aggregateCategoryStats, type PurchaseLine } from "./lines.ts";
import { createMetricsAverage, type RankingMetrics, scoreRanking } from "./metrics.ts";

export interface EvaluationResult {
  k: number;
  level: string;
  cutoff: string;
  until: string | null;
  households: number;
  patron: RankingMetrics;
  baselines: { popularity: RankingMetrics; ownFrequency: RankingMetrics };
}

export interface EvaluationInput {
  lines: readonly PurchaseLine[];
  cutoff: Date;
  /** Lines at or after this are ignored (a validation window inside the training period). */
  until?: Date;
  k: number;
  level: string;
  options?: RankingOptions;
}

/** The household's own categories by orders, then most recent, padded with the popular ones. */
export function ownFrequencyRanking(stats: readonly CategoryStat[], popular: readonly string[], k: number): string[] {
  const own = [...stats]
    .sort(
      (a, b) =>
        b.orders - a.orders ||
        Date.parse(b.lastPurchaseAt) - Date.parse(a.lastPurchaseAt) ||
        a.categoryId.localeCompare(b.categoryId),
    )
    .map((s) => s.categoryId);
  return padWith(own, popular, k);
}

function padWith(ranked: readonly string[], filler: readonly string[], k: number): string[] {
  const out = ranked.slice(0, k);
  for (const id of filler) {
    if (out.length >= k) break;
    if (!out.includes(id)) out.push(id);
  }
  return out;
}

export function evaluateCategoryRanking(input: EvaluationInput): EvaluationResult {
  const options = input.options ?? defaultRankingOptions;
  const cutoffMs = input.cutoff.getTime();
  const untilMs = input.until?.getTime() ?? Number.POSITIVE_INFINITY;
  const trainLines: PurchaseLine[] = [];
  const future = new Map<string, Set<string>>();
  for (const line of input.lines) {
    const ms = Date.parse(line.at);
    if (ms < cutoffMs) trainLines.push(line);
    else if (ms < untilMs) {
      let set = future.get(line.customerId);
      if (!set) {
        set = new Set();
        future.set(line.customerId, set);
      }
      set.add(line.categoryId);
    }
  }
  const train = aggregateCategoryStats(trainLines);
  const population = buildPopulation(
    [...train.values()].map((categories) => ({ categories })),
    [],
    input.cutoff,
    options.population,
  );
  const popular = Object.values(population.categories)
    .sort((a, b) => b.buyers - a.buyers || a.categoryId.localeCompare(b.categoryId))
    .map((c) => c.categoryId);
  const categoryOptions = { ...options.categories, maxCategories: Math.max(input.k, options.categories.maxCategories) };

  const patron = createMetricsAverage();
  const popularity = createMetricsAverage();
  const ownFrequency = createMetricsAverage();
  let households = 0;
  for (const [customerId, relevant] of [...future].sort(([a], [b]) => a.localeCompare(b))) {
    const stats = train.get(customerId);
    if (!stats || stats.length === 0) continue;
    households++;
    const ranked = rankCategories({ categories: stats, population, now: input.cutoff }, categoryOptions).map(
      (c) => c.categoryId,
    );
    patron.add(scoreRanking(padWith(ranked, popular, input.k), relevant, input.k));
    popularity.add(scoreRanking(popular, relevant, input.k));
    ownFrequency.add(scoreRanking(ownFrequencyRanking(stats, popular, input.k), relevant, input.k));
  }
  return {
    k: input.k,
    level: input.level,
    cutoff: input.cutoff.toISOString().slice(0, 10),
    until: input.until ? input.until.toISOString().slice(0, 10) : null,
    households,
    patron: patron.mean(),
    baselines: { popularity: popularity.mean(), ownFrequency: ownFrequency.mean() },
  };
}
