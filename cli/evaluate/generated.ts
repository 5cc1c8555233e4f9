// Evaluation on generated customers whose truth is known (db/seed/generate.ts): a time split like the
// real-data one, plus checks that each planted effect comes back out of the core — complementary
// pairs, due-now categories, full-price vs deal-seeking habits and price bands. It reads no files.

import { complementaryPairs } from "../../db/seed/catalog.ts";
import { type CustomerTruth, generateCustomers, generateProducts } from "../../db/seed/generate.ts";
import { rankCategories } from "../../worker/core/ranking/categories.ts";
import { discountSensitivityFor, shopperPricePositions } from "../../worker/core/ranking/items.ts";
import { defaultRankingOptions, type RankingOptions } from "../../worker/core/ranking/options.ts";
import { buildPopulation } from "../../worker/core/ranking/population.ts";
import type { CategoryStat, Product } from "../../worker/core/ranking/types.ts";
import { discountSensitivities } from "../../worker/core/vocabulary.ts";
import { type EvaluationResult, evaluateCategoryRanking } from "./evaluate.ts";
import { aggregateCategoryStats, type PurchaseLine } from "./lines.ts";

export interface GeneratedDataset {
  lines: PurchaseLine[];
  truths: Map<string, CustomerTruth>;
  catalog: Product[];
  today: Date;
}

export interface GeneratedOptions {
  customers: number;
  seed: number;
  today: string;
}

export const defaultGeneratedOptions: GeneratedOptions = { customers: 2000, seed: 7, today: "2026-06-01" };

export function generateDataset(options: GeneratedOptions = defaultGeneratedOptions): GeneratedDataset {
  const lines: PurchaseLine[] = [];
  const truths = new Map<string, CustomerTruth>();
  for (const customer of generateCustomers({
    customers: options.customers,
    seed: options.seed,
    today: options.today,
    includePersonas: false,
  })) {
    truths.set(customer.truth.key, customer.truth);
    for (const order of customer.orders) {
      for (const line of order.lines) {
        lines.push({
          customerId: customer.truth.key,
          basketId: order.id,
          productId: line.productId,
          categoryId: line.categoryId,
          at: order.placedAt,
          channel: order.channel,
          quantity: line.quantity,
          spend: line.quantity * line.unitPrice,
          discounted: line.unitPrice < line.listPrice,
        });
      }
    }
  }
  const catalog = generateProducts({ seed: options.seed }).map(
    (p): Product => ({
      id: p.id,
      title: p.title,
      categoryId: p.categoryId,
      url: p.url,
      imageUrl: p.imageUrl,
      listPrice: p.listPrice,
      salePrice: p.salePrice,
      inStock: p.inStock,
      active: true,
    }),
  );
  return { lines, truths, catalog, today: new Date(`${options.today}T00:00:00Z`) };
}

export interface PlantedTruthResult {
  customers: number;
  complements: {
    planted: number;
    /** Planted (A, B) pairs where B is among A's three highest-lift complements. */
    recoveredInTop3: number;
    meanLiftPlanted: number;
    meanLiftOther: number;
  };
  dueNow: {
    /** Share of (customer, category) flagged due_now at the cutoff that were bought within the window. */
    boughtWhenDue: number;
    /** The same for categories bought before but neither due nor just bought. */
    boughtWhenNotDue: number;
    flaggedDue: number;
    windowDays: number;
  };
  discount: {
    /** Share of customers whose derived sensitivity equals the planted habit. */
    accuracy: number;
    confusion: Record<string, Record<string, number>>;
  };
  priceBand: {
    /** Mean price percentile paid, by planted band (budget < mid < premium when recovered). */
    meanPercentile: Record<string, number>;
  };
}

const dayMs = 86_400_000;
const round = (value: number) => Math.round(value * 10_000) / 10_000;

