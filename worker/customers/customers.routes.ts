// The unified customer, for the console and support tools (admin key): by identifier or by id.

import { type Context, Hono } from "hono";
import { dropHeldPagesNaming } from "../audiences/audiences.repo.ts";
import { mergeHolders } from "../core/identity/holders.ts";
import { maskIdentifier } from "../core/identity/normalize.ts";
import { roundTo } from "../core/math/round.ts";
import { customerClock } from "../core/models/store-clock.ts";
import { type HistoryPoint, profileHistory, stageThresholds } from "../core/profile/profile-history.ts";
import { customerKey } from "../core/shards/placement.ts";
import type { IdentifierKind } from "../core/vocabulary.ts";
import type { AppEnv } from "../env.ts";
import { requireAdminKey } from "../http/auth.ts";
import { retailerTimeZone } from "../http/config.ts";
import { errorText } from "../http/error-text.ts";
import { ApiError, invalidRequest, notFound } from "../http/errors.ts";
import { jsonBody, parseOrThrow, queryParams } from "../http/validate.ts";
import { assertWritesOpen } from "../http/write-pause.ts";
import { foldedKey, identityKey, normalizeForKey, suppressionKeysOf } from "../identity/identity.keys.ts";
import { customerIdByKey, holdersIn } from "../identity/identity.repo.ts";
import { phoneRegion } from "../identity/phone.ts";
import { currentModels, fitClock } from "../models/models.repo.ts";
import { cachedCatalog } from "../recommendations/recommendations.repo.ts";
import { computeShelf, holdoutShareOf, loadShelfData, type ShelfRequest } from "../recommendations/shelf.ts";
import {
  shardedCustomerExport,
  shardedCustomerHistory,
  shardedCustomerShelf,
  shardedErasure,
  shardedHolders,
} from "../shards/console.ts";
import { customerExportIn, customerHistoryIn, customerShelfIn } from "../shards/console-shard.ts";
import type { CustomerRead, CustomerReadRequest } from "../shards/customer-reads.ts";
import { homeStub, shardCount } from "../shards/shards.ts";
import { orderSuppressionKey, suppressedKeys } from "../suppressions/suppressions.repo.ts";
import { withCatalogNames } from "./customer-names.ts";
import { loadCustomer, survivingCustomerId } from "./customers.repo.ts";
import { customerParamsSchema, lookupBodySchema, lookupQuerySchema, shelfQuerySchema } from "./customers.schemas.ts";
import { eraseCustomer, exportFrom } from "./erasure.repo.ts";

const orderLimit = 200;
/** The most customers GET /v1/customers/holders lists for one identifier. */
const holderLimit = 100;

/** Each kind of identifier as the lookup's messages name it to the person who typed it. */
const identifierNames: Record<IdentifierKind, string> = {
  account: "web account",
  email: "email address",
  phone: "phone number",
  loyalty: "loyalty number",
  card: "card",
  device: "device id",
};

/** What reading a customer needs besides the store: the clock, the page of orders, the models, the zone. */
async function readRequest(c: Context<AppEnv>): Promise<CustomerReadRequest> {
  const now = c.var.now;
  return {
    orderLimit,
    now: now.toISOString(),
    timeZone: retailerTimeZone(c.env.RETAILER_TIME_ZONE),
    models: await currentModels(c.var.db, now),
  };
}

/** One customer from the D1 database (a merged-away id follows merged_into to the survivor). */
async function readFromDatabase(c: Context<AppEnv>, customerId: string): Promise<CustomerRead> {
  const survivor = await survivingCustomerId(c.var.db, customerId);
  if (!survivor) return { kind: "not_found" };
  const { now, timeZone, models } = await readRequest(c);
  return {
    kind: "found",
    customer: await loadCustomer(c.var.db, survivor, orderLimit, new Date(now), timeZone, models),
  };
}

/** The customer holding an identity key, where customer data lives (the key's home shard, or D1). */
async function customerByKeyInStore(c: Context<AppEnv>, key: string): Promise<CustomerRead> {
  if (shardCount(c.env) > 0) return homeStub(c.env, key).customerByKey(key, await readRequest(c));
  const found = await customerIdByKey(c.var.db, key);
  if (!found) return { kind: "not_found" };
  if (!found.customerId) return { kind: found.shared ? "shared" : "unverified" };
  return readFromDatabase(c, found.customerId);
}

/** A customer by id, where customer data lives (the home shard of `customer:<id>`, or D1). */
async function customerByIdInStore(c: Context<AppEnv>, customerId: string): Promise<CustomerRead> {
  if (shardCount(c.env) > 0)
    return homeStub(c.env, customerKey(customerId)).customerById(customerId, await readRequest(c));
  return readFromDatabase(c, customerId);
}

/**
 * The identifier a lookup asks about: its kind, normalised value and identity key (400 when unusable).
 * GET takes it as query parameters; POST as a JSON body, which keeps an email or phone number out of the
 * URL, and so out of request logs.
 */
