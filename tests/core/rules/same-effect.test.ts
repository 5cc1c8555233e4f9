// Whether a rule would do what another already does: what the rules API refuses to save twice and the
// console's rule form says of a draft, from one function.
import { describe, expect, it } from "vitest";
import { doubleCheck, doubledRule, effectKey, sameEffect, startingAt } from "../../../worker/core/rules/same-effect.ts";
import type { Rule } from "../../../worker/core/rules/types.ts";

const now = new Date("2026-12-01T12:00:00.000Z");

function rule(fields: Partial<Rule> = {}): Rule {
  return {
    id: "r1",
    name: "Boost tea",
    action: "boost",
    targetType: "category",
    targetId: "tea",
    strength: 0.5,
    slot: null,
    segment: { stage: ["fading", "lapsed"] },
    startsAt: "2026-11-01T00:00:00.000Z",
    endsAt: null,
    enabled: true,
    ...fields,
  };
}

describe("sameEffect", () => {
  it("compares what a rule does, not how it is written nor what it is called", () => {
    const written = rule({
      id: "r2",
      name: "Tea again",
      targetId: " tea ",
      segment: { stage: ["lapsed", "fading", "lapsed"] },
      startsAt: "2026-11-01T01:00:00+01:00",
      endsAt: undefined,
    });
    expect(sameEffect(rule(), written, now)).toBe(true);
    expect(sameEffect(rule({ segment: { stage: "fading" } }), rule({ segment: { stage: ["fading"] } }), now)).toBe(
      true,
    );
    expect(sameEffect(rule({ segment: null }), rule({ segment: {} }), now)).toBe(true);
  });

  it.each<[string, Partial<Rule>]>([
    ["action", { action: "bury" }],
    ["target type", { targetType: "product" }],
    ["target id", { targetId: "coffee" }],
    ["strength", { strength: 0.6 }],
    ["segment value", { segment: { stage: ["fading"] } }],
    ["segment field", { segment: { stage: ["fading", "lapsed"], valueTier: "top" } }],
    ["no segment", { segment: null }],
    ["start to come", { startsAt: "2026-12-20T00:00:00.000Z" }],
    ["end", { endsAt: "2027-01-01T00:00:00.000Z" }],
  ])("tells rules apart by their %s", (_field, change) => {
    expect(sameEffect(rule(), rule(change), now)).toBe(false);
  });

  it("counts no start, a start already past and one at this instant as one: each acts from now on", () => {
    const started = rule({ startsAt: "2026-11-01T00:00:00.000Z" });
    expect(sameEffect(started, rule({ startsAt: null }), now)).toBe(true);
    expect(sameEffect(started, rule({ startsAt: undefined }), now)).toBe(true);
    expect(sameEffect(started, rule({ startsAt: "2026-11-30T12:00:00.000Z" }), now)).toBe(true);
    expect(sameEffect(started, rule({ startsAt: now.toISOString() }), now)).toBe(true);
    // Before the earlier start, the two were told apart; a start still to come is told from none.
    expect(sameEffect(started, rule({ startsAt: null }), new Date("2026-10-31T00:00:00.000Z"))).toBe(false);
    expect(sameEffect(rule({ startsAt: null }), rule({ startsAt: "2026-12-01T12:00:00.001Z" }), now)).toBe(false);
    // Two starts to come are one only as the same instant, whatever its offset.
    const later = rule({ startsAt: "2026-12-20T00:00:00.000Z" });
    expect(sameEffect(later, rule({ startsAt: "2026-12-20T01:00:00+01:00" }), now)).toBe(true);
    expect(sameEffect(later, rule({ startsAt: "2026-12-21T00:00:00.000Z" }), now)).toBe(false);
  });

  it("is one effect key and one start as seen at the moment, which the API's check compares in SQL", () => {
    expect(effectKey(rule({ startsAt: null }))).toBe(effectKey(rule({ startsAt: "2026-12-20T00:00:00.000Z" })));
    expect(effectKey(rule({ endsAt: "2027-01-01T00:00:00Z" }))).toBe(
      effectKey(rule({ endsAt: "2027-01-01T01:00:00+01:00" })),
    );
    expect(effectKey(rule())).not.toBe(effectKey(rule({ endsAt: "2027-01-01T00:00:00Z" })));
    // A bad end (a draft's) is no end, nor the same as one.
    expect(effectKey(rule({ endsAt: "not a date" }))).not.toBe(effectKey(rule()));
    // As the API stores it, the start to come in UTC; null once it is past.
    expect(startingAt(rule({ startsAt: "2026-12-20T01:00:00+01:00" }), now)).toBe("2026-12-20T00:00:00.000Z");
    expect(startingAt(rule({ startsAt: "2026-11-01T00:00:00.000Z" }), now)).toBeNull();
    expect(startingAt(rule({ startsAt: null }), now)).toBeNull();
  });

  it("reads `*` (every item) as one target, whichever target type names it", () => {
    const everyItem = rule({ action: "hide_discounts", strength: null, targetId: "*" });
    expect(sameEffect(everyItem, { ...everyItem, targetType: "product", targetId: " * " }, now)).toBe(true);
    expect(sameEffect(everyItem, { ...everyItem, targetType: "product", targetId: "tea" }, now)).toBe(false);
  });

  it("tells pins apart by their slot", () => {
    const pin = rule({ action: "pin", strength: null, slot: 1, targetType: "product", targetId: "sku-1" });
    expect(sameEffect(pin, { ...pin, slot: 1 }, now)).toBe(true);
    expect(sameEffect(pin, { ...pin, slot: 2 }, now)).toBe(false);
  });
});

