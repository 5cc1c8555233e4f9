// patron("on", "addToCart", fn): an "Add to cart" button on every card. Built as its own module,
// /widget/v1-cart.js, and imported only by pages that register an addToCart hook, so the others don't
// download it; its styles are in the shelf's stylesheet. It takes the shelf's `h` (Preact's
// createElement, from v1.js) rather than bundling a second copy of Preact.
import type { h as createElement } from "preact";

/**
 * The card's button, out of the tab order: the row's arrow keys reach it (shelf.tsx). Its name starts
 * with the visible text (WCAG 2.5.3) and says which card: every card has one.
 */
export function cartButton(h: typeof createElement, label: string | undefined, title: string, add: () => void) {
  const text = label || "Add to cart"; // data-cart-label, else English.
  return h("button", { type: "button", tabIndex: -1, "aria-label": `${text}: ${title}`, onClick: add }, text);
}
