// A signed-in shopper's requests with customer data in shards (SHARD_COUNT=4): GET /v1/recommendations
// is one call to the account key's home shard, which reads the shopper and ranks the shelf there
// (forwarded once when the region is placed elsewhere), POST /v1/events adds browsing to the rollups in the customer's shard, and an
// order's attribution is checked inside the shard. Each answer is compared with the one the same app
// gives on the one D1 database (SHARD_COUNT=0) for the same history.
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import * as schema from "../../../db/schema.ts";
import { createApp } from "../../../worker/app.ts";
import { fitPopulationModels } from "../../../worker/core/profile/population-models.ts";
import { homeShard } from "../../../worker/core/shards/placement.ts";
import type { Db } from "../../../worker/env.ts";
import { classifyDatabaseError } from "../../../worker/http/database-errors.ts";
import { signShopperToken } from "../../../worker/http/shopper-token.ts";
import { enabledMatchKeys, matchKinds } from "../../../worker/identity/match-keys.ts";
import { phoneRegion } from "../../../worker/identity/phone.ts";
import { forgetModels, modelNames, saveModels } from "../../../worker/models/models.repo.ts";
import { ingestOrders } from "../../../worker/orders/ingest.ts";
import { orderSchema } from "../../../worker/orders/orders.schemas.ts";
import { attributedArm, attributionSettings } from "../../../worker/recommendations/attribution.ts";
import { forgetCatalog } from "../../../worker/recommendations/recommendations.repo.ts";
import { recommendationsResponseSchema } from "../../../worker/recommendations/recommendations.schemas.ts";
import { forgetRules } from "../../../worker/rules/rules.repo.ts";
import type { CustomerShard } from "../../../worker/shards/customer-shard.ts";
import { type MoveContext, recordMoveOut, runStep } from "../../../worker/shards/moves.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { addShardedBrowse } from "../../../worker/shards/shopper.ts";
import { anOrder, client } from "../../fixtures/builders.ts";
import { wrapShardBindings } from "../../fixtures/events-store.ts";
import { accountKeyOf, seedRegion, shardRows } from "../../fixtures/shard-seed.ts";
import { personalizedAccount as personalizedAccountWhere } from "../../fixtures/shoppers.ts";
import { countedD1, countedEnv } from "../../fixtures/subrequests.ts";

const day = 86_400_000;
const api = client(SELF);
const d1 = drizzle(env.DB, { schema }) as Db;
const settings = attributionSettings(env);

/** The same app on the one D1 database. */
const d1App = createApp();
const onD1 = { fetch: (url: string, init?: RequestInit) => d1App.request(url, init, { ...env, SHARD_COUNT: "0" }) };

const categories = ["tea", "cups", "kettles", "games"];
const products = categories.flatMap((categoryId) =>
  [0, 1, 2, 3, 4, 5].map((n) => ({
    id: `sh-${categoryId}-${n}`,
    title: `${categoryId} ${n}`,
    categoryId,
    url: `https://shop.test/p/sh-${categoryId}-${n}`,
    listPrice: 10 + 3 * n,
  })),
);

/** A new account in the personalized arm, homed at `home` if given. */
const personalizedAccount = (label: string, home?: number) =>
  personalizedAccountWhere(label, (key) => home === undefined || homeShard(key, 4) === home);

/**
 * A shopper's history: web and store orders a month apart over half a year in a few categories, and a
 * staple of the first category in every order but the latest, so that category is due again now.
 */
