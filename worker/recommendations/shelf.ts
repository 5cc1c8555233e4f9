// The shelf one shopper gets: the loads and the core call GET /v1/recommendations makes, shared with the
// console's "what this shopper sees now" (GET /v1/customers/:id/shelf), so both show the same items and
// reasons. Nothing here writes: issuing a recommendation id, caching and rate limits stay in the route.
import { defaultRankingOptions, rankingOptionsWith } from "../core/ranking/options.ts";
import { buyAgainPlacement } from "../core/ranking/placements.ts";
import { buildPopulation } from "../core/ranking/population.ts";
import { type Recommendations, recommend } from "../core/ranking/recommend.ts";
import { own } from "../core/records.ts";
import type { Rule } from "../core/rules/types.ts";
import type { Db } from "../env.ts";
import { type CurrentModels, currentModels } from "../models/models.repo.ts";
import { liveRulesFor } from "../rules/rules.repo.ts";
import { cachedCatalog, coPurchasesOf, loadShopper, type ShopperData } from "./recommendations.repo.ts";
import { defaultShelfCategories, maxShelfItems } from "./recommendations.schemas.ts";
import { shelfSegmentOf } from "./segment.ts";

/** What the storefront asked for: the shelf's size and the page it is on. */
export interface ShelfRequest {
  limit: number;
  categories: number;
  placement: string | null;
  productId: string | null;
  excludeIds: string[];
  /** The retailer's time zone (RETAILER_TIME_ZONE), for the reasons' "yesterday". */
  timeZone: string;
}

export interface ShelfData {
  models: CurrentModels;
  catalog: Awaited<ReturnType<typeof cachedCatalog>>;
  rules: Rule[];
  /** Null without a signed-in account. */
  shopper: ShopperData | null;
  coPurchases: { productId: string; orders: number }[];
}

/** Reads a signed-in account's shopper data in one round trip: from D1, or, in a customer shard, its own SQLite. */
export type ShopperReader = (accountKey: string, now: Date, read: { usualProducts?: boolean }) => Promise<ShopperData>;

/** The shopper read on the one D1 database. */
const d1Shopper =
  (db: Db): ShopperReader =>
  (accountKey, now, read) =>
    loadShopper(db, accountKey, now, read);

/**
 * Everything the shelf is computed from: models, catalog and rules from isolate caches (D1 behind
 * them), the shopper in one round trip (`readShopper`: D1, or the shard's own data when a customer
 * shard computes the shelf), all in parallel.
 */
export async function loadShelfData(
  db: Db,
  now: Date,
  accountKey: string | null,
  request: ShelfRequest,
  readShopper: ShopperReader = d1Shopper(db),
): Promise<ShelfData> {
  const [models, catalog, rules, shopper, coPurchases] = await Promise.all([
    currentModels(db, now),
    cachedCatalog(db, now),
    liveRulesFor(db, now),
    accountKey ? readShopper(accountKey, now, { usualProducts: request.placement === buyAgainPlacement }) : null,
    request.productId ? coPurchasesOf(db, request.productId) : [],
  ]);
  return { models, catalog, rules, shopper, coPurchases };
}

/** HOLDOUT_SHARE as a number in [0, 1]; a missing or malformed setting keeps the default. */
export function holdoutShareOf(setting: string | undefined): number | undefined {
  if (setting === undefined || setting.trim() === "") return undefined;
  const share = Number(setting);
  if (Number.isFinite(share) && share >= 0 && share <= 1) return share;
  console.warn(JSON.stringify({ warning: "HOLDOUT_SHARE must be a number from 0 to 1; using the default", setting }));
  return undefined;
}

/** Whether the shelf is personal: a signed-in account that belongs to a customer with a history. */
export const knownShopper = (data: ShelfData) => !!data.shopper?.customerId && !!data.shopper.summary;

/**
 * The ranking options for a shelf of this size. Categories are ranked as far as the longest shelf
 * needs (48 items at three each), whatever this shelf's size, and supply items a group at a time
 * (shelfOrder): the categories asked for, at most six, then the next group only when those run out.
 * So `limit` only cuts the order: the first eight items of a 16-item answer (the widget asks once for
 * a page's shelves) are the 8-item shelf. The console's rule preview ranks with the same options.
 */
