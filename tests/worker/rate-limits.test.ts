// Rate limits through the real Rate Limiting bindings configured in wrangler.toml (local counters in
// fixed windows of 60 s), and deduplication of anonymous view events.
//
// High-volume tests call the app's fetch with the worker's real bindings (`app.request(url, init, env)`):
// the same app and limiters as SELF, without the per-request overhead of the test service binding.
//
// A window can end in the middle of a test and reset a counter, so each test asserts that the first
// `limit` requests pass and that a 429 comes within the next `limit + 1`: true whenever the limit
// holds, and false if it is missing or lower than configured.
import { env, SELF } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../worker/app.ts";
import { eventDedupeKey } from "../../worker/events/events.routes.ts";
import { eventsResponseSchema } from "../../worker/events/events.schemas.ts";
import { addressKey } from "../../worker/http/rate-limit.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { anOrder, client } from "../fixtures/builders.ts";
import { stopClock } from "../fixtures/clock.ts";

/** The limits in wrangler.toml, per 60 s window. */
const limits = { shopper: 120, address: 600, keyFailures: 10 };
const base = "http://patron.test";
const secret = "test-shopper-secret";
// Counters outlive a test file in the local limiter, so every run uses its own addresses and shoppers.
const run = crypto.randomUUID().slice(0, 4);
let addresses = 0;
/** A client of its own: an IPv6 address in a /64 of its own (an IPv6 address counts by its /64). */
const newAddress = () => `2001:db8:${run}:${++addresses}::1`;
/** Another address in the same /64 as `address`: the same subscriber, the same allowance. */
const sameSubscriber = (address: string, host: string) => address.replace(/::1$/, `::${host}`);
const shopper = (name: string) => `${name}-${run}`;
const app = createApp();
const fetchApp = async (url: string, init: RequestInit = {}, bindings: typeof env = env) =>
  app.request(url, init, bindings);

interface Sent {
  status: number;
  response: Response;
}

/** Sends up to `max` requests one after another, stopping at the first 429. */
async function sendUntilLimited(max: number, send: () => Promise<Response>): Promise<Sent[]> {
  const sent: Sent[] = [];
  for (let i = 0; i < max; i++) {
    const response = await send();
    sent.push({ status: response.status, response });
    if (response.status === 429) break;
    await response.arrayBuffer();
  }
  return sent;
}

/** The first `limit` pass with `okStatus`; the next `limit + 1` include a 429, which is returned. */
async function expectLimitedAfter(limit: number, okStatus: number, send: () => Promise<Response>) {
  const sent = await sendUntilLimited(2 * limit + 1, send);
  const statuses = sent.map((s) => s.status);
  expect(statuses.slice(0, limit)).toEqual(Array(limit).fill(okStatus));
  const last = sent.at(-1);
  expect(last?.status, `no 429 after ${sent.length} requests`).toBe(429);
  return last?.response as Response;
}

async function expectRateLimitedEnvelope(response: Response) {
  expect(response.status).toBe(429);
  expect(response.headers.get("Retry-After")).toBe("60");
  expect(response.headers.get("Cache-Control")).toBe("no-store");
  const body = (await response.json()) as { error: { code: string; message: string; requestId: string } };
  expect(body.error.code).toBe("rate_limited");
  expect(body.error.message).toMatch(/retry after/i);
  expect(body.error.requestId).toBe(response.headers.get("X-Request-Id"));
}

const tokenFor = (account: string) => signShopperToken(account, secret, 3600, new Date());

function getRecommendations(headers: Record<string, string>) {
  return fetchApp(`${base}/v1/recommendations?limit=4&categories=1`, { headers });
}

function postEvents(body: unknown, headers: Record<string, string> = {}) {
  return fetchApp(`${base}/v1/events`, {
    method: "POST",
    headers: { "Content-Type": "text/plain;charset=UTF-8", ...headers },
    body: JSON.stringify(body),
  });
}

