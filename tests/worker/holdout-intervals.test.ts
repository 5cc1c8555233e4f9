// GET /v1/admin/holdout with intervals, verdict and results over time, on a planted experiment: stored
// impressions, clicks and attributed orders whose true rates are known, first too few shoppers to tell
// the arms apart, then enough. An order attributed through POST /v1/orders to a shelf whose widget
// reported no event is in no arm, and counted apart until the widget reports the shelf.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { holdoutResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { experimentBeganPlan } from "../../worker/admin/experiments.repo.ts";
import { createApp } from "../../worker/app.ts";
import { meanEstimate, ratioEstimate } from "../../worker/core/math/intervals.ts";
import type { EventsDb } from "../../worker/env.ts";
import { instantRule } from "../../worker/http/fields.schemas.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { ingestResultSchema } from "../../worker/orders/orders.schemas.ts";
import { customerSubject, newRecommendationId } from "../../worker/recommendations/recommendation-id.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../fixtures/builders.ts";

const day = 86_400_000;
const now = Date.now();
const since = new Date(now - 10 * day).toISOString();
const dayOf = (offset: number) => new Date(now - offset * day).toISOString();

/**
 * Plants `shoppers` shoppers in an arm, each shown one recommendation (two impressions) `daysAgo`;
 * the first `converted` click and place one order of 25 attributed to it. Written where the holdout
 * read finds them: the events database's events and conversions.
 */
async function plant(label: string, arm: string, shoppers: number, converted: number, daysAgo: number) {
  const at = dayOf(daysAgo);
  const statements: D1PreparedStatement[] = [];
  for (let s = 0; s < shoppers; s++) {
    const customerId = `c_${label}_${arm}_${s}`;
    const recommendationId = `rid_${label}_${arm}_${s}`;
    const event = env.EVENTS_DB.prepare(
      "INSERT INTO events (type, recommendation_id, arm, customer_id, product_id, category_id, at, dedupe_key) VALUES (?, ?, ?, ?, 'p1', 'coffee', ?, ?)",
    );
    statements.push(event.bind("impression", recommendationId, arm, customerId, at, `${recommendationId}-i1`));
    statements.push(event.bind("impression", recommendationId, arm, customerId, at, `${recommendationId}-i2`));
    if (s < converted) {
      statements.push(event.bind("click", recommendationId, arm, customerId, at, `${recommendationId}-c`));
      statements.push(
        env.EVENTS_DB.prepare(
          "INSERT INTO conversions (order_id, recommendation_id, total, at) VALUES (?, ?, 25, ?)",
        ).bind(`o_${recommendationId}`, recommendationId, at),
      );
    }
  }
  for (let i = 0; i < statements.length; i += 500) await env.EVENTS_DB.batch(statements.slice(i, i + 500));
}

async function holdout(query = `?since=${encodeURIComponent(since)}`, key: string | null = adminKey) {
  return SELF.fetch(`http://patron.test/v1/admin/holdout${query}`, {
    headers: key ? { Authorization: `Bearer ${key}` } : {},
  });
}

/** GET /v1/admin/holdout from the same bindings with another HOLDOUT_SHARE. */
async function holdoutWithShare(share: string, query: string) {
  const context = createExecutionContext();
  const response = await createApp().fetch(
    new Request(`http://patron.test/v1/admin/holdout${query}`, { headers: { Authorization: `Bearer ${adminKey}` } }),
    { ...env, HOLDOUT_SHARE: share },
    context,
  );
  await waitOnExecutionContext(context);
  expect(response.status, await response.clone().text()).toBe(200);
  return holdoutResponseSchema.parse(await response.json()).data;
}

async function read(query?: string) {
  const response = await holdout(query);
  expect(response.status, await response.clone().text()).toBe(200);
  return holdoutResponseSchema.parse(await response.json()).data;
}

const contains = (interval: [number, number] | null | undefined, value: number) =>
  !!interval && interval[0] <= value && value <= interval[1];

