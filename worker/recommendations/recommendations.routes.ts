// GET /v1/recommendations for the shopper behind a signed token (or the popular shelf without one).
// Validate → load (one round trip for the shopper to D1; catalog, models and rules from isolate caches)
// → compute (worker/core: profile, ranking, rules; both in shelf.ts, shared with the console's view of
// a customer's shelf) → issue the recommendation id, cache the popular shelf. With SHARD_COUNT > 0 a
// signed-in account's load and compute are one call to their customer shard, which does both there.
import { type Context, Hono } from "hono";
import { buyAgainPlacement, hiddenIds, withoutHidden } from "../core/ranking/placements.ts";
import type { AppEnv } from "../env.ts";
import { bearerToken } from "../http/auth.ts";
import { retailerTimeZone } from "../http/config.ts";
import { classifyDatabaseError } from "../http/database-errors.ts";
import { ApiError } from "../http/errors.ts";
import { limitShopper } from "../http/rate-limit.ts";
import { tokenRefusalMessages } from "../http/shopper-token.ts";
import { queryParams } from "../http/validate.ts";
import { shopperAccountKey } from "../identity/identity.keys.ts";
import { shardCount } from "../shards/shards.ts";
import { shardedShelf } from "../shards/shopper.ts";
import { lastGoodShelf, rememberShelf, type ShelfView } from "./last-good-shelf.ts";
import {
  accountSubject,
  anonymousSubject,
  customerSubject,
  newRecommendationId,
  type ServedArm,
} from "./recommendation-id.ts";
import { recommendationsQuerySchema } from "./recommendations.schemas.ts";
import { computeShelf, holdoutShareOf, knownShopper, loadShelfData, type ShelfRequest } from "./shelf.ts";

/** Seconds the anonymous shelf may be cached, here and by browsers and CDNs. */
const popularShelfSeconds = 60;
let popularCache: {
  key: string;
  rules: readonly unknown[];
  body: { data: Record<string, unknown> };
  at: number;
} | null = null;

async function shelf(c: Context<AppEnv>) {
  const query = queryParams(c, recommendationsQuerySchema, { extra: "ignored" });
  const now = c.var.now;
  const authorization = c.req.header("Authorization");
  // A header that is there but not a Bearer token is an integration mistake: say so, rather than
  // answer the anonymous shelf as if no one were signed in.
  if (authorization && !bearerToken(authorization))
    throw new ApiError(
      401,
      "unauthorized",
      "The Authorization header must be `Bearer <shopper token>` (or send no header for the popular shelf).",
    );
  const token = bearerToken(authorization) ?? query.token ?? null;
  let accountKey: string | null = null;
  if (token) {
    const shopper = await shopperAccountKey(token, c.env, now);
    if (!shopper.ok) throw new ApiError(401, "unauthorized", tokenRefusalMessages[shopper.reason]);
    accountKey = shopper.accountKey;
    if (accountKey) await limitShopper(c, "recommendations", accountKey);
  }

  const request: ShelfRequest = {
    limit: query.limit,
    categories: query.categories,
    placement: query.placement ?? null,
    productId: query.product ?? null,
    excludeIds: query.exclude,
    timeZone: retailerTimeZone(c.env.RETAILER_TIME_ZONE),
  };
  const buyingAgain = request.placement === buyAgainPlacement;
  // The default shelf's cache key; only a shelf without page context (a product, excluded ids,
  // buy-again) is shared.
  const cacheKey = `${query.limit}:${query.categories}`;
  const contextFree = !request.productId && request.excludeIds.length === 0 && !buyingAgain;
  // Whom the id binds: events and orders attributed to it must come from this shopper.
  const issue = (arm: ServedArm, items: readonly { id: string }[], customerId: string | null) =>
    newRecommendationId(
      {
        arm,
        subject: customerId ? customerSubject(customerId) : accountKey ? accountSubject(accountKey) : anonymousSubject,
        itemIds: items.map((item) => item.id),
        issuedAt: now,
      },
      c.env.SHOPPER_TOKEN_SECRET,
    );
  // Personal answers may vary by the Authorization header; shared ones must not be cached for a token.
  c.header("Vary", "Authorization");
  const shared = token ? "private, no-store" : `public, max-age=${popularShelfSeconds}`;

  // With SHARD_COUNT > 0 a signed-in account's shelf is one call to their customer shard, which reads
  // the shopper and ranks the shelf there (shelfHere); only the id is issued here.
  if (accountKey && shardCount(c.env) > 0) {
    const computed = await shardedShelf(c.env, accountKey, now, request, holdoutShareOf(c.env.HOLDOUT_SHARE));
    c.header("Cache-Control", shared);
    // An account no customer holds got the popular shelf: kept for a degraded answer, as on D1.
    if (!computed.known && contextFree) await keepInBackground(c, rememberShelf(cacheKey, computed.view, now));
    const recommendationId = await issue(computed.arm, computed.view.items, computed.customerId);
    return c.json({ data: { recommendationId, ...computed.view } });
  }

  const data = await loadShelfData(c.var.db, now, accountKey, request);
  const known = knownShopper(data);
  const customerId = data.shopper?.customerId ?? null;
  const rules = data.rules;

  // The default shelf is computed once per isolate per minute, and again as soon as the rules change.
  // A shelf with page context is computed per request.
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
      customerId,
    );
    return c.json({ data: { ...popularCache.body.data, placement: request.placement, recommendationId } });
  }

  const { result, view } = computeShelf(data, request, accountKey, now, holdoutShareOf(c.env.HOLDOUT_SHARE));
  const body = {
    data: {
      recommendationId: await issue(result.arm, view.items, customerId),
      ...view,
    },
  };
  if (known) {
    c.header("Cache-Control", "private, no-store");
  } else if (!contextFree) {
    c.header("Cache-Control", shared);
  } else {
    popularCache = { key: cacheKey, rules, body, at: now.getTime() };
    c.header("Cache-Control", shared);
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
  const query = queryParams(c, recommendationsQuerySchema, { extra: "ignored" });
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
