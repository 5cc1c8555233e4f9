// Console lists and insights (admin): best customers' shared traits, the filterable customer list.
import * as z from "zod";
import { traitDimensions } from "../core/insights/best-customers.ts";
import { discountSensitivities, lifecycleStages, valueTiers } from "../core/vocabulary.ts";
import { idField, wholeNumberParam } from "../http/fields.schemas.ts";
import { matchKeyNames } from "../identity/match-keys.ts";

export const bestCustomersQuerySchema = z.object({ tier: z.enum(valueTiers).default("top") });

export const bestCustomersResponseSchema = z.object({
  data: z.object({
    tier: z.enum(valueTiers),
    customers: z.number(),
    comparedWith: z.number(),
    traits: z.array(
      z.object({
        dimension: z.enum(traitDimensions),
        value: z.string(),
        label: z.string(),
        topShare: z.number(),
        restShare: z.number(),
        lift: z.number(),
        topCustomers: z.number(),
        restCustomers: z.number(),
        score: z.number(),
        sentence: z.string(),
      }),
    ),
    modelRunAt: z.string().nullable(),
    runId: z.string().nullable(),
    message: z.string().optional(),
  }),
});

export const clvDistributionResponseSchema = z.object({
  data: z.object({
    /** Scored customers counted, and their summed 12-month CLV. */
    customers: z.number().int(),
    clv12: z.number(),
    /** Log-spaced buckets (1-2-5 per decade) from the lowest to the highest held; `to` is exclusive, null when open. */
    buckets: z.array(
      z.object({ from: z.number(), to: z.number().nullable(), customers: z.number().int(), clv12: z.number() }),
    ),
    modelRunAt: z.string().nullable(),
    runId: z.string().nullable(),
    message: z.string().optional(),
  }),
});

/** List sorts: the name ascending, or with a leading "-" descending. */
export const customerSortKeys = ["clvAtStake", "overdueRatio", "probabilityAlive", "expectedNextOrderAt"] as const;
export type CustomerSortKey = (typeof customerSortKeys)[number];
export const customerSorts = customerSortKeys.flatMap((key) => [key, `-${key}`] as const);

export const customerListQuerySchema = z
  .object({
    stage: z.enum(lifecycleStages).optional(),
    valueTier: z.enum(valueTiers).optional(),
    discountSensitivity: z.enum(discountSensitivities).optional(),
    /** A category id, read as every route reads one (and as an audience's filter is saved): trimmed, printable. */
    lapsedCategory: idField(200).optional(),
    sort: z
      .enum(customerSorts as unknown as [string, ...string[]], {
        message: `sort must be one of ${customerSorts.join(", ")}`,
      })
      .default("-clvAtStake"),
    cursor: z.string().min(1).max(1000).optional(),
    limit: wholeNumberParam("limit", 1, 1000).default(100),
    format: z.enum(["json", "csv"]).default("json"),
    /** CSV only: comma-separated match keys to add as columns, among those the deployment enabled. */
    matchKeys: z
      .string()
      .transform((value) => [...new Set(value.split(",").map((name) => name.trim()))].filter(Boolean))
      .pipe(z.array(z.enum(matchKeyNames, { message: `match keys are ${matchKeyNames.join(", ")}` })))
      .optional(),
  })
  .refine((query) => !(query.stage === "lapsed" && query.sort.replace(/^-/, "") === "expectedNextOrderAt"), {
    path: ["sort"],
    message:
      "lapsed customers are not expected to order, so the expectedNextOrderAt sort leaves them out: sort them by another column",
  });

export const listedCustomerSchema = z.object({
  customerId: z.string(),
  stage: z.enum(lifecycleStages),
  valueTier: z.enum(valueTiers),
  discountSensitivity: z.enum(discountSensitivities).nullable(),
  clv12: z.number(),
  clv24: z.number(),
  clvAtStake: z.number(),
  probabilityAlive: z.number(),
  overdueRatio: z.number(),
  expectedNextOrderAt: z.string().nullable(),
  offer: z.string().nullable(),
  offerGuidance: z.string(),
  scoredAt: z.string(),
  purchaseDays: z.number().int().nullable(),
});

export const customerListResponseSchema = z.object({
  data: z.object({
    customers: z.array(listedCustomerSchema),
    sort: z.string(),
    next: z.string().nullable(),
  }),
});

/** What the opaque cursor carries: the sort it belongs to and the last row's sort value and id. */
export const listCursorSchema = z.object({
  s: z.string(),
  v: z.union([z.number(), z.string()]),
  id: z.string(),
});
