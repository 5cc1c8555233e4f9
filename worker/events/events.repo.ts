// Stores widget events in the events database (EVENTS_DB) and rolls a customer's new views and clicks
// up into their browse signal (`customer_browse`: main database, or the customer's shard).
// Deduplication rides on the unique `dedupe_key` index, so a repeated beacon or a retried batch is a
// no-op in the database rather than a read-then-write race; only the events that index let in are
// rolled up, so a replay adds nothing.
import { sql } from "drizzle-orm";
import { batchRows, jsonEach } from "../../db/batch.ts";
import type { Db, EventsDb } from "../env.ts";
import type { EventType } from "./events.schemas.ts";

export interface EventRow {
  type: EventType;
  recommendationId: string | null;
  arm: string | null;
  customerId: string | null;
  productId: string | null;
  categoryId: string | null;
  placement: string | null;
  position: number | null;
  at: string;
  dedupeKey: string;
}

/** An erased customer's entry in the events database's `erased_keys`. */
export const erasedCustomerKey = (customerId: string) => `customer:${customerId}`;

/**
 * Whether the customer of a `json_each` row `row` (an event with `customerId`) is listed as erased:
 * erasedCustomerKey in SQL, for the statements that insert events.
 */
export const erasedCustomerRow = sql`EXISTS (SELECT 1 FROM erased_keys WHERE key = ${erasedCustomerKey("")} || (row.value ->> 'customerId'))`;

/** A request's events as stored: those new, and how many were of a customer an erasure had taken out. */
export interface InsertedEvents {
  inserted: EventRow[];
  erased: number;
}

/**
 * Inserts the rows, skipping any whose dedupe key is already stored, and any of a customer an erasure
 * listed in `erased_keys` (the request read the customer before the erasure; its write comes after).
 * One transaction: the check and the insert cannot be split by the erasure's batch.
 */
export async function insertEvents(eventsDb: EventsDb, rows: EventRow[]): Promise<InsertedEvents> {
  if (rows.length === 0) return { inserted: [], erased: 0 };
  const [stored = [], [counted] = []] = await batchRows(eventsDb, [
    sql`
      INSERT INTO events (type, recommendation_id, arm, customer_id, product_id, category_id, placement, position, at, dedupe_key)
      SELECT value ->> 'type', value ->> 'recommendationId', value ->> 'arm', value ->> 'customerId',
        value ->> 'productId', value ->> 'categoryId', value ->> 'placement', value ->> 'position', value ->> 'at',
        value ->> 'dedupeKey'
      FROM ${jsonEach(rows)} AS row WHERE NOT ${erasedCustomerRow}
      ON CONFLICT (dedupe_key) DO NOTHING
      RETURNING dedupe_key AS dedupeKey`,
    sql`SELECT count(*) AS erased FROM ${jsonEach(rows)} AS row WHERE ${erasedCustomerRow}`,
  ]);
  const inserted = new Set(stored.map((row) => String(row.dedupeKey)));
  // A key repeated within the batch was inserted once: keep its first row only.
  return { inserted: rows.filter((row) => inserted.delete(row.dedupeKey)), erased: Number(counted?.erased ?? 0) };
}

/** One customer's views and clicks of one category on one UTC day. */
export interface BrowseDay {
  customerId: string;
  day: string;
  categoryId: string;
  views: number;
  lastViewedAt: string;
}

/** What counts as browsing (as the shelf reads it): a known customer's views and clicks in a category. */
export function browseDaysOf(rows: readonly Omit<EventRow, "dedupeKey">[]): BrowseDay[] {
  const days = new Map<string, BrowseDay>();
  for (const row of rows) {
    if (row.type === "impression" || !row.customerId || !row.categoryId) continue;
    const day = row.at.slice(0, 10);
    const key = JSON.stringify([row.customerId, day, row.categoryId]);
    const known = days.get(key);
    if (known) {
      known.views += 1;
      if (row.at > known.lastViewedAt) known.lastViewedAt = row.at;
    } else {
      days.set(key, { customerId: row.customerId, day, categoryId: row.categoryId, views: 1, lastViewedAt: row.at });
    }
  }
  return [...days.values()];
}

/**
 * Adds the days to the customers' browse rollups. A customer no longer stored (erased meanwhile) gets
 * nothing, so an erasure is not undone by a late beacon.
 */
export function addBrowseStatement(days: readonly BrowseDay[]) {
  return sql`
    INSERT INTO customer_browse (customer_id, day, category_id, views, last_viewed_at)
    SELECT value ->> 'customerId', value ->> 'day', value ->> 'categoryId', value ->> 'views', value ->> 'lastViewedAt'
    FROM ${jsonEach(days)} WHERE EXISTS (SELECT 1 FROM customers WHERE id = value ->> 'customerId')
    ON CONFLICT (customer_id, day, category_id) DO UPDATE SET
      views = views + excluded.views, last_viewed_at = max(last_viewed_at, excluded.last_viewed_at)`;
}

export async function addBrowse(db: Db, days: readonly BrowseDay[]): Promise<void> {
  if (days.length > 0) await db.run(addBrowseStatement(days));
}

/**
 * Follows merges the main database committed: the merged-away customers' events now belong to the
 * survivor, so a holdout read counts them as one shopper. Run after the main batch; if it fails, the
 * events keep the old id (erasure and export still find them through the merge) and the shopper may
 * count twice in holdout reads, never an event.
 */
export async function moveCustomerEvents(
  eventsDb: EventsDb,
  merges: readonly { from: string; into: string }[],
): Promise<void> {
  if (merges.length === 0) return;
  await eventsDb.run(sql`
    UPDATE events SET customer_id = m.value ->> 'into'
    FROM ${jsonEach(merges)} AS m WHERE events.customer_id = m.value ->> 'from'`);
}
