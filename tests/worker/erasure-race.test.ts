// A write to the events database that a request makes after reading the customer store (a beacon's
// events, an order's conversion) and that reaches it only after a concurrent DELETE /v1/customers/:id
// has finished writes nothing: the erasure lists what it took out (erased_keys) in the same batch as
// its deletes, and the writes check that list in the statement that inserts.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import * as eventsSchema from "../../db/events-schema.ts";
import { createApp } from "../../worker/app.ts";
import { eraseCustomer } from "../../worker/customers/erasure.repo.ts";
import type { EventsDb } from "../../worker/env.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import {
  anonymousSubject,
  customerSubject,
  newRecommendationId,
} from "../../worker/recommendations/recommendation-id.ts";
import { orderSuppressionKey } from "../../worker/suppressions/suppressions.repo.ts";
import { adminKey, anOrder, apiKey, uniquePrefix } from "../fixtures/builders.ts";
import { dbOf, inCustomerStore } from "../fixtures/ingest-store.ts";

const app = createApp();
async function call(bindings: typeof env, method: string, path: string, body?: unknown, key?: string) {
  const ctx = createExecutionContext();
  const response = await app.fetch(
    new Request(`http://patron.test${path}`, {
      method,
      headers: { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
    bindings,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return response;
}

/** EVENTS_DB whose first statement matching `pattern` waits for `release()` (run, all or batch). */
function gatedEventsDb(pattern: RegExp) {
  const real = env.EVENTS_DB;
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const atGate = new Promise<void>((r) => (reached = r));
  let used = false;
  const hold = async () => {
    if (used) return;
    used = true;
    reached();
    await gate;
  };
  const wrapStatement = (statement: D1PreparedStatement, sql: string): D1PreparedStatement =>
    new Proxy(statement, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (prop === "bind") return (...args: unknown[]) => wrapStatement(target.bind(...args), sql);
        if ((prop === "run" || prop === "all" || prop === "raw" || prop === "first") && pattern.test(sql))
          return async (...args: unknown[]) => {
            await hold();
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  const db = new Proxy(real, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrapStatement(target.prepare(sql), sql);
      if (prop === "batch")
        return async (statements: D1PreparedStatement[]) => {
          await hold();
          return target.batch(statements);
        };
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db: db as D1Database, release, atGate };
}

async function newCustomer(account: string) {
  const response = await call(env, "POST", "/v1/orders", { orders: [anOrder({ identifiers: { account } })] }, apiKey);
  const body = (await response.json()) as { data: { results: { customerId: string }[] } };
  return body.data.results[0]!.customerId;
}

describe("events database writes racing an erasure", () => {
  it("a beacon that read the shopper before the erasure stores none of their events after it", async () => {
    const account = uniquePrefix("race-ev");
    const customerId = await newCustomer(account);
    const token = await signShopperToken(account, env.SHOPPER_TOKEN_SECRET, 3600, new Date());
    const gated = gatedEventsDb(/insert into "?events"? /i);
    const beacon = call({ ...env, EVENTS_DB: gated.db }, "POST", "/v1/events", {
      token,
      events: [{ type: "view", productId: "race-p1", categoryId: "race-c1" }],
    });
    await gated.atGate; // the beacon found the shopper's customer and is about to insert
    const erased = await call(env, "DELETE", `/v1/customers/${customerId}`, undefined, adminKey);
    expect(erased.status).toBe(200);
    gated.release();
    const answered = await beacon;
    expect(answered.status).toBe(202);
    // Said as an erased shopper's events are: suppressed, not duplicates.
    expect(((await answered.json()) as { data: unknown }).data).toMatchObject({
      accepted: 0,
      duplicates: 0,
      suppressed: 1,
    });
    const left = await env.EVENTS_DB.prepare("SELECT count(*) AS n FROM events WHERE customer_id = ?")
      .bind(customerId)
      .first<{ n: number }>();
    // Nothing can reach these rows any more: the customer is gone.
    expect((await call(env, "DELETE", `/v1/customers/${customerId}`, undefined, adminKey)).status).toBe(404);
    expect(left?.n).toBe(0);
  });

  it("an order stored before the erasure has no conversion recorded after it", async () => {
    const account = uniquePrefix("race-cv");
    const customerId = await newCustomer(account);
    const recommendationId = await newRecommendationId(
      { arm: "personalized", subject: customerSubject(customerId), itemIds: ["sku-1"], issuedAt: new Date() },
      env.SHOPPER_TOKEN_SECRET,
    );
    const orderId = uniquePrefix("race-order");
    const gated = gatedEventsDb(/insert into conversions/i);
    const ordering = call(
      { ...env, EVENTS_DB: gated.db },
      "POST",
      "/v1/orders",
      {
        orders: [
          anOrder({ id: orderId, identifiers: { account }, placedAt: new Date().toISOString(), recommendationId }),
        ],
      },
      apiKey,
    );
    await gated.atGate; // the order is stored; its conversion is about to be written
    const erased = await call(env, "DELETE", `/v1/customers/${customerId}`, undefined, adminKey);
    expect(erased.status).toBe(200);
    gated.release();
    const ordered = await ordering;
    expect(ordered.status).toBe(200);
    const left = await env.EVENTS_DB.prepare(
      "SELECT order_id, recommendation_id, total FROM conversions WHERE order_id = ?",
    )
      .bind(orderId)
      .all();
    expect(left.results).toEqual([]);
  });

  it("an erasure that fails lists nothing: the customer's beacons are stored as before", async () => {
    const account = uniquePrefix("fail-erase");
    const customerId = await newCustomer(account);
    const eventsDb = drizzle(env.EVENTS_DB, { schema: eventsSchema }) as unknown as EventsDb;
    const failed = await inCustomerStore(customerId, (d1) =>
      eraseCustomer(
        dbOf(d1),
        eventsDb,
        customerId,
        (orderId) => orderSuppressionKey(orderId, env.IDENTITY_HASH_SECRET),
        new Date(),
        async () => {
          throw new Error("the main batch failed");
        },
      ).catch((error: unknown) => error),
    );
    expect(String(failed)).toContain("the main batch failed");
    const token = await signShopperToken(account, env.SHOPPER_TOKEN_SECRET, 3600, new Date());
    const beacon = await call(env, "POST", "/v1/events", {
      token,
      events: [{ type: "view", productId: "fail-p1", categoryId: "fail-c1" }],
    });
    expect(((await beacon.json()) as { data: unknown }).data).toMatchObject({ accepted: 1, suppressed: 0 });
  });

  it("an order sent again once its erased id and account are lifted has its conversion recorded", async () => {
    const account = uniquePrefix("lifted");
    const customerId = await newCustomer(account);
    // A shelf any shopper may have seen (the erased customer's id signs nothing for the new one).
    const recommendationId = await newRecommendationId(
      { arm: "anonymous", subject: anonymousSubject, itemIds: ["sku-1"], issuedAt: new Date() },
      env.SHOPPER_TOKEN_SECRET,
    );
    const orderId = uniquePrefix("lifted-order");
    const order = anOrder({
      id: orderId,
      identifiers: { account },
      placedAt: new Date().toISOString(),
      recommendationId,
    });
    expect((await call(env, "POST", "/v1/orders", { orders: [order] }, apiKey)).status).toBe(200);
    expect((await call(env, "DELETE", `/v1/customers/${customerId}`, undefined, adminKey)).status).toBe(200);
    for (const lifted of [
      { kind: "order", value: orderId },
      { kind: "account", value: account },
    ])
      expect((await call(env, "DELETE", "/v1/admin/suppressions", lifted, adminKey)).status).toBe(200);
    const again = await call(env, "POST", "/v1/orders", { orders: [order] }, apiKey);
    expect(((await again.json()) as { data: unknown }).data).toMatchObject({ accepted: 1, suppressed: 0 });
    const recorded = await env.EVENTS_DB.prepare("SELECT order_id FROM conversions WHERE order_id = ?")
      .bind(orderId)
      .all();
    expect(recorded.results).toEqual([{ order_id: orderId }]);
  });
});
