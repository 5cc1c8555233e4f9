// Wire format of saved audiences: the create and update bodies (the filters are GET
// /v1/admin/customers' own, the webhook URL and match keys are checked against this deployment's
// settings) and the response shapes.
import * as z from "zod";
import { discountSensitivities, lifecycleStages, valueTiers } from "../core/vocabulary.ts";
import { idField, printable } from "../http/fields.schemas.ts";
import { type MatchKeyName, matchKeyNames } from "../identity/match-keys.ts";
import { maxWebhookUrlLength, webhookUrlProblem } from "./webhook-url.ts";

/** Saved audiences per deployment: each costs the nightly job a bounded walk of its members. */
export const maxAudiences = 100;

const unknownFields = (what: string) => (issue: z.core.$ZodRawIssue) =>
  issue.code === "unrecognized_keys" ? `unknown field(s) in ${what}: ${issue.keys.join(", ")}` : undefined;

/** The customer-list filters an audience is saved with (all optional: none is every scored customer). */
export const audienceFiltersSchema = z.strictObject(
  {
    stage: z.enum(lifecycleStages, { error: `filters.stage must be one of ${lifecycleStages.join(", ")}` }).optional(),
    valueTier: z.enum(valueTiers, { error: `filters.valueTier must be one of ${valueTiers.join(", ")}` }).optional(),
    discountSensitivity: z
      .enum(discountSensitivities, {
        error: `filters.discountSensitivity must be one of ${discountSensitivities.join(", ")}`,
      })
      .optional(),
    lapsedCategory: idField(200).optional(),
  },
  { error: (issue) => unknownFields("filters")(issue) ?? 'filters must be an object such as { "stage": "fading" }' },
);
export type AudienceFilters = z.infer<typeof audienceFiltersSchema>;

export interface AudienceSettings {
  /** AUDIENCE_WEBHOOKS_ALLOW_LOCAL is "on". */
  allowLocalWebhooks: boolean;
  /** The match keys EXPORT_MATCH_KEYS enables. */
  enabledMatchKeys: ReadonlySet<MatchKeyName>;
}

function webhookUrlField(settings: AudienceSettings) {
  return z
    .string({ error: "webhookUrl must be a URL (https://…) or null" })
    .trim()
    .max(maxWebhookUrlLength, `webhookUrl must be at most ${maxWebhookUrlLength} characters`)
    .regex(printable, "webhookUrl must not contain control characters")
    .superRefine((value, ctx) => {
      const problem = webhookUrlProblem(value, settings.allowLocalWebhooks);
      if (problem) ctx.addIssue({ code: "custom", message: `webhookUrl ${problem}` });
    })
    .nullable();
}

function matchKeysField(settings: AudienceSettings) {
  return z
    .array(z.enum(matchKeyNames, { error: `matchKeys are among ${matchKeyNames.join(", ")}` }), {
      error: "matchKeys must be a list of match key names",
    })
    .max(matchKeyNames.length)
    .superRefine((names, ctx) => {
      for (const [index, name] of names.entries())
        if (!settings.enabledMatchKeys.has(name))
          ctx.addIssue({
            code: "custom",
            path: [index],
            message: `${name} is not enabled on this deployment (EXPORT_MATCH_KEYS)`,
          });
    })
    .transform((names) => [...new Set(names)]);
}

const nameField = z
  .string({ error: (issue) => (issue.input === undefined ? "name is required" : "name must be text") })
  .trim()
  .min(1, "name must not be empty")
  .max(100, "name must be at most 100 characters")
  .regex(printable, "name must not contain control characters");

export function createAudienceSchema(settings: AudienceSettings) {
  return z.strictObject(
    {
      name: nameField,
      filters: audienceFiltersSchema.default({}),
      webhookUrl: webhookUrlField(settings).optional(),
      matchKeys: matchKeysField(settings).default([]),
    },
    { error: (issue) => unknownFields("the body")(issue) ?? "the body must be a JSON object" },
  );
}

export function updateAudienceSchema(settings: AudienceSettings) {
  return z
    .strictObject(
      {
        name: nameField.optional(),
        filters: audienceFiltersSchema.optional(),
        webhookUrl: webhookUrlField(settings).optional(),
        matchKeys: matchKeysField(settings).optional(),
        /** true: replace the signing secret; the new one is in this answer only. */
        rotateSecret: z.literal(true, { error: "rotateSecret must be true when given" }).optional(),
      },
      { error: (issue) => unknownFields("the body")(issue) ?? "the body must be a JSON object" },
    )
    .refine((body) => Object.keys(body).length > 0, {
      message: "nothing to change: send name, filters, webhookUrl, matchKeys or rotateSecret",
    });
}

export const audienceParamsSchema = z.object({ id: idField(100) });

const lastDeliverySchema = z.object({
  at: z.string(),
  runId: z.string(),
  outcome: z.enum(["delivered", "failed", "no_changes"]),
  statusCode: z.number().nullable(),
  error: z.string().nullable(),
  joined: z.number(),
  left: z.number(),
});

export const audienceSchema = z.object({
  id: z.string(),
  name: z.string(),
  filters: audienceFiltersSchema,
  /** Whether the catalog has the lapsing category now; null without one. */
  lapsedCategoryInCatalog: z.boolean().nullable(),
  webhookUrl: z.string().nullable(),
  matchKeys: z.array(z.enum(matchKeyNames)),
  size: z.number().nullable(),
  sizedAt: z.string().nullable(),
  lastDelivery: lastDeliverySchema.nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type AudienceView = z.infer<typeof audienceSchema>;

export const audienceResponseSchema = z.object({ data: audienceSchema });
export const audienceWithSecretResponseSchema = z.object({
  data: audienceSchema.extend({ secret: z.string().startsWith("whsec_") }),
});
export const audienceListResponseSchema = z.object({ data: z.object({ audiences: z.array(audienceSchema) }) });

/** One page POSTed to an audience's webhook. */
export const audienceWebhookPayloadSchema = z.object({
  audience: z.object({ id: z.string(), name: z.string() }),
  runId: z.string(),
  page: z.number(),
  pages: z.number(),
  joined: z.array(z.record(z.string(), z.union([z.string(), z.number(), z.null()]))),
  left: z.array(z.string()),
});
