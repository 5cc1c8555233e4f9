// Placements and page context on GET /v1/recommendations (placement=, product=, exclude=), the nightly
// co-purchase table, the buy-again shelf, events with placement and position, and holdout results per
// placement — through the real worker and D1.
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { holdoutResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { defaultRankingOptions } from "../../worker/core/ranking/options.ts";
import { holdoutArm } from "../../worker/core/rules/holdout.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { identityKey } from "../../worker/identity/identity.keys.ts";
import { recommendationsResponseSchema } from "../../worker/recommendations/recommendations.schemas.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../fixtures/builders.ts";

const api = client(SELF);
const day = 86_400_000;
const now = Date.now();

const categories = ["coffee", "mugs", "tea", "filters", "books"];
const products = categories.flatMap((categoryId, c) =>
  [0, 1, 2, 3].map((n) => ({
    id: `${categoryId}-${n}`,
    title: `${categoryId} ${n}`,
    categoryId,
    categoryName: categoryId[0]?.toUpperCase() + categoryId.slice(1),
    url: `https://shop.test/p/${categoryId}-${n}`,
    imageUrl: null,
    listPrice: 10 + c * 5 + n * 10,
    salePrice: null,
    inStock: true,
  })),
);
const line = (productId: string, unitPrice = 12) => ({
  productId,
  categoryId: productId.replace(/-\d+$/, ""),
  quantity: 1,
  unitPrice,
  listPrice: unitPrice,
});

const tokenFor = (account: string) => signShopperToken(account, env.SHOPPER_TOKEN_SECRET, 3600, new Date());

/** An account name whose holdout arm is `arm`. */
async function accountIn(arm: "personalized" | "holdout") {
  for (let i = 0; ; i++) {
    const candidate = `${uniquePrefix("acct")}-${i}`;
    const key = await identityKey("account", candidate, env.IDENTITY_HASH_SECRET);
    if (holdoutArm(key, defaultRankingOptions.holdout) === arm) return candidate;
  }
}

async function shelf(query: string, token?: string) {
  const response = await SELF.fetch(`http://patron.test/v1/recommendations${query}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  expect(response.status, await response.clone().text()).toBe(200);
  return recommendationsResponseSchema.parse(await response.json()).data;
}

async function errorOf(response: Response) {
  return ((await response.json()) as { error: { code: string; message: string; requestId: string } }).error;
}

let regular = "";

beforeAll(async () => {
  expect((await api.postProducts(products)).status).toBe(200);
  regular = await accountIn("personalized");
  const orders = [];
  // Coffee beans (coffee-0) are bought with mugs-1 in eight orders, with filters-2 in three.
  for (let k = 0; k < 8; k++)
    orders.push(
      anOrder({
        placedAt: new Date(now - (k + 2) * day).toISOString(),
        lines: [line("coffee-0"), line("mugs-1", 25)],
      }),
    );
  for (let k = 0; k < 3; k++)
    orders.push(
      anOrder({ placedAt: new Date(now - (k + 3) * day).toISOString(), lines: [line("coffee-0"), line("filters-2")] }),
    );
  // Bought together in only two orders: too few to show (or to tell what one shopper bought).
  for (let k = 0; k < 2; k++)
    orders.push(
      anOrder({ placedAt: new Date(now - (k + 4) * day).toISOString(), lines: [line("coffee-0"), line("books-3")] }),
    );
  // A crowd buying single items, so the popular shelf has every category.
  for (let k = 0; k < 60; k++)
    orders.push(
      anOrder({
        placedAt: new Date(now - ((k % 50) + 1) * day).toISOString(),
        lines: [line(`${categories[k % 5]}-${k % 4}`)],
      }),
    );
  // A tea regular: tea-1 every 30 days, last 34 days ago (due now); a book two days ago (not due).
  for (let k = 0; k < 5; k++)
    orders.push(
      anOrder({
        id: `${regular}-tea-${k}`,
        placedAt: new Date(now - (34 + k * 30) * day).toISOString(),
        identifiers: { account: regular },
        lines: [line("tea-1", 20)],
      }),
    );
  orders.push(
    anOrder({
      id: `${regular}-book`,
      placedAt: new Date(now - 2 * day).toISOString(),
      identifiers: { account: regular },
      lines: [line("books-0", 30)],
    }),
  );
  expect((await api.postOrders(orders)).status).toBe(200);
  const run = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}` },
  });
  expect(run.status, await run.clone().text()).toBe(200);
});

