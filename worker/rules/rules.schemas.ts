// Wire format of the merchandiser rules API: rule bodies (create and partial update), the checks that
// span several fields, and the response shapes. Messages are written for the merchandiser reading them
// in the console, so each one names the field and says what would make it right.
import * as z from "zod";
import { ruleStates } from "../core/rules/state.ts";
import { channelPreferences, ruleActions, ruleTargetTypes } from "../core/rules/types.ts";
import { discountSensitivities, lifecycleStages, valueTiers } from "../core/vocabulary.ts";
import {
  idField,
  instantField,
  instantRule,
  noControlCharacters,
  printable,
  printableText,
  wholeNumberParam,
} from "../http/fields.schemas.ts";

/** The discount switches may target every item with this id. */
export const everyItem = "*";
export const maxPinSlot = 50;

const listed = (values: readonly string[]) => values.join(", ");

/** A segment field: one allowed value or a non-empty list of them. */
function segmentField<const T extends readonly string[]>(field: string, values: T) {
  const one = z.enum(values, { error: `segment.${field} must be one of ${listed(values)}` });
  return z
    .union([one, z.array(one).min(1, `segment.${field} must list at least one value`).max(values.length)], {
      error: `segment.${field} must be one of ${listed(values)}, or a list of them`,
    })
    .optional();
}

const unknownFields = (issue: z.core.$ZodRawIssue) =>
  issue.code === "unrecognized_keys" ? `unknown field(s): ${issue.keys.join(", ")}` : undefined;

export const segmentSchema = z.strictObject(
  {
    stage: segmentField("stage", lifecycleStages),
    valueTier: segmentField("valueTier", valueTiers),
    channelPreference: segmentField("channelPreference", channelPreferences),
    discountSensitivity: segmentField("discountSensitivity", discountSensitivities),
  },
  { error: (issue) => unknownFields(issue) ?? 'segment must be an object such as { "stage": ["fading"] }' },
);

const instant = (field: string) =>
  instantField(`${field} ${instantRule}`).transform((value) => new Date(value).toISOString());

const required = (field: string, what: string) => (issue: { input: unknown }) =>
  issue.input === undefined ? `${field} is required` : `${field} must be ${what}`;

/** Every field of a rule, each checked on its own; `ruleSchema` adds the checks between fields. */
const ruleFields = {
  name: z
    .string({ error: required("name", "text") })
    .trim()
    .min(1, "name must not be empty")
    .max(200, "name must be at most 200 characters")
    .regex(printableText, "name must not contain control characters other than tab and line breaks"),
  action: z.enum(ruleActions, { error: `action must be one of ${ruleActions.join(", ")}` }),
  targetType: z.enum(ruleTargetTypes, { error: `targetType must be one of ${listed(ruleTargetTypes)}` }),
  targetId: z
    .string({ error: required("targetId", "a category or product id") })
    .trim()
    .min(1, "targetId must not be empty")
    .max(200, "targetId must be at most 200 characters")
    .regex(printable, `targetId ${noControlCharacters}`),
  strength: z
    .number({ error: "strength must be a number, e.g. 0.5" })
    .positive("strength must be greater than 0")
    .max(1000, "strength must be at most 1000")
    .nullish(),
  slot: z
    .number({ error: `slot must be a whole number from 1 to ${maxPinSlot}` })
    .int(`slot must be a whole number from 1 to ${maxPinSlot}`)
    .min(1, `slot must be a whole number from 1 to ${maxPinSlot}`)
    .max(maxPinSlot, `slot must be a whole number from 1 to ${maxPinSlot}`)
    .nullish(),
  segment: segmentSchema.nullish(),
  startsAt: instant("startsAt").nullish(),
  endsAt: instant("endsAt").nullish(),
  enabled: z.boolean({ error: "enabled must be true or false" }),
};

const strengthActions: readonly string[] = ["boost", "bury"];
const discountActions: readonly string[] = ["allow_discounts", "hide_discounts"];

interface RuleShape {
  action: string;
  targetId: string;
  strength?: number | null;
  slot?: number | null;
  startsAt?: string | null;
  endsAt?: string | null;
}

interface RuleProblem {
  path: string[];
  message: string;
  /** The fields the check reads: it is not reported when one of them failed its own check. */
  reads: (keyof RuleShape)[];
}

