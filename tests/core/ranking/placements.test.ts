import { describe, expect, it } from "vitest";
import { rankingOptionsWith } from "../../../worker/core/ranking/options.ts";
import {
  buyAgain,
  dueCategories,
  goesWith,
  hiddenIds,
  mergeShelves,
  withoutHidden,
} from "../../../worker/core/ranking/placements.ts";
import { recommend } from "../../../worker/core/ranking/recommend.ts";
import type { RankedCategory, RankedItem } from "../../../worker/core/ranking/types.ts";
import type { Rule } from "../../../worker/core/rules/types.ts";
import { category, now, population, product, rhythm, stat } from "./builders.ts";

const pop = population(
  ["coffee", "mugs", "tea"].map((id) => category(id)),
  {
    productUnits: { "mug-cheap": 50, "mug-dear": 50, "tea-1": 500 },
  },
);
const beans = product("beans", "coffee", { listPrice: 20 });
const catalog = [
  beans,
  product("mug-cheap", "mugs", { listPrice: 5 }),
  product("mug-dear", "mugs", { listPrice: 80 }),
  product("mug-mid", "mugs", { listPrice: 20 }),
  product("tea-1", "tea", { listPrice: 10 }),
  product("tea-2", "tea", { listPrice: 12 }),
  product("coffee-2", "coffee", { listPrice: 22 }),
  product("mug-gone", "mugs", { listPrice: 20, inStock: false }),
];

const item = (id: string): RankedItem => ({
  productId: id,
  categoryId: "x",
  title: id,
  url: null,
  imageUrl: null,
  price: 1,
  listPrice: 1,
  onSale: false,
  score: 1,
  reasons: [],
  sentence: "",
});

describe("hidden ids", () => {
  it("hides the page's product and the excluded ids, from catalogs and ranked items alike", () => {
    const hidden = hiddenIds({ placement: "product", productId: "beans", excludeIds: ["tea-1"] });
    expect([...hidden].sort()).toEqual(["beans", "tea-1"]);
    expect(withoutHidden(catalog, hidden).map((p) => p.id)).not.toContain("beans");
    expect(withoutHidden([item("tea-1"), item("tea-2")], hidden).map((i) => i.productId)).toEqual(["tea-2"]);
  });

  it("merges shelves without repeats, first list first, capped", () => {
    const merged = mergeShelves([item("a"), item("b")], [item("b"), item("c"), item("d")], 3);
    expect(merged.map((i) => i.productId)).toEqual(["a", "b", "c"]);
  });
});

describe("goesWith: co-purchase in the shopper's price band", () => {
  const coPurchases = [
    { productId: "mug-dear", orders: 5 },
    { productId: "mug-cheap", orders: 5 },
    { productId: "beans", orders: 9 },
    { productId: "mug-gone", orders: 9 },
    { productId: "unknown", orders: 9 },
  ];

  it("favours the co-bought item in the shopper's band and never offers the product itself or what cannot be bought", () => {
    // A shopper who pays about 5 for mugs: the 5 mug comes before the 80 mug bought as often.
    const items = goesWith({
      product: beans,
      coPurchases,
      catalog,
      population: pop,
      categoryStats: [stat("mugs", { avgUnitPrice: 5 })],
    });
    expect(items.map((i) => i.productId)).toEqual(["mug-cheap", "mug-dear"]);
    expect(items[0]?.reasons[0]).toMatchObject({ code: "bought_with", productId: "beans", orders: 5 });
    expect(items[0]?.sentence).toBe("Often bought with Product beans");
  });

  it("follows a premium shopper's band the other way", () => {
    const items = goesWith({
      product: beans,
      coPurchases,
      catalog,
      population: pop,
      categoryStats: [stat("mugs", { avgUnitPrice: 80 })],
    });
    expect(items.map((i) => i.productId)).toEqual(["mug-dear", "mug-cheap"]);
  });

  it("leaves out what the shopper just bought", () => {
    const items = goesWith({
      product: beans,
      coPurchases,
      catalog,
      population: pop,
      categoryStats: [],
      recentlyBought: new Set(["mug-cheap"]),
    });
    expect(items.map((i) => i.productId)).toEqual(["mug-dear"]);
  });
});

describe("buyAgain", () => {
  const ranked: RankedCategory[] = [
    { categoryId: "tea", score: 2, reasons: [{ code: "due_now", overdueRatio: 1 }], sentence: "Time for tea" },
    { categoryId: "coffee", score: 1.5, reasons: [{ code: "bought_before" }], sentence: "You like coffee" },
    { categoryId: "mugs", score: 1, reasons: [{ code: "due_now", overdueRatio: 1.2 }], sentence: "Time for mugs" },
  ];

  it("keeps only due-now categories", () => {
    expect(dueCategories(ranked).map((c) => c.categoryId)).toEqual(["tea", "mugs"]);
  });

  it("shows the usual items of due categories, most ordered first, varied across categories", () => {
    const items = buyAgain({
      categories: ranked,
      usualProducts: [
        { productId: "tea-1", orders: 2 },
        { productId: "tea-2", orders: 6 },
        { productId: "beans", orders: 9 },
        { productId: "mug-mid", orders: 1 },
        { productId: "mug-gone", orders: 4 },
      ],
      catalog,
    });
    expect(items.map((i) => i.productId)).toEqual(["tea-2", "mug-mid", "tea-1"]);
    expect(items[0]?.reasons[0]).toEqual({ code: "buy_again", categoryId: "tea", timesBought: 6 });
  });
});