async function queriedIdentifier(c: Context<AppEnv>) {
  const { kind, value } =
    c.req.method === "POST" ? await jsonBody(c, lookupBodySchema) : queryParams(c, lookupQuerySchema);
  const normalized = normalizeForKey(kind, value, phoneRegion(c.env.PHONE_DEFAULT_REGION));
  if (!normalized.ok)
    throw invalidRequest(`That ${identifierNames[kind]} is not usable as an identifier: ${normalized.reason}.`);
  const secret = c.env.IDENTITY_HASH_SECRET;
  return {
    kind,
    value: normalized.value,
    key: await identityKey(kind, normalized.value, secret),
    folded: await foldedKey(kind, value, normalized.value, secret),
  };
}

/** Where to find every record of an identifier that identifies nobody: the lookup's 404s say it. */
const holdersHint =
  "To find every customer seen with it (for a privacy request), see POST /v1/customers/holders with the same kind and value.";

/** The customer holding an identifier (GET and POST /v1/customers/lookup). */
const lookUp = async (c: Context<AppEnv>) => {
  const { kind, key } = await queriedIdentifier(c);
  const [read, catalog] = await Promise.all([customerByKeyInStore(c, key), cachedCatalog(c.var.db, c.var.now)]);
  const name = identifierNames[kind];
  if (read.kind === "not_found")
    throw notFound(
      `No customer holds that ${name}. Check it was typed in full, or look the customer up by another identifier.`,
    );
  if (read.kind !== "found")
    throw notFound(
      read.kind === "shared"
        ? `That ${name} is shared by several customers, so it identifies nobody. ${holdersHint}`
        : `That ${name} was only ever sent unverified, so it identifies nobody. ${holdersHint}`,
    );
  return c.json({ data: withCatalogNames(read.customer, catalog) });
};

/** Every customer holding an identifier or seen with it (GET and POST /v1/customers/holders). */
const holdersOfIdentifier = async (c: Context<AppEnv>) => {
  // A privacy request's first step: every customer holding the identifier or seen with it, whatever
  // its trust. On shards every shard is asked (an identifier seen unverified can be on orders in any).
  const { kind, value, key, folded } = await queriedIdentifier(c);
  const [parts, onList] = await Promise.all([
    shardCount(c.env) > 0
      ? shardedHolders(c.env, key, holderLimit + 1)
      : Promise.all([holdersIn(c.var.db, key, holderLimit + 1)]),
    suppressedKeys(c.var.db, suppressionKeysOf([{ key, foldedKey: folded }])),
  ]);
  const suppressed = onList.size > 0;
  const { known, shared, holders, truncated } = mergeHolders(parts, holderLimit);
  c.header("Cache-Control", "no-store");
  return c.json({
    data: { kind, masked: maskIdentifier(kind, value), known, shared, suppressed, holders, truncated },
  });
};

