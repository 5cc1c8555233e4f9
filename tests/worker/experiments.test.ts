// Experiments you can trust: a recommendation id counts only for the shopper it was served to (or a
// customer merged into them), for the items it listed, within its attribution window; the holdout arm
// survives merges; each event in a batch is attributed by its own token. Runs on both stores (D1, and
// customer shards in the worker-shards project): orders are read wherever the store keeps them.
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { defaultRankingOptions } from "../../worker/core/ranking/options.ts";
import { holdoutArm } from "../../worker/core/rules/holdout.ts";
import { eventsResponseSchema } from "../../worker/events/events.schemas.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { identityKey } from "../../worker/identity/identity.keys.ts";
import { ingestResultSchema } from "../../worker/orders/orders.schemas.ts";
import {
  customerSubject,
  newRecommendationId,
  parseRecommendationId,
} from "../../worker/recommendations/recommendation-id.ts";
import { recommendationsResponseSchema } from "../../worker/recommendations/recommendations.schemas.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../fixtures/builders.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);
const day = 86_400_000;
const categories = ["coffee", "mugs", "tea", "books"];
const products = categories.flatMap((categoryId) =>
  [0, 1, 2, 3, 4].map((n) => ({
    id: `${categoryId}-${n}`,
    title: `${categoryId} ${n}`,
    categoryId,
    url: `https://shop.test/p/${categoryId}-${n}`,
    listPrice: 10 + n,
  })),
);
const catalogIds = products.map((product) => product.id);

const tokenFor = (account: string) => signShopperToken(account, env.SHOPPER_TOKEN_SECRET, 3600, new Date());

/** A shopper with two orders, so the recommendations route knows them and serves them an arm. */
async function knownShopper(account: string, identifiers: Record<string, string> = {}) {
  const response = await api.postOrders(
    [0, 1].map((k) =>
      anOrder({
        id: `${account}-o${k}`,
        placedAt: new Date(Date.now() - (10 + 30 * k) * day).toISOString(),
        identifiers: { account, ...identifiers },
        lines: [{ productId: `coffee-${k}`, categoryId: "coffee", quantity: 1, unitPrice: 10, listPrice: 10 }],
      }),
    ),
  );
  expect(response.status, await response.clone().text()).toBe(200);
  const lookup = (await (await api.lookup("account", account)).json()) as { data: { customerId: string } };
  return { account, customerId: lookup.data.customerId, token: await tokenFor(account) };
}