/** Checks each planted effect against what the core recovers from the generated history. */
export function plantedTruth(
  dataset: GeneratedDataset,
  windowDays = 30,
  options: RankingOptions = defaultRankingOptions,
): PlantedTruthResult {
  const cutoff = new Date(dataset.today.getTime() - windowDays * dayMs);
  const all = aggregateCategoryStats(dataset.lines);
  const population = buildPopulation(
    [...all.values()].map((categories) => ({ categories })),
    dataset.catalog,
    dataset.today,
    options.population,
  );

  let recovered = 0;
  const plantedLifts: number[] = [];
  const otherLifts: number[] = [];
  const planted = new Set(complementaryPairs.map(([a, b]) => `${a}>${b}`));
  for (const [from, list] of Object.entries(population.complements)) {
    for (const c of list) (planted.has(`${from}>${c.categoryId}`) ? plantedLifts : otherLifts).push(c.lift);
  }
  for (const [from, to] of complementaryPairs) {
    const top = (population.complements[from] ?? []).slice(0, 3).map((c) => c.categoryId);
    if (top.includes(to)) recovered++;
  }

  // Due now: rank at the cutoff on history before it; see what is bought in the window after it.
  const before = aggregateCategoryStats(dataset.lines.filter((l) => Date.parse(l.at) < cutoff.getTime()));
  const after = new Map<string, Set<string>>();
  for (const line of dataset.lines) {
    if (Date.parse(line.at) < cutoff.getTime()) continue;
    const set = after.get(line.customerId) ?? new Set<string>();
    set.add(line.categoryId);
    after.set(line.customerId, set);
  }
  const cutoffPopulation = buildPopulation(
    [...before.values()].map((categories) => ({ categories })),
    dataset.catalog,
    cutoff,
    options.population,
  );
  const due = { flagged: 0, bought: 0 };
  const notDue = { flagged: 0, bought: 0 };
  for (const [customerId, stats] of before) {
    const ranked = rankCategories(
      { categories: stats, population: cutoffPopulation, now: cutoff },
      { ...options.categories, maxCategories: Number.POSITIVE_INFINITY },
    );
    const bought = after.get(customerId) ?? new Set<string>();
    for (const category of ranked) {
      const codes = category.reasons.map((r) => r.code);
      if (!codes.includes("bought_before")) continue;
      const bucket = codes.includes("due_now") ? due : codes.includes("just_bought") ? undefined : notDue;
      if (!bucket) continue;
      bucket.flagged++;
      if (bought.has(category.categoryId)) bucket.bought++;
    }
  }

  const confusion: Record<string, Record<string, number>> = Object.fromEntries(
    discountSensitivities.map((truth) => [truth, Object.fromEntries(discountSensitivities.map((got) => [got, 0]))]),
  );
  let correct = 0;
  const percentiles: Record<string, number[]> = { budget: [], mid: [], premium: [] };
  for (const [customerId, stats] of all) {
    const truth = dataset.truths.get(customerId);
    if (!truth) continue;
    const totals = sumUnits(stats);
    const got = discountSensitivityFor(totals, population, options);
    const expected = truth.discountHabit;
    confusion[expected]![got]!++;
    if (got === expected) correct++;
    const overall = shopperPricePositions(stats, population).overall;
    if (overall !== undefined) percentiles[truth.priceBand]!.push(overall);
  }
  const mean = (values: number[]) => (values.length ? round(values.reduce((a, b) => a + b, 0) / values.length) : 0);

  return {
    customers: all.size,
    complements: {
      planted: complementaryPairs.length,
      recoveredInTop3: recovered,
      meanLiftPlanted: mean(plantedLifts),
      meanLiftOther: mean(otherLifts),
    },
    dueNow: {
      boughtWhenDue: round(due.bought / Math.max(1, due.flagged)),
      boughtWhenNotDue: round(notDue.bought / Math.max(1, notDue.flagged)),
      flaggedDue: due.flagged,
      windowDays,
    },
    discount: { accuracy: round(correct / Math.max(1, all.size)), confusion },
    priceBand: { meanPercentile: Object.fromEntries(Object.entries(percentiles).map(([k, v]) => [k, mean(v)])) },
  };
}

function sumUnits(stats: readonly CategoryStat[]): { units: number; discountedUnits: number } {
  let units = 0;
  let discountedUnits = 0;
  for (const s of stats) {
    units += s.units;
    discountedUnits += s.discountedUnits;
  }
  return { units, discountedUnits };
}

/** The time split on generated data: train before `today − windowDays`, score the window after. */
export function evaluateGenerated(
  dataset: GeneratedDataset,
  k: number,
  windowDays: number,
  options: RankingOptions = defaultRankingOptions,
): EvaluationResult {
  return evaluateCategoryRanking({
    lines: dataset.lines,
    cutoff: new Date(dataset.today.getTime() - windowDays * dayMs),
    until: dataset.today,
    k,
    level: "category",
    options,
  });
}
