import { describe, expect, it } from "vitest";
import { rankingOptionsWith } from "../../../worker/core/ranking/options.ts";
import { popularShelf } from "../../../worker/core/ranking/popular.ts";
import { category, population, product } from "./builders.ts";

describe("popularShelf", () => {
  const pop = population(
    [
      category("milk", { penetration: 0.6, trend: 1 }),
      category("bread", { penetration: 0.4, trend: 0.8 }),
      category("kombucha", { penetration: 0.3, trend: 1.5 }),
    ],
    { productUnits: { "milk-1": 5, "milk-2": 50, "bread-1": 9 } },
  );
  const catalog = [
    product("milk-1", "milk"),
    product("milk-2", "milk"),
    product("milk-3", "milk", { inStock: false }),
    product("bread-1", "bread"),
    product("kombucha-1", "kombucha", { salePrice: 10 }),
  ];

  it.each([
    [0, ["milk", "bread", "kombucha"]],
    [1, ["milk", "kombucha", "bread"]], // the trend lifts kombucha over bread
  ])("trendWeight %f orders categories %j", (trendWeight, expected) => {
    const shelf = popularShelf(pop, catalog, rankingOptionsWith({ popular: { trendWeight } }));
    expect(shelf.categories.map((c) => c.categoryId)).toEqual(expected);
  });

  it("round-robins best sellers across categories and skips what cannot be bought", () => {
    const shelf = popularShelf(pop, catalog, rankingOptionsWith({ popular: { trendWeight: 0 } }));
    expect(shelf.items.map((i) => i.productId)).toEqual(["milk-2", "bread-1", "kombucha-1", "milk-1"]);
    expect(shelf.items[2]).toMatchObject({ price: 10, listPrice: 20, onSale: true });
    expect(shelf.categories.find((c) => c.categoryId === "kombucha")!.reasons[0]!.code).toBe("trending");
  });

  it("keeps to maxPerCategory from one category until the others run out, then fills the shelf", () => {
    const options = (maxItems: number) =>
      rankingOptionsWith({ popular: { trendWeight: 0, maxPerCategory: 1, maxItems } });
    expect(popularShelf(pop, catalog, options(3)).items.map((i) => i.productId)).toEqual([
      "milk-2",
      "bread-1",
      "kombucha-1",
    ]);
    expect(popularShelf(pop, catalog, options(8)).items.map((i) => i.productId)).toEqual([
      "milk-2",
      "bread-1",
      "kombucha-1",
      "milk-1",
    ]);
  });
});
