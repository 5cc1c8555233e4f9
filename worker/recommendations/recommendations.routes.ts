// GET /v1/recommendations for the shopper behind a signed token (or the popular shelf without one).
// Validate → load (one D1 round trip for the shopper; catalog, models and rules from isolate caches)
// → compute (worker/core: profile, ranking, rules).
import { type Context, Hono } from "hono";
import { rankingOptionsWith } from "../core/ranking/options.ts";
import { buyAgainPlacement, hiddenIds, withoutHidden } from "../core/ranking/placements.ts";
import { buildPopulation } from "../core/ranking/population.ts";
import { recommend } from "../core/ranking/recommend.ts";
import type { AppEnv } from "../env.ts";
import { bearerToken } from "../http/auth.ts";
import { classifyDatabaseError } from "../http/database-errors.ts";
import { ApiError } from "../http/errors.ts";
import { limitShopper } from "../http/rate-limit.ts";
import { tokenRefusalMessages } from "../http/shopper-token.ts";
import { queryParams } from "../http/validate.ts";
import { shopperAccountKey } from "../identity/identity.keys.ts";
import { currentModels } from "../models/models.repo.ts";
import { liveRulesFor } from "../rules/rules.repo.ts";
import { lastGoodShelf, rememberShelf, type ShelfView } from "./last-good-shelf.ts";
import {
  accountSubject,
  anonymousSubject,
  customerSubject,
  newRecommendationId,
  type ServedArm,
} from "./recommendation-id.ts";
import { cachedCatalog, coPurchasesOf, loadShopper } from "./recommendations.repo.ts";
import { recommendationsQuerySchema } from "./recommendations.schemas.ts";
import { shopperSegmentOf } from "./segment.ts";

/** Seconds the anonymous shelf may be cached, here and by browsers and CDNs. */
const popularShelfSeconds = 60;
let popularCache: {
  key: string;
  rules: readonly unknown[];
  body: { data: Record<string, unknown> };
  at: number;
} | null = null;

/** HOLDOUT_SHARE as a number in [0, 1]; a missing or malformed setting keeps the default. */
function holdoutShare(setting: string | undefined): number | undefined {
  if (setting === undefined || setting.trim() === "") return undefined;
  const share = Number(setting);
  if (Number.isFinite(share) && share >= 0 && share <= 1) return share;
  console.warn(JSON.stringify({ warning: "HOLDOUT_SHARE must be a number from 0 to 1; using the default", setting }));
  return undefined;
}