describe("recommend with a placement", () => {
  const base = {
    customerId: null,
    summary: null,
    categoryStats: [],
    population: pop,
    catalog,
    rules: [],
    now,
  };

  it("puts co-purchases first on a product page and never the product", () => {
    const result = recommend({
      ...base,
      placement: {
        placement: "product",
        productId: "tea-1",
        excludeIds: [],
        coPurchases: [{ productId: "mug-mid", orders: 3 }],
      },
    });
    expect(result.items[0]?.productId).toBe("mug-mid");
    expect(result.items.map((i) => i.productId)).not.toContain("tea-1");
    expect(result.items.length).toBeGreaterThan(1);
  });

  it("never shows an excluded id, even one a pin rule names", () => {
    const rules: Rule[] = [
      {
        id: "pin-tea",
        name: "Pin tea",
        action: "pin",
        targetType: "product",
        targetId: "tea-1",
        slot: 1,
        enabled: true,
      },
    ];
    const result = recommend({
      ...base,
      rules,
      placement: { placement: "home", productId: null, excludeIds: ["tea-1", "mug-cheap"] },
    });
    const ids = result.items.map((i) => i.productId);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids).not.toContain("tea-1");
    expect(ids).not.toContain("mug-cheap");
  });

  it("gives an anonymous visitor an empty buy-again shelf", () => {
    const result = recommend({ ...base, placement: { placement: "buy-again", productId: null, excludeIds: [] } });
    expect(result.items).toEqual([]);
  });

  const pins: Rule[] = [
    {
      id: "pin-mug",
      name: "Pin mug",
      action: "pin",
      targetType: "product",
      targetId: "mug-mid",
      slot: 1,
      enabled: true,
    },
    {
      id: "pin-coffee",
      name: "Pin coffee",
      action: "pin",
      targetType: "category",
      targetId: "coffee",
      slot: 1,
      enabled: true,
    },
  ];

  /** The buy-again shelf of a shopper whose usual products are tea-2 and beans, four orders each. */
  const buyAgainShelf = {
    placement: "buy-again",
    productId: null,
    excludeIds: [],
    usualProducts: [
      { productId: "tea-2", orders: 4 },
      { productId: "beans", orders: 4 },
    ],
  };

  /** A shopper of four web orders, the last on 2 May. */
  const fourOrders = {
    orders: 4,
    purchaseDays: 4,
    firstOrderAt: "2026-01-01T00:00:00Z",
    lastOrderAt: "2026-05-02T00:00:00Z",
    spend: 40,
    webOrders: 4,
    storeOrders: 0,
    appOrders: 0,
    phoneOrders: 0,
    units: 4,
    discountedUnits: 0,
  };

  it.each([
    ["no rule", []],
    ["pins, which place nothing there", pins],
  ])("gives a known shopper their due category's usual items on the buy-again shelf (%s)", (_label, rules) => {
    const result = recommend(
      {
        ...base,
        rules,
        customerId: "c1",
        holdoutKey: "c1",
        summary: fourOrders,
        // Tea every 30 days, last 30 days ago: due. Coffee bought 2 days ago: not due.
        categoryStats: [rhythm("tea", 4, 30, 30), rhythm("coffee", 4, 30, 2)],
        placement: buyAgainShelf,
      },
      rankingOptionsWith({ holdout: { share: 0 } }),
    );
    expect(result.arm).toBe("personalized");
    expect(result.items.map((i) => i.productId)).toEqual(["tea-2"]);
    expect(result.categories.map((c) => c.categoryId)).toEqual(["tea"]);
  });

  // Counted in an arm only with a shelf to show: a held-out shopper with nothing due gets no popular
  // shelf either, so the holdout arm holds the same kind of shopper as the personalized one.
  it.each([
    ["tea due", 30, ["personalized", "holdout"], true],
    ["nothing due", 2, ["personalized", "holdout"], false],
  ])(
    "gives a held-out shopper a buy-again shelf exactly when a personalized one would have one (%s)",
    (_label, teaDaysAgo, arms, shown) => {
      for (const arm of arms) {
        const result = recommend(
          {
            ...base,
            customerId: "c1",
            holdoutKey: "c1",
            summary: fourOrders,
            categoryStats: [rhythm("tea", 4, 30, teaDaysAgo), rhythm("coffee", 4, 30, 2)],
            placement: buyAgainShelf,
          },
          rankingOptionsWith({ holdout: { share: arm === "holdout" ? 1 : 0 } }),
        );
        expect(result.arm).toBe(arm);
        expect(result.items.length > 0).toBe(shown);
        if (arm === "holdout" && shown) expect(result.items.length).toBeGreaterThan(1); // the popular shelf
      }
    },
  );
});
