// Holdout experiment reads for GET /v1/admin/holdout: per arm, the per-shopper sums and sums of
// squares the intervals need (core/rules/experiment.ts), and the same counts per day or week for a
// chart. A shopper is a customer shown at least one recommendation in the window; impressions and
// clicks come from the widget's events, orders and revenue from orders attributed to those
// recommendations (the conversions ingestion records). Everything is read from the events database
// (EVENTS_DB) alone; both reads share one D1 round trip and aggregate in SQL: no rows per shopper leave D1.
import { sql } from "drizzle-orm";
import { batchRows } from "../../db/batch.ts";
import type { ArmTotals } from "../core/rules/experiment.ts";
import type { EventsDb } from "../env.ts";

export interface PeriodRow {
  period: string;
  arm: string;
  shoppers: number;
  impressions: number;
  clicks: number;
  attributedOrders: number;
  converted: number;
  revenue: number;
}

/** SQLite date expressions for a period's first day, from an ISO instant. */
const periodOf = {
  day: (at: ReturnType<typeof sql>) => sql`substr(${at}, 1, 10)`,
  // Monday of the ISO week: weekday 0 is Sunday, so step back (weekday + 6) % 7 days.
  week: (at: ReturnType<typeof sql>) =>
    sql`date(${at}, '-' || ((CAST(strftime('%w', ${at}) AS INTEGER) + 6) % 7) || ' days')`,
};

/** Events of one placement (a recommendation id is one shelf, so its events share it), or all of them. */
function placementFilter(placement: string | undefined) {
  return placement === undefined ? sql`1` : sql`placement = ${placement}`;
}

/**
 * The first event kept of a shelf served to a held-out shopper (`holdout`) or in either arm (`arm`), of
 * one placement or all, along the partial index that holds only such events (events_holdout_at_idx,
 * events_arm_at_idx, and their placement twins).
 */
const firstEventQuery = (
  of: "holdout" | "arm",
  placement: string | undefined,
  last = false,
) => sql`SELECT at FROM events
    WHERE ${of === "holdout" ? sql`arm = 'holdout'` : sql`arm IS NOT NULL`} AND recommendation_id IS NOT NULL
      AND ${placementFilter(placement)} ORDER BY at ${last ? sql`DESC` : sql`ASC`} LIMIT 1`;

/**
 * When the experiment's results begin: the first event kept of a shelf served to a held-out shopper (of
 * this placement). Shelves served before it, while HOLDOUT_SHARE was 0, had nothing to be compared
 * with, and counting them would put the shoppers a raised share holds out in both arms. While nobody
 * has been held out, the first event of either arm (the personalized figures alone, with no lift); null
 * before any.
 */
export async function experimentBegan(
  eventsDb: EventsDb,
  placement?: string,
): Promise<{ began: string | null; lastHeld: string | null }> {
  const [held, first, last] = await batchRows(eventsDb, [
    firstEventQuery("holdout", placement),
    firstEventQuery("arm", placement),
    firstEventQuery("holdout", placement, true),
  ]);
  return {
    began: (held?.[0]?.at as string | undefined) ?? (first?.[0]?.at as string | undefined) ?? null,
    // The last event of a held-out shelf: where an experiment stopped (HOLDOUT_SHARE set to 0) ends.
    lastHeld: (last?.[0]?.at as string | undefined) ?? null,
  };
}

/**
 * The query plans of experimentBegan's first-event reads (tests/worker/holdout-intervals.test.ts checks
 * they use the indexes); its last-event read walks the holdout index the other way.
 */
export async function experimentBeganPlan(eventsDb: EventsDb, placement?: string): Promise<string[][]> {
  const plan = async (of: "holdout" | "arm") =>
    (await eventsDb.all<{ detail: string }>(sql`EXPLAIN QUERY PLAN ${firstEventQuery(of, placement)}`)).map(
      (row) => row.detail,
    );
  return [await plan("holdout"), await plan("arm")];
}

/**
 * The two CTEs every holdout read starts from: `shown`, one row per recommendation id and arm served
 * since `since` (its shopper, placement, first event, impressions, and clicks: the cards clicked, a
 * product's or a category's, each once however often, and never more than the impressions counted), and
 * `bought`, the orders attributed to those ids (conversions, placed since `since`). With `until` (the
 * experiment ended), only the shelves first shown by then, each with all its events and orders.
 */
