// Population statistics the nightly job fits and the request path reads: category popularity and
// trend, typical repurchase interval per category, co-purchase lift ("customers who bought A later
// buy B"), per-category price quantiles and the population's discounted-unit share. The result is
// plain JSON (stored in model_params). It reads aggregates only; it never sees raw orders or I/O.

import { medianOf, quantileSorted } from "../math/quantile.ts";
import { own } from "../records.ts";
import { defaultRankingOptions, type PopulationOptions } from "./options.ts";
import type { CategoryStat, Product } from "./types.ts";

export interface CategoryPopulation {
  categoryId: string;
  /** Customers who have bought in the category. */
  buyers: number;
  /** buyers ÷ all customers. */
  penetration: number;
  /** Buyers whose last purchase here falls inside the trend window. */
  recentBuyers: number;
  /** (recentBuyers ÷ buyers) relative to the same ratio over all categories: > 1 is rising. */
  trend: number;
  /** Median of customers' own mean days between purchase days here (or the overall interval). */
  repurchaseIntervalDays: number;
  /** Customers the interval was measured on (0 means the overall fallback is used). */
  intervalSamples: number;
  /** Prices at `PopulationStats.quantileProbabilities`, ascending; empty when nothing is known. */
  priceQuantiles: number[];
  units: number;
  discountedUnits: number;
}

export interface Complement {
  categoryId: string;
  /** P(buy this after the source category) ÷ P(buy this). */
  lift: number;
  /** Customers who bought the source and later this. */
  support: number;
}

export interface PopulationStats {
  fittedAt: string;
  customers: number;
  categories: Record<string, CategoryPopulation>;
  /** Source category → complements, highest lift first. */
  complements: Record<string, Complement[]>;
  /** Units bought below list price ÷ all units, over everyone. */
  discountedShare: number;
  /** Median repurchase interval over every category, in days. */
  overallIntervalDays: number;
  quantileProbabilities: number[];
  /**
   * How alike customers' category mixes are: the Dirichlet precision κ of a Dirichlet-multinomial fit
   * by the method of moments (see tasteConcentrationOf). Large when everyone buys the population mix,
   * small when each customer sticks to their own categories. Null when it cannot be estimated.
   */
  tasteConcentration: number | null;
  /** Units sold per product when the caller supplied product sales (the popular shelf orders items by it). */
  productUnits: Record<string, number>;
}

export interface CustomerCategoryStats {
  categories: CategoryStat[];
}

export interface ProductSales {
  productId: string;
  units: number;
}

const dayMs = 86_400_000;

/**
 * Accumulates customers one at a time (so the nightly job can feed pages) and builds the statistics.
 * `catalog` supplies price distributions; customers' own average prices are the fallback for a
 * category with no active products.
 */
