// Merchandiser rules API (admin key), mounted at /v1/admin/rules: create, list, read with history,
// partial update, disable/enable, delete, and the catalog's categories or products a target may mean.
// Every change is recorded as a new version with who made it
// (a deleted rule's history stays readable at /:id/versions); the
// recommendations route reads rules through liveRulesFor (rules.repo.ts), not through these routes.
import type { Context } from "hono";
import { Hono } from "hono";
import { doubleCheck } from "../core/rules/same-effect.ts";
import { ruleState } from "../core/rules/state.ts";
import type { AppEnv } from "../env.ts";
import { requireAdminKey } from "../http/auth.ts";
import { ApiError, notFound } from "../http/errors.ts";
import { defaultMaxBodyBytes, jsonBody, notJsonBody, parseOrThrow, queryParams, readJson } from "../http/validate.ts";
import {
  type CatalogView,
  catalogTargets,
  catalogView,
  createRule,
  deleteRule,
  findRule,
  listRules,
  type RuleFields,
  ruleFields,
  type SaveOutcome,
  saveRule,
  type Twin,
  versionsOf,
} from "./rules.repo.ts";
import {
  type ChangeKind,
  changedBySchema,
  createRuleSchema,
  listRulesQuerySchema,
  type RuleStatusView,
  type RuleView,
  ruleParamsSchema,
  ruleTargetsQuerySchema,
  updateRuleSchemaFor,
} from "./rules.schemas.ts";
import { steerRoutes } from "./steer.routes.ts";
import { nearestTargets } from "./targets.ts";

type RulesContext = Context<AppEnv>;

/** Who made a change: X-Patron-User, else the name the console session was signed in with, else "admin". */
function changeBy(c: RulesContext) {
  const header = parseOrThrow(changedBySchema, c.req.header("X-Patron-User"), "X-Patron-User header");
  return { changedBy: header ?? c.var.consoleUser ?? "admin", now: c.var.now };
}

async function existingRule(c: RulesContext) {
  const { id } = parseOrThrow(ruleParamsSchema, c.req.param(), "path");
  const rule = await findRule(c.var.db, id);
  if (!rule) throw notFound(`No rule with id ${id}.`);
  return rule;
}

/**
 * The rule saved, or the 409 of a write that was refused: another edit got to the rule first, or the
 * rule would do exactly what another live or scheduled rule does (core/rules/same-effect.ts, checked
 * in the write itself): a create sent twice, or an edit that makes two rules one, would double a rule
 * the merchandiser sees once. Nothing was written either way.
 */
function savedOrThrow(c: RulesContext, outcome: SaveOutcome) {
  if (outcome.kind === "conflict")
    throw new ApiError(409, "conflict", "Someone else changed this rule at the same moment. Reload it and try again.");
  if (outcome.kind === "doubled") throw doubleRefused(c, outcome.twin);
  return outcome.rule;
}

function doubleRefused(c: RulesContext, twin: Twin) {
  return new ApiError(
    409,
    "conflict",
    `Rule ${twin.id} (“${twin.name}”, ${ruleState(twin, c.var.now)}) already does this: the same action on the same target, with the same strength or slot, segment and schedule. Nothing was saved. Change that rule instead, or make this one differ.`,
  );
}

/**
 * The rules as answered (statusOf), each with whether the catalog has its target now. A write reads the
 * catalog first, so a failed read answers an error before anything is written, never after.
 */
async function withCatalogCheck(c: RulesContext, rules: RuleView[]): Promise<RuleStatusView[]> {
  const catalog = await catalogView(c.var.db, rules);
  return rules.map((rule) => statusOf(c, rule, catalog));
}

/**
 * A rule as answered: with whether the catalog has its target, and its state now (live, scheduled,
 * ended or disabled), so a rule saved with a window already over is seen at once, as a typo is.
 */
function statusOf(c: RulesContext, rule: RuleView, catalog: CatalogView): RuleStatusView {
  return {
    ...rule,
    targetInCatalog: catalog.inCatalog(rule),
    targetName: catalog.nameOf(rule),
    state: ruleState(rule, c.var.now),
  };
}

