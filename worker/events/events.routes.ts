// POST /v1/events: impressions and clicks beaconed by the storefront widget, and product views, stored
// in the events database (EVENTS_DB); a known customer's new views and clicks also add to their browse
// rollup (customer_browse: in the main database, or in the customer's shard when SHARD_COUNT > 0),
// which the shelf reads.
// Beacons arrive as `text/plain` (a CORS "simple" request, so no preflight) carrying JSON; plain
// `application/json` works too. Events carry the recommendation id, whose signed arm is what is stored
// (an `arm` field sent by the client is ignored) when the id was served to the event's shopper, listed
// the product and is within EVENT_ATTRIBUTION_DAYS; otherwise the event is ignored. The optional
// `token` (per event, per batch, or a Bearer header) links events to the shopper's customer.
import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { bearerToken } from "../http/auth.ts";
import { clientAddress, limitShopper } from "../http/rate-limit.ts";
import { parseOrThrow, readJson } from "../http/validate.ts";
import { foldedEraKey, shopperAccountKey, suppressionKeysOf } from "../identity/identity.keys.ts";
import { ownersOf } from "../recommendations/attribution.repo.ts";
import { attributedArm, attributionSettings } from "../recommendations/attribution.ts";
import { shardCount } from "../shards/shards.ts";
import { type BrowseStore, shardedBrowseStore } from "../shards/shopper.ts";
import { writesPausedAt } from "../shards/write-pause.ts";
import { suppressedKeys } from "../suppressions/suppressions.repo.ts";
import { addBrowse, browseDaysOf, type EventRow, insertEvents } from "./events.repo.ts";
import { type EventInput, type EventsRequest, type EventsResponse, eventsRequestSchemaOf } from "./events.schemas.ts";

const maxBodyBytes = 64 * 1024;

interface Shopper {
  accountKey: string | null;
  customerId: string | null;
  /** The customer and those merged into it: ids served to any of them count for this shopper. */
  family: string[];
}

/**
 * The shopper behind each distinct token, so views and clicks feed that customer's browse signals and
 * attributions are checked against who sends them. A missing, invalid or expired token leaves its
 * events anonymous: a beacon never fails for it.
 */
async function shoppersOf(c: Context<AppEnv>, tokens: Set<string>, store: BrowseStore) {
  const accountKeys = new Map<string, string | null>();
  // An account's key, and the key it had while account ids were NFKC-folded where that differs.
  const folded = new Map<string, string>();
  for (const token of tokens) {
    const shopper = await shopperAccountKey(token, c.env, c.var.now);
    if (shopper.ok && shopper.accountKey) await limitShopper(c, "events", shopper.accountKey);
    if (shopper.ok && shopper.accountKey && shopper.foldedAccountKey)
      folded.set(shopper.accountKey, shopper.foldedAccountKey);
    accountKeys.set(token, shopper.ok ? shopper.accountKey : null);
  }
  const keys = [...accountKeys.values()].filter((key): key is string => !!key);
  const [owners, onList] = await Promise.all([
    store.owners(keys),
    suppressedKeys(c.var.db, suppressionKeysOf(keys.map((key) => ({ key, foldedKey: folded.get(key) })))),
  ]);
  // The accounts whose key, or folded key, an erasure put on the list.
  const suppressed = new Set(
    keys.filter((key) => onList.has(key) || (folded.has(key) && onList.has(foldedEraKey(folded.get(key) ?? "")))),
  );
  const shoppers = new Map<string, Shopper>();
  for (const [token, accountKey] of accountKeys) {
    const owner = accountKey ? owners.get(accountKey) : undefined;
    shoppers.set(token, { accountKey, customerId: owner?.customerId ?? null, family: owner?.family ?? [] });
  }
  return { shoppers, suppressed };
}

/**
 * Where shoppers are found and their browsing is added: the one D1 database, or with SHARD_COUNT > 0
 * the customer shards (worker/shards/shopper.ts). Suppressions stay in D1 in both. While customer
 * writes on D1 are paused for a migration's last pass, browse days are not added (the events are
 * recorded as always).
 */
function browseStoreOf(c: Context<AppEnv>): BrowseStore {
  if (shardCount(c.env) > 0) return shardedBrowseStore(c.env);
  const db = c.var.db;
  return {
    owners: (keys) => ownersOf(db, keys),
    addBrowse: async (days) => {
      if ((await writesPausedAt(db)) === null) await addBrowse(db, days);
    },
  };
}

/**
 * The key that makes a repeat a no-op: an impression counts once per recommendation and product; a click
 * once per recommendation, product and minute (a double click is one click, a return visit later is
 * another). The product is what the id is checked against (an impression or click without one is
 * ignored); the category the event claims is not in the key, so varying it cannot count a card twice.
 * A view is keyed by what was viewed (the product, or the category when there is no product), not by
 * the recommendation or category it claims: an anonymous view (`anonymousViewer` is the keyed hash of
 * the client's address) counts once per viewer, item and UTC day, so a reloading or scripted page
 * cannot grow the table by varying the other fields; a known customer's view counts once per item and
 * minute.
 */
