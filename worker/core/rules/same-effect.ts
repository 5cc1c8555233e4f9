// Whether two rules would do the same thing to the same shelves from now on: what the rules API
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

/** An instant as a moment, so the same time written with another offset is the same. */
const instant = (value: string | null | undefined) => (value ? Date.parse(value) : null);

/** A rule's target as it applies: `*` is every item whichever target type names it (apply.ts). */
function targetKey(rule: RuleEffect): string {
  const id = rule.targetId.trim();
  return id === "*" ? id : `${rule.targetType}:${id}`;
}

/**
 * What a rule does but when it starts, as one string: the same action on the same target (`targetId`
 * trimmed, as the API stores it), with the same strength or slot, segment and end. The rules table
 * keeps it (`effect_key`), so the API finds a rule's double in the statement that writes it.
 */
export function effectKey(rule: RuleEffect): string {
  return JSON.stringify([
    rule.action,
    targetKey(rule),
    rule.strength ?? null,
    rule.slot ?? null,
    segmentKey(rule.segment),
    // As a string: a bad date (a draft's) is no number JSON can write, and must not read as none.
    String(instant(rule.endsAt)),
  ]);
}

/**
 * When a rule starts acting, seen at `now`: its start as an ISO instant (as the API stores it) while
 * that is still to come, else null. No start and a start already past both mean "from now on", so two
 * rules that differ only so act the same from now; a start to come is told apart from none.
 */
export function startingAt(rule: Pick<RuleEffect, "startsAt">, now: Date): string | null {
  const at = instant(rule.startsAt);
  // As ruleState: a rule is scheduled only while `now` is before its start.
  return at !== null && now.getTime() < at ? new Date(at).toISOString() : null;
}

/**
 * Same effect (effectKey) and the same start as seen at `now` (startingAt): whichever of the two is
 * saved, the shelves are the same from `now` on.
 */
export function sameEffect(a: RuleEffect, b: RuleEffect, now: Date): boolean {
  return effectKey(a) === effectKey(b) && startingAt(a, now) === startingAt(b, now);
}

/**
 * The states in which a rule counts as another rule's twin: it applies now or will. A disabled rule (a
 * draft) or an ended one applies never again as it is, so a rule of the same effect beside it is no double.
 */
export const appliesNowOrLater = (state: RuleState) => state === "live" || state === "scheduled";

/**
 * What a rule about to be saved (`id`: none yet for a new one) must not double: the live or scheduled
 * rules, other than itself, of this `key` and `startingAt` as seen at that moment. The rules API checks
 * it in the same D1 write that saves the rule (rules.repo.ts), doubledRule over a list it was given.
 */
export interface DoubleCheck {
  id?: string;
  key: string;
  startingAt: string | null;
}

/**
 * The check saving `rule` takes; undefined when it can double nothing: it will never apply as it is
 * (a draft, or ended), or it is an edit that keeps the effect `saved` (the rule as stored) has while it
 * applies, so a rule doubled before doubles were refused can still be renamed.
 */
export function doubleCheck(
  rule: RuleEffect & Pick<Rule, "enabled"> & { id?: string },
  now: Date,
  saved?: RuleEffect & Pick<Rule, "enabled">,
): DoubleCheck | undefined {
  if (!appliesNowOrLater(ruleState(rule, now))) return undefined;
  if (saved && appliesNowOrLater(ruleState(saved, now)) && sameEffect(saved, rule, now)) return undefined;
  return { id: rule.id, key: effectKey(rule), startingAt: startingAt(rule, now) };
}

/** Whether `other` is what `check` refuses to double, at `now`. */
export function doubles(check: DoubleCheck, other: RuleEffect & Pick<Rule, "id" | "enabled">, now: Date): boolean {
  return (
    other.id !== check.id &&
    appliesNowOrLater(ruleState(other, now)) &&
    effectKey(other) === check.key &&
    startingAt(other, now) === check.startingAt
  );
}

/**
 * What saving `rule` would double, as the rules API refuses it: the first live or scheduled rule of
 * `others` (not `rule` itself, by id) that does what it does; none when doubleCheck takes none (a draft,
 * or an edit that keeps the effect `saved` has while it applies).
 */
export function doubledRule<T extends RuleEffect & Pick<Rule, "id" | "enabled">>(
  rule: RuleEffect & Pick<Rule, "enabled"> & { id?: string },
  others: readonly T[],
  now: Date,
  saved?: RuleEffect & Pick<Rule, "enabled">,
): T | undefined {
  const check = doubleCheck(rule, now, saved);
  return check && others.find((other) => doubles(check, other, now));
}
