// GET /v1/recommendations: query parameters and the response contract.
import * as z from "zod";
import { maxPlacementLength, placementPattern } from "../core/placement.ts";
import { idField, wholeNumberParam } from "../http/fields.schemas.ts";

/** At most this many ids in `exclude=` (the cart and the shelves above, on one page). */
export const maxExcludeIds = 100;
/** At most this many characters in the whole `exclude=` value, separators and spaces included. */
const maxExcludeCharacters = 16_000;

export { maxPlacementLength };

/** The longest shelf one answer holds, and how many categories an answer lists unless asked otherwise. */
export const maxShelfItems = 48;
export const defaultShelfCategories = 4;

export const recommendationsQuerySchema = z.object({
  limit: wholeNumberParam("limit", 1, maxShelfItems).default(8),
  categories: wholeNumberParam("categories", 0, 20).default(defaultShelfCategories),
  token: z.string().max(4096).optional(),
  /** The shelf's name: `home`, `product`, `cart`, `buy-again` or any other lowercase name. */
  placement: z
    .string()
    // One message for a name that is too long: the pattern, shared with the widget, checks the length too.
    .max(maxPlacementLength, { message: `placement must be at most ${maxPlacementLength} characters`, abort: true })
    .regex(placementPattern, "placement must be lowercase letters, digits, - or _, starting with a letter or digit")
    .optional(),
  /** The product page's product id: never shown; what is bought with it comes first. */
  product: idField(128).optional(),
  /** Comma-separated product ids the page already shows (the cart, the shelves above): never shown. */
  exclude: z
    .string()
    // Bounds the split, with room for the spaces and empty entries a template leaves between 100 ids of
    // 128 characters (", " after each); the ids themselves are counted and checked below.
    .max(maxExcludeCharacters, `exclude must be at most ${maxExcludeCharacters} characters`)
    .transform((value) =>
      value
        .split(",")
        .map((id) => id.trim())
        .filter((id) => id !== ""),
    )
    .pipe(z.array(idField(128)).max(maxExcludeIds, `exclude must list at most ${maxExcludeIds} ids`))
    .default([]),
});

const reasonSchema = z.looseObject({ code: z.string() });

export const recommendationsResponseSchema = z.object({
  data: z.object({
    recommendationId: z.string(),
    arm: z.enum(["personalized", "holdout", "anonymous"]),
    customerKnown: z.boolean(),
    /** The placement asked for, or null. */
    placement: z.string().nullable(),
    categories: z.array(
      z.object({
        id: z.string(),
        name: z.string(),
        score: z.number(),
        reasons: z.array(reasonSchema),
        reason: z.string(),
      }),
    ),
    items: z.array(
      z.object({
        id: z.string(),
        title: z.string(),
        url: z.string().nullable(),
        imageUrl: z.string().nullable(),
        price: z.number(),
        listPrice: z.number(),
        categoryId: z.string(),
        reasons: z.array(reasonSchema),
        reason: z.string(),
      }),
    ),
    /** True when D1 failed and this is the last good popular shelf (or no items): never cached. */
    degraded: z.boolean().optional(),
  }),
});
export type RecommendationsResponse = z.infer<typeof recommendationsResponseSchema>;