function adminRules(key: string, address: string) {
  return SELF.fetch(`${base}/v1/admin/rules`, {
    headers: { Authorization: `Bearer ${key}`, "CF-Connecting-IP": address },
  });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("GET /v1/recommendations", () => {
  it("limits each client address, and another address is not affected", async () => {
    const address = newAddress();
    const limited = await expectLimitedAfter(limits.address, 200, () =>
      getRecommendations({ "CF-Connecting-IP": address }),
    );
    await expectRateLimitedEnvelope(limited);
    expect((await getRecommendations({ "CF-Connecting-IP": newAddress() })).status).toBe(200);
  });

  it("counts an IPv6 client by its /64: a fresh address in the same /64 is limited too", async () => {
    const address = newAddress();
    let host = 0;
    await expectLimitedAfter(limits.address, 200, () =>
      getRecommendations({ "CF-Connecting-IP": sameSubscriber(address, (++host).toString(16)) }),
    );
    const again = await getRecommendations({ "CF-Connecting-IP": sameSubscriber(address, "ffff:ffff:fffe") });
    await expectRateLimitedEnvelope(again);
    expect((await getRecommendations({ "CF-Connecting-IP": newAddress() })).status).toBe(200);
  });

  it.each([
    ["192.0.2.1", "192.0.2.1"],
    ["2001:db8:ab:1::7", "2001:db8:ab:1::/64"],
    ["2001:0DB8:00ab:0001:0000:0000:0000:0007", "2001:db8:ab:1::/64"],
    ["2001:db8:ab:1:ffff:ffff:ffff:ffff", "2001:db8:ab:1::/64"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["::ffff:192.0.2.1", "192.0.2.1"],
    ["64:ff9b::192.0.2.1", "64:ff9b:0:0::/64"],
    ["1::2::3", "1::2::3"],
    ["2001:db8:ab::1:2:3:4:5", "2001:db8:ab::1:2:3:4:5"],
  ])("counts %s as %s", (address, key) => {
    expect(addressKey(address)).toBe(key);
  });

  it("limits each shopper, and another shopper is not affected", async () => {
    const token = await tokenFor(shopper("busy"));
    const limited = await expectLimitedAfter(limits.shopper, 200, () =>
      getRecommendations({ Authorization: `Bearer ${token}` }),
    );
    await expectRateLimitedEnvelope(limited);
    expect((await getRecommendations({ Authorization: `Bearer ${token}` })).status).toBe(429);
    const other = await tokenFor(shopper("calm"));
    expect((await getRecommendations({ Authorization: `Bearer ${other}` })).status).toBe(200);
  });

  it("does not let a forged token spend a shopper's allowance", async () => {
    const account = shopper("victim");
    const forged = await signShopperToken(account, "not-the-secret", 3600, new Date());
    for (let i = 0; i < limits.shopper + 5; i++) {
      const response = await getRecommendations({ Authorization: `Bearer ${forged}` });
      expect(response.status).toBe(401);
      await response.arrayBuffer();
    }
    expect((await getRecommendations({ Authorization: `Bearer ${await tokenFor(account)}` })).status).toBe(200);
  });
});

describe("POST /v1/events", () => {
  it("limits each client address, and a refused beacon stores nothing", async () => {
    const address = newAddress();
    const prefix = `limited-${run}-`;
    let sent = 0;
    const limited = await expectLimitedAfter(limits.address, 202, () =>
      postEvents({ type: "view", productId: `${prefix}${++sent}` }, { "CF-Connecting-IP": address }),
    );
    await expectRateLimitedEnvelope(limited);
    const stored = await env.EVENTS_DB.prepare("SELECT count(*) AS n FROM events WHERE product_id LIKE ?")
      .bind(`${prefix}%`)
      .first<{ n: number }>();
    expect(stored?.n).toBe(sent - 1);
    expect((await postEvents({ type: "view", productId: "sku-1" }, { "CF-Connecting-IP": newAddress() })).status).toBe(
      202,
    );
  });

  it("limits each shopper behind a token, and another shopper is not affected", async () => {
    const token = await tokenFor(shopper("beacons"));
    const limited = await expectLimitedAfter(limits.shopper, 202, () =>
      postEvents({ type: "view", productId: "sku-1", token }),
    );
    await expectRateLimitedEnvelope(limited);
    const other = await tokenFor(shopper("quiet"));
    expect((await postEvents({ type: "view", productId: "sku-1", token: other })).status).toBe(202);
  });
});

describe("failed key checks", () => {
  it("throttles a guessing address on every key-guarded route, even once it sends the right key", async () => {
    const address = newAddress();
    const guesses = await sendUntilLimited(2 * limits.keyFailures + 1, () => adminRules("guess", address));
    expect(guesses.slice(0, limits.keyFailures).map((s) => s.status)).toEqual(Array(limits.keyFailures).fill(401));
    const limited = guesses.at(-1)?.response as Response;
    await expectRateLimitedEnvelope(limited);

    // Blocked: a right key from the same address cannot be told apart from a wrong one.
    expect((await adminRules("test-admin-key", address)).status).toBe(429);
    const ingest = await SELF.fetch(`${base}/v1/products`, {
      method: "POST",
      headers: { Authorization: "Bearer test-api-key", "CF-Connecting-IP": address },
      body: JSON.stringify({ products: [] }),
    });
    expect(ingest.status).toBe(429);
    expect(ingest.headers.get("Retry-After")).not.toBeNull();
    // Another address with the right key is served.
    expect((await adminRules("test-admin-key", newAddress())).status).toBe(200);
  });

  it("counts guesses from one IPv6 /64 together, whichever of its addresses they come from", async () => {
    const address = newAddress();
    let host = 0;
    const guesses = await sendUntilLimited(2 * limits.keyFailures + 1, () =>
      adminRules("guess", sameSubscriber(address, (++host).toString(16))),
    );
    expect(guesses.at(-1)?.status).toBe(429);
    expect((await adminRules("test-admin-key", sameSubscriber(address, "abcd"))).status).toBe(429);
  });

  it("does not count successful key checks", async () => {
    const address = newAddress();
    for (let i = 0; i < 3 * limits.keyFailures; i++) {
      const response = await adminRules("test-admin-key", address);
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
    for (let i = 0; i < limits.keyFailures; i++) {
      const response = await adminRules("guess", address);
      expect(response.status).toBe(401);
      await response.arrayBuffer();
    }
  });

  it("counts a wrong API key on the ingestion routes too", async () => {
    const address = newAddress();
    const limited = await expectLimitedAfter(limits.keyFailures, 401, () =>
      SELF.fetch(`${base}/v1/orders`, {
        method: "POST",
        headers: { Authorization: "Bearer wrong", "CF-Connecting-IP": address, "Content-Type": "application/json" },
        body: JSON.stringify({ orders: [] }),
      }),
    );
    await expectRateLimitedEnvelope(limited);
  });
});

describe("switches", () => {
  it("RATE_LIMITS=off lifts every limit", async () => {
    const off = { ...env, RATE_LIMITS: "off" };
    const address = newAddress();
    const token = await tokenFor(shopper("bench"));
    for (let i = 0; i < limits.shopper + 10; i++) {
      const response = await app.request(
        `${base}/v1/recommendations`,
        { headers: { Authorization: `Bearer ${token}`, "CF-Connecting-IP": address } },
        off,
      );
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
    for (let i = 0; i < limits.keyFailures + 5; i++) {
      const response = await app.request(
        `${base}/v1/admin/rules`,
        { headers: { Authorization: "Bearer guess", "CF-Connecting-IP": address } },
        off,
      );
      expect(response.status).toBe(401);
      await response.arrayBuffer();
    }
    // The same traffic with limits on is refused (within twice the limit: a window may turn over once).
    const on = await sendUntilLimited(2 * limits.shopper + 1, async () =>
      app.request(`${base}/v1/recommendations`, { headers: { Authorization: `Bearer ${token}` } }, env),
    );
    expect(on.at(-1)?.status).toBe(429);
  });

  it("fails open, with a warning, when the limiter errors", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const broken = {
      limit: async () => {
        throw new Error("limiter down");
      },
    };
    const faulty = { ...env, RATE_LIMIT_ADDRESS: broken, RATE_LIMIT_SHOPPER: broken, RATE_LIMIT_KEY_FAILURES: broken };
    const token = await tokenFor(shopper("faulty"));
    const response = await app.request(
      `${base}/v1/recommendations`,
      { headers: { Authorization: `Bearer ${token}`, "CF-Connecting-IP": newAddress() } },
      faulty,
    );
    expect(response.status).toBe(200);
    const denied = await app.request(
      `${base}/v1/admin/rules`,
      { headers: { Authorization: "Bearer guess", "CF-Connecting-IP": newAddress() } },
      faulty,
    );
    expect(denied.status).toBe(401);
    const warnings = warn.mock.calls.map((call) => JSON.parse(String(call[0])) as { warning: string; binding: string });
    expect(warnings.map((w) => w.binding).sort()).toEqual([
      "RATE_LIMIT_ADDRESS",
      "RATE_LIMIT_KEY_FAILURES",
      "RATE_LIMIT_SHOPPER",
    ]);
    expect(warnings.every((w) => w.warning === "rate limiter unavailable; request allowed")).toBe(true);
  });
});

describe("anonymous view events", () => {
  const viewRows = async (productId: string) =>
    (
      await env.EVENTS_DB.prepare("SELECT customer_id, dedupe_key FROM events WHERE type = 'view' AND product_id = ?")
        .bind(productId)
        .all<{ customer_id: string | null; dedupe_key: string }>()
    ).results;

  it("stores a repeated view from one address once a day and reports the repeats as duplicates", async () => {
    const address = newAddress();
    const product = `viewed-${run}`;
    const view = { type: "view", productId: product, categoryId: "plants" };
    const counts = async (body: unknown, from: string) => {
      const response = await postEvents(body, { "CF-Connecting-IP": from });
      expect(response.status).toBe(202);
      return eventsResponseSchema.parse(await response.json()).data;
    };
    const none = { ignored: 0, suppressed: 0 };
    // Once a UTC day: the repeats must come the same day, even when the test runs at midnight.
    stopClock();
    expect(await counts(view, address)).toEqual({ accepted: 1, duplicates: 0, ...none });
    expect(await counts(view, address)).toEqual({ accepted: 0, duplicates: 1, ...none });
    expect(await counts({ events: [view, view, { ...view, productId: `${product}-b` }] }, address)).toEqual({
      accepted: 1,
      duplicates: 2,
      ...none,
    });
    // Another address of the same IPv6 /64 is the same viewer; another /64 is another viewer.
    expect(await counts(view, sameSubscriber(address, "2"))).toEqual({ accepted: 0, duplicates: 1, ...none });
    expect(await counts(view, newAddress())).toEqual({ accepted: 1, duplicates: 0, ...none });

    const rows = await viewRows(product);
    expect(rows).toHaveLength(2);
    // The address itself is never stored, only a keyed hash of it.
    for (const row of rows) expect(row.dedupe_key).not.toContain(address);
  });

  it("keys an anonymous view by viewer and UTC day", () => {
    const view = { type: "view", productId: "p" } as const;
    const morning = new Date("2026-03-14T00:10:00Z");
    const evening = new Date("2026-03-14T23:50:00Z");
    const nextDay = new Date("2026-03-15T00:10:00Z");
    expect(eventDedupeKey(view, morning, "a")).toBe(eventDedupeKey(view, evening, "a"));
    expect(eventDedupeKey(view, morning, "a")).not.toBe(eventDedupeKey(view, nextDay, "a"));
    expect(eventDedupeKey(view, morning, "a")).not.toBe(eventDedupeKey(view, morning, "b"));
    expect(eventDedupeKey(view, morning, "a")).not.toBe(eventDedupeKey({ ...view, productId: "q" }, morning, "a"));
    // What the view claims besides the product does not make it another view.
    expect(eventDedupeKey({ ...view, categoryId: "x" }, morning, "a")).toBe(eventDedupeKey(view, morning, "a"));
    // Two customers viewing one item in the same minute are two views.
    expect(eventDedupeKey(view, morning, undefined, "c_1")).not.toBe(eventDedupeKey(view, morning, undefined, "c_2"));
  });

  it("stores a known shopper's repeated view of one item once a minute, under their customer", async () => {
    const account = shopper("browser");
    const ingested = await client(SELF).postOrders([
      anOrder({ identifiers: { account }, placedAt: new Date(Date.now() - 86_400_000).toISOString() }),
    ]);
    expect(ingested.status, await ingested.clone().text()).toBe(200);
    const token = await tokenFor(account);
    const product = `known-${run}`;
    // A reload storm, even claiming other categories, is one view (the clock is stopped, so the storm
    // cannot straddle a minute boundary).
    stopClock();
    for (let i = 0; i < 5; i++)
      expect((await postEvents({ type: "view", productId: product, categoryId: `plants-${i}`, token })).status).toBe(
        202,
      );
    const rows = await viewRows(product);
    expect(rows).toHaveLength(1);
    expect(rows.every((row) => row.customer_id !== null)).toBe(true);
  });
});
