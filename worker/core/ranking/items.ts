// Items for the shelf, chosen from the shopper's top categories: in stock and active, near their price
// band in that category, not just bought, varied across categories (round-robin), with discounted
// items hidden from full-price shoppers and favoured for deal seekers unless a policy or rule says
// otherwise. It does not rank categories (categories.ts) or apply boost/bury/pin (rules/apply.ts).

import { discountSensitivityOf } from "../models/preferences.ts";
import { own } from "../records.ts";
import type { DiscountSensitivity } from "../vocabulary.ts";
import { type DiscountPolicy, defaultRankingOptions, type ItemOptions, type RankingOptions } from "./options.ts";
import { type PopulationStats, pricePercentile } from "./population.ts";
import type { CategoryStat, CustomerSummary, Product, RankedCategory, RankedItem, Reason } from "./types.ts";

/** A merchandiser switch for discounted items, scoped to everything ("*"), a category or a product. */
export interface DiscountOverride {
  scope: "all" | "category" | "product";
  targetId: string;
  mode: "allow" | "hide";
  ruleId: string;
}

export interface RecentPurchase {
  productId: string;
  purchasedAt: string;
}

export interface ItemSelectionInput {
  /** Ranked categories, best first (rankCategories' output). */
  categories: readonly RankedCategory[];
  catalog: readonly Product[];
  population: PopulationStats;
  /** The shopper's category stats, for their price band per category. */
  categoryStats: readonly CategoryStat[];
  discountSensitivity: DiscountSensitivity;
  /** Product-level recent purchases, when the caller has them: a product bought within its category's interval is left out. */
  recentPurchases?: readonly RecentPurchase[];
  discountOverrides?: readonly DiscountOverride[];
  now: Date;
}

const dayMs = 86_400_000;

/** The only fields the sale-price rule reads, so any product-shaped value (a demo page's row) can use it. */
type Priced = Pick<Product, "listPrice" | "salePrice">;

/** The price a shopper pays today. */
export function currentPrice(product: Priced): number {
  return isOnSale(product) ? product.salePrice! : product.listPrice;
}

export function isOnSale(product: Priced): boolean {
  return product.salePrice !== null && product.salePrice < product.listPrice;
}

/** A catalog product as a ranked item: what the shopper pays today, the list price, and why. */
export function rankedItemOf(product: Product, score: number, reasons: Reason[], sentence: string): RankedItem {
  return {
    productId: product.id,
    categoryId: product.categoryId,
    title: product.title,
    url: product.url,
    imageUrl: product.imageUrl,
    price: currentPrice(product),
    listPrice: product.listPrice,
    onSale: isOnSale(product),
    score,
    reasons,
    sentence,
  };
}

/** Full-price shopper, mixed or deal seeker, from the summary against the population's discounted share. */
export function discountSensitivityFor(
  summary: Pick<CustomerSummary, "units" | "discountedUnits">,
  population: PopulationStats,
  options: RankingOptions = defaultRankingOptions,
): DiscountSensitivity {
  const units = Math.max(0, summary.units);
  const discountedUnits = Math.min(units, Math.max(0, summary.discountedUnits));
  return discountSensitivityOf({ units, discountedUnits }, population.discountedShare, options.discount).sensitivity;
}

/** How discounted items are treated for this product: the most specific override wins, then the policy. */
export function discountTreatment(
  product: Product,
  sensitivity: DiscountSensitivity,
  policy: DiscountPolicy,
  overrides: readonly DiscountOverride[] = [],
): { mode: "allow" | "hide" | "favour"; ruleId?: string } {
  const specificity = { product: 2, category: 1, all: 0 } as const;
  let chosen: DiscountOverride | undefined;
  for (const override of overrides) {
    const applies =
      override.scope === "all" ||
      (override.scope === "category" && override.targetId === product.categoryId) ||
      (override.scope === "product" && override.targetId === product.id);
    if (applies && (!chosen || specificity[override.scope] >= specificity[chosen.scope])) chosen = override;
  }
  // "allow" from a rule lifts the full-price hiding but still favours sales for a deal seeker.
  if (chosen?.mode === "hide") return { mode: "hide", ruleId: chosen.ruleId };
  const auto =
    policy !== "auto"
      ? policy
      : sensitivity === "full_price"
        ? "hide"
        : sensitivity === "deal_seeker"
          ? "favour"
          : "allow";
  if (chosen?.mode === "allow") return { mode: auto === "favour" ? "favour" : "allow", ruleId: chosen.ruleId };
  return { mode: auto };
}

