// Customer read API: query parameters and the response shape.
import * as z from "zod";
import { trustLevels } from "../core/identity/trust.ts";
import { historyPointKinds } from "../core/profile/profile-history.ts";
import { channels, discountSensitivities, identifierKinds, lifecycleStages, valueTiers } from "../core/vocabulary.ts";
import { noControlCharacters, printable } from "../http/fields.schemas.ts";
import {
  recommendationsQuerySchema,
  recommendationsResponseSchema,
} from "../recommendations/recommendations.schemas.ts";

export const lookupQuerySchema = z.object({
  kind: z.enum(identifierKinds),
  value: z.string().min(1, "value is required").max(254),
});

/** POST /v1/customers/lookup's and /holders' body: the query's two fields, kept out of the URL (and so of logs). */
export const lookupBodySchema = z.strictObject(lookupQuerySchema.shape);

export const customerParamsSchema = z.object({
  // Trimmed as every path id is: a path of only spaces (`/v1/customers/%20`) is a 400, not a 404.
  id: z.string().trim().min(1, "id must not be empty").max(100).regex(printable, `id ${noControlCharacters}`),
});

/** The shelf's size, as GET /v1/recommendations takes it (same limits and defaults). */
export const shelfQuerySchema = recommendationsQuerySchema.pick({ limit: true, categories: true });

const categoryStatSchema = z.object({
  categoryId: z.string(),
  categoryName: z.string().nullable(),
  orders: z.number(),
  purchaseDays: z.number(),
  units: z.number(),
  spend: z.number(),
  lastPurchaseAt: z.string(),
  typicalPricePaid: z.number(),
  discountedShare: z.number(),
  onlineUnits: z.number(),
  storeUnits: z.number(),
});

export const customerResponseSchema = z.object({
  data: z.object({
    customerId: z.string(),
    mergedFrom: z.array(z.string()),
    identities: z.array(
      z.object({
        kind: z.enum(identifierKinds),
        masked: z.string(),
        trust: z.enum(trustLevels),
        shared: z.boolean(),
      }),
    ),
    orders: z.array(
      z.object({
        id: z.string(),
        channel: z.enum(channels),
        storeId: z.string().nullable(),
        placedAt: z.string(),
        total: z.number(),
        discountTotal: z.number(),
        currency: z.string(),
        lines: z.array(
          z.object({
            productId: z.string(),
            categoryId: z.string(),
            /** The catalog's title and category name; null when the catalog holds no such product or category. */
            productTitle: z.string().nullable(),
            categoryName: z.string().nullable(),
            quantity: z.number(),
            unitPrice: z.number(),
            listPrice: z.number(),
          }),
        ),
      }),
    ),
    profile: z
      .object({
        modelsFittedAt: z.string(),
        modelsSource: z.enum(["fitted", "default"]),
        clv12: z.number(),
        clv24: z.number(),
        probabilityAlive: z.number().min(0).max(1),
        probabilityPurchase90d: z.number().min(0).max(1),
        expectedPurchases90d: z.number(),
        expectedOrderValue: z.number(),
        cadence: z.object({
          expectedIntervalDays: z.number(),
          daysSinceLast: z.number(),
          overdueRatio: z.number(),
          nextExpectedAt: z.string(),
          regularity: z.number().int().min(1),
        }),
        stage: z.enum(lifecycleStages),
        stageReason: z.string(),
        oneTimeReturnDays: z.object({ usual: z.number(), late: z.number(), sinceFirstPurchase: z.number() }).nullable(),
        valueTier: z.enum(valueTiers),
        discountSensitivity: z.enum(discountSensitivities),
        discountedShare: z.number(),
        populationDiscountedShare: z.number(),
        offerGuidance: z.enum(["no_incentive", "modest", "deal_driven"]),
        channelMix: z.object({
          shares: z.partialRecord(z.enum(channels), z.number()),
          primary: z.enum(channels).nullable(),
        }),
        preferredWeekday: z.object({ slot: z.number().int().min(0).max(6), share: z.number() }).nullable(),
        preferredHour: z.object({ slot: z.number().int().min(0).max(23), share: z.number() }).nullable(),
        categories: z.array(
          z.object({
            categoryId: z.string(),
            expectedIntervalDays: z.number(),
            overdueRatio: z.number(),
            nextExpectedAt: z.string(),
            probabilityActive: z.number().min(0).max(1),
            lapsed: z.boolean(),
            priceBand: z.enum(["budget", "mid", "premium"]).nullable(),
            pricePercentile: z.number().nullable(),
          }),
        ),
      })
      .nullable(),
    summary: z
      .object({
        orders: z.number(),
        purchaseDays: z.number(),
        firstOrderAt: z.string(),
        lastOrderAt: z.string(),
        spend: z.number(),
        channels: z.record(z.enum(channels), z.number()),
        units: z.number(),
        discountedUnits: z.number(),
        discountedShare: z.number(),
        categories: z.array(categoryStatSchema),
      })
      .nullable(),
  }),
});
export type CustomerResponse = z.infer<typeof customerResponseSchema>;

export const customerHistoryResponseSchema = z.object({
  data: z.object({
    customerId: z.string(),
    asOf: z.string(),
    /** Orders the history was computed from, and whether older ones were left out (more than the route reads). */
    orders: z.number().int(),
    truncated: z.boolean(),
    modelsFittedAt: z.string().nullable(),
    thresholds: z
      .object({ fadingBelowProbabilityAlive: z.number(), lapsedBelowProbabilityAlive: z.number() })
      .nullable(),
    points: z.array(
      z.object({
        at: z.string(),
        kind: z.enum(historyPointKinds),
        probabilityAlive: z.number().min(0).max(1),
        expectedIntervalDays: z.number(),
        daysSinceLast: z.number(),
        overdueRatio: z.number(),
        stage: z.enum(lifecycleStages),
        stageReason: z.string(),
        valueTier: z.enum(valueTiers),
        clv12: z.number(),
      }),
    ),
    skipped: z.number().int(),
    message: z.string().optional(),
  }),
});
export type CustomerHistoryResponse = z.infer<typeof customerHistoryResponseSchema>;

/** GET /v1/customers/:id/shelf: the GET /v1/recommendations answer for the customer's account, without an id. */
export const customerShelfResponseSchema = z.object({
  data: recommendationsResponseSchema.shape.data.omit({ recommendationId: true, degraded: true }).extend({
    customerId: z.string(),
    /** False when the customer has no storefront account: signed out, the storefront shows them the popular shelf. */
    storefrontAccount: z.boolean(),
  }),
});
export type CustomerShelfResponse = z.infer<typeof customerShelfResponseSchema>;
