// Orders, order lines and the per-customer totals derived from them (customer_summaries,
// customer_category_stats and customer_products). The totals are written in the same D1 batch as the
// orders, so they never drift: a new order is added to the totals read before the batch
// (customer-totals.ts addOrder), the batch aborting if they changed meanwhile (totalsGuard), and a merge
// or a moved order rebuilds them from the orders table. A replay adds nothing: its orders are not new.
import { type SQL, sql } from "drizzle-orm";
import { batchRows, jsonEach } from "../../db/batch.ts";
import type {
  CategoryTotals,
  CustomerTotals,
  StoredDay,
  SummaryTotals,
  TotalsOrder,
} from "../core/profile/customer-totals.ts";
import type { Db } from "../env.ts";
import type { OrderInput } from "./orders.schemas.ts";

const linesPerStatement = 2_000;

function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}

/** A line counts as discounted when it was paid at least half a cent under list price. */
const discountEpsilon = 0.005;

/**
 * Of `ids`, the orders stored already, each with the fingerprint it was stored with (null: stored before
 * fingerprints existed): one read, the one that finds the duplicates.
 */
export async function storedFingerprints(db: Db, ids: string[]): Promise<Map<string, string | null>> {
  if (ids.length === 0) return new Map();
  const rows = await db.all<{ id: string; fingerprint: string | null }>(
    sql`SELECT id, fingerprint FROM orders WHERE id IN (SELECT value FROM ${jsonEach(ids)})`,
  );
  return new Map(rows.map((row) => [row.id, row.fingerprint]));
}

export function orderTotals(order: OrderInput) {
  let total = 0;
  let discountTotal = 0;
  let units = 0;
  let discountedUnits = 0;
  for (const line of order.lines) {
    const list = line.listPrice ?? line.unitPrice;
    total += line.quantity * line.unitPrice;
    discountTotal += Math.max(0, line.quantity * (list - line.unitPrice));
    units += line.quantity;
    if (line.unitPrice < list - discountEpsilon) discountedUnits += line.quantity;
  }
  const round = (n: number) => Math.round(n * 100) / 100;
  return { total: round(total), discountTotal: round(discountTotal), units, discountedUnits };
}

/** An order as the totals see it: stored time spelling, totals as stored, list price defaulted. */
export function totalsOrderOf(order: OrderInput): TotalsOrder {
  const { total, units, discountedUnits } = orderTotals(order);
  return {
    id: order.id,
    placedAt: new Date(order.placedAt).toISOString(),
    channel: order.channel,
    total,
    units,
    discountedUnits,
    lines: order.lines.map((line) => ({ ...line, listPrice: line.listPrice ?? line.unitPrice })),
  };
}

/** Orders to store, each with its customer and the fingerprint of the content it was sent with. */
export function insertOrderStatements(
  newOrders: { order: OrderInput; customerId: string; fingerprint: string | null }[],
  now: string,
) {
  const orderRows = newOrders.map(({ order, customerId, fingerprint }) => ({
    id: order.id,
    customerId,
    channel: order.channel,
    storeId: order.storeId ?? null,
    placedAt: new Date(order.placedAt).toISOString(),
    currency: order.currency,
    recommendationId: order.recommendationId ?? null,
    fingerprint,
    ...orderTotals(order),
  }));
  const lineRows = newOrders.flatMap(({ order }) =>
    order.lines.map((line, lineNo) => ({
      ...line,
      listPrice: line.listPrice ?? line.unitPrice,
      orderId: order.id,
      lineNo,
    })),
  );
  return [
    sql`
      INSERT OR IGNORE INTO orders (id, customer_id, channel, store_id, placed_at, currency, total, discount_total, units,
        discounted_units, recommendation_id, created_at, fingerprint)
      SELECT value ->> 'id', value ->> 'customerId', value ->> 'channel', value ->> 'storeId', value ->> 'placedAt',
        value ->> 'currency', value ->> 'total', value ->> 'discountTotal', value ->> 'units', value ->> 'discountedUnits',
        value ->> 'recommendationId', ${now}, value ->> 'fingerprint'
      FROM ${jsonEach(orderRows)}`,
    ...chunks(lineRows, linesPerStatement).map(
      (chunk) => sql`
      INSERT OR IGNORE INTO order_lines (order_id, line_no, product_id, category_id, quantity, unit_price, list_price)
      SELECT value ->> 'orderId', value ->> 'lineNo', value ->> 'productId', value ->> 'categoryId', value ->> 'quantity',
        value ->> 'unitPrice', value ->> 'listPrice'
      FROM ${jsonEach(chunk)}`,
    ),
  ];
}

