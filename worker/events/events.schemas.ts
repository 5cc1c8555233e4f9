// Request and response shapes for POST /v1/events: widget beacons (impressions, clicks) and product views.
import * as z from "zod";
import { idField } from "../http/fields.schemas.ts";
import { maxRecommendationIdLength } from "../recommendations/recommendation-id.ts";
import { recommendationsQuerySchema } from "../recommendations/recommendations.schemas.ts";

const id = idField(128);

export const eventTypeSchema = z.enum(["impression", "click", "view"]);

export const eventSchema = z
  .object({
    type: eventTypeSchema,
    recommendationId: idField(maxRecommendationIdLength).optional(),
    arm: idField(32).optional(),
    productId: id.optional(),
    categoryId: id.optional(),
    /** The shelf's placement, as asked of GET /v1/recommendations (`home`, `product`, `buy-again` …). */
    placement: recommendationsQuerySchema.shape.placement,
    /** The card's 1-based position in its shelf. */
    position: z.number().int("position must be a whole number").min(1, "position starts at 1").max(1000).optional(),
    /**
     * The shopper this event is from. A token may ride in the body because `sendBeacon` cannot set an
     * Authorization header; an event's own token wins over the batch's.
     */
    token: z.string().max(4096).optional(),
  })
  .refine((event) => event.type === "view" || event.recommendationId !== undefined, {
    message: "Impressions and clicks need a recommendationId.",
    path: ["recommendationId"],
  })
  .refine((event) => event.productId !== undefined || event.categoryId !== undefined, {
    message: "An event needs a productId or a categoryId.",
    path: ["productId"],
  });

export const maxEventsPerRequest = 100;

/** A batch `{ events: [...], token? }` whose token applies to every event without its own. */
export const eventsBatchSchema = z.object({
  events: z.array(eventSchema).min(1).max(maxEventsPerRequest),
  token: z.string().max(4096).optional(),
});

/** One event, or a batch. */
export const eventsRequestSchema = z.union([eventsBatchSchema, eventSchema]);

/**
 * The schema a body is checked against: a batch when it has `events`, else one event. Checking the
 * one it means (rather than the union) names the field at fault in a 400, not just "Invalid input".
 */
export function eventsRequestSchemaOf(body: unknown): typeof eventsBatchSchema | typeof eventSchema {
  return typeof body === "object" && body !== null && "events" in body ? eventsBatchSchema : eventSchema;
}

export const eventsResponseSchema = z.object({
  data: z.object({
    /** Events recorded by this request. */
    accepted: z.number().int().nonnegative(),
    /** Valid events already recorded earlier (a repeated impression, a double click, an anonymous view repeated the same day): not stored twice. */
    duplicates: z.number().int().nonnegative(),
    /**
     * Events not recorded because their recommendationId does not count for them: not a current
     * Patron id, served to another shopper, not listing the product, or past EVENT_ATTRIBUTION_DAYS.
     */
    ignored: z.number().int().nonnegative(),
    /** Events from a shopper whose data was erased (suppressed until an admin lifts it): dropped. */
    suppressed: z.number().int().nonnegative(),
  }),
});

export type EventType = z.infer<typeof eventTypeSchema>;
export type EventInput = z.infer<typeof eventSchema>;
export type EventsRequest = z.infer<typeof eventsRequestSchema>;
export type EventsResponse = z.infer<typeof eventsResponseSchema>;
