import { describe, expect, it } from "vitest";
import { ruleIsLive } from "../../../worker/core/rules/apply.ts";
import { type RuleState, ruleState } from "../../../worker/core/rules/state.ts";
import type { Rule } from "../../../worker/core/rules/types.ts";

const now = new Date("2026-12-01T12:00:00.000Z");
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs).toISOString();
const day = 86_400_000;

function rule(fields: Partial<Rule>): Rule {
  return { id: "r1", name: "test", action: "boost", targetType: "category", targetId: "tea", enabled: true, ...fields };
}

describe("ruleState: enabled + schedule + now", () => {
  it.each<[string, Partial<Rule>, RuleState]>([
    ["no window", {}, "live"],
    ["no window, nulls", { startsAt: null, endsAt: null }, "live"],
    ["starts exactly now", { startsAt: at(0) }, "live"],
    ["starts a millisecond from now", { startsAt: at(1) }, "scheduled"],
    ["starts in 19 days, ends in 26", { startsAt: at(19 * day), endsAt: at(26 * day) }, "scheduled"],
    ["ends exactly now", { endsAt: at(0) }, "ended"],
    ["ends a millisecond from now", { endsAt: at(1) }, "live"],
    ["a window that ended last January", { startsAt: "2026-01-01T00:00:00Z", endsAt: "2026-01-02T00:00:00Z" }, "ended"],
    ["inside its window", { startsAt: at(-day), endsAt: at(day) }, "live"],
    ["disabled, no window", { enabled: false }, "disabled"],
    ["disabled inside its window", { enabled: false, startsAt: at(-day), endsAt: at(day) }, "disabled"],
    ["disabled before its window", { enabled: false, startsAt: at(day) }, "disabled"],
    ["disabled after its window", { enabled: false, endsAt: at(-day) }, "disabled"],
    // An instant written with an offset is the same instant.
    ["starts at now written in +01:00", { startsAt: "2026-12-01T13:00:00+01:00" }, "live"],
  ])("%s: %s", (_label, fields, state) => {
    expect(ruleState(rule(fields), now)).toBe(state);
  });

  it("is what ruleIsLive goes by for a rule without a segment", () => {
    for (const fields of [{}, { startsAt: at(0) }, { startsAt: at(1) }, { endsAt: at(0) }, { enabled: false }])
      expect(ruleIsLive(rule(fields), { shopper: {}, now })).toBe(ruleState(rule(fields), now) === "live");
  });
});
