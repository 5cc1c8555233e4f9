// "Bought together" never reveals one shopper's baskets: a pair reaches product pages only when three
// different shoppers bought it together, however many orders one of them placed: a customer merged
// from two (on shards, after the move that joins their regions) counts once, and so do guest orders
// that share an identifier, each of which is a customer of its own (on shards, in different shards).
// The orders together stay what the reason shows. Through the real worker, on D1 and on the shards.
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { orderSource } from "../../worker/core/identity/plan.ts";
import { homeShard } from "../../worker/core/shards/placement.ts";
import { identityKey } from "../../worker/identity/identity.keys.ts";
import { normalizeForKey } from "../../worker/identity/phone.ts";
import { recommendationsResponseSchema } from "../../worker/recommendations/recommendations.schemas.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../fixtures/builders.ts";
import { onEachStorePart } from "../fixtures/events-store.ts";

const api = client(SELF);
const day = 86_400_000;
const now = Date.now();

const products = [
  "jewellery-014",
  "coffee-009",
  "guest-candle-1",
  "guest-vase-2",
  "chain-lamp-1",
  "chain-rug-2",
  "long-mug-1",
  "long-tray-2",
].map((id) => ({
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

/** An order of the pair (by default jewellery with coffee) placed `daysAgo` days ago by whoever `identifiers` names. */
const pairOrder = (
  daysAgo: number,
  identifiers: Record<string, string>,
  pair = ["jewellery-014", "coffee-009"],
  id?: string,
) =>
  anOrder({
    ...(id ? { id } : {}),
    placedAt: new Date(now - daysAgo * day).toISOString(),
    identifiers,
    lines: products
      .filter((product) => pair.includes(product.id))
      .map((product) => ({
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

/** The `bought_with` reasons on a product's page (the jewellery's by default), anonymously (no token). */
async function boughtWith(product = "jewellery-014") {
  const response = await SELF.fetch(
    `http://patron.test/v1/recommendations?placement=product&product=${product}&limit=3&categories=0`,
  );
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

/** How many parts of the customer store (D1, or each shard) hold one of the orders `ids`. */
async function partsHolding(ids: readonly string[]): Promise<number> {
  const held = await onEachStorePart(async (database) => {
    const marks = ids.map(() => "?").join(", ");
    const row = await database
      .prepare(`SELECT count(*) AS n FROM orders WHERE id IN (${marks})`)
      .bind(...ids)
      .first<{ n: number }>();
    return (row?.n ?? 0) > 0;
  });
  return held.filter(Boolean).length;
}

/**
 * `n` order ids; on shards, ones whose `order:<id>` homes differ (as many as there are shards): a guest
 * order, with no verified identifier to place it, is stored in its id's home shard.
 */
function spreadOrderIds(prefix: string, n: number): string[] {
  const count = shardCount(env);
  const ids: string[] = [];
  const homes = new Set<number>();
  for (let i = 0; ids.length < n; i++) {
    const id = `${prefix}-${i}`;
    const home = count === 0 ? 0 : homeShard(orderSource(id), count);
    if (count > 0 && homes.has(home) && homes.size < Math.min(n, count)) continue;
    homes.add(home);
    ids.push(id);
  }
  return ids;
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

describe("guest orders sharing an identifier are one shopper", () => {
  it("hides what one person bought in three guest checkouts with the same email, until two other people buy it", async () => {
    // Each guest order with only an unverified email is a customer of its own: three customers, one person.
    const pair = ["guest-candle-1", "guest-vase-2"];
    const ids = spreadOrderIds(uniquePrefix("guest"), 3);
    await post(ids.map((id, n) => pairOrder(n + 1, { email: "one.person@mail.test" }, pair, id)));
    // On shards, three customers in three shards: no one shard sees more than one of them.
    expect(await partsHolding(ids)).toBe(shardCount(env) === 0 ? 1 : 3);
    await runNightly();
    expect(await boughtWith("guest-candle-1")).toEqual([]);

    // Two other guests: three shoppers, and every order holding the pair in the reason.
    await post([
      pairOrder(4, { email: "second.person@mail.test" }, pair),
      pairOrder(5, { email: "third@mail.test" }, pair),
    ]);
    await runNightly();
    expect(await boughtWith("guest-candle-1")).toEqual([
      { id: "guest-vase-2", reason: { code: "bought_with", productId: "guest-candle-1", orders: 5 } },
    ]);
  });

  it("joins guest orders through a chain of identifiers: a phone, the phone and an email, the email and a device", async () => {
    // No identifier is on all three, and each order's least identifier differs (a device's key sorts
    // before an email's, an email's before a phone's): on shards, each shard's shopper has another label.
    const pair = ["chain-lamp-1", "chain-rug-2"];
    const [first = "", second = "", third = ""] = spreadOrderIds(uniquePrefix("chain"), 3);
    const device = uniquePrefix("device");
    await post([
      pairOrder(1, { phone: "+33 6 12 34 56 78" }, pair, first),
      pairOrder(2, { phone: "+33 6 12 34 56 78", email: "chain.person@mail.test" }, pair, second),
      pairOrder(3, { email: "chain.person@mail.test", device }, pair, third),
    ]);
    expect(await partsHolding([first, second, third])).toBe(shardCount(env) === 0 ? 1 : 3);
    await runNightly();
    expect(await boughtWith("chain-lamp-1")).toEqual([]);
  });

  it("counts a chain of guest orders longer than the rounds that settle shoppers as one shopper", async () => {
    // Forty guest orders, each sharing its email with the one before and its phone with the one after:
    // one person, whose least identifier is further from most orders than the rounds carry it.
    const pair = ["long-mug-1", "long-tray-2"];
    const p = uniquePrefix("long");
    const phone = (n: number) => `+33 6 ${String(20 + Math.floor(n / 2)).padStart(2, "0")} 45 67 89`;
    const orders = Array.from({ length: 40 }, (_, n) =>
      pairOrder(n + 1, { email: `${p}-${Math.ceil(n / 2)}@mail.test`, phone: phone(n) }, pair),
    );
    expect((await api.postOrders(orders)).status).toBe(200);
    await runNightly();
    expect(await boughtWith("long-mug-1")).toEqual([]);
  });
});
