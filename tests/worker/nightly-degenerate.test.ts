// The nightly job on data that used to stop it for everyone: an eighth of the customers are
// subscribers repeating one constant order value, last orders are dated up to a day after the run's
// `asOf`, and a few customers carry histories the models cannot read. The run completes, reports the
// spend model's fallback and the skipped customers by reason, and every profile and shelf answers.
// Runs on either store: the odd histories are written wherever the customers' summaries are (D1, or
// their shard).
import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { jobRunResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { customerResponseSchema } from "../../worker/customers/customers.schemas.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { recommendationsResponseSchema } from "../../worker/recommendations/recommendations.schemas.ts";
import { adminKey, anOrder, client } from "../fixtures/builders.ts";
import { storeRun } from "../fixtures/store-rows.ts";

const api = client(SELF);
const day = 86_400_000;
const asOf = new Date();
const customers = 160;
const subscribers = customers / 8;

/** Seeded (Park–Miller), so the data is the same on every run. */
function generator(seed: number) {
  let state = seed;
  const uniform = () => {
    state = (state * 16_807) % 2_147_483_647;
    return state / 2_147_483_647;
  };
  const gamma = (k: number) => Array.from({ length: k }, () => -Math.log(uniform())).reduce((a, b) => a + b, 0);
  return { uniform, gamma };
}

function orders() {
  const { uniform, gamma } = generator(11);
  const all = [];
  for (let c = 0; c < customers; c++) {
    const subscriber = c < subscribers;
    const count = subscriber ? 3 + Math.floor(uniform() * 10) : 1 + Math.floor(uniform() * 6);
    const interval = subscriber ? 28 : 10 + Math.floor(uniform() * 40);
    const nu = gamma(4) / 60;
    // Every tenth customer's last order is dated 0.9 days after asOf (accepted: up to a day ahead).
    const last = asOf.getTime() + (c % 10 === 0 ? 0.9 * day : -Math.floor(uniform() * 30) * day);
    for (let k = 0; k < count; k++) {
      const price = subscriber ? 25 : Math.max(1, Math.round((gamma(6) / nu) * 100) / 100);
      all.push(
        anOrder({
          id: `deg-${c}-${k}`,
          placedAt: new Date(last - (count - 1 - k) * interval * day).toISOString(),
          identifiers: { account: `deg-${c}` },
          lines: [
            { productId: `deg-p-${c % 5}`, categoryId: "deg-cat", quantity: 1, unitPrice: price, listPrice: price },
          ],
        }),
      );
    }
  }
  return all;
}

async function customerIdOf(account: string): Promise<string> {
  const response = await api.lookup("account", account);
  expect(response.status).toBe(200);
  return customerResponseSchema.parse(await response.json()).data.customerId;
}

/** Histories the models cannot read, written straight into the summaries as legacy data would be. */
const odd = {
  "deg-150": ["first_order_at = '0000-01-01T00:00:00.000Z'", "date_before_1970"],
  "deg-151": ["last_order_at = 'yesterday-ish'", "invalid_date"],
  "deg-152": ["positive_day_spend = -40", "invalid_number"],
} as const;

beforeAll(async () => {
  const all = orders();
  for (let i = 0; i < all.length; i += 250) {
    const response = await api.postOrders(all.slice(i, i + 250));
    expect(response.status, await response.clone().text()).toBe(200);
  }
  for (const [account, [assignment]] of Object.entries(odd)) {
    const id = await customerIdOf(account);
    await storeRun(`UPDATE customer_summaries SET ${assignment} WHERE customer_id = ?`, id);
  }
});

describe("nightly job on degenerate data", () => {
  it("completes, reports the spend model's fallback and counts the customers it skipped", async () => {
    const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ asOf: asOf.toISOString(), pageSize: 50 }),
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const run = jobRunResponseSchema.parse(await response.json()).data;
    expect(run.status, JSON.stringify(run)).toBe("done");
    expect(run.detail).toMatchObject({
      scored: customers - 3,
      skipped: 3,
      skippedReasons: { date_before_1970: 1, invalid_date: 1, invalid_number: 1 },
      fit: {
        sampleSize: customers - 3,
        source: "fitted",
        excluded: { date_before_1970: 1, invalid_date: 1, invalid_number: 1 },
      },
    });
    const detail = run.detail as { fallbacks: { model: string; estimate: string }[] };
    expect(detail.fallbacks).toContainEqual(
      expect.objectContaining({ model: "gammaGamma", estimate: "method_of_moments" }),
    );
    expect(run.processed).toBe(customers - 3);
  });

  it("serves profiles for subscribers and for customers with orders after asOf, and answers the unreadable ones without one", async () => {
    for (const account of ["deg-0", "deg-3", "deg-10", "deg-40"]) {
      const response = await api.customer(await customerIdOf(account));
      expect(response.status).toBe(200);
      const { profile } = customerResponseSchema.parse(await response.json()).data;
      expect(profile, account).not.toBeNull();
      expect(Number.isFinite(profile?.clv12)).toBe(true);
    }
    for (const account of Object.keys(odd)) {
      const response = await api.customer(await customerIdOf(account));
      expect(response.status, account).toBe(200);
      expect(customerResponseSchema.parse(await response.json()).data.profile, account).toBeNull();
    }
  });

  it("serves shelves to all of them", async () => {
    for (const account of ["deg-0", "deg-10", ...Object.keys(odd)]) {
      const token = await signShopperToken(account, "test-shopper-secret", 3600, new Date());
      const response = await SELF.fetch("http://patron.test/v1/recommendations", {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(response.status, `${account}: ${await response.clone().text()}`).toBe(200);
      const data = recommendationsResponseSchema.parse(await response.json()).data;
      expect(data.degraded).toBeUndefined();
    }
  });

  it("keeps a customer scored before, and skipped now, in the CLV distribution as the segments keep them", async () => {
    // deg-3 was scored by the run above; its history turns unreadable, and a later run skips it.
    await storeRun(
      "UPDATE customer_summaries SET last_order_at = 'not a date' WHERE customer_id = ?",
      await customerIdOf("deg-3"),
    );
    const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ asOf: new Date(asOf.getTime() + day).toISOString(), pageSize: 50 }),
    });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(jobRunResponseSchema.parse(await response.json()).data.detail).toMatchObject({ skipped: 4 });
    const admin = { headers: { Authorization: `Bearer ${adminKey}` } };
    const histogram = (await (
      await SELF.fetch("http://patron.test/v1/admin/insights/clv-distribution", admin)
    ).json()) as {
      data: { customers: number; clv12: number };
    };
    const segments = (await (await SELF.fetch("http://patron.test/v1/admin/segments?limit=1", admin)).json()) as {
      data: { summary: { customers: number; clv12: number }[] };
    };
    const held = segments.data.summary.reduce((sum, row) => sum + row.customers, 0);
    expect(held).toBe(customers - 3);
    expect(histogram.data.customers).toBe(held);
    expect(histogram.data.clv12).toBeCloseTo(
      segments.data.summary.reduce((sum, row) => sum + row.clv12, 0),
      1,
    );
  });
});
