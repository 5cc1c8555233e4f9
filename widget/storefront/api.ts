// Loads the shelf within one time budget (data-timeout): the shopper's picks, else the popular shelf
// (cached from an earlier anonymous answer, or fetched without a token in what is left of the budget),
// else nothing. Never rejects.
import type { Item, Shelf } from "./types.ts";

const cacheKey = "patron:popular:v1";
const cacheMaxAgeMs = 24 * 3600_000;

/** Keeps the answer only if it has the shape the cards need; drops items that don't. */
function validShelf(body: { data?: Shelf } | null): Shelf | null {
  const shelf = body?.data;
  const items = shelf?.items?.filter?.((item: Item) => typeof item?.id === "string" && item.price >= 0);
  return typeof shelf?.recommendationId === "string" && items?.length ? { ...shelf, items } : null;
}

async function fetchShelf(api: string, token: string, limit: number, timeoutMs: number): Promise<Shelf | null> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    // The token rides in the query string, not an Authorization header, so the GET stays a CORS
    // "simple" request: no preflight round trip before the shelf can render.
    const response = await fetch(
      `${api}/v1/recommendations?limit=${limit}${token ? `&token=${encodeURIComponent(token)}` : ""}`,
      { signal: controller.signal },
    );
    return response.ok ? validShelf(await response.json()) : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

// Storage access throws where it is blocked (privacy modes, sandboxed frames): both helpers swallow that.
function readCachedPopular(): Shelf | null {
  try {
    const cached = JSON.parse(localStorage.getItem(cacheKey) as string); // Stored after validShelf.
    return Date.now() - cached.at < cacheMaxAgeMs ? cached.data : null;
  } catch {
    return null;
  }
}

function cachePopular(shelf: Shelf | null): Shelf | null {
  try {
    if (shelf) localStorage.setItem(cacheKey, JSON.stringify({ at: Date.now(), data: shelf }));
  } catch {}
  return shelf;
}

export async function loadShelf(api: string, token: string, limit: number, timeoutMs: number): Promise<Shelf | null> {
  const deadline = Date.now() + timeoutMs;
  const shelf = await fetchShelf(api, token, limit, timeoutMs);
  if (!token) return cachePopular(shelf) ?? readCachedPopular();
  return (
    shelf ??
    readCachedPopular() ??
    (deadline > Date.now() ? cachePopular(await fetchShelf(api, "", limit, deadline - Date.now())) : null)
  );
}
