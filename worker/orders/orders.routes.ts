// Server-to-server ingestion: orders, identify calls and catalog upserts, and the catalog read back
// (API key).

import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { type Conversion, storedConversions } from "../events/conversions.repo.ts";
import { moveCustomerEvents } from "../events/events.repo.ts";
import { requireApiKey } from "../http/auth.ts";
import { retailerCurrency } from "../http/config.ts";
import { ApiError, invalidRequest, notFound } from "../http/errors.ts";
import { jsonBody, parseOrThrow, problemsFound, queryParams } from "../http/validate.ts";
import { assertWritesOpen } from "../http/write-pause.ts";
import { enabledMatchKeys, matchKinds } from "../identity/match-keys.ts";
import { phoneRegion } from "../identity/phone.ts";
import { attributionSettings } from "../recommendations/attribution.ts";
import { forgetCatalog } from "../recommendations/recommendations.repo.ts";
import { identifySharded, ingestSharded, type ShardedRefusal } from "../shards/ingest-router.ts";
import { shardCount } from "../shards/shards.ts";
import { followInEvents } from "./events-follow.ts";
import { type CustomerMerge, type IngestResult, identify, ingestOrders } from "./ingest.ts";
import type { IdentifiersInput, OrderInput } from "./orders.schemas.ts";
import {
  identifySchema,
  maxBatchBodyBytes,
  ordersBatchSchemaIn,
  productIdParamSchema,
  productsBatchSchemaIn,
  productsQuerySchema,
} from "./orders.schemas.ts";
import { loadProduct, productsPage, upsertProducts } from "./products.repo.ts";

/** Orders dated further ahead than this are a clock or format error at the source. */
const maxFutureSkewMs = 24 * 3600 * 1000;

/** Refuses a batch with an order placed in the future (400, every such order listed); shared with imports. */
export function assertNoFutureOrders(orders: readonly { placedAt: string }[], now: Date): void {
  const issues = orders.flatMap((order, index) =>
    Date.parse(order.placedAt) > now.getTime() + maxFutureSkewMs
      ? [{ path: ["orders", index, "placedAt"], message: "is in the future" }]
      : [],
  );
  if (issues.length > 0) throw invalidRequest(`Invalid request body: ${problemsFound(issues.length)}.`, issues);
}

/**
 * The answer to a batch ingestion refused. On D1 it wrote nothing. On shards it may have stored some
 * of its orders first (each shard's write is atomic, the batch across shards is not): the answer says
 * how many and lists them in `issues`, and the client resends the batch all the same, where they are
 * duplicates.
 */
export function refusalError(refusal: ShardedRefusal): ApiError {
  const created = refusal.stored?.created ?? [];
  const stored =
    created.length === 0
      ? ""
      : ` ${created.length} of its orders ${created.length === 1 ? "was" : "were"} stored before this answer (listed in issues): resent, they are duplicates.`;
  const issues = created.map(({ index }) => ({
    path: ["orders", index],
    message: "stored by this request before it was refused",
  }));
  switch (refusal.kind) {
    case "region_too_large":
      return new ApiError(
        409,
        "conflict",
        `These identifiers link more than ${refusal.limit} orders and calls; one of them is probably a placeholder (a store's walk-in email or card). Send the batch without it.${stored}`,
        issues,
      );
    case "busy":
      // Retry-After marks a 409 that clears by itself (this one, and an erasure's): clients retry only those.
      return new ApiError(
        409,
        "conflict",
        `These customers are being updated by other requests right now; retry the batch.${stored}`,
        issues,
        1,
      );
  }
}

/**
 * Ingests orders where customer data lives (the customer shards, or the one D1 database), with the
 * stored conversions of the orders resent, read where those orders are.
 */
async function ingestInStore(c: Context<AppEnv>, orders: OrderInput[], now: Date) {
  if (shardCount(c.env) > 0) return ingestSharded(c.env, c.var.db, orders, now);
  await assertWritesOpen(c.var.db);
  const outcome = await ingestOrders(
    c.var.db,
    c.env.IDENTITY_HASH_SECRET,
    orders,
    now,
    attributionSettings(c.env),
    phoneRegion(c.env.PHONE_DEFAULT_REGION),
    matchKinds(enabledMatchKeys(c.env.EXPORT_MATCH_KEYS)),
  );
  if (outcome.kind !== "ingested") return outcome;
  return { ...outcome, resent: await storedConversions(c.var.db, orders, outcome.result.results) };
}

