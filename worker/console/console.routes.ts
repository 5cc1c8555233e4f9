// The console (/console, a Preact single-page app): the same HTML for /console and every deep link
// under it, and its bundle from the static assets (dist/public/console/assets, built by `npm run build`).
// wrangler.toml runs the Worker first for /console and /console/*, so every console response, the
// bundle included, carries the security headers below; no storefront page ever references the bundle.
import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { carriedSessionIds } from "../http/auth.ts";
import { notFound } from "../http/errors.ts";
import { httpsAddress, isPlainHttpOverNetwork } from "../http/transport.ts";

/**
 * Only the console's own files and API: no inline script or style (the app sets no style attributes),
 * no framing, no plugins, no <base> tricks, forms post only to this origin. Images may also come over
 * https: the customer page shows the shelf a shopper sees with the catalog's product images, which a
 * shop usually serves from its own CDN.
 */
export const consoleCsp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: https:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * The app's HTML. `signedOut`: the browser surely holds no session, so the app shows sign-in without
 * asking GET /v1/admin/session, whose 401 the browser's devtools would log as a failed request.
 */
const page = (signedOut: boolean) => `<!doctype html>
<html lang="en"${signedOut ? " data-signed-out" : ""}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Patron console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/assets/console.css">
<script type="module" src="/console/assets/console.js"></script>
</head>
<body>
<div id="app"><noscript>The Patron console needs JavaScript.</noscript></div>
</body>
</html>
`;

/**
 * Whether a request for the page shows the browser holds no session: it sent no session cookie where a
 * SameSite=Strict one would ride along (typed or bookmarked, reloaded, or from the console itself:
 * Sec-Fetch-Site none, same-origin or same-site). A link from another site carries no such cookie, nor
 * does an old browser say where it comes from: then the app asks, as before.
 */
const surelySignedOut = (c: Context<AppEnv>) =>
  carriedSessionIds(c).length === 0 &&
  ["none", "same-origin", "same-site"].includes(c.req.header("Sec-Fetch-Site") ?? "");

const assetFile = /^[a-z0-9-]+\.(?:js|css)$/;

export const consoleRoutes = new Hono<AppEnv>()
  .use("*", async (c, next) => {
    await next();
    c.header("Content-Security-Policy", consoleCsp);
    c.header("X-Frame-Options", "DENY");
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    c.header("Cross-Origin-Opener-Policy", "same-origin");
    // The HTML is never stored; the bundle may be kept by the browser alone and is revalidated each time.
    if (!c.res.headers.get("Cache-Control")) c.header("Cache-Control", "private, no-cache");
  })
  // Over plain http to another machine the console could not sign in nor keep a session (auth.ts): the
  // same address over https instead, so a person typing the host name lands on the page that works.
  // 308 keeps the method; the first answer over https then sets Strict-Transport-Security.
  .use("*", async (c, next) => {
    if (isPlainHttpOverNetwork(c.req.url)) return c.redirect(httpsAddress(c.req.url), 308);
    await next();
  })
  .get("/assets/:file", async (c) => {
    const file = c.req.param("file");
    if (!assetFile.test(file)) throw notFound(`No console file ${file}.`);
    const asset = await c.env.ASSETS.fetch(new URL(`/console/assets/${file}`, c.req.url));
    if (!asset.ok) throw notFound(`No console file ${file}: run \`npm run build\`.`);
    return new Response(asset.body, {
      status: 200,
      headers: {
        "Content-Type": asset.headers.get("Content-Type") ?? "application/octet-stream",
        ...(asset.headers.get("ETag") ? { ETag: asset.headers.get("ETag") as string } : {}),
      },
    });
  })
  .get("*", (c) => {
    c.header("Cache-Control", "no-store");
    return c.html(page(surelySignedOut(c)));
  });
