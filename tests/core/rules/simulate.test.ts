import { describe, expect, it } from "vitest";
import { type ShelfOutline, simulateRule } from "../../../worker/core/rules/simulate.ts";

const shelf = (categories: string[], items: [string, string][]): ShelfOutline => ({
  categories: categories.map((categoryId) => ({ categoryId })),
  items: items.map(([productId, categoryId]) => ({ productId, categoryId })),
});

describe("simulateRule", () => {
  it("counts affected shoppers, the target's rank change, entries, exits and lost exposure", () => {
    const pairs = [
      // The target category moves from 3rd to 1st; a tea slot goes to coffee.
      {
        before: shelf(
          ["tea", "mugs", "coffee"],
          [
            ["t1", "tea"],
            ["t2", "tea"],
            ["c1", "coffee"],
          ],
        ),
        after: shelf(
          ["coffee", "tea", "mugs"],
          [
            ["c1", "coffee"],
            ["c2", "coffee"],
            ["t1", "tea"],
          ],
        ),
      },
      // The target enters a shelf of two: off the shelf (rank 3) to 2nd.
      {
        before: shelf(["tea", "mugs"], [["t1", "tea"]]),
        after: shelf(["tea", "coffee"], [["t1", "tea"]]),
      },
      // Unchanged, target absent on both sides: not counted in the rank change.
      { before: shelf(["mugs"], [["m1", "mugs"]]), after: shelf(["mugs"], [["m1", "mugs"]]) },
      // The target leaves: 1st to one past the end of a one-category shelf (rank 2).
      { before: shelf(["coffee", "mugs"], [["m1", "mugs"]]), after: shelf(["mugs"], [["m1", "mugs"]]) },
    ];
    const result = simulateRule(pairs, { targetType: "category", targetId: "coffee" });
    expect(result).toEqual({
      shoppers: 4,
      affected: 3,
      affectedShare: 0.75,
      targetShoppers: 3,
      // (3 − 1) + (3 − 2) + (1 − 2) = 2, over three shoppers.
      meanRankChange: 0.667,
      enteredShare: 0.25,
      leftShare: 0.25,
      categoryExposure: [
        { categoryId: "tea", before: 3, after: 2, change: -1 },
        { categoryId: "coffee", before: 1, after: 2, change: 1 },
      ],
      categoriesLosingExposure: ["tea"],
    });
  });

  it("follows a product target through the items, and no single target for every item", () => {
    const pairs = [
      {
        before: shelf(
          [],
          [
            ["a", "x"],
            ["b", "x"],
          ],
        ),
        after: shelf(
          [],
          [
            ["b", "x"],
            ["a", "x"],
          ],
        ),
      },
    ];
    expect(simulateRule(pairs, { targetType: "product", targetId: "b" }).meanRankChange).toBe(1);
    const every = simulateRule(pairs, { targetType: "product", targetId: "*" });
    expect(every).toMatchObject({ affected: 1, targetShoppers: 0, meanRankChange: null, enteredShare: 0 });
  });

  it("answers zeros for an empty sample", () => {
    expect(simulateRule([], { targetType: "category", targetId: "x" })).toMatchObject({
      shoppers: 0,
      affectedShare: 0,
      meanRankChange: null,
      categoryExposure: [],
    });
  });
});
