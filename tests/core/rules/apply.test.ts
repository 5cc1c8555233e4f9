import { describe, expect, it } from "vitest";
import type { RankedCategory, RankedItem } from "../../../worker/core/ranking/types.ts";
import {
  applyRules,
  discountOverridesFrom,
  ruleIsLive,
  segmentMatches,
  targetInCatalog,
} from "../../../worker/core/rules/apply.ts";
import type { Rule, RuleSegment, ShopperSegment } from "../../../worker/core/rules/types.ts";
import { now, product } from "../ranking/builders.ts";

const categories: RankedCategory[] = ["coffee", "tea", "cocoa", "juice"].map((categoryId, i) => ({
  categoryId,
  score: 4 - i,
  reasons: [],
  sentence: categoryId,
}));
const item = (productId: string, categoryId: string, onSale = false): RankedItem => ({
  productId,
  categoryId,
  title: productId,
  url: null,
  imageUrl: null,
  price: onSale ? 8 : 10,
  listPrice: 10,
  onSale,
  score: 1,
  reasons: [],
  sentence: productId,
});
const items = [
  item("c1", "coffee"),
  item("t1", "tea"),
  item("k1", "cocoa", true),
  item("c2", "coffee"),
  item("t2", "tea"),
];
const shopper: ShopperSegment = {
  stage: "active",
  valueTier: "top",
  channelPreference: "store",
  discountSensitivity: "full_price",
};
const context = { shopper, now };

function rule(fields: Partial<Rule>): Rule {
  return {
    id: "r1",
    name: "test rule",
    action: "boost",
    targetType: "category",
    targetId: "tea",
    enabled: true,
    ...fields,
  };
}
const apply = (...rules: Rule[]) => applyRules({ categories, items, rules, context });
const categoryIds = (r: ReturnType<typeof apply>) => r.categories.map((c) => c.categoryId);
const itemIds = (r: ReturnType<typeof apply>) => r.items.map((i) => i.productId);

describe("applyRules: actions", () => {
  it.each<[string, Partial<Rule>, string[], string[]]>([
    ["no rule", { enabled: false }, ["coffee", "tea", "cocoa", "juice"], ["c1", "t1", "k1", "c2", "t2"]],
    [
      "boost category",
      { action: "boost", targetId: "juice", strength: 4 },
      ["juice", "coffee", "tea", "cocoa"],
      ["c1", "t1", "k1", "c2", "t2"],
    ],
    // default strength 1 halves coffee's score (4 → 2, tying cocoa) and its items' sort keys
    [
      "bury category",
      { action: "bury", targetId: "coffee" },
      ["tea", "cocoa", "coffee", "juice"],
      ["c1", "t1", "k1", "t2", "c2"],
    ],
    ["exclude category", { action: "exclude", targetId: "tea" }, ["coffee", "cocoa", "juice"], ["c1", "k1", "c2"]],
    [
      "pin category",
      { action: "pin", targetId: "juice", slot: 1 },
      ["juice", "coffee", "tea", "cocoa"],
      ["c1", "t1", "k1", "c2", "t2"],
    ],
    [
      "boost product",
      { action: "boost", targetType: "product", targetId: "t2", strength: 5 },
      ["coffee", "tea", "cocoa", "juice"],
      ["t2", "c1", "t1", "k1", "c2"],
    ],
    [
      "bury product",
      { action: "bury", targetType: "product", targetId: "c1", strength: 3 },
      ["coffee", "tea", "cocoa", "juice"],
      ["t1", "k1", "c1", "c2", "t2"],
    ],
    [
      "exclude product",
      { action: "exclude", targetType: "product", targetId: "k1" },
      ["coffee", "tea", "cocoa", "juice"],
      ["c1", "t1", "c2", "t2"],
    ],
    [
      "pin product",
      { action: "pin", targetType: "product", targetId: "t2", slot: 2 },
      ["coffee", "tea", "cocoa", "juice"],
      ["c1", "t2", "t1", "k1", "c2"],
    ],
    [
      "hide discounts",
      { action: "hide_discounts", targetId: "*" },
      ["coffee", "tea", "cocoa", "juice"],
      ["c1", "t1", "c2", "t2"],
    ],
  ])("%s", (_label, fields, expectedCategories, expectedItems) => {
    const result = apply(rule(fields));
    expect(categoryIds(result)).toEqual(expectedCategories);
    expect(itemIds(result)).toEqual(expectedItems);
    expect(result.appliedRuleIds).toEqual(fields.enabled === false ? [] : ["r1"]);
  });

  it("leaves a rule reason on what it touched", () => {
    const result = apply(rule({ action: "boost", targetId: "juice", strength: 4 }));
    expect(result.categories[0]!.reasons).toEqual([{ code: "rule", ruleId: "r1", action: "boost" }]);
    expect(result.categories[0]!.score).toBe(5);
  });

  it("pins a product the ranking did not pick when it can be sold", () => {
    const catalog = [product("new-1", "juice", { listPrice: 4 }), product("gone", "juice", { inStock: false })];
    const pinned = applyRules({
      categories,
      items,
      rules: [
        rule({ id: "p1", action: "pin", targetType: "product", targetId: "new-1", slot: 1 }),
        rule({ id: "p2", action: "pin", targetType: "product", targetId: "gone", slot: 2 }),
      ],
      context,
      catalog,
    });
    expect(itemIds(pinned)[0]).toBe("new-1");
    expect(itemIds(pinned)).not.toContain("gone");
    expect(pinned.appliedRuleIds).toEqual(["p1"]);
  });

  // Pins are placed lowest slot first, each target taken out before any is placed: a later pin whose
  // target ranked above an earlier pin's slot must not shift that pin up.
  it("keeps every pin in its slot when a later pin's target ranked above it", () => {
    const pinned = applyRules({
      categories,
      items,
      rules: [
        rule({ id: "p1", action: "pin", targetType: "product", targetId: "k1", slot: 2 }),
        rule({ id: "p2", action: "pin", targetType: "product", targetId: "c1", slot: 3 }),
        rule({ id: "p3", action: "pin", targetId: "cocoa", slot: 2 }),
        rule({ id: "p4", action: "pin", targetId: "coffee", slot: 3 }),
      ],
      context,
    });
    expect(itemIds(pinned)).toEqual(["t1", "k1", "c1", "c2", "t2"]);
    expect(categoryIds(pinned)).toEqual(["tea", "cocoa", "coffee", "juice"]);
    expect(pinned.appliedRuleIds.sort()).toEqual(["p1", "p2", "p3", "p4"]);
  });

  it("places a product two pins name once, at the lower slot", () => {
    const pinned = apply(
      rule({ id: "p1", action: "pin", targetType: "product", targetId: "t2", slot: 1 }),
      rule({ id: "p2", action: "pin", targetType: "product", targetId: "t2", slot: 4 }),
    );
    expect(itemIds(pinned)).toEqual(["t2", "c1", "t1", "k1", "c2"]);
  });

  it("caps items after pins", () => {
    const capped = applyRules({ categories, items, rules: [], context, maxItems: 2 });
    expect(itemIds(capped)).toEqual(["c1", "t1"]);
  });
});