export function reassignOrderStatements(changes: { orderId: string; customerId: string }[]) {
  if (changes.length === 0) return [];
  return [
    sql`
      UPDATE orders SET customer_id = c.value ->> 'customerId'
      FROM ${jsonEach(changes)} AS c WHERE orders.id = c.value ->> 'orderId'`,
  ];
}

/**
 * Rebuilds the summary, per-category stats and product rows of each customer from their orders;
 * `revision` marks the rows written (see totalsGuard).
 */
export function rebuildSummaryStatements(customerIds: string[], now: string, revision: string) {
  if (customerIds.length === 0) return [];
  const ids = jsonEach(customerIds);
  return [
    sql`DELETE FROM customer_summaries WHERE customer_id IN (SELECT value FROM ${ids})`,
    // Purchase days (every order of one UTC day is one purchase occasion, as both models count them),
    // numbered and with the gap to the previous day, give the spend model's day totals, the second
    // purchase day and Σ gap² (the rhythm's regularity). julianday() differences are whole days here.
    sql`
      WITH o AS (SELECT * FROM orders WHERE customer_id IN (SELECT value FROM ${ids})),
      days AS (
        SELECT customer_id, substr(placed_at, 1, 10) AS day, sum(total) AS total FROM o GROUP BY customer_id, day),
      numbered AS (
        SELECT customer_id, day, total,
          row_number() OVER (PARTITION BY customer_id ORDER BY day) AS n,
          julianday(day) - lag(julianday(day)) OVER (PARTITION BY customer_id ORDER BY day) AS gap
        FROM days),
      per_day AS (
        SELECT customer_id, max(CASE WHEN n = 2 THEN day END) AS second_day, coalesce(sum(gap * gap), 0) AS gap_squares,
          sum(total > 0) AS positive_days, sum(CASE WHEN total > 0 THEN total ELSE 0 END) AS positive_day_spend,
          max(0, sum(CASE WHEN n = 1 THEN total ELSE 0 END)) AS first_day_spend,
          sum(CASE WHEN n = days THEN total ELSE 0 END) AS last_day_spend
        FROM (SELECT *, count(*) OVER (PARTITION BY customer_id) AS days FROM numbered) GROUP BY customer_id)
      INSERT INTO customer_summaries (customer_id, orders, purchase_days, first_order_at, last_order_at, spend,
        positive_orders, positive_spend, first_order_spend, second_purchase_at, gap_square_sum, positive_days,
        positive_day_spend, first_day_spend, last_day_spend, web_orders, store_orders, app_orders, phone_orders, units,
        discounted_units, updated_at, revision)
      SELECT o.customer_id, count(*), count(DISTINCT substr(o.placed_at, 1, 10)), min(o.placed_at), max(o.placed_at),
        sum(o.total), sum(o.total > 0), sum(CASE WHEN o.total > 0 THEN o.total ELSE 0 END),
        max(0, (SELECT f.total FROM orders f WHERE f.customer_id = o.customer_id ORDER BY f.placed_at, f.id LIMIT 1)),
        d.second_day, d.gap_squares, d.positive_days, d.positive_day_spend, d.first_day_spend, d.last_day_spend,
        sum(o.channel = 'web'), sum(o.channel = 'store'), sum(o.channel = 'app'), sum(o.channel = 'phone'),
        sum(o.units), sum(o.discounted_units), ${now}, ${revision}
      FROM o JOIN per_day d ON d.customer_id = o.customer_id GROUP BY o.customer_id`,
    sql`DELETE FROM customer_category_stats WHERE customer_id IN (SELECT value FROM ${ids})`,
    sql`
      INSERT INTO customer_category_stats (customer_id, category_id, orders, purchase_days, units, spend, first_purchase_at,
        last_purchase_at, avg_unit_price, discounted_units, web_units, store_units)
      SELECT o.customer_id, l.category_id, count(DISTINCT o.id), count(DISTINCT substr(o.placed_at, 1, 10)), sum(l.quantity),
        sum(l.quantity * l.unit_price), min(o.placed_at), max(o.placed_at),
        coalesce(sum(l.quantity * l.unit_price) / nullif(sum(l.quantity), 0), 0),
        sum(CASE WHEN l.unit_price < l.list_price - ${discountEpsilon} THEN l.quantity ELSE 0 END),
        sum(CASE WHEN o.channel IN ('web', 'app') THEN l.quantity ELSE 0 END),
        sum(CASE WHEN o.channel = 'store' THEN l.quantity ELSE 0 END)
      FROM orders o JOIN order_lines l ON l.order_id = o.id
      WHERE o.customer_id IN (SELECT value FROM ${ids})
      GROUP BY o.customer_id, l.category_id`,
    ...rebuildProductStatements(customerIds),
  ];
}

