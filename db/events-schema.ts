// The events database (binding EVENTS_DB, database "patron-events"): the widget's impressions, clicks
// and views and the conversions attributed to recommendations, kept apart from customer data with a
// retention of their own (EVENT_RETENTION_DAYS). drizzle-kit generates db/events-migrations from this
// file (drizzle.events.config.ts); `npm run db:check` fails when the two disagree.

import { sql } from "drizzle-orm";
import { index, integer, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** Impressions, clicks and product views from the widget, with the recommendation id and holdout arm. */
export const events = sqliteTable(
  "events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    type: text("type").notNull(), // "impression" | "click" | "view"
    recommendationId: text("recommendation_id"),
    arm: text("arm"),
    customerId: text("customer_id"),
    productId: text("product_id"),
    categoryId: text("category_id"),
    /** The shelf's placement name (`home`, `product`, `cart`, `buy-again` …) when the widget sent one. */
    placement: text("placement"),
    /** The card's 1-based position in its shelf, when the widget sent one. */
    position: integer("position"),
    at: text("at").notNull(),
    dedupeKey: text("dedupe_key").notNull(),
  },
  (t) => [
    uniqueIndex("events_dedupe_idx").on(t.dedupeKey),
    index("events_recommendation_idx").on(t.recommendationId),
    index("events_customer_idx").on(t.customerId, t.at),
    // Retention deletes the oldest rows in bounded chunks; the holdout read starts from a date.
    index("events_at_idx").on(t.at),
    // The first event of a shelf served in an arm (where the results begin while nobody has been held
    // out): the first entry, not a walk past every browse view before it.
    index("events_arm_at_idx").on(t.at).where(sql`${t.arm} IS NOT NULL AND ${t.recommendationId} IS NOT NULL`),
    // The same for one placement (GET /v1/admin/holdout?placement=), not a walk past the others' events.
    index("events_arm_placement_at_idx")
      .on(t.placement, t.at)
      .where(sql`${t.arm} IS NOT NULL AND ${t.recommendationId} IS NOT NULL`),
    // Where a holdout experiment began (its first event of a shelf served to a held-out shopper): the
    // first entry, not a walk past every browse view and personalized shelf before it.
    index("events_holdout_at_idx").on(t.at).where(sql`${t.arm} = 'holdout' AND ${t.recommendationId} IS NOT NULL`),
    // The same for one placement (GET /v1/admin/holdout?placement=), not a walk past the others' events.
    index("events_holdout_placement_at_idx")
      .on(t.placement, t.at)
      .where(sql`${t.arm} = 'holdout' AND ${t.recommendationId} IS NOT NULL`),
  ],
);

/**
 * An order attributed to a recommendation, recorded when POST /v1/orders stores it (orders in the main
 * database stay the source of truth): what the holdout read counts as bought, without a join with
 * `orders`. One row per order, so a replay records nothing twice.
 */
export const conversions = sqliteTable(
  "conversions",
  {
    orderId: text("order_id").primaryKey(),
    recommendationId: text("recommendation_id").notNull(),
    total: real("total").notNull(),
    /** When the order was placed. */
    at: text("at").notNull(),
  },
  (t) => [index("conversions_recommendation_idx").on(t.recommendationId, t.at), index("conversions_at_idx").on(t.at)],
);

/**
 * What erasures took out of this database in the last days: `customer:<id>` for each erased customer
 * (and those merged into them), and the suppression key (`order:<keyed hash>`) of each erased order.
 * A request that read the customer or stored the order before the erasure, and writes here after it,
 * finds its row listed and writes nothing (insertEvents, recordConversions): an erasure is never undone
 * by a write that was already under way. Kept a week (an erasure deletes what is older), far longer than
 * any request lasts.
 */
export const erasedKeys = sqliteTable(
  "erased_keys",
  {
    key: text("key").primaryKey(),
    at: text("at").notNull(),
  },
  (t) => [index("erased_keys_at_idx").on(t.at)],
);