export function createPopulationBuilder(
  now: Date,
  catalog: readonly Product[],
  options: PopulationOptions = defaultRankingOptions.population,
) {
  let customers = 0;
  let units = 0;
  let discountedUnits = 0;
  const buyers = new Map<string, number>();
  const recentBuyers = new Map<string, number>();
  const intervals = new Map<string, number[]>();
  const paidPrices = new Map<string, number[]>();
  const categoryUnits = new Map<string, { units: number; discounted: number }>();
  const pairs = new Map<string, Map<string, number>>();
  const recentSince = now.getTime() - options.trendWindowDays * dayMs;
  const productUnits = new Map<string, number>();
  const categoryOrders = new Map<string, number>();
  let orderPairs = 0; // Σ over customers and categories of x(x − 1)
  let customerPairs = 0; // Σ over customers of n(n − 1)

  function bump(map: Map<string, number>, key: string, by = 1) {
    map.set(key, (map.get(key) ?? 0) + by);
  }

  function add(customer: CustomerCategoryStats) {
    const stats = customer.categories.filter((s) => s.orders > 0);
    if (stats.length === 0) return;
    customers++;
    let customerOrders = 0;
    for (const s of stats) {
      bump(categoryOrders, s.categoryId, s.orders);
      customerOrders += s.orders;
      orderPairs += s.orders * (s.orders - 1);
      bump(buyers, s.categoryId);
      if (Date.parse(s.lastPurchaseAt) >= recentSince) bump(recentBuyers, s.categoryId);
      units += s.units;
      discountedUnits += s.discountedUnits;
      const cu = categoryUnits.get(s.categoryId) ?? { units: 0, discounted: 0 };
      cu.units += s.units;
      cu.discounted += s.discountedUnits;
      categoryUnits.set(s.categoryId, cu);
      if (s.avgUnitPrice > 0) {
        const list = paidPrices.get(s.categoryId) ?? [];
        list.push(s.avgUnitPrice);
        paidPrices.set(s.categoryId, list);
      }
      const firstAt = Date.parse(s.firstPurchaseAt);
      const lastAt = Date.parse(s.lastPurchaseAt);
      // A history with unreadable dates, or starting before 1970 (an order dated year 0), says nothing
      // about how often a category is bought: it is left out of the intervals.
      if (
        s.purchaseDays >= options.minIntervalPurchaseDays &&
        s.purchaseDays >= 2 &&
        firstAt >= 0 &&
        lastAt >= firstAt
      ) {
        const span = (lastAt - firstAt) / dayMs;
        const list = intervals.get(s.categoryId) ?? [];
        list.push(span / (s.purchaseDays - 1));
        intervals.set(s.categoryId, list);
      }
    }
    customerPairs += customerOrders * (customerOrders - 1);
    // "Bought A, later bought B": B's last purchase is after A's first. Only the customer's most
    // ordered categories pair up, so a customer with hundreds of categories costs a bounded amount.
    const paired = [...stats].sort((a, b) => b.orders - a.orders).slice(0, options.maxCategoriesPerCustomerForPairs);
    for (const from of paired) {
      const firstFrom = Date.parse(from.firstPurchaseAt);
      let row = pairs.get(from.categoryId);
      for (const to of paired) {
        if (to.categoryId === from.categoryId || !(Date.parse(to.lastPurchaseAt) > firstFrom)) continue;
        if (!row) {
          row = new Map();
          pairs.set(from.categoryId, row);
        }
        bump(row, to.categoryId);
      }
    }
  }

  function addProductSales(sales: Iterable<ProductSales>) {
    for (const sale of sales) bump(productUnits, sale.productId, sale.units);
  }

  function build(): PopulationStats {
    const allIntervals = [...intervals.values()].flat();
    const overallIntervalDays = allIntervals.length > 0 ? medianOf(allIntervals) : options.fallbackIntervalDays;
    const totalBuyers = [...buyers.values()].reduce((a, b) => a + b, 0);
    const totalRecent = [...recentBuyers.values()].reduce((a, b) => a + b, 0);
    const baseRecentRatio = totalBuyers > 0 ? totalRecent / totalBuyers : 0;

    const catalogPrices = new Map<string, number[]>();
    for (const product of catalog) {
      if (!product.active) continue;
      const list = catalogPrices.get(product.categoryId) ?? [];
      list.push(product.salePrice ?? product.listPrice);
      catalogPrices.set(product.categoryId, list);
    }

    const categoryIds = new Set([...buyers.keys(), ...catalogPrices.keys()]);
    const categories = new Map<string, CategoryPopulation>();
    for (const categoryId of categoryIds) {
      const count = buyers.get(categoryId) ?? 0;
      const recent = recentBuyers.get(categoryId) ?? 0;
      const measured = intervals.get(categoryId) ?? [];
      const useOwn = measured.length >= options.minIntervalSamples;
      const prices = (catalogPrices.get(categoryId) ?? paidPrices.get(categoryId) ?? []).sort((a, b) => a - b);
      const cu = categoryUnits.get(categoryId) ?? { units: 0, discounted: 0 };
      categories.set(categoryId, {
        categoryId,
        buyers: count,
        penetration: customers > 0 ? count / customers : 0,
        recentBuyers: recent,
        // Smoothed by pseudo-buyers at the base rate, so a category with two buyers is not "trending".
        trend:
          baseRecentRatio > 0
            ? (recent + options.trendPseudoBuyers * baseRecentRatio) /
              (count + options.trendPseudoBuyers) /
              baseRecentRatio
            : 1,
        repurchaseIntervalDays: useOwn ? medianOf(measured) : overallIntervalDays,
        intervalSamples: useOwn ? measured.length : 0,
        priceQuantiles: prices.length > 0 ? options.priceQuantiles.map((p) => quantileSorted(prices, p)) : [],
        units: cu.units,
        discountedUnits: cu.discounted,
      });
    }

    const complements = new Map<string, Complement[]>();
    for (const [from, row] of pairs) {
      const fromBuyers = buyers.get(from) ?? 0;
      const list: Complement[] = [];
      for (const [to, support] of row) {
        if (support < options.minPairSupport) continue;
        const base = (buyers.get(to) ?? 0) / customers;
        const lift = support / fromBuyers / base;
        if (lift >= options.minLift) list.push({ categoryId: to, lift, support });
      }
      list.sort((a, b) => b.lift - a.lift || b.support - a.support || a.categoryId.localeCompare(b.categoryId));
      if (list.length > 0) complements.set(from, list.slice(0, options.maxComplementsPerCategory));
    }

    return {
      fittedAt: now.toISOString(),
      customers,
      // Records of ids, every key its own (worker/core/records.ts), read with `own`.
      categories: Object.fromEntries(categories),
      complements: Object.fromEntries(complements),
      discountedShare: units > 0 ? discountedUnits / units : 0,
      overallIntervalDays,
      quantileProbabilities: [...options.priceQuantiles],
      tasteConcentration: tasteConcentrationOf(orderPairs, customerPairs, categoryOrders, options),
      productUnits: Object.fromEntries(productUnits),
    };
  }

  return { add, addProductSales, build };
}

