// Reads one unified customer: identities (masked only), orders with lines, and the summary.
import { sql } from "drizzle-orm";
import type { Db } from "../env.ts";
import { identitiesOf } from "../identity/identity.repo.ts";
import { linesOf, ordersOf } from "../orders/orders.repo.ts";

/** Follows merged_into to the surviving customer; null when the id was never a customer. */
export async function survivingCustomerId(db: Db, customerId: string): Promise<string | null> {
  let id = customerId;
  for (let hop = 0; hop < 16; hop++) {
    const row = await db.get<{ merged_into: string | null }>(sql`SELECT merged_into FROM customers WHERE id = ${id}`);
    if (!row) return null;
    if (!row.merged_into) return id;
    id = row.merged_into;
  }
  return id;
}

export async function loadCustomer(db: Db, customerId: string, orderLimit: number) {
  const [identities, orders, summary, categories, mergedFrom] = await Promise.all([
    identitiesOf(db, customerId),
    ordersOf(db, customerId, orderLimit),
    db.query.customerSummaries.findFirst({ where: (s, { eq }) => eq(s.customerId, customerId) }),
    db.query.customerCategoryStats.findMany({
      where: (s, { eq }) => eq(s.customerId, customerId),
      orderBy: (s, { desc }) => [desc(s.spend)],
    }),
    db.all<{ id: string }>(sql`SELECT id FROM customers WHERE merged_into = ${customerId} ORDER BY id`),
  ]);
  const lines = await linesOf(
    db,
    orders.map((o) => o.id),
  );
  const linesByOrder = new Map<string, typeof lines>();
  for (const line of lines) linesByOrder.set(line.order_id, [...(linesByOrder.get(line.order_id) ?? []), line]);
  return {
    customerId,
    mergedFrom: mergedFrom.map((row) => row.id),
    identities: identities.map(({ kind, masked }) => ({ kind, masked })),
    orders: orders.map((order) => ({
      id: order.id,
      channel: order.channel,
      storeId: order.storeId,
      placedAt: order.placedAt,
      total: order.total,
      discountTotal: order.discountTotal,
      currency: order.currency,
      lines: (linesByOrder.get(order.id) ?? []).map((line) => ({
        productId: line.product_id,
        categoryId: line.category_id,
        quantity: line.quantity,
        unitPrice: line.unit_price,
        listPrice: line.list_price,
      })),
    })),
    summary: summary
      ? {
          orders: summary.orders,
          purchaseDays: summary.purchaseDays,
          firstOrderAt: summary.firstOrderAt,
          lastOrderAt: summary.lastOrderAt,
          spend: summary.spend,
          channels: {
            web: summary.webOrders,
            store: summary.storeOrders,
            app: summary.appOrders,
            phone: summary.phoneOrders,
          },
          units: summary.units,
          discountedUnits: summary.discountedUnits,
          discountedShare: summary.units > 0 ? summary.discountedUnits / summary.units : 0,
          categories: categories.map((c) => ({
            categoryId: c.categoryId,
            orders: c.orders,
            purchaseDays: c.purchaseDays,
            units: c.units,
            spend: c.spend,
            lastPurchaseAt: c.lastPurchaseAt,
            typicalPricePaid: c.avgUnitPrice,
            discountedShare: c.units > 0 ? c.discountedUnits / c.units : 0,
            onlineUnits: c.webUnits,
            storeUnits: c.storeUnits,
          })),
        }
      : null,
  };
}