/**
 * customer_products rows from the stored orders matching `where` (on `orders o`): per customer and
 * product, the orders that held it and the last time it was bought, as `customerId`, `productId`,
 * `orders`, `lastPurchasedAt`. The one aggregation every writer of the table, and the export, use.
 */
export function productAggregate(where: SQL): SQL {
  return sql`
    SELECT o.customer_id AS customerId, l.product_id AS productId, count(DISTINCT o.id) AS orders,
      max(o.placed_at) AS lastPurchasedAt
    FROM orders o JOIN order_lines l ON l.order_id = o.id
    WHERE ${where}
    GROUP BY o.customer_id, l.product_id`;
}

function productRowsFrom(where: SQL): SQL {
  return sql`INSERT INTO customer_products (customer_id, product_id, orders, last_purchased_at) ${productAggregate(where)}`;
}

/**
 * Rebuilds the product rows of these customers from their stored orders: a recompute of the totals,
 * and a region arriving in a shard (whose rows the source may not have filled yet).
 */
export function rebuildProductStatements(customerIds: readonly string[]): SQL[] {
  if (customerIds.length === 0) return [];
  const ids = sql`(SELECT value FROM ${jsonEach(customerIds)})`;
  return [
    sql`DELETE FROM customer_products WHERE customer_id IN ${ids}`,
    productRowsFrom(sql`o.customer_id IN ${ids}`),
  ];
}

/**
 * Rebuilds the product rows of the customers whose ids run from `first` to `last` from their orders:
 * one page of the nightly job's backfill of orders stored before customer_products existed.
 */
export function rebuildProductRangeStatements(first: string, last: string): SQL[] {
  return [
    sql`DELETE FROM customer_products WHERE customer_id >= ${first} AND customer_id <= ${last}`,
    productRowsFrom(sql`o.customer_id >= ${first} AND o.customer_id <= ${last}`),
  ];
}

/**
 * Adds stored new orders (by id, in this batch after their rows) to their customers' product rows: one
 * more order for each product an order holds, and the latest purchase time. Addition and max do not
 * depend on the order orders arrive in, so this needs no read first; the batch's totalsGuard keeps it
 * from counting an order twice, as it does the summary.
 */
export function addProductsStatements(orderIds: readonly string[]): SQL[] {
  if (orderIds.length === 0) return [];
  return [
    sql`${productRowsFrom(sql`o.id IN (SELECT value FROM ${jsonEach(orderIds)})`)}
      ON CONFLICT (customer_id, product_id) DO UPDATE SET orders = customer_products.orders + excluded.orders,
        last_purchased_at = max(customer_products.last_purchased_at, excluded.last_purchased_at)`,
  ];
}

/** customer_summaries columns, in CustomerTotals' names. */
const summaryColumns = {
  orders: "orders",
  purchaseDays: "purchase_days",
  firstOrderAt: "first_order_at",
  lastOrderAt: "last_order_at",
  spend: "spend",
  positiveOrders: "positive_orders",
  positiveSpend: "positive_spend",
  firstOrderSpend: "first_order_spend",
  secondPurchaseAt: "second_purchase_at",
  gapSquareSum: "gap_square_sum",
  positiveDays: "positive_days",
  positiveDaySpend: "positive_day_spend",
  firstDaySpend: "first_day_spend",
  lastDaySpend: "last_day_spend",
  webOrders: "web_orders",
  storeOrders: "store_orders",
  appOrders: "app_orders",
  phoneOrders: "phone_orders",
  units: "units",
  discountedUnits: "discounted_units",
} satisfies Record<keyof SummaryTotals, string>;

