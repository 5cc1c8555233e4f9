import { describe, expect, it } from "vitest";
import { rankingOptionsWith } from "../../../worker/core/ranking/options.ts";
import { type RecommendationInput, recommend } from "../../../worker/core/ranking/recommend.ts";
import type { CustomerSummary } from "../../../worker/core/ranking/types.ts";
import { holdoutArm } from "../../../worker/core/rules/holdout.ts";
import { category, daysAgo, now, population, product, rhythm } from "./builders.ts";

const summary: CustomerSummary = {
  orders: 6,
  purchaseDays: 6,
  firstOrderAt: daysAgo(200),
  lastOrderAt: daysAgo(30),
  spend: 120,
  webOrders: 2,
  storeOrders: 4,
  appOrders: 0,
  phoneOrders: 0,
  units: 100,
  discountedUnits: 1,
};
const base: RecommendationInput = {
  customerId: "cust-1",
  summary,
  categoryStats: [rhythm("coffee", 6, 30, 30, { webUnits: 2, storeUnits: 4 })],
  // A population whose shoppers stick to their own categories (small κ), so six orders outweigh the prior.
  population: population([category("coffee", { penetration: 0.01 }), category("milk", { penetration: 0.9 })], {
    tasteConcentration: 2,
  }),
  catalog: [
    product("coffee-full", "coffee"),
    product("coffee-sale", "coffee", { salePrice: 15 }),
    product("milk-1", "milk"),
  ],
  rules: [],
  segment: { stage: "active" },
  now,
};
const personalized = rankingOptionsWith({ holdout: { share: 0 } });