function historyOf(account: string, mix: readonly string[] = ["tea", "cups", "kettles"]) {
  const now = Date.now();
  const staple = mix[0] as string;
  return [0, 1, 2, 3, 4, 5].map((k) => {
    const categoryId = mix[(k + 1) % mix.length] as string;
    return anOrder({
      id: `${account}-o${k}`,
      channel: k % 2 === 0 ? "web" : "store",
      placedAt: new Date(now - (5 + 31 * k) * day).toISOString(),
      identifiers: { account },
      lines: [
        {
          productId: `sh-${categoryId}-${k % 3}`,
          categoryId,
          quantity: 1 + (k % 2),
          unitPrice: 10 + k,
          listPrice: 12 + k,
        },
        ...(k > 0
          ? [{ productId: `sh-${staple}-5`, categoryId: staple, quantity: 1, unitPrice: 25, listPrice: 25 }]
          : []),
      ],
    });
  });
}

/** The same orders into the one D1 database, through the same ingestion the shard runs. */
async function seedD1(orders: readonly unknown[]) {
  const outcome = await ingestOrders(
    d1,
    env.IDENTITY_HASH_SECRET,
    orders.map((order) => orderSchema.parse(order)),
    new Date(),
    settings,
    phoneRegion(env.PHONE_DEFAULT_REGION),
    matchKinds(enabledMatchKeys(env.EXPORT_MATCH_KEYS)),
  );
  expect(outcome).toMatchObject({ kind: "ingested", result: { accepted: orders.length } });
}

const tokenOf = (account: string) => signShopperToken(account, env.SHOPPER_TOKEN_SECRET, 3600, new Date());

