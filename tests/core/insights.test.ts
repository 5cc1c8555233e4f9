import { describe, expect, it } from "vitest";
import {
  addCounts,
  compareTier,
  countTrait,
  customerTraits,
  pruneCounts,
  sentence,
  type TraitCounts,
} from "../../worker/core/insights/best-customers.ts";
import { csvField, csvLine } from "../../worker/core/insights/csv.ts";
import type { CustomerProfile } from "../../worker/core/profile/customer-profile.ts";

describe("csv", () => {
  it("quotes commas, quotes and line breaks, and doubles quotes", () => {
    expect(csvField("plain")).toBe("plain");
    expect(csvField("a,b")).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField("two\nlines")).toBe('"two\nlines"');
    expect(csvField(null)).toBe("");
    expect(csvField(0.25)).toBe("0.25");
    expect(csvField(Number.NaN)).toBe("");
    expect(csvLine(["x", 1, null])).toBe("x,1,\r\n");
  });

  it("defuses text a spreadsheet would run as a formula, not negative numbers", () => {
    expect(csvField("=HYPERLINK(1)")).toBe("'=HYPERLINK(1)");
    expect(csvField("@SUM(A1)")).toBe("'@SUM(A1)");
    expect(csvField("+1,2")).toBe(`"'+1,2"`);
    expect(csvField("-3.5")).toBe("-3.5");
    expect(csvField(-3.5)).toBe("-3.5");
  });

  it("quotes a semicolon: where it separates fields (Excel in many locales), a formula could follow it", () => {
    expect(csvField("acct;=HYPERLINK(1)")).toBe('"acct;=HYPERLINK(1)"');
    expect(csvField("a;b")).toBe('"a;b"');
  });
});

function population(): TraitCounts {
  const counts: TraitCounts = {};
  // 40 top customers: 36 buy coffee; 3 share a rare trait nobody else has; 20 use the app.
  for (let i = 0; i < 40; i++)
    countTrait(counts, "top", [
      ...(i < 36 ? [{ dimension: "category" as const, value: "coffee" }] : []),
      ...(i < 3 ? [{ dimension: "category" as const, value: "truffles" }] : []),
      ...(i < 20 ? [{ dimension: "channel" as const, value: "app" }] : []),
    ]);
  // 360 others: 18 buy coffee, 150 use the app.
  for (let i = 0; i < 360; i++)
    countTrait(counts, i % 2 ? "low" : "medium", [
      ...(i < 18 ? [{ dimension: "category" as const, value: "coffee" }] : []),
      ...(i < 150 ? [{ dimension: "channel" as const, value: "app" }] : []),
    ]);
  return counts;
}

describe("customerTraits", () => {
  const traitsOf = (purchaseDays: number, categories: { categoryId: string; purchaseDays: number }[]) =>
    customerTraits({
      profile: {
        categories: categories.map((category) => ({ ...category, priceBand: null })),
        channelMix: { primary: null },
        discount: { sensitivity: "mixed" },
        preferredWeekday: null,
      } as unknown as CustomerProfile,
      purchaseDays,
      categorySpend: {},
      orderStores: [],
    }).filter((trait) => trait.dimension === "category");

  it("counts a category bought regularly: on two or more purchase days, a third of theirs or more", () => {
    // One order: everything bought that day is 1 of 1 days, and still not a habit.
    expect(traitsOf(1, [{ categoryId: "jewellery", purchaseDays: 1 }])).toEqual([]);
    expect(traitsOf(6, [{ categoryId: "coffee", purchaseDays: 2 }])).toEqual([
      { dimension: "category", value: "coffee" },
    ]);
    expect(traitsOf(7, [{ categoryId: "coffee", purchaseDays: 2 }])).toEqual([]); // under a third
  });
});

describe("compareTier", () => {
  it("ranks a strong, well-supported trait first and leaves out tiny groups", () => {
    const result = compareTier(population(), "top", { "category:coffee": "Coffee" });
    expect(result.customers).toBe(40);
    expect(result.comparedWith).toBe(360);
    expect(result.traits[0]).toMatchObject({ dimension: "category", value: "coffee", topShare: 0.9, restShare: 0.05 });
    expect(result.traits[0]?.lift).toBeCloseTo(0.9 / (18.5 / 361), 1);
    expect(result.traits[0]?.sentence).toBe("90% of top customers buy Coffee regularly vs 5% of the rest");
    // 3 customers are below the minimum, however large their lift.
    expect(result.traits.some((t) => t.value === "truffles")).toBe(false);
    // 50% vs 42%: more common in the tier, but not distinctive enough to show.
    expect(result.traits.some((t) => t.value === "app")).toBe(false);
  });

  it("adds page counts into the same totals", () => {
    const a: TraitCounts = {};
    const b: TraitCounts = {};
    countTrait(a, "top", [{ dimension: "weekday", value: "Saturday" }]);
    countTrait(b, "top", [{ dimension: "weekday", value: "Saturday" }]);
    countTrait(b, "low", []);
    expect(addCounts(a, b)).toEqual({
      top: { customers: 2, traits: { "weekday:Saturday": 2 } },
      low: { customers: 1, traits: {} },
    });
  });

  it("prunes traits too rare to show in any tier, keeping the comparison", () => {
    const counts = population();
    const pruned = pruneCounts(counts);
    expect(pruned.top?.traits["category:truffles"]).toBeUndefined();
    expect(pruned.top?.traits["category:coffee"]).toBe(36);
    expect(pruned.low?.customers).toBe(counts.low?.customers);
    expect(compareTier(pruned, "top")).toEqual(compareTier(counts, "top"));
  });

  it("names a store once, whether or not its id already says store", () => {
    expect(sentence("top", { dimension: "store", value: "store-02" }, 0.4, 0.1)).toBe(
      "40% of top customers mostly shop at store-02 vs 10% of the rest",
    );
    expect(sentence("top", { dimension: "store", value: "Store 7" }, 0.4, 0.1)).toBe(
      "40% of top customers mostly shop at Store 7 vs 10% of the rest",
    );
    expect(sentence("high", { dimension: "store", value: "downtown" }, 0.25, 0.05)).toBe(
      "25% of high-value customers mostly shop at store downtown vs 5% of the rest",
    );
    // "storefront-1" is not "store" followed by a name: the word stays.
    expect(sentence("top", { dimension: "store", value: "storefront-1" }, 0.4, 0.1)).toContain(
      "shop at store storefront-1",
    );
  });

  it("has nothing to compare without customers on both sides", () => {
    expect(compareTier({}, "top").traits).toEqual([]);
    expect(compareTier(population(), "high")).toMatchObject({ customers: 0, traits: [] });
  });
});
