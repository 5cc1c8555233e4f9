// POST /v1/events: the beacon batch the widget sends, stored in EVENTS_DB, deduplicated, signed ids
// checked, bad input refused, and linked to the shopper's customer, on the one D1 database and on the
// customer shards (the worker-shards project) alike.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eventDedupeKey } from "../../worker/events/events.routes.ts";
import { eventsResponseSchema } from "../../worker/events/events.schemas.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { anonymousSubject, newRecommendationId } from "../../worker/recommendations/recommendation-id.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const url = "http://patron.test/v1/events";

function beacon(body: unknown, contentType = "text/plain;charset=UTF-8") {
  return SELF.fetch(url, {
    method: "POST",
    headers: { "Content-Type": contentType, Origin: "http://127.0.0.1:8787" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** An id as the recommendations route issues it for the anonymous shelf listing `items`. */
const anonymousId = (items: string[], arm: "personalized" | "holdout" | "anonymous" = "anonymous") =>
  newRecommendationId(
    { arm, subject: anonymousSubject, itemIds: items, issuedAt: new Date() },
    env.SHOPPER_TOKEN_SECRET,
  );

async function storedEvents(recommendationId: string) {
  const { results } = await env.EVENTS_DB.prepare(
    "select type, recommendation_id, arm, product_id, category_id, customer_id from events where recommendation_id = ? order by id",
  )
    .bind(recommendationId)
    .all<Record<string, unknown>>();
  return results;
}

describe("POST /v1/events", () => {
  it("stores a text/plain beacon batch and answers 202 with the allowed origin", async () => {
    const rec = await anonymousId(["sku-1", "sku-2"], "personalized");
    const response = await beacon({
      events: [
        {
          type: "impression",
          recommendationId: rec,
          arm: "personalized",
          productId: "sku-1",
          categoryId: "heels",
        },
        {
          type: "impression",
          recommendationId: rec,
          arm: "personalized",
          productId: "sku-2",
          categoryId: "bags",
        },
        { type: "click", recommendationId: rec, arm: "personalized", productId: "sku-1" },
      ],
    });
    expect(response.status).toBe(202);
    expect(eventsResponseSchema.parse(await response.json())).toEqual({
      data: { accepted: 3, duplicates: 0, ignored: 0, suppressed: 0 },
    });
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe("http://127.0.0.1:8787");
    expect(await storedEvents(rec)).toEqual([
      {
        type: "impression",
        recommendation_id: rec,
        arm: "personalized",
        product_id: "sku-1",
        category_id: "heels",
        customer_id: null,
      },
      {
        type: "impression",
        recommendation_id: rec,
        arm: "personalized",
        product_id: "sku-2",
        category_id: "bags",
        customer_id: null,
      },
      {
        type: "click",
        recommendation_id: rec,
        arm: "personalized",
        product_id: "sku-1",
        category_id: null,
        customer_id: null,
      },
    ]);
  });

  it("takes the arm from the signed recommendation id, never from the client", async () => {
    const signed = await anonymousId(["sku-9"], "holdout");
    const forged = `${signed.slice(0, signed.lastIndexOf("."))}.AAAAAAAAAAA`;
    const otherArm = signed.replace(".h.", ".p.");
    const answers = [];
    for (const recommendationId of [signed, "rec-unsigned", forged, otherArm]) {
      const response = await beacon({ type: "impression", recommendationId, arm: "personalized", productId: "sku-9" });
      answers.push(eventsResponseSchema.parse(await response.json()).data);
    }
    expect(answers.map((a) => [a.accepted, a.ignored])).toEqual([
      [1, 0],
      [0, 1],
      [0, 1],
      [0, 1],
    ]);
    expect((await storedEvents(signed))[0]?.arm).toBe("holdout");
    expect(await storedEvents("rec-unsigned")).toEqual([]);
    expect(await storedEvents(forged)).toEqual([]);
    expect(await storedEvents(otherArm)).toEqual([]);
  });

  it("accepts a single event sent as application/json", async () => {
    const rec = await anonymousId(["sku-9"]);
    const response = await beacon({ type: "view", recommendationId: rec, productId: "sku-9" }, "application/json");
    expect(response.status).toBe(202);
    expect(eventsResponseSchema.parse(await response.json()).data.accepted).toBe(1);
    expect(await storedEvents(rec)).toHaveLength(1);
  });

  it("counts an impression once per recommendation and item, and a click once per minute", async () => {
    const rec = await anonymousId(["sku-1", "sku-2"]);
    const impression = { type: "impression", recommendationId: rec, productId: "sku-1" };
    const click = { type: "click", recommendationId: rec, productId: "sku-1" };
    // One request shares one clock reading, so the double click falls in the same minute.
    const first = await beacon({ events: [impression, impression, click, click] });
    expect(eventsResponseSchema.parse(await first.json()).data).toMatchObject({ accepted: 2, duplicates: 2 });
    const again = await beacon({ events: [impression, { ...impression, productId: "sku-2" }] });
    expect(eventsResponseSchema.parse(await again.json()).data).toMatchObject({ accepted: 1, duplicates: 1 });
    const rows = await storedEvents(rec);
    expect(rows.map((row) => `${row.type}:${row.product_id}`)).toEqual([
      "impression:sku-1",
      "click:sku-1",
      "impression:sku-2",
    ]);
  });

  it("counts a card once whatever category its events claim", async () => {
    const rec = await anonymousId(["sku-1"]);
    const events = ["heels", "bags", undefined].flatMap((categoryId) =>
      (["impression", "click"] as const).map((type) => ({
        type,
        recommendationId: rec,
        productId: "sku-1",
        categoryId,
      })),
    );
    const response = await beacon({ events });
    expect(eventsResponseSchema.parse(await response.json()).data).toMatchObject({ accepted: 2, duplicates: 4 });
    expect((await storedEvents(rec)).map((row) => row.type)).toEqual(["impression", "click"]);
  });

  it("keys a later click apart from the first, and impressions never", () => {
    const at = new Date("2026-03-14T10:22:10Z");
    const later = new Date("2026-03-14T10:23:10Z");
    const click = { type: "click", recommendationId: "r", productId: "p" } as const;
    const impression = { type: "impression", recommendationId: "r", productId: "p" } as const;
    expect(eventDedupeKey(click, at)).not.toBe(eventDedupeKey(click, later));
    expect(eventDedupeKey(click, at)).toBe(eventDedupeKey(click, new Date("2026-03-14T10:22:50Z")));
    expect(eventDedupeKey(impression, at)).toBe(eventDedupeKey(impression, later));
  });

  // A widget newer than the worker may send fields the worker does not know yet: its events still count.
  it("takes an event with a field it does not know, and ignores that field", async () => {
    const response = await beacon({ events: [{ type: "view", productId: "sku-1", seenFor: 1200 }], since: "v2" });
    expect(response.status).toBe(202);
    const { data } = eventsResponseSchema.parse(await response.json());
    expect(data.accepted + data.duplicates).toBe(1);
  });

  // Each bad body's 400 names the field at fault (none for a body that is not JSON).
  it.each([
    ["a body that is not JSON", "type=impression", undefined],
    ["an unknown event type", { type: "purchase", recommendationId: "rec-bad", productId: "sku-1" }, ["type"]],
    ["an impression without a recommendation id", { type: "impression", productId: "sku-1" }, ["recommendationId"]],
    ["an event without product or category", { type: "click", recommendationId: "rec-bad" }, ["productId"]],
    ["an empty batch", { events: [] }, ["events"]],
    [
      "a batch with one bad event",
      { events: [{ type: "impression", recommendationId: "rec-bad", productId: "sku-1" }, { type: "nope" }] },
      ["events", 1, "type"],
    ],
    [
      "a batch over the limit",
      {
        events: Array.from({ length: 101 }, (_, i) => ({
          type: "impression",
          recommendationId: "rec-bad",
          productId: `sku-${i}`,
        })),
      },
      ["events"],
    ],
  ])("rejects %s with 400 and writes nothing", async (_label, body, path) => {
    const response = await beacon(body);
    expect(response.status).toBe(400);
    const envelope = (await response.json()) as {
      error: { code: string; requestId: string; issues?: { path: (string | number)[] }[] };
    };
    expect(envelope.error.code).toBe("invalid_request");
    expect(envelope.error.requestId).toBe(response.headers.get("X-Request-Id"));
    if (path) expect(envelope.error.issues?.map((issue) => issue.path)).toContainEqual(path);
    expect(await storedEvents("rec-bad")).toEqual([]);
  });

  it("links a batch to the shopper's customer through the batch token the widget sends", async () => {
    const order = {
      id: "events-order-1",
      channel: "web",
      placedAt: "2026-03-14T10:22:00Z",
      currency: "USD",
      identifiers: { account: "events-shopper" },
      lines: [{ productId: "sku-1", categoryId: "heels", quantity: 1, unitPrice: 89, listPrice: 120 }],
    };
    const ingested = await SELF.fetch("http://patron.test/v1/orders", {
      method: "POST",
      headers: { Authorization: "Bearer test-api-key", "Content-Type": "application/json" },
      body: JSON.stringify({ orders: [order] }),
    });
    expect(ingested.status).toBeLessThan(300);
    const [owner] = await storeRows<{ customer_id: string }>("select customer_id from orders where id = ?", order.id);
    const customerId = owner?.customer_id;
    expect(customerId).toBeTruthy();
    const token = await signShopperToken("events-shopper", env.SHOPPER_TOKEN_SECRET, 600, new Date());

    const rec = await anonymousId(["sku-1", "sku-2"]);
    await beacon({ events: [{ type: "impression", recommendationId: rec, productId: "sku-1" }], token });
    await beacon({
      events: [{ type: "impression", recommendationId: rec, productId: "sku-2" }],
      token: "not-a-token",
    });
    const rows = await storedEvents(rec);
    expect(rows.map((row) => [row.product_id, row.customer_id])).toEqual([
      ["sku-1", customerId],
      ["sku-2", null],
    ]);
  });

  it("refuses oversized payloads", async () => {
    const response = await beacon({ type: "view", productId: "x".repeat(70_000) });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
  });
});
