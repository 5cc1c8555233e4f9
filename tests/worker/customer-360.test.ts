// The console's customer 360 and Overview reads, through the real worker on both stores (D1, and
// customer shards in the worker-shards project): a customer's P(alive), rhythm and stage over time
// (GET /v1/customers/:id/history), the shelf they see now (GET /v1/customers/:id/shelf) and the CLV
// distribution (GET /v1/admin/insights/clv-distribution). Customer rows are read where the store
// keeps them; model parameters are shared state in D1.
import { env, SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import * as schema from "../../db/schema.ts";
import { jobRunResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { clvDistributionResponseSchema } from "../../worker/admin/insights.schemas.ts";
import { clvBucketOf, countClv, emptyClvHistogram } from "../../worker/core/insights/clv-distribution.ts";
import type { PopulationModels } from "../../worker/core/profile/population-models.ts";
import { scoreAt } from "../../worker/core/profile/profile-history.ts";
import {
  customerHistoryResponseSchema,
  customerResponseSchema,
  customerShelfResponseSchema,
} from "../../worker/customers/customers.schemas.ts";
import { historyOrdersOf } from "../../worker/customers/history.repo.ts";
import type { Db } from "../../worker/env.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { recommendationsResponseSchema } from "../../worker/recommendations/recommendations.schemas.ts";
import {
  adminKey,
  anOrder,
  apiKey,
  client,
  type OrderOverrides,
  rhythmPopulation,
  verified,
} from "../fixtures/builders.ts";
import { everyTableCount, onCustomerStore } from "../fixtures/console-store.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);
const db = drizzle(env.DB, { schema }) as unknown as Db;
const day = 86_400_000;
const asOf = new Date();
const get = (path: string, key: string | null = adminKey) => api.call("GET", path, undefined, key);

const categories = ["coffee", "tea", "mugs", "snacks"];
const products = categories.flatMap((categoryId, c) =>
  [0, 1, 2, 3].map((n) => ({
    id: `${categoryId}-${n}`,
    title: `${categoryId} ${n}`,
    categoryId,
    categoryName: categoryId[0]?.toUpperCase() + categoryId.slice(1),
    url: `https://shop.test/p/${categoryId}-${n}`,
    imageUrl: `https://shop.test/i/${categoryId}-${n}.jpg`,
    listPrice: 10 + c * 5 + n * 3,
    salePrice: n === 3 ? 8 + c * 5 : null,
    inStock: true,
  })),
);
const line = (categoryId: string, n: number) => ({
  productId: `${categoryId}-${n}`,
  categoryId,
  quantity: 1,
  unitPrice: 12 + n,
  listPrice: 12 + n,
});

// Bought coffee every two weeks for a year, alternating the web shop (signed in) and the store (loyalty
// card, same verified email), then stopped 100 days ago.
const regularOrders = 26;
const regularLast = asOf.getTime() - 100 * day;
function regular() {
  return Array.from({ length: regularOrders }, (_, k) => {
    const web = k % 2 === 0;
    return anOrder({
      id: `c360-regular-${k}`,
      channel: web ? "web" : "store",
      storeId: web ? null : "store-3",
      placedAt: new Date(regularLast - (regularOrders - 1 - k) * 14 * day).toISOString(),
      identifiers: web
        ? { account: "c360-regular", email: verified("regular@shop.test") }
        : { loyalty: "C360-REG", email: verified("regular@shop.test") },
      lines: [line("coffee", k % 4), line(k % 3 ? "snacks" : "mugs", 1)],
    });
  });
}

/** Customers with known rhythms for the fit: regulars still buying, regulars who stopped, one-time buyers. */
const population = () =>
  rhythmPopulation(
    asOf,
    (c, k): OrderOverrides => ({
      id: `c360-pop-${c}-${k}`,
      // Every fourth is known by loyalty card only: no storefront account.
      identifiers: c % 4 === 0 ? { loyalty: `C360-POP-${c}` } : { account: `c360-pop-${c}` },
      lines: [line(categories[c % 4] as string, c % 4), line(categories[(c + 1) % 4] as string, 2)],
    }),
  );

async function idOf(kind: string, value: string) {
  const response = await api.lookup(kind, value);
  expect(response.status, await response.clone().text()).toBe(200);
  return customerResponseSchema.parse(await response.json()).data.customerId;
}

let regularId = "";
let scored = 0;

beforeAll(async () => {
  expect((await api.postProducts(products)).status).toBe(200);
  const orders = [...regular(), ...population()];
  for (let i = 0; i < orders.length; i += 200)
    expect((await api.postOrders(orders.slice(i, i + 200))).status).toBe(200);
  regularId = await idOf("account", "c360-regular");
});

describe("before the first model fit", () => {
  it("answers the customer's history with no points and says what to do", async () => {
    const response = await get(`/v1/customers/${regularId}/history`);
    expect(response.status, await response.clone().text()).toBe(200);
    const body = customerHistoryResponseSchema.parse(await response.json()).data;
    expect(body).toMatchObject({ customerId: regularId, modelsFittedAt: null, thresholds: null, points: [] });
    expect(body.orders).toBe(regularOrders);
    expect(body.message).toMatch(/nightly job/);
  });

  it("answers the CLV distribution empty, saying what to do", async () => {
    const body = clvDistributionResponseSchema.parse(
      await (await get("/v1/admin/insights/clv-distribution")).json(),
    ).data;
    expect(body).toMatchObject({ customers: 0, buckets: [], modelRunAt: null, runId: null });
    expect(body.message).toMatch(/nightly job/);
  });
});

describe("after a nightly run", () => {
  beforeAll(async () => {
    const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ asOf: asOf.toISOString(), pageSize: 20 }),
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const run = jobRunResponseSchema.parse(await response.json()).data;
    scored = (run.detail as { scored: number }).scored;
    expect(scored).toBe(61);
  });

  describe("GET /v1/customers/:id/history", () => {
    it("needs the admin key, and answers 404 for an unknown customer and 400 for a bad id", async () => {
      expect((await get(`/v1/customers/${regularId}/history`, null)).status).toBe(401);
      expect((await get(`/v1/customers/${regularId}/history`, apiKey)).status).toBe(401);
      const missing = await get("/v1/customers/c_nobody/history");
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
      const bad = await get(`/v1/customers/${encodeURIComponent("bad\u0001id")}/history`);
      expect(bad.status).toBe(400);
    });

    it("charts every purchase day, weeks and months between and now, each scored as the single-date function scores it", async () => {
      const response = await get(`/v1/customers/${regularId}/history`);
      expect(response.status, await response.clone().text()).toBe(200);
      const body = customerHistoryResponseSchema.parse(await response.json()).data;
      expect(body).toMatchObject({ customerId: regularId, orders: regularOrders, truncated: false, skipped: 0 });
      expect(body.modelsFittedAt).not.toBeNull();
      expect(body.thresholds?.lapsedBelowProbabilityAlive).toBe(0.25);
      expect(body.thresholds?.fadingBelowProbabilityAlive).toBeGreaterThan(0.25);
      for (const line of Object.values(body.thresholds ?? {}))
        expect(line, "rounded like probabilityAlive").toBe(Math.round(line * 1e4) / 1e4);
      expect(body.points.filter((p) => p.kind === "order")).toHaveLength(regularOrders);
      expect(body.points.filter((p) => p.kind === "before_order")).toHaveLength(regularOrders - 1);
      expect(body.points.filter((p) => p.kind === "week")).toHaveLength(13);
      expect(body.points.filter((p) => p.kind === "month").length).toBeGreaterThanOrEqual(10);
      expect(body.points.at(-1)?.kind).toBe("now");
      const times = body.points.map((p) => Date.parse(p.at));
      expect(times).toEqual([...times].sort((a, b) => a - b));

      const [modelRow] = await db.all<{ params: string }>(
        sql`SELECT params FROM model_params WHERE model = 'customer_models' ORDER BY id DESC LIMIT 1`,
      );
      const models = JSON.parse(modelRow?.params ?? "null") as PopulationModels;
      const { orders } = await onCustomerStore(regularId, (store) => historyOrdersOf(store, regularId));
      for (const point of body.points) {
        const outcome = scoreAt(regularId, orders, models, new Date(point.at));
        if (!outcome?.ok) throw new Error(`not scored at ${point.at}`);
        const { profile } = outcome;
        expect(point.probabilityAlive, point.at).toBeCloseTo(profile.probabilityAlive, 4);
        expect(point.overdueRatio, point.at).toBeCloseTo(profile.cadence.overdueRatio, 2);
        expect(point.expectedIntervalDays, point.at).toBeCloseTo(profile.cadence.expectedIntervalDays, 1);
        expect(point.stage, point.at).toBe(profile.lifecycle.stage);
        expect(point.clv12, point.at).toBeCloseTo(profile.clv12, 2);
      }
    });

    it("shows P(alive) falling after the missed rhythm, down to what the customer endpoint says today", async () => {
      const body = customerHistoryResponseSchema.parse(
        await (await get(`/v1/customers/${regularId}/history`)).json(),
      ).data;
      const lastOrder = body.points.filter((p) => p.kind === "order").at(-1)!;
      expect(lastOrder.stage).toBe("active");
      const after = body.points.filter((p) => Date.parse(p.at) > Date.parse(lastOrder.at));
      expect(after.length).toBeGreaterThanOrEqual(3);
      let previous = lastOrder;
      for (const point of after) {
        expect(point.probabilityAlive, point.at).toBeLessThanOrEqual(previous.probabilityAlive);
        previous = point;
      }
      const today = body.points.at(-1)!;
      expect(today.probabilityAlive).toBeLessThan(body.thresholds!.fadingBelowProbabilityAlive);
      expect(["fading", "lapsed"]).toContain(today.stage);
      // The slip is dated where it happened: a `stage` point for each stage left behind, each the
      // first of its stage after the last order.
      const changes = after.filter((p) => p.kind === "stage");
      expect(changes.length).toBeGreaterThanOrEqual(1);
      expect(changes.at(-1)?.stage).toBe(today.stage);
      for (const change of changes)
        expect(
          after.find((p) => p.stage === change.stage),
          change.at,
        ).toBe(change);
      const profile = customerResponseSchema.parse(await (await api.customer(regularId)).json()).data.profile!;
      expect(profile.oneTimeReturnDays).toBeNull(); // A repeat buyer's stage is not judged by it.
      expect(today.stage).toBe(profile.stage);
      expect(today.probabilityAlive).toBeCloseTo(profile.probabilityAlive, 3);
      expect(today.clv12).toBeCloseTo(profile.clv12, 1);
    });
  });

  it("gives a one-time buyer's profile the return windows its stage is judged by", async () => {
    for (const c of [51, 53]) {
      const profile = customerResponseSchema.parse(
        await (await api.customer(await idOf("account", `c360-pop-${c}`))).json(),
      ).data.profile!;
      const window = profile.oneTimeReturnDays;
      expect(window, JSON.stringify(profile)).not.toBeNull();
      expect(window!.usual).toBeGreaterThan(0);
      expect(window!.late).toBeGreaterThanOrEqual(window!.usual);
      const since = window!.sinceFirstPurchase;
      // Whole days since the purchase day, as the stage counts them (not the hours since the order).
      expect(Number.isInteger(since)).toBe(true);
      expect(since).toBeLessThanOrEqual(Math.ceil(profile.cadence.daysSinceLast));
      expect(profile.stage, JSON.stringify({ since, window })).toBe(
        since <= window!.usual ? "new" : since <= window!.late ? "fading" : "lapsed",
      );
    }
  });

  describe("GET /v1/customers/:id/shelf", () => {
    it("needs the admin key, answers 404 for an unknown customer and 400 for a bad size", async () => {
      expect((await get(`/v1/customers/${regularId}/shelf`, null)).status).toBe(401);
      expect((await get(`/v1/customers/${regularId}/shelf`, apiKey)).status).toBe(401);
      expect((await get("/v1/customers/c_nobody/shelf")).status).toBe(404);
      const bad = await get(`/v1/customers/${regularId}/shelf?limit=0`);
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { issues: { path: string[] }[] } }).error.issues[0]?.path).toEqual([
        "limit",
      ]);
    });

    it("shows the items, reasons and categories GET /v1/recommendations gives the shopper, and writes nothing", async () => {
      const token = await signShopperToken("c360-regular", "test-shopper-secret", 3600, new Date());
      const storefront = await SELF.fetch("http://patron.test/v1/recommendations?limit=6&categories=3", {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(storefront.status, await storefront.clone().text()).toBe(200);
      const served = recommendationsResponseSchema.parse(await storefront.json()).data;
      expect(served.customerKnown).toBe(true);
      expect(served.items.length).toBeGreaterThan(0);

      const before = await everyTableCount();
      const response = await get(`/v1/customers/${regularId}/shelf?limit=6&categories=3`);
      expect(response.status, await response.clone().text()).toBe(200);
      expect(response.headers.get("Cache-Control")).toBe("private, no-store");
      const seen = customerShelfResponseSchema.parse(await response.json()).data;
      expect(await everyTableCount()).toEqual(before);

      expect(seen).toMatchObject({ customerId: regularId, storefrontAccount: true, customerKnown: true });
      expect(seen.arm).toBe(served.arm);
      expect(seen.items).toEqual(served.items);
      expect(seen.categories).toEqual(served.categories);
      expect(seen).not.toHaveProperty("recommendationId");
    });

    it("shows a customer without a storefront account the popular shelf the storefront gives them", async () => {
      const cardOnly = await idOf("loyalty", "C360-POP-4");
      const anonymous = recommendationsResponseSchema.parse(
        await (await SELF.fetch("http://patron.test/v1/recommendations")).json(),
      ).data;
      const seen = customerShelfResponseSchema.parse(await (await get(`/v1/customers/${cardOnly}/shelf`)).json()).data;
      expect(seen).toMatchObject({ storefrontAccount: false, customerKnown: false, arm: "anonymous" });
      expect(seen.items.map((item) => item.id)).toEqual(anonymous.items.map((item) => item.id));
    });
  });

  describe("GET /v1/admin/insights/clv-distribution", () => {
    it("needs the admin key", async () => {
      expect((await get("/v1/admin/insights/clv-distribution", null)).status).toBe(401);
      expect((await get("/v1/admin/insights/clv-distribution", apiKey)).status).toBe(401);
    });

    it("counts every scored customer in the bucket of their 12-month CLV, as stored by the run", async () => {
      const body = clvDistributionResponseSchema.parse(
        await (await get("/v1/admin/insights/clv-distribution")).json(),
      ).data;
      expect(body.runId).not.toBeNull();
      expect(body.customers).toBe(scored);
      const rows = await storeRows<{ clv: number }>("SELECT clv_12 AS clv FROM customer_scores");
      const expected = emptyClvHistogram();
      for (const row of rows) countClv(expected, row.clv);
      expect(body.buckets.length).toBeGreaterThan(1);
      for (const bucket of body.buckets) {
        const index = clvBucketOf(bucket.from);
        expect(bucket.customers, `from ${bucket.from}`).toBe(expected.customers[index]);
        expect(bucket.clv12, `from ${bucket.from}`).toBeCloseTo(expected.clv12[index]!, 1);
      }
      expect(body.buckets[0]!.customers).toBeGreaterThan(0);
      expect(body.buckets.at(-1)!.customers).toBeGreaterThan(0);
      expect(body.clv12).toBeCloseTo(
        rows.reduce((sum, row) => sum + row.clv, 0),
        1,
      );
    });
  });
});