/** customer_category_stats columns, in CategoryTotals' names. */
const categoryColumns = {
  categoryId: "category_id",
  orders: "orders",
  purchaseDays: "purchase_days",
  units: "units",
  spend: "spend",
  firstPurchaseAt: "first_purchase_at",
  lastPurchaseAt: "last_purchase_at",
  avgUnitPrice: "avg_unit_price",
  discountedUnits: "discounted_units",
  webUnits: "web_units",
  storeUnits: "store_units",
} satisfies Record<keyof CategoryTotals, string>;

const selectAs = (columns: Record<string, string>, alias: string) =>
  sql.raw(
    Object.entries(columns)
      .map(([name, column]) => `${alias}.${column} AS "${name}"`)
      .join(", "),
  );

/**
 * The stored totals of some customers, with the revision they were read at; absent customers have none.
 * Of each customer's category rows only those of `categories` (the ones the orders being added touch,
 * all a fold reads or writes): one seek each along the primary key, however many categories the
 * customer has bought in.
 */
export async function loadTotals(
  db: Db,
  wanted: readonly { customerId: string; categories: readonly string[] }[],
): Promise<Map<string, { totals: CustomerTotals; revision: string }>> {
  const loaded = new Map<string, { totals: CustomerTotals; revision: string }>();
  if (wanted.length === 0) return loaded;
  const pairs = wanted.flatMap(({ customerId, categories }) =>
    [...new Set(categories)].map((categoryId) => ({ customerId, categoryId })),
  );
  const [summaries = [], categories = []] = await batchRows(db, [
    sql`SELECT s.customer_id AS "customerId", s.revision, ${selectAs(summaryColumns, "s")}
        FROM customer_summaries s
        WHERE s.customer_id IN (SELECT value FROM ${jsonEach(wanted.map(({ customerId }) => customerId))})`,
    sql`SELECT c.customer_id AS "customerId", ${selectAs(categoryColumns, "c")}
        FROM ${jsonEach(pairs)} w JOIN customer_category_stats c
          ON c.customer_id = w.value ->> 'customerId' AND c.category_id = w.value ->> 'categoryId'`,
  ]);
  for (const { customerId, revision, ...summary } of summaries)
    loaded.set(String(customerId), {
      totals: { summary: summary as unknown as SummaryTotals, categories: [] },
      revision: String(revision),
    });
  for (const { customerId, ...category } of categories)
    loaded.get(String(customerId))?.totals.categories.push(category as unknown as CategoryTotals);
  return loaded;
}

/**
 * What the stored orders say about some customers' days (YYYY-MM-DD), for folding orders placed before
 * the customer's last purchase day: each day's total and categories and the purchase days either side,
 * by customer then day. One statement; each day is a few seeks along orders_customer_placed_idx and the
 * lines' primary key, however long the history. Read it after loadTotals: the batch's totalsGuard
 * then also covers it (any order written for the customer in between moves the revision read there).
 */
export async function loadDays(
  db: Db,
  wanted: readonly { customerId: string; day: string }[],
): Promise<Map<string, Map<string, StoredDay>>> {
  const days = new Map<string, Map<string, StoredDay>>();
  if (wanted.length === 0) return days;
  const rows = await db.all<{
    customerId: string;
    day: string;
    total: number | null;
    previousDay: string | null;
    nextDay: string | null;
    categories: string;
  }>(sql`
    WITH w AS (
      SELECT value ->> 'customerId' AS customer_id, value ->> 'day' AS day, date(value ->> 'day', '+1 day') AS after
      FROM ${jsonEach(wanted)})
    SELECT w.customer_id AS "customerId", w.day,
      (SELECT sum(o.total) FROM orders o
        WHERE o.customer_id = w.customer_id AND o.placed_at >= w.day AND o.placed_at < w.after) AS total,
      (SELECT substr(o.placed_at, 1, 10) FROM orders o WHERE o.customer_id = w.customer_id AND o.placed_at < w.day
        ORDER BY o.placed_at DESC LIMIT 1) AS "previousDay",
      (SELECT substr(o.placed_at, 1, 10) FROM orders o WHERE o.customer_id = w.customer_id AND o.placed_at >= w.after
        ORDER BY o.placed_at LIMIT 1) AS "nextDay",
      (SELECT json_group_array(DISTINCT l.category_id) FROM orders o JOIN order_lines l ON l.order_id = o.id
        WHERE o.customer_id = w.customer_id AND o.placed_at >= w.day AND o.placed_at < w.after) AS categories
    FROM w`);
  for (const { customerId, day, total, previousDay, nextDay, categories } of rows) {
    const ofCustomer = days.get(customerId) ?? new Map<string, StoredDay>();
    ofCustomer.set(day, { total, previousDay, nextDay, categories: JSON.parse(categories) as string[] });
    days.set(customerId, ofCustomer);
  }
  return days;
}

