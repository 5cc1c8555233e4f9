import { env, SELF } from "cloudflare:test";
import { sign } from "hono/jwt";
import { beforeAll, describe, expect, it } from "vitest";
import { holdoutResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { defaultRankingOptions } from "../../worker/core/ranking/options.ts";
import { holdoutArm } from "../../worker/core/rules/holdout.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { identityKey } from "../../worker/identity/identity.keys.ts";
import { recommendationsResponseSchema } from "../../worker/recommendations/recommendations.schemas.ts";
import { adminKey, anOrder, client, verified } from "../fixtures/builders.ts";

const api = client(SELF);
const secret = "test-shopper-secret";
const day = 86_400_000;
const now = Date.now();

const categories = ["coffee", "mugs", "tea", "books", "plants"];
const products = categories.flatMap((categoryId, c) =>
  [0, 1, 2, 3].map((n) => ({
    id: `${categoryId}-${n}`,
    title: `${categoryId} ${n}`,
    categoryId,
    categoryName: categoryId[0]?.toUpperCase() + categoryId.slice(1),
    url: `https://shop.test/p/${categoryId}-${n}`,
    imageUrl: `https://shop.test/i/${categoryId}-${n}.jpg`,
    listPrice: 10 + c * 5 + n * 3,
    salePrice: n === 3 ? 8 + c * 5 : null,
    inStock: true,
  })),
);

async function recommendations(token?: string, query = "") {
  const response = await SELF.fetch(`http://patron.test/v1/recommendations${query}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  return response;
}

async function dataOf(response: Response) {
  expect(response.status, await response.clone().text()).toBe(200);
  return recommendationsResponseSchema.parse(await response.json()).data;
}

const omniShoppers = ["omni-a", "omni-b", "omni-c"];
const tokenFor = (account: string) => signShopperToken(account, secret, 3600, new Date());

beforeAll(async () => {
  expect((await api.postProducts(products)).status).toBe(200);
  // Coffee regulars who buy online and in store (linked by the e-receipt email), plus a crowd.
  // Three of them, so at least one is outside the 10% holdout whatever ids they get.
  const orders = [];
  for (const omni of omniShoppers) {
    for (let k = 0; k < 6; k++) {
      const web = k % 2 === 0;
      orders.push(
        anOrder({
          id: `rec-${omni}-${k}`,
          channel: web ? "web" : "store",
          placedAt: new Date(now - (5 + (5 - k) * 28) * day).toISOString(),
          // The verified login email, and the same email on file for the loyalty card.
          identifiers: web
            ? { account: omni, email: verified(`${omni}@shop.test`) }
            : { loyalty: `${omni}-card`, email: verified(`${omni}@shop.test`) },
          lines: [{ productId: "coffee-0", categoryId: "coffee", quantity: 1, unitPrice: 10, listPrice: 10 }],
        }),
      );
    }
  }
  for (let c = 0; c < 80; c++) {
    orders.push(
      anOrder({
        id: `rec-crowd-${c}`,
        placedAt: new Date(now - (c + 1) * day).toISOString(),
        identifiers: { account: `crowd-${c}` },
        lines: [
          {
            productId: `${categories[c % 5]}-1`,
            categoryId: categories[c % 5] as string,
            quantity: 1,
            unitPrice: 13,
            listPrice: 13,
          },
        ],
      }),
    );
  }
  expect((await api.postOrders(orders)).status).toBe(200);
  const run = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}` },
  });
  expect(run.status, await run.clone().text()).toBe(200);
});