async function shelf(token?: string) {
  const response = await SELF.fetch("http://patron.test/v1/recommendations?limit=6", {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  expect(response.status, await response.clone().text()).toBe(200);
  return recommendationsResponseSchema.parse(await response.json()).data;
}

async function beacon(body: unknown) {
  const response = await SELF.fetch("http://patron.test/v1/events", {
    method: "POST",
    headers: { "Content-Type": "text/plain;charset=UTF-8" },
    body: JSON.stringify(body),
  });
  expect(response.status, await response.clone().text()).toBe(202);
  return eventsResponseSchema.parse(await response.json()).data;
}

async function storedEvents(recommendationId: string) {
  const { results } = await env.EVENTS_DB.prepare(
    "SELECT type, product_id, customer_id, arm FROM events WHERE recommendation_id = ? ORDER BY id",
  )
    .bind(recommendationId)
    .all<{ type: string; product_id: string; customer_id: string | null; arm: string | null }>();
  return results;
}

async function ingest(orders: unknown[]) {
  const response = await api.postOrders(orders);
  expect(response.status, await response.clone().text()).toBe(200);
  return ingestResultSchema.parse(await response.json()).data;
}

async function storedAttribution(orderId: string) {
  const [row] = await storeRows<{ recommendation_id: string | null }>(
    "SELECT recommendation_id FROM orders WHERE id = ?",
    orderId,
  );
  return row?.recommendation_id;
}

beforeAll(async () => {
  expect((await api.postProducts(products)).status).toBe(200);
  // A crowd and a model run, so the popular shelf (anonymous visitors, the holdout arm) has items.
  const crowd = products.map((product, c) =>
    anOrder({
      id: `crowd-order-${c}`,
      placedAt: new Date(Date.now() - (c + 1) * day).toISOString(),
      identifiers: { account: `crowd-${c % 8}` },
      lines: [{ productId: product.id, categoryId: product.categoryId, quantity: 1, unitPrice: 12, listPrice: 12 }],
    }),
  );
  expect((await api.postOrders(crowd)).status).toBe(200);
  const run = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}` },
  });
  expect(run.status, await run.clone().text()).toBe(200);
});

describe("recommendation ids", () => {
  it("list the served items and the issue time, and keep the rec_ prefix", async () => {
    const before = Math.floor(Date.now() / 1000) * 1000;
    const data = await shelf();
    const parsed = parseRecommendationId(data.recommendationId);
    expect(data.recommendationId.startsWith("rec_")).toBe(true);
    expect(parsed?.arm).toBe("anonymous");
    expect(data.items.length).toBeGreaterThan(0);
    expect(parsed?.tags).toHaveLength(data.items.length);
    expect(parsed?.issuedAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(parsed?.issuedAt.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it("count a click on a served item, and ignore one on an item never served under the id", async () => {
    const shopper = await knownShopper(uniquePrefix("served"));
    const data = await shelf(shopper.token);
    expect(data.customerKnown).toBe(true);
    const served = new Set(data.items.map((item) => item.id));
    const notServed = catalogIds.filter((id) => !served.has(id));
    const item = data.items[0]?.id as string;
    const answer = await beacon({
      events: [
        { type: "click", recommendationId: data.recommendationId, productId: item },
        ...notServed.map((productId) => ({ type: "click", recommendationId: data.recommendationId, productId })),
      ],
      token: shopper.token,
    });
    // 12-bit item tags: a product that was not served passes with probability items ÷ 4096.
    expect(answer.accepted).toBeGreaterThanOrEqual(1);
    expect(answer.ignored).toBeGreaterThanOrEqual(notServed.length - 1);
    expect(answer.accepted + answer.ignored).toBe(notServed.length + 1);
    const rows = await storedEvents(data.recommendationId);
    expect(rows[0]).toEqual({ type: "click", product_id: item, customer_id: shopper.customerId, arm: data.arm });
  });

  it("ignore another shopper's events, and events without the shopper's token", async () => {
    const victim = await knownShopper(uniquePrefix("victim"));
    const attacker = await knownShopper(uniquePrefix("attacker"));
    const data = await shelf(victim.token);
    const item = data.items[0]?.id as string;
    const click = { type: "click", recommendationId: data.recommendationId, productId: item };
    expect(await beacon({ events: [click], token: attacker.token })).toMatchObject({ accepted: 0, ignored: 1 });
    expect(await beacon(click)).toMatchObject({ accepted: 0, ignored: 1 });
    expect(await storedEvents(data.recommendationId)).toEqual([]);
    expect(await beacon({ ...click, token: victim.token })).toMatchObject({ accepted: 1, ignored: 0 });
  });

  it("ignore an event after the attribution window, ids from the old format, and tampered ids", async () => {
    const shopper = await knownShopper(uniquePrefix("late"));
    const issue = (daysAgo: number) =>
      newRecommendationId(
        {
          arm: "personalized",
          subject: customerSubject(shopper.customerId),
          itemIds: ["tea-1"],
          issuedAt: new Date(Date.now() - daysAgo * day),
        },
        env.SHOPPER_TOKEN_SECRET,
      );
    const recent = await issue(6);
    const stale = await issue(8);
    const oldFormat = "rec_0123456789abcdef01234567.personalized.0123456789abcdef";
    const moved = recent.replace(/\.([0-9a-z]+)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]{11})$/, ".$1.$2$2.$3");
    const impression = (recommendationId: string) => ({ type: "impression", recommendationId, productId: "tea-1" });
    const answer = await beacon({
      events: [impression(recent), impression(stale), impression(oldFormat), impression(moved)],
      token: shopper.token,
    });
    expect(answer).toEqual({ accepted: 1, duplicates: 0, ignored: 3, suppressed: 0 });
    expect(await storedEvents(recent)).toHaveLength(1);
    expect(await storedEvents(stale)).toEqual([]);
  });
});

describe("one events batch, several shoppers", () => {
  it("attributes each event by its own token, the batch token covering the rest", async () => {
    const ann = await knownShopper(uniquePrefix("ann"));
    const bob = await knownShopper(uniquePrefix("bob"));
    const annShelf = await shelf(ann.token);
    const bobShelf = await shelf(bob.token);
    const annItem = annShelf.items[0]?.id as string;
    const bobItem = bobShelf.items[0]?.id as string;
    const answer = await beacon({
      token: ann.token,
      events: [
        { type: "impression", recommendationId: annShelf.recommendationId, productId: annItem },
        { type: "impression", recommendationId: bobShelf.recommendationId, productId: bobItem, token: bob.token },
        // Bob's id under Ann's (batch) token: not hers, so ignored.
        { type: "click", recommendationId: bobShelf.recommendationId, productId: bobItem },
        { type: "view", productId: "books-2", categoryId: "books", token: bob.token },
      ],
    });
    expect(answer).toEqual({ accepted: 3, duplicates: 0, ignored: 1, suppressed: 0 });
    expect((await storedEvents(annShelf.recommendationId)).map((row) => row.customer_id)).toEqual([ann.customerId]);
    expect(await storedEvents(bobShelf.recommendationId)).toEqual([
      { type: "impression", product_id: bobItem, customer_id: bob.customerId, arm: bobShelf.arm },
    ]);
    const view = await env.EVENTS_DB.prepare(
      "SELECT customer_id FROM events WHERE type = 'view' AND product_id = 'books-2' AND customer_id IS NOT NULL",
    ).first<{ customer_id: string }>();
    expect(view?.customer_id).toBe(bob.customerId);
  });
});

describe("merges", () => {
  it("keep the account's holdout arm, and ids served before the merge still count", async () => {
    // An account whose arm, hashed from its identity key, is the holdout: a different hash input
    // (such as the customer id, which the merge changes) would most likely land it in the other arm.
    let account = "";
    for (let i = 0; !account; i++) {
      const candidate = `${uniquePrefix("arm")}-${i}`;
      const key = await identityKey("account", candidate, env.IDENTITY_HASH_SECRET);
      if (holdoutArm(key, defaultRankingOptions.holdout) === "holdout") account = candidate;
    }
    const shopper = await knownShopper(account);
    const before = await shelf(shopper.token);
    expect(before.arm).toBe("holdout");
    expect(before.items.length).toBeGreaterThan(0);

    // A store customer with more orders: the web customer merges into it and its id goes away.
    const loyalty = `${account}-card`;
    expect(
      (
        await api.postOrders(
          [0, 1, 2].map((k) =>
            anOrder({
              id: `${account}-store-${k}`,
              channel: "store",
              placedAt: new Date(Date.now() - (20 + 7 * k) * day).toISOString(),
              identifiers: { loyalty },
              lines: [{ productId: "mugs-1", categoryId: "mugs", quantity: 1, unitPrice: 11, listPrice: 11 }],
            }),
          ),
        )
      ).status,
    ).toBe(200);
    const identified = await api.identify({ account, loyalty });
    expect(identified.status).toBe(200);
    const merged = (await (await api.lookup("account", account)).json()) as {
      data: { customerId: string; mergedFrom: string[] };
    };
    expect(merged.data.mergedFrom).toContain(shopper.customerId);
    expect(merged.data.customerId).not.toBe(shopper.customerId);

    const after = await shelf(shopper.token);
    expect(after.arm).toBe(before.arm);
    // The id was served to the merged-away customer: the survivor keeps its history.
    const item = before.items[0]?.id as string;
    const answer = await beacon({
      events: [{ type: "click", recommendationId: before.recommendationId, productId: item }],
      token: shopper.token,
    });
    expect(answer).toMatchObject({ accepted: 1, ignored: 0 });
    expect((await storedEvents(before.recommendationId))[0]).toMatchObject({
      customer_id: merged.data.customerId,
      arm: "holdout",
    });
  });
});

describe("order attribution", () => {
  it("counts an order of a served item by the shopper within the window, and ignores the rest", async () => {
    const shopper = await knownShopper(uniquePrefix("buyer"));
    const other = await knownShopper(uniquePrefix("other"));
    const data = await shelf(shopper.token);
    const item = data.items[0] as { id: string; categoryId: string };
    const served = new Set(data.items.map((i) => i.id));
    const unserved = catalogIds.find((id) => !served.has(id)) as string;
    const line = (productId: string) => [
      { productId, categoryId: productId.split("-")[0] as string, quantity: 1, unitPrice: 12, listPrice: 12 },
    ];
    const now = new Date().toISOString();
    const stale = await newRecommendationId(
      {
        arm: "personalized",
        subject: customerSubject(shopper.customerId),
        itemIds: [item.id],
        issuedAt: new Date(Date.now() - 31 * day),
      },
      env.SHOPPER_TOKEN_SECRET,
    );
    const p = uniquePrefix("attr");
    const orders = [
      anOrder({
        id: `${p}-counted`,
        placedAt: now,
        identifiers: { account: shopper.account },
        lines: line(item.id),
        recommendationId: data.recommendationId,
      }),
      anOrder({
        id: `${p}-unserved`,
        placedAt: now,
        identifiers: { account: shopper.account },
        lines: line(unserved),
        recommendationId: data.recommendationId,
      }),
      anOrder({
        id: `${p}-other`,
        placedAt: now,
        identifiers: { account: other.account },
        lines: line(item.id),
        recommendationId: data.recommendationId,
      }),
      anOrder({
        id: `${p}-stale`,
        placedAt: now,
        identifiers: { account: shopper.account },
        lines: line(item.id),
        recommendationId: stale,
      }),
      anOrder({ id: `${p}-plain`, placedAt: now, identifiers: { account: shopper.account }, lines: line(item.id) }),
      // Placed hours before the shelf was shown (a local time sent as UTC), and an id from nowhere.
      anOrder({
        id: `${p}-early`,
        placedAt: new Date(Date.now() - 5 * 3_600_000).toISOString(),
        identifiers: { account: shopper.account },
        lines: line(item.id),
        recommendationId: data.recommendationId,
      }),
      anOrder({
        id: `${p}-garbled`,
        placedAt: now,
        identifiers: { account: shopper.account },
        lines: line(item.id),
        recommendationId: "not-a-recommendation-id",
      }),
      // The shopper's account sent unverified: an unverified link unlocks nothing, attribution included.
      anOrder({
        id: `${p}-unverified`,
        placedAt: now,
        identifiers: { account: { value: shopper.account, verified: false } },
        lines: line(item.id),
        recommendationId: data.recommendationId,
      }),
    ];
    const result = await ingest(orders);
    expect(result).toMatchObject({ accepted: 8, duplicates: 0, suppressed: 0, ignored: 6 });
    // Each ignored attribution says why, so an integration can fix what it sends.
    expect(result.results.map((r) => [r.status, r.attribution, r.attributionIgnored])).toEqual([
      ["created", "counted", undefined],
      ["created", "ignored", "no_listed_product"],
      ["created", "ignored", "not_this_shopper"],
      ["created", "ignored", "past_window"],
      ["created", undefined, undefined],
      ["created", "ignored", "before_issue"],
      ["created", "ignored", "unknown_id"],
      ["created", "ignored", "not_this_shopper"],
    ]);
    // Ignored attributions are not stored; the orders are.
    expect(await storedAttribution(`${p}-counted`)).toBe(data.recommendationId);
    for (const id of [
      `${p}-unserved`,
      `${p}-other`,
      `${p}-stale`,
      `${p}-plain`,
      `${p}-early`,
      `${p}-garbled`,
      `${p}-unverified`,
    ]) {
      expect(await storedAttribution(id)).toBeNull();
    }
    // A replay is a duplicate and counts nothing again.
    expect(await ingest(orders.slice(0, 2))).toMatchObject({ accepted: 0, duplicates: 2, ignored: 0 });
  });
});
