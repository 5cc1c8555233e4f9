// Ids are the retailer's strings (and, for browsing, the shopper's): "constructor", "toString" or
// "__proto__" are ids like any other. A plain object's lookup of those finds Object.prototype's members,
// and an assignment to "__proto__" replaces its prototype: the population statistics, stored as JSON and
// read back, must answer them as the ids they are.
import { describe, expect, it } from "vitest";
import { rankingOptionsWith } from "../../../worker/core/ranking/options.ts";
import { popularShelf } from "../../../worker/core/ranking/popular.ts";
import { buildPopulation, pricePercentile } from "../../../worker/core/ranking/population.ts";
import { recommend } from "../../../worker/core/ranking/recommend.ts";
import { now, product, rhythm } from "./builders.ts";

const odd = ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"];
const catalog = [...odd.map((id) => product(id, id)), product("tea-1", "tea"), product("tea-2", "tea")];
// Every customer buys the odd categories and tea, so each pair is a complement of the other.
const customers = Array.from({ length: 40 }, (_, i) => ({
  categories: [...odd, "tea"].map((id, k) => rhythm(id, 3 + ((i + k) % 3), 20 + k, 5 + k)),
}));
const sales = [...odd.map((id, k) => ({ productId: id, units: 240 - k })), { productId: "tea-1", units: 5 }];
// As the nightly job stores it and a request reads it back.
const population = JSON.parse(JSON.stringify(buildPopulation(customers, catalog, now, undefined, sales))) as ReturnType<
  typeof buildPopulation
>;

describe("ids named like JavaScript's own members", () => {
  it("are counted as ids in the population statistics", () => {
    for (const [k, id] of odd.entries()) {
      expect(Object.hasOwn(population.categories, id), id).toBe(true);
      expect(population.categories[id]?.buyers, id).toBe(40);
      expect(population.productUnits[id], id).toBe(240 - k);
    }
    expect(Object.getPrototypeOf(population.productUnits)).toBe(Object.prototype);
    expect(pricePercentile(population, "__proto__", 20)).toBeTypeOf("number");
    expect(pricePercentile(population, "isPrototypeOf", 20)).toBeUndefined();
  });

  it("rank on the popular shelf by their units, never as a function or NaN", () => {
    const shelf = popularShelf(population, catalog, rankingOptionsWith({}));
    expect(shelf.items.length).toBeGreaterThan(0);
    for (const item of shelf.items) expect(Number.isFinite(item.score), item.productId).toBe(true);
    expect(shelf.items.map((item) => item.productId)).toEqual(expect.arrayContaining(odd));
    expect(JSON.stringify(shelf)).not.toContain("native code");
  });

  it("give a shopper who bought them a shelf", () => {
    const result = recommend(
      {
        customerId: "c-odd",
        summary: {
          orders: 5,
          purchaseDays: 5,
          firstOrderAt: customers[0]!.categories[0]!.firstPurchaseAt,
          lastOrderAt: customers[0]!.categories[0]!.lastPurchaseAt,
          spend: 100,
          webOrders: 5,
          storeOrders: 0,
          appOrders: 0,
          phoneOrders: 0,
          units: 5,
          discountedUnits: 0,
        },
        categoryStats: customers[0]!.categories,
        population,
        catalog,
        rules: [],
        segment: { stage: "active" },
        now,
        // Browsing a category named like a member of Object.prototype, which no product is in.
        browse: [{ categoryId: "isPrototypeOf", views: 3, lastViewedAt: now.toISOString() }],
      },
      rankingOptionsWith({ holdout: { share: 0 } }),
    );
    expect(result.arm).toBe("personalized");
    expect(result.items.length).toBeGreaterThan(0);
    for (const item of result.items) expect(Number.isFinite(item.score), item.productId).toBe(true);
  });
});
