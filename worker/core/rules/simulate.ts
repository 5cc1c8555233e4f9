// What a draft rule would do to a sample of shoppers' shelves: given each shopper's shelf without and
// with the rule (computed by recommend()), the share whose shelf changes, how far the rule's target
// moves, how often it enters or leaves the shelf, and which categories gain or lose item slots.
// It computes no shelf and loads nothing: the route builds the pairs and calls simulateRule.

import { roundTo } from "../math/round.ts";
import type { RuleTargetType } from "./types.ts";

/** The parts of a shelf the comparison reads, in display order. */
export interface ShelfOutline {
  categories: readonly { categoryId: string }[];
  items: readonly { productId: string; categoryId: string }[];
}

export interface ShelfPair {
  before: ShelfOutline;
  after: ShelfOutline;
}

export interface RuleTarget {
  targetType: RuleTargetType;
  /** A category or product id; "*" (every item) has no single position to follow. */
  targetId: string;
}

export interface CategoryExposure {
  categoryId: string;
  /** Item slots the category fills across all sampled shelves, without and with the rule. */
  before: number;
  after: number;
  change: number;
}

export interface RuleSimulation {
  shoppers: number;
  /** Shoppers whose shelf (items or categories, or their order) differs with the rule. */
  affected: number;
  affectedShare: number;
  /** Shoppers with the target on at least one of their two shelves: the base of meanRankChange. */
  targetShoppers: number;
  /**
   * Mean of (rank before − rank after) over targetShoppers, in positions (1 is the top; off the shelf
   * counts as one past its end): positive means the target moves up. Null when no shopper sees the
   * target or the target is every item. Categories are ranked in the category list, products in the items.
   */
  meanRankChange: number | null;
  /** Shares of all sampled shoppers for whom the target enters (is on only the after shelf) or leaves. */
  enteredShare: number;
  leftShare: number;
  /** Categories whose item slots change, the largest loss first. */
  categoryExposure: CategoryExposure[];
  /** The ids in categoryExposure that lose slots, the largest loss first. */
  categoriesLosingExposure: string[];
}

/** The same categories and items in the same order. */
export function sameShelf(a: ShelfOutline, b: ShelfOutline): boolean {
  const key = (shelf: ShelfOutline) =>
    `${shelf.categories.map((c) => c.categoryId).join("\u0000")}\u0001${shelf.items.map((i) => i.productId).join("\u0000")}`;
  return key(a) === key(b);
}

/** 1-based position of the target on the shelf, or null when it is not there. */
function rankOf(shelf: ShelfOutline, target: RuleTarget): number | null {
  const index =
    target.targetType === "category"
      ? shelf.categories.findIndex((c) => c.categoryId === target.targetId)
      : shelf.items.findIndex((i) => i.productId === target.targetId);
  return index >= 0 ? index + 1 : null;
}

function lengthOf(shelf: ShelfOutline, target: RuleTarget): number {
  return target.targetType === "category" ? shelf.categories.length : shelf.items.length;
}

export function simulateRule(pairs: readonly ShelfPair[], target: RuleTarget): RuleSimulation {
  const followable = target.targetId !== "*";
  let affected = 0;
  let targetShoppers = 0;
  let rankChangeSum = 0;
  let entered = 0;
  let left = 0;
  const slots = new Map<string, { before: number; after: number }>();
  const count = (categoryId: string, side: "before" | "after") => {
    const entry = slots.get(categoryId) ?? { before: 0, after: 0 };
    entry[side] += 1;
    slots.set(categoryId, entry);
  };

  for (const { before, after } of pairs) {
    if (!sameShelf(before, after)) affected += 1;
    for (const item of before.items) count(item.categoryId, "before");
    for (const item of after.items) count(item.categoryId, "after");
    if (!followable) continue;
    const from = rankOf(before, target);
    const to = rankOf(after, target);
    if (from === null && to === null) continue;
    targetShoppers += 1;
    rankChangeSum += (from ?? lengthOf(before, target) + 1) - (to ?? lengthOf(after, target) + 1);
    if (from === null) entered += 1;
    if (to === null) left += 1;
  }

  const shoppers = pairs.length;
  const share = (n: number) => (shoppers > 0 ? roundTo(n / shoppers, 4) : 0);
  const categoryExposure = [...slots.entries()]
    .map(([categoryId, { before, after }]) => ({ categoryId, before, after, change: after - before }))
    .filter((entry) => entry.change !== 0)
    .sort((a, b) => a.change - b.change || a.categoryId.localeCompare(b.categoryId));
  return {
    shoppers,
    affected,
    affectedShare: share(affected),
    targetShoppers,
    meanRankChange: followable && targetShoppers > 0 ? roundTo(rankChangeSum / targetShoppers, 3) : null,
    enteredShare: share(entered),
    leftShare: share(left),
    categoryExposure,
    categoriesLosingExposure: categoryExposure.filter((entry) => entry.change < 0).map((entry) => entry.categoryId),
  };
}