describe("GET /v1/recommendations", () => {
  it("gives anonymous visitors the popular shelf, cacheable", async () => {
    const response = await recommendations();
    const data = await dataOf(response);
    expect(data).toMatchObject({ customerKnown: false, arm: "anonymous" });
    expect(data.items.length).toBeGreaterThan(0);
    expect(response.headers.get("Cache-Control")).toMatch(/public/);
    const again = await dataOf(await recommendations());
    expect(again.recommendationId).not.toBe(data.recommendationId);
  });

  it("personalizes for a known shopper, with reasons naming both web and store history", async () => {
    const arms: string[] = [];
    for (const omni of omniShoppers) {
      const response = await recommendations(await tokenFor(omni), "?limit=6&categories=3");
      const data = await dataOf(response);
      expect(data.customerKnown).toBe(true);
      expect(response.headers.get("Cache-Control")).toMatch(/no-store/);
      expect(data.items.length).toBeLessThanOrEqual(6);
      expect(data.categories.length).toBeLessThanOrEqual(3);
      arms.push(data.arm);
      if (data.arm !== "personalized") continue;
      const coffee = data.categories.find((c) => c.id === "coffee");
      expect(JSON.stringify(coffee?.reasons)).toMatch(/web_and_store/);
      expect(coffee?.reason).toMatch(/online and in store|in store and online/);
      for (const item of data.items) expect(item.price).toBeLessThanOrEqual(item.listPrice);
    }
    expect(arms).toContain("personalized");
  });

  it("refuses an Authorization header that is not a Bearer token with 401, rather than the anonymous shelf", async () => {
    for (const header of ["Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer", "Token abc"]) {
      const response = await SELF.fetch("http://patron.test/v1/recommendations", {
        headers: { Authorization: header },
      });
      expect(response.status, header).toBe(401);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("unauthorized");
      expect(body.error.message).toMatch(/Bearer <shopper token>/);
    }
  });

  it("never gives an account another account's shelf through a look-alike id", async () => {
    // NFKC folds each of these into "omni-a"; the storefront issued them as other accounts.
    for (const lookalike of ["ｏｍｎｉ-ａ", "omni\ufe63a", "\u3000omni-a"]) {
      const data = await dataOf(await recommendations(await tokenFor(lookalike)));
      expect(data.customerKnown, lookalike).toBe(false);
    }
    expect((await dataOf(await recommendations(await tokenFor("omni-a")))).customerKnown).toBe(true);
  });

  it("accepts the token as ?token= too", async () => {
    const data = await dataOf(await recommendations(undefined, `?token=${await tokenFor("omni-a")}`));
    expect(data.customerKnown).toBe(true);
  });

  it("treats a validly signed but unknown account as an unknown shopper", async () => {
    const data = await dataOf(await recommendations(await tokenFor("nobody-here")));
    expect(data.customerKnown).toBe(false);
  });

  it.each([
    ["forged", async () => signShopperToken("omni-shopper", "someone-elses-secret", 3600, new Date())],
    ["expired", async () => signShopperToken("omni-shopper", secret, -60, new Date())],
    [
      "tampered",
      async () => {
        const [header, , signature] = (await tokenFor("crowd-1")).split(".");
        const payload = btoa(JSON.stringify({ sub: "omni-shopper", exp: Math.floor(now / 1000) + 3600 })).replace(
          /=+$/,
          "",
        );
        return `${header}.${payload}.${signature}`;
      },
    ],
    ["without exp", async () => sign({ sub: "omni-shopper" }, secret, "HS256")],
    ["not a JWT", async () => "hello"],
  ])("refuses a %s token with 401", async (_, make) => {
    const response = await recommendations(await make());
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
  });

  it("serves as many items as asked for, up to the limit", async () => {
    const data = await dataOf(await recommendations(await tokenFor("crowd-3"), "?limit=16&categories=5"));
    expect(data.items.length).toBeGreaterThan(12);
    expect(data.items.length).toBeLessThanOrEqual(16);
    expect(new Set(data.items.map((item) => item.id)).size).toBe(data.items.length);
  });

  it("fills a long shelf from the next categories once the listed ones run out, and the next items last", async () => {
    // 20 products in 5 categories; three per category at most while others can still fill the shelf.
    for (const token of [await tokenFor("crowd-3"), undefined]) {
      const data = await dataOf(await recommendations(token, "?limit=20&categories=2"));
      expect(data.categories).toHaveLength(2);
      // A known shopper's product bought within its category's cycle is left out: 19 of the 20.
      expect(data.items.length).toBeGreaterThanOrEqual(19);
      expect(new Set(data.items.map((item) => item.id)).size).toBe(data.items.length);
      // The listed categories' three each come first, and no category gives a fourth before the
      // others have given their three.
      const listed = new Set(data.categories.map((category) => category.id));
      expect(data.items.slice(0, 6).every((item) => listed.has(item.categoryId))).toBe(true);
      const firstFifteen = data.items.slice(0, 15).map((item) => item.categoryId);
      expect(Math.max(...categories.map((id) => firstFifteen.filter((c) => c === id).length))).toBeLessThanOrEqual(3);
    }
  });

  it("gives the shorter shelf as the start of a longer one, as the widget cuts a page's one answer", async () => {
    for (const token of [await tokenFor("crowd-3"), undefined]) {
      const long = await dataOf(await recommendations(token, "?limit=16"));
      const short = await dataOf(await recommendations(token, "?limit=8"));
      expect(long.items.length).toBe(16);
      expect(long.items.slice(0, 8).map((item) => item.id)).toEqual(short.items.map((item) => item.id));
      expect(long.categories).toEqual(short.categories);
    }
  });

  it("answers 400 for bad parameters, with one message naming the parameter and its range", async () => {
    for (const [query, message] of [
      ["?limit=0", "limit must be a whole number from 1 to 48"],
      ["?limit=many", "limit must be a whole number from 1 to 48"],
      ["?limit=2.5", "limit must be a whole number from 1 to 48"],
      ["?limit=", "limit must be a whole number from 1 to 48"],
      ["?limit=49", "limit must be a whole number from 1 to 48"],
      ["?limit=99999999999999999999", "limit must be a whole number from 1 to 48"],
      ["?categories=-1", "categories must be a whole number from 0 to 20"],
      ["?categories=x", "categories must be a whole number from 0 to 20"],
    ] as const) {
      const response = await recommendations(undefined, query);
      expect(response.status, query).toBe(400);
      const body = (await response.json()) as { error: { code: string; issues: { message: string }[] } };
      expect(body.error.code, query).toBe("invalid_request");
      expect(
        body.error.issues.map((issue) => issue.message),
        query,
      ).toEqual([message]);
    }
  });

  it("holds out the configured share of known shoppers, stably by storefront account", async () => {
    let holdout = 0;
    for (let c = 0; c < 80; c++) {
      const key = await identityKey("account", `crowd-${c}`, env.IDENTITY_HASH_SECRET);
      const expected = holdoutArm(key, defaultRankingOptions.holdout);
      const data = await dataOf(await recommendations(await tokenFor(`crowd-${c}`)));
      expect(data.arm).toBe(expected);
      if (data.arm === "holdout") holdout++;
    }
    expect(holdout).toBeGreaterThan(0);
    expect(holdout / 80).toBeLessThan(0.25);
  });

  it("applies a merchandiser rule to the very next response", async () => {
    const token = await tokenFor("crowd-2");
    const before = await dataOf(await recommendations(token));
    const target = before.items[0]?.categoryId as string;
    const created = await api.call(
      "POST",
      "/v1/admin/rules",
      { name: `Hide ${target}`, action: "exclude", targetType: "category", targetId: target },
      adminKey,
    );
    expect(created.status, await created.clone().text()).toBeLessThan(300);
    const after = await dataOf(await recommendations(token));
    expect(after.items.some((item) => item.categoryId === target)).toBe(false);
    expect(after.categories.some((category) => category.id === target)).toBe(false);
    // The cached anonymous shelf follows the rule at once too.
    const anonymous = await dataOf(await recommendations());
    expect(anonymous.items.some((item) => item.categoryId === target)).toBe(false);
  });
});

