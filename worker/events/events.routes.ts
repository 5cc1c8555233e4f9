// POST /v1/events: impressions and clicks beaconed by the storefront widget, and product views.
// Beacons arrive as `text/plain` (a CORS "simple" request, so no preflight) carrying JSON; plain
// `application/json` works too. Events carry the recommendation id, whose signed arm is what is stored
// (an `arm` field sent by the client is ignored); the optional `token` field (or a Bearer header)
// links the events to the shopper's customer; it is not required.
import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { bearerToken } from "../http/auth.ts";
import { parseOrThrow, readJson } from "../http/validate.ts";
import { shopperAccountKey } from "../identity/identity.keys.ts";
import { customerIdByKey } from "../identity/identity.repo.ts";
import { armOfRecommendationId } from "../recommendations/recommendation-id.ts";
import { type EventRow, insertEvents } from "./events.repo.ts";
import { type EventInput, type EventsResponse, eventsRequestSchema } from "./events.schemas.ts";

const maxBodyBytes = 64 * 1024;

/**
 * The customer behind a shopper token, so views and clicks feed that customer's browse signals. A
 * missing, invalid or expired token leaves the event anonymous: a beacon never fails for it.
 */
async function customerOfToken(c: Context<AppEnv>, token: string | null | undefined): Promise<string | null> {
  if (!token) return null;
  const shopper = await shopperAccountKey(token, c.env, c.var.now);
  if (!shopper.ok || !shopper.accountKey) return null;
  return (await customerIdByKey(c.var.db, shopper.accountKey))?.customerId ?? null;
}

/**
 * The key that makes a repeat a no-op: an impression counts once per recommendation and item; a click
 * once per recommendation, item and minute (a double click is one click, a return visit later is another).
 * Views without a recommendation are not deduplicated.
 */
export function eventDedupeKey(event: EventInput, now: Date): string {
  const target = `${event.recommendationId ?? ""}|${event.productId ?? ""}|${event.categoryId ?? ""}`;
  const minute = Math.floor(now.getTime() / 60_000);
  switch (event.type) {
    case "impression":
      return `impression|${target}`;
    case "click":
      return `click|${target}|${minute}`;
    case "view":
      return event.recommendationId ? `view|${target}|${minute}` : `view|${crypto.randomUUID()}`;
  }
}

export const eventsRoutes = new Hono<AppEnv>().post("/", async (c) => {
  const payload = parseOrThrow(
    eventsRequestSchema,
    await readJson(c.req.raw, maxBodyBytes, "Request body must be JSON (sent as text/plain or application/json)."),
    "request body",
  );
  const batch = "events" in payload ? payload.events : [payload];
  const now = c.get("now");
  const customerId = await customerOfToken(
    c,
    ("events" in payload ? payload.token : undefined) ??
      batch.find((event) => event.token)?.token ??
      bearerToken(c.req.header("Authorization")),
  );
  const arms = new Map<string, string | null>();
  for (const id of new Set(batch.map((event) => event.recommendationId).filter((id): id is string => !!id))) {
    arms.set(id, await armOfRecommendationId(id, c.env.SHOPPER_TOKEN_SECRET));
  }
  const rows: EventRow[] = batch.map((event) => ({
    type: event.type,
    recommendationId: event.recommendationId ?? null,
    // The arm comes from the signed recommendation id, never from what the client says.
    arm: event.recommendationId ? (arms.get(event.recommendationId) ?? null) : null,
    customerId,
    productId: event.productId ?? null,
    categoryId: event.categoryId ?? null,
    at: now.toISOString(),
    dedupeKey: eventDedupeKey(event, now),
  }));

  const accepted = await insertEvents(c.get("db"), rows);
  c.header("Cache-Control", "no-store");
  return c.json({ data: { accepted, duplicates: rows.length - accepted } } satisfies EventsResponse, 202);
});
