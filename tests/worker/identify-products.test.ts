import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { customerResponseSchema } from "../../worker/customers/customers.schemas.ts";
import { productResponseSchema, productsResponseSchema } from "../../worker/orders/orders.schemas.ts";
import { anOrder, client, uniquePrefix, verified } from "../fixtures/builders.ts";

const api = client(SELF);

describe("POST /v1/identify", () => {
  it("links a verified email to an account without an order, and a retry changes nothing", async () => {
    const p = uniquePrefix();
    expect((await api.postOrders([anOrder({ id: `${p}-1`, identifiers: { account: `${p}-acct` } })])).status).toBe(200);
    const identifiers = { account: `${p}-acct`, email: verified(`${p}@mail.test`) };
    const first = await api.identify(identifiers);
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ data: { linked: 2, unverified: 0, ignoredIdentifiers: [] } });
    const before = await env.DB.prepare("SELECT count(*) AS n FROM identity_observations").first<{ n: number }>();
    expect((await api.identify(identifiers)).status).toBe(200);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM identity_observations").first<{ n: number }>()).toEqual(
      before,
    );
    const customer = customerResponseSchema.parse(await (await api.lookup("email", `${p}@mail.test`)).json()).data;
    expect(customer.orders.map((o) => o.id)).toEqual([`${p}-1`]);
  });

  it("records a device with an account as an unverified link that identifies nobody", async () => {
    const p = uniquePrefix();
    expect((await api.postOrders([anOrder({ id: `${p}-1`, identifiers: { account: `${p}-acct` } })])).status).toBe(200);
    const first = await api.identify({ account: `${p}-acct`, device: `${p}-device-1` });
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ data: { linked: 2, unverified: 1, merges: 0 } });
    const byDevice = await api.lookup("device", `${p}-device-1`);
    expect(byDevice.status).toBe(404);
    expect(((await byDevice.json()) as { error: { message: string } }).error.message).toMatch(/unverified/);
    const customer = customerResponseSchema.parse(await (await api.lookup("account", `${p}-acct`)).json()).data;
    expect(customer.identities.map(({ kind, trust, shared }) => ({ kind, trust, shared }))).toEqual([
      { kind: "account", trust: "verified", shared: false },
      { kind: "device", trust: "unverified", shared: false },
    ]);
  });

  it("refuses a device marked verified, and any other shape of identifier, writing nothing", async () => {
    const before = await env.DB.prepare("SELECT count(*) AS n FROM identity_observations").first<{ n: number }>();
    const refused = await api.identify({ account: "someone", device: { value: "d-1", verified: true } });
    expect(refused.status).toBe(400);
    const body = (await refused.json()) as { error: { code: string; issues: { path: string[]; message: string }[] } };
    expect(body.error.code).toBe("invalid_request");
    expect(body.error.issues).toEqual([
      expect.objectContaining({
        path: ["identifiers", "device", "verified"],
        message: expect.stringMatching(/cannot be verified/),
      }),
    ]);
    for (const bad of [{ value: 5 }, { value: "x", verified: "yes" }, { value: "x", trusted: true }, ["x"]]) {
      const response = await api.identify({ email: bad as never });
      expect(response.status, JSON.stringify(bad)).toBe(400);
    }
    expect(await env.DB.prepare("SELECT count(*) AS n FROM identity_observations").first<{ n: number }>()).toEqual(
      before,
    );
  });

  it("answers 400 for no identifiers or an unknown kind, and 401 without the key", async () => {
    expect((await api.identify({})).status).toBe(400);
    expect((await api.identify({ passport: "x" })).status).toBe(400);
    expect((await api.identify({ account: "a" }, null)).status).toBe(401);
  });
});

