// GET /v1/recommendations: query parameters and the response contract.
import * as z from "zod";

export const recommendationsQuerySchema = z.object({
  limit: z.coerce.number().int().min(1, "limit must be at least 1").max(48, "limit must be at most 48").default(8),
  categories: z.coerce.number().int().min(0).max(20, "categories must be at most 20").default(4),
  token: z.string().max(4096).optional(),
});

const reasonSchema = z.looseObject({ code: z.string() });

export const recommendationsResponseSchema = z.object({
  data: z.object({
    recommendationId: z.string(),
    arm: z.enum(["personalized", "holdout", "anonymous"]),
    customerKnown: z.boolean(),
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
