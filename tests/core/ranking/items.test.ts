import { describe, expect, it } from "vitest";
import {
  currentPrice,
  type DiscountOverride,
  discountSensitivityFor,
  type ItemSelectionInput,
  isOnSale,
  selectItems,
  shelfOrder,
} from "../../../worker/core/ranking/items.ts";
import { type DiscountPolicy, rankingOptionsWith } from "../../../worker/core/ranking/options.ts";
import type { RankedCategory } from "../../../worker/core/ranking/types.ts";
import type { DiscountSensitivity } from "../../../worker/core/vocabulary.ts";
import { category, daysAgo, now, population, product, stat } from "./builders.ts";

const ranked = (...ids: string[]): RankedCategory[] =>
  ids.map((categoryId, i) => ({ categoryId, score: 1 / (i + 1), reasons: [], sentence: `Because of ${categoryId}` }));

const pop = population(["coffee", "tea", "cocoa"].map((id) => category(id)));
const coffeeShelf = [
  product("c-2", "coffee", { listPrice: 2 }),
  product("c-10", "coffee", { listPrice: 10 }),
  product("c-20", "coffee", { listPrice: 20 }),
  product("c-50", "coffee", { listPrice: 50 }),
  product("c-90", "coffee", { listPrice: 90 }),
  product("c-gone", "coffee", { listPrice: 20, inStock: false }),
  product("c-retired", "coffee", { listPrice: 20, active: false }),
];

function input(fields: Partial<ItemSelectionInput>): ItemSelectionInput {
  return {
    categories: ranked("coffee"),
    catalog: coffeeShelf,
    population: pop,
    categoryStats: [],
    discountSensitivity: "mixed",
    now,
    ...fields,
  };
}

describe("selectItems: price band", () => {
  it.each([
    [3, "c-2"],
    [20, "c-20"],
    [60, "c-50"],
    [95, "c-90"],
  ])("a shopper who pays about %d for coffee sees %s first", (avgUnitPrice, first) => {
    const items = selectItems(input({ categoryStats: [stat("coffee", { avgUnitPrice })] }));
    expect(items[0]!.productId).toBe(first);
    expect(items[0]!.reasons).toContainEqual(expect.objectContaining({ code: "price_band", fromOwnHistory: true }));
  });

  it("uses the shopper's price position elsewhere for a category they never bought", () => {
    const premium = selectItems(
      input({ categoryStats: [stat("tea", { avgUnitPrice: 90, units: 3 })], categories: ranked("coffee") }),
    );
    expect(premium[0]!.productId).toBe("c-90");
  });

  it("never offers out-of-stock or inactive products", () => {
    const items = selectItems(input({}), rankingOptionsWith({ items: { maxPerCategory: 10 } }));
    expect(items.map((i) => i.productId)).not.toContain("c-gone");
    expect(items.map((i) => i.productId)).not.toContain("c-retired");
    expect(items).toHaveLength(5);
  });
});

describe("selectItems: discounts", () => {
  const shelf = [
    product("full", "coffee", { listPrice: 20 }),
    product("sale", "coffee", { listPrice: 25, salePrice: 20 }),
  ];
  const rule = (mode: "allow" | "hide"): DiscountOverride => ({
    scope: "all",
    targetId: "*",
    mode,
    ruleId: `r-${mode}`,
  });

  it.each<[DiscountSensitivity, DiscountPolicy, DiscountOverride[], string[]]>([
    ["full_price", "auto", [], ["full"]],
    ["mixed", "auto", [], ["full", "sale"]],
    ["deal_seeker", "auto", [], ["sale", "full"]],
    ["full_price", "allow", [], ["full", "sale"]],
    ["deal_seeker", "hide", [], ["full"]],
    ["full_price", "auto", [rule("allow")], ["full", "sale"]],
    ["deal_seeker", "auto", [rule("hide")], ["full"]],
  ])("%s shopper, policy %s, overrides %j → %j", (discountSensitivity, discountPolicy, discountOverrides, expected) => {
    const items = selectItems(
      input({ catalog: shelf, discountSensitivity, discountOverrides }),
      rankingOptionsWith({ items: { discountPolicy } }),
    );
    expect(items.map((i) => i.productId)).toEqual(expected);
  });

  it("prices a sale item at its sale price and keeps the list price", () => {
    const [sale] = selectItems(input({ catalog: [shelf[1]!], discountSensitivity: "deal_seeker" }));
    expect(sale).toMatchObject({ price: 20, listPrice: 25, onSale: true });
    expect(sale!.reasons).toContainEqual({ code: "on_sale", discountPercent: 20, favoured: true });
    expect(sale!.sentence).toContain("20% off");
  });

  it.each([
    [100, 2, "full_price"],
    [100, 30, "mixed"],
    [100, 80, "deal_seeker"],
    [1, 0, "mixed"], // one unit is not evidence
  ])("%d units, %d discounted → %s", (units, discountedUnits, expected) => {
    expect(discountSensitivityFor({ units, discountedUnits }, pop)).toBe(expected);
  });
});

