import { describe, expect, it } from "vitest";
import { meanDecay, rankCategories } from "../../../worker/core/ranking/categories.ts";
import { type CategoryOptions, defaultRankingOptions } from "../../../worker/core/ranking/options.ts";
import type { CategoryStat } from "../../../worker/core/ranking/types.ts";
import { category, daysAgo, now, population, rhythm, stat } from "./builders.ts";

const defaults = defaultRankingOptions.categories;
const withOptions = (override: Partial<CategoryOptions>): CategoryOptions => ({ ...defaults, ...override });
const ids = (stats: CategoryStat[], options: CategoryOptions = defaults, pop = population([])) =>
  rankCategories({ categories: stats, population: pop, now }, options).map((c) => c.categoryId);

describe("meanDecay", () => {
  it.each([
    [0, 0, 120, 1],
    [120, 120, 120, 0.5],
    [240, 240, 120, 0.25],
    [0, 120, 120, (1 - 0.5) / Math.LN2],
  ])("ages %d..%d with half-life %d → %f", (newest, oldest, halfLife, expected) => {
    expect(meanDecay(newest, oldest, halfLife)).toBeCloseTo(expected, 10);
  });

  it("weights a spread of purchases below the newest alone and above the oldest alone", () => {
    const spread = meanDecay(10, 200, 60);
    expect(spread).toBeLessThan(meanDecay(10, 10, 60));
    expect(spread).toBeGreaterThan(meanDecay(200, 200, 60));
  });
});

describe("cadence: due now ranks up, just bought with a long cycle ranks down", () => {
  const pop = population([category("coffee"), category("tea"), category("bedding"), category("candles")]);

  it.each([
    // dueBoost, expected first: coffee is due (30 days since, ~4-week rhythm), tea bought 20 days ago
    [1, "tea"],
    [defaults.dueBoost, "coffee"],
  ])("dueBoost %f puts %s first", (dueBoost, first) => {
    const stats = [rhythm("coffee", 5, 28, 30), rhythm("tea", 5, 28, 20)];
    expect(ids(stats, withOptions({ dueBoost }), pop)[0]).toBe(first);
  });

  it.each([
    // justBoughtFactor, expected first: bedding bought 5 days ago on a 6-month cycle, candles 100 days ago
    [1, "bedding"],
    [0.5, "candles"],
  ])("justBoughtFactor %f puts %s first", (justBoughtFactor, first) => {
    const pop180 = population([
      category("bedding", { repurchaseIntervalDays: 180 }),
      category("candles", { repurchaseIntervalDays: 180 }),
    ]);
    const stats = [rhythm("bedding", 3, 180, 5), rhythm("candles", 3, 180, 100)];
    const options = withOptions({ justBoughtFactor, purchaseHalfLifeDays: 365 });
    expect(ids(stats, options, pop180)[0]).toBe(first);
  });

  it("explains a due category with numbers and the sentence shoppers see", () => {
    const [coffee] = rankCategories({ categories: [rhythm("coffee", 5, 28, 35)], population: pop, now }, defaults);
    expect(coffee!.categoryId).toBe("coffee");
    expect(coffee!.reasons).toContainEqual(
      expect.objectContaining({ code: "due_now", intervalDays: 29, daysSinceLast: 35, channel: "store" }),
    );
    expect(coffee!.sentence).toBe("You buy coffee about every 4 weeks; last time 5 weeks ago, in store");
  });

  it("says a category bought on one day only is due by all shoppers' interval, not as the shopper's habit", () => {
    const [coffee] = rankCategories({ categories: [rhythm("coffee", 1, 30, 35)], population: pop, now }, defaults);
    expect(coffee!.reasons).toContainEqual(
      expect.objectContaining({ code: "due_now", intervalDays: 30, daysSinceLast: 35, fromOwnHistory: false }),
    );
    expect(coffee!.sentence).toBe("You bought coffee 5 weeks ago, in store; it is usually bought about every 4 weeks");
    const [twice] = rankCategories({ categories: [rhythm("coffee", 2, 30, 35)], population: pop, now }, defaults);
    expect(twice!.reasons).toContainEqual(expect.objectContaining({ code: "due_now", fromOwnHistory: true }));
    expect(twice!.sentence).toMatch(/^You buy coffee about every/);
  });

  it("does not call a short-cycle category just bought", () => {
    const [tea] = rankCategories({ categories: [rhythm("tea", 5, 28, 2)], population: pop, now }, defaults);
    expect(tea!.reasons.map((r) => r.code)).not.toContain("just_bought");
    const [bedding] = rankCategories(
      {
        categories: [rhythm("bedding", 3, 180, 2)],
        population: population([category("bedding", { repurchaseIntervalDays: 180 })]),
        now,
      },
      defaults,
    );
    expect(bedding!.reasons).toContainEqual(expect.objectContaining({ code: "just_bought", daysSinceLast: 2 }));
  });
});