describe("events from a signed-in shopper", () => {
  it("links a click to the shopper's customer, feeding their browse signals", async () => {
    const token = await tokenFor("crowd-7");
    const response = await SELF.fetch("http://patron.test/v1/events", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ type: "view", productId: "plants-0", categoryId: "plants", token }),
    });
    expect(response.status).toBe(202);
    const customer = (await (await api.lookup("account", "crowd-7")).json()) as { data: { customerId: string } };
    const row = await env.EVENTS_DB.prepare(
      "SELECT customer_id FROM events WHERE product_id = 'plants-0' AND type = 'view'",
    ).first<{ customer_id: string }>();
    expect(row?.customer_id).toBe(customer.data.customerId);
  });

  it("keeps an event with a forged token anonymous", async () => {
    const token = await signShopperToken("crowd-7", "not-the-secret", 3600, new Date());
    await SELF.fetch("http://patron.test/v1/events", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ type: "view", productId: "plants-1", categoryId: "plants", token }),
    });
    const row = await env.EVENTS_DB.prepare("SELECT customer_id FROM events WHERE product_id = 'plants-1'").first<{
      customer_id: string | null;
    }>();
    expect(row).not.toBeNull();
    expect(row?.customer_id).toBeNull();
  });
});

describe("holdout results", () => {
  it("counts impressions, clicks and attributed orders per arm, with the arm taken from the signed id", async () => {
    const since = new Date().toISOString();
    const served: { id: string; arm: string; item: string; category: string; token: string }[] = [];
    for (let c = 40; c < 60; c++) {
      const token = await tokenFor(`crowd-${c}`);
      const data = await dataOf(await recommendations(token));
      const first = data.items[0] as { id: string; categoryId: string };
      served.push({ id: data.recommendationId, arm: data.arm, item: first.id, category: first.categoryId, token });
    }
    for (const { id, item, token } of served) {
      // The client claims "personalized" for every one; the stored arm must still be the served one.
      await SELF.fetch("http://patron.test/v1/events", {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: JSON.stringify({
          events: [{ type: "impression", recommendationId: id, arm: "personalized", productId: item }],
          token,
        }),
      });
    }
    const clicked = served[0] as (typeof served)[number];
    await SELF.fetch("http://patron.test/v1/events", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({
        type: "click",
        recommendationId: clicked.id,
        productId: clicked.item,
        token: clicked.token,
      }),
    });
    const order = anOrder({
      id: `holdout-order-${Date.now()}`,
      placedAt: new Date().toISOString(),
      identifiers: { account: "crowd-40" },
      recommendationId: clicked.id,
      lines: [{ productId: clicked.item, categoryId: clicked.category, quantity: 1, unitPrice: 13, listPrice: 13 }],
    });
    expect((await api.postOrders([order])).status).toBe(200);

    const response = await api.call("GET", `/v1/admin/holdout?since=${encodeURIComponent(since)}`, undefined, adminKey);
    expect(response.status).toBe(200);
    const { arms } = holdoutResponseSchema.parse(await response.json()).data;
    for (const arm of new Set(served.map((s) => s.arm))) {
      const row = arms.find((a) => a.arm === arm);
      expect(row?.impressions).toBe(served.filter((s) => s.arm === arm).length);
    }
    const clickedArm = arms.find((a) => a.arm === clicked.arm);
    expect(clickedArm, JSON.stringify(arms)).toMatchObject({ clicks: 1, attributedOrders: 1 });
    expect((await api.call("GET", "/v1/admin/holdout?since=last-week", undefined, adminKey)).status).toBe(400);
    expect((await api.call("GET", "/v1/admin/holdout", undefined, null)).status).toBe(401);
  });
});
