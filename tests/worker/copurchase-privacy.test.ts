// "Bought together" never reveals one shopper's baskets: a pair reaches product pages only when three
// different customers bought it together, however many orders one of them placed, and a customer
// merged from two (on shards, after the move that joins their regions) counts once. The orders
// together stay what the reason shows. Through the real worker, on D1 and on the shards.
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { homeShard } from "../../worker/core/shards/placement.ts";
import { identityKey } from "../../worker/identity/identity.keys.ts";
import { normalizeForKey } from "../../worker/identity/phone.ts";
import { recommendationsResponseSchema } from "../../worker/recommendations/recommendations.schemas.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../fixtures/builders.ts";

const api = client(SELF);
const day = 86_400_000;
const now = Date.now();

const products = ["jewellery-014", "coffee-009"].map((id) => ({
  id,
  title: id,
  categoryId: id.replace(/-\d+$/, ""),
  categoryName: id.replace(/-\d+$/, ""),
  url: `https://shop.test/p/${id}`,
  imageUrl: null,
  listPrice: 30,
  salePrice: null,
  inStock: true,
}));

/** An order of the pair placed `daysAgo` days ago by whoever `identifiers` names. */
const pairOrder = (daysAgo: number, identifiers: Record<string, string>) =>
  anOrder({
    placedAt: new Date(now - daysAgo * day).toISOString(),
    identifiers,
    lines: products.map((product) => ({
      productId: product.id,
      categoryId: product.categoryId,
      quantity: 1,
      unitPrice: 30,
      listPrice: 30,
    })),
  });

async function post(orders: ReturnType<typeof anOrder>[]) {
  // One at a time: each order's customer (and any merge) is settled before the next.
  for (const order of orders) {
    const response = await api.postOrders([order]);
    expect(response.status, await response.clone().text()).toBe(200);
  }
}

async function runNightly() {
  const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}` },
  });
  expect(response.status, await response.clone().text()).toBe(200);
}

/** The `bought_with` reasons on the jewellery page, anonymously (no token). */
async function boughtWith() {
  const response = await SELF.fetch("http://patron.test/v1/recommendations?product=jewellery-014&limit=3&categories=0");
  expect(response.status, await response.clone().text()).toBe(200);
  const data = recommendationsResponseSchema.parse(await response.json()).data;
  return data.items.flatMap((item) =>
    item.reasons.filter((reason) => reason.code === "bought_with").map((reason) => ({ id: item.id, reason })),
  );
}

async function keyOf(kind: "account" | "loyalty", value: string): Promise<string> {
  const normalized = normalizeForKey(kind, value);
  if (!normalized.ok) throw new Error(normalized.reason);
  return identityKey(kind, normalized.value, env.IDENTITY_HASH_SECRET);
}

/** A web account and a loyalty card; on shards, ones whose keys have different home shards. */
async function apart(prefix: string) {
  const count = shardCount(env);
  for (let n = 0; ; n++) {
    const web = { account: `${prefix}-web-${n}` };
    const card = { loyalty: `${prefix}-CARD-${n}` };
    if (count === 0) return { web, card };
    const webHome = homeShard(await keyOf("account", web.account), count);
    if (webHome !== homeShard(await keyOf("loyalty", card.loyalty), count)) return { web, card };
  }
}

beforeAll(async () => {
  expect((await api.postProducts(products)).status).toBe(200);
});

describe("the co-purchase threshold counts customers, not orders", () => {
  it("hides one shopper's three baskets and a merged customer's, and shows the pair once three customers bought it", async () => {
    // The security review's case: one shopper, three orders holding the pair.
    await post([1, 2, 3].map((d) => pairOrder(d, { account: "sec-pair-shopper" })));
    await runNightly();
    expect(await boughtWith()).toEqual([]);

    // A web account and a loyalty card, each in an order of the pair (two customers), joined into one
    // customer by a third order holding both: one more customer, not two (on shards their regions start
    // in different shards, and the join moves one into the other).
    const { web, card } = await apart(uniquePrefix("household"));
    const customerOf = async (kind: string, value: string) =>
      ((await (await api.lookup(kind, value)).json()) as { data: { customerId: string } }).data.customerId;
    await post([pairOrder(4, web), pairOrder(5, card)]);
    expect(await customerOf("loyalty", card.loyalty)).not.toBe(await customerOf("account", web.account));
    await post([pairOrder(6, { ...web, ...card })]);
    expect(await customerOf("loyalty", card.loyalty)).toBe(await customerOf("account", web.account));
    await runNightly();
    expect(await boughtWith()).toEqual([]);

    // A third customer: shown, with every order that held the pair in its reason.
    await post([pairOrder(7, { account: uniquePrefix("third") })]);
    await runNightly();
    expect(await boughtWith()).toEqual([
      { id: "coffee-009", reason: { code: "bought_with", productId: "jewellery-014", orders: 7 } },
    ]);
  });
});