/** The shopper's typical price position (0–1) in each category they bought, and their average position. */
export function shopperPricePositions(
  stats: readonly CategoryStat[],
  population: PopulationStats,
): { byCategory: Map<string, number>; overall: number | undefined } {
  const byCategory = new Map<string, number>();
  let weighted = 0;
  let units = 0;
  for (const stat of stats) {
    if (!(stat.avgUnitPrice > 0)) continue;
    const position = pricePercentile(population, stat.categoryId, stat.avgUnitPrice);
    if (position === undefined) continue;
    byCategory.set(stat.categoryId, position);
    weighted += position * stat.units;
    units += stat.units;
  }
  return { byCategory, overall: units > 0 ? weighted / units : undefined };
}

function percent(value: number): number {
  return Math.round(value * 100);
}

const indexedCatalogs = new WeakMap<readonly Product[], ReadonlyMap<string, Product>>();

/** A catalog's products by id, remembered for the catalog array like productsByCategory. */
export function productIndex(catalog: readonly Product[]): ReadonlyMap<string, Product> {
  const known = indexedCatalogs.get(catalog);
  if (known) return known;
  const index = new Map(catalog.map((product) => [product.id, product]));
  indexedCatalogs.set(catalog, index);
  return index;
}

const groupedCatalogs = new WeakMap<readonly Product[], ReadonlyMap<string, readonly Product[]>>();

/**
 * A catalog's products by category, in catalog order. Remembered for the catalog array itself (the
 * worker keeps one per isolate for a while), so requests in between do not group it again; a new or
 * filtered array is grouped afresh.
 */
export function productsByCategory(catalog: readonly Product[]): ReadonlyMap<string, readonly Product[]> {
  const known = groupedCatalogs.get(catalog);
  if (known) return known;
  const grouped = new Map<string, Product[]>();
  for (const product of catalog) {
    const list = grouped.get(product.categoryId);
    if (list) list.push(product);
    else grouped.set(product.categoryId, [product]);
  }
  groupedCatalogs.set(catalog, grouped);
  return grouped;
}

/** A product's score for one shopper and category, with what the item's reasons are built from. */
interface Appraisal {
  product: Product;
  productId: string;
  score: number;
  onSale: boolean;
  treatment: ReturnType<typeof discountTreatment>;
  price: number;
  itemPosition: number | undefined;
  fit: number | undefined;
}

/** The candidates' order: higher score first, then product id. */
function ranksBefore(a: { score: number; productId: string }, b: { score: number; productId: string }): boolean {
  return a.score > b.score || (a.score === b.score && a.productId.localeCompare(b.productId) < 0);
}