/** The checks between fields, run on a new rule and on a rule as it would be after an update. */
export function ruleProblems(rule: RuleShape): RuleProblem[] {
  const problems: RuleProblem[] = [];
  const { action } = rule;
  const problem = (field: keyof RuleShape, message: string, reads: (keyof RuleShape)[]) =>
    problems.push({ path: [field], message, reads });
  if (strengthActions.includes(action) && rule.strength == null)
    problem("strength", `strength is required when action is ${action}`, ["action", "strength"]);
  if (!strengthActions.includes(action) && rule.strength != null)
    problem("strength", `strength only applies when action is boost or bury, not ${action}`, ["action", "strength"]);
  if (action === "pin" && rule.slot == null) problem("slot", "slot is required when action is pin", ["action", "slot"]);
  if (action !== "pin" && rule.slot != null)
    problem("slot", `slot only applies when action is pin, not ${action}`, ["action", "slot"]);
  if (rule.targetId === everyItem && !discountActions.includes(action))
    problem(
      "targetId",
      `targetId "${everyItem}" (every item) is only allowed when action is allow_discounts or hide_discounts`,
      ["action", "targetId"],
    );
  if (rule.startsAt && rule.endsAt && Date.parse(rule.endsAt) <= Date.parse(rule.startsAt))
    problem("endsAt", "endsAt must be after startsAt", ["startsAt", "endsAt"]);
  return problems;
}

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Adds the checks between fields (of the rule `whole` makes of the parsed body). They run even when a
 * field failed its own check, so a body's problems are all reported at once (zod skips a refinement
 * after a failed field unless it is given `when`); a check that reads a failed field is left out, as
 * it would be about a value that is not there. Only a body that is not an object skips them.
 */
function withRuleChecks<T extends z.ZodType>(schema: T, whole: (value: z.output<T>) => RuleShape) {
  return schema.superRefine(
    (value, context) => {
      const failed = new Set(context.issues.map((issue) => issue.path?.[0]));
      for (const { reads, ...problem } of ruleProblems(whole(value)))
        if (!reads.some((field) => failed.has(field))) context.addIssue({ code: "custom", ...problem });
    },
    { when: (payload) => isObject(payload.value) },
  );
}

const ruleObject = z.strictObject(
  { ...ruleFields, enabled: ruleFields.enabled.default(true) },
  { error: (issue) => unknownFields(issue) ?? "the request body must be a JSON object describing the rule" },
);

/** POST /v1/admin/rules. */
export const createRuleSchema = withRuleChecks(ruleObject, (rule) => rule);
export type CreateRuleInput = z.infer<typeof createRuleSchema>;

/** PATCH /v1/admin/rules/:id: any subset of the fields; `null` clears an optional one. */
const versionMessage = "version must be a whole number from 1: the rule's version the change was made from";
export const updateRuleSchema = z
  .strictObject(
    {
      name: ruleFields.name.optional(),
      action: ruleFields.action.optional(),
      targetType: ruleFields.targetType.optional(),
      targetId: ruleFields.targetId.optional(),
      strength: ruleFields.strength,
      slot: ruleFields.slot,
      segment: ruleFields.segment,
      startsAt: ruleFields.startsAt,
      endsAt: ruleFields.endsAt,
      enabled: ruleFields.enabled.optional(),
      /**
       * The version the change was made from (the rule as the editor read it): when the rule has
       * another version now, someone changed it since, and the PATCH is a 409 that overwrites nothing.
       */
      version: z
        .number({ error: versionMessage })
        .int({ error: versionMessage })
        .min(1, { error: versionMessage })
        .optional(),
    },
    { error: (issue) => unknownFields(issue) ?? "the request body must be a JSON object with the fields to change" },
  )
  .refine((patch) => Object.keys(patch).some((field) => field !== "version"), {
    message: "send at least one field to change",
  });
export type UpdateRuleInput = z.infer<typeof updateRuleSchema>;

/**
 * A PATCH of `current`: the patch's fields, each checked on its own, and the rule as it would be after
 * the change, checked as a new rule is (switching action to pin needs a slot, and the old strength
 * cleared with null), in one pass, so every problem is reported at once.
 */
export const updateRuleSchemaFor = (current: RuleShape) =>
  withRuleChecks(updateRuleSchema, (patch) => ({ ...current, ...patch }));