/** An identify call where customer data lives. */
async function identifyInStore(c: Context<AppEnv>, identifiers: IdentifiersInput, now: Date) {
  if (shardCount(c.env) > 0) return identifySharded(c.env, c.var.db, identifiers, now);
  await assertWritesOpen(c.var.db);
  return identify(
    c.var.db,
    c.env.IDENTITY_HASH_SECRET,
    identifiers,
    now,
    phoneRegion(c.env.PHONE_DEFAULT_REGION),
    matchKinds(enabledMatchKeys(c.env.EXPORT_MATCH_KEYS)),
  );
}

export const ingestRoutes = new Hono<AppEnv>()
  .use("/orders", requireApiKey)
  .use("/identify", requireApiKey)
  .use("/products", requireApiKey)
  .use("/products/*", requireApiKey)
  .post("/orders", async (c) => {
    const shopCurrency = retailerCurrency(c.env.RETAILER_CURRENCY);
    const { orders } = await jsonBody(c, ordersBatchSchemaIn(shopCurrency), maxBatchBodyBytes);
    const now = c.var.now;
    assertNoFutureOrders(orders, now);
    const outcome = await ingestInStore(c, orders, now);
    // The orders are stored (the customer store is the source of truth); the events database follows
    // with the attributed orders (those created now, and those resent, in case an earlier attempt
    // failed here) and any merge. A failure here answers an error with the orders stored; the
    // client's resend records what is missing. Conversions are keyed by order id: never counted twice.
    const follow = (
      results: readonly IngestResult["results"][number][],
      resent: Conversion[],
      merged: CustomerMerge[],
    ) => followInEvents(c.var.eventsDb, c.env.IDENTITY_HASH_SECRET, orders, results, resent, merged);
    if (outcome.kind !== "ingested") {
      // Refused on shards after some groups were stored: those are followed as if the batch had been
      // stored whole (the resend answers them as duplicates, which merge nothing), then the refusal.
      const refused: ShardedRefusal = outcome;
      const { stored } = refused;
      if (stored)
        await follow(
          stored.created.map(({ result }) => result),
          stored.resent,
          stored.merged,
        );
      throw refusalError(outcome);
    }
    await follow(outcome.result.results, outcome.resent, outcome.merged);
    return c.json({ data: outcome.result });
  })
  .post("/identify", async (c) => {
    const { identifiers } = await jsonBody(c, identifySchema);
    const outcome = await identifyInStore(c, identifiers, c.var.now);
    if (outcome.kind !== "identified") throw refusalError(outcome);
    await moveCustomerEvents(c.var.eventsDb, outcome.merged);
    const { result } = outcome;
    return c.json({
      data: {
        linked: result.linked,
        unverified: result.unverified,
        merges: result.merges,
        suppressed: result.suppressed,
        ignoredIdentifiers: result.ignoredIdentifiers,
      },
    });
  })
  .post("/products", async (c) => {
    const shopCurrency = retailerCurrency(c.env.RETAILER_CURRENCY);
    const { products } = await jsonBody(c, productsBatchSchemaIn(shopCurrency), maxBatchBodyBytes);
    await upsertProducts(c.var.db, products, c.var.now);
    forgetCatalog(); // this isolate serves the new catalog at once; others within a minute

    // A product sent twice with the same content is stored once, and counted once.
    return c.json({ data: { upserted: new Set(products.map((product) => product.id)).size } });
  })
  .get("/products", async (c) => {
    const { after, limit } = queryParams(c, productsQuerySchema);
    const rows = await productsPage(c.var.db, after ?? null, limit + 1);
    const products = rows.slice(0, limit);
    c.header("Cache-Control", "no-store");
    return c.json({ data: { products, next: rows.length > limit ? (products.at(-1)?.id ?? null) : null } });
  })
  .get("/products/:id", async (c) => {
    const { id } = parseOrThrow(productIdParamSchema, c.req.param(), "product id");
    const product = await loadProduct(c.var.db, id);
    if (!product) throw notFound(`No product ${JSON.stringify(id)} in the catalog.`);
    c.header("Cache-Control", "no-store");
    return c.json({ data: product });
  });
