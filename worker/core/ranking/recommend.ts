// One call for the recommendations route: holdout arm, category ranking, item selection and rules,
// in that order, from data the route has already loaded. Unknown shoppers and the holdout arm get the
// popular shelf (rules still apply). It loads nothing and reads no clock: `now` is passed in.

import { applyRules, discountOverridesFrom } from "../rules/apply.ts";
import { type Arm, holdoutArm } from "../rules/holdout.ts";
import type { Rule, ShopperSegment } from "../rules/types.ts";
import { rankCategories } from "./categories.ts";
import { discountSensitivityFor, type RecentPurchase, selectItems } from "./items.ts";
import { defaultRankingOptions, type RankingOptions } from "./options.ts";
import { popularShelf } from "./popular.ts";
import type { PopulationStats } from "./population.ts";
import type { BrowseSignal, CategoryStat, CustomerSummary, Product, RankedCategory, RankedItem } from "./types.ts";

export interface RecommendationInput {
  /** Null for an anonymous visitor. */
  customerId: string | null;
  /**
   * What the holdout arm is hashed from; the customer id when absent. The route passes the storefront
   * account's identity key, which no merge changes, so a shopper keeps their arm for the experiment.
   */
  holdoutKey?: string | null;
  /** Null when the customer is unknown or has no orders yet. */
  summary: CustomerSummary | null;
  categoryStats: readonly CategoryStat[];
  browse?: readonly BrowseSignal[];
  recentPurchases?: readonly RecentPurchase[];
  /** Stage, value tier, channel preference (from the profile); discount sensitivity is derived when absent. */
  segment?: ShopperSegment;
  population: PopulationStats;
  catalog: readonly Product[];
  rules: readonly Rule[];
  categoryNames?: Readonly<Record<string, string>>;
  now: Date;
}

export interface Recommendations {
  arm: Arm | "anonymous";
  categories: RankedCategory[];
  items: RankedItem[];
  segment: ShopperSegment;
  appliedRuleIds: string[];
}

export function recommend(
  input: RecommendationInput,
  options: RankingOptions = defaultRankingOptions,
): Recommendations {
  const known = input.customerId !== null && input.summary !== null && input.categoryStats.length > 0;
  const segment: ShopperSegment = { ...input.segment };
  if (!segment.discountSensitivity && input.summary) {
    segment.discountSensitivity = discountSensitivityFor(input.summary, input.population, options);
  }
  const context = { shopper: segment, now: input.now };
  const arm: Recommendations["arm"] = known
    ? holdoutArm(input.holdoutKey ?? input.customerId!, options.holdout)
    : "anonymous";

  let categories: RankedCategory[];
  let items: RankedItem[];
  if (arm === "personalized") {
    categories = rankCategories(
      {
        categories: input.categoryStats,
        browse: input.browse,
        population: input.population,
        now: input.now,
        categoryNames: input.categoryNames,
        trendingAbove: options.popular.trendingAbove,
      },
      options.categories,
    );
    items = selectItems(
      {
        categories,
        catalog: input.catalog,
        population: input.population,
        categoryStats: input.categoryStats,
        discountSensitivity: segment.discountSensitivity ?? "mixed",
        recentPurchases: input.recentPurchases,
        discountOverrides: discountOverridesFrom(input.rules, context),
        now: input.now,
      },
      options,
    );
  } else {
    ({ categories, items } = popularShelf(input.population, input.catalog, options, input.categoryNames));
  }
  const result = applyRules({ categories, items, rules: input.rules, context, catalog: input.catalog }, options);
  return { arm, categories: result.categories, items: result.items, segment, appliedRuleIds: result.appliedRuleIds };
}