/**
 * For an ingest batch: aborts it (NOT NULL on ingest_checks.ok, as regionGuard) when any of these
 * customers' totals were written since they were read at `revision` (null: believed absent), so folding
 * an order into totals another request just changed can never lose or double-count an order.
 */
export function totalsGuard(read: readonly { customerId: string; revision: string | null }[]): SQL {
  return sql`
    INSERT INTO ingest_checks (ok) SELECT CASE WHEN NOT EXISTS (
      SELECT 1 FROM ${jsonEach(read)} j LEFT JOIN customer_summaries s ON s.customer_id = j.value ->> 'customerId'
      WHERE s.revision IS NOT (j.value ->> 'revision')) THEN 1 END`;
}

/** INSERT … SELECT of JSON rows (field → column), updating every column but the key on conflict. */
function upsertRows(
  table: string,
  key: readonly string[],
  columns: Record<string, string>,
  rows: readonly object[],
  fixed: Record<string, SQL> = {},
): SQL {
  const fields = Object.keys(columns);
  const targets = [...fields.map((field) => columns[field]!), ...Object.keys(fixed)];
  const values = sql.join(
    [...fields.map((field) => sql.raw(`value ->> '${field}'`)), ...Object.values(fixed)],
    sql`, `,
  );
  const updates = targets
    .filter((column) => !key.includes(column))
    .map((column) => `${column} = excluded.${column}`)
    .join(", ");
  return sql`
    INSERT INTO ${sql.raw(table)} (${sql.raw(targets.join(", "))})
    SELECT ${values} FROM ${jsonEach(rows)} WHERE true
    ON CONFLICT (${sql.raw(key.join(", "))}) DO UPDATE SET ${sql.raw(updates)}`;
}

/** One customer's totals to write: the summary, and the category rows that changed. */
export interface TotalsWrite {
  customerId: string;
  summary: SummaryTotals;
  categories: readonly CategoryTotals[];
}

/**
 * Writes customers' summaries and the given category rows (those the new orders touched; the others
 * did not change), the summaries marked with `revision`.
 */
export function writeTotalsStatements(rows: readonly TotalsWrite[], now: string, revision: string): SQL[] {
  if (rows.length === 0) return [];
  const summaries = rows.map(({ customerId, summary }) => ({ customerId, ...summary }));
  const categories = rows.flatMap(({ customerId, categories }) =>
    categories.map((category) => ({ customerId, ...category })),
  );
  return [
    upsertRows("customer_summaries", ["customer_id"], { customerId: "customer_id", ...summaryColumns }, summaries, {
      updated_at: sql`${now}`,
      revision: sql`${revision}`,
    }),
    ...(categories.length > 0
      ? [
          upsertRows(
            "customer_category_stats",
            ["customer_id", "category_id"],
            { customerId: "customer_id", ...categoryColumns },
            categories,
          ),
        ]
      : []),
  ];
}

export async function ordersOf(db: Db, customerId: string, limit: number) {
  return db.query.orders.findMany({
    where: (o, { eq }) => eq(o.customerId, customerId),
    orderBy: (o, { desc }) => [desc(o.placedAt)],
    limit,
  });
}

export async function linesOf(db: Db, orderIds: string[]) {
  if (orderIds.length === 0) return [];
  return db.all<{
    order_id: string;
    product_id: string;
    category_id: string;
    quantity: number;
    unit_price: number;
    list_price: number;
  }>(sql`SELECT order_id, product_id, category_id, quantity, unit_price, list_price FROM order_lines
         WHERE order_id IN (SELECT value FROM ${jsonEach(orderIds)}) ORDER BY order_id, line_no`);
}
