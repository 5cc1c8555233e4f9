// The last popular (anonymous) shelf that was computed, kept for when D1 fails: in isolate memory and
// in the Cache API, both for far longer than the 60 s the shelf is publicly cached. The recommendations
// route answers it with `"degraded": true` instead of an error. The copy is the shelf's public view
// (no recommendation id: each answer gets its own).

export interface ShelfView {
  arm: string;
  customerKnown: boolean;
  categories: unknown[];
  items: { id: string }[];
}

/** How long a last-good copy may be served when D1 is failing. */
export const lastGoodSeconds = 24 * 60 * 60;
const cacheName = "patron-last-good-shelf";
/** Shelves kept in memory, one per (limit, categories) pair asked for; the oldest is dropped past this. */
const maxInMemory = 32;

const memory = new Map<string, { view: ShelfView; at: number }>();

const cacheUrl = (key: string) => `https://patron.internal/last-good-shelf/${encodeURIComponent(key)}`;

async function openCache(): Promise<Cache | null> {
  try {
    return typeof caches === "undefined" ? null : await caches.open(cacheName);
  } catch {
    return null;
  }
}

/** Keeps `view` as the last good shelf for `key`; the Cache API write is returned so it can be waited on. */
export function rememberShelf(key: string, view: ShelfView, now: Date): Promise<void> {
  memory.delete(key);
  memory.set(key, { view, at: now.getTime() });
  if (memory.size > maxInMemory) memory.delete(memory.keys().next().value as string);
  return (async () => {
    const cache = await openCache();
    if (!cache) return;
    const response = new Response(JSON.stringify({ view, at: now.getTime() }), {
      headers: { "Content-Type": "application/json", "Cache-Control": `max-age=${lastGoodSeconds}` },
    });
    await cache.put(cacheUrl(key), response).catch(() => undefined);
  })();
}

function fits(entry: { view: ShelfView; at: number } | undefined, now: Date) {
  return entry && now.getTime() - entry.at < lastGoodSeconds * 1000 ? entry.view : null;
}

/**
 * The last good shelf for `key`, else the newest one kept for another size (the caller trims it), or
 * null when there is none: memory first, then the Cache API. Never throws.
 */
export async function lastGoodShelf(key: string, now: Date): Promise<ShelfView | null> {
  const exact = fits(memory.get(key), now);
  if (exact) return exact;
  const cache = await openCache();
  if (cache) {
    try {
      const response = await cache.match(cacheUrl(key));
      if (response) {
        const stored = fits((await response.json()) as { view: ShelfView; at: number }, now);
        if (stored) return stored;
      }
    } catch {
      // An unreadable copy is no copy.
    }
  }
  const newest = [...memory.values()].sort((a, b) => b.at - a.at)[0];
  return fits(newest, now);
}

/** Drops this isolate's copies and the cached ones for `keys` (tests). */
export async function forgetLastGoodShelves(keys: readonly string[] = []): Promise<void> {
  memory.clear();
  const cache = await openCache();
  if (cache) await Promise.all(keys.map((key) => cache.delete(cacheUrl(key))));
}