describe("POST /v1/products", () => {
  it("upserts products and categories; a later upsert updates in place", async () => {
    const p = uniquePrefix();
    const product = {
      id: `${p}-sku`,
      title: "Espresso beans",
      categoryId: `${p}-coffee`,
      categoryName: "Coffee",
      listPrice: 14,
      salePrice: 11,
      inStock: true,
    };
    expect((await api.postProducts([product])).status).toBe(200);
    expect(
      (await api.postProducts([{ ...product, title: "Espresso beans 1kg", salePrice: null, categoryName: undefined }]))
        .status,
    ).toBe(200);
    const row = await env.DB.prepare("SELECT title, sale_price FROM products WHERE id = ?").bind(`${p}-sku`).first();
    expect(row).toEqual({ title: "Espresso beans 1kg", sale_price: null });
    const category = await env.DB.prepare("SELECT name FROM categories WHERE id = ?").bind(`${p}-coffee`).first();
    expect(category).toEqual({ name: "Coffee" });
  });

  it("rejects a batch with a bad product whole, and needs the key", async () => {
    const p = uniquePrefix();
    const response = await api.postProducts([
      { id: `${p}-ok`, title: "Fine", categoryId: "c", listPrice: 3 },
      { id: `${p}-bad`, title: "", categoryId: "c", listPrice: -1, url: "not a url" },
    ]);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { issues: { path: (string | number)[] }[] } };
    expect(body.error.issues.map((i) => i.path.join("."))).toEqual(
      expect.arrayContaining(["products.1.title", "products.1.listPrice", "products.1.url"]),
    );
    expect(await env.DB.prepare("SELECT count(*) AS n FROM products WHERE id = ?").bind(`${p}-ok`).first()).toEqual({
      n: 0,
    });
    expect((await api.postProducts([{ id: "x", title: "x", categoryId: "c", listPrice: 1 }], "wrong")).status).toBe(
      401,
    );
  });

  it("takes a feed's currency when it is the shop's, and refuses a batch with prices in another, writing nothing", async () => {
    const p = uniquePrefix();
    const product = (id: string, currency?: string) => ({
      id: `${p}-${id}`,
      title: id,
      categoryId: "c",
      listPrice: 9,
      currency,
    });
    expect((await api.postProducts([product("usd", "USD")])).status).toBe(200);
    const stored = await env.DB.prepare("SELECT list_price FROM products WHERE id = ?").bind(`${p}-usd`).first();
    expect(stored).toEqual({ list_price: 9 });

    for (const [currency, message] of [
      ["EUR", "this shop's figures are in USD (RETAILER_CURRENCY): convert the product's prices to USD first"],
      ["usd", "must be an ISO 4217 code such as USD"],
    ]) {
      const response = await api.postProducts([product("other"), product("foreign", currency)]);
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { issues: { path: (string | number)[]; message: string }[] } };
      expect(body.error.issues).toEqual([expect.objectContaining({ path: ["products", 1, "currency"], message })]);
    }
    const written = await env.DB.prepare("SELECT count(*) AS n FROM products WHERE id IN (?, ?)")
      .bind(`${p}-other`, `${p}-foreign`)
      .first();
    expect(written).toEqual({ n: 0 });
  });
});

