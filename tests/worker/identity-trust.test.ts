// Identity poisoning, through the real worker: a storefront account sent together with someone
// else's email, phone, device or card (on an order or an identify call, by one attacker or by five)
// must not reach that person's history, and must not split or shrink their customer. Side by side
// with the joins that must keep working: a loyalty shopper's verified receipt email joining their
// verified web login, and a storefront's identify call vouching for an email.
import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { customerResponseSchema } from "../../worker/customers/customers.schemas.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { ingestResultSchema } from "../../worker/orders/orders.schemas.ts";
import { recommendationsResponseSchema } from "../../worker/recommendations/recommendations.schemas.ts";
import { adminKey, anOrder, client, uniquePrefix, verified } from "../fixtures/builders.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);
const day = 86_400_000;
const now = Date.now();
const ago = (days: number) => new Date(now - days * day).toISOString();
/** Reasons that come from the shopper's own purchases in that category. */
const fromHistory = (reason: { code: string; fromOwnHistory?: unknown }) =>
  ["bought_before", "due_now", "just_bought", "complements"].includes(reason.code) ||
  (reason.code === "price_band" && reason.fromOwnHistory === true);

const categories = ["tea", "books", "mugs", "plants"];
const products = categories.flatMap((categoryId, c) =>
  [0, 1, 2, 3].map((n) => ({
    id: `${categoryId}-${n}`,
    title: `${categoryId} ${n}`,
    categoryId,
    categoryName: categoryId,
    listPrice: 10 + c * 4 + n,
    inStock: true,
  })),
);
const tea = (productId = "tea-0") => [{ productId, categoryId: "tea", quantity: 1, unitPrice: 12, listPrice: 12 }];
const books = [{ productId: "books-0", categoryId: "books", quantity: 1, unitPrice: 15, listPrice: 15 }];

async function ingest(orders: unknown[]) {
  const response = await api.postOrders(orders);
  expect(response.status, await response.clone().text()).toBe(200);
  return ingestResultSchema.parse(await response.json()).data;
}

async function customerOf(kind: string, value: string) {
  const response = await api.lookup(kind, value);
  expect(response.status, `${kind} ${value}: ${await response.clone().text()}`).toBe(200);
  return customerResponseSchema.parse(await response.json()).data;
}

