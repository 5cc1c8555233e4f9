// Reads for one recommendation request. The shopper's summary, category stats, recent purchases and
// browse signals (the customer_browse rollups) come in ONE D1 round trip (a batch of reads keyed by the
// account's identity hash); the catalog and rules are cached in isolate memory with short lifetimes.
import { sql } from "drizzle-orm";
import { batchRows } from "../../db/batch.ts";
import { replicaReads } from "../../db/replica-reads.ts";
import type { ProfileSummary } from "../core/profile/customer-profile.ts";
import type { BrowseSignal, CategoryStat, CustomerSummary, Product } from "../core/ranking/types.ts";
import type { Db } from "../env.ts";
import { productsBackfill } from "../jobs/backfills.repo.ts";

export interface ShopperData {
  customerId: string | null;
  summary: (CustomerSummary & ProfileSummary) | null;
  categoryStats: CategoryStat[];
  recentPurchases: { productId: string; purchasedAt: string }[];
  browse: BrowseSignal[];
  /** The products the shopper bought and in how many orders (only when asked for: the buy-again shelf). */
  usualProducts: { productId: string; orders: number }[];
}

/** Usual products read for the buy-again shelf, most-ordered first. */
const maxUsualProducts = 100;
/** Co-purchase rows read for a product page (product_pairs keeps at most 20 per product). */
const maxCoPurchases = 20;

/** The products most often bought in the same orders as `productId` (the nightly product_pairs table). */
export async function coPurchasesOf(db: Db, productId: string): Promise<{ productId: string; orders: number }[]> {
  const rows = await db.all<{ productId: string; orders: number }>(sql`
    SELECT other_id AS productId, orders FROM product_pairs WHERE product_id = ${productId}
    ORDER BY orders DESC, other_id LIMIT ${maxCoPurchases}`);
  return rows.map((row) => ({ productId: String(row.productId), orders: Number(row.orders) }));
}

/** Days of purchases that count as "just bought" for item selection. */
const recentPurchaseDays = 120;
/** Browse signals older than this are not read: bounded work per request, and stale interest fades out. */
export const browseWindowDays = 60;

/**
 * The first UTC day (YYYY-MM-DD) of the browse window: browse rollups are per day, so the window is
 * the day `browseWindowDays` ago and every day since. The nightly job deletes older days.
 */
export function browseWindowStart(now: Date): string {
  return new Date(now.getTime() - browseWindowDays * 86_400_000).toISOString().slice(0, 10);
}

/**
 * Until the nightly job has filled customer_products for the orders stored before it existed (the
 * `backfills` row of migration 0019), the product reads below take their rows from the orders, as they
 * did before it. Each read is a UNION ALL of the two forms whose customer key is gated on that one-row
 * check: the form not in use looks up NULL (or an empty list) and reads nothing, where a gate beside
 * the key would still walk the customer's orders for every row.
 */
const backfillPending = sql`EXISTS (SELECT 1 FROM backfills WHERE name = ${productsBackfill} AND done_at IS NULL)`;

export async function loadShopper(
  db: Db,
  accountKey: string,
  now: Date,
  read: { usualProducts?: boolean } = {},
): Promise<ShopperData> {
  const customer = sql`(SELECT customer_id FROM identities WHERE key = ${accountKey})`;
  const fromTable = sql`(SELECT customer_id FROM identities WHERE key = ${accountKey} AND NOT ${backfillPending})`;
  const fromOrders = sql`(SELECT customer_id FROM identities WHERE key = ${accountKey} AND ${backfillPending})`;
  const since = new Date(now.getTime() - recentPurchaseDays * 86_400_000).toISOString();
  const browseSince = browseWindowStart(now);
  // The account's customer and their summary in one statement (no row: no customer holds the account;
  // a null summary: a customer without orders).
  const [owners, stats, recent, views, usual] = await batchRows(db, [
    sql`
      SELECT s.*, i.customer_id AS owner_id FROM identities i
      LEFT JOIN customer_summaries s ON s.customer_id = i.customer_id WHERE i.key = ${accountKey}`,
    sql`SELECT * FROM customer_category_stats WHERE customer_id = ${customer}`,
    sql`
      SELECT product_id AS productId, last_purchased_at AS purchasedAt FROM customer_products
      WHERE customer_id = ${fromTable} AND last_purchased_at >= ${since}
      UNION ALL
      SELECT l.product_id, max(o.placed_at) FROM orders o JOIN order_lines l ON l.order_id = o.id
      WHERE o.customer_id = ${fromOrders} AND o.placed_at >= ${since} GROUP BY l.product_id`,
    sql`
      SELECT category_id AS categoryId, sum(views) AS views, max(last_viewed_at) AS lastViewedAt FROM customer_browse
      WHERE customer_id = ${customer} AND day >= ${browseSince} GROUP BY category_id`,
    ...(read.usualProducts
      ? [
          sql`
      SELECT productId, orders FROM (
        SELECT product_id AS productId, orders FROM customer_products WHERE customer_id = ${fromTable}
        UNION ALL
        SELECT l.product_id, count(DISTINCT o.id) FROM orders o JOIN order_lines l ON l.order_id = o.id
        WHERE o.customer_id = ${fromOrders} GROUP BY l.product_id)
      ORDER BY orders DESC, productId LIMIT ${maxUsualProducts}`,
        ]
      : []),
  ]);
  const owner = owners?.[0] as (Record<string, unknown> & { owner_id: string; customer_id: string | null }) | undefined;
  return {
    customerId: owner?.owner_id ?? null,
    summary: owner?.customer_id ? summaryOf(owner) : null,
    categoryStats: (stats ?? []).map(categoryStatOf),
    recentPurchases: (recent ?? []) as unknown as { productId: string; purchasedAt: string }[],
    browse: (views ?? []) as unknown as BrowseSignal[],
    usualProducts: (usual ?? []).map((row) => ({ productId: String(row.productId), orders: Number(row.orders) })),
  };
}

