// GET /v1/recommendations for the shopper behind a signed token (or the popular shelf without one).
// Validate → load (one D1 round trip for the shopper; catalog, models and rules from isolate caches)
// → compute (worker/core: profile, ranking, rules).
import { Hono } from "hono";
import { customerProfile } from "../core/profile/customer-profile.ts";
import { rankingOptionsWith } from "../core/ranking/options.ts";
import { buildPopulation } from "../core/ranking/population.ts";
import { recommend } from "../core/ranking/recommend.ts";
import type { ShopperSegment } from "../core/rules/types.ts";
import type { AppEnv } from "../env.ts";
import { bearerToken } from "../http/auth.ts";
import { ApiError } from "../http/errors.ts";

import { limitShopper } from "../http/rate-limit.ts";
import { queryParams } from "../http/validate.ts";
import { shopperAccountKey } from "../identity/identity.keys.ts";
import { currentModels } from "../models/models.repo.ts";
import { liveRulesFor } from "../rules/rules.repo.ts";
import { newRecommendationId } from "./recommendation-id.ts";
import { cachedCatalog, loadShopper } from "./recommendations.repo.ts";
import { recommendationsQuerySchema } from "./recommendations.schemas.ts";

const tokenErrors = {
  malformed: "The shopper token is not a valid JWT.",
  bad_signature: "The shopper token's signature does not match.",
  expired: "The shopper token has expired: sign a fresh one on your server.",
  missing_claims: "The shopper token needs a `sub` (the storefront account id) and an `exp`.",
} as const;

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

export const recommendationsRoutes = new Hono<AppEnv>().get("/", async (c) => {
  const query = queryParams(c, recommendationsQuerySchema);
  const now = c.var.now;
  const token = bearerToken(c.req.header("Authorization")) ?? query.token ?? null;
  let accountKey: string | null = null;
  if (token) {
    const shopper = await shopperAccountKey(token, c.env, now);
    if (!shopper.ok) throw new ApiError(401, "unauthorized", tokenErrors[shopper.reason]);
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
  const [models, catalog, rules, shopper] = await Promise.all([
    currentModels(c.var.db, now),
    cachedCatalog(c.var.db, now),
    liveRulesFor(c.var.db, now),
    accountKey ? loadShopper(c.var.db, accountKey, now) : null,
  ]);
  const known = !!shopper?.customerId && !!shopper.summary;
  // Personal answers may vary by the Authorization header; shared ones must not be cached for a token.
  c.header("Vary", "Authorization");
  const shared = token ? "private, no-store" : `public, max-age=${popularShelfSeconds}`;

  // The default shelf is computed once per isolate per minute, and again as soon as the rules change.
  const cacheKey = `${query.limit}:${query.categories}`;
  if (
    !known &&
    popularCache?.key === cacheKey &&
    popularCache.rules === rules &&
    now.getTime() - popularCache.at < popularShelfSeconds * 1000
  ) {
    c.header("Cache-Control", shared);
    // The shelf is shared; each response still gets its own id, so impressions are attributed per view.
    const recommendationId = await newRecommendationId(String(popularCache.body.data.arm), c.env.SHOPPER_TOKEN_SECRET);
    return c.json({ data: { ...popularCache.body.data, recommendationId } });
  }

  const population = models.population ?? buildPopulation([], catalog.products, now);
  let segment: ShopperSegment | undefined;
  if (known && shopper?.summary && models.customer) {
    // Only the segment is needed here, so the per-category part of the profile is skipped.
    const profile = customerProfile({ summary: shopper.summary, categories: [], models: models.customer, now });
    const primary = profile.channelMix.primary;
    segment = {
      stage: profile.lifecycle.stage,
      valueTier: profile.valueTier,
      discountSensitivity: profile.discount.sensitivity,
      ...(primary && primary !== "phone" ? { channelPreference: primary } : {}),
    };
  }
  const result = recommend(
    {
      customerId: known ? (shopper?.customerId ?? null) : null,
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
    },
    options,
  );

  const body = {
    data: {
      recommendationId: await newRecommendationId(result.arm, c.env.SHOPPER_TOKEN_SECRET),
      arm: result.arm,
      customerKnown: known,
      categories: result.categories.slice(0, query.categories).map((category) => ({
        id: category.categoryId,
        name: catalog.categoryNames[category.categoryId] ?? category.categoryId,
        score: Math.round(category.score * 10_000) / 10_000,
        reasons: category.reasons,
        reason: category.sentence,
      })),
      items: result.items.slice(0, query.limit).map((item) => ({
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
  } else {
    popularCache = { key: cacheKey, rules, body, at: now.getTime() };
    c.header("Cache-Control", shared);
  }
  return c.json(body);
});
