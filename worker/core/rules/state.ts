// Where a rule stands at a moment, from its `enabled` switch and its schedule alone: what the rules list
// and a rule's page say, and what a preview or simulation says of a draft. Whether the rule changes a
// given shopper's shelf also depends on its segment and target (apply.ts).

import type { Rule } from "./types.ts";

/**
 * `disabled`: switched off, whatever its schedule; `scheduled`: enabled, and `now` is before startsAt;
 * `ended`: enabled, and `now` is at or after endsAt (it never applies again without an edit); `live`:
 * enabled and inside [startsAt, endsAt), a missing bound being open.
 */
export const ruleStates = ["live", "scheduled", "ended", "disabled"] as const;
export type RuleState = (typeof ruleStates)[number];

export function ruleState(rule: Pick<Rule, "enabled" | "startsAt" | "endsAt">, now: Date): RuleState {
  if (!rule.enabled) return "disabled";
  const at = now.getTime();
  if (rule.startsAt && at < Date.parse(rule.startsAt)) return "scheduled";
  if (rule.endsAt && at >= Date.parse(rule.endsAt)) return "ended";
  return "live";
}