/**
 * The same reads as loadShopper for a list of customer ids (the console's rule preview and
 * simulation), in one D1 round trip; customers with no summary are absent from the map.
 */
export async function loadShoppers(
  db: Db,
  customerIds: readonly string[],
  now: Date,
): Promise<Map<string, ShopperData>> {
  const shoppers = new Map<string, ShopperData>();
  if (customerIds.length === 0) return shoppers;
  const list = JSON.stringify([...new Set(customerIds)]);
  const ids = sql`(SELECT value FROM json_each(${list}))`;
  const fromTable = sql`(SELECT value FROM json_each(${list}) WHERE NOT ${backfillPending})`;
  const fromOrders = sql`(SELECT value FROM json_each(${list}) WHERE ${backfillPending})`;
  const since = new Date(now.getTime() - recentPurchaseDays * 86_400_000).toISOString();
  const browseSince = browseWindowStart(now);
  const [summaries = [], stats = [], recent = [], views = []] = await batchRows(db, [
    sql`SELECT * FROM customer_summaries WHERE customer_id IN ${ids}`,
    sql`SELECT * FROM customer_category_stats WHERE customer_id IN ${ids}`,
    sql`
      SELECT customer_id AS customerId, product_id AS productId, last_purchased_at AS purchasedAt
      FROM customer_products WHERE customer_id IN ${fromTable} AND last_purchased_at >= ${since}
      UNION ALL
      SELECT o.customer_id, l.product_id, max(o.placed_at) FROM orders o JOIN order_lines l ON l.order_id = o.id
      WHERE o.customer_id IN ${fromOrders} AND o.placed_at >= ${since} GROUP BY o.customer_id, l.product_id`,
    sql`
      SELECT customer_id AS customerId, category_id AS categoryId, sum(views) AS views, max(last_viewed_at) AS lastViewedAt
      FROM customer_browse WHERE customer_id IN ${ids} AND day >= ${browseSince} GROUP BY customer_id, category_id`,
  ]);
  for (const row of summaries) {
    const id = String(row.customer_id);
    shoppers.set(id, {
      customerId: id,
      summary: summaryOf(row),
      categoryStats: [],
      recentPurchases: [],
      browse: [],
      usualProducts: [],
    });
  }
  for (const row of stats) shoppers.get(String(row.customer_id))?.categoryStats.push(categoryStatOf(row));
  for (const row of recent)
    shoppers
      .get(String(row.customerId))
      ?.recentPurchases.push({ productId: String(row.productId), purchasedAt: String(row.purchasedAt) });
  for (const row of views)
    shoppers.get(String(row.customerId))?.browse.push({
      categoryId: String(row.categoryId),
      views: Number(row.views),
      lastViewedAt: String(row.lastViewedAt),
    });
  return shoppers;
}

function summaryOf(s: Record<string, unknown>): CustomerSummary & ProfileSummary {
  return {
    customerId: String(s.customer_id),
    orders: Number(s.orders),
    purchaseDays: Number(s.purchase_days),
    firstOrderAt: String(s.first_order_at),
    lastOrderAt: String(s.last_order_at),
    spend: Number(s.spend),
    secondPurchaseAt: s.second_purchase_at === null ? null : String(s.second_purchase_at),
    gapSquareSum: Number(s.gap_square_sum),
    positiveDays: Number(s.positive_days),
    positiveDaySpend: Number(s.positive_day_spend),
    firstDaySpend: Number(s.first_day_spend),
    webOrders: Number(s.web_orders),
    storeOrders: Number(s.store_orders),
    appOrders: Number(s.app_orders),
    phoneOrders: Number(s.phone_orders),
    units: Number(s.units),
    discountedUnits: Number(s.discounted_units),
  };
}

function categoryStatOf(r: Record<string, unknown>): CategoryStat {
  return {
    categoryId: String(r.category_id),
    orders: Number(r.orders),
    purchaseDays: Number(r.purchase_days),
    units: Number(r.units),
    spend: Number(r.spend),
    firstPurchaseAt: String(r.first_purchase_at),
    lastPurchaseAt: String(r.last_purchase_at),
    avgUnitPrice: Number(r.avg_unit_price),
    discountedUnits: Number(r.discounted_units),
    webUnits: Number(r.web_units),
    storeUnits: Number(r.store_units),
  };
}

interface Cached<T> {
  value: T;
  loadedAt: number;
}
let catalogCache: Cached<{ products: Product[]; categoryNames: Record<string, string> }> | null = null;
const catalogTtlMs = 60_000;

/** Active products and category names, cached per isolate for a minute, read from a replica when there are some. */
export async function cachedCatalog(db: Db, now: Date) {
  if (catalogCache && now.getTime() - catalogCache.loadedAt < catalogTtlMs) return catalogCache.value;
  const shared = replicaReads(db);
  const [products, categories] = await Promise.all([
    shared.query.products.findMany({ where: (p, { eq }) => eq(p.active, true) }),
    shared.query.categories.findMany(),
  ]);
  const value = {
    products: products.map(
      (p): Product => ({
        id: p.id,
        title: p.title,
        categoryId: p.categoryId,
        url: p.url,
        imageUrl: p.imageUrl,
        listPrice: p.listPrice,
        salePrice: p.salePrice,
        inStock: p.inStock,
        active: p.active,
      }),
    ),
    categoryNames: Object.fromEntries(categories.map((c) => [c.id, c.name])),
  };
  catalogCache = { value, loadedAt: now.getTime() };
  return value;
}

export function forgetCatalog() {
  catalogCache = null;
}
