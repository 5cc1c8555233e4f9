// Reports for the console (admin key): segments from the materialised scores, and holdout results.
import { sql } from "drizzle-orm";
import { batchRows } from "../../db/batch.ts";
import type { RecommendationTotals } from "../core/rules/per-recommendation.ts";
import type { Db, EventsDb } from "../env.ts";
import { ordersWithoutEvents, shownAndBought } from "./experiments.repo.ts";

export interface SegmentFilter {
  stage?: string;
  valueTier?: string;
  discountSensitivity?: string;
  limit: number;
  offset: number;
}

/** A customer as a segment lists them. */
export interface SegmentCustomerRow {
  customerId: string;
  clv12: number;
  clv24: number;
  probabilityAlive: number;
  stage: string;
  valueTier: string;
  discountSensitivity: string | null;
  scoredAt: string;
}

/** A stage × tier group of a segment: its customer count and CLV. */
export interface SegmentGroupRow {
  stage: string;
  valueTier: string;
  customers: number;
  clv12: number;
}

const segmentWhere = (filter: SegmentFilter) => sql`(${filter.stage ?? null} IS NULL OR stage = ${filter.stage ?? null})
    AND (${filter.valueTier ?? null} IS NULL OR value_tier = ${filter.valueTier ?? null})
    AND (${filter.discountSensitivity ?? null} IS NULL OR discount_sensitivity = ${filter.discountSensitivity ?? null})`;

/** A page of the scored customers in a segment, most valuable first (ties by id). */
export function segmentCustomersQuery(filter: SegmentFilter) {
  return sql`
    SELECT customer_id AS customerId, clv_12 AS clv12, clv_24 AS clv24, probability_alive AS probabilityAlive, stage,
      value_tier AS valueTier, discount_sensitivity AS discountSensitivity, scored_at AS scoredAt
    FROM customer_scores WHERE ${segmentWhere(filter)} ORDER BY clv_12 DESC, customer_id LIMIT ${filter.limit} OFFSET ${filter.offset}`;
}

/**
 * The segment's customer count and CLV by stage × tier; the CLV rounded to cents, or not (`rounded`
 * false) for a sum that is added to other shards' sums before it is rounded.
 */
export function segmentSummaryQuery(filter: SegmentFilter, rounded = true) {
  const clv12 = rounded ? sql`round(sum(clv_12), 2)` : sql`sum(clv_12)`;
  return sql`
    SELECT stage, value_tier AS valueTier, count(*) AS customers, ${clv12} AS clv12
    FROM customer_scores WHERE ${segmentWhere(filter)} GROUP BY stage, value_tier ORDER BY stage, value_tier`;
}

/** Scored customers in a segment, most valuable first, and the customer count and CLV by stage × tier. */
export async function segment(db: Db, filter: SegmentFilter) {
  const [customers = [], summary = []] = await batchRows(db, [
    segmentCustomersQuery(filter),
    segmentSummaryQuery(filter),
  ]);
  return { customers, summary };
}

export interface HoldoutRow {
  arm: string;
  recommendations: number;
  customers: number;
  impressions: number;
  clicks: number;
  attributedOrders: number;
  attributedRevenue: number;
}

/**
 * Holdout results since a date, per arm and per placement × arm (events without a placement under
 * null): what was shown and clicked (widget events, whose arm comes from the signed recommendation
 * id) and the orders attributed to those recommendations. With `placement`, only that placement's
 * shelves count. Also per arm, what the orders-per-recommendation interval needs, and the attributed
 * orders left out because their shelf reported no event (whatever the placement: without events it is
 * unknown). One round trip to the events database (EVENTS_DB).
 */
export async function holdoutResults(
  eventsDb: EventsDb,
  since: string,
  placement?: string,
  until: string | null = null,
) {
  const shown = shownAndBought(since, placement, until);
  const measures = sql`count(*) AS recommendations, count(DISTINCT s.customer_id) AS customers,
      sum(s.impressions) AS impressions, sum(s.clicks) AS clicks,
      coalesce(sum(b.orders), 0) AS attributedOrders, round(coalesce(sum(b.revenue), 0), 2) AS attributedRevenue,
      coalesce(sum(b.orders * b.orders), 0) AS attributedOrdersSquares
    FROM shown s LEFT JOIN bought b ON b.recommendation_id = s.recommendation_id`;
  const [arms = [], placements = [], [left] = []] = await batchRows(eventsDb, [
    sql`${shown} SELECT s.arm, ${measures} GROUP BY s.arm ORDER BY s.arm`,
    sql`${shown} SELECT s.placement, s.arm, ${measures} GROUP BY s.placement, s.arm ORDER BY s.placement, s.arm`,
    ordersWithoutEvents(since, until),
  ]);
  const row = (r: Record<string, unknown>): HoldoutRow => ({
    arm: String(r.arm),
    recommendations: Number(r.recommendations),
    customers: Number(r.customers),
    impressions: Number(r.impressions),
    clicks: Number(r.clicks),
    attributedOrders: Number(r.attributedOrders),
    attributedRevenue: Number(r.attributedRevenue),
  });
  return {
    arms: arms.map(row),
    perRecommendation: new Map<string, RecommendationTotals>(
      arms.map((r) => [
        String(r.arm),
        {
          recommendations: Number(r.recommendations),
          orders: Number(r.attributedOrders),
          ordersSquares: Number(r.attributedOrdersSquares),
        },
      ]),
    ),
    placements: placements.map((r) => ({ placement: r.placement === null ? null : String(r.placement), ...row(r) })),
    withoutEvents: {
      attributedOrders: Number(left?.attributedOrders ?? 0),
      attributedRevenue: Number(left?.attributedRevenue ?? 0),
    },
  };
}