async function shelf(c: Context<AppEnv>) {
  const query = queryParams(c, recommendationsQuerySchema);
  const now = c.var.now;
  const token = bearerToken(c.req.header("Authorization")) ?? query.token ?? null;
  let accountKey: string | null = null;
  if (token) {
    const shopper = await shopperAccountKey(token, c.env, now);
    if (!shopper.ok) throw new ApiError(401, "unauthorized", tokenRefusalMessages[shopper.reason]);
    accountKey = shopper.accountKey;
    if (accountKey) await limitShopper(c, "recommendations", accountKey);
  }

  const share = holdoutShare(c.env.HOLDOUT_SHARE);
  const options = rankingOptionsWith({
    ...(share === undefined ? {} : { holdout: { share } }),
    items: { maxItems: query.limit },
    popular: { maxItems: query.limit, maxCategories: Math.max(query.categories, 1) },
    categories: { maxCategories: Math.max(query.categories, 1) },
  });
  const placement = {
    placement: query.placement ?? null,
    productId: query.product ?? null,
    excludeIds: query.exclude,
  };
  const buyingAgain = placement.placement === buyAgainPlacement;
  const [models, catalog, rules, shopper, coPurchases] = await Promise.all([
    currentModels(c.var.db, now),
    cachedCatalog(c.var.db, now),
    liveRulesFor(c.var.db, now),
    accountKey ? loadShopper(c.var.db, accountKey, now, { usualProducts: buyingAgain }) : null,
    placement.productId ? coPurchasesOf(c.var.db, placement.productId) : [],
  ]);
  const known = !!shopper?.customerId && !!shopper.summary;
  // Whom the id binds: events and orders attributed to it must come from this shopper.
  const subject = shopper?.customerId
    ? customerSubject(shopper.customerId)
    : accountKey
      ? accountSubject(accountKey)
      : anonymousSubject;
  const issue = (arm: ServedArm, items: readonly { id: string }[]) =>
    newRecommendationId(
      { arm, subject, itemIds: items.map((item) => item.id), issuedAt: now },
      c.env.SHOPPER_TOKEN_SECRET,
    );
  // Personal answers may vary by the Authorization header; shared ones must not be cached for a token.
  c.header("Vary", "Authorization");
  const shared = token ? "private, no-store" : `public, max-age=${popularShelfSeconds}`;

  // The default shelf is computed once per isolate per minute, and again as soon as the rules change.
  // A shelf with page context (a product, excluded ids, buy-again) is computed per request.
  const cacheKey = `${query.limit}:${query.categories}`;
  const contextFree = !placement.productId && placement.excludeIds.length === 0 && !buyingAgain;
  if (
    !known &&
    contextFree &&
    popularCache?.key === cacheKey &&
    popularCache.rules === rules &&
    now.getTime() - popularCache.at < popularShelfSeconds * 1000
  ) {
    c.header("Cache-Control", shared);
    // The shelf is shared; each response still gets its own id, so impressions are attributed per view.
    const recommendationId = await issue(
      popularCache.body.data.arm as ServedArm,
      popularCache.body.data.items as { id: string }[],
    );
    return c.json({ data: { ...popularCache.body.data, placement: placement.placement, recommendationId } });
  }

  const population = models.population ?? buildPopulation([], catalog.products, now);
  const segment =
    known && shopper?.summary && models.customer ? shopperSegmentOf(shopper.summary, models.customer, now) : undefined;
  const result = recommend(
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
      rules,
      categoryNames: catalog.categoryNames,
      now,
      placement: { ...placement, coPurchases, usualProducts: shopper?.usualProducts ?? [] },
    },
    options,
  );

  const served = result.items.slice(0, query.limit);
  const body = {
    data: {
      recommendationId: await issue(
        result.arm,
        served.map((item) => ({ id: item.productId })),
      ),
      arm: result.arm,
      customerKnown: known,
      placement: placement.placement,
      categories: result.categories.slice(0, query.categories).map((category) => ({
        id: category.categoryId,
        name: catalog.categoryNames[category.categoryId] ?? category.categoryId,
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
    },
  };
  if (known) {
    c.header("Cache-Control", "private, no-store");
  } else if (!contextFree) {
    c.header("Cache-Control", shared);
  } else {
    popularCache = { key: cacheKey, rules, body, at: now.getTime() };
    c.header("Cache-Control", shared);
    const { recommendationId: _, ...view } = body.data;
    await keepInBackground(c, rememberShelf(cacheKey, view, now));
  }
  return c.json(body);
}

/** Lets `work` finish after the response when the runtime gives an execution context; otherwise waits for it. */
async function keepInBackground(c: Context<AppEnv>, work: Promise<void>) {
  let context: { waitUntil(promise: Promise<unknown>): void } | null = null;
  try {
    context = c.executionCtx;
  } catch {
    // No execution context (the app called directly): finish the work before answering.
  }
  if (context) context.waitUntil(work);
  else await work;
}

/**
 * When D1 fails, the shopper still gets a shelf: the last good popular shelf (last-good-shelf.ts),
 * or no items when there is none, with `"degraded": true`, never cached. The failure is logged with
 * the request id.
 */
async function degradedShelf(c: Context<AppEnv>, error: unknown) {
  const requestId = c.var.requestId;
  const failure = classifyDatabaseError(error);
  console.error(
    JSON.stringify({
      requestId,
      degraded: true,
      database: failure?.kind,
      cause: failure?.message,
      error: String(error),
    }),
  );
  const query = queryParams(c, recommendationsQuerySchema);
  const kept = await lastGoodShelf(`${query.limit}:${query.categories}`, c.var.now);
  const placement = { placement: query.placement ?? null, productId: query.product ?? null, excludeIds: query.exclude };
  // Buy-again is personal: the popular shelf is no stand-in for it.
  const keptItems = placement.placement === buyAgainPlacement ? [] : (kept?.items ?? []);
  const view: ShelfView = {
    arm: "anonymous",
    customerKnown: false,
    categories: (kept?.categories ?? []).slice(0, query.categories),
    items: withoutHidden(keptItems, hiddenIds(placement)).slice(0, query.limit),
  };
  c.header("Cache-Control", "no-store");
  c.header("Vary", "Authorization");
  // Served from no one's data, the degraded shelf binds nobody: it counts in the anonymous arm only.
  const recommendationId = await newRecommendationId(
    { arm: "anonymous", subject: anonymousSubject, itemIds: view.items.map((item) => item.id), issuedAt: c.var.now },
    c.env.SHOPPER_TOKEN_SECRET,
  );
  return c.json({ data: { recommendationId, ...view, placement: placement.placement, degraded: true } });
}

export const recommendationsRoutes = new Hono<AppEnv>().get("/", async (c) => {
  try {
    return await shelf(c);
  } catch (error) {
    if (classifyDatabaseError(error)) return degradedShelf(c, error);
    throw error;
  }
});