describe("GET /v1/admin/holdout: intervals and verdict", () => {
  it("says 'not enough data yet' with few shoppers, then decides once the interval excludes no difference", async () => {
    // 20% vs 10% conversion, 45 + 5 shoppers: far too few.
    await plant("small", "personalized", 45, 9, 3);
    await plant("small", "holdout", 5, 0, 3);
    const small = await read();
    expect(small.verdict).toMatchObject({ metric: "conversion", decided: false, winner: null });
    // The share held out now: the test worker's HOLDOUT_SHARE (vitest.config.ts).
    expect(small.holdoutShare).toBe(0.1);
    expect(small.verdict.text).toMatch(
      /^not enough data yet: no attributed orders in the holdout yet, over 50 shoppers/,
    );
    expect(small.verdict.moreShoppersNeeded).toBeGreaterThan(0);

    // Grow both arms to 1,800 + 200 shoppers, still 20% vs 10%.
    await plant("large", "personalized", 1755, 351, 2);
    await plant("large", "holdout", 195, 20, 2);
    const data = await read();
    const personalized = data.arms.find((row) => row.arm === "personalized");
    const held = data.arms.find((row) => row.arm === "holdout");
    // The existing counts are still there.
    expect(personalized).toMatchObject({
      recommendations: 1800,
      impressions: 3600,
      clicks: 360,
      attributedOrders: 360,
    });
    expect(held).toMatchObject({ recommendations: 200, impressions: 400, clicks: 20, attributedOrders: 20 });
    expect(personalized?.shoppers).toBe(1800);
    expect(held?.shoppers).toBe(200);
    // Each interval contains the planted truth.
    const p = personalized?.intervals;
    const h = held?.intervals;
    expect(p?.conversion.value).toBe(0.2);
    expect(contains(p?.conversion.ci95, 0.2)).toBe(true);
    expect(contains(h?.conversion.ci95, 0.1)).toBe(true);
    expect(contains(p?.clickThroughRate.ci95, 0.1)).toBe(true);
    expect(contains(h?.clickThroughRate.ci95, 0.05)).toBe(true);
    expect(p?.revenuePerShopper.value).toBe(5);
    expect(contains(p?.revenuePerShopper.ci95, 5)).toBe(true);
    expect(contains(h?.revenuePerShopper.ci95, 2.5)).toBe(true);
    expect(contains(p?.attributedOrdersPerShopper.ci95, 0.2)).toBe(true);
    expect(p?.impressionsPerShopper.value).toBe(2);
    // The lift: 2× on conversion, revenue and click-through; its interval excludes 1.
    expect(data.lift.intervals.conversion.value).toBe(2);
    expect(contains(data.lift.intervals.conversion.ci95, 2)).toBe(true);
    expect(data.lift.intervals.conversion.ci95?.[0]).toBeGreaterThan(1);
    expect(contains(data.lift.intervals.revenuePerShopper.ci95, 2)).toBe(true);
    // One click-through lift in the answer: the headline is the interval's value (both from the counts).
    expect(data.lift.clickThroughRate).toBe(data.lift.intervals.clickThroughRate.value);
    // Orders per recommendation (one order of a fifth of 1,800 shelves ÷ a tenth of 200): 2×, with the
    // interval of the two means' ratio, as the per-shopper lifts have theirs.
    const perRecommendation = ratioEstimate(
      meanEstimate(360, 360, 1800) as NonNullable<ReturnType<typeof meanEstimate>>,
      meanEstimate(20, 20, 200) as NonNullable<ReturnType<typeof meanEstimate>>,
    );
    expect(data.lift.ordersPerRecommendation).toBe(2);
    expect(perRecommendation?.ci95).not.toBeNull();
    expect(data.lift.ordersPerRecommendationCi95).toEqual(
      perRecommendation?.ci95?.map((bound) => Math.round(bound * 1000) / 1000),
    );
    expect(contains(data.lift.ordersPerRecommendationCi95, 2)).toBe(true);
    expect(data.withoutEvents).toEqual({ attributedOrders: 0, attributedRevenue: 0 });
    expect(data.verdict).toMatchObject({ decided: true, winner: "personalized", moreShoppersNeeded: 0 });
    expect(data.verdict.text).toMatch(
      /^personalized shelves convert 2\.000× as often as the holdout: a difference of \+10\.0 points \(always-valid 95% CI \+\d+\.\d to \+\d+\.\d\), over 2,000 shoppers$/,
    );

    // Results over time: one point per day, summing to the totals.
    expect(data.overTime.by).toBe("day");
    expect(data.overTime.periods.map((point) => point.period)).toEqual([dayOf(3), dayOf(2)].map((d) => d.slice(0, 10)));
    const sum = (pick: (point: (typeof data.overTime.periods)[number]) => number | undefined) =>
      data.overTime.periods.reduce((total, point) => total + (pick(point) ?? 0), 0);
    expect(sum((point) => point.personalized?.shoppers)).toBe(1800);
    expect(sum((point) => point.holdout?.attributedOrders)).toBe(20);
    expect(data.overTime.periods[0]?.personalized).toMatchObject({ shoppers: 45, conversion: 0.2, impressions: 90 });

    const weekly = await read(`?since=${encodeURIComponent(since)}&by=week`);
    expect(weekly.overTime.by).toBe("week");
    for (const point of weekly.overTime.periods) expect(new Date(`${point.period}T00:00:00Z`).getUTCDay()).toBe(1);
  });

  it("leaves out an order attributed to a shelf whose widget reported no event, and counts it apart", async () => {
    const api = client(SELF);
    const account = uniquePrefix("unseen");
    const line = { productId: "coffee-1", categoryId: "coffee", quantity: 1, unitPrice: 12, listPrice: 12 };
    const first = await api.postOrders([anOrder({ placedAt: dayOf(20), identifiers: { account }, lines: [line] })]);
    expect(first.status, await first.clone().text()).toBe(200);
    const lookup = (await (await api.lookup("account", account)).json()) as { data: { customerId: string } };
    const recommendationId = await newRecommendationId(
      {
        arm: "personalized",
        subject: customerSubject(lookup.data.customerId),
        itemIds: ["coffee-1"],
        issuedAt: new Date(),
      },
      env.SHOPPER_TOKEN_SECRET,
    );
    const before = await read();

    // The shelf was served, the order names it and counts, but the widget never reported the shelf.
    const order = anOrder({
      placedAt: new Date().toISOString(),
      identifiers: { account },
      lines: [line],
      recommendationId,
    });
    const response = await api.postOrders([order]);
    expect(response.status, await response.clone().text()).toBe(200);
    expect(ingestResultSchema.parse(await response.json()).data.results[0]?.attribution).toBe("counted");
    const unseen = await read();
    expect(unseen.arms).toEqual(before.arms);
    expect(unseen.withoutEvents).toEqual({
      attributedOrders: before.withoutEvents.attributedOrders + 1,
      attributedRevenue: before.withoutEvents.attributedRevenue + 12,
    });

    // Once the widget reports an impression of it, the shopper and the order are in their arm.
    const token = await signShopperToken(account, env.SHOPPER_TOKEN_SECRET, 3600, new Date());
    const event = await SELF.fetch("http://patron.test/v1/events", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: "impression", recommendationId, productId: "coffee-1", token }),
    });
    expect(event.status, await event.clone().text()).toBe(202);
    const seen = await read();
    expect(seen.withoutEvents).toEqual(before.withoutEvents);
    const personalized = (data: typeof seen) => data.arms.find((arm) => arm.arm === "personalized");
    expect(personalized(seen)).toMatchObject({
      recommendations: (personalized(before)?.recommendations ?? 0) + 1,
      attributedOrders: (personalized(before)?.attributedOrders ?? 0) + 1,
      shoppers: (personalized(before)?.shoppers ?? 0) + 1,
    });
  });

  it("reads the whole experiment with since=start, from the first holdout event kept, which it reports as began", async () => {
    // Shelves served while nobody was held out (HOLDOUT_SHARE 0) are no part of the experiment.
    await plant("unheld", "personalized", 6, 2, 50);
    await plant("early", "personalized", 9, 1, 45);
    await plant("early", "holdout", 1, 0, 45);
    const recommendations = (data: Awaited<ReturnType<typeof read>>) =>
      data.arms.reduce((sum, arm) => sum + arm.recommendations, 0);
    const moving = await read("");
    const whole = await read("?since=start");
    // The default window (30 days back) starts after the early shelves; since=start includes them.
    expect(moving.began).toBe(dayOf(45));
    expect(whole).toMatchObject({ since: dayOf(45), began: dayOf(45), startTrimmed: false });
    expect(recommendations(whole)).toBe(recommendations(moving) + 10);
    expect(whole.overTime.periods[0]?.period).toBe(dayOf(45).slice(0, 10));
    // A placement nobody has been held out on yet (HOLDOUT_SHARE 0): its personalized figures from the
    // first shelf; once someone is held out, the results start there.
    const shelfOn = (arm: string, daysAgo: number) =>
      env.EVENTS_DB.prepare(
        "INSERT INTO events (type, recommendation_id, arm, customer_id, product_id, placement, at, dedupe_key) VALUES ('impression', ?, ?, ?, 'p1', 'solo', ?, ?)",
      )
        .bind(`rid_solo_${arm}`, arm, `c_solo_${arm}`, dayOf(daysAgo), `rid_solo_${arm}-i`)
        .run();
    await shelfOn("personalized", 10);
    expect(await read("?since=start&placement=solo")).toMatchObject({ began: dayOf(10), since: dayOf(10) });
    await shelfOn("holdout", 5);
    const solo = await read("?since=start&placement=solo");
    expect(solo).toMatchObject({ began: dayOf(5), since: dayOf(5) });
    expect(solo.arms.map((arm) => [arm.arm, arm.recommendations])).toEqual([["holdout", 1]]);
    // A placement no shelf was served in: nothing began, and since=start is an empty window.
    const none = await read("?since=start&placement=nowhere");
    expect(none.began).toBeNull();
    expect(none.arms).toEqual([]);
    expect(none.verdict.decided).toBe(false);
    // Found along the indexes of holdout events alone (and of one placement's), not by a walk past every
    // browse view, personalized shelf, or other placement's event before them.
    const eventsDb = drizzle(env.EVENTS_DB) as unknown as EventsDb;
    expect(await experimentBeganPlan(eventsDb)).toEqual([
      ["SCAN events USING INDEX events_holdout_at_idx"],
      ["SCAN events USING INDEX events_arm_at_idx"],
    ]);
    expect(await experimentBeganPlan(eventsDb, "nowhere")).toEqual([
      ["SEARCH events USING INDEX events_holdout_placement_at_idx (placement=?)"],
      ["SEARCH events USING INDEX events_arm_placement_at_idx (placement=?)"],
    ]);

    // A first holdout event within a day of the retention's edge (EVENT_RETENTION_DAYS, 400): the start
    // is trimmed. A personalized one that old does not move the start.
    await plant("edge", "personalized", 1, 0, 399.7);
    expect(await read("?since=start")).toMatchObject({ began: dayOf(45), startTrimmed: false });
    await plant("edge", "holdout", 1, 0, 399.5);
    expect(await read("?since=start")).toMatchObject({ began: dayOf(399.5), startTrimmed: true });
  });

  it("ends the results at the last held-out shelf once HOLDOUT_SHARE is set back to 0", async () => {
    const shelf = (arm: string, customer: string, daysAgo: number) =>
      env.EVENTS_DB.prepare(
        "INSERT INTO events (type, recommendation_id, arm, customer_id, product_id, placement, at, dedupe_key) VALUES ('impression', ?1, ?2, ?3, 'p1', 'stopped', ?4, ?1)",
      )
        .bind(`rid_stopped_${arm}_${customer}_${daysAgo}`, arm, customer, dayOf(daysAgo))
        .run();
    for (const customer of ["a", "b", "c"]) await shelf("personalized", `c_stopped_${customer}`, 12);
    for (const customer of ["x", "y"]) await shelf("holdout", `c_stopped_${customer}`, 11);
    // The share set to 0: the held-out shoppers get personalized shelves now.
    for (const customer of ["x", "y", "a"]) await shelf("personalized", `c_stopped_${customer}`, 5);

    const query = "?since=start&placement=stopped";
    // Read as if the holdout still ran (the test worker's 0.1): from the first held-out shelf on, x and y
    // in both arms.
    const running = await read(query);
    expect(running.ended).toBeNull();
    expect(running.arms.map((arm) => [arm.arm, arm.shoppers])).toEqual([
      ["holdout", 2],
      ["personalized", 3],
    ]);

    const stopped = await holdoutWithShare("0", query);
    expect(stopped).toMatchObject({ holdoutShare: 0, ended: dayOf(11), began: dayOf(11), since: dayOf(11) });
    // Neither arm counts what came after: x and y only as held out, and no personalized shelf at all.
    expect(stopped.arms.map((arm) => [arm.arm, arm.shoppers])).toEqual([["holdout", 2]]);
    expect(stopped.overTime.periods.map((period) => period.period)).toEqual([dayOf(11).slice(0, 10)]);
    // A window that starts after the end holds personalized shelves alone, counted as they are.
    const after = await holdoutWithShare("0", `?since=${encodeURIComponent(dayOf(8))}&placement=stopped`);
    expect(after.ended).toBe(dayOf(11));
    expect(after.arms.map((arm) => [arm.arm, arm.shoppers])).toEqual([["personalized", 3]]);
  });

  it("counts a click once per card, a category's as a product's, and never beyond the shelf's impressions", async () => {
    const event = (type: string, card: { productId?: string; categoryId?: string }, key: string) =>
      env.EVENTS_DB.prepare(
        "INSERT INTO events (type, recommendation_id, arm, customer_id, product_id, category_id, placement, at, dedupe_key) VALUES (?1, 'rid_cards', 'personalized', 'c_cards', ?2, ?3, 'cards', ?4, ?5)",
      )
        .bind(type, card.productId ?? null, card.categoryId ?? null, dayOf(1), `rid_cards-${key}`)
        .run();
    await event("impression", { productId: "p1" }, "i1");
    await event("impression", { categoryId: "tea" }, "i2");
    // p1 clicked three times (three minutes), the tea category once: two cards clicked.
    for (const minute of [1, 2, 3]) await event("click", { productId: "p1" }, `c-p1-${minute}`);
    await event("click", { categoryId: "tea" }, "c-tea");
    const cards = await read(`?since=${encodeURIComponent(dayOf(2))}&placement=cards`);
    expect(cards.arms.map((arm) => [arm.arm, arm.impressions, arm.clicks])).toEqual([["personalized", 2, 2]]);
  });

  it("validates the query and needs the admin key", async () => {
    const notStart = await holdout("?since=begin");
    expect(notStart.status).toBe(400);
    expect(((await notStart.json()) as { error: { issues: unknown[] } }).error.issues).toContainEqual({
      path: ["since"],
      message: `since ${instantRule}, or start`,
    });
    const bad = await holdout("?by=month");
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: { code: string; issues: unknown[] } };
    expect(body.error.code).toBe("invalid_request");
    expect(body.error.issues).toContainEqual({ path: ["by"], message: "by must be day or week" });
    expect((await holdout(undefined, null)).status).toBe(401);
  });
});