export const customersRoutes = new Hono<AppEnv>()
  .use("*", requireAdminKey)
  .get("/lookup", lookUp)
  .post("/lookup", lookUp)
  .get("/holders", holdersOfIdentifier)
  .post("/holders", holdersOfIdentifier)
  .get("/:id", async (c) => {
    const { id } = parseOrThrow(customerParamsSchema, c.req.param(), "path");
    const [read, catalog] = await Promise.all([customerByIdInStore(c, id), cachedCatalog(c.var.db, c.var.now)]);
    if (read.kind !== "found") throw notFound(`No customer with id ${id}.`);
    return c.json({ data: withCatalogNames(read.customer, catalog) });
  })
  .get("/:id/history", async (c) => {
    const { id } = parseOrThrow(customerParamsSchema, c.req.param(), "path");
    const [models, read] = await Promise.all([
      currentModels(c.var.db, c.var.now),
      shardCount(c.env) > 0 ? shardedCustomerHistory(c.env, id) : customerHistoryIn(c.var.db, id),
    ]);
    if (!read) throw notFound(`No customer with id ${id}.`);
    // As GET /v1/customers/:id reads them: after a back-dated run, on the store's clock.
    // The orders come newest first (historyOrdersOf).
    const lastOrderAt = read.orders[0]?.placedAt ?? null;
    const now = customerClock(c.var.now, fitClock(models), lastOrderAt);
    const survivor = read.customerId;
    const base = {
      customerId: survivor,
      asOf: now.toISOString(),
      orders: read.orders.length,
      truncated: read.truncated,
    };
    if (!models.customer)
      return c.json({
        data: {
          ...base,
          modelsFittedAt: null,
          thresholds: null,
          points: [],
          skipped: 0,
          message: "No model fit yet: run the nightly job (POST /v1/admin/jobs/nightly) to chart this customer.",
        },
      });
    const history = profileHistory(survivor, read.orders, models.customer, now);
    return c.json({
      data: {
        ...base,
        modelsFittedAt: models.customer.fittedAt,
        thresholds: thresholdsView(stageThresholds(models.customer)),
        points: history.points.map(pointView),
        skipped: history.skipped,
      },
    });
  })
  .get("/:id/shelf", async (c) => {
    // What this customer's storefront shelf shows now: the loads and core of GET /v1/recommendations for
    // their account, but no recommendation id, no rate-limit count and no cache: nothing is recorded.
    const { id } = parseOrThrow(customerParamsSchema, c.req.param(), "path");
    const query = queryParams(c, shelfQuerySchema);
    const now = c.var.now;
    const request: ShelfRequest = {
      ...query,
      placement: null,
      productId: null,
      excludeIds: [],
      timeZone: retailerTimeZone(c.env.RETAILER_TIME_ZONE),
    };
    // The customer's reads (from their shard, or the database) next to the shared ones (catalog, models, rules).
    const [found, shared] = await Promise.all([
      shardCount(c.env) > 0 ? shardedCustomerShelf(c.env, id, now) : customerShelfIn(c.var.db, id, now),
      loadShelfData(c.var.db, now, null, request),
    ]);
    if (!found) throw notFound(`No customer with id ${id}.`);
    const { customerId, accountKey, shopper } = found;
    const data = { ...shared, shopper };
    const { view } = computeShelf(data, request, accountKey, now, holdoutShareOf(c.env.HOLDOUT_SHARE));
    c.header("Cache-Control", "private, no-store");
    return c.json({ data: { customerId, storefrontAccount: accountKey !== null, ...view } });
  })
  .get("/:id/export", async (c) => {
    const { id } = parseOrThrow(customerParamsSchema, c.req.param(), "path");
    const found = shardCount(c.env) > 0 ? await shardedCustomerExport(c.env, id) : await customerExportIn(c.var.db, id);
    if (!found) throw notFound(`No customer with id ${id}.`);
    c.header("Cache-Control", "no-store");
    return c.json({
      data: {
        customerId: found.customerId,
        exportedAt: c.var.now.toISOString(),
        ...(await exportFrom(c.var.db, c.var.eventsDb, found.rows)),
      },
    });
  })
  .delete("/:id", async (c) => {
    const { id } = parseOrThrow(customerParamsSchema, c.req.param(), "path");
    const sharded = shardCount(c.env) > 0;
    if (!sharded) await assertWritesOpen(c.var.db);
    const inStore = sharded ? await shardedErasure(c.env, id, c.var.now) : await databaseErasure(c, id);
    // A deployment moved from one database into shards keeps D1's copy of its customers
    // (`patron shards migrate`): the erasure reaches it too.
    const d1Copy = sharded && inStore?.erasure.kind !== "busy" ? await databaseErasure(c, id) : null;
    const found = inStore ?? d1Copy;
    if (!found) throw notFound(`No customer with id ${id}.`);
    const { customerId, erasure } = found;
    if (erasure.kind === "busy") throw erasureBusyError();
    // A page held for an audience's webhook holds whole rows: one naming the customer is let go too.
    // The erasure stands if that fails (D1 busy): the page is let go at its next try instead, which
    // looks its customers up first (worker/audiences/audiences.sync.ts, deliverPages).
    const heldPages = await dropHeldPagesNaming(c.var.db, erasure.plan.customerIds).catch((error: unknown) => {
      console.error(
        JSON.stringify({
          requestId: c.get("requestId"),
          step: "erasure: held audience pages",
          error: errorText(error),
        }),
      );
      return 0;
    });
    const deleted = heldPages > 0 ? { ...erasure.deleted, held_audience_pages: heldPages } : erasure.deleted;
    return c.json({ data: { customerId, deleted, suppressed: erasure.suppressed } });
  });

/** The erasure in the one database; null: no such customer. */
async function databaseErasure(c: Context<AppEnv>, id: string) {
  const survivor = await survivingCustomerId(c.var.db, id);
  if (!survivor) return null;
  const erasure = await eraseCustomer(
    c.var.db,
    c.var.eventsDb,
    survivor,
    (orderId) => orderSuppressionKey(orderId, c.env.IDENTITY_HASH_SECRET),
    c.var.now,
  );
  return { customerId: survivor, erasure };
}

/**
 * The erasure's refusal when new orders kept reaching the customer through every attempt. It clears by
 * itself, so it carries Retry-After like the ingestion's busy 409 (clients retry only a 409 with it).
 */
export function erasureBusyError() {
  return new ApiError(
    409,
    "conflict",
    "New orders keep reaching this customer right now; retry the erasure.",
    undefined,
    1,
  );
}

/** A history point as the API shows it, rounded as GET /v1/customers/:id rounds the same figures. */
function pointView(point: HistoryPoint) {
  return {
    ...point,
    probabilityAlive: roundTo(point.probabilityAlive, 4),
    expectedIntervalDays: roundTo(point.expectedIntervalDays, 1),
    daysSinceLast: roundTo(point.daysSinceLast, 1),
    overdueRatio: roundTo(point.overdueRatio, 2),
    clv12: roundTo(point.clv12, 2),
  };
}

/** The stage lines, rounded as the P(alive) figures they are drawn against. */
function thresholdsView(thresholds: ReturnType<typeof stageThresholds>) {
  return {
    fadingBelowProbabilityAlive: roundTo(thresholds.fadingBelowProbabilityAlive, 4),
    lapsedBelowProbabilityAlive: roundTo(thresholds.lapsedBelowProbabilityAlive, 4),
  };
}