/** A rule's id in the path, read as every path id is: trimmed, and blank or with a control character refused. */
export const ruleParamsSchema = z.object({ id: idField(100) });

export const listRulesQuerySchema = z.object({
  enabled: z
    .enum(["true", "false"], { error: "enabled must be true or false" })
    .transform((value) => value === "true")
    .optional(),
});

/** GET /v1/admin/rules/targets: what the catalog has that a rule's target may mean. */
export const ruleTargetsQuerySchema = z.object({
  type: z.enum(ruleTargetTypes, { error: `type must be ${ruleTargetTypes.join(" or ")}` }),
  q: z.string().max(200, "q must be at most 200 characters").regex(printable, `q ${noControlCharacters}`).default(""),
  limit: wholeNumberParam("limit", 1, 20).default(8),
});

/**
 * A person's name for the rule history, as `field` gives it (null: not named): trimmed, at most 200
 * characters, no control characters, nor the direction controls and zero-width spaces that could make
 * one name read as another in the history (joiners, which emoji and Persian spelling need, stay).
 */
const personName = (field: string) =>
  z
    .string()
    .trim()
    .max(200, `${field} must be at most 200 characters`)
    .regex(printable, `${field} ${noControlCharacters}`)
    .regex(
      /^[^\u200B\u200E\u200F\u202A-\u202E\u2060\u2066-\u2069\u061C\uFEFF]*$/u,
      `${field} must not contain direction controls or zero-width spaces`,
    )
    .optional()
    .transform((value) => value || null);

/** Who made a change, as the optional X-Patron-User header names them. */
export const changedBySchema = personName("X-Patron-User");

/** The name a console user gives at sign-in, for the rule history (as X-Patron-User would name them). */
export const consoleUserSchema = personName("name");

export const changeKinds = ["create", "update", "disable", "enable", "delete"] as const;
export type ChangeKind = (typeof changeKinds)[number];

const segmentValue = <const T extends readonly string[]>(values: T) =>
  z.union([z.enum(values), z.array(z.enum(values))]).optional();

export const ruleSchema = z.object({
  id: z.string(),
  name: z.string(),
  action: z.enum(ruleActions),
  targetType: z.enum(ruleTargetTypes),
  targetId: z.string(),
  strength: z.number().nullable(),
  slot: z.number().nullable(),
  segment: z
    .object({
      stage: segmentValue(lifecycleStages),
      valueTier: segmentValue(valueTiers),
      channelPreference: segmentValue(channelPreferences),
      discountSensitivity: segmentValue(discountSensitivities),
    })
    .nullable(),
  startsAt: z.string().nullable(),
  endsAt: z.string().nullable(),
  enabled: z.boolean(),
  version: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type RuleView = z.infer<typeof ruleSchema>;

export const ruleVersionSchema = z.object({
  ruleId: z.string(),
  version: z.number(),
  change: z.enum(changeKinds),
  snapshot: ruleSchema,
  changedBy: z.string(),
  changedAt: z.string(),
});
export type RuleVersionView = z.infer<typeof ruleVersionSchema>;

/**
 * A rule as the routes answer it: with `targetInCatalog`, whether the catalog the shelf ranks has the
 * target now (an active product, or a category with one; always true for `*`), and `state`, where it
 * stands now (live, scheduled, ended or disabled: core/rules/state.ts). A rule on a target the catalog
 * lacks, or with a window already over, is kept (the product may arrive later; the end may be moved)
 * and does nothing until then. Neither is part of a version's snapshot: they change with the catalog
 * and the clock, not with the rule.
 */
export const ruleStatusSchema = ruleSchema.extend({
  targetInCatalog: z.boolean(),
  /** The catalog's name for the target now (a product's title, a category's name); null when it lacks it, or for `*`. */
  targetName: z.string().nullable(),
  state: z.enum(ruleStates),
});
export type RuleStatusView = z.infer<typeof ruleStatusSchema>;

export const ruleResponseSchema = z.object({ data: ruleStatusSchema });
export const rulesListResponseSchema = z.object({ data: z.array(ruleStatusSchema) });
export const ruleWithHistoryResponseSchema = z.object({
  data: ruleStatusSchema.extend({ versions: z.array(ruleVersionSchema) }),
});
export const ruleVersionsResponseSchema = z.object({ data: z.array(ruleVersionSchema) });