describe("complementary lift", () => {
  const pop = population([category("coffee"), category("kitchen"), category("candles")], {
    complements: { coffee: [{ categoryId: "kitchen", lift: 3, support: 40 }] },
  });

  it.each([
    [0, "candles"], // no lift: kitchen and candles tie on popularity, id order decides
    [defaults.liftWeight, "kitchen"],
  ])("liftWeight %f ranks %s first among unbought categories", (liftWeight, first) => {
    const ranked = ids([stat("coffee", { orders: 4, purchaseDays: 4 })], withOptions({ liftWeight }), pop);
    expect(ranked.filter((id) => id !== "coffee")[0]).toBe(first);
  });

  it("names the source category and the lift", () => {
    const ranked = rankCategories({ categories: [stat("coffee")], population: pop, now }, defaults);
    const kitchen = ranked.find((c) => c.categoryId === "kitchen")!;
    expect(kitchen.reasons).toContainEqual({ code: "complements", fromCategoryId: "coffee", lift: 3 });
    expect(kitchen.sentence).toBe("Shoppers who buy coffee often buy kitchen next");
  });

  it("speaks of the shopper's own purchases for a category they buy by habit (habitOrders)", () => {
    const kitchen = stat("kitchen", {
      orders: 3,
      purchaseDays: 3,
      firstPurchaseAt: daysAgo(300),
      lastPurchaseAt: daysAgo(30),
    });
    const sentenceOfKitchen = (options: CategoryOptions) =>
      rankCategories({ categories: [stat("coffee"), kitchen], population: pop, now }, options).find(
        (c) => c.categoryId === "kitchen",
      )!.sentence;
    expect(defaults.habitOrders).toBe(3);
    expect(sentenceOfKitchen(defaults)).toBe("You've bought kitchen 3 times, last 4 weeks ago, in store");
    expect(sentenceOfKitchen(withOptions({ habitOrders: 4 }))).toBe("Shoppers who buy coffee often buy kitchen next");
  });
});

describe("popularity prior", () => {
  const pop = population([
    category("milk", { penetration: 0.6 }),
    category("bread", { penetration: 0.05 }),
    category("tea", { penetration: 0.05 }),
    category("caviar", { penetration: 0.01 }),
  ]);

  it.each([
    ["thin history (one caviar purchase)", [stat("caviar")], "milk"],
    ["long history (300 caviar purchase days)", [rhythm("caviar", 300, 1, 1), rhythm("tea", 150, 2, 1)], "caviar"],
  ])("%s → %s first", (_label, stats, first) => {
    expect(ids(stats, defaults, pop)[0]).toBe(first);
  });

  it("gives the popular reason only where the prior carries the score", () => {
    const thin = rankCategories({ categories: [stat("caviar")], population: pop, now }, defaults);
    expect(thin[0]!.reasons.map((r) => r.code)).toContain("popular");
    const heavy = rankCategories({ categories: [rhythm("caviar", 300, 1, 1)], population: pop, now }, defaults);
    expect(heavy[0]!.reasons.map((r) => r.code)).not.toContain("popular");
  });

  it("answers a shopper with no history with the popular categories", () => {
    expect(ids([], defaults, pop)).toEqual(["milk", "bread", "tea", "caviar"]);
  });
});