/** Saves through `write` once the catalog has been read for `fields`' target, and answers the rule saved. */
async function writeChecked(
  c: RulesContext,
  fields: Pick<RuleView, "targetType" | "targetId">,
  write: () => Promise<RuleView>,
): Promise<RuleStatusView> {
  const catalog = await catalogView(c.var.db, [fields]);
  return statusOf(c, await write(), catalog);
}

/** An update that only flips `enabled` is recorded as the enable or disable it amounts to. */
function changeKindOf(before: RuleFields, after: RuleFields): ChangeKind {
  const same = JSON.stringify({ ...before, enabled: null }) === JSON.stringify({ ...after, enabled: null });
  if (same && before.enabled !== after.enabled) return after.enabled ? "enable" : "disable";
  return "update";
}

async function setEnabled(c: RulesContext, enabled: boolean) {
  const by = changeBy(c);
  const current = await existingRule(c);
  const after = { ...ruleFields(current), enabled };
  // A disable doubles nothing: doubleCheck takes none, and the write checks nothing.
  const check = doubleCheck({ ...after, id: current.id }, c.var.now, current);
  const saved = await writeChecked(c, current, async () =>
    savedOrThrow(c, await saveRule(c.var.db, current, after, enabled ? "enable" : "disable", check, by)),
  );
  return c.json({ data: saved });
}

export const rulesRoutes = new Hono<AppEnv>()
  .use("*", requireAdminKey)
  .route("/", steerRoutes)
  .post("/", async (c) => {
    const by = changeBy(c);
    const input = await jsonBody(c, createRuleSchema);
    const check = doubleCheck(ruleFields(input), c.var.now);
    const created = await writeChecked(c, input, async () =>
      savedOrThrow(c, await createRule(c.var.db, input, check, by)),
    );
    return c.json({ data: created }, 201);
  })
  .get("/", async (c) => {
    const { enabled } = queryParams(c, listRulesQuerySchema);
    return c.json({ data: await withCatalogCheck(c, await listRules(c.var.db, { enabled })) });
  })
  .get("/targets", async (c) => {
    // What a rule's target may mean: the catalog's nearest, listed under the console's Target id field.
    const { type, q, limit } = queryParams(c, ruleTargetsQuerySchema);
    const targets = nearestTargets(q, await catalogTargets(c.var.db, type, q), limit);
    return c.json({ data: { type, q, targets } });
  })
  .get("/:id", async (c) => {
    const rule = await existingRule(c);
    const [[checked], versions] = await Promise.all([withCatalogCheck(c, [rule]), versionsOf(c.var.db, rule.id)]);
    return c.json({ data: { ...checked!, versions } });
  })
  .get("/:id/versions", async (c) => {
    // A deleted rule's history too: its last version records the deletion.
    const { id } = parseOrThrow(ruleParamsSchema, c.req.param(), "path");
    const versions = await versionsOf(c.var.db, id);
    if (versions.length === 0) throw notFound(`No rule with id ${id}.`);
    return c.json({ data: versions });
  })
  .patch("/:id", async (c) => {
    const by = changeBy(c);
    const body = await readJson(c.req.raw, defaultMaxBodyBytes, notJsonBody);
    const current = await existingRule(c);
    const before = ruleFields(current);
    // The patch's fields and the rule as it would be after the change, checked in one pass (so every
    // problem is listed at once); an unknown id is a 404 before the body is checked against it.
    const { version, ...patch } = parseOrThrow(updateRuleSchemaFor(before), body, "request body");
    if (version !== undefined && version !== current.version)
      throw new ApiError(
        409,
        "conflict",
        `This rule was changed since version ${version} was read: it is at version ${current.version} now. Nothing was saved. Reload it to see the change, then make yours again.`,
      );
    const after = ruleFields({ ...before, ...patch });
    const check = doubleCheck({ ...after, id: current.id }, c.var.now, current);
    const saved = await writeChecked(c, after, async () =>
      savedOrThrow(c, await saveRule(c.var.db, current, after, changeKindOf(before, after), check, by)),
    );
    return c.json({ data: saved });
  })
  .delete("/:id", async (c) => {
    const by = changeBy(c);
    const current = await existingRule(c);
    savedOrThrow(c, await deleteRule(c.var.db, current, by));
    return c.body(null, 204);
  })
  .post("/:id/disable", (c) => setEnabled(c, false))
  .post("/:id/enable", (c) => setEnabled(c, true));