/**
 * Method-of-moments Dirichlet precision. If each customer's category mix p ~ Dirichlet(κπ) and their
 * n orders are drawn from p, then E[Σ_c x_c(x_c − 1)] = n(n − 1)·S with S = (κ·Σπ² + 1)/(κ + 1).
 * Pooling customers gives Ŝ = Σ x(x − 1) / Σ n(n − 1), hence κ = (1 − Ŝ)/(Ŝ − Σπ²). Ŝ at or below
 * Σπ² means customers look like random draws from the population mix: κ is then the maximum.
 */
export function tasteConcentrationOf(
  orderPairs: number,
  customerPairs: number,
  categoryOrders: ReadonlyMap<string, number>,
  options: Pick<PopulationOptions, "minTasteConcentration" | "maxTasteConcentration">,
): number | null {
  if (!(customerPairs > 0)) return null;
  const totalOrders = [...categoryOrders.values()].reduce((a, b) => a + b, 0);
  let sumSquares = 0;
  for (const orders of categoryOrders.values()) sumSquares += (orders / totalOrders) ** 2;
  const pooled = orderPairs / customerPairs;
  if (pooled <= sumSquares) return options.maxTasteConcentration;
  const kappa = (1 - pooled) / (pooled - sumSquares);
  return Math.min(options.maxTasteConcentration, Math.max(options.minTasteConcentration, kappa));
}

/** Builds the population statistics from every customer's category stats and the catalog in one call. */
export function buildPopulation(
  customers: Iterable<CustomerCategoryStats>,
  catalog: readonly Product[],
  now: Date,
  options: PopulationOptions = defaultRankingOptions.population,
  productSales: Iterable<ProductSales> = [],
): PopulationStats {
  const builder = createPopulationBuilder(now, catalog, options);
  for (const customer of customers) builder.add(customer);
  builder.addProductSales(productSales);
  return builder.build();
}

/** Where `price` falls in a category's price distribution, 0–1; undefined when the category has no prices. */
export function pricePercentile(population: PopulationStats, categoryId: string, price: number): number | undefined {
  const quantiles = own(population.categories, categoryId)?.priceQuantiles ?? [];
  const probabilities = population.quantileProbabilities;
  if (quantiles.length === 0 || quantiles.length !== probabilities.length) return undefined;
  if (price <= quantiles[0]!) return probabilities[0]!;
  for (let i = 1; i < quantiles.length; i++) {
    const high = quantiles[i]!;
    if (price <= high) {
      const low = quantiles[i - 1]!;
      const pLow = probabilities[i - 1]!;
      const pHigh = probabilities[i]!;
      return high > low ? pLow + ((price - low) / (high - low)) * (pHigh - pLow) : pHigh;
    }
  }
  return probabilities[probabilities.length - 1]!;
}