describe("GET /v1/products", () => {
  it("reads a product back as stored, with its category's name and parent, and pages the catalog in id order", async () => {
    const p = uniquePrefix();
    const odd = `${p}/shoes 42`; // a slash and a space: the id is URL-encoded in the path
    const sent = [
      {
        id: `${p}-b`,
        title: "Trainers",
        categoryId: `${p}-shoes`,
        categoryName: "Shoes",
        parentCategoryId: "apparel",
        listPrice: 80,
        salePrice: 64,
        url: "https://shop.example/b",
      },
      { id: `${p}-a`, title: "Socks", categoryId: `${p}-shoes`, listPrice: 5, inStock: false, active: false },
      { id: odd, title: "Boots", categoryId: `${p}-shoes`, listPrice: 120 },
    ];
    expect((await api.postProducts(sent)).status).toBe(200);
    const read = async (id: string) => api.call("GET", `/v1/products/${encodeURIComponent(id)}`);
    const trainers = await read(`${p}-b`);
    expect(trainers.status).toBe(200);
    expect(trainers.headers.get("Cache-Control")).toBe("no-store");
    expect(productResponseSchema.parse(await trainers.json()).data).toEqual({
      id: `${p}-b`,
      title: "Trainers",
      categoryId: `${p}-shoes`,
      categoryName: "Shoes",
      parentCategoryId: "apparel",
      url: "https://shop.example/b",
      imageUrl: null,
      listPrice: 80,
      salePrice: 64,
      inStock: true,
      active: true,
      updatedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T.*Z$/),
    });
    // An inactive product is still in the catalog: it reads back with active false.
    expect(productResponseSchema.parse(await (await read(`${p}-a`)).json()).data).toMatchObject({
      inStock: false,
      active: false,
      salePrice: null,
    });
    expect(productResponseSchema.parse(await (await read(odd)).json()).data.title).toBe("Boots");

    const missing = await read(`${p}-none`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toContain(`${p}-none`);
    expect((await api.call("GET", `/v1/products/${"x".repeat(201)}`)).status).toBe(400);
    expect((await SELF.fetch(`http://example.com/v1/products/${p}-b`)).status).toBe(401);
    expect((await SELF.fetch("http://example.com/v1/products")).status).toBe(401);

    // Pages in id order from just before ours: each next is the last id of its page.
    const seen: string[] = [];
    let after = `${p}-`;
    for (let pages = 0; pages < 10; pages++) {
      const response = await api.call("GET", `/v1/products?limit=1&after=${encodeURIComponent(after)}`);
      expect(response.status).toBe(200);
      const { products, next } = productsResponseSchema.parse(await response.json()).data;
      seen.push(...products.map((product) => product.id).filter((id) => id.startsWith(p)));
      if (next === null || !next.startsWith(p)) break;
      expect(next).toBe(products.at(-1)?.id);
      after = next;
    }
    expect(seen).toEqual([`${p}-a`, `${p}-b`, odd].sort());
    const bad = await api.call("GET", "/v1/products?limit=501");
    expect(bad.status).toBe(400);
  });
});

describe("GET /v1/customers", () => {
  it("answers 404 for an unknown id or identifier, 400 for a bad kind, and 401 with the API key", async () => {
    expect((await api.customer("c_does_not_exist")).status).toBe(404);
    expect((await api.lookup("email", "never.seen@nowhere.test")).status).toBe(404);
    expect((await api.lookup("passport", "x")).status).toBe(400);
    expect((await api.lookup("email", "a@b.test", "test-api-key")).status).toBe(401);
  });

  it("names each order line's product and category, and each category, from the catalog (null where it has none)", async () => {
    const p = uniquePrefix();
    const account = `${p}-acct`;
    expect(
      (
        await api.postProducts([
          { id: `${p}-sku`, title: "Espresso beans", categoryId: `${p}-coffee`, categoryName: "Coffee", listPrice: 14 },
        ])
      ).status,
    ).toBe(200);
    const lines = [
      { productId: `${p}-sku`, categoryId: `${p}-coffee`, quantity: 2, unitPrice: 14, listPrice: 14 },
      { productId: `${p}-gone`, categoryId: `${p}-tea`, quantity: 1, unitPrice: 5, listPrice: 5 },
    ];
    expect((await api.postOrders([anOrder({ identifiers: { account }, lines })])).status).toBe(200);
    const byLookup = customerResponseSchema.parse(await (await api.lookup("account", account)).json()).data;
    const byId = customerResponseSchema.parse(await (await api.customer(byLookup.customerId)).json()).data;
    for (const customer of [byLookup, byId]) {
      expect(
        customer.orders[0]?.lines.map(({ productId, productTitle, categoryName }) => [
          productId,
          productTitle,
          categoryName,
        ]),
      ).toEqual([
        [`${p}-sku`, "Espresso beans", "Coffee"],
        [`${p}-gone`, null, null],
      ]);
      expect(
        Object.fromEntries(
          customer.summary!.categories.map((category) => [category.categoryId, category.categoryName]),
        ),
      ).toEqual({ [`${p}-coffee`]: "Coffee", [`${p}-tea`]: null });
      expect(customer.summary).not.toBeNull();
    }
  });
});
