// Whether two rules would do the same thing to the same shelves at the same times: what the rules API
// refuses to save twice (a retried create, an edit into another rule), and what the console's rule form
// says of a draft before it is saved, so both compare the same way.

import { type RuleState, ruleState } from "./state.ts";
import type { Rule } from "./types.ts";

const segmentFields = ["stage", "valueTier", "channelPreference", "discountSensitivity"] as const;

/**
 * The fields that decide what a rule does; its name, id and history do not. Written as loosely as the
 * console's draft holds them (a saved Rule is one).
 */
export interface RuleEffect {
  action: string;
  targetType: string;
  targetId: string;
  strength?: number | null;
  slot?: number | null;
  segment?: { readonly [field in (typeof segmentFields)[number]]?: string | readonly string[] } | null;
  startsAt?: string | null;
  endsAt?: string | null;
}

/** A segment as the set of values per field it names: `"fading"` and `["fading"]` are one segment. */
function segmentKey(segment: RuleEffect["segment"]): string {
  const named = segmentFields.flatMap((field) => {
    const value = segment?.[field];
    if (value === undefined) return [];
    const values = [...new Set(typeof value === "string" ? [value] : value)].sort();
    return [`${field}=${values.join(",")}`];
  });
  return named.join(";");
}

/** An instant compared as a moment, so the same time written with another offset is the same. */
const instant = (value: string | null | undefined) => (value ? Date.parse(value) : null);

/** A rule's target as it applies: `*` is every item whichever target type names it (apply.ts). */
function targetKey(rule: RuleEffect): string {
  const id = rule.targetId.trim();
  return id === "*" ? id : `${rule.targetType}:${id}`;
}

/**
 * Same action on the same target (`targetId` trimmed, as the API stores it), with the same strength or
 * slot, segment and window: whichever of the two is saved, the shelves are the same.
 */
export function sameEffect(a: RuleEffect, b: RuleEffect): boolean {
  return (
    a.action === b.action &&
    targetKey(a) === targetKey(b) &&
    (a.strength ?? null) === (b.strength ?? null) &&
    (a.slot ?? null) === (b.slot ?? null) &&
    segmentKey(a.segment) === segmentKey(b.segment) &&
    instant(a.startsAt) === instant(b.startsAt) &&
    instant(a.endsAt) === instant(b.endsAt)
  );
}

/**
 * The states in which a rule counts as another rule's twin: it applies now or will. A disabled rule (a
 * draft) or an ended one applies never again as it is, so a rule of the same effect beside it is no double.
 */
export const appliesNowOrLater = (state: RuleState) => state === "live" || state === "scheduled";

/**
 * The first of `others` (not `rule` itself, by id) that does what `rule` does, both applying now or
 * later; undefined when `rule` would be no double of any.
 */
export function sameEffectRule<T extends RuleEffect & Pick<Rule, "id" | "enabled">>(
  rule: RuleEffect & Pick<Rule, "enabled"> & { id?: string },
  others: readonly T[],
  now: Date,
): T | undefined {
  if (!appliesNowOrLater(ruleState(rule, now))) return undefined;
  return others.find(
    (other) => other.id !== rule.id && appliesNowOrLater(ruleState(other, now)) && sameEffect(rule, other),
  );
}

/**
 * What saving `rule` would double, as the rules API refuses it: the first live or scheduled rule of
 * `others` that does what it does; none when it is an edit that keeps the effect `saved` (the rule as
 * stored) has while it applies, so a rule doubled before doubles were refused can still be renamed.
 */
export function doubledRule<T extends RuleEffect & Pick<Rule, "id" | "enabled">>(
  rule: RuleEffect & Pick<Rule, "enabled"> & { id?: string },
  others: readonly T[],
  now: Date,
  saved?: RuleEffect & Pick<Rule, "enabled">,
): T | undefined {
  if (saved && appliesNowOrLater(ruleState(saved, now)) && sameEffect(saved, rule)) return undefined;
  return sameEffectRule(rule, others, now);
}
