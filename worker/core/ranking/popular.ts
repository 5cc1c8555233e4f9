// The non-personalized default shelf: popular and trending categories and their best-selling items,
// for anonymous visitors, unknown shoppers and the holdout arm. It reads population statistics and
// the catalog only, so one result can be cached for everyone; it knows nothing about the shopper.

import { own } from "../records.ts";
import { popularityShares } from "./categories.ts";
import { productsByCategory, rankedItemOf, shelfOrder } from "./items.ts";
import { defaultRankingOptions, type RankingOptions } from "./options.ts";
import type { PopulationStats } from "./population.ts";
import type { Product, RankedCategory, RankedItem } from "./types.ts";

export interface PopularShelf {
  categories: RankedCategory[];
  items: RankedItem[];
}

export function popularShelf(
  population: PopulationStats,
  catalog: readonly Product[],
  options: RankingOptions = defaultRankingOptions,
  categoryNames: Readonly<Record<string, string>> = {},
  /** The merchandiser's rules on the category list (recommend passes them), before items are chosen. */
  steer: (categories: readonly RankedCategory[]) => RankedCategory[] = (categories) => [...categories],
): PopularShelf {
  const { popular } = options;
  const popularity = popularityShares(population, popular.trendWeight);
  const ranked: RankedCategory[] = popularity.order.slice(0, popular.maxCategories).map((categoryId) => {
    const stats = own(population.categories, categoryId)!;
    const name = own(categoryNames, categoryId) ?? categoryId;
    const trending = stats.trend > popular.trendingAbove;
    return {
      categoryId,
      score: popularity.shares.get(categoryId) ?? 0,
      reasons: [
        {
          code: trending ? "trending" : "popular",
          penetration: Math.round(stats.penetration * 10_000) / 10_000,
          trend: Math.round(stats.trend * 100) / 100,
        },
      ],
      sentence: trending ? `${name} is trending right now` : `${name} is a favourite with our shoppers`,
    };
  });
  const categories = steer(ranked);

  const byCategory = productsByCategory(catalog);
  /** One category's best sellers, best first; no shelf takes more than maxItems from one. */
  const bestSellersOf = (category: RankedCategory): RankedItem[] =>
    (byCategory.get(category.categoryId) ?? [])
      .filter((product) => product.inStock && product.active)
      .map((product) => ({ product, units: own(population.productUnits, product.id) ?? 0 }))
      .sort((a, b) => b.units - a.units || a.product.id.localeCompare(b.product.id))
      .slice(0, popular.maxItems)
      .map(
        ({ product, units }): RankedItem =>
          rankedItemOf(
            product,
            category.score * (1 + options.items.productPopularityWeight * Math.log1p(units)),
            [{ code: "best_seller", unitsSold: units, categoryId: category.categoryId }],
            `A best seller in ${own(categoryNames, category.categoryId) ?? category.categoryId}`,
          ),
      );
  const items = shelfOrder(categories.length, (index) => bestSellersOf(categories[index] as RankedCategory), {
    maxItems: popular.maxItems,
    maxPerCategory: popular.maxPerCategory,
    categoriesForItems: options.items.categoriesForItems,
  });
  return { categories, items };
}