/** Picks items from the top categories, varied across them, each with price, reasons and a sentence. */
export function selectItems(input: ItemSelectionInput, options: RankingOptions = defaultRankingOptions): RankedItem[] {
  const itemOptions = options.items;
  const { population, now } = input;
  const positions = shopperPricePositions(input.categoryStats, population);
  const recentCutoff = new Map<string, number>();
  for (const purchase of input.recentPurchases ?? []) {
    const at = Date.parse(purchase.purchasedAt);
    recentCutoff.set(purchase.productId, Math.max(at, recentCutoff.get(purchase.productId) ?? -Infinity));
  }
  const byCategory = productsByCategory(input.catalog);

  /**
   * One category's candidates, best first; no shelf takes more than maxItems from one. Every product is
   * scored, but only the best maxItems are kept (in order as they come) and made into items with
   * reasons and a sentence: a category can hold thousands of products and a shelf shows a few.
   */
  const candidatesOf = (category: RankedCategory): RankedItem[] => {
    const intervalDays =
      own(population.categories, category.categoryId)?.repurchaseIntervalDays ?? population.overallIntervalDays;
    const ownPosition = positions.byCategory.get(category.categoryId);
    const targetPosition = ownPosition ?? positions.overall ?? itemOptions.defaultPricePercentile;
    const kept: Appraisal[] = [];
    for (const product of byCategory.get(category.categoryId) ?? []) {
      const appraisal = appraise(product, category.score, targetPosition, intervalDays);
      if (appraisal === undefined) continue;
      // Insert in (score descending, id ascending) order; past maxItems the last one drops.
      let at = kept.length;
      while (at > 0 && ranksBefore(appraisal, kept[at - 1] as Appraisal)) at--;
      if (at >= itemOptions.maxItems) continue;
      kept.splice(at, 0, appraisal);
      if (kept.length > itemOptions.maxItems) kept.pop();
    }
    return kept.map((appraisal) => itemFrom(appraisal, category, targetPosition, ownPosition !== undefined));
  };

  /** A product's score and what it came from; undefined when it cannot be offered now. */
  const appraise = (
    product: Product,
    categoryScore: number,
    targetPosition: number,
    intervalDays: number,
  ): Appraisal | undefined => {
    if (!product.inStock || !product.active) return undefined;
    const boughtAt = recentCutoff.get(product.id);
    if (
      boughtAt !== undefined &&
      (now.getTime() - boughtAt) / dayMs < intervalDays * itemOptions.recentProductWindowShare
    ) {
      return undefined;
    }
    const onSale = isOnSale(product);
    const treatment = discountTreatment(
      product,
      input.discountSensitivity,
      itemOptions.discountPolicy,
      input.discountOverrides,
    );
    if (onSale && treatment.mode === "hide") return undefined;
    const price = currentPrice(product);
    let score = categoryScore;
    let fit: number | undefined;
    const itemPosition = pricePercentile(population, product.categoryId, price);
    if (itemPosition !== undefined) {
      const distance = (itemPosition - targetPosition) / itemOptions.priceBandWidth;
      fit = Math.exp(-distance * distance);
      score *= fit;
    }
    if (onSale && treatment.mode === "favour") score *= itemOptions.dealSeekerDiscountBoost;
    score *= 1 + itemOptions.productPopularityWeight * Math.log1p(own(population.productUnits, product.id) ?? 0);
    return { product, productId: product.id, score, onSale, treatment, price, itemPosition, fit };
  };

  /** The shelf item for a kept appraisal: its reasons and sentence. */
  const itemFrom = (
    { product, score, onSale, treatment, price, itemPosition, fit }: Appraisal,
    category: RankedCategory,
    targetPosition: number,
    fromOwnHistory: boolean,
  ): RankedItem => {
    const reasons: Reason[] = [{ code: "from_category", categoryId: category.categoryId }];
    if (itemPosition !== undefined && fit !== undefined) {
      reasons.push({
        code: "price_band",
        shopperPercentile: percent(targetPosition),
        itemPercentile: percent(itemPosition),
        fit: Math.round(fit * 100) / 100,
        fromOwnHistory,
      });
    }
    let saleNote = "";
    if (onSale) {
      const discountPercent = percent(1 - price / product.listPrice);
      if (treatment.mode === "favour") saleNote = `, now ${discountPercent}% off`;
      reasons.push({ code: "on_sale", discountPercent, favoured: treatment.mode === "favour" });
    }
    if (treatment.ruleId)
      reasons.push({ code: "rule", ruleId: treatment.ruleId, action: `${treatment.mode}_discounts` });
    const priceNote =
      itemPosition !== undefined &&
      fromOwnHistory &&
      Math.abs(itemPosition - targetPosition) <= itemOptions.priceBandWidth
        ? "; priced like what you usually pay"
        : "";
    return rankedItemOf(product, score, reasons, `${category.sentence}${priceNote}${saleNote}`);
  };
  return shelfOrder(
    input.categories.length,
    (index) => candidatesOf(input.categories[index] as RankedCategory),
    itemOptions,
  );
}

/**
 * A shelf's items in order from categories in rank order, `categoriesForItems` at a time: within a
 * group in turns (the best of each before the second-best of any, so one category cannot fill the
 * shelf), at most `maxPerCategory` from each; the next group only once a group runs out; and only when
 * every category has run out below that cap, their further items, in turns again. `maxItems` only cuts
 * the order, so the first eight of a longer shelf are the eight-item shelf, and a group's items are
 * computed (`itemsOf`) only when the shelf reaches it.
 */
export function shelfOrder<T>(
  categoryCount: number,
  itemsOf: (index: number) => readonly T[],
  options: Pick<ItemOptions, "maxItems" | "maxPerCategory" | "categoriesForItems">,
): T[] {
  const { maxItems, maxPerCategory } = options;
  const groupSize = Math.max(1, options.categoriesForItems);
  const items: T[] = [];
  const inTurns = (queues: readonly (readonly T[])[], from: number, to: number) => {
    for (let round = from; round < to && items.length < maxItems; round++) {
      let took = false;
      for (const queue of queues) {
        const item = queue[round];
        if (item === undefined) continue;
        items.push(item);
        took = true;
        if (items.length >= maxItems) return;
      }
      if (!took) return;
    }
  };
  const queues: (readonly T[])[] = [];
  for (let start = 0; start < categoryCount && items.length < maxItems; start += groupSize) {
    const group = Array.from({ length: Math.min(groupSize, categoryCount - start) }, (_, k) => itemsOf(start + k));
    queues.push(...group);
    inTurns(group, 0, maxPerCategory);
  }
  if (items.length < maxItems) {
    for (let index = queues.length; index < categoryCount; index++) queues.push(itemsOf(index));
    inTurns(queues, maxPerCategory, Number.POSITIVE_INFINITY);
  }
  return items;
}