async function shelfOf(account: string) {
  const token = await signShopperToken(account, "test-shopper-secret", 3600, new Date());
  const response = await SELF.fetch("http://patron.test/v1/recommendations?limit=12&categories=4", {
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(response.status, await response.clone().text()).toBe(200);
  return recommendationsResponseSchema.parse(await response.json()).data;
}

/** A shopper who buys tea online (verified login email, an app device) and in store (loyalty card with its email and phone on file, a payment card). */
function victimOf(p: string, n: number) {
  const value = {
    account: `${p}-victim`,
    email: `victim-${p}@mail.test`,
    phone: `+44 7911 1234${String(n).padStart(2, "0")}`,
    loyalty: `${p}-LV`,
    card: `tok_${p}_victim`,
    device: `${p}-victim-phone`,
  };
  const orders = [
    anOrder({
      id: `${p}-v1`,
      placedAt: ago(150),
      lines: tea(),
      identifiers: { account: value.account, email: verified(value.email) },
    }),
    anOrder({
      id: `${p}-v2`,
      channel: "app",
      placedAt: ago(120),
      lines: tea("tea-1"),
      identifiers: { account: value.account, email: verified(value.email), device: value.device },
    }),
    anOrder({
      id: `${p}-v3`,
      channel: "store",
      placedAt: ago(90),
      lines: tea(),
      identifiers: { loyalty: value.loyalty, email: verified(value.email) },
    }),
    anOrder({
      id: `${p}-v4`,
      channel: "store",
      placedAt: ago(60),
      lines: tea("tea-2"),
      identifiers: { loyalty: value.loyalty, phone: verified(value.phone) },
    }),
    anOrder({
      id: `${p}-v5`,
      channel: "store",
      placedAt: ago(40),
      lines: tea(),
      identifiers: { loyalty: value.loyalty, card: verified(value.card) },
    }),
    // Card only: joins the victim through the card the till saw presented with the loyalty card.
    anOrder({
      id: `${p}-v6`,
      channel: "store",
      placedAt: ago(20),
      lines: tea(),
      identifiers: { card: verified(value.card) },
    }),
  ];
  return { value, orders, orderIds: orders.map((o) => o.id).sort() };
}

const kinds = ["email", "phone", "device", "card"] as const;
const routes = ["order", "identify"] as const;
const scenarios = kinds.flatMap((kind, k) =>
  routes.map((route, r) => ({ kind, route, p: uniquePrefix(`${kind}-${route}`), n: k * routes.length + r })),
);
const legitimate = uniquePrefix("legit");

beforeAll(async () => {
  expect((await api.postProducts(products)).status).toBe(200);
  const orders = [];
  for (const { p, n } of scenarios) {
    orders.push(...victimOf(p, n).orders);
    // The attacker's own history: books, online.
    for (let k = 0; k < 3; k++)
      orders.push(
        anOrder({
          id: `${p}-a${k}`,
          placedAt: ago(100 - k * 30),
          lines: books,
          identifiers: { account: `${p}-attacker-1` },
        }),
      );
  }
  orders.push(...victimOf(legitimate, 99).orders);
  // A crowd, so the population models and the popular shelf have something to say.
  for (let c = 0; c < 40; c++)
    orders.push(
      anOrder({
        id: `crowd-${c}`,
        placedAt: ago(c + 1),
        identifiers: { account: `crowd-${c}` },
        lines: [
          {
            productId: `${categories[c % 4]}-3`,
            categoryId: categories[c % 4] as string,
            quantity: 1,
            unitPrice: 11,
            listPrice: 11,
          },
        ],
      }),
    );
  await ingest(orders);
  const run = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}` },
  });
  expect(run.status, await run.clone().text()).toBe(200);
});

describe("the legitimate cross-channel join", () => {
  it("makes a loyalty shopper whose verified receipt email matches their verified login one customer", async () => {
    const victim = victimOf(legitimate, 99);
    const customer = await customerOf("account", victim.value.account);
    expect(customer.orders.map((o) => o.id).sort()).toEqual(victim.orderIds);
    expect((await customerOf("loyalty", victim.value.loyalty)).customerId).toBe(customer.customerId);
    expect(customer.summary?.channels).toMatchObject({ web: 1, app: 1, store: 4 });
    expect(customer.identities.map((i) => `${i.kind}:${i.trust}`)).toEqual([
      "account:verified",
      "card:verified",
      "device:unverified",
      "email:verified",
      "loyalty:verified",
      "phone:verified",
    ]);
  });

  it("lets the store purchases shape the web shelf", async () => {
    const shelf = await shelfOf(victimOf(legitimate, 99).value.account);
    expect(shelf.customerKnown).toBe(true);
    if (shelf.arm === "holdout") return; // held out from personalization: the popular shelf, by design
    const teaCategory = shelf.categories.find((c) => c.id === "tea");
    expect(teaCategory?.reasons.map((r) => r.code)).toContain("bought_before");
    expect(teaCategory?.reason).toMatch(/online and in store|in store and online/);
  });

  it("joins an existing store customer when the storefront vouches for the email in an identify call", async () => {
    const p = uniquePrefix("vouch");
    await ingest([
      anOrder({
        id: `${p}-s`,
        channel: "store",
        identifiers: { loyalty: `${p}-L`, email: verified(`${p}@mail.test`) },
      }),
      anOrder({ id: `${p}-w`, identifiers: { account: `${p}-acct` } }),
    ]);
    expect((await customerOf("account", `${p}-acct`)).orders).toHaveLength(1);
    const typed = await api.identify({ account: `${p}-acct`, email: `${p}@mail.test` });
    expect(await typed.json()).toMatchObject({ data: { linked: 2, unverified: 1, merges: 0 } });
    expect((await customerOf("account", `${p}-acct`)).orders).toHaveLength(1);
    const vouched = await api.identify({ account: `${p}-acct`, email: verified(`${p}@mail.test`) });
    expect(await vouched.json()).toMatchObject({ data: { linked: 2, unverified: 0, merges: 1 } });
    expect((await customerOf("account", `${p}-acct`)).orders.map((o) => o.id).sort()).toEqual([`${p}-s`, `${p}-w`]);
  });
});

describe.each(scenarios)("an attacker's account with the victim's $kind, by $route", ({ kind, route, p, n }) => {
  const victim = victimOf(p, n);
  let before: Awaited<ReturnType<typeof customerOf>>;

  beforeAll(async () => {
    before = await customerOf("account", victim.value.account);
    expect(before.orders.map((o) => o.id).sort()).toEqual(victim.orderIds);
    // Five attacker accounts send the victim's identifier: enough to have marked it shared before.
    for (let n = 1; n <= 5; n++) {
      const identifiers = { account: `${p}-attacker-${n}`, [kind]: victim.value[kind] };
      if (route === "order") {
        const result = await ingest([anOrder({ id: `${p}-poison-${n}`, placedAt: ago(1), lines: books, identifiers })]);
        expect(result.merges).toBe(0);
      } else {
        const response = await api.identify(identifiers);
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({ data: { linked: 2, unverified: 1, merges: 0 } });
      }
    }
  });

  it("leaves the victim's customer whole: same id, every order, nothing merged or split", async () => {
    const after = await customerOf("account", victim.value.account);
    expect(after.customerId).toBe(before.customerId);
    expect(after.orders.map((o) => o.id).sort()).toEqual(victim.orderIds);
    expect(after.summary?.orders).toBe(victim.orderIds.length);
    expect(after.mergedFrom).toEqual(before.mergedFrom);
    for (const key of ["loyalty", "email", "phone", "card"] as const)
      expect((await customerOf(key, victim.value[key])).customerId).toBe(before.customerId);
    expect(after.identities.filter((i) => i.shared)).toEqual([]);
  });

  it("gives the attacker's customer only the attacker's orders, the victim's identifier shown as unverified", async () => {
    const attacker = await customerOf("account", `${p}-attacker-1`);
    const own = [`${p}-a0`, `${p}-a1`, `${p}-a2`, ...(route === "order" ? [`${p}-poison-1`] : [])].sort();
    expect(attacker.orders.map((o) => o.id).sort()).toEqual(own);
    expect(attacker.customerId).not.toBe(before.customerId);
    expect(attacker.identities.map(({ kind, trust, shared }) => ({ kind, trust, shared }))).toEqual(
      [
        { kind: "account", trust: "verified", shared: false },
        { kind, trust: "unverified", shared: false },
      ].sort((a, b) => (a.kind < b.kind ? -1 : 1)),
    );
  });

  it("shows the attacker no victim history in reasons or picks", async () => {
    const shelf = await shelfOf(`${p}-attacker-1`);
    expect(shelf.customerKnown).toBe(true);
    const text = JSON.stringify(shelf);
    expect(text).not.toMatch(/in store/);
    for (const category of shelf.categories)
      if (category.id !== "books") expect(category.reasons.filter(fromHistory), category.id).toEqual([]);
    for (const item of shelf.items)
      if (item.categoryId !== "books") expect(item.reasons.filter(fromHistory), item.id).toEqual([]);
    // Only the attacker's own purchases (books, online) are remembered.
    const summaries = await storeRows<{ orders: number; store: number }>(
      "SELECT orders, store_orders AS store FROM customer_summaries WHERE customer_id = (SELECT customer_id FROM identities WHERE key = (SELECT identity_key FROM identity_observations WHERE source = ? AND verified = 1))",
      `order:${p}-a0`,
    );
    expect(summaries).toEqual([{ orders: route === "order" ? 4 : 3, store: 0 }]);
  });

  it("keeps the victim's shelf their own", async () => {
    const shelf = await shelfOf(victim.value.account);
    expect(shelf.customerKnown).toBe(true);
    if (shelf.arm === "holdout") return;
    expect(shelf.categories.find((c) => c.id === "tea")?.reasons.map((r) => r.code)).toContain("bought_before");
    for (const category of shelf.categories)
      if (category.id === "books") expect(category.reasons.filter(fromHistory)).toEqual([]);
  });
});

describe("a loyalty number typed into a web form", () => {
  it("joins nobody when the storefront sends it unverified, as it must", async () => {
    const p = uniquePrefix("typed-loyalty");
    await ingest([
      anOrder({ id: `${p}-s1`, channel: "store", lines: tea(), identifiers: { loyalty: `${p}-L` } }),
      anOrder({ id: `${p}-s2`, channel: "store", lines: tea(), identifiers: { loyalty: `${p}-L` } }),
      anOrder({
        id: `${p}-w`,
        lines: books,
        identifiers: { account: `${p}-attacker`, loyalty: { value: `${p}-L`, verified: false } },
      }),
    ]);
    expect((await customerOf("account", `${p}-attacker`)).orders.map((o) => o.id)).toEqual([`${p}-w`]);
    expect((await customerOf("loyalty", `${p}-L`)).orders.map((o) => o.id).sort()).toEqual([`${p}-s1`, `${p}-s2`]);
  });
});

describe("GET /v1/customers/:id/export", () => {
  it("lists every identifier link with the order or identify call it was seen on, its trust, and shared ones", async () => {
    const p = uniquePrefix("export");
    await ingest([
      anOrder({
        id: `${p}-w`,
        identifiers: { account: `${p}-acct`, email: verified(`${p}@mail.test`), device: `${p}-dev` },
      }),
      anOrder({ id: `${p}-s`, channel: "store", identifiers: { loyalty: `${p}-L`, card: verified(`${p}-fam`) } }),
      anOrder({ id: `${p}-n1`, channel: "store", identifiers: { loyalty: `${p}-N1`, card: verified(`${p}-fam`) } }),
      anOrder({ id: `${p}-n2`, channel: "store", identifiers: { loyalty: `${p}-N2`, card: verified(`${p}-fam`) } }),
    ]);
    await api.identify({ account: `${p}-acct`, loyalty: `${p}-L`, phone: "+33 6 12 34 56 78" });
    const customer = await customerOf("account", `${p}-acct`);
    const response = await api.call("GET", `/v1/customers/${customer.customerId}/export`, undefined, adminKey);
    expect(response.status).toBe(200);
    const { data } = (await response.json()) as {
      data: {
        identityLinks: {
          orderId: string | null;
          identifyCall: string | null;
          kind: string;
          masked: string;
          trust: string;
          shared: boolean;
          held: boolean;
        }[];
      };
    };
    const links = data.identityLinks.map((link) => ({
      on: link.orderId ?? (link.identifyCall?.startsWith("identify:") ? "identify" : "?"),
      kind: link.kind,
      trust: link.trust,
      shared: link.shared,
      held: link.held,
    }));
    expect(links).toEqual([
      { on: "identify", kind: "account", trust: "verified", shared: false, held: true },
      { on: "identify", kind: "loyalty", trust: "verified", shared: false, held: true },
      { on: "identify", kind: "phone", trust: "unverified", shared: false, held: false },
      { on: `${p}-s`, kind: "card", trust: "verified", shared: true, held: false },
      { on: `${p}-s`, kind: "loyalty", trust: "verified", shared: false, held: true },
      { on: `${p}-w`, kind: "account", trust: "verified", shared: false, held: true },
      { on: `${p}-w`, kind: "device", trust: "unverified", shared: false, held: false },
      { on: `${p}-w`, kind: "email", trust: "verified", shared: false, held: true },
    ]);
    expect(JSON.stringify(data)).not.toContain(`${p}@mail.test`);
    // The neighbours' orders carry the shared card too, but they are not this customer's.
    expect(JSON.stringify(data)).not.toContain(`${p}-n1`);

    // Erasure removes the identifiers only this customer was seen with, unverified ones included.
    const unverifiedKeys = () =>
      storeRows<{ n: number }>(
        "SELECT count(*) AS n FROM identities WHERE kind IN ('device', 'phone') AND customer_id IS NULL AND shared = 0",
      ).then((rows) => rows.reduce((sum, row) => sum + row.n, 0));
    const before = await unverifiedKeys();
    expect((await api.call("DELETE", `/v1/customers/${customer.customerId}`, undefined, adminKey)).status).toBe(200);
    expect(before - (await unverifiedKeys())).toBe(2);
    expect((await customerOf("loyalty", `${p}-N1`)).orders.map((o) => o.id)).toEqual([`${p}-n1`]);
  });
});

describe("phone numbers through the API", () => {
  it("joins one number written nationally and internationally, and ignores an invalid one with a reason", async () => {
    const p = uniquePrefix("phone");
    const result = await ingest([
      anOrder({
        id: `${p}-1`,
        channel: "store",
        identifiers: { loyalty: `${p}-L`, phone: verified("+44 20 7946 0958") },
      }),
      anOrder({ id: `${p}-2`, channel: "store", identifiers: { phone: verified("0044 (0)20 7946 0958") } }),
      anOrder({ id: `${p}-3`, channel: "store", identifiers: { loyalty: `${p}-M`, phone: "020 7946 0958" } }),
      anOrder({
        id: `${p}-4`,
        channel: "store",
        identifiers: { loyalty: `${p}-N`, phone: verified("+1 211 555 0199") },
      }),
    ]);
    expect(result.results[1]?.customerId).toBe(result.results[0]?.customerId);
    // A national UK number is read in the default region (US), too long for it; a +1 number is judged as +1.
    expect(result.ignoredIdentifiers).toEqual([
      { index: 2, kind: "phone", reason: expect.stringMatching(/^phone number too long for the default region, US /) },
      { index: 3, kind: "phone", reason: "not a valid phone number for country code +1" },
    ]);
    const customer = await customerOf("phone", "+44 20 7946 0958");
    expect(customer.orders.map((o) => o.id).sort()).toEqual([`${p}-1`, `${p}-2`]);
    expect(customer.identities.find((i) => i.kind === "phone")?.masked).toBe("******0958");
    const refused = await api.lookup("phone", "+1 211 555 0199");
    expect(refused.status).toBe(400);
  });
});
