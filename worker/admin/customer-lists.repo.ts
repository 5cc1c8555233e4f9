// The console's customer lists: scored customers filtered and sorted on an index, paged by keyset
// (the last row's sort value and id), never OFFSET, so a page boundary holds while scores change.
import { type SQL, sql } from "drizzle-orm";
import type { Db } from "../env.ts";

export type SortColumn = "clv_at_stake" | "overdue_ratio" | "probability_alive" | "expected_next_order_at";

export interface ListFilter {
  stage?: string;
  valueTier?: string;
  discountSensitivity?: string;
  lapsedCategory?: string;
  column: SortColumn;
  descending: boolean;
  /** The last row of the previous page: its sort value and customer id. */
  after?: { value: number | string; customerId: string };
  limit: number;
}

export interface ListedRow {
  customerId: string;
  stage: string;
  valueTier: string;
  discountSensitivity: string | null;
  clv12: number;
  clv24: number;
  clvAtStake: number;
  probabilityAlive: number;
  overdueRatio: number;
  expectedNextOrderAt: string;
  offer: string | null;
  scoredAt: string;
  /** Distinct days with a purchase when scored (1: a one-time buyer); 0 before the next nightly run. */
  purchaseDays: number;
  sortValue: number | string;
}

/** A listed customer's columns from customer_scores `s`, as ListedRow names them (sortValue apart). */
export const listedColumns = sql`s.customer_id AS customerId, s.stage, s.value_tier AS valueTier,
  s.discount_sensitivity AS discountSensitivity, s.clv_12 AS clv12, s.clv_24 AS clv24, s.clv_at_stake AS clvAtStake,
  s.probability_alive AS probabilityAlive, s.overdue_ratio AS overdueRatio,
  s.expected_next_order_at AS expectedNextOrderAt, s.offer_guidance AS offer, s.scored_at AS scoredAt,
  s.purchase_days AS purchaseDays`;

/**
 * One page of the list. Without a lapsed category it walks one of customer_scores' (sort, id) or
 * (stage, sort, id) indexes; with one, customer_category_lapses' (category, sort, id) index, joined to
 * the scores by primary key. Ties on the sort value are broken by customer id, in the same direction.
 * Sorted by the expected next order, lapsed customers are left out (listedCustomerView gives them none).
 */
export function listQuery(filter: ListFilter): SQL {
  const base = filter.lapsedCategory ? sql.raw("l") : sql.raw("s");
  const column = sql.raw(filter.column);
  const conditions: SQL[] = [];
  if (filter.lapsedCategory) conditions.push(sql`l.category_id = ${filter.lapsedCategory}`);
  if (filter.stage) conditions.push(sql`s.stage = ${filter.stage}`);
  if (filter.valueTier) conditions.push(sql`s.value_tier = ${filter.valueTier}`);
  if (filter.discountSensitivity) conditions.push(sql`s.discount_sensitivity = ${filter.discountSensitivity}`);
  // A lapsed customer is not expected to order (P(alive) near 0): "due soonest" leaves them out.
  if (filter.column === "expected_next_order_at") conditions.push(sql`s.stage <> 'lapsed'`);
  if (filter.after)
    conditions.push(
      filter.descending
        ? sql`(${base}.${column}, ${base}.customer_id) < (${filter.after.value}, ${filter.after.customerId})`
        : sql`(${base}.${column}, ${base}.customer_id) > (${filter.after.value}, ${filter.after.customerId})`,
    );
  const direction = sql.raw(filter.descending ? "DESC" : "ASC");
  const from = filter.lapsedCategory
    ? sql`customer_category_lapses l JOIN customer_scores s ON s.customer_id = l.customer_id`
    : sql`customer_scores s`;
  const where = conditions.length ? sql`WHERE ${sql.join(conditions, sql` AND `)}` : sql``;
  return sql`
    SELECT ${listedColumns}, ${base}.${column} AS sortValue
    FROM ${from} ${where}
    ORDER BY ${base}.${column} ${direction}, ${base}.customer_id ${direction}
    LIMIT ${filter.limit}`;
}

export async function listCustomers(db: Db, filter: ListFilter): Promise<ListedRow[]> {
  return db.all<ListedRow>(listQuery(filter));
}

/** The query plan SQLite picks for a list query (EXPLAIN QUERY PLAN), for the tests that keep it indexed. */
export async function listQueryPlan(db: Db, filter: ListFilter): Promise<string[]> {
  const rows = await db.all<{ detail: string }>(sql`EXPLAIN QUERY PLAN ${listQuery(filter)}`);
  return rows.map((row) => row.detail);
}

/**
 * Match keys (EXPORT_MATCH_KEYS) of a page of customers: identifiers each holds alone (never a shared
 * or unverified one), oldest first, so the newest of a kind is read last. One read on identities_customer_idx.
 */
export async function matchKeysOfCustomers(db: Db, customerIds: readonly string[], kinds: readonly string[]) {
  if (customerIds.length === 0 || kinds.length === 0) return [];
  return db.all<{ customerId: string; kind: string; matchKey: string }>(sql`
    SELECT customer_id AS customerId, kind, match_key AS matchKey FROM identities
    WHERE customer_id IN (SELECT value FROM json_each(${JSON.stringify(customerIds)}))
      AND kind IN (SELECT value FROM json_each(${JSON.stringify(kinds)}))
      AND shared = 0 AND match_key IS NOT NULL
    ORDER BY created_at, key`);
}
