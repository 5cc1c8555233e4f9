// Builders for ranking tests: category stats, products and small populations with chosen penetration,
// intervals, complements and prices. Plain data only.
import type { CategoryPopulation, PopulationStats } from "../../../worker/core/ranking/population.ts";
import type { CategoryStat, Product } from "../../../worker/core/ranking/types.ts";

export const now = new Date("2026-06-01T00:00:00Z");
const dayMs = 86_400_000;

export function daysAgo(days: number): string {
  return new Date(now.getTime() - days * dayMs).toISOString();
}

export function stat(categoryId: string, fields: Partial<CategoryStat> = {}): CategoryStat {
  return {
    categoryId,
    orders: 1,
    purchaseDays: 1,
    units: 1,
    spend: 10,
    firstPurchaseAt: daysAgo(30),
    lastPurchaseAt: daysAgo(30),
    avgUnitPrice: 10,
    discountedUnits: 0,
    webUnits: 0,
    storeUnits: 1,
    ...fields,
  };
}

/** A customer who bought `categoryId` `purchases` times, every `intervalDays`, last `lastDaysAgo` days ago. */
export function rhythm(
  categoryId: string,
  purchases: number,
  intervalDays: number,
  lastDaysAgo: number,
  fields: Partial<CategoryStat> = {},
): CategoryStat {
  return stat(categoryId, {
    orders: purchases,
    purchaseDays: purchases,
    units: purchases,
    firstPurchaseAt: daysAgo(lastDaysAgo + (purchases - 1) * intervalDays),
    lastPurchaseAt: daysAgo(lastDaysAgo),
    storeUnits: purchases,
    ...fields,
  });
}

export const quantileProbabilities = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1];

export function category(categoryId: string, fields: Partial<CategoryPopulation> = {}): CategoryPopulation {
  return {
    categoryId,
    buyers: 100,
    penetration: 0.1,
    recentBuyers: 10,
    trend: 1,
    repurchaseIntervalDays: 30,
    intervalSamples: 50,
    priceQuantiles: [1, 5, 10, 20, 40, 80, 100],
    units: 100,
    discountedUnits: 30,
    ...fields,
  };
}

export function population(
  categories: CategoryPopulation[],
  extra: Partial<Omit<PopulationStats, "categories">> = {},
): PopulationStats {
  return {
    fittedAt: now.toISOString(),
    customers: 1000,
    categories: Object.fromEntries(categories.map((c) => [c.categoryId, c])),
    complements: {},
    discountedShare: 0.3,
    overallIntervalDays: 30,
    quantileProbabilities,
    productUnits: {},
    tasteConcentration: 100,
    ...extra,
  };
}

export function product(id: string, categoryId: string, fields: Partial<Product> = {}): Product {
  return {
    id,
    title: `Product ${id}`,
    categoryId,
    url: `https://shop.example/p/${id}`,
    imageUrl: null,
    listPrice: 20,
    salePrice: null,
    inStock: true,
    active: true,
    ...fields,
  };
}