describe("doubledRule over the other rules", () => {
  const live = rule({ id: "live" });
  it("finds a live or scheduled rule of the same effect, never the rule itself", () => {
    expect(doubledRule({ ...live, id: undefined }, [live], now)).toBe(live);
    expect(doubledRule(live, [live], now)).toBeUndefined();
    const later = { startsAt: "2026-12-20T00:00:00.000Z" };
    const scheduled = rule({ id: "scheduled", ...later });
    expect(doubledRule(rule({ id: undefined, ...later }), [live, scheduled], now)).toBe(scheduled);
  });

  it("counts no draft (disabled) and no ended rule, on either side", () => {
    expect(doubledRule(rule({ id: "new" }), [rule({ id: "draft", enabled: false })], now)).toBeUndefined();
    expect(doubledRule(rule({ id: "new", enabled: false }), [live], now)).toBeUndefined();
    const over = { endsAt: "2026-11-20T00:00:00.000Z" };
    expect(doubledRule(rule({ id: "new", ...over }), [rule({ id: "ended", ...over })], now)).toBeUndefined();
  });
});

describe("doubledRule", () => {
  it("finds a rule with no start as the double of one whose start is past, not of one to come", () => {
    const always = rule({ id: "always", startsAt: null });
    expect(doubledRule(rule({ id: undefined, startsAt: "2026-11-30T00:00:00.000Z" }), [always], now)).toBe(always);
    expect(doubledRule(rule({ id: undefined, startsAt: "2026-12-02T00:00:00.000Z" }), [always], now)).toBeUndefined();
    // The check the API makes in its write says the same.
    expect(doubleCheck(rule({ id: undefined, startsAt: "2026-11-30T00:00:00.000Z" }), now)).toEqual({
      id: undefined,
      key: effectKey(always),
      startingAt: null,
    });
    expect(doubleCheck(rule({ id: "draft", enabled: false }), now)).toBeUndefined();
  });

  const first = rule({ id: "first", name: "Boost tea" });
  const second = rule({ id: "second", name: "Boost tea again" });
  it("is the twin a new rule or an edit would make", () => {
    expect(doubledRule(rule({ id: undefined }), [first], now)).toBe(first);
    // An edit of another rule into this one's effect.
    const other = rule({ id: "other", strength: 2 });
    expect(doubledRule({ ...other, strength: 0.5 }, [first, other], now, other)).toBe(first);
  });

  it("is none for an edit that keeps the effect its rule has while it applies (a rename of a rule doubled before)", () => {
    const renamed: Rule = { ...second, name: "Tea up" };
    expect(doubledRule(renamed, [first, second], now, second)).toBeUndefined();
    // Enabling a draft into the effect of a live rule is a double, however it was before.
    const draft = { ...second, enabled: false };
    expect(doubledRule({ ...draft, enabled: true }, [first, draft], now, draft)).toBe(first);
  });
});
