// Orders, order lines and the per-customer summaries derived from them. Summaries are rebuilt from
// the orders table inside the same D1 batch that writes the orders, so they can never drift, a
// replay cannot double-count, and a merge moves history by re-pointing orders.
import { sql } from "drizzle-orm";
import { jsonEach } from "../../db/batch.ts";
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

export async function existingOrderIds(db: Db, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db.all<{ id: string }>(
    sql`SELECT id FROM orders WHERE id IN (SELECT value FROM ${jsonEach(ids)})`,
  );
  return new Set(rows.map((row) => row.id));
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

export function insertOrderStatements(newOrders: { order: OrderInput; customerId: string }[], now: string) {
  const orderRows = newOrders.map(({ order, customerId }) => ({
    id: order.id,
    customerId,
    channel: order.channel,
    storeId: order.storeId ?? null,
    placedAt: new Date(order.placedAt).toISOString(),
    currency: order.currency,
    recommendationId: order.recommendationId ?? null,
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
        discounted_units, recommendation_id, created_at)
      SELECT value ->> 'id', value ->> 'customerId', value ->> 'channel', value ->> 'storeId', value ->> 'placedAt',
        value ->> 'currency', value ->> 'total', value ->> 'discountTotal', value ->> 'units', value ->> 'discountedUnits',
        value ->> 'recommendationId', ${now}
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

/** Rebuilds the summary and per-category stats of each customer from their orders. */
export function rebuildSummaryStatements(customerIds: string[], now: string) {
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
          max(0, sum(CASE WHEN n = 1 THEN total ELSE 0 END)) AS first_day_spend
        FROM numbered GROUP BY customer_id)
      INSERT INTO customer_summaries (customer_id, orders, purchase_days, first_order_at, last_order_at, spend,
        positive_orders, positive_spend, first_order_spend, second_purchase_at, gap_square_sum, positive_days,
        positive_day_spend, first_day_spend, web_orders, store_orders, app_orders, phone_orders, units,
        discounted_units, updated_at)
      SELECT o.customer_id, count(*), count(DISTINCT substr(o.placed_at, 1, 10)), min(o.placed_at), max(o.placed_at),
        sum(o.total), sum(o.total > 0), sum(CASE WHEN o.total > 0 THEN o.total ELSE 0 END),
        max(0, (SELECT f.total FROM orders f WHERE f.customer_id = o.customer_id ORDER BY f.placed_at, f.id LIMIT 1)),
        d.second_day, d.gap_squares, d.positive_days, d.positive_day_spend, d.first_day_spend,
        sum(o.channel = 'web'), sum(o.channel = 'store'), sum(o.channel = 'app'), sum(o.channel = 'phone'),
        sum(o.units), sum(o.discounted_units), ${now}
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