export function eventDedupeKey(event: EventInput, now: Date, anonymousViewer?: string, customerId?: string): string {
  // The trailing `|` keeps the keys of events sent without a category as they were.
  const target = `${event.recommendationId ?? ""}|${event.productId ?? ""}|`;
  const minute = Math.floor(now.getTime() / 60_000);
  switch (event.type) {
    case "impression":
      return `impression|${target}`;
    case "click":
      return `click|${target}|${minute}`;
    case "view": {
      const item = event.productId !== undefined ? `p|${event.productId}` : `c|${event.categoryId ?? ""}`;
      if (anonymousViewer !== undefined)
        return `view|anon|${anonymousViewer}|${item}|${now.toISOString().slice(0, 10)}`;
      return customerId ? `view|customer|${customerId}|${item}|${minute}` : `view|${crypto.randomUUID()}`;
    }
  }
}

/**
 * A keyed hash (HMAC-SHA-256 with IDENTITY_HASH_SECRET) of the client's address: anonymous views are
 * told apart by it, and no address is stored.
 */
async function anonymousViewerKey(c: Context<AppEnv>): Promise<string> {
  const address = clientAddress(c);
  if (!address) return "";
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(c.env.IDENTITY_HASH_SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const signature = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`address:${address}`));
  return [...new Uint8Array(signature).slice(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export const eventsRoutes = new Hono<AppEnv>().post("/", async (c) => {
  const body = await readJson(
    c.req.raw,
    maxBodyBytes,
    "Request body must be JSON (sent as text/plain or application/json).",
  );
  const payload: EventsRequest = parseOrThrow(eventsRequestSchemaOf(body), body, "request body");
  const batch = "events" in payload ? payload.events : [payload];
  const now = c.get("now");
  // Each event is attributed by its own token; the batch token (or a Bearer header) covers the rest.
  const fallbackToken = ("events" in payload ? payload.token : undefined) ?? bearerToken(c.req.header("Authorization"));
  const tokenOf = (event: EventInput) => event.token ?? fallbackToken ?? null;
  const store = browseStoreOf(c);
  const { shoppers, suppressed: suppressedAccounts } = await shoppersOf(
    c,
    new Set(batch.map(tokenOf).filter((token): token is string => !!token)),
    store,
  );
  const settings = attributionSettings(c.env);
  // Views with no known shopper are deduplicated per (hashed) client address, item and UTC day.
  let anonymousViewer: string | undefined;
  const rows: EventRow[] = [];
  let ignored = 0;
  let suppressed = 0;
  for (const event of batch) {
    const token = tokenOf(event);
    const shopper = token ? shoppers.get(token) : undefined;
    // An erased shopper's events are dropped until an admin lifts the suppression.
    if (shopper?.accountKey && suppressedAccounts.has(shopper.accountKey)) {
      suppressed++;
      continue;
    }
    let arm: string | null = null;
    if (event.recommendationId) {
      // The arm comes from the signed recommendation id, never from what the client says, and only
      // when the id was served to this shopper, listed this product and is within its window.
      arm = await attributedArm(
        event.recommendationId,
        {
          claimant: {
            customerIds: shopper?.family ?? [],
            accountKeys: shopper?.accountKey ? [shopper.accountKey] : [],
          },
          itemIds: event.productId ? [event.productId] : [],
          at: now,
          windowDays: settings.eventWindowDays,
        },
        settings.secrets,
      );
      if (!arm) {
        ignored++;
        continue;
      }
    }
    if (!shopper?.customerId && event.type === "view") anonymousViewer ??= await anonymousViewerKey(c);
    rows.push({
      type: event.type,
      recommendationId: event.recommendationId ?? null,
      arm,
      customerId: shopper?.customerId ?? null,
      productId: event.productId ?? null,
      categoryId: event.categoryId ?? null,
      placement: event.placement ?? null,
      position: event.position ?? null,
      at: now.toISOString(),
      dedupeKey: shopper?.customerId
        ? eventDedupeKey(event, now, undefined, shopper.customerId)
        : eventDedupeKey(event, now, anonymousViewer),
    });
  }

  // The events database decides what is new; only new views and clicks reach the browse rollups. A
  // failure between the two writes leaves an event without its rollup (a resend is a duplicate):
  // browsing is at worst undercounted, never counted twice.
  const { inserted, erased } = await insertEvents(c.var.eventsDb, rows);
  await store.addBrowse(browseDaysOf(inserted));
  const accepted = inserted.length;
  c.header("Cache-Control", "no-store");
  // Events of a shopper erased while this request ran are dropped as an erased shopper's are.
  return c.json(
    {
      data: { accepted, duplicates: rows.length - accepted - erased, ignored, suppressed: suppressed + erased },
    } satisfies EventsResponse,
    202,
  );
});
