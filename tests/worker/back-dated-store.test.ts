// A store of past orders scored as of its last day (a back-dated nightly run, as docs/import.md does
// for an imported history): the customer page and its history read as of that run's asOf plus the time
// since, so they agree with the scores the list shows instead of calling everyone lapsed years later.
// On both stores (D1, and customer shards in the worker-shards project).
import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { jobRunResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { customerListResponseSchema } from "../../worker/admin/insights.schemas.ts";
import { customerHistoryResponseSchema, customerResponseSchema } from "../../worker/customers/customers.schemas.ts";
import { adminKey, anOrder, client, rhythmPopulation } from "../fixtures/builders.ts";

const api = client(SELF);
/** The history's last day: years before the tests run. */
const asOf = new Date("2019-06-01T00:00:00Z");
const get = (path: string) => api.call("GET", path, undefined, adminKey);

/** Regulars still buying as of asOf, regulars who stopped, and one-time buyers. */
const history = () =>
  rhythmPopulation(asOf, (c, k) => ({
    id: `past-${c}-${k}`,
    identifiers: { account: `past-${c}` },
    lines: [{ productId: `p-${c % 4}`, categoryId: `cat-${c % 4}`, quantity: 1, unitPrice: 10 + (c % 7) * 5 }],
  }));

beforeAll(async () => {
  expect((await api.postOrders(history())).status).toBe(200);
  const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ asOf: asOf.toISOString() }),
  });
  expect(response.status, await response.clone().text()).toBe(200);
  expect(jobRunResponseSchema.parse(await response.json()).data.status).toBe("done");
});

describe("after a back-dated run", () => {
  it("the customer page agrees with the list's stage, tier and CLV", async () => {
    const listed = await get("/v1/admin/customers?limit=100");
    expect(listed.status).toBe(200);
    const rows = customerListResponseSchema.parse(await listed.json()).data.customers;
    expect(rows).toHaveLength(60);
    // Not all lapsed: the store's clock is 2019, not today.
    expect(new Set(rows.map((row) => row.stage)).size).toBeGreaterThan(1);
    for (const row of rows) {
      const response = await get(`/v1/customers/${row.customerId}`);
      expect(response.status).toBe(200);
      const { profile } = customerResponseSchema.parse(await response.json()).data;
      expect({ id: row.customerId, stage: profile?.stage, tier: profile?.valueTier }).toEqual({
        id: row.customerId,
        stage: row.stage,
        tier: row.valueTier,
      });
      expect(profile?.clv12).toBeCloseTo(row.clv12, 0);
    }
  });

  it("the history's now is the run's asOf plus the time since, not today", async () => {
    const [row] = customerListResponseSchema.parse(await (await get("/v1/admin/customers?limit=1")).json()).data
      .customers;
    const response = await get(`/v1/customers/${row?.customerId}/history`);
    expect(response.status).toBe(200);
    const { asOf: readAt } = customerHistoryResponseSchema.parse(await response.json()).data;
    expect(Date.parse(readAt) - asOf.getTime()).toBeGreaterThanOrEqual(0);
    expect(Date.parse(readAt) - asOf.getTime()).toBeLessThan(10 * 60_000);
  });

  it("reads a customer who buys after the run at the present, the page and the history alike", async () => {
    const today = new Date().toISOString();
    const orders = [
      // A new customer, and one of the history's with a new order.
      anOrder({ id: "today-new", placedAt: today, identifiers: { account: "today-new" } }),
      anOrder({ id: "today-past-1", placedAt: today, identifiers: { account: "past-1" } }),
    ];
    expect((await api.postOrders(orders)).status).toBe(200);
    for (const account of ["today-new", "past-1"]) {
      const found = await api.lookup("account", account);
      const { customerId, profile } = customerResponseSchema.parse(await found.json()).data;
      expect(profile?.stage).toBeDefined();
      expect(profile?.cadence.daysSinceLast).toBeLessThan(1);
      const history = await get(`/v1/customers/${customerId}/history`);
      const { asOf: readAt, points } = customerHistoryResponseSchema.parse(await history.json()).data;
      expect(Date.now() - Date.parse(readAt)).toBeLessThan(10 * 60_000);
      expect(points.at(-1)?.stage).toBe(profile?.stage);
    }
  });
});
