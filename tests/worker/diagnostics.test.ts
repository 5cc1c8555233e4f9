// GET /v1/admin/models/diagnostics: computed by the nightly job from the stored orders, read back
// through the admin API. A planted year of orders with known rhythms; the sums are checked against
// the orders themselves. Runs on both stores (D1, and customer shards in the worker-shards project,
// where the nightly job fits over the shards' shares).
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { jobRunResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { adminKey, anOrder, client } from "../fixtures/builders.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);
const day = 86_400_000;
const asOf = new Date();

interface Diagnostics {
  status: string;
  computedAt: string;
  sampledCustomers: number;
  model: string;
  regularity: boolean;
  calibration: { from: string; to: string; firstPurchase: string };
  holdout: { from: string; to: string };
  periodDays: number;
  customers: number;
  fit: Record<string, number | boolean>;
  tracking: {
    from: string;
    to: string;
    phase: string;
    actual: number;
    expected: number;
    cumulativeActual: number;
    cumulativeExpected: number;
  }[];
  byFrequency: { purchases: string; customers: number; actualMean: number; expectedMean: number }[];
  totals: {
    calibration: { actual: number; expected: number };
    holdout: { actual: number; expected: number; conditionalExpected: number };
  };
}

function diagnostics(key: string | null = adminKey) {
  return api.call("GET", "/v1/admin/models/diagnostics", undefined, key);
}

/** 60 shoppers over the last 360 days: every 9 to 65 days, some stopping half-way, some buying once. */
function orders() {
  const list = [];
  for (let c = 0; c < 60; c++) {
    const interval = 9 + (c % 8) * 8;
    const first = 360 - (c % 10) * 12;
    const last = c % 4 === 0 ? first / 2 : 0;
    const once = c % 7 === 0;
    for (let ago = first, k = 0; ago >= last; ago -= interval, k++) {
      list.push(
        anOrder({
          id: `diag-${c}-${k}`,
          placedAt: new Date(asOf.getTime() - ago * day).toISOString(),
          identifiers: { account: `diag-${c}` },
          lines: [{ productId: "p-1", categoryId: "coffee", quantity: 1, unitPrice: 20, listPrice: 20 }],
        }),
      );
      if (once) break;
    }
  }
  return list;
}

describe("GET /v1/admin/models/diagnostics", () => {
  it("answers 404 before any run, and needs the admin key", async () => {
    const response = await diagnostics();
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: "not_found" });
    expect(body.error.message).toMatch(/POST \/v1\/admin\/jobs\/nightly/);
    expect((await diagnostics(null)).status).toBe(401);
    expect((await diagnostics("test-api-key")).status).toBe(401);
  });

  it("is computed by the nightly job: predicted vs actual per week, and by calibration frequency", async () => {
    const all = orders();
    for (let i = 0; i < all.length; i += 200) expect((await api.postOrders(all.slice(i, i + 200))).status).toBe(200);
    const run = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ asOf: asOf.toISOString() }),
    });
    expect(run.status, await run.clone().text()).toBe(200);
    expect(jobRunResponseSchema.parse(await run.json()).data.detail).toMatchObject({ diagnostics: { ok: true } });

    const response = await diagnostics();
    expect(response.status, await response.clone().text()).toBe(200);
    const data = ((await response.json()) as { data: Diagnostics }).data;
    expect(data).toMatchObject({ status: "ready", periodDays: 7, sampledCustomers: 60, customers: 60 });
    for (const key of ["r", "alpha", "a", "b"]) expect(data.fit[key]).toBeGreaterThan(0);
    // The model checked is the run's fit: its variant, with each customer's regularity.
    const models = await api.call("GET", "/v1/admin/models", undefined, adminKey);
    const { customer } = (
      (await models.json()) as { data: { customer: { bgnbd: { dropoutAtFirstPurchase: boolean } } } }
    ).data;
    expect(data.model).toBe(customer.bgnbd.dropoutAtFirstPurchase ? "mbgnbd" : "bgnbd");
    expect(data.regularity).toBe(true);

    // A third of the year held out, in whole weeks, ending today; periods contiguous.
    const holdoutDays = (Date.parse(data.holdout.to) - Date.parse(data.holdout.from)) / day + 1;
    expect(holdoutDays % 7).toBe(0);
    expect(holdoutDays).toBe(Math.floor(361 / 3 / 7) * 7);
    expect(data.holdout.to).toBe(asOf.toISOString().slice(0, 10));
    expect(Date.parse(data.holdout.from) - Date.parse(data.calibration.to)).toBe(day);
    for (let i = 1; i < data.tracking.length; i++)
      expect(Date.parse(data.tracking[i]!.from) - Date.parse(data.tracking[i - 1]!.to)).toBe(day);
    expect(data.tracking.filter((period) => period.phase === "holdout")).toHaveLength(holdoutDays / 7);

    // The actual counts are the stored orders: repeat purchase days before and after the cutoff. A
    // customer's orders are all in one place (D1, or the shard holding their region), so the counts
    // of each shard add up.
    const repeatDays = async (from: string, to: string) =>
      (
        await storeRows<{ n: number }>(
          `WITH days AS (SELECT DISTINCT customer_id, substr(placed_at, 1, 10) AS day FROM orders),
            firsts AS (SELECT customer_id, min(day) AS first FROM days GROUP BY customer_id)
          SELECT count(*) AS n FROM days JOIN firsts USING (customer_id)
          WHERE day > first AND day >= ? AND day <= ?`,
          from,
          to,
        )
      ).reduce((total, row) => total + row.n, 0);
    expect(data.totals.calibration.actual).toBe(await repeatDays("0000", data.calibration.to));
    // The first purchase the fit saw: the first stored order's day (the year fits in the plotted weeks).
    const firsts = await storeRows<{ first: string }>("SELECT min(substr(placed_at, 1, 10)) AS first FROM orders");
    expect(data.calibration.firstPurchase).toBe(firsts.map((row) => row.first).sort()[0]);
    expect(data.calibration.firstPurchase >= data.calibration.from).toBe(true);
    expect(data.totals.holdout.actual).toBe(await repeatDays(data.holdout.from, data.holdout.to));
    const periodSum = data.tracking.reduce((total, period) => total + period.actual, 0);
    expect(periodSum).toBe(data.totals.calibration.actual + data.totals.holdout.actual);
    expect(data.tracking.at(-1)?.cumulativeActual).toBe(periodSum);
    const expectedSum = data.tracking.reduce((total, period) => total + period.expected, 0);
    expect(expectedSum).toBeCloseTo(data.tracking.at(-1)?.cumulativeExpected ?? 0, 1);

    // By frequency: every cohort customer in one group, the groups' actuals adding up to the holdout.
    expect(data.byFrequency.map((group) => group.purchases)).toEqual(["0", "1", "2", "3", "4", "5", "6", "7+"]);
    expect(data.byFrequency.reduce((total, group) => total + group.customers, 0)).toBe(data.customers);
    const groupActual = data.byFrequency.reduce((total, group) => total + group.actualMean * group.customers, 0);
    expect(groupActual).toBeCloseTo(data.totals.holdout.actual, 1);
    for (const group of data.byFrequency) expect(group.expectedMean).toBeGreaterThanOrEqual(0);
  });

  it("names a plain BG/NBD without regularity for diagnostics stored before they named their model", async () => {
    const response = await diagnostics();
    const { model, regularity, ...stored } = ((await response.json()) as { data: Diagnostics }).data;
    const { status: _, computedAt, sampledCustomers, ...rest } = stored;
    const older = { ok: true, computedAt, sampledCustomers, diagnostics: rest };
    await env.DB.prepare(
      "INSERT INTO model_params (model, params, fitted_at, sample_size, log_likelihood) VALUES ('diagnostics', ?, ?, 60, NULL)",
    )
      .bind(JSON.stringify(older), new Date(asOf.getTime() + day).toISOString())
      .run();
    const data = ((await (await diagnostics()).json()) as { data: Diagnostics }).data;
    expect(data).toMatchObject({ status: "ready", model: "bgnbd", regularity: false, customers: rest.customers });
  });
});
