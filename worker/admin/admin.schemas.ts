// Admin API (console and operators): nightly job runs, the stage-transition feed, current models.
import * as z from "zod";
import { discountSensitivities, lifecycleStages, valueTiers } from "../core/vocabulary.ts";
import { idField, instantField, instantRule, wholeNumberParam } from "../http/fields.schemas.ts";
import { recommendationsQuerySchema } from "../recommendations/recommendations.schemas.ts";

export const startNightlySchema = z
  .strictObject({
    asOf: instantField().optional(),
    pageSize: z.number().int().min(10).max(5000).optional(),
    /** Customers per audience webhook POST (default 500). */
    audiencePageSize: z.number().int().min(1).max(1000).optional(),
  })
  .default({});

export const startNightlyQuerySchema = z.object({ wait: z.enum(["0", "1", "true", "false"]).optional() });

/** A run id as any path id: trimmed, not blank, no control character (a bad one is a 400, not an unknown run). */
export const runParamsSchema = z.object({ id: idField(100) });

export const recentRunsQuerySchema = z.object({ limit: wholeNumberParam("limit", 1, 50).default(10) });

export const transitionsQuerySchema = z.object({
  since: z.iso.datetime({ offset: true, message: `since ${instantRule}` }),
  after: wholeNumberParam("after", 0, Number.MAX_SAFE_INTEGER).default(0),
  limit: wholeNumberParam("limit", 1, 10_000).default(1000),
});

export const transitionSummaryQuerySchema = z.object({
  since: z.iso.datetime({ offset: true, message: `since ${instantRule}` }),
  recent: wholeNumberParam("recent", 1, 100).default(10),
});

export const transitionSchema = z.object({
  id: z.number(),
  customerId: z.string(),
  from: z.string().nullable(),
  to: z.string(),
  at: z.string(),
  runId: z.string(),
});

export const transitionSummaryResponseSchema = z.object({
  data: z.object({
    since: z.string(),
    /** Every stage change since `since`. */
    changes: z.number(),
    /** The changes by kind, most first; `from` null is a customer's first score. */
    kinds: z.array(z.object({ from: z.string().nullable(), to: z.string(), changes: z.number() })),
    /** The newest changes, newest first. */
    recent: z.array(transitionSchema),
  }),
});

