// Demo-only routes behind the demo storefront (/demo/): a shopper token for one of the demo's own
// personas, product placeholder images, a minimal product page, and the storefront's static files.
// All of it answers 404 unless PATRON_DEMO is "on": wrangler.toml runs the Worker first for /demo and
// /demo/*, so even a build that carries the static files never serves them with the demo off; the
// deploy build (`npm run deploy`) carries none. The token route signs only for the seeded demo shoppers,
// never for an account a visitor names: a deployment with the demo on must not hand out tokens for
// real shoppers to whoever asks.
import { Hono } from "hono";
import { currentPrice } from "../core/ranking/items.ts";
import type { AppEnv } from "../env.ts";
import { ApiError, notFound } from "../http/errors.ts";
import { signShopperToken } from "../http/shopper-token.ts";
import { queryParams } from "../http/validate.ts";
import { findDemoProduct } from "./demo.repo.ts";
import { type DemoTokenResponse, demoAccounts, demoTokenQuerySchema } from "./demo.schemas.ts";

const tokenTtlSeconds = 3600;

const escapeXml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/** A stable hue per category, so every product of a category shares a colour. */
function categoryHue(categoryId: string): number {
  let hash = 0;
  for (const char of categoryId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash % 360;
}

/** Splits a title into at most three lines of about `width` characters for the SVG. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && (line + word).length > width) {
      lines.push(line.trim());
      line = "";
    }
    line += `${word} `;
  }
  if (line.trim()) lines.push(line.trim());
  return lines.slice(0, 3);
}

function placeholderSvg(title: string, category: string, categoryId: string): string {
  const hue = categoryHue(categoryId);
  const lines = wrap(title, 18)
    .map((line, index) => `<tspan x="200" dy="${index === 0 ? 0 : 34}">${escapeXml(line)}</tspan>`)
    .join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400" viewBox="0 0 400 400" role="img" aria-label="${escapeXml(title)}">
<rect width="400" height="400" fill="hsl(${hue} 45% 88%)"/>
<circle cx="200" cy="150" r="70" fill="hsl(${hue} 40% 72%)"/>
<text x="200" y="270" font-family="system-ui, sans-serif" font-size="26" font-weight="600" text-anchor="middle" fill="hsl(${hue} 45% 22%)">${lines}</text>
<text x="200" y="376" font-family="system-ui, sans-serif" font-size="16" text-anchor="middle" fill="hsl(${hue} 30% 35%)" letter-spacing="2">${escapeXml(category.toUpperCase())}</text>
</svg>`;
}

function productPage(product: {
  id: string;
  title: string;
  categoryName: string;
  price: string;
  recommendationId: string | null;
}) {
  const title = escapeXml(product.title);
  const attribution = product.recommendationId
    ? `<p class="note">Opened from recommendation <code>${escapeXml(product.recommendationId)}</code>. A storefront keeps this id with the cart and sends it as <code>recommendationId</code> on the order, so the sale is attributed.</p>`
    : "";
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Patron demo shop</title><link rel="stylesheet" href="/demo/shop.css"></head>
<body><header class="top"><a class="brand" href="/demo/">Northwind &amp; Co.</a></header>
<main class="product"><img src="/demo/images/${encodeURIComponent(product.id)}.svg" alt="" width="400" height="400">
<div><p class="eyebrow">${escapeXml(product.categoryName)}</p><h1>${title}</h1><p class="price">${escapeXml(product.price)}</p>
<button type="button" disabled>Add to bag (demo)</button>${attribution}<p><a href="/demo/">← Back to the shop</a></p></div></main>
</body></html>`;
}

export const demoRoutes = new Hono<AppEnv>()
  .use("*", async (c, next) => {
    if (c.env.PATRON_DEMO !== "on") throw notFound(`No route for ${c.req.method} ${c.req.path}.`);
    await next();
  })
  .get("/token", async (c) => {
    const { account } = queryParams(c, demoTokenQuerySchema);
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
    const productId = decodeURIComponent(c.req.param("file").slice(0, -4));
    const product = await findDemoProduct(c.get("db"), productId);
    const svg = product
      ? placeholderSvg(product.title, product.categoryName ?? product.categoryId, product.categoryId)
      : placeholderSvg(productId, "Patron demo", productId);
    return c.body(svg, 200, {
      "Content-Type": "image/svg+xml; charset=utf-8",
      "Cache-Control": "public, max-age=3600",
      "Access-Control-Allow-Origin": "*",
    });
  })
  .get("/products/:id", async (c) => {
    const product = await findDemoProduct(c.get("db"), c.req.param("id"));
    if (!product) throw notFound(`No product ${c.req.param("id")}.`);
    return c.html(
      productPage({
        id: product.id,
        title: product.title,
        categoryName: product.categoryName ?? product.categoryId,
        price: new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(currentPrice(product)),
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