describe("selectItems: not just bought, varied", () => {
  it.each([
    [5, false],
    [40, true],
  ])("a product bought %d days ago (category interval 30) is offered: %s", (days, offered) => {
    const items = selectItems(input({ recentPurchases: [{ productId: "c-20", purchasedAt: daysAgo(days) }] }));
    expect(items.some((i) => i.productId === "c-20")).toBe(offered);
  });

  it("takes the best of each top category before the second best of any, at most maxPerCategory from one", () => {
    const catalog = ["coffee", "tea", "cocoa"].flatMap((c) => [1, 2, 3, 4].map((n) => product(`${c}-${n}`, c)));
    const items = selectItems(
      input({ categories: ranked("coffee", "tea", "cocoa"), catalog }),
      rankingOptionsWith({ items: { maxItems: 6, maxPerCategory: 2 } }),
    );
    expect(items.map((i) => i.categoryId)).toEqual(["coffee", "tea", "cocoa", "coffee", "tea", "cocoa"]);
  });

  it("fills a shelf the capped categories cannot fill from their next items, in turns again", () => {
    const catalog = [
      ...["coffee", "tea"].flatMap((c) => [1, 2, 3, 4].map((n) => product(`${c}-${n}`, c))),
      product("cocoa-1", "cocoa"),
    ];
    const items = selectItems(
      input({ categories: ranked("coffee", "tea", "cocoa"), catalog }),
      rankingOptionsWith({ items: { maxItems: 8, maxPerCategory: 2 } }),
    );
    expect(items.map((i) => i.categoryId)).toEqual([
      "coffee",
      "tea",
      "cocoa",
      "coffee",
      "tea",
      "coffee",
      "tea",
      "coffee",
    ]);
  });

  it("shelfOrder: a group of categories in turns up to the cap, the next group when it runs out, then the rest", () => {
    const queues = [["a1", "a2", "a3"], ["b1"], ["c1", "c2"], ["d1", "d2"]];
    const order = (maxItems: number, categoriesForItems = 2, maxPerCategory = 1) =>
      shelfOrder(queues.length, (i) => queues[i] as string[], { maxItems, maxPerCategory, categoriesForItems });
    expect(order(10)).toEqual(["a1", "b1", "c1", "d1", "a2", "c2", "d2", "a3"]);
    expect(order(10, 4, 2)).toEqual(["a1", "b1", "c1", "d1", "a2", "c2", "d2", "a3"]);
    expect(order(10, 2, 2)).toEqual(["a1", "b1", "a2", "c1", "d1", "c2", "d2", "a3"]);
    // The length only cuts the order.
    for (let n = 1; n <= 8; n++) expect(order(n, 2, 2)).toEqual(order(10, 2, 2).slice(0, n));
    expect(shelfOrder(0, () => [], { maxItems: 3, maxPerCategory: 2, categoriesForItems: 2 })).toEqual([]);
  });

  it("shelfOrder computes a group's items only when the shelf reaches it", () => {
    const asked: number[] = [];
    const itemsOf = (i: number) => {
      asked.push(i);
      return [`${i}-1`, `${i}-2`, `${i}-3`];
    };
    expect(shelfOrder(16, itemsOf, { maxItems: 8, maxPerCategory: 3, categoriesForItems: 4 })).toHaveLength(8);
    expect(asked).toEqual([0, 1, 2, 3]);
  });

  it("draws from the top categoriesForItems categories first, and from the next only when they run out", () => {
    const catalog = [
      ...["coffee", "tea"].flatMap((c) => [1, 2].map((n) => product(`${c}-${n}`, c))),
      product("cocoa-1", "cocoa"),
    ];
    const items = selectItems(
      input({ categories: ranked("coffee", "tea", "cocoa"), catalog }),
      rankingOptionsWith({ items: { categoriesForItems: 2, maxItems: 5 } }),
    );
    expect(items.map((i) => i.categoryId)).toEqual(["coffee", "tea", "coffee", "tea", "cocoa"]);
  });
});

describe("currentPrice and isOnSale", () => {
  it("takes a sale price only below the list price: at or above it, the list price is the price", () => {
    expect(currentPrice({ listPrice: 20, salePrice: 15 })).toBe(15);
    expect(isOnSale({ listPrice: 20, salePrice: 15 })).toBe(true);
    for (const salePrice of [20, 25, null]) {
      expect(currentPrice({ listPrice: 20, salePrice })).toBe(20);
      expect(isOnSale({ listPrice: 20, salePrice })).toBe(false);
    }
  });
});
