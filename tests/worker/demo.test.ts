import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import { demoAccounts, demoTokenResponseSchema } from "../../worker/demo/demo.schemas.ts";
import { productArt } from "../../worker/demo/product-art.ts";
import { verifyShopperToken } from "../../worker/http/shopper-token.ts";

// The real app with PATRON_DEMO set explicitly: a local .dev.vars may switch the demo on for SELF.
const withDemo = (value: string | undefined) => (path: string) =>
  createApp().request(`http://patron.test${path}`, {}, { ...env, PATRON_DEMO: value });
const demoOn = withDemo("on");

beforeAll(async () => {
  await env.DB.batch([
    env.DB.prepare("insert into categories (id, name, updated_at) values ('heels', 'Heels & <Pumps>', '2026-01-01')"),
    env.DB.prepare(
      "insert into products (id, title, category_id, list_price, sale_price, in_stock, active, updated_at) values ('sku-1', 'Satin <b>Pumps</b>', 'heels', 120, 89, 1, 1, '2026-01-01')",
    ),
  ]);
});

describe("demo routes", () => {
  it.each([
    [undefined, "/demo/token?account=demo-new"],
    ["off", "/demo/token?account=demo-new"],
    [undefined, "/demo/images/sku-1.svg"],
    [undefined, "/demo/products/sku-1"],
    [undefined, "/demo"],
    [undefined, "/demo/"],
    [undefined, "/demo/index.html"],
    [undefined, "/demo/shop.css"],
    ["off", "/demo/"],
    ["ON", "/demo/index.html"],
  ])("answer with 404 when PATRON_DEMO is %s (%s)", async (value, path) => {
    const response = await withDemo(value)(path);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });

  it.each(["/demo", "/demo/", "/demo/index.html", "/demo/shop.css", "/demo/token?account=demo-new"])(
    "keeps %s closed through the worker's entry point when the demo is off",
    async (path) => {
      // SELF calls the Worker itself; that the static files never get past it with the demo off
      // (run_worker_first) is checked under wrangler dev in tests/cli/demo-exposure.test.ts.
      expect(env.PATRON_DEMO).toBeUndefined();
      const response = await SELF.fetch(`http://patron.test${path}`);
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("not_found");
    },
  );

  it("serves the demo storefront's static files when the demo is on", async () => {
    const page = await demoOn("/demo/");
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<link rel="stylesheet" href="/widget/v1.css">');
    expect(html).toContain('data-placement="home"');
    expect(html).toContain('data-placement="buy-again"');
    const script = await demoOn("/demo/shop.js");
    expect(script.status).toBe(200);
    // Static files too (a Response the route builds itself) are never to be read as another type.
    for (const file of [page, script]) expect(file.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(await script.text()).toContain("/demo/token?account=");
    const cart = await demoOn("/demo/cart");
    expect(cart.status).toBe(200);
    expect(await cart.text()).toContain('data-placement="cart"');
    const css = await demoOn("/demo/shop.css");
    expect(css.status).toBe(200);
    expect(css.headers.get("Content-Type")).toMatch(/^text\/css/);
    const missing = await demoOn("/demo/nope.css");
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });

  it.each(demoAccounts)("signs a token for the demo's own shopper %s", async (account) => {
    const response = await demoOn(`/demo/token?account=${account}`);
    expect(response.status).toBe(200);
    const { data } = demoTokenResponseSchema.parse(await response.json());
    expect(await verifyShopperToken(data.token, env.SHOPPER_TOKEN_SECRET, new Date())).toMatchObject({
      ok: true,
      claims: { sub: account },
    });
  });

  it.each(["someone-else", "crowd-1", "demo-anonymous", "anonymous", "DEMO-NEW", "demo-new.x"])(
    "refuses to sign a token for %s, who is not one of the demo's shoppers",
    async (account) => {
      const response = await demoOn(`/demo/token?account=${account}`);
      expect(response.status).toBe(403);
      const body = (await response.json()) as { error: { code: string; message: string }; data?: unknown };
      expect(body.error.code).toBe("forbidden");
      expect(body.data).toBeUndefined();
    },
  );

  it("signs a one-hour shopper token for a demo account", async () => {
    const response = await demoOn("/demo/token?account=demo-fading");
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const { data } = demoTokenResponseSchema.parse(await response.json());
    const check = await verifyShopperToken(data.token, env.SHOPPER_TOKEN_SECRET, new Date());
    expect(check).toMatchObject({ ok: true, claims: { sub: "demo-fading" } });
    const lifetime = Date.parse(data.expiresAt) - Date.now();
    expect(lifetime).toBeGreaterThan(3500_000);
    expect(lifetime).toBeLessThanOrEqual(3600_000);
  });

  it.each(["/demo/token", "/demo/token?account=", "/demo/token?account=a%20b%3Cc"])(
    "refuses %s with 400",
    async (path) => {
      const response = await demoOn(path);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
    },
  );

  it("draws a product's picture: static SVG with no script or outside reference, its title escaped", async () => {
    const response = await demoOn("/demo/images/sku-1.svg");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^image\/svg\+xml/);
    expect(response.headers.get("Content-Security-Policy")).toBe("default-src 'none'");
    expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
    const svg = await response.text();
    expect(svg).toContain("<title>Satin &#60;b&#62;Pumps&#60;/b&#62;</title>");
    expect(svg).not.toContain("<b>");
    expect(svg).not.toMatch(/<script|<foreignObject|\bon[a-z]+=|href=|url\(/i);
    expect(new TextEncoder().encode(svg).length).toBeLessThan(2048);
  });

  it("draws a neutral parcel for an unknown product", async () => {
    const response = await demoOn("/demo/images/nope.svg");
    expect(response.status).toBe(200);
    const svg = await response.text();
    expect(svg).toContain("<title>nope</title>");
    expect(svg).toBe(productArt({ id: "nope", title: "nope", categoryId: null }));
    // An id holding "%" (sent encoded, as product pages link it) and one named like an object's member.
    for (const id of ["50%-off", "%E0%A4", "constructor"]) {
      const odd = await demoOn(`/demo/images/${encodeURIComponent(id)}.svg`);
      expect(odd.status, id).toBe(200);
      expect(await odd.text(), id).toBe(productArt({ id, title: id, categoryId: null }));
    }
  });

  it("shows a product page with the sale price, a shelf for the product and the recommendation id, escaped", async () => {
    const response = await demoOn("/demo/products/sku-1?patron_rec=rec_%3Cx%3E");
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain("<h1>Satin &#60;b&#62;Pumps&#60;/b&#62;</h1>");
    expect(html).toContain("<ins>$89.00</ins>");
    expect(html).toContain("$120.00</s>");
    expect(html).toContain("<code>rec_&#60;x&#62;</code>");
    expect(html).toContain('data-placement="product" data-product="sku-1"');
    expect(html).toContain('<img src="/demo/images/sku-1.svg" alt="Satin &#60;b&#62;Pumps&#60;/b&#62;"');
    // The bag's copy of the product rides in an attribute: no quote or angle bracket gets out.
    const forBag = html.match(/data-product="(\{[^"]*)"/)?.[1] ?? "";
    expect(forBag).not.toMatch(/[<>]/);
    expect(html).toContain('id="add"');
    expect(html).toContain('<link rel="stylesheet" href="/widget/v1.css">');
  });

  it("shows an out-of-stock product without an Add to bag button", async () => {
    await env.DB.prepare(
      "insert into products (id, title, category_id, list_price, in_stock, active, updated_at) values ('sku-2', 'Kitten Mules', 'heels', 60, 0, 1, '2026-01-01')",
    ).run();
    const html = await (await demoOn("/demo/products/sku-2")).text();
    expect(html).toContain("Out of stock");
    expect(html).not.toContain('id="add"');
  });

  it("answers an unknown product page with 404 and the shop's own page, the id escaped", async () => {
    const response = await demoOn("/demo/products/nope%3Cb%3E");
    expect(response.status).toBe(404);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/html/);
    const html = await response.text();
    expect(html).toContain("<h1>Product not found</h1>");
    expect(html).toContain("<code>nope&#60;b&#62;</code>");
    expect(html).toContain('href="/demo/"');
  });
});