export function shownAndBought(since: string, placement: string | undefined, until: string | null = null) {
  return sql`
    WITH shown AS (
      SELECT recommendation_id, arm, max(placement) AS placement, max(customer_id) AS customer_id,
        min(at) AS first_at, sum(type = 'impression') AS impressions,
        min(count(DISTINCT CASE WHEN type = 'click' THEN coalesce('p:' || product_id, 'c:' || category_id) END),
          sum(type = 'impression')) AS clicks
      FROM events WHERE at >= ${since} AND arm IS NOT NULL AND recommendation_id IS NOT NULL
        AND ${placementFilter(placement)}
      GROUP BY recommendation_id, arm ${until === null ? sql`` : sql`HAVING min(at) <= ${until}`}
    ), bought AS (
      SELECT recommendation_id, count(*) AS orders, sum(total) AS revenue FROM conversions
      WHERE at >= ${since} AND recommendation_id IN (SELECT recommendation_id FROM shown) GROUP BY recommendation_id
    )`;
}

/**
 * Orders attributed since `since` (conversions) to recommendations with no widget event since then, in
 * any arm or placement: their shopper is not known to have been shown the shelf, so they are in no arm,
 * lift or interval. With `until`, only the orders placed by then. Reads conversions by date and events
 * by recommendation id, both along indexes.
 */
export function ordersWithoutEvents(since: string, until: string | null = null) {
  return sql`SELECT count(*) AS attributedOrders, round(coalesce(sum(c.total), 0), 2) AS attributedRevenue
    FROM conversions c WHERE c.at >= ${since} AND ${until === null ? sql`1` : sql`c.at <= ${until}`} AND NOT EXISTS (
      SELECT 1 FROM events e WHERE e.recommendation_id = c.recommendation_id AND e.at >= ${since} AND e.arm IS NOT NULL
    )`;
}

export async function experimentTotals(
  eventsDb: EventsDb,
  since: string,
  by: "day" | "week",
  placement?: string,
  until: string | null = null,
) {
  const perShopper = shownAndBought(since, placement, until);
  const period = periodOf[by](sql`s.first_at`);
  const [totals = [], periods = []] = await batchRows(eventsDb, [
    sql`${perShopper}, shopper AS (
      SELECT s.arm, s.customer_id, sum(s.impressions) AS impressions, sum(s.clicks) AS clicks,
        coalesce(sum(b.orders), 0) AS orders, coalesce(sum(b.revenue), 0) AS revenue
      FROM shown s LEFT JOIN bought b ON b.recommendation_id = s.recommendation_id
      WHERE s.customer_id IS NOT NULL GROUP BY s.arm, s.customer_id
    )
    SELECT arm, count(*) AS shoppers, sum(impressions) AS impressions, sum(impressions * impressions) AS impressionsSquares,
      sum(clicks) AS clicks, sum(clicks * clicks) AS clicksSquares, sum(clicks * impressions) AS clicksImpressions,
      sum(orders) AS orders, sum(orders * orders) AS ordersSquares, sum(orders > 0) AS converted,
      sum(revenue) AS revenue, sum(revenue * revenue) AS revenueSquares
    FROM shopper GROUP BY arm`,
    sql`${perShopper}, shopper AS (
      SELECT ${period} AS period, s.arm, s.customer_id, sum(s.impressions) AS impressions, sum(s.clicks) AS clicks,
        coalesce(sum(b.orders), 0) AS orders, coalesce(sum(b.revenue), 0) AS revenue
      FROM shown s LEFT JOIN bought b ON b.recommendation_id = s.recommendation_id
      WHERE s.customer_id IS NOT NULL GROUP BY 1, s.arm, s.customer_id
    )
    SELECT period, arm, count(*) AS shoppers, sum(impressions) AS impressions, sum(clicks) AS clicks,
      sum(orders) AS attributedOrders, sum(orders > 0) AS converted, round(sum(revenue), 2) AS revenue
    FROM shopper GROUP BY period, arm ORDER BY period, arm`,
  ]);
  const arms = new Map<string, ArmTotals>(
    totals.map((row) => [
      String(row.arm),
      {
        shoppers: Number(row.shoppers),
        impressions: Number(row.impressions),
        impressionsSquares: Number(row.impressionsSquares),
        clicksSquares: Number(row.clicksSquares),
        clicksImpressions: Number(row.clicksImpressions),
        clicks: Number(row.clicks),
        orders: Number(row.orders),
        ordersSquares: Number(row.ordersSquares),
        converted: Number(row.converted),
        revenue: Number(row.revenue),
        revenueSquares: Number(row.revenueSquares),
      },
    ]),
  );
  return { arms, periods: periods as unknown as PeriodRow[] };
}
