// Prices in the page's language and the shop's currency, and links that carry the recommendation id.

export type FormatPrice = (amount: number) => string;

/**
 * The page's language, else the browser's; an unknown tag such as `en_US` falls through to
 * the next. The currency stays the shop's; an invalid currency code shows the bare amount.
 */
export function priceFormatter(currency: string): FormatPrice {
  // navigator.language is always a well-formed tag: an invalid currency is what leaves the loop.
  for (const lang of [document.documentElement.lang, navigator.language]) {
    try {
      const format = new Intl.NumberFormat(lang || undefined, { style: "currency", currency });
      return (amount) => format.format(amount);
    } catch {}
  }
  return (amount) => amount.toFixed(2);
}

/**
 * Adds `patron_rec=<id>` so the storefront can pass it on with the order for attribution. Only http(s)
 * links survive: a catalog entry can't turn a card into a `javascript:` link.
 */
export function withRecommendation(url: string | null | undefined, recommendationId: string): string | undefined {
  try {
    const link = new URL(url as string, location.href);
    link.searchParams.set("patron_rec", recommendationId);
    return url && /^https?:$/.test(link.protocol) ? link.href : undefined;
  } catch {}
}
