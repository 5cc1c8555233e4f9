// Placement context for one shelf: ids the page already shows (excluded), the product page's product
// (never shown; what is bought with it is favoured, in the shopper's price band) and the "buy again"
// shelf (the shopper's due-now categories and the items they usually buy there). Plain functions of
// plain data: the co-purchase rows and usual items are loaded by the route.

import { currentPrice, rankedItemOf, shopperPricePositions } from "./items.ts";
import { defaultRankingOptions, type RankingOptions } from "./options.ts";
import { type PopulationStats, pricePercentile } from "./population.ts";
import type { CategoryStat, Product, RankedCategory, RankedItem } from "./types.ts";

/** Placement names the ranking treats specially; any other valid name gets the general shelf. */
export const productPlacement = "product";
export const buyAgainPlacement = "buy-again";

export interface PlacementContext {
  /** The shelf's name (`home`, `product`, `cart`, `buy-again` …), or null. */
  placement: string | null;
  /** The product page's product: never shown, and what goes with it is favoured. */
  productId: string | null;
  /** Ids the page already shows (the cart, other shelves): never shown. */
  excludeIds: readonly string[];
}

/** A product bought in the same orders as the page's product (product_pairs), and in how many. */
export interface CoPurchase {
  productId: string;
  orders: number;
}

/** A product the shopper bought, and in how many of their orders. */
export interface UsualProduct {
  productId: string;
  orders: number;
}

/** The ids a shelf in this context must not show: the page's product and the excluded ids. */
export function hiddenIds(context: PlacementContext): Set<string> {
  const hidden = new Set(context.excludeIds);
  if (context.productId) hidden.add(context.productId);
  return hidden;
}

/** Drops hidden products (from a catalog or a ranked item list), keeping order. */
export function withoutHidden<T extends { id: string } | { productId: string }>(
  list: readonly T[],
  hidden: ReadonlySet<string>,
): T[] {
  if (hidden.size === 0) return [...list];
  return list.filter((entry) => !hidden.has("productId" in entry ? entry.productId : entry.id));
}

/** `first`, then `rest` without repeats, capped at `max`. */
export function mergeShelves(first: readonly RankedItem[], rest: readonly RankedItem[], max: number): RankedItem[] {
  const seen = new Set<string>();
  const items: RankedItem[] = [];
  for (const item of [...first, ...rest]) {
    if (items.length >= max) break;
    if (seen.has(item.productId)) continue;
    seen.add(item.productId);
    items.push(item);
  }
  return items;
}

export interface GoesWithInput {
  /** The product page's product. */
  product: Product;
  coPurchases: readonly CoPurchase[];
  /** The catalog without hidden products. */
  catalog: readonly Product[];
  population: PopulationStats;
  /** The shopper's category stats (their price band); empty for anonymous and held-out shoppers. */
  categoryStats: readonly CategoryStat[];
  /** Product ids the shopper bought recently: not offered again here. */
  recentlyBought?: ReadonlySet<string>;
}

/**
 * Products bought with the page's product, best first: score = orders together × price fit, where the
 * fit is exp(−(Δpercentile / priceBandWidth)²) around the shopper's usual price position in the
 * item's category (their overall position, else the page product's own position in its category).
 */
export function goesWith(input: GoesWithInput, options: RankingOptions = defaultRankingOptions): RankedItem[] {
  const { product, population } = input;
  const byId = new Map(input.catalog.map((p) => [p.id, p]));
  const positions = shopperPricePositions(input.categoryStats, population);
  const pagePosition = pricePercentile(population, product.categoryId, currentPrice(product));
  const items: RankedItem[] = [];
  for (const pair of input.coPurchases) {
    const other = byId.get(pair.productId);
    if (!other || other.id === product.id || !other.inStock || !other.active) continue;
    if (input.recentlyBought?.has(other.id)) continue;
    const ownPosition = positions.byCategory.get(other.categoryId);
    const target = ownPosition ?? positions.overall ?? pagePosition ?? options.items.defaultPricePercentile;
    const itemPosition = pricePercentile(population, other.categoryId, currentPrice(other));
    let fit = 1;
    if (itemPosition !== undefined) {
      const distance = (itemPosition - target) / options.items.priceBandWidth;
      fit = Math.exp(-distance * distance);
    }
    items.push(
      rankedItemOf(
        other,
        pair.orders * fit,
        [
          { code: "bought_with", productId: product.id, orders: pair.orders },
          {
            code: "price_band",
            shopperPercentile: percent(target),
            itemPercentile: percent(itemPosition ?? target),
            fit: Math.round(fit * 100) / 100,
            fromOwnHistory: ownPosition !== undefined,
          },
        ],
        `Often bought with ${product.title}`,
      ),
    );
  }
  return items.sort((a, b) => b.score - a.score || a.productId.localeCompare(b.productId));
}

export interface BuyAgainInput {
  /** The shopper's ranked categories (rankCategories' output). */
  categories: readonly RankedCategory[];
  usualProducts: readonly UsualProduct[];
  /** The catalog without hidden products. */
  catalog: readonly Product[];
}

/** The shopper's categories that are due now (replenishment), in rank order. */
export function dueCategories(categories: readonly RankedCategory[]): RankedCategory[] {
  return categories.filter((category) => category.reasons.some((reason) => reason.code === "due_now"));
}

/**
 * The "buy again" shelf: the items the shopper usually buys in their due-now categories (most orders
 * first), varied across categories by round-robin, at most `maxPerCategory` from one category.
 */
export function buyAgain(input: BuyAgainInput, options: RankingOptions = defaultRankingOptions): RankedItem[] {
  const due = dueCategories(input.categories);
  const byId = new Map(input.catalog.map((p) => [p.id, p]));
  const orders = [...input.usualProducts].sort((a, b) => b.orders - a.orders || a.productId.localeCompare(b.productId));
  const queues = due.map((category) => {
    const queue: RankedItem[] = [];
    for (const usual of orders) {
      const product = byId.get(usual.productId);
      if (!product || product.categoryId !== category.categoryId || !product.inStock || !product.active) continue;
      if (queue.length >= options.items.maxPerCategory) break;
      queue.push(
        rankedItemOf(
          product,
          category.score * usual.orders,
          [
            { code: "buy_again", categoryId: category.categoryId, timesBought: usual.orders },
            ...category.reasons.filter((reason) => reason.code === "due_now"),
          ],
          category.sentence,
        ),
      );
    }
    return queue;
  });
  const items: RankedItem[] = [];
  for (let round = 0; items.length < options.items.maxItems; round++) {
    let took = false;
    for (const queue of queues) {
      const item = queue[round];
      if (!item || items.length >= options.items.maxItems) continue;
      items.push(item);
      took = true;
    }
    if (!took) break;
  }
  return items;
}

function percent(value: number): number {
  return Math.round(value * 100);
}
