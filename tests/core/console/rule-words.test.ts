// A rule's History in words: what each version changed, the schedule included.
import { describe, expect, it } from "vitest";
import { timeZone } from "../../../console/src/api.ts";
import { type RuleVersionFields, scheduleWords, whatChanged } from "../../../console/src/rule-words.ts";

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