describe("channels and browsing", () => {
  it.each([
    [3, 0, "web", "online"],
    [0, 2, "store", "in store"],
    [1, 2, "web_and_store", "online and in store"],
  ])("webUnits %d, storeUnits %d → channel %s", (webUnits, storeUnits, channel, phrase) => {
    const [shoes] = rankCategories(
      {
        categories: [stat("shoes", { webUnits, storeUnits, lastPurchaseAt: daysAgo(3) })],
        population: population([]),
        now,
      },
      defaults,
    );
    expect(shoes!.reasons).toContainEqual(
      expect.objectContaining({ code: "bought_before", channel, webUnits, storeUnits }),
    );
    expect(shoes!.sentence.endsWith(phrase)).toBe(true);
  });

  // Calendar days on the retailer's clock, and the sentence says the number daysSinceLast says. `now` is
  // 2026-06-01 00:00 UTC: five minutes later, a purchase at 22:00 on 30 May is 2 days ago, however few hours passed.
  it.each([
    ["2026-06-01T00:04:00Z", "2026-06-01T00:00:00Z", "UTC", 0, "today"],
    ["2026-06-01T00:04:00Z", "2026-05-31T23:50:00Z", "UTC", 1, "yesterday"],
    ["2026-06-01T00:04:00Z", "2026-05-30T22:00:00Z", "UTC", 2, "2 days ago"],
    ["2026-06-01T23:00:00Z", "2026-06-01T00:30:00Z", "UTC", 0, "today"],
    // 02:00 UTC on 1 June is 22:00 on 31 May in New York, and 09:00 UTC is 05:00 on 1 June there.
    ["2026-06-01T09:00:00Z", "2026-06-01T02:00:00Z", "America/New_York", 1, "yesterday"],
    ["2026-06-01T09:00:00Z", "2026-06-01T02:00:00Z", "UTC", 0, "today"],
    ["2026-06-01T00:00:00Z", "2026-04-20T12:00:00Z", "UTC", 42, "6 weeks ago"],
  ])("at %s says a purchase at %s (%s) as daysSinceLast %d and %s", (at, lastPurchaseAt, timeZone, whole, words) => {
    const [shoes] = rankCategories(
      {
        categories: [stat("shoes", { firstPurchaseAt: lastPurchaseAt, lastPurchaseAt })],
        population: population([]),
        now: new Date(at),
        timeZone,
      },
      defaults,
    );
    expect(shoes!.reasons).toContainEqual(expect.objectContaining({ code: "bought_before", daysSinceLast: whole }));
    expect(shoes!.sentence).toContain(` ${words}`);
  });

  it("counts a view's days on the retailer's clock too", () => {
    const [scarves] = rankCategories(
      {
        categories: [],
        browse: [{ categoryId: "scarves", views: 2, lastViewedAt: "2026-05-31T23:30:00Z" }],
        population: population([category("scarves")]),
        now: new Date("2026-06-01T00:10:00Z"),
      },
      defaults,
    );
    expect(scarves!.reasons).toContainEqual({ code: "viewed", views: 2, daysSinceViewed: 1 });
    expect(scarves!.sentence).toBe("You looked at scarves yesterday");
  });

  it("ranks a viewed category above an equal unviewed one", () => {
    const pop = population([category("hats"), category("scarves")]);
    const ranked = rankCategories(
      { categories: [], browse: [{ categoryId: "scarves", views: 4, lastViewedAt: daysAgo(1) }], population: pop, now },
      defaults,
    );
    expect(ranked.map((c) => c.categoryId)).toEqual(["scarves", "hats"]);
    expect(ranked[0]!.reasons).toContainEqual({ code: "viewed", views: 4, daysSinceViewed: 1 });
  });

  it("returns at most maxCategories, best first", () => {
    const pop = population(["a", "b", "c", "d"].map((id) => category(id)));
    const ranked = rankCategories({ categories: [], population: pop, now }, withOptions({ maxCategories: 2 }));
    expect(ranked).toHaveLength(2);
    expect(ranked[0]!.score).toBeGreaterThanOrEqual(ranked[1]!.score);
  });
});