export function shelfOptions(request: Pick<ShelfRequest, "limit" | "categories">, holdoutShare: number | undefined) {
  const defaults = defaultRankingOptions;
  const perCategory = Math.min(defaults.items.maxPerCategory, defaults.popular.maxPerCategory);
  const ranked = Math.max(request.categories, Math.ceil(maxShelfItems / perCategory));
  const group = Math.min(request.categories || defaultShelfCategories, defaults.items.categoriesForItems);
  return rankingOptionsWith({
    ...(holdoutShare === undefined ? {} : { holdout: { share: holdoutShare } }),
    items: { maxItems: request.limit, categoriesForItems: group },
    popular: { maxItems: request.limit, maxCategories: ranked },
    categories: { maxCategories: ranked },
  });
}

/**
 * The shelf and its public view (everything GET /v1/recommendations answers but the recommendation
 * id). `holdoutShare` is the deployment's HOLDOUT_SHARE, undefined for the default.
 */
export function computeShelf(
  data: ShelfData,
  request: ShelfRequest,
  accountKey: string | null,
  now: Date,
  holdoutShare: number | undefined,
) {
  const options = shelfOptions(request, holdoutShare);
  const { models, catalog, shopper } = data;
  const known = knownShopper(data);
  const population = models.population ?? buildPopulation([], catalog.products, now);
  const segment =
    known && shopper?.summary && models.customer
      ? shelfSegmentOf(shopper.summary, models.customer, now, data.rules)
      : undefined;
  const result: Recommendations = recommend(
    {
      customerId: known ? (shopper?.customerId ?? null) : null,
      holdoutKey: accountKey,
      summary: known ? (shopper?.summary ?? null) : null,
      categoryStats: shopper?.categoryStats ?? [],
      browse: shopper?.browse,
      recentPurchases: shopper?.recentPurchases,
      segment,
      population,
      catalog: catalog.products,
      rules: data.rules,
      categoryNames: catalog.categoryNames,
      now,
      timeZone: request.timeZone,
      placement: {
        placement: request.placement,
        productId: request.productId,
        excludeIds: request.excludeIds,
        coPurchases: data.coPurchases,
        usualProducts: shopper?.usualProducts ?? [],
      },
    },
    options,
  );
  const served = result.items.slice(0, request.limit);
  const view = {
    arm: result.arm,
    customerKnown: known,
    placement: request.placement,
    categories: result.categories.slice(0, request.categories).map((category) => ({
      id: category.categoryId,
      name: own(catalog.categoryNames, category.categoryId) ?? category.categoryId,
      score: Math.round(category.score * 10_000) / 10_000,
      reasons: category.reasons,
      reason: category.sentence,
    })),
    items: served.map((item) => ({
      id: item.productId,
      title: item.title,
      url: item.url,
      imageUrl: item.imageUrl,
      price: item.price,
      listPrice: item.listPrice,
      categoryId: item.categoryId,
      reasons: item.reasons,
      reason: item.sentence,
    })),
  };
  return { known, result, view };
}

/** A computed shelf as the route answers it: the view, the arm it was served in, and the customer it binds. */
export interface ComputedShelf {
  known: boolean;
  arm: ReturnType<typeof computeShelf>["result"]["arm"];
  /** The shopper's customer id; null for an account no customer holds. */
  customerId: string | null;
  view: ReturnType<typeof computeShelf>["view"];
}

/**
 * A signed-in account's whole shelf: loaded (the shopper by `readShopper`, shared state from `shared`'s
 * caches) and computed. A customer shard calls it with its own data as the shopper's store, so a known
 * shopper's shelf is read and ranked in one place (docs/scaling.md, "The sharded store").
 */
export async function accountShelf(
  shared: Db,
  readShopper: ShopperReader,
  accountKey: string,
  now: Date,
  request: ShelfRequest,
  holdoutShare: number | undefined,
): Promise<ComputedShelf> {
  const data = await loadShelfData(shared, now, accountKey, request, readShopper);
  const { known, result, view } = computeShelf(data, request, accountKey, now, holdoutShare);
  return { known, arm: result.arm, customerId: data.shopper?.customerId ?? null, view };
}
