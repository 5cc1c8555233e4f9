// Wire format of the rule preview and simulation (POST /v1/admin/rules/preview and /simulate): a draft
// rule, checked exactly as POST /v1/admin/rules checks it, with a shopper or a sample size.
import * as z from "zod";
import { ruleStates } from "../core/rules/state.ts";
import { createRuleSchema, isObject } from "./rules.schemas.ts";

/** Shoppers a simulation looks at when the request does not say. */
export const defaultSimulationSample = 200;
/** The most shoppers one simulation looks at: two shelves each, computed in the request. */
export const maxSimulationSample = 1000;

const unknownFields = (issue: z.core.$ZodRawIssue) =>
  issue.code === "unrecognized_keys" ? `unknown field(s): ${issue.keys.join(", ")}` : undefined;

/** The draft rule: required, then every check POST /v1/admin/rules makes (issue paths start with "rule"). */
const draftRule = z.custom<unknown>((value) => value !== undefined, "rule is required").pipe(createRuleSchema);

/** A saved rule the draft is an edit of: the draft replaces it on the "after" shelf instead of adding to it. */
const editedRuleId = z
  .string({ error: "ruleId must be text" })
  .trim()
  .min(1, "ruleId must not be empty")
  .max(100, "ruleId must be at most 100 characters")
  .optional();

/** Said when a preview names neither a customer nor the anonymous visitor. */
const whoToPreview = 'customerId is required (or "anonymous": true for a visitor who is not signed in)';

export const previewRuleSchema = z
  .strictObject(
    {
      rule: draftRule,
      ruleId: editedRuleId,
      customerId: z
        .string({ error: "customerId must be text" })
        .trim()
        .min(1, "customerId must not be empty")
        .max(100, "customerId must be at most 100 characters")
        .optional(),
      /** The shelf of a visitor who is not signed in (the popular shelf), instead of a customer's. */
      anonymous: z.literal(true, { error: "anonymous must be true when given" }).optional(),
    },
    {
      error: (issue) =>
        unknownFields(issue) ??
        'the request body must be a JSON object { "rule": {...}, "customerId": "..." or "anonymous": true, "ruleId"?: "..." }',
    },
  )
  // Also when the draft rule has problems, so they are all reported at once; not when customerId or
  // anonymous failed their own checks (or the body is no object), as these read them.
  .superRefine(
    (input, context) => {
      if (input.customerId === undefined && !input.anonymous)
        context.addIssue({ code: "custom", path: ["customerId"], message: whoToPreview });
      if (input.customerId !== undefined && input.anonymous)
        context.addIssue({ code: "custom", path: ["anonymous"], message: "give customerId or anonymous, not both" });
    },
    {
      when: ({ value, issues }) =>
        isObject(value) && !issues.some((issue) => issue.path?.[0] === "customerId" || issue.path?.[0] === "anonymous"),
    },
  );
export type PreviewRuleInput = z.infer<typeof previewRuleSchema>;

export const simulateRuleSchema = z.strictObject(
  {
    rule: draftRule,
    ruleId: editedRuleId,
    sample: z
      .number({ error: `sample must be a whole number from 1 to ${maxSimulationSample}` })
      .int(`sample must be a whole number from 1 to ${maxSimulationSample}`)
      .min(1, `sample must be a whole number from 1 to ${maxSimulationSample}`)
      .max(maxSimulationSample, `sample must be a whole number from 1 to ${maxSimulationSample}`)
      .default(defaultSimulationSample),
  },
  {
    error: (issue) =>
      unknownFields(issue) ??
      'the request body must be a JSON object { "rule": {...}, "sample": 200, "ruleId"?: "..." }',
  },
);
export type SimulateRuleInput = z.infer<typeof simulateRuleSchema>;

const reasonSchema = z.looseObject({ code: z.string() });

export const shelfItemSchema = z.object({
  rank: z.number(),
  id: z.string(),
  title: z.string(),
  categoryId: z.string(),
  categoryName: z.string(),
  price: z.number(),
  listPrice: z.number(),
  reasons: z.array(reasonSchema),
  reason: z.string(),
});

export const shelfCategorySchema = z.object({
  rank: z.number(),
  id: z.string(),
  name: z.string(),
  reasons: z.array(reasonSchema),
  reason: z.string(),
});

/** Where the draft stands now, and whether it was applied as if it had started (see steer.routes.ts). */
const draftSchedule = {
  /** The draft's state now, as a saved rule's `state`: live, scheduled, ended or disabled. */
  ruleState: z.enum(ruleStates),
  /** True when the draft starts later (scheduled): the "after" shelves apply it as if it had started. */
  asIfStarted: z.boolean(),
};

export const previewResponseSchema = z.object({
  data: z.object({
    /** The customer previewed; null for the anonymous visitor. */
    customerId: z.string().nullable(),
    /** True when the preview is of a visitor who is not signed in (the popular shelf). */
    anonymous: z.boolean(),
    /** Whether the customer has a storefront account: without one they see the popular shelf online. */
    storefrontAccount: z.boolean(),
    changed: z.boolean(),
    /** Whether the catalog has the draft's target (a rule on anything else changes no shelf). */
    targetInCatalog: z.boolean(),
    ...draftSchedule,
    before: z.array(shelfItemSchema),
    after: z.array(shelfItemSchema),
    categories: z.object({ before: z.array(shelfCategorySchema), after: z.array(shelfCategorySchema) }),
  }),
});

export const simulateResponseSchema = z.object({
  data: z.object({
    shoppers: z.number(),
    /** Of `shoppers`, those with a storefront account, who see the shelf online today. */
    storefrontShoppers: z.number(),
    /** Of `storefrontShoppers`, those whose shelf changes: the change shoppers see online today. */
    storefrontAffected: z.number(),
    storefrontAffectedShare: z.number(),
    /** Whether the catalog has the draft's target (a rule on anything else changes no shelf). */
    targetInCatalog: z.boolean(),
    ...draftSchedule,
    affected: z.number(),
    affectedShare: z.number(),
    targetShoppers: z.number(),
    meanRankChange: z.number().nullable(),
    enteredShare: z.number(),
    leftShare: z.number(),
    categoryExposure: z.array(
      z.object({
        categoryId: z.string(),
        /** The catalog's name for it, else its id. */
        categoryName: z.string(),
        before: z.number(),
        after: z.number(),
        change: z.number(),
      }),
    ),
    categoriesLosingExposure: z.array(z.string()),
  }),
});
