// The demo storefront's product page (/demo/products/:id), drawn from the catalog row: the product,
// an "Add to bag" that keeps the recommendation id the shopper came with, and a "Goes with this"
// shelf that names its placement and the page's product, as a storefront's template would print it.
// Same head, demo bar and header as the static pages in widget/demo/.
import { currentPrice } from "../core/ranking/items.ts";
import type { DemoProduct } from "./demo.repo.ts";

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

export interface ProductPageInput extends DemoProduct {
  categoryName: string;
  /** `patron_rec` of the link the shopper followed, shown so the demo makes attribution visible. */
  recommendationId: string | null;
}

function priceHtml(product: DemoProduct): string {
  const price = currentPrice(product);
  if (price >= product.listPrice) return `<p class="price">${usd.format(price)}</p>`;
  return `<p class="price"><ins>${usd.format(price)}</ins> <s><span class="visually-hidden">was </span>${usd.format(product.listPrice)}</s></p>`;
}

export function productPage(product: ProductPageInput): string {
  const title = escapeHtml(product.title);
  const id = encodeURIComponent(product.id);
  const image = `/demo/images/${id}.svg`;
  // What the bag keeps of the product (shop.js); an attribute value, so escaped as a whole.
  const forBag = escapeHtml(
    JSON.stringify({
      id: product.id,
      title: product.title,
      price: usd.format(currentPrice(product)),
    }),
  );
  const attribution = product.recommendationId
    ? `<p class="note">Opened from recommendation <code>${escapeHtml(product.recommendationId)}</code>. The bag keeps this id, and the storefront sends it as <code>recommendationId</code> on the order, so the sale is attributed.</p>`
    : "";
  const buy = product.inStock
    ? `<button type="button" class="button" id="add" data-product="${forBag}">Add to bag</button>`
    : `<button type="button" class="button" disabled>Out of stock</button>`;
  return shopPage(
    `${title} · Northwind &amp; Co. · Patron demo storefront`,
    `<article class="product">
<img src="${image}" alt="${title}" width="400" height="400">
<div>
<p class="eyebrow">${escapeHtml(product.categoryName)}</p>
<h1>${title}</h1>
${priceHtml(product)}
${buy}
<p id="added" role="status"></p>
${attribution}
</div>
</article>
<div class="shelf" data-patron="goes-with" data-placement="product" data-product="${escapeHtml(product.id)}" data-limit="6" data-title="Goes with this" data-title-anonymous="Goes with this"></div>`,
    `${product.inStock ? 'northwind.addToBag(document.getElementById("add"));' : ""}northwind.loadWidget();`,
  );
}

/** The page for a product id the catalog does not have (a 404): where to go instead, in the shop's frame. */
export function productNotFoundPage(id: string): string {
  return shopPage(
    "Product not found · Northwind &amp; Co. · Patron demo storefront",
    `<h1>Product not found</h1>
<p>The shop has no product <code>${escapeHtml(id)}</code>. It may have been taken out of the catalog, or the link may be cut short.</p>
<p><a class="button" href="/demo/">Back to the shop</a></p>`,
    "",
  );
}

/** A demo storefront page: the head, demo bar and header of widget/demo/, then `main` and `script`. */
function shopPage(title: string, main: string, script: string): string {
  return `<!doctype html>
<html lang="en-US">
<head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>${title}</title>
<link rel="stylesheet" href="/demo/shop.css">
<link rel="stylesheet" href="/widget/v1.css">
<script>window.patron = window.patron || function () { (patron.q = patron.q || []).push(arguments); };</script>
<script src="/demo/shop.js"></script>
</head>
<body>
<section class="demo-bar" aria-label="Demo controls">
<label for="shopper">Viewing the shop as</label>
<select id="shopper">
<option value="demo-full-price">Full-price web shopper</option>
<option value="demo-store-loyal">Store loyalty-card shopper (also has a web login)</option>
<option value="demo-fading">Fading regular</option>
<option value="demo-new">Brand-new shopper</option>
<option value="anonymous">Anonymous visitor</option>
</select>
<span id="persona" class="persona"></span>
</section>
<script>northwind.demoBar();</script>
<header class="top">
<a class="brand" href="/demo/">Northwind &amp; Co.</a>
<nav aria-label="Shop"><a href="/demo/">Home</a><a href="/demo/#departments">Departments</a><a href="/demo/cart">Bag (<span id="bag-count">0</span>)</a></nav>
<div class="account" id="greeting">Sign in</div>
</header>
<script>northwind.header();</script>
<main>
${main}
</main>
<footer class="bottom"><p>Northwind &amp; Co. is a demo shop for Patron. Products, prices and shoppers are generated.</p></footer>
<script>${script}</script>
</body>
</html>`;
}