describe("the nightly co-purchase table", () => {
  it("holds the products bought in at least three of the same orders, most often first", async () => {
    const rows = await env.DB.prepare(
      "SELECT other_id, orders FROM product_pairs WHERE product_id = ? ORDER BY orders DESC, other_id",
    )
      .bind("coffee-0")
      .all<{ other_id: string; orders: number }>();
    expect(rows.results).toEqual([
      { other_id: "mugs-1", orders: 8 },
      { other_id: "filters-2", orders: 3 },
    ]);
  });
});

describe("GET /v1/recommendations with page context", () => {
  it("echoes the placement, null when none is given", async () => {
    expect((await shelf("?placement=home")).placement).toBe("home");
    expect((await shelf("")).placement).toBeNull();
  });

  it("never shows excluded ids", async () => {
    const first = await shelf("?limit=6");
    const excluded = first.items.slice(0, 3).map((item) => item.id);
    expect(excluded).toHaveLength(3);
    const second = await shelf(`?limit=6&exclude=${excluded.join(",")}`);
    expect(second.items.length).toBeGreaterThan(0);
    for (const id of excluded) expect(second.items.map((item) => item.id)).not.toContain(id);
  });

  it("favours what goes with the page's product and never shows the product itself", async () => {
    const data = await shelf("?placement=product&product=coffee-0&limit=6");
    expect(data.placement).toBe("product");
    const ids = data.items.map((item) => item.id);
    expect(ids.slice(0, 2)).toEqual(["mugs-1", "filters-2"]);
    expect(ids).not.toContain("coffee-0");
    expect(data.items[0]?.reasons[0]).toMatchObject({ code: "bought_with", productId: "coffee-0", orders: 8 });
    // Filled with the usual shelf after the co-purchases.
    expect(ids.length).toBe(6);
  });

  it("keeps the product page's excluded ids off too (the cart)", async () => {
    const data = await shelf("?placement=product&product=coffee-0&exclude=mugs-1&limit=6");
    const ids = data.items.map((item) => item.id);
    expect(ids[0]).toBe("filters-2");
    expect(ids).not.toContain("mugs-1");
    expect(ids).not.toContain("coffee-0");
  });

  it("shows a known shopper's due replenishment on the buy-again shelf", async () => {
    const data = await shelf("?placement=buy-again", await tokenFor(regular));
    expect(data.arm).toBe("personalized");
    expect(data.categories.map((category) => category.id)).toEqual(["tea"]);
    expect(data.items.map((item) => item.id)).toEqual(["tea-1"]);
    expect(data.items[0]?.reasons[0]).toMatchObject({ code: "buy_again", categoryId: "tea", timesBought: 5 });
  });

  it("gives an anonymous visitor an empty buy-again shelf", async () => {
    const data = await shelf("?placement=buy-again");
    expect(data.items).toEqual([]);
    expect(data.placement).toBe("buy-again");
  });

  it("keeps two shelves on one page disjoint when the second excludes the first, and both ids stay valid", async () => {
    const token = await tokenFor(regular);
    const top = await shelf("?placement=home&limit=4", token);
    const below = await shelf(`?placement=cart&limit=4&exclude=${top.items.map((item) => item.id).join(",")}`, token);
    expect(top.items.length).toBe(4);
    expect(below.items.length).toBeGreaterThan(0);
    const shared = below.items.filter((item) => top.items.some((other) => other.id === item.id));
    expect(shared).toEqual([]);
    // Each id lists exactly what its shelf served: a click on the second shelf counts under its id only.
    const clicked = below.items[0]!.id;
    const post = (recommendationId: string) =>
      SELF.fetch("http://patron.test/v1/events", {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: JSON.stringify({
          type: "click",
          recommendationId,
          productId: clicked,
          placement: "cart",
          position: 1,
          token,
        }),
      });
    const counted = (await (await post(below.recommendationId)).json()) as { data: { accepted: number } };
    expect(counted.data.accepted).toBe(1);
    const ignored = (await (await post(top.recommendationId)).json()) as { data: { ignored: number } };
    expect(ignored.data.ignored).toBe(1);
  });

  it("takes 100 ids of 128 characters however they are spaced, and refuses a 101st", async () => {
    const ids = Array.from({ length: 101 }, (_, i) => `${i}`.padStart(128, "x"));
    const spaced = (list: string[]) => encodeURIComponent(` ${list.join(" , ")} ,, `);
    const taken = await SELF.fetch(
      `http://patron.test/v1/recommendations?limit=4&exclude=${spaced(ids.slice(0, 100))}`,
    );
    expect(taken.status, await taken.clone().text()).toBe(200);
    const refused = await SELF.fetch(`http://patron.test/v1/recommendations?limit=4&exclude=${spaced(ids)}`);
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await errorOf(refused))).toMatch(/exclude must list at most 100 ids/);
  });

  it.each([
    ["?placement=Home", /placement/],
    ["?placement=%20", /placement/],
    [`?placement=${"a".repeat(41)}`, /placement/],
    [`?product=${"p".repeat(129)}`, /product/],
    [`?exclude=${Array.from({ length: 101 }, (_, i) => `p${i}`).join(",")}`, /exclude/],
  ])("refuses %s in the error envelope", async (query, field) => {
    const response = await SELF.fetch(`http://patron.test/v1/recommendations${query}`);
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.code).toBe("invalid_request");
    expect(error.requestId).toBeTruthy();
    expect(JSON.stringify(error)).toMatch(field);
  });
});

