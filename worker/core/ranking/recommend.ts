// One call for the recommendations route: holdout arm, category ranking, item selection and rules,
// in that order, from data the route has already loaded (the rules' exclusions also before item
// selection, so a shelf that loses an item fills with the next). Unknown shoppers and the holdout arm get the
// popular shelf (rules still apply). It loads nothing and reads no clock: `now` is passed in.

import {
  discountOverridesFrom,
  type Exclusions,
  exclusionsFrom,
  itemDepthFor,
  liveRules,
  steerCategories,
  steerItems,
} from "../rules/apply.ts";
import { type Arm, holdoutArm } from "../rules/holdout.ts";
import type { Rule, ShopperSegment } from "../rules/types.ts";
import { rankCategories } from "./categories.ts";
import { discountSensitivityFor, productIndex, productsByCategory, type RecentPurchase, selectItems } from "./items.ts";
import { defaultRankingOptions, type RankingOptions } from "./options.ts";
import {
  buyAgain,
  buyAgainPlacement,
  type CoPurchase,
  dueCategories,
  goesWith,
  hiddenIds,
  mergeShelves,
  type PlacementContext,
  type UsualProduct,
  withoutHidden,
} from "./placements.ts";
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
  /** The retailer's time zone, for the reasons' "yesterday" (rankCategories); UTC when absent. */
  timeZone?: string;
  /**
   * Where the shelf is shown (placements.ts). Hidden ids never appear; with a page product, its
   * co-purchases come first; `buy-again` shows the due-now categories' usual items (empty when none
   * is due or the shopper is anonymous; the holdout arm gets the popular shelf, or nothing when the
   * personalized shelf would be empty).
   */
  placement?: PlacementContext & { coPurchases?: readonly CoPurchase[]; usualProducts?: readonly UsualProduct[] };
}

export interface Recommendations {
  arm: Arm | "anonymous";
  categories: RankedCategory[];
  items: RankedItem[];
  segment: ShopperSegment;
  /** Live rules that changed the shelf, or (exclusions) took something out of what it is chosen from. */
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

  const placement = input.placement;
  // A buy-again shelf is for shoppers with something due; a personalized one with nothing due is empty
  // and so reports no events. A held-out shopper gets the popular shelf only when the personalized one
  // would have shown something: the same shoppers are counted in both arms, not every held-out shopper
  // against only the due personalized ones.
  if (placement?.placement === buyAgainPlacement && arm === "holdout") {
    const personalized = recommend(input, { ...options, holdout: { ...options.holdout, share: 0 } });
    if (personalized.items.length === 0) return { arm, categories: [], items: [], segment, appliedRuleIds: [] };
  }
  const hidden = placement ? hiddenIds(placement) : new Set<string>();
  const catalog = hidden.size > 0 ? withoutHidden(input.catalog, hidden) : input.catalog;
  // Rules act before items are chosen where they decide what is chosen from: excluded products (and,
  // under hide-discounts, products on sale) leave the catalog, and the category list is steered
  // (exclude, boost, bury, pin), so a shelf that loses an item fills with the next best and a boosted
  // category brings its items. An exclusion counts as applied when it takes something out.
  // buy-again shows what the shopper buys and is due for: a pin, which places what the ranking did not
  // choose, does not apply there (exclusions, boosts, buries and hidden discounts do).
  const replenishing = placement?.placement === buyAgainPlacement && arm !== "holdout";
  const live = liveRules(input.rules, context).filter((rule) => !(replenishing && rule.action === "pin"));
  const exclusions = exclusionsFrom(live);
  const applied = new Set<string>();
  let sellable = catalog;
  if (exclusions.any) {
    const remaining = remainingCatalog(catalog, exclusions);
    sellable = remaining.products;
    for (const id of remaining.excludedBy) applied.add(id);
  }
  // A product's boost, bury or pin reorders the items after they are chosen: choose deep enough that
  // the first items of a shelf do not depend on its size (itemDepthFor says how deep).
  const maxItems = options.items.maxItems;
  const depth = itemDepthFor(live, maxItems, options, (rule) => {
    // Whether the product can be on this shelf (a pin also when excluded), read from the catalog's
    // remembered index rather than indexing a filtered copy.
    const product = productIndex(input.catalog).get(rule.targetId);
    if (!product?.inStock || !product.active || hidden.has(product.id)) return false;
    return !(rule.action === "pin" ? exclusions.hiddenBy(product) : exclusions.ruleFor(product));
  });
  const chosen: RankingOptions =
    depth === maxItems
      ? options
      : {
          ...options,
          items: { ...options.items, maxItems: depth },
          popular: { ...options.popular, maxItems: Math.max(options.popular.maxItems, depth) },
        };
  const steered = (list: readonly RankedCategory[]) => {
    // A pinned category must have something this shelf may show: in stock, and not excluded, hidden or
    // on the page already (`sellable` is the catalog without those, the pinned category's exclusion lifted).
    const result = steerCategories(list, live, options, (categoryId) =>
      (productsByCategory(sellable).get(categoryId) ?? []).some((product) => product.active && product.inStock),
    );
    for (const id of result.appliedRuleIds) applied.add(id);
    return result.list;
  };
  const ranked = () =>
    rankCategories(
      {
        categories: input.categoryStats,
        browse: input.browse,
        population: input.population,
        now: input.now,
        timeZone: input.timeZone,
        categoryNames: input.categoryNames,
        trendingAbove: options.popular.trendingAbove,
      },
      options.categories,
    );

