// A rule's History in words: what each version changed, the schedule included.
import { describe, expect, it } from "vitest";
import { timeZone } from "../../../console/src/api.ts";
import {
  type PreviewOutcome,
  previewVerdict,
  type RuleVersionFields,
  scheduleWords,
  unchangedWhy,
  whatChanged,
} from "../../../console/src/rule-words.ts";

const rule: RuleVersionFields = {
  name: "Boost coffee",
  action: "boost",
  targetType: "category",
  targetId: "coffee",
  strength: 0.8,
  slot: null,
  segment: null,
  startsAt: null,
  endsAt: null,
  enabled: true,
};

describe("a rule version in words", () => {
  timeZone.value = "UTC";

  it("says when a rule applies, on the retailer's clock", () => {
    expect(scheduleWords(rule)).toBe("always");
    expect(scheduleWords({ startsAt: "2026-12-20T00:00:00.000Z", endsAt: null })).toBe("from 20 Dec 2026, 00:00 UTC");
    expect(scheduleWords({ startsAt: null, endsAt: "2027-01-05T18:30:00.000Z" })).toBe("until 5 Jan 2027, 18:30 UTC");
  });

  it("names a schedule change with both schedules, beside the other changes", () => {
    const scheduled = {
      ...rule,
      startsAt: "2026-12-20T00:00:00.000Z",
      endsAt: "2027-01-05T00:00:00.000Z",
      strength: 1,
    };
    expect(whatChanged(rule, scheduled)).toBe(
      "strength 0.8 → 1, schedule always → from 20 Dec 2026, 00:00 UTC until 5 Jan 2027, 00:00 UTC",
    );
    expect(whatChanged(undefined, rule)).toBe("–");
    expect(whatChanged(rule, { ...rule })).toBe("nothing");
    expect(whatChanged(rule, { ...rule, enabled: false })).toBe("disabled");
  });
});

describe("what to check when a draft changes no shelf", () => {
  it("names what each action can fail at, never another action's remedy", () => {
    const advice = Object.fromEntries(
      ["boost", "bury", "pin", "exclude", "allow_discounts", "hide_discounts"].map((action) => [
        action,
        unchangedWhy(action),
      ]),
    );
    for (const text of Object.values(advice)) expect(text).toMatch(/^check the segment, /);
    expect(advice.boost).toMatch(/already leads this shelf, or try a larger strength$/);
    expect(advice.bury).toMatch(/try a larger strength$/);
    expect(advice.pin).toMatch(/holds that slot on this shelf already$/);
    expect(advice.allow_discounts).toMatch(/anything on sale .* see its sale items already$/);
    expect(advice.hide_discounts).toMatch(/anything of the target on sale is on this shelf$/);
    // Only a pin's advice speaks of its slot, and none tells to pin something instead.
    for (const [action, text] of Object.entries(advice)) {
      expect(text, action).not.toMatch(/\bpin\b/);
      if (action !== "pin") expect(text, action).not.toMatch(/slot/);
    }
  });
});

describe("what a preview says of a draft", () => {
  const whose = "this customer's shelf";
  const live: PreviewOutcome = {
    action: "boost",
    changed: false,
    targetInCatalog: true,
    ruleState: "live",
    asIfStarted: false,
  };
  const scheduled: PreviewOutcome = { ...live, ruleState: "scheduled", asIfStarted: true };

  it("speaks of a draft that starts later in the future tense, changed or not, with the same advice", () => {
    expect(previewVerdict({ ...scheduled, changed: true }, whose)).toBe(
      "This rule will change this customer's shelf once it starts; changed items are marked.",
    );
    expect(previewVerdict(scheduled, whose)).toBe(
      `This rule will not change this customer's shelf once it starts (${unchangedWhy("boost")}).`,
    );
    expect(previewVerdict({ ...scheduled, targetInCatalog: false }, whose)).toBe(
      "This rule will not change this customer's shelf once it starts.",
    );
  });

  it("speaks of any other draft in the present", () => {
    expect(previewVerdict({ ...live, changed: true }, whose)).toBe(
      "This rule changes this customer's shelf; changed items are marked.",
    );
    expect(previewVerdict(live, whose)).toBe(
      `This rule does not change this customer's shelf (${unchangedWhy("boost")}).`,
    );
    expect(previewVerdict({ ...live, action: "pin" }, whose)).toMatch(/holds that slot on this shelf already\)\.$/);
    expect(previewVerdict({ ...live, ruleState: "ended" }, whose)).toBe(
      "This rule does not change this customer's shelf.",
    );
    expect(previewVerdict({ ...live, ruleState: "disabled" }, whose)).toBe(
      "This rule does not change this customer's shelf: it is not enabled.",
    );
  });
});