describe("events with placement and position", () => {
  it("stores them, refuses bad ones, and the holdout read breaks results down per placement", async () => {
    const home = await shelf("?placement=home&limit=3");
    const product = await shelf("?placement=product&product=coffee-0&limit=3");
    const events = [
      ...home.items.map((item, i) => ({
        type: "impression",
        recommendationId: home.recommendationId,
        productId: item.id,
        placement: "home",
        position: i + 1,
      })),
      ...product.items.map((item, i) => ({
        type: "impression",
        recommendationId: product.recommendationId,
        productId: item.id,
        placement: "product",
        position: i + 1,
      })),
      {
        type: "click",
        recommendationId: product.recommendationId,
        productId: product.items[1]!.id,
        placement: "product",
        position: 2,
      },
    ];
    const response = await SELF.fetch("http://patron.test/v1/events", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ events }),
    });
    expect(response.status, await response.clone().text()).toBe(202);
    expect(((await response.json()) as { data: { accepted: number } }).data.accepted).toBe(7);
    const stored = await env.EVENTS_DB.prepare(
      "SELECT placement, position FROM events WHERE recommendation_id = ? AND type = 'click'",
    )
      .bind(product.recommendationId)
      .first<{ placement: string; position: number }>();
    expect(stored).toEqual({ placement: "product", position: 2 });

    for (const bad of [{ position: 0 }, { position: 1.5 }, { placement: "Not A Name" }]) {
      const refused = await SELF.fetch("http://patron.test/v1/events", {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: JSON.stringify({ ...events[0], ...bad }),
      });
      expect(refused.status).toBe(400);
      expect((await errorOf(refused)).code).toBe("invalid_request");
    }

    const all = holdoutResponseSchema.parse(
      await (await api.call("GET", "/v1/admin/holdout", undefined, adminKey)).json(),
    ).data;
    expect(all.placement).toBeNull();
    const anonymousOf = (placement: string) =>
      all.placements.find((row) => row.placement === placement)?.arms.find((row) => row.arm === "anonymous");
    expect(anonymousOf("home")).toMatchObject({ recommendations: 1, impressions: 3, clicks: 0 });
    expect(anonymousOf("product")).toMatchObject({ recommendations: 1, impressions: 3, clicks: 1 });

    const onlyProduct = holdoutResponseSchema.parse(
      await (await api.call("GET", "/v1/admin/holdout?placement=product", undefined, adminKey)).json(),
    ).data;
    expect(onlyProduct.placement).toBe("product");
    expect(onlyProduct.arms.find((row) => row.arm === "anonymous")).toMatchObject({ impressions: 3, clicks: 1 });
    expect(onlyProduct.placements.map((row) => row.placement)).toEqual(["product"]);

    const refused = await api.call("GET", "/v1/admin/holdout?placement=%3Cb%3E", undefined, adminKey);
    expect(refused.status).toBe(400);
    expect((await errorOf(refused)).code).toBe("invalid_request");
  });
});