  let categories: RankedCategory[];
  let items: RankedItem[];
  if (replenishing) {
    // Replenishment is personal: nothing is due for an anonymous visitor.
    categories = arm === "personalized" ? steered(dueCategories(ranked())) : [];
    items = buyAgain({ categories, usualProducts: placement.usualProducts ?? [], catalog: sellable }, chosen);
  } else {
    if (arm === "personalized") {
      categories = steered(ranked());
      items = selectItems(
        {
          categories,
          catalog: sellable,
          population: input.population,
          categoryStats: input.categoryStats,
          discountSensitivity: segment.discountSensitivity ?? "mixed",
          recentPurchases: input.recentPurchases,
          discountOverrides: discountOverridesFrom(input.rules, context),
          now: input.now,
        },
        chosen,
      );
    } else {
      ({ categories, items } = popularShelf(input.population, sellable, chosen, input.categoryNames, steered));
    }
    const product = placement?.productId ? input.catalog.find((p) => p.id === placement.productId) : undefined;
    if (product && placement?.coPurchases?.length) {
      // Co-purchase is the same for everyone; the price band is the shopper's own only when personalized.
      // Co-purchases are not chosen by category, so a category pin lifts no exclusion from them.
      const strict = exclusionsFrom(live, { liftPinned: false });
      const together = goesWith(
        {
          product,
          coPurchases: placement.coPurchases,
          catalog: strict.key === exclusions.key ? sellable : remainingCatalog(catalog, strict).products,
          population: input.population,
          categoryStats: arm === "personalized" ? input.categoryStats : [],
          recentlyBought:
            arm === "personalized" ? new Set((input.recentPurchases ?? []).map((p) => p.productId)) : undefined,
        },
        chosen,
      );
      items = mergeShelves(together, items, Math.max(chosen.items.maxItems, chosen.popular.maxItems));
    }
  }
  // The whole catalog for pins: a pin is the one rule that can place an excluded product.
  const steeredItems = steerItems(items, live, catalog, maxItems, options, { categoriesSteered: true });
  for (const id of steeredItems.appliedRuleIds) applied.add(id);
  // A pin names a product, never a hidden one: what the page shows (or is) stays off this shelf.
  return {
    arm,
    categories,
    items: withoutHidden(steeredItems.list, hidden),
    segment,
    appliedRuleIds: [...applied],
  };
}

const remainingCatalogs = new WeakMap<readonly Product[], Map<string, RemainingCatalog>>();

interface RemainingCatalog {
  products: readonly Product[];
  /** The rules that took something out. */
  excludedBy: string[];
}

/**
 * The catalog without what the exclusions take out. Remembered for the catalog array and the rules
 * (they depend on nothing else), a few sets per catalog, so the filtered array is the same object
 * request after request and its grouping by category (productsByCategory) is remembered too.
 */
function remainingCatalog(catalog: readonly Product[], exclusions: Exclusions): RemainingCatalog {
  const known = remainingCatalogs.get(catalog) ?? new Map<string, RemainingCatalog>();
  remainingCatalogs.set(catalog, known);
  const hit = known.get(exclusions.key);
  if (hit) return hit;
  const excludedBy = new Set<string>();
  const products = catalog.filter((product) => {
    const rule = exclusions.ruleFor(product);
    if (rule) excludedBy.add(rule.id);
    return !rule;
  });
  if (known.size >= 16) known.clear();
  const remaining = { products, excludedBy: [...excludedBy] };
  known.set(exclusions.key, remaining);
  return remaining;
}
