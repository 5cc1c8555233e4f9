// A storefront that renders Patron's shelves on its server, with no JavaScript in the browser
// (docs/embedding.md, "Shelves without JavaScript"). Node 20+, no dependencies:
//
//   PATRON_URL=http://127.0.0.1:8787 SHOPPER_TOKEN_SECRET=dev-shopper-secret node examples/server-side-shelf.mjs
//
// then open http://127.0.0.1:3000/?account=demo-full-price (PORT changes the port; 0 picks a free one).
// `?account=` stands in for your login: it is kept in a cookie, and every page signs a short-lived
// shopper token for it. The home page shows "Picked for you" (placement home); each product page
// shows "Goes with this" (placement product). Impressions are posted when a shelf is rendered; a
// click is posted by the product page when the shopper arrives through a shelf's link.
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";

const patronUrl = (process.env.PATRON_URL ?? "http://127.0.0.1:8787").replace(/\/+$/, "");
const secret = process.env.SHOPPER_TOKEN_SECRET ?? "dev-shopper-secret";
/** The whole time a page waits for Patron: past it, the page renders without the shelf. */
const patronTimeoutMs = 1000;

export function signShopperToken(accountId, ttlSeconds = 3600) {
  const now = Math.floor(Date.now() / 1000);
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: String(accountId), iat: now, exp: now + ttlSeconds })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

const bearer = (token) => (token ? { Authorization: `Bearer ${token}` } : {});

/** GET /v1/recommendations for one shelf; null when Patron is slow, down or refuses (the page goes on without it). */
export async function fetchShelf(token, { placement, product, exclude = [], limit = 4 }) {
  const query = new URLSearchParams({ placement, limit: String(limit) });
  if (product) query.set("product", product);
  if (exclude.length) query.set("exclude", exclude.join(","));
  try {
    const response = await fetch(`${patronUrl}/v1/recommendations?${query}`, {
      headers: bearer(token),
      signal: AbortSignal.timeout(patronTimeoutMs),
    });
    return response.ok ? (await response.json()).data : null;
  } catch {
    return null;
  }
}

/** POST /v1/events from the server: JSON, with the shopper's token as the bearer (none for anonymous visitors). */
export async function sendEvents(token, events) {
  try {
    const response = await fetch(`${patronUrl}/v1/events`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...bearer(token) },
      body: JSON.stringify({ events }),
      signal: AbortSignal.timeout(patronTimeoutMs),
    });
    return response.ok ? (await response.json()).data : null;
  } catch {
    return null;
  }
}

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

/**
 * The link from a card to this shop's own product page. `patron_rec` is what the widget adds too (the
 * order carries it for attribution); placement and position tell the product page what was clicked.
 */
function cardLink(item, shelf, position) {
  const query = new URLSearchParams({
    patron_rec: shelf.recommendationId,
    patron_placement: shelf.placement ?? "",
    patron_position: String(position),
  });
  return `/products/${encodeURIComponent(item.id)}?${query}`;
}

/** A shelf as plain HTML: heading, then one link per card with its picture, reason, title and price. */
export function renderShelf(shelf, title) {
  if (!shelf?.items.length) return "";
  const cards = shelf.items
    .map((item, index) => {
      // Only http(s) pictures: anything else is left out rather than put in an attribute.
      const picture = /^https?:\/\//.test(item.imageUrl ?? "")
        ? `<img src="${escapeHtml(item.imageUrl)}" alt="" width="160" height="160" loading="lazy">`
        : "";
      const price =
        item.price < item.listPrice
          ? `<ins>${usd.format(item.price)}</ins> <s>was ${usd.format(item.listPrice)}</s>`
          : usd.format(item.price);
      return `<li><a href="${escapeHtml(cardLink(item, shelf, index + 1))}">${picture}<span>${escapeHtml(item.reason ?? "")}</span> <b>${escapeHtml(item.title)}</b> ${price}</a></li>`;
    })
    .join("");
  return `<section aria-labelledby="shelf-${escapeHtml(shelf.placement)}"><h2 id="shelf-${escapeHtml(shelf.placement)}">${escapeHtml(title)}</h2><ul>${cards}</ul></section>`;
}

/**
 * Impressions for a rendered shelf. A server cannot see what the shopper scrolled to, so this counts
 * shelves rendered, for both arms of the holdout alike; Patron keeps one per recommendation and product.
 */
function impressions(shelf) {
  return (shelf?.items ?? []).map((item, index) => ({
    type: "impression",
    recommendationId: shelf.recommendationId,
    productId: item.id,
    categoryId: item.categoryId,
    placement: shelf.placement ?? undefined,
    position: index + 1,
  }));
}

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title></head><body><header><a href="/">Shop</a></header><main>${body}</main></body></html>`;
}

function accountOf(request, url) {
  const asked = url.searchParams.get("account");
  if (asked !== null) return asked;
  const cookie = (request.headers.cookie ?? "").split(/;\s*/).find((pair) => pair.startsWith("account="));
  return cookie ? decodeURIComponent(cookie.slice("account=".length)) : "";
}

async function handle(request, response) {
  const url = new URL(request.url, "http://shop.local");
  const account = accountOf(request, url);
  const token = account ? signShopperToken(account) : "";
  const headers = {
    "Content-Type": "text/html; charset=utf-8",
    // A personal shelf: never kept by a shared cache.
    "Cache-Control": "private, no-store",
    "Set-Cookie": `account=${encodeURIComponent(account)}; Path=/; HttpOnly; SameSite=Lax`,
  };

  if (url.pathname === "/") {
    const shelf = await fetchShelf(token, { placement: "home", limit: 8 });
    const title = shelf?.customerKnown ? "Picked for you" : "Popular right now";
    response.writeHead(200, headers).end(page("Shop", `<h1>Shop</h1>${renderShelf(shelf, title)}`));
    // After the page is sent: the events never hold it up (sendEvents never rejects).
    sendEvents(token, impressions(shelf));
    return;
  }

  const product = url.pathname.match(/^\/products\/([^/]+)$/);
  if (product) {
    const productId = decodeURIComponent(product[1]);
    const recommendationId = url.searchParams.get("patron_rec");
    // Arrived through a shelf's link: that is the click, sent without waiting for it. Keep
    // recommendationId with the cart for the order.
    if (recommendationId)
      sendEvents(token, [
        {
          type: "click",
          recommendationId,
          productId,
          placement: url.searchParams.get("patron_placement") || undefined,
          position: Number(url.searchParams.get("patron_position")) || undefined,
        },
      ]);
    const shelf = await fetchShelf(token, { placement: "product", product: productId, limit: 4 });
    const body = `<h1>Product ${escapeHtml(productId)}</h1>${renderShelf(shelf, "Goes with this")}`;
    response.writeHead(200, headers).end(page(productId, body));
    sendEvents(token, impressions(shelf));
    return;
  }

  response.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const server = createServer((request, response) => {
    handle(request, response).catch(() => response.writeHead(500).end());
  });
  server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
}