describe("after a later run that keeps scores within its tolerance", () => {
  let firstRunId: string;
  let laterRunId: string;
  beforeAll(async () => {
    firstRunId = (await storeRows<{ run: string }>("SELECT max(run_id) AS run FROM customer_scores"))[0]!.run;
    const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ asOf: new Date(asOf.getTime() + 3 * day).toISOString(), pageSize: 20 }),
    });
    expect(response.status, await response.clone().text()).toBe(200);
    laterRunId = jobRunResponseSchema.parse(await response.json()).data.runId;
  });

  it("counts the CLV the scores table keeps, so the distribution's total is the segments' total", async () => {
    const rows = await storeRows<{ clv: number; run: string }>(
      "SELECT clv_12 AS clv, run_id AS run FROM customer_scores",
    );
    // Three days on, some scores moved past the tolerance and were written, others kept the first run's.
    expect(rows.some((row) => row.run === laterRunId)).toBe(true);
    expect(rows.some((row) => row.run === firstRunId)).toBe(true);
    const body = clvDistributionResponseSchema.parse(
      await (await get("/v1/admin/insights/clv-distribution")).json(),
    ).data;
    expect(body.runId).toBe(laterRunId);
    const expected = emptyClvHistogram();
    for (const row of rows) countClv(expected, row.clv);
    for (const bucket of body.buckets) {
      const index = clvBucketOf(bucket.from);
      expect(bucket.customers, `from ${bucket.from}`).toBe(expected.customers[index]);
      expect(bucket.clv12, `from ${bucket.from}`).toBeCloseTo(expected.clv12[index]!, 1);
    }
    const segments = (await (await get("/v1/admin/segments?limit=1")).json()) as {
      data: { summary: { clv12: number }[] };
    };
    const segmentsTotal = segments.data.summary.reduce((sum, row) => sum + row.clv12, 0);
    expect(body.clv12).toBeCloseTo(segmentsTotal, 1);
    expect(body.clv12).toBeCloseTo(
      rows.reduce((sum, row) => sum + row.clv, 0),
      1,
    );
  });
});
