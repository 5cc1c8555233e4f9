// Reads for one customer's history chart (GET /v1/customers/:id/history): their orders, newest first
// and bounded, as the core's history function reads them.
import { sql } from "drizzle-orm";
import type { HistoryOrder } from "../core/profile/profile-history.ts";
import type { Channel } from "../core/vocabulary.ts";
import type { Db } from "../env.ts";

/** Orders read for the history; a customer with more is charted from their most recent ones, and told so. */
export const maxHistoryOrders = 5_000;

/** The customer's orders (at most maxHistoryOrders, the most recent), one range read on orders_customer_placed_idx. */
export async function historyOrdersOf(
  db: Db,
  customerId: string,
): Promise<{ orders: HistoryOrder[]; truncated: boolean }> {
  const rows = await db.all<{
    placed_at: string;
    channel: Channel;
    total: number;
    units: number;
    discounted_units: number;
  }>(sql`
    SELECT placed_at, channel, total, units, discounted_units FROM orders
    WHERE customer_id = ${customerId} ORDER BY placed_at DESC LIMIT ${maxHistoryOrders + 1}`);
  return {
    orders: rows.slice(0, maxHistoryOrders).map((row) => ({
      placedAt: row.placed_at,
      channel: row.channel,
      total: row.total,
      units: row.units,
      discountedUnits: row.discounted_units,
    })),
    truncated: rows.length > maxHistoryOrders,
  };
}
