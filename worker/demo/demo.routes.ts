// Demo-only routes behind the demo storefront (/demo/): a shopper token for one of the demo's own
// personas, product pictures, the product pages, and the storefront's static files.
// All of it answers 404 unless PATRON_DEMO is "on": wrangler.toml runs the Worker first for /demo and
// /demo/*, so even a build that carries the static files never serves them with the demo off; the
// deploy build (`npm run deploy`) carries none. The token route signs only for the seeded demo shoppers,
// never for an account a visitor names: a deployment with the demo on must not hand out tokens for
// real shoppers to whoever asks.
import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { ApiError, notFound } from "../http/errors.ts";
import { signShopperToken } from "../http/shopper-token.ts";
import { queryParams } from "../http/validate.ts";
import { findDemoProduct } from "./demo.repo.ts";
import { type DemoTokenResponse, demoAccounts, demoTokenQuerySchema } from "./demo.schemas.ts";
import { productArt } from "./product-art.ts";
import { productNotFoundPage, productPage } from "./product-page.ts";

const tokenTtlSeconds = 3600;

export const demoRoutes = new Hono<AppEnv>()
  .use("*", async (c, next) => {
    if (c.env.PATRON_DEMO !== "on") throw notFound(`No route for ${c.req.method} ${c.req.path}.`);
    await next();
  })
  .get("/token", async (c) => {
    const { account } = queryParams(c, demoTokenQuerySchema, { extra: "ignored" });
    if (!(demoAccounts as readonly string[]).includes(account))
      throw new ApiError(
        403,
        "forbidden",
        `The demo signs tokens only for its own shoppers (${demoAccounts.join(", ")}); a real storefront signs its shoppers' tokens on its server.`,
      );
    const now = c.get("now");
    const token = await signShopperToken(account, c.env.SHOPPER_TOKEN_SECRET, tokenTtlSeconds, now);
    c.header("Cache-Control", "no-store");
    const expiresAt = new Date(now.getTime() + tokenTtlSeconds * 1000).toISOString();
    return c.json({ data: { token, account, expiresAt } } satisfies DemoTokenResponse);
  })
  .get("/images/:file{[^/]+\\.svg}", async (c) => {
    // Hono hands the parameter decoded already: decoding it again would mistake a "%" in an id.
    const productId = c.req.param("file").slice(0, -4);
    const product = await findDemoProduct(c.get("db"), productId);
    const svg = productArt(product ?? { id: productId, title: productId, categoryId: null });
    return c.body(svg, 200, {
      "Content-Type": "image/svg+xml; charset=utf-8",
      "Cache-Control": "public, max-age=3600",
      "Access-Control-Allow-Origin": "*",
      // Static art: should the file ever be opened on its own, nothing in it may run or load.
      "Content-Security-Policy": "default-src 'none'",
      "X-Content-Type-Options": "nosniff",
    });
  })
  .get("/products/:id", async (c) => {
    const product = await findDemoProduct(c.get("db"), c.req.param("id"));
    // A page a shopper opens: the shop's own "not found", not the API's JSON error.
    if (!product) return c.html(productNotFoundPage(c.req.param("id")), 404);
    return c.html(
      productPage({
        ...product,
        categoryName: product.categoryName ?? product.categoryId,
        recommendationId: c.req.query("patron_rec") ?? null,
      }),
    );
  })
  // The demo storefront's static files (dist/public/demo, built by `npm run build`), behind the gate above.
  .get("*", async (c) => {
    const asset = await c.env.ASSETS.fetch(c.req.raw);
    if (asset.status === 404) throw notFound(`No demo file at ${c.req.path}.`);
    const response = new Response(asset.body, asset);
    if (asset.ok) response.headers.set("Cache-Control", "public, max-age=0, must-revalidate");
    return response;
  });
