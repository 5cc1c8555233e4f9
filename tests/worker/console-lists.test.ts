// GET /v1/admin/insights/best-customers and GET /v1/admin/customers, through the real worker on both
// stores (D1, and customer shards in the worker-shards project, where a list merges every shard's
// pages), on a population with a planted trait: the most valuable customers buy coffee in store 7 on
// Saturdays. Customer rows and list query plans are read in every database holding customers; model
// parameters and the insight rollups are shared state in D1.
import { env, SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import * as schema from "../../db/schema.ts";
import { jobRunResponseSchema, segmentResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { type ListFilter, listQueryPlan } from "../../worker/admin/customer-lists.repo.ts";
import { csvHeader, customerCsv, databaseList } from "../../worker/admin/customer-lists.routes.ts";
import { bestCustomersResponseSchema, customerListResponseSchema } from "../../worker/admin/insights.schemas.ts";
import type { PopulationModels } from "../../worker/core/profile/population-models.ts";
import { customerResponseSchema } from "../../worker/customers/customers.schemas.ts";
import type { Db } from "../../worker/env.ts";
import { latestInsightRollupQuery, scorePageStep } from "../../worker/jobs/nightly.repo.ts";
import { currentModels } from "../../worker/models/models.repo.ts";
import { shardedList } from "../../worker/shards/console.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, apiKey, client } from "../fixtures/builders.ts";
import { onCustomerStore, onEveryStore } from "../fixtures/console-store.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);
const day = 86_400_000;
/**
 * The run's date: the last Sunday 10:00 UTC. The best customers buy every Saturday, so their last
 * order is a day old on whatever day the suite runs; dated now, it was up to a week old, and their
 * scores (and this file's verdicts) changed with the weekday.
 */
const asOf = (() => {
  const d = new Date();
  d.setUTCHours(10, 0, 0, 0);
  while (d.getUTCDay() !== 0 || d.getTime() > Date.now()) d.setTime(d.getTime() - day);
  return d;
})();
const db = drizzle(env.DB, { schema }) as unknown as Db;

/** The Saturday 10:00 UTC before `asOf`, minus `weeks` weeks. */
const saturday = (weeks: number) => new Date(asOf.getTime() - day - weeks * 7 * day);

const line = (categoryId: string, price: number, listPrice = price) => ({
  productId: `${categoryId}-sku`,
  categoryId,
  quantity: 1,
  unitPrice: price,
  listPrice,
});

function population() {
  const orders = [];
  // 20 best customers: weekly, big baskets, coffee, in store 7, on Saturdays.
  for (let c = 0; c < 20; c++)
    for (let k = 0; k < 10; k++)
      orders.push(
        anOrder({
          id: `vip-${c}-${k}`,
          channel: "store",
          storeId: "store-7",
          placedAt: saturday(k + (c % 2)).toISOString(),
          identifiers: { loyalty: `VIP-${c}` },
          lines: [line("coffee", 180 + c), line(c % 3 ? "tea" : "snacks", 20)],
        }),
      );
  // 170 others: a few small web orders on weekdays, mostly snacks and tea, a few coffee.
  for (let c = 0; c < 170; c++) {
    const count = 1 + (c % 4);
    const interval = 12 + (c % 6) * 5;
    const stopped = c % 3 === 0;
    const last = asOf.getTime() - (stopped ? interval * 6 : interval * 0.4) * day - (c % 5) * 3_600_000;
    for (let k = 0; k < count; k++) {
      const at = new Date(last - (count - 1 - k) * interval * day);
      if (at.getUTCDay() === 6) at.setTime(at.getTime() - day);
      orders.push(
        anOrder({
          id: `rest-${c}-${k}`,
          channel: c % 10 === 0 ? "store" : "web",
          storeId: c % 10 === 0 ? "store-1" : null,
          placedAt: at.toISOString(),
          identifiers: { loyalty: `REST-${c}` },
          lines: [line(c % 25 === 0 ? "coffee" : c % 2 ? "snacks" : "tea", 15 + (c % 9), c % 4 ? 15 + (c % 9) : 30)],
        }),
      );
    }
  }
  // 10 regulars who stopped buying tea three months ago but still buy snacks weekly: lapsing in tea.
  for (let c = 0; c < 10; c++) {
    for (let k = 0; k < 8; k++)
      orders.push(
        anOrder({
          id: `lapse-tea-${c}-${k}`,
          placedAt: new Date(asOf.getTime() - (100 + k * 7 + c) * day).toISOString(),
          identifiers: { loyalty: `LAPSE-${c}` },
          lines: [line("tea", 25)],
        }),
      );
    for (let k = 0; k < 14; k++)
      orders.push(
        anOrder({
          id: `lapse-snacks-${c}-${k}`,
          placedAt: new Date(asOf.getTime() - (2 + k * 7) * day - c * 3_600_000).toISOString(),
          identifiers: { loyalty: `LAPSE-${c}` },
          lines: [line("snacks", 25)],
        }),
      );
  }
  return orders;
}

const get = (path: string, key: string | null = adminKey) => api.call("GET", path, undefined, key);

async function list(query: string) {
  const response = await get(`/v1/admin/customers?${query}`);
  expect(response.status, await response.clone().text()).toBe(200);
  return customerListResponseSchema.parse(await response.json()).data;
}

/** Every page of a list, following `next`. */
async function allPages(query: string, limit: number) {
  const rows = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const body = await list(`${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    rows.push(...body.customers);
    cursor = body.next;
    if (!cursor) break;
  }
  return rows;
}

async function idOf(loyalty: string) {
  return customerResponseSchema.parse(await (await api.lookup("loyalty", loyalty)).json()).data.customerId;
}

describe("before the first nightly run", () => {
  it("answers an empty state that says what to do, and empty lists", async () => {
    const response = await get("/v1/admin/insights/best-customers");
    expect(response.status).toBe(200);
    const body = bestCustomersResponseSchema.parse(await response.json()).data;
    expect(body).toMatchObject({ tier: "top", customers: 0, comparedWith: 0, traits: [], modelRunAt: null });
    expect(body.message).toMatch(/nightly/);
    expect(await list("stage=active")).toEqual({ customers: [], sort: "-clvAtStake", next: null });
  });

  it("needs the admin key and rejects bad input with the issues", async () => {
    for (const path of ["/v1/admin/insights/best-customers", "/v1/admin/customers", "/v1/admin/customers?format=csv"]) {
      expect((await get(path, null)).status).toBe(401);
      expect((await get(path, apiKey)).status).toBe(401);
    }
    for (const query of [
      "sort=clv",
      "stage=gone",
      "valueTier=gold",
      "discountSensitivity=cheap",
      "limit=0",
      "format=xml",
      "cursor=nope",
      // A category id as everywhere: not blank, no control character (the audience's filter refuses them too).
      "lapsedCategory=%20%20",
      "lapsedCategory=tea%00",
      // A misspelt filter is refused, not dropped (which would list, and export, everyone).
      "tier=top",
      "stages=fading",
    ]) {
      const response = await get(`/v1/admin/customers?${query}`);
      expect(response.status, query).toBe(400);
      const body = (await response.json()) as { error: { code: string; issues: { path: string[] }[] } };
      expect(body.error.code).toBe("invalid_request");
      expect(body.error.issues[0]?.path[0], query).toBe(query.split("=")[0]);
    }
    const misspelt = (await (await get("/v1/admin/customers?tier=top&format=csv")).json()) as {
      error: { message: string };
    };
    expect(misspelt.error.message).toBe(
      "Invalid query parameters: tier is not a parameter of this route (did you mean valueTier?); it takes stage, valueTier, discountSensitivity, lapsedCategory, sort, cursor, limit, format, matchKeys.",
    );
    const tier = await get("/v1/admin/insights/best-customers?tier=gold");
    expect(tier.status).toBe(400);
    expect(((await tier.json()) as { error: { issues: { path: string[] }[] } }).error.issues[0]?.path).toEqual([
      "tier",
    ]);
  });
});

describe("after a nightly run", () => {
  it("scores the population", async () => {
    const orders = population();
    for (let i = 0; i < orders.length; i += 500)
      expect((await api.postOrders(orders.slice(i, i + 500))).status).toBe(200);
    const products = ["coffee", "tea", "snacks"].map((id) => ({
      id: `${id}-sku`,
      title: id,
      categoryId: id,
      categoryName: id[0]?.toUpperCase() + id.slice(1),
      listPrice: 20,
    }));
    expect((await api.postProducts(products)).status).toBe(200);
    const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ asOf: asOf.toISOString(), pageSize: 40 }),
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const run = jobRunResponseSchema.parse(await response.json()).data;
    expect(run.detail).toMatchObject({ scored: 200 });
  });

  it("ranks the planted trait of the top tier first, in words a marketer can act on", async () => {
    const body = bestCustomersResponseSchema.parse(await (await get("/v1/admin/insights/best-customers")).json()).data;
    expect(body.tier).toBe("top");
    expect(body.customers).toBeGreaterThanOrEqual(18);
    expect(body.customers + body.comparedWith).toBe(200);
    expect(body.modelRunAt).not.toBeNull();
    const planted = ["category:coffee", "channel:store", "store:store-7", "weekday:Saturday"];
    const keys = body.traits.map((t) => `${t.dimension}:${t.value}`);
    expect(planted).toContain(keys[0]);
    for (const key of planted) expect(keys, key).toContain(key);
    // The planted traits outrank everything but one they imply (these regulars pay full price).
    for (const key of planted) expect(keys.slice(0, planted.length + 1), key).toContain(key);
    const coffee = body.traits.find((t) => t.dimension === "category" && t.value === "coffee");
    expect(coffee?.label).toBe("Coffee");
    expect(coffee?.topShare).toBeGreaterThan(0.9);
    expect(coffee?.restShare).toBeLessThan(0.1);
    expect(coffee?.lift).toBeGreaterThan(5);
    expect(coffee?.sentence).toMatch(/^\d+% of top customers buy Coffee regularly vs \d+% of the rest$/);
    // Scores are the ranking: descending, and every shown trait is more common in the tier.
    const scores = body.traits.map((t) => t.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect(body.traits.every((t) => t.topShare > t.restShare && t.topCustomers >= 5)).toBe(true);

    // Another tier against the rest: the planted store is not what medium-value customers share.
    const medium = bestCustomersResponseSchema.parse(
      await (await get("/v1/admin/insights/best-customers?tier=medium")).json(),
    ).data;
    expect(medium.tier).toBe("medium");
    expect(medium.traits.some((t) => t.value === "store-7")).toBe(false);
  });

  it("filters by stage, value tier, discount sensitivity and lapsing category", async () => {
    const segments = segmentResponseSchema.parse(await (await get("/v1/admin/segments?limit=1000")).json()).data;
    for (const stage of ["new", "active", "fading", "lapsed"]) {
      const rows = await allPages(`stage=${stage}`, 1000);
      const expected = segments.summary.filter((s) => s.stage === stage).reduce((n, s) => n + s.customers, 0);
      expect(rows, stage).toHaveLength(expected);
      expect(rows.every((r) => r.stage === stage)).toBe(true);
    }
    const top = await allPages("valueTier=top", 1000);
    expect(top.length).toBeGreaterThan(0);
    expect(top.every((r) => r.valueTier === "top")).toBe(true);
    const deals = await allPages("discountSensitivity=deal_seeker&stage=active", 1000);
    expect(deals.every((r) => r.discountSensitivity === "deal_seeker" && r.stage === "active")).toBe(true);

    const lapsing = await allPages("lapsedCategory=tea", 1000);
    const planted = await Promise.all(Array.from({ length: 10 }, (_, c) => idOf(`LAPSE-${c}`)));
    expect(lapsing.length).toBeGreaterThan(0);
    expect(lapsing.every((r) => r.stage === "active")).toBe(true);
    expect(lapsing.every((r) => planted.includes(r.customerId))).toBe(true);
    expect(lapsing.length).toBeGreaterThanOrEqual(8);
    // Nobody lapsed in coffee: the best customers still buy it every week.
    expect(await allPages("lapsedCategory=coffee", 1000)).toEqual([]);
    // The id is trimmed, as an audience saved with these filters trims it: the list and the audience agree.
    expect(await allPages("lapsedCategory=%20tea%20", 1000)).toEqual(lapsing);
  });

  it("says how many days each listed customer bought on, so a one-time buyer's figures can be told apart", async () => {
    const all = new Map((await allPages("", 1000)).map((row) => [row.customerId, row]));
    // REST-c bought on 1 + c % 4 days; VIP-c on 10 Saturdays; LAPSE-c on 22 days.
    const expected: [string, number][] = [
      ["REST-0", 1],
      ["REST-4", 1],
      ["REST-1", 2],
      ["REST-3", 4],
      ["VIP-0", 10],
      ["LAPSE-0", 22],
    ];
    for (const [loyalty, days] of expected) expect(all.get(await idOf(loyalty))?.purchaseDays, loyalty).toBe(days);
    expect([...all.values()].every((row) => (row.purchaseDays ?? 0) >= 1)).toBe(true);
  });

  it("sorts by each documented sort, both ways, with the same rows on every page", async () => {
    const all = await allPages("", 1000);
    expect(all).toHaveLength(200);
    const fields = ["clvAtStake", "overdueRatio", "probabilityAlive", "expectedNextOrderAt"] as const;
    for (const field of fields)
      for (const descending of [false, true]) {
        const sort = `${descending ? "-" : ""}${field}`;
        const rows = await allPages(`sort=${sort}`, 33);
        // Lapsed customers are not expected to order: the next-order sort leaves them out.
        const listed = field === "expectedNextOrderAt" ? all.filter((r) => r.stage !== "lapsed") : all;
        expect(rows.map((r) => r.customerId).sort(), sort).toEqual(listed.map((r) => r.customerId).sort());
        const values = rows.map((r) => r[field] as number | string);
        expect(
          values.every((value) => value !== null),
          sort,
        ).toBe(true);
        const sorted = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        expect(values, sort).toEqual(descending ? sorted.reverse() : sorted);
      }
    const lapsed = all.filter((r) => r.stage === "lapsed");
    expect(lapsed.length).toBeGreaterThan(0);
    // Asking for lapsed customers by their next order is a mistake the API names, not an empty list.
    for (const sort of ["expectedNextOrderAt", "-expectedNextOrderAt"]) {
      const refused = await api.call("GET", `/v1/admin/customers?stage=lapsed&sort=${sort}`, undefined, adminKey);
      expect(refused.status).toBe(400);
      expect(await refused.text()).toContain("sort them by another column");
    }
    expect(lapsed.every((r) => r.expectedNextOrderAt === null)).toBe(true);
    expect(all.some((r) => r.expectedNextOrderAt !== null)).toBe(true);
    // A weekly regular buying on rhythm has little at stake; the most at stake is someone gone quiet.
    const vip = all
      .filter((r) => r.valueTier === "top" && r.stage === "active")
      .sort((a, b) => b.probabilityAlive - a.probabilityAlive)[0];
    expect(vip).toBeDefined();
    expect(vip?.clvAtStake).toBeLessThan(0.1 * (vip?.clv12 ?? 0));
    expect(all[0]?.clvAtStake).toBeGreaterThan(vip?.clvAtStake ?? 0);
    expect(all[0]?.probabilityAlive).toBeLessThan(vip?.probabilityAlive ?? 0);
  });

  it("rounds its figures as GET /v1/customers/:id does: money to cents, P(alive) to 4 places, the overdue ratio to 2", async () => {
    const all = await allPages("", 1000);
    const places = (value: number) => (String(value).split(".")[1] ?? "").length;
    for (const row of all) {
      for (const money of [row.clv12, row.clv24, row.clvAtStake])
        expect(places(money), row.customerId).toBeLessThanOrEqual(2);
      expect(places(row.probabilityAlive), row.customerId).toBeLessThanOrEqual(4);
      expect(places(row.overdueRatio), row.customerId).toBeLessThanOrEqual(2);
    }
    // Not all whole numbers: the figures keep their rounded decimals.
    expect(all.some((row) => places(row.probabilityAlive) > 0)).toBe(true);
  });

  it("pages with a cursor that holds while a new customer is scored between two pages", async () => {
    const before = (await allPages("sort=-clvAtStake", 1000)).map((r) => r.customerId);
    const first = await list("sort=-clvAtStake&limit=50");
    expect(first.next).not.toBeNull();

    // A new customer is ingested and scored between the two page reads.
    expect(
      (
        await api.postOrders([
          anOrder({
            id: "newcomer-1",
            placedAt: new Date(asOf.getTime() - 200 * day).toISOString(),
            identifiers: { loyalty: "NEW-1" },
          }),
          anOrder({
            id: "newcomer-2",
            placedAt: new Date(asOf.getTime() - 100 * day).toISOString(),
            identifiers: { loyalty: "NEW-1" },
          }),
        ])
      ).status,
    ).toBe(200);
    const newcomer = await idOf("NEW-1");
    const models = (await currentModels(db, asOf)).customer as PopulationModels;
    const last = newcomer.charCodeAt(newcomer.length - 1);
    const justBelow = `${newcomer.slice(0, -1)}${String.fromCharCode(last - 1)}~~~~~~~~`;
    // The nightly job's page step, run where the newcomer's rows are (D1, or the shard holding them).
    const scored = await onCustomerStore(newcomer, (store) =>
      scorePageStep(store, models, justBelow, 1, "between-pages", asOf),
    );
    expect(scored.scored).toBe(1);

    const rest: string[] = [];
    let cursor = first.next;
    while (cursor) {
      const page = await list(`sort=-clvAtStake&limit=50&cursor=${encodeURIComponent(cursor)}`);
      rest.push(...page.customers.map((r) => r.customerId));
      cursor = page.next;
    }
    const seen = [...first.customers.map((r) => r.customerId), ...rest];
    expect(new Set(seen).size).toBe(seen.length); // no duplicates
    for (const id of before) expect(seen).toContain(id); // no gaps
    expect(seen.filter((id) => !before.includes(id)).every((id) => id === newcomer)).toBe(true);

    // A cursor belongs to its sort.
    const wrong = await get(`/v1/admin/customers?sort=overdueRatio&cursor=${encodeURIComponent(first.next ?? "")}`);
    expect(wrong.status).toBe(400);
  });

  it("exports the same list as CSV with the documented header and escaping", async () => {
    const json = await allPages("stage=active&sort=-overdueRatio", 1000);
    const response = await get("/v1/admin/customers?stage=active&sort=-overdueRatio&format=csv");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/csv/);
    expect(response.headers.get("Content-Disposition")).toMatch(/^attachment; filename="patron-customers-/);
    const text = await response.text();
    const lines = text.split("\r\n");
    expect(lines.pop()).toBe("");
    expect(lines[0]).toBe(csvHeader.join(","));
    for (const name of [
      "customerId",
      "stage",
      "overdueRatio",
      "probabilityAlive",
      "clv12",
      "expectedNextOrderAt",
      "offerGuidance",
    ])
      expect(csvHeader).toContain(name);
    expect(lines.slice(1).map((l) => l.split(",")[0])).toEqual(json.map((r) => r.customerId));
    // The guidance for a full-price shopper holds a comma, so it is quoted.
    const fullPrice = json.find((r) => r.offer === "no_incentive");
    expect(fullPrice).toBeDefined();
    const row = lines.find((l) => l.startsWith(`${fullPrice?.customerId},`));
    expect(row).toMatch(/,no_incentive,"no incentive, right message at the right time",\d+$/);
    const deal = json.find((r) => r.offer === "deal_driven");
    if (deal) expect(deal.offerGuidance).toBe("lead with an offer");
    // No raw identifier ever leaves in an export.
    expect(text).not.toMatch(/VIP-|REST-|LAPSE-|@/);
  });

  it("streams a CSV a keyset page at a time, the same rows whatever the page size", async () => {
    const whole = await (await get("/v1/admin/customers?stage=active&sort=probabilityAlive&format=csv")).text();
    const rows = whole.split("\r\n").length - 2;
    expect(rows).toBeGreaterThan(10);
    const filter: ListFilter = { stage: "active", column: "probability_alive", descending: false, limit: 0 };
    // The list source the route reads: D1, or every shard's pages merged.
    const source = shardCount(env) > 0 ? shardedList(env) : databaseList(db);
    // Small pages, and a page size that divides the row count exactly (the last read finds nothing).
    for (const pageSize of [1, 7, rows, Math.ceil(rows / 2)])
      expect(await new Response(customerCsv(source, filter, [], pageSize)).text(), String(pageSize)).toBe(whole);
  });

  it("walks an index for every filter and sort, in every database holding customers: no full scan, no sort at request time", async () => {
    const filters: Partial<ListFilter>[] = [
      {},
      { stage: "fading" },
      { stage: "active", valueTier: "top" },
      { valueTier: "top", discountSensitivity: "full_price" },
      { lapsedCategory: "tea" },
      { lapsedCategory: "tea", stage: "active", valueTier: "high" },
      { stage: "lapsed", after: { value: 10, customerId: "c_x" } },
    ];
    const rollupPlan = await db.all<{ detail: string }>(sql`EXPLAIN QUERY PLAN ${latestInsightRollupQuery}`);
    expect(rollupPlan.map((step) => step.detail)).toEqual([
      "SCAN insight_rollups USING INDEX insight_rollups_computed_idx",
    ]);
    const columns = ["clv_at_stake", "overdue_ratio", "probability_alive", "expected_next_order_at"] as const;
    for (const filter of filters)
      for (const column of columns)
        for (const descending of [false, true]) {
          // D1's plan, or each shard's: every shard runs the same list query on its own SQLite.
          const plans = await onEveryStore((store) =>
            listQueryPlan(store, { column, descending, limit: 100, ...filter }),
          );
          expect(plans.length).toBe(Math.max(1, shardCount(env)));
          for (const [place, plan] of plans.entries()) {
            const label = `${place}: ${JSON.stringify(filter)} ${column} ${descending}: ${plan.join(" | ")}`;
            expect(
              plan.some((step) => /TEMP B-TREE/.test(step)),
              label,
            ).toBe(false);
            expect(
              plan.every((step) => !/^SCAN/.test(step) || /USING (COVERING )?INDEX/.test(step)),
              label,
            ).toBe(true);
          }
        }
  });

  it("forgets an erased customer's lapsed categories with the rest of their data", async () => {
    const lapsing = await allPages("lapsedCategory=tea", 1000);
    const erased = lapsing[0]?.customerId as string;
    expect(erased).toBeDefined();
    expect((await api.call("DELETE", `/v1/customers/${erased}`, undefined, adminKey)).status).toBe(200);
    const left = await storeRows("SELECT customer_id FROM customer_category_lapses WHERE customer_id = ?", erased);
    expect(left).toEqual([]);
    const after = await allPages("lapsedCategory=tea", 1000);
    expect(after.map((r) => r.customerId)).toEqual(lapsing.slice(1).map((r) => r.customerId));
  });
});