describe("segments and schedules", () => {
  it.each<[RuleSegment | null, boolean]>([
    [null, true],
    [{}, true],
    [{ stage: "active" }, true],
    [{ stage: ["fading", "lapsed"] }, false],
    [{ valueTier: "top", channelPreference: "store" }, true],
    [{ valueTier: "top", channelPreference: "web" }, false],
    [{ discountSensitivity: "deal_seeker" }, false],
    [{ discountSensitivity: ["full_price", "mixed"] }, true],
  ])("segment %j matches the active top-tier store full-price shopper: %s", (segment, expected) => {
    expect(segmentMatches(segment, shopper)).toBe(expected);
    expect(itemIds(apply(rule({ action: "exclude", targetType: "product", targetId: "c1", segment })))[0]).toBe(
      expected ? "t1" : "c1",
    );
  });

  it("never matches a segment field the shopper lacks", () => {
    expect(segmentMatches({ stage: "active" }, {})).toBe(false);
  });

  it.each([
    [null, null, true],
    ["2026-05-01T00:00:00Z", "2026-07-01T00:00:00Z", true],
    ["2026-06-01T00:00:00Z", null, true], // starts exactly now
    [null, "2026-06-01T00:00:00Z", false], // ended exactly now
    ["2026-06-02T00:00:00Z", null, false],
    [null, "2026-05-31T23:59:59Z", false],
  ])("startsAt %s, endsAt %s → live %s", (startsAt, endsAt, live) => {
    expect(ruleIsLive(rule({ startsAt, endsAt }), context)).toBe(live);
  });
});

describe("discountOverridesFrom", () => {
  it("turns live allow/hide switches into overrides for item selection", () => {
    const overrides = discountOverridesFrom(
      [
        rule({ id: "a", action: "allow_discounts", targetId: "*" }),
        rule({ id: "b", action: "hide_discounts", targetType: "product", targetId: "k1" }),
        rule({ id: "c", action: "allow_discounts", targetId: "tea", segment: { stage: "lapsed" } }),
        rule({ id: "d", action: "boost" }),
      ],
      context,
    );
    expect(overrides).toEqual([
      { scope: "all", targetId: "*", mode: "allow", ruleId: "a" },
      { scope: "product", targetId: "k1", mode: "hide", ruleId: "b" },
    ]);
  });
});

describe("targetInCatalog", () => {
  const catalog = [product("c1", "coffee"), product("t1", "tea", { inStock: false })];
  const target = (targetType: "category" | "product", targetId: string) =>
    targetInCatalog({ targetType, targetId }, catalog);

  it("finds a product by id and a category by a product in it, out of stock or not", () => {
    expect(target("product", "c1")).toBe(true);
    expect(target("product", "t1")).toBe(true);
    expect(target("category", "coffee")).toBe(true);
    expect(target("category", "tea")).toBe(true);
  });

  it("misses a typo, a product id given as a category and a category id given as a product", () => {
    expect(target("product", "c2")).toBe(false);
    expect(target("category", "cofee")).toBe(false);
    expect(target("category", "c1")).toBe(false);
    expect(target("product", "coffee")).toBe(false);
  });

  it("always has every item, even in an empty catalog", () => {
    expect(targetInCatalog({ targetType: "category", targetId: "*" }, [])).toBe(true);
    expect(targetInCatalog({ targetType: "category", targetId: "coffee" }, [])).toBe(false);
  });
});
