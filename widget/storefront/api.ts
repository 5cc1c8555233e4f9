// Loads a shelf within one time budget (data-timeout): the shopper's picks, else, when they did not come,
// the popular shelf (cached on an earlier page, or fetched without a token in what is left of the
// budget), else nothing. An answer with no
// items is nothing to show, not a reason to fall back (buy-again has nothing for a shopper with nothing
// due), unless it is degraded (validShelf). Never rejects. Inside, null, undefined and false all mean no
// shelf (a fetch that failed, a cache that could not be read). From a fetch, null is an answer that asking
// again without the token would not change (not a shelf, or a 400: the shelf's own settings refused),
// undefined an answer refusing the token (or another error status), false no answer at all (the network,
// an origin the API does not allow, the time budget), which asking again would not change either.
import { configureEvents } from "./events.ts";
import { withRecommendation } from "./format.ts";
import type { Item, Shelf } from "./types.ts";

const cacheKey = "patron:popular:v1";
const cacheMaxAgeMs = 24 * 3600_000;

/**
 * What data-debug explains (v1-debug.js): each answer, as a copy (a 401 for an expired token, a 200 for
 * a token whose account Patron does not know …), or the error met: the fetch's (AbortError past the
 * time budget, TypeError when the browser refused the origin or the network failed) or attachShadow's.
 */
export type Report = (problem: Response | Error) => void;

/**
 * The shelf's page context as GET /v1/recommendations parameters, from mount attributes or fetch options,
 * each trimmed (a template's spaces would make the API refuse a placement) and left out when empty.
 */
export const contextQuery = (context: Record<string, unknown>): string =>
  ["placement", "product", "exclude"]
    .map((name) => {
      // An array of ids (fetch's exclude) joins with commas.
      const value = String(context[name] || "").trim();
      return value ? `&${name}=${encodeURIComponent(value)}` : "";
    })
    .join("");

/**
 * Keeps the answer only if it has the shape the cards need (null: not a shelf); drops items that don't
 * (an id, a price that is a number of 0 or more), and items without a safe (http or https) link: a card is a link to the product. A degraded answer with
 * no items (the API's database down and no last good shelf kept) is no answer: the cached one stands in.
 */
function validShelf(body: { data?: Shelf } | null): Shelf | null {
  const shelf = body?.data;
  const items = shelf?.items?.filter?.(
    // A price that is not a number (null would compare as 0) is no card: it would show as free.
    (item: Item) =>
      typeof item?.id === "string" && item.price === +item.price && item.price >= 0 && withRecommendation(item.url, ""),
  );
  return typeof shelf?.recommendationId === "string" && items && (items[0] || !shelf.degraded)
    ? { ...shelf, items }
    : null;
}

async function fetchShelf(url: string, timeoutMs: number, report?: Report): Promise<Shelf | null | undefined | false> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetch(url, { signal: controller.signal });
    // Every answer, a copy for v1-debug.js: a shelf for an unknown shopper is explained too.
    report?.(response.clone());
    if (response.ok) return validShelf(await response.json());
    if (response.status === 400) return null;
  } catch (error) {
    report?.(error as Error);
    return false; // No answer came: the network, the origin refused, or the time budget.
  } finally {
    clearTimeout(timer);
  }
}

// Storage access throws where it is blocked (privacy modes, sandboxed frames): both helpers swallow that.
function readCachedPopular(): Shelf | null | undefined {
  try {
    const cached = JSON.parse(localStorage.getItem(cacheKey) as string); // Stored after validShelf.
    return Date.now() - cached.at < cacheMaxAgeMs ? cached.data : null;
  } catch {}
}

function cachePopular(shelf?: Shelf | null | false): void {
  try {
    if (shelf && shelf.items.length) localStorage.setItem(cacheKey, JSON.stringify({ at: Date.now(), data: shelf }));
  } catch {}
}

/** Set once this page load has asked for the popular shelf in the background. */
let refreshed = false;

/**
 * Called once a page's shelves have come: when the cached popular shelf is missing or past its max age,
 * asks for the context-free anonymous one in the background (the same for every visitor, so a CDN can
 * serve it; as many items as any page can need) and caches it, at most once per page load. So pages whose
 * shelves all carry a context or a token fill the cache too, never with their own answers: those are for
 * one product or one shopper.
 */
export function refreshPopular(api: string, timeoutMs: number): void {
  if (refreshed || readCachedPopular()) return;
  refreshed = true;
  try {
    localStorage.length; // Throws where storage is blocked: nothing could keep the answer, so no request.
  } catch {
    return;
  }
  fetchShelf(`${api}/v1/recommendations?limit=48`, timeoutMs).then(cachePopular);
}

/**
 * `context` is the page context: a mount point's attributes or fetch's options (contextQuery). The
 * answer keeps at most `limit` items, never the context's product or excluded ids: a cached fallback
 * was not asked with the context. The token rides in the query string, not an Authorization header,
 * so the GET stays a CORS "simple" request: no preflight before the shelf renders.
 */
export async function loadShelf(
  api: string,
  token: string,
  context: Record<string, unknown>,
  limit: number,
  timeoutMs: number,
  report?: Report,
): Promise<Shelf | null> {
  const deadline = Date.now() + timeoutMs;
  configureEvents(api, token); // The cards' beacons go to the same API with the same token.
  const url = `${api}/v1/recommendations?limit=${limit}${contextQuery(context)}`;
  // Nothing here is cached: the popular shelf is, by refreshPopular, with as many items as any page needs
  // (a page's own anonymous answer holds only what its shelves asked for).
  const shelf = await fetchShelf(token ? `${url}&token=${encodeURIComponent(token)}` : url, timeoutMs, report);
  const found =
    shelf ||
    readCachedPopular() ||
    // Asked again without the token only when the API refused the token (a 401; a token over its 4,096
    // characters is a 400 too, which the anonymous shelf outlives): not when no answer came at all.
    (token && (shelf === undefined || token[4096]) && deadline > Date.now()
      ? await fetchShelf(url, deadline - Date.now(), report)
      : null);
  const skip = `${context.product ?? ""},${context.exclude ?? ""}`.split(",").map((id) => id.trim());
  const items = found ? found.items.filter((item) => !skip.includes(item.id)).slice(0, limit) : [];
  return items[0] ? { ...(found as Shelf), items } : null;
}
