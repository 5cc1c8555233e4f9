// Moves the widget events of a deployment from before the events database (the main database's
// `legacy_events`, the old `events` table renamed) into EVENTS_DB, a page at a time, and folds the
// recent views and clicks into the customers' browse rollups. Safe to stop and rerun at any point:
// 1. a page is read from legacy_events (oldest first);
// 2. it is inserted into EVENTS_DB, skipping dedupe keys already there (a rerun inserts nothing twice);
// 3. one main-database batch adds the page's recent views and clicks to the browse rollups, counted
//    from the rows still in legacy_events, and deletes them, all or nothing: a row is rolled up exactly
//    once, when it leaves legacy_events, even if two runs move the same page at once.
import { sql } from "drizzle-orm";
import { batchRows, jsonEach, runBatch } from "../../db/batch.ts";
import type { Db, EventsDb } from "../env.ts";
import { browseWindowStart } from "../recommendations/recommendations.repo.ts";
import { type EventRow, erasedCustomerRow } from "./events.repo.ts";

/** Rows per page: one read, one insert and one batch each. */
export const legacyPageSize = 1_000;

type LegacyRow = EventRow & { id: number };

async function legacyPage(db: Db, size: number): Promise<LegacyRow[]> {
  const [rows = []] = await batchRows(db, [
    sql`SELECT id, type, recommendation_id AS recommendationId, arm, customer_id AS customerId, product_id AS productId,
          category_id AS categoryId, placement, position, at, dedupe_key AS dedupeKey
        FROM legacy_events ORDER BY id LIMIT ${size}`,
  ]);
  return rows as unknown as LegacyRow[];
}

/**
 * Moves one page; returns how many rows left legacy_events (0 when it is empty). Rows older than the
 * retention cutoff are dropped rather than moved: retention would delete them anyway.
 */
export async function moveLegacyEventsPage(
  db: Db,
  eventsDb: EventsDb,
  now: Date,
  retainSince: string,
  size = legacyPageSize,
): Promise<number> {
  const page = await legacyPage(db, size);
  if (page.length === 0) return 0;
  const kept = page.filter((row) => row.at >= retainSince);
  if (kept.length > 0)
    await eventsDb.run(sql`
      INSERT INTO events (type, recommendation_id, arm, customer_id, product_id, category_id, placement, position, at, dedupe_key)
      SELECT value ->> 'type', value ->> 'recommendationId', value ->> 'arm', value ->> 'customerId', value ->> 'productId',
        value ->> 'categoryId', value ->> 'placement', value ->> 'position', value ->> 'at', value ->> 'dedupeKey'
      FROM ${jsonEach(kept)} AS row
      WHERE NOT ${erasedCustomerRow}
      ON CONFLICT (dedupe_key) DO NOTHING`);
  const ids = sql`(SELECT value FROM ${jsonEach(page.map((row) => row.id))})`;
  const browseSince = browseWindowStart(now);
  await runBatch(db, [
    // As POST /v1/events rolls up: a stored customer's views and clicks in a category, per UTC day.
    sql`
      INSERT INTO customer_browse (customer_id, day, category_id, views, last_viewed_at)
      SELECT customer_id, substr(at, 1, 10), category_id, count(*), max(at) FROM legacy_events
      WHERE id IN ${ids} AND type IN ('view', 'click') AND category_id IS NOT NULL AND at >= ${retainSince}
        AND substr(at, 1, 10) >= ${browseSince} AND EXISTS (SELECT 1 FROM customers WHERE id = legacy_events.customer_id)
      GROUP BY 1, 2, 3
      ON CONFLICT (customer_id, day, category_id) DO UPDATE SET
        views = views + excluded.views, last_viewed_at = max(last_viewed_at, excluded.last_viewed_at)`,
    sql`DELETE FROM legacy_events WHERE id IN ${ids}`,
  ]);
  return page.length;
}