export const transitionsResponseSchema = z.object({
  data: z.object({ transitions: z.array(transitionSchema), next: z.number().nullable() }),
});
export const jobRunSchema = z.object({
  runId: z.string(),
  status: z.string(),
  /** The instant the run fitted and scored as of; null on runs recorded before it was kept. */
  asOf: z.string().nullable(),
  processed: z.number(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  detail: z.unknown().nullable(),
  error: z.string().nullable(),
});
export const jobRunResponseSchema = z.object({ data: jobRunSchema });
export const jobRunsResponseSchema = z.object({ data: z.object({ runs: z.array(jobRunSchema) }) });

export const segmentQuerySchema = z.object({
  stage: z.enum(lifecycleStages).optional(),
  valueTier: z.enum(valueTiers).optional(),
  discountSensitivity: z.enum(discountSensitivities).optional(),
  limit: wholeNumberParam("limit", 1, 1000).default(100),
  offset: wholeNumberParam("offset", 0, Number.MAX_SAFE_INTEGER).default(0),
});

export const segmentResponseSchema = z.object({
  data: z.object({
    customers: z.array(
      z.object({
        customerId: z.string(),
        clv12: z.number(),
        clv24: z.number(),
        probabilityAlive: z.number(),
        stage: z.enum(lifecycleStages),
        valueTier: z.enum(valueTiers),
        discountSensitivity: z.string().nullable(),
        scoredAt: z.string(),
      }),
    ),
    summary: z.array(
      z.object({
        stage: z.enum(lifecycleStages),
        valueTier: z.enum(valueTiers),
        customers: z.number(),
        clv12: z.number(),
      }),
    ),
  }),
});

/** Days GET /v1/admin/holdout reads back when no `since` is given (EVENT_RETENTION_DAYS keeps at least this much). */
export const defaultHoldoutWindowDays = 30;

const sinceMessage = `since ${instantRule}, or start`;
export const holdoutQuerySchema = z.object({
  /**
   * Where the results start: an ISO 8601 instant, or `start` for the first holdout event kept (the whole
   * experiment: the fixed start the always-valid verdict is for). Default: 30 days back, a moving start.
   */
  since: z
    .union([z.literal("start", { message: sinceMessage }), z.iso.datetime({ offset: true, message: sinceMessage })])
    .optional(),
  by: z.enum(["day", "week"], { message: "by must be day or week" }).default("day"),
  /** Only the shelves of this placement count (as sent with events: `home`, `product`, `buy-again` …). */
  placement: recommendationsQuerySchema.shape.placement,
});

const interval = z.tuple([z.number(), z.number()]);
const measured = z.object({ value: z.number().nullable(), ci95: interval.nullable() });
const intervalsSchema = z.object({
  impressionsPerShopper: measured,
  clickThroughRate: measured,
  attributedOrdersPerShopper: measured,
  conversion: measured,
  revenuePerShopper: measured,
});
const periodArmSchema = z
  .object({
    shoppers: z.number(),
    impressions: z.number(),
    clicks: z.number(),
    clickThroughRate: z.number().nullable(),
    attributedOrders: z.number(),
    conversion: z.number().nullable(),
    revenuePerShopper: z.number().nullable(),
  })
  .nullable();

/** One arm's counts: recommendations seen, impressions, clicks and the orders attributed to them. */
const armResultSchema = z.object({
  arm: z.string(),
  recommendations: z.number(),
  customers: z.number(),
  impressions: z.number(),
  clicks: z.number(),
  clickThroughRate: z.number().nullable(),
  attributedOrders: z.number(),
  attributedRevenue: z.number(),
});

export const holdoutResponseSchema = z.object({
  data: z.object({
    since: z.string(),
    /**
     * The first event kept (EVENT_RETENTION_DAYS) of a shelf served in an arm, of this placement: where
     * the experiment's results begin and what `since=start` reads from; null before any.
     */
    began: z.string().nullable(),
    /**
     * True when `began` is within a day of the retention's edge (EVENT_RETENTION_DAYS): the experiment's
     * first events are no longer kept, so `since=start` moves forward each day, as a moving window does.
     */
    startTrimmed: z.boolean(),
    /** The placement the results are filtered to, or null for all. */
    placement: z.string().nullable(),
    /** The share of known shoppers held out now (HOLDOUT_SHARE, or its default 0.1). */
    holdoutShare: z.number(),
    /**
     * When HOLDOUT_SHARE is 0 after shoppers were held out (the experiment stopped): the last event kept
     * of a held-out shelf, where the results end; null while the holdout runs, or before any.
     */
    ended: z.string().nullable(),
    arms: z.array(
      armResultSchema.extend({
        /** Known shoppers in the arm and the intervals (personalized and holdout arms only). */
        shoppers: z.number().optional(),
        intervals: intervalsSchema.optional(),
      }),
    ),
    lift: z.object({
      clickThroughRate: z.number().nullable(),
      /** Attributed orders per recommendation seen (not per shopper), with its 95% interval. */
      ordersPerRecommendation: z.number().nullable(),
      ordersPerRecommendationCi95: interval.nullable(),
      intervals: intervalsSchema,
    }),
    /** Orders attributed to recommendations whose widget reported no event in the window: in no arm. */
    withoutEvents: z.object({ attributedOrders: z.number(), attributedRevenue: z.number() }),
    verdict: z.object({
      metric: z.literal("conversion"),
      decided: z.boolean(),
      winner: z.enum(["personalized", "holdout"]).nullable(),
      /** Personalized minus holdout conversion with its always-valid 95% interval, which decides the verdict. */
      difference: z.object({ value: z.number().nullable(), ci95: interval.nullable() }).nullable(),
      shoppersNeeded: z.number().nullable(),
      moreShoppersNeeded: z.number().nullable(),
      text: z.string(),
    }),
    overTime: z.object({
      by: z.enum(["day", "week"]),
      periods: z.array(z.object({ period: z.string(), personalized: periodArmSchema, holdout: periodArmSchema })),
    }),
    placements: z.array(
      z.object({
        placement: z.string().nullable(),
        arms: z.array(armResultSchema),
      }),
    ),
  }),
});