describe("recommend", () => {
  it("hashes the arm from holdoutKey when given, whatever the customer id", () => {
    const options = rankingOptionsWith({ holdout: { share: 0.5 } });
    const ids = Array.from({ length: 40 }, (_, i) => `${i}-customer`);
    const key = "account:stable";
    const expected = holdoutArm(key, options.holdout);
    for (const customerId of ids) {
      expect(recommend({ ...base, customerId, holdoutKey: key }, options).arm).toBe(expected);
    }
    // Without it the customer id decides, and a different id can land in the other arm.
    const byCustomer = new Set(ids.map((customerId) => recommend({ ...base, customerId }, options).arm));
    expect(byCustomer).toEqual(new Set(["holdout", "personalized"]));
  });

  it.each([
    ["anonymous visitor", "anonymous", { customerId: null, summary: null, categoryStats: [] }, personalized],
    ["held-out shopper", "holdout", {}, rankingOptionsWith({ holdout: { share: 1 } })],
    ["personalized shopper", "personalized", {}, personalized],
  ])("%s gets the %s arm", (_label, arm, fields, options) => {
    const result = recommend({ ...base, ...fields }, options);
    expect(result.arm).toBe(arm);
    expect(result.categories[0]!.categoryId).toBe(arm === "personalized" ? "coffee" : "milk");
  });

  it("derives a full-price shopper and hides discounts from them unless a rule allows them", () => {
    const hidden = recommend(base, personalized);
    expect(hidden.segment.discountSensitivity).toBe("full_price");
    expect(hidden.items.map((i) => i.productId)).not.toContain("coffee-sale");

    const allowed = recommend(
      {
        ...base,
        rules: [
          {
            id: "allow-all",
            name: "Sale week",
            action: "allow_discounts",
            targetType: "category",
            targetId: "*",
            enabled: true,
            segment: { stage: "active" },
          },
        ],
      },
      personalized,
    );
    expect(allowed.items.map((i) => i.productId)).toContain("coffee-sale");
  });

  it("applies rules to the default shelf too", () => {
    const result = recommend(
      {
        ...base,
        customerId: null,
        rules: [
          { id: "x", name: "No milk", action: "exclude", targetType: "category", targetId: "milk", enabled: true },
        ],
      },
      personalized,
    );
    expect(result.categories.map((c) => c.categoryId)).toEqual(["coffee"]);
    expect(result.appliedRuleIds).toEqual(["x"]);
  });

  describe("an exclusion or a hidden discount leaves the shelf full", () => {
    // Three categories of four products; the shopper buys coffee. A four-item shelf from two categories.
    const shop: RecommendationInput = {
      ...base,
      population: population(
        [category("coffee", { penetration: 0.01 }), category("milk", { penetration: 0.9 }), category("tea")],
        { tasteConcentration: 2 },
      ),
      catalog: ["coffee", "milk", "tea"].flatMap((categoryId) =>
        [1, 2, 3, 4].map((n) => product(`${categoryId}-${n}`, categoryId, n === 1 ? { salePrice: 5 } : {})),
      ),
    };
    const options = (holdout: number) =>
      rankingOptionsWith({
        holdout: { share: holdout },
        items: { maxItems: 4, categoriesForItems: 2 },
        popular: { maxItems: 4, maxCategories: 3 },
      });
    const noCategory = {
      id: "x",
      name: "No coffee",
      action: "exclude",
      targetType: "category",
      targetId: "coffee",
      enabled: true,
    } as const;
    const noProduct = {
      id: "y",
      name: "No milk-1",
      action: "exclude",
      targetType: "product",
      targetId: "milk-1",
      enabled: true,
    } as const;
    const noSales = {
      id: "z",
      name: "Full price",
      action: "hide_discounts",
      targetType: "category",
      targetId: "*",
      enabled: true,
    } as const;
    /** A pin rule (its name says what it pins). */
    const pinRule = (targetType: "category" | "product", targetId: string, slot = 1, id = "p") =>
      ({ id, name: `Pin ${targetId}`, action: "pin", targetType, targetId, slot, enabled: true }) as const;

    it.each([
      ["personalized", 0],
      ["held-out (popular)", 1],
    ])("%s shelf", (_label, holdout) => {
      const before = recommend(shop, options(holdout));
      expect(before.items).toHaveLength(4);
      // Leave out the first category and a product of the second; hide every discount.
      const [top, second] = [...new Set(before.items.map((item) => item.categoryId))];
      const dropped = before.items.find((item) => item.categoryId === second)?.productId;
      expect(top && second && dropped).toBeTruthy();
      const rules = [
        { ...noCategory, targetId: top as string },
        { ...noProduct, targetId: dropped as string },
        noSales,
      ];
      const after = recommend({ ...shop, rules }, options(holdout));
      const ids = after.items.map((item) => item.productId);
      // Full, with the third category taking the first one's place among the categories and the items.
      expect(ids).toHaveLength(4);
      expect(after.items.some((item) => item.categoryId !== top && item.categoryId !== second)).toBe(true);
      expect(after.items.filter((item) => item.categoryId === top || item.productId === dropped)).toEqual([]);
      expect(after.items.some((item) => item.onSale)).toBe(false);
      expect(after.categories.map((c) => c.categoryId)).not.toContain(top);
      expect(after.appliedRuleIds.sort()).toEqual(["x", "y", "z"]);
    });

    it.each([
      ["boost", { action: "boost", strength: 100 } as const],
      ["pin", { action: "pin", slot: 1 } as const],
    ])("a %s brings a category from outside the first group, with its items", (_label, fields) => {
      const before = recommend(shop, options(0));
      const shown = new Set(before.items.map((item) => item.categoryId));
      const outside = before.categories.find((category) => !shown.has(category.categoryId))?.categoryId;
      expect(outside).toBeDefined();
      const rule = {
        id: "b",
        name: "Lead",
        targetType: "category",
        targetId: outside as string,
        enabled: true,
        ...fields,
      } as const;
      const after = recommend({ ...shop, rules: [rule] }, options(0));
      expect(after.categories[0]?.categoryId).toBe(outside);
      expect(after.items[0]?.categoryId).toBe(outside);
      expect(after.items).toHaveLength(4);
      expect(after.appliedRuleIds).toEqual(["b"]);
    });

    it("a category boost moves its category, and its items with it, once", () => {
      const three = (holdout: number) =>
        rankingOptionsWith({
          holdout: { share: holdout },
          items: { maxItems: 6, categoriesForItems: 3 },
          popular: { maxItems: 6, maxCategories: 3 },
        });
      for (const holdout of [0, 1]) {
        const before = recommend(shop, three(holdout));
        // The second category, whose score a boost can lift (a category with none stays at none).
        const second = before.categories[1]?.categoryId as string;
        const rule = {
          id: "b",
          name: "Lead",
          action: "boost",
          targetType: "category",
          targetId: second,
          strength: 10_000,
          enabled: true,
        } as const;
        const after = recommend({ ...shop, rules: [rule] }, three(holdout));
        expect(after.categories[0]?.categoryId).toBe(second);
        // Still in turns: the first three items come from the three categories, the boosted one first.
        const firstThree = after.items.slice(0, 3).map((item) => item.categoryId);
        expect(firstThree[0]).toBe(second);
        expect(new Set(firstThree).size).toBe(3);
        // Each of its items says why, without being moved a second time.
        for (const item of after.items.filter((entry) => entry.categoryId === second))
          expect(item.reasons).toContainEqual({ code: "rule", ruleId: "b", action: "boost" });
      }
    });

    it.each([1, 9])(
      "under a product's boost (strength %i), bury or pin, a shorter shelf is still the start of a longer one",
      (strength) => {
        const sized = (maxItems: number) =>
          rankingOptionsWith({
            holdout: { share: 0 },
            items: { maxItems, categoriesForItems: 2 },
            popular: { maxItems, maxCategories: 3 },
          });
        const long = recommend(shop, sized(10)).items.map((item) => item.productId);
        expect(long.length).toBeGreaterThanOrEqual(8);
        const [boosted, pinned] = [long[long.length - 2] as string, long[long.length - 1] as string];
        const rules = [
          {
            id: "up",
            name: "Up",
            action: "boost",
            targetType: "product",
            targetId: boosted,
            strength,
            enabled: true,
          },
          {
            id: "down",
            name: "Down",
            action: "bury",
            targetType: "product",
            targetId: long[0] as string,
            strength: 9,
            enabled: true,
          },
          {
            id: "pin",
            name: "Pin",
            action: "pin",
            targetType: "product",
            targetId: pinned,
            slot: 2,
            enabled: true,
          },
        ] as const;
        const steered = (maxItems: number) => recommend({ ...shop, rules: [...rules] }, sized(maxItems)).items;
        const ten = steered(10);
        const at = (id: string) => ten.findIndex((item) => item.productId === id);
        expect(at(boosted)).toBeGreaterThanOrEqual(0);
        expect(at(boosted)).toBeLessThan(long.indexOf(boosted) - 2);
        expect(ten[1]?.productId).toBe(pinned);
        // Each size chooses only as deep as it needs (itemDepthFor), the weak boost less deep than 48.
        for (const size of [1, 2, 3, 4, 5, 6, 7, 8, 9]) expect(steered(size)).toEqual(ten.slice(0, size));
      },
    );

    it("keeps the prefix under random product rules, two on one product included", () => {
      // Six categories of twelve products at spread prices; rules drawn from a seeded generator.
      const wide: RecommendationInput = {
        ...base,
        categoryStats: [rhythm("c0", 6, 30, 30), rhythm("c1", 3, 40, 20)],
        population: population(
          Array.from({ length: 6 }, (_, c) => category(`c${c}`, { penetration: 0.05 + c * 0.05 })),
          { tasteConcentration: 2 },
        ),
        catalog: Array.from({ length: 72 }, (_, n) =>
          product(`c${n % 6}-${n}`, `c${n % 6}`, { listPrice: 5 + ((n * 37) % 90), salePrice: n % 7 === 0 ? 4 : null }),
        ),
      };
      let state = 20261201;
      const random = () => {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        return state / 2 ** 32;
      };
      const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
      const ids = wide.catalog.map((p) => p.id);
      for (let run = 0; run < 1000; run++) {
        const target = pick(ids);
        const rules = Array.from({ length: 1 + Math.floor(random() * 4) }, (_, r) => {
          const action = pick(["boost", "bury", "pin"] as const);
          return {
            id: `r${r}`,
            name: `r${r}`,
            action,
            targetType: "product" as const,
            // Half the rules share one target, so two can name the same product.
            targetId: random() < 0.5 ? target : pick(ids),
            enabled: true,
            ...(action === "pin" ? { slot: 1 + Math.floor(random() * 10) } : { strength: 0.1 + random() * 2.9 }),
          };
        });
        const holdout = random() < 0.3 ? 1 : 0;
        const shelf = (maxItems: number) =>
          recommend(
            { ...wide, rules },
            rankingOptionsWith({
              holdout: { share: holdout },
              items: { maxItems, categoriesForItems: 3 },
              popular: { maxItems, maxCategories: 6 },
            }),
          ).items.map((item) => item.productId);
        const longest = shelf(16);
        for (const size of [1, 2, 4, 7, 8, 12])
          expect(shelf(size), `run ${run}, size ${size}`).toEqual(longest.slice(0, size));
      }
    });

    it("a category pin shows an excluded category, with its items, as a product pin shows an excluded product", () => {
      const pin = pinRule("category", "tea");
      const excludeTea = { ...noCategory, targetId: "tea" };
      const result = recommend({ ...shop, rules: [excludeTea, pin] }, options(0));
      expect(result.categories[0]?.categoryId).toBe("tea");
      expect(result.items[0]?.categoryId).toBe("tea");
      expect(result.items).toHaveLength(4);
    });

    it("a pin of a category with nothing to offer places nothing: unknown, or every product out of stock", () => {
      const pinOf = (targetId: string) => pinRule("category", targetId, 1, `pin-${targetId}`);
      const outOfStock = {
        ...shop,
        catalog: [...shop.catalog, product("scarf-1", "scarves", { inStock: false })],
      };
      const plain = recommend(outOfStock, options(0));
      for (const targetId of ["bokos", "scarves"]) {
        const pinned = recommend({ ...outOfStock, rules: [pinOf(targetId)] }, options(0));
        expect(
          pinned.categories.map((c) => c.categoryId),
          targetId,
        ).toEqual(plain.categories.map((c) => c.categoryId));
        expect(pinned.appliedRuleIds).toEqual([]);
      }
      // A category with a product in stock is placed, though the ranking did not pick it.
      const withStock = { ...outOfStock, catalog: [...outOfStock.catalog, product("scarf-2", "scarves")] };
      const placed = recommend({ ...withStock, rules: [pinOf("scarves")] }, options(0));
      expect(placed.categories[0]?.categoryId).toBe("scarves");
      expect(placed.appliedRuleIds).toEqual(["pin-scarves"]);
    });

    it("a pin of a ranked category with nothing this shelf may show leaves it where the ranking put it", () => {
      const pinTea = pinRule("category", "tea", 1, "pin-tea");
      const teaIds = [1, 2, 3, 4].map((n) => `tea-${n}`);
      const teaOnSale = shop.catalog.map((p) => (p.categoryId === "tea" ? { ...p, salePrice: 5 } : p));
      const cases: [string, RecommendationInput][] = [
        [
          "every tea out of stock",
          { ...shop, catalog: shop.catalog.map((p) => (p.categoryId === "tea" ? { ...p, inStock: false } : p)) },
        ],
        ["every tea on sale under a hide-discounts switch", { ...shop, catalog: teaOnSale, rules: [noSales] }],
        [
          "every tea excluded by product",
          {
            ...shop,
            rules: teaIds.map((id) => ({ ...noCategory, id: `x-${id}`, targetType: "product" as const, targetId: id })),
          },
        ],
        [
          "every tea on the page already",
          { ...shop, placement: { placement: "home", productId: null, excludeIds: teaIds, coPurchases: [] } },
        ],
      ];
      for (const [label, input] of cases) {
        const plain = recommend(input, options(0));
        const pinned = recommend({ ...input, rules: [...input.rules, pinTea] }, options(0));
        expect(
          pinned.categories.map((c) => c.categoryId),
          label,
        ).toEqual(plain.categories.map((c) => c.categoryId));
        expect(
          pinned.items.map((i) => i.productId),
          label,
        ).toEqual(plain.items.map((i) => i.productId));
        expect(pinned.appliedRuleIds, label).not.toContain("pin-tea");
      }
    });

    it("a pin of an item a hide-discounts switch hides places nothing, and the other pins keep their slots", () => {
      const pinSale = pinRule("product", "milk-1", 2, "s");
      const pinTea = pinRule("product", "tea-3", 3, "t");
      const result = recommend({ ...shop, rules: [noSales, pinSale, pinTea] }, options(0));
      const ids = result.items.map((item) => item.productId);
      expect(ids).not.toContain("milk-1");
      expect(ids[2]).toBe("tea-3");
      expect(ids).toHaveLength(4);
      expect(result.appliedRuleIds).not.toContain("s");
    });

    it("a pinned excluded category keeps its own ranking, and lifts no exclusion from co-purchases", () => {
      const excludeTea = { ...noCategory, targetId: "tea" };
      const pinTea = (slot: number) => pinRule("category", "tea", slot);
      const plain = recommend(shop, options(0)).categories.find((category) => category.categoryId === "tea");
      const leading = recommend(
        {
          ...shop,
          rules: [excludeTea, pinTea(1)],
        },
        options(0),
      );
      expect(leading.categories[0]?.reasons).toEqual([
        ...(plain?.reasons ?? []),
        { code: "rule", ruleId: "p", action: "pin" },
      ]);
      expect(leading.appliedRuleIds).toEqual(["p"]);
      // Pinned third, outside the two categories that supply items: a co-bought tea stays excluded.
      const page = {
        placement: "product",
        productId: "coffee-2",
        excludeIds: [],
        coPurchases: [{ productId: "tea-2", orders: 5 }],
      };
      const third = recommend(
        {
          ...shop,
          placement: page,
          rules: [excludeTea, pinTea(3)],
        },
        options(0),
      );
      expect(third.items.map((item) => item.productId)).not.toContain("tea-2");
      expect(recommend({ ...shop, placement: page }, options(0)).items[0]?.productId).toBe("tea-2");
    });

    it("a pin still places an excluded product", () => {
      const pin = pinRule("product", "coffee-2");
      const result = recommend({ ...shop, rules: [noCategory, pin] }, options(0));
      expect(result.items[0]?.productId).toBe("coffee-2");
      expect(result.items).toHaveLength(4);
    });
  });
});