async function shelfFrom(target: typeof onD1, token: string, query = "limit=12") {
  const response = await target.fetch(`http://patron.test/v1/recommendations?${query}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(response.status, await response.clone().text()).toBe(200);
  const { recommendationId, ...view } = recommendationsResponseSchema.parse(await response.json()).data;
  return {
    recommendationId,
    view,
    headers: { cacheControl: response.headers.get("Cache-Control"), vary: response.headers.get("Vary") },
  };
}

/** What a shelf shows and says, without the per-response recommendation id. */
const shown = (shelf: Awaited<ReturnType<typeof shelfFrom>>) => ({ view: shelf.view, headers: shelf.headers });

async function beacon(target: typeof onD1, body: unknown) {
  const response = await target.fetch("http://patron.test/v1/events", {
    method: "POST",
    headers: { "Content-Type": "text/plain" },
    body: JSON.stringify(body),
  });
  expect(response.status, await response.clone().text()).toBe(202);
  return ((await response.json()) as { data: { accepted: number; duplicates: number; ignored: number } }).data;
}

/** Whether the recommendation id was served to this customer (its signed subject). */
const servedTo = (recommendationId: string, customerId: string, itemId: string) =>
  attributedArm(
    recommendationId,
    { claimant: { customerIds: [customerId], accountKeys: [] }, itemIds: [itemId], at: new Date(), windowDays: 7 },
    settings.secrets,
  );

const itemsIn = (shelf: Awaited<ReturnType<typeof shelfFrom>>, categoryId: string) =>
  shelf.view.items.filter((item) => item.categoryId === categoryId).length;

beforeAll(async () => {
  expect((await api.postProducts(products)).status).toBe(200);
  // Fitted models, so the shelf computes the shopper's segment; co-purchases for a product page.
  const now = new Date();
  await saveModels(d1, {
    model: modelNames.customer,
    params: fitPopulationModels([], now),
    fittedAt: now.toISOString(),
    sampleSize: 0,
    logLikelihood: null,
    inForceAt: now.toISOString(),
  });
  await env.DB.batch(
    ["sh-cups-0", "sh-kettles-1", "sh-games-2"].map((other, n) =>
      env.DB.prepare(
        "INSERT OR REPLACE INTO product_pairs (product_id, other_id, orders, computed_at) VALUES ('sh-tea-0', ?, ?, ?)",
      ).bind(other, 9 - n, now.toISOString()),
    ),
  );
});

describe("GET /v1/recommendations with customer data in shards", () => {
  it("gives a known shopper the shelf D1 gives for the same history: home, buy-again and a product page", async () => {
    const account = await personalizedAccount("same");
    const orders = historyOf(account);
    await seedD1(orders);
    const seeded = await seedRegion(account, orders);
    expect(seeded.shard).toBe(homeShard(seeded.accountKey, 4));
    // The customer data is in the shard only: D1 holds the D1 twin's rows, none of the shard's customer.
    expect(
      await shardRows(seeded.shard, "SELECT count(*) AS n FROM orders WHERE customer_id = ?", seeded.customerId),
    ).toEqual([{ n: 6 }]);
    expect(
      (await env.DB.prepare("SELECT 1 FROM customers WHERE id = ?").bind(seeded.customerId).all()).results,
    ).toEqual([]);

    const token = await tokenOf(account);
    for (const query of [
      "limit=12&placement=home",
      "limit=8&placement=buy-again",
      "limit=6&placement=product&product=sh-tea-0",
    ]) {
      const sharded = await shelfFrom(SELF, token, query);
      const single = await shelfFrom(onD1, token, query);
      expect(sharded.view.customerKnown, query).toBe(true);
      expect(sharded.view.items.length, query).toBeGreaterThan(0);
      expect(shown(sharded), query).toEqual(shown(single));
      // The id binds the shard's customer, as D1's binds D1's.
      const first = sharded.view.items[0]?.id as string;
      expect(await servedTo(sharded.recommendationId, seeded.customerId, first), query).toBe("personalized");
    }
    const buyAgain = await shelfFrom(SELF, token, "limit=8&placement=buy-again");
    expect(buyAgain.view.items.map((item) => item.id)).toContain("sh-tea-5");
    const productPage = await shelfFrom(SELF, token, "limit=6&placement=product&product=sh-tea-0");
    expect(productPage.view.items.map((item) => item.id)).not.toContain("sh-tea-0");
  });

  it("gives an account with no customer the answer D1 gives", async () => {
    const token = await tokenOf(await personalizedAccount("stranger"));
    const sharded = await shelfFrom(SELF, token);
    expect(sharded.view.customerKnown).toBe(false);
    expect(shown(sharded)).toEqual(shown(await shelfFrom(onD1, token)));
  });

  it("forwards once to the shard the directory names, with the same answer", async () => {
    const account = await personalizedAccount("moved");
    const orders = historyOf(account, ["kettles", "tea"]);
    const home = homeShard(await accountKeyOf(account), 4);
    const placed = (home + 2) % 4;
    await seedD1(orders);
    const seeded = await seedRegion(account, orders, { at: placed });
    // The home holds only the directory entry; the region is in the placed shard.
    expect(await shardRows(home, "SELECT shard FROM shard_directory WHERE key = ?", seeded.accountKey)).toEqual([
      { shard: placed },
    ]);
    expect(await shardRows(home, "SELECT 1 FROM identities WHERE key = ?", seeded.accountKey)).toEqual([]);
    const token = await tokenOf(account);
    const sharded = await shelfFrom(SELF, token, "limit=10&placement=buy-again");
    expect(sharded.view.customerKnown).toBe(true);
    expect(shown(sharded)).toEqual(shown(await shelfFrom(onD1, token, "limit=10&placement=buy-again")));
    expect(await servedTo(sharded.recommendationId, seeded.customerId, sharded.view.items[0]?.id as string)).toBe(
      "personalized",
    );
    // The shelf is read and ranked where the region is placed; asked directly, the home has nothing.
    const request = { limit: 10, categories: 4, placement: null, productId: null, excludeIds: [], timeZone: "UTC" };
    const at = new Date().toISOString();
    expect(await shardStub(env, placed).placedShelf(seeded.accountKey, at, request, undefined)).toMatchObject({
      known: true,
      customerId: seeded.customerId,
    });
    expect(await shardStub(env, home).placedShelf(seeded.accountKey, at, request, undefined)).toMatchObject({
      known: false,
      customerId: null,
    });
  });

  it("never shows one shopper another's data in the same shard", async () => {
    const ann = await personalizedAccount("ann");
    const home = homeShard(await accountKeyOf(ann), 4);
    const bo = await personalizedAccount("bo", home);
    const annOrders = historyOf(ann, ["tea", "cups"]);
    const boOrders = historyOf(bo, ["games", "kettles"]);
    await seedD1([...annOrders, ...boOrders]);
    const annSeeded = await seedRegion(ann, annOrders);
    const boSeeded = await seedRegion(bo, boOrders);
    expect([annSeeded.shard, boSeeded.shard]).toEqual([home, home]);
    expect(annSeeded.customerId).not.toBe(boSeeded.customerId);
    for (const account of [ann, bo]) {
      const token = await tokenOf(account);
      const query = "limit=8&placement=buy-again";
      expect(shown(await shelfFrom(SELF, token, query)), account).toEqual(shown(await shelfFrom(onD1, token, query)));
    }
    // Each buy-again shelf holds only what that shopper bought, their staple first.
    const bought = (orders: typeof annOrders) =>
      new Set(orders.flatMap((order) => order.lines.map((l) => l.productId)));
    for (const [account, orders, staple] of [
      [ann, annOrders, "sh-tea-5"],
      [bo, boOrders, "sh-games-5"],
    ] as const) {
      const again = await shelfFrom(SELF, await tokenOf(account), "limit=8&placement=buy-again");
      const ids = again.view.items.map((item) => item.id);
      const customerId = account === ann ? annSeeded.customerId : boSeeded.customerId;
      expect(await servedTo(again.recommendationId, customerId, ids[0] as string), account).toBe("personalized");
      expect(ids[0], account).toBe(staple);
      expect(
        ids.filter((id) => !bought(orders).has(id)),
        account,
      ).toEqual([]);
    }
  });

  it("calls one shard, the account key's home, which ranks the shelf there and reads no customer table in D1", async () => {
    const account = await personalizedAccount("counted");
    const seeded = await seedRegion(account, historyOf(account));
    const calls: string[] = [];
    const counted = countedEnv(env, undefined, calls);
    // What the shards read of D1: the shared state the shelf is ranked with, from caches emptied first.
    const shardStatements: string[] = [];
    forgetCatalog();
    forgetModels();
    forgetRules();
    const restore = await wrapShardBindings((real) => countedD1(real, (query) => shardStatements.push(query)));
    const app = createApp();
    const response = await Promise.resolve(
      app.request(
        "http://patron.test/v1/recommendations?limit=8&placement=buy-again",
        { headers: { Authorization: `Bearer ${await tokenOf(account)}` } },
        counted.env,
      ),
    ).finally(restore);
    expect(response.status).toBe(200);
    expect(recommendationsResponseSchema.parse(await response.json()).data.customerKnown).toBe(true);
    // One call, to the home, which read and ranked the shelf: the Worker itself read nothing from D1.
    expect(calls).toEqual([`shard-${seeded.shard}.shelf`]);
    expect(counted.counts).toEqual({ d1: 0, shards: 1, queue: 0, workflows: 0 });
    // The shard read the catalog, models and rules from D1, and no customer table there.
    const customerTables =
      /\b(customers|identities|identity_observations|identity_merges|orders|order_lines|customer_\w+|match_keys|stage_transitions)\b/;
    expect(shardStatements.length).toBeGreaterThan(0);
    expect(shardStatements.filter((query) => customerTables.test(query))).toEqual([]);
  });

  it("passes a D1 failure met while ranking in the shard back to the Worker in the error's message", async () => {
    const busy = "D1_ERROR: database is locked: SQLITE_BUSY";
    const failed = () => Promise.reject(new Error(busy));
    const statement = { bind: () => statement, all: failed, raw: failed, first: failed, run: failed };
    const failing = { prepare: () => statement, batch: failed, withSession: () => failing } as unknown as D1Database;
    forgetCatalog();
    forgetModels();
    forgetRules();
    const restore = await wrapShardBindings(() => failing);
    const request = { limit: 8, categories: 4, placement: null, productId: null, excludeIds: [], timeZone: "UTC" };
    const error = await shardStub(env, 0)
      .placedShelf("account:nobody", new Date().toISOString(), request, undefined)
      .then(
        () => null,
        (caught: unknown) => caught,
      )
      .finally(restore);
    expect(error).toBeInstanceOf(Error);
    // Cloudflare's RPC keeps an error's message but not its own properties (its cause among them), so
    // the message alone must name the D1 condition for the route to serve the degraded shelf.
    expect(classifyDatabaseError(new Error((error as Error).message))).toMatchObject({ kind: "busy" });
  });

  it("ranks with the deployment's HOLDOUT_SHARE: every known shopper held out at 1, none at 0", async () => {
    const account = await personalizedAccount("holdout-share");
    await seedRegion(account, historyOf(account));
    const token = await tokenOf(account);
    const app = createApp();
    const armWith = async (share: string) => {
      const response = await app.request(
        "http://patron.test/v1/recommendations",
        { headers: { Authorization: `Bearer ${token}` } },
        { ...env, HOLDOUT_SHARE: share },
      );
      const data = recommendationsResponseSchema.parse(await response.json()).data;
      expect(data.customerKnown).toBe(true);
      return data.arm;
    };
    expect(await armWith("1")).toBe("holdout");
    expect(await armWith("0")).toBe("personalized");
  });
});

describe("POST /v1/events with customer data in shards", () => {
  it("adds views to the rollup in the customer's shard, and moves the shelf as on D1", async () => {
    const account = await personalizedAccount("browse");
    const orders = historyOf(account, ["tea", "cups"]);
    await seedD1(orders);
    const seeded = await seedRegion(account, orders);
    const token = await tokenOf(account);
    const before = await shelfFrom(SELF, token);
    expect(shown(before)).toEqual(shown(await shelfFrom(onD1, token)));

    const views = [0, 1, 2, 3, 4, 5].map((n) => ({ type: "view", productId: `sh-games-${n}`, categoryId: "games" }));
    expect(await beacon(SELF, { events: views, token })).toMatchObject({ accepted: 6, ignored: 0 });
    expect(await beacon(onD1, { events: views, token })).toMatchObject({ accepted: 6, ignored: 0 });
    // A replay adds nothing.
    expect(await beacon(SELF, { events: views, token })).toMatchObject({ accepted: 0, duplicates: 6 });

    expect(
      await shardRows(
        seeded.shard,
        "SELECT category_id, views FROM customer_browse WHERE customer_id = ?",
        seeded.customerId,
      ),
    ).toEqual([{ category_id: "games", views: 6 }]);
    expect(
      (await env.DB.prepare("SELECT 1 FROM customer_browse WHERE customer_id = ?").bind(seeded.customerId).all())
        .results,
    ).toEqual([]);
    const after = await shelfFrom(SELF, token);
    expect(itemsIn(after, "games")).toBeGreaterThan(itemsIn(before, "games"));
    expect(shown(after)).toEqual(shown(await shelfFrom(onD1, token)));
  });

  it("sends one batch's views to each shopper's own shard", async () => {
    const first = await personalizedAccount("batchA");
    const firstHome = homeShard(await accountKeyOf(first), 4);
    const second = await personalizedAccount("batchB", (firstHome + 1) % 4);
    const seeded = [await seedRegion(first, historyOf(first)), await seedRegion(second, historyOf(second))];
    expect(seeded.map((region) => region.shard)).toEqual([firstHome, (firstHome + 1) % 4]);
    const [firstToken, secondToken] = [await tokenOf(first), await tokenOf(second)];
    const events = [
      { type: "view", productId: "sh-games-0", categoryId: "games", token: firstToken },
      { type: "view", productId: "sh-kettles-3", categoryId: "kettles", token: secondToken },
      { type: "view", productId: "sh-kettles-4", categoryId: "kettles", token: secondToken },
    ];
    expect(await beacon(SELF, { events })).toMatchObject({ accepted: 3, ignored: 0 });
    const rollup = (region: (typeof seeded)[number]) =>
      shardRows(
        region.shard,
        "SELECT category_id, views FROM customer_browse WHERE customer_id = ? ORDER BY category_id",
        region.customerId,
      );
    expect(await rollup(seeded[0] as (typeof seeded)[number])).toEqual([{ category_id: "games", views: 1 }]);
    expect(await rollup(seeded[1] as (typeof seeded)[number])).toEqual([{ category_id: "kettles", views: 2 }]);
  });

  it("finds a forwarded shopper's customer in the placed shard and attributes clicks to ids served there", async () => {
    const account = await personalizedAccount("fwdbrowse");
    const home = homeShard(await accountKeyOf(account), 4);
    const placed = (home + 1) % 4;
    const seeded = await seedRegion(account, historyOf(account), { at: placed });
    const token = await tokenOf(account);
    const served = await shelfFrom(SELF, token);
    const item = served.view.items[0] as { id: string; categoryId: string };
    const click = { type: "click", recommendationId: served.recommendationId, productId: item.id, categoryId: "games" };
    expect(await beacon(SELF, { events: [click], token })).toMatchObject({ accepted: 1, ignored: 0 });
    // Another shopper cannot claim the id: ignored.
    const other = await tokenOf(await personalizedAccount("claimant"));
    expect(await beacon(SELF, { events: [click], token: other })).toMatchObject({ accepted: 0, ignored: 1 });
    expect(
      await shardRows(
        placed,
        "SELECT category_id, views FROM customer_browse WHERE customer_id = ?",
        seeded.customerId,
      ),
    ).toEqual([{ category_id: "games", views: 1 }]);
    expect(await shardRows(home, "SELECT 1 FROM customer_browse WHERE customer_id = ?", seeded.customerId)).toEqual([]);
    const stored = await env.EVENTS_DB.prepare("SELECT customer_id, arm FROM events WHERE recommendation_id = ?")
      .bind(served.recommendationId)
      .all();
    expect(stored.results).toEqual([{ customer_id: seeded.customerId, arm: "personalized" }]);
  });
});

describe("browse days of a customer a move takes out of the shard they were located in", () => {
  /** The account's region seeded in its home shard, and the identity keys a move of it takes. */
  async function seededWithKeys(label: string) {
    const account = await personalizedAccount(label);
    const seeded = await seedRegion(account, historyOf(account));
    const keys = (
      await shardRows<{ key: string }>(
        seeded.shard,
        "SELECT key FROM identities WHERE customer_id = ?",
        seeded.customerId,
      )
    ).map((row) => row.key);
    return { ...seeded, keys, target: (seeded.shard + 1) % 4 };
  }
  const dayOf = (customerId: string) => ({
    customerId,
    day: "2026-11-30",
    categoryId: "games",
    views: 2,
    lastViewedAt: "2026-11-30T10:00:00.000Z",
  });
  const rollup = (shard: number, customerId: string) =>
    shardRows(shard, "SELECT category_id, views FROM customer_browse WHERE customer_id = ?", customerId);

  it("go to the shard a finished move took the customer to", async () => {
    const { shard, customerId, keys, target } = await seededWithKeys("movedbrowse");
    await runInDurableObject(shardStub(env, shard), async (instance) => {
      expect(await (instance as unknown as CustomerShard).moveOut(keys, target, 4)).toEqual({ kind: "moved" });
    });
    // Located in the old shard before the move.
    await addShardedBrowse(env, [dayOf(customerId)], new Map([[customerId, shard]]));
    expect(await rollup(target, customerId)).toEqual([{ category_id: "games", views: 2 }]);
    expect(await rollup(shard, customerId)).toEqual([]);
  });

  it("wait for a move between its copy and its delete, then go where it took the customer", async () => {
    const { shard, customerId, keys, target } = await seededWithKeys("movingbrowse");
    const moveId = await runInDurableObject(shardStub(env, shard), async (instance) => {
      const placement = (instance as unknown as { placement: MoveContext }).placement;
      const recorded = await recordMoveOut(placement, keys, target);
      if (recorded.kind !== "recorded") throw new Error(`the move was not recorded: ${recorded.kind}`);
      // The region's rows are in the target now, and still here until the move's delete.
      expect(await runStep(placement, recorded.id)).toBe("directory");
      return recorded.id;
    });
    // Written here now, the views would go with the delete.
    await addShardedBrowse(env, [dayOf(customerId)], new Map([[customerId, shard]]));
    expect(await rollup(target, customerId)).toEqual([{ category_id: "games", views: 2 }]);
    expect(await rollup(shard, customerId)).toEqual([]);
    expect(await shardRows(shard, "SELECT status FROM shard_moves WHERE id = ? AND direction = 'out'", moveId)).toEqual(
      [{ status: "done" }],
    );
  });
});

describe("order attribution inside a shard", () => {
  it("keeps an id served to the order's shopper or to a customer merged into it, and ignores another's", async () => {
    const account = await personalizedAccount("attr");
    const seeded = await seedRegion(account, historyOf(account).slice(0, 1));
    const served = await shelfFrom(SELF, await tokenOf(account));
    const item = served.view.items[0] as { id: string; categoryId: string };
    const line = { productId: item.id, categoryId: item.categoryId, quantity: 1, unitPrice: 10, listPrice: 10 };
    const now = new Date().toISOString();
    // A loyalty card's own customer, with more orders, in the same shard.
    const loyalty = `${account}-card`;
    const cardOrders = [0, 1, 2].map((k) =>
      anOrder({
        id: `${account}-card-${k}`,
        channel: "store",
        placedAt: new Date(Date.now() - (20 + k) * day).toISOString(),
        identifiers: { loyalty },
      }),
    );
    const ingest = (orders: unknown[]) =>
      shardStub(env, seeded.shard).ingest(
        orders.map((order) => orderSchema.parse(order)),
        now,
      );
    await ingest(cardOrders);
    // The account and the card seen together: the web customer is merged into the card's (more orders).
    await ingest([anOrder({ id: `${account}-link`, placedAt: now, identifiers: { account, loyalty } })]);
    const [merged] = await shardRows<{ merged_into: string | null }>(
      seeded.shard,
      "SELECT merged_into FROM customers WHERE id = ?",
      seeded.customerId,
    );
    expect(merged?.merged_into).toBeTruthy();
    // An order with only the card claims the id served to the merged-away web customer: kept.
    await ingest([
      anOrder({
        id: `${account}-kept`,
        placedAt: now,
        identifiers: { loyalty },
        lines: [line],
        recommendationId: served.recommendationId,
      }),
    ]);
    // Another shopper's order carrying the same id: stored, its attribution ignored.
    const stranger = await personalizedAccount("thief");
    await ingest([
      anOrder({
        id: `${stranger}-o`,
        placedAt: now,
        identifiers: { account: stranger },
        lines: [line],
        recommendationId: served.recommendationId,
      }),
    ]);
    expect(
      await shardRows(
        seeded.shard,
        "SELECT id, recommendation_id FROM orders WHERE id IN (?, ?) ORDER BY id",
        `${account}-kept`,
        `${stranger}-o`,
      ),
    ).toEqual(
      [
        { id: `${account}-kept`, recommendation_id: served.recommendationId },
        { id: `${stranger}-o`, recommendation_id: null },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );
  });
});
