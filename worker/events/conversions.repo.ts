// Orders attributed to a recommendation, recorded in the events database so holdout results read
// EVENTS_DB alone. The order itself is written first, in the main database's ingestion batch (the
// source of truth); its conversion follows. `order_id` is the key, so recording twice is a no-op, and
// a resent order that carries a recommendation id records its stored conversion again: a conversion
// lost to a failure between the two writes comes back when the client retries.
import { sql } from "drizzle-orm";
import { jsonEach } from "../../db/batch.ts";
import type { Db, EventsDb } from "../env.ts";
import { orderTotals } from "../orders/orders.repo.ts";
import type { OrderInput } from "../orders/orders.schemas.ts";

export interface Conversion {
  orderId: string;
  recommendationId: string;
  total: number;
  /** When the order was placed (ISO). */
  at: string;
}

/** The conversions of the orders this ingestion created with a counted attribution. */
export function conversionsOf(
  orders: readonly OrderInput[],
  results: readonly { id: string; status: string; attribution?: "counted" | "ignored" }[],
): Conversion[] {
  const counted = new Set(
    results.filter((result) => result.status === "created" && result.attribution === "counted").map((r) => r.id),
  );
  const seen = new Set<string>();
  return orders.flatMap((order) => {
    if (!counted.has(order.id) || !order.recommendationId || seen.has(order.id)) return [];
    seen.add(order.id);
    return [
      {
        orderId: order.id,
        recommendationId: order.recommendationId,
        total: orderTotals(order).total,
        at: new Date(order.placedAt).toISOString(),
      },
    ];
  });
}

/**
 * The stored conversions of resent orders (duplicates that carried a recommendation id): read from the
 * main database, where the order and its counted attribution are.
 */
export async function storedConversions(
  db: Db,
  orders: readonly OrderInput[],
  results: readonly { id: string; status: string }[],
): Promise<Conversion[]> {
  const resent = new Set(results.filter((result) => result.status === "duplicate").map((result) => result.id));
  const ids = [...new Set(orders.filter((o) => o.recommendationId && resent.has(o.id)).map((o) => o.id))];
  if (ids.length === 0) return [];
  return db.all<Conversion>(sql`
    SELECT id AS orderId, recommendation_id AS recommendationId, total, placed_at AS at FROM orders
    WHERE id IN (SELECT value FROM ${jsonEach(ids)}) AND recommendation_id IS NOT NULL`);
}

/**
 * Records the conversions, each once, but none of an order an erasure listed in `erased_keys` by its
 * suppression key (`orderKey`): the order was stored before the erasure took it, and this write comes
 * after. One statement: the check and the insert cannot be split by the erasure's batch.
 */
export async function recordConversions(
  eventsDb: EventsDb,
  conversions: readonly Conversion[],
  orderKey: (orderId: string) => Promise<string>,
): Promise<void> {
  if (conversions.length === 0) return;
  const rows = await Promise.all(
    conversions.map(async (conversion) => ({ ...conversion, key: await orderKey(conversion.orderId) })),
  );
  await eventsDb.run(sql`
    INSERT INTO conversions (order_id, recommendation_id, total, at)
    SELECT value ->> 'orderId', value ->> 'recommendationId', value ->> 'total', value ->> 'at' FROM ${jsonEach(rows)} AS row
    WHERE NOT EXISTS (SELECT 1 FROM erased_keys WHERE key = row.value ->> 'key')
    ON CONFLICT (order_id) DO NOTHING`);
}
