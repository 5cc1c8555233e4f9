import { describe, expect, it } from "vitest";
import { quantileSorted } from "../../../worker/core/math/quantile.ts";
import { defaultRankingOptions } from "../../../worker/core/ranking/options.ts";
import { buildPopulation, pricePercentile } from "../../../worker/core/ranking/population.ts";
import { category, now, population, product, rhythm, stat } from "./builders.ts";

const options = { ...defaultRankingOptions.population, minPairSupport: 1, minIntervalSamples: 2, minLift: 1.01 };

describe("buildPopulation", () => {
  // 4 customers: two buy coffee then kitchen, one only coffee, one only tea.
  const customers = [
    { categories: [rhythm("coffee", 3, 20, 60), rhythm("kitchen", 1, 1, 10)] },
    { categories: [rhythm("coffee", 2, 40, 50), rhythm("kitchen", 1, 1, 5)] },
    { categories: [rhythm("coffee", 1, 1, 5, { units: 4, discountedUnits: 4 })] },
    { categories: [rhythm("tea", 5, 10, 2, { units: 5, discountedUnits: 0 })] },
  ];
  const pop = buildPopulation(customers, [], now, options);

  it("counts buyers, penetration and recent trend", () => {
    expect(pop.customers).toBe(4);
    expect(pop.categories.coffee).toMatchObject({ buyers: 3, penetration: 0.75 });
    expect(pop.categories.tea!.recentBuyers).toBe(1);
    expect(pop.categories.coffee!.recentBuyers).toBe(1);
  });

  it("takes the median of customers' own intervals, falling back to the overall median", () => {
    expect(pop.categories.coffee!.repurchaseIntervalDays).toBeCloseTo(30, 9); // median of 20 and 40
    expect(pop.categories.coffee!.intervalSamples).toBe(2);
    expect(pop.categories.tea!.intervalSamples).toBe(0); // one sample < minIntervalSamples
    expect(pop.categories.tea!.repurchaseIntervalDays).toBe(pop.overallIntervalDays);
    expect(pop.overallIntervalDays).toBeCloseTo(20, 9); // median of 20, 40, 10
  });

  it("leaves histories dated before 1970 or with unreadable dates out of the intervals", () => {
    const odd = [
      { categories: [rhythm("coffee", 4, 20, 5, { firstPurchaseAt: "0000-01-01T00:00:00.000Z" })] },
      { categories: [rhythm("coffee", 4, 20, 5, { firstPurchaseAt: "not a date" })] },
      { categories: [rhythm("coffee", 4, 20, 5, { lastPurchaseAt: "1999-01-01T00:00:00.000Z" })] },
    ];
    const withOdd = buildPopulation([...customers, ...odd], [], now, options);
    expect(withOdd.categories.coffee!.intervalSamples).toBe(2);
    expect(withOdd.categories.coffee!.repurchaseIntervalDays).toBeCloseTo(30, 9);
    expect(withOdd.overallIntervalDays).toBeCloseTo(20, 9);
  });

  it("computes lift as P(B after A) / P(B)", () => {
    // P(kitchen after coffee) = 2/3, P(kitchen) = 2/4 → lift 4/3; kitchen came after coffee, never before.
    const kitchen = pop.complements.coffee!.find((c) => c.categoryId === "kitchen")!;
    expect(kitchen.lift).toBeCloseTo(4 / 3, 9);
    expect(kitchen.support).toBe(2);
    // coffee's last purchase is before kitchen's first for both: coffee does not follow kitchen.
    expect(pop.complements.kitchen).toBeUndefined();
  });

  it("keeps the unit-weighted discounted share", () => {
    const units = 3 + 2 + 4 + 5 + 2; // rhythm() sets units = purchases unless overridden
    expect(pop.discountedShare).toBeCloseTo(4 / units, 9);
  });

  it("takes price quantiles from the active catalog, else from prices paid", () => {
    const catalog = [1, 2, 3, 4, 5].map((price, i) => product(`p${i}`, "coffee", { listPrice: price }));
    catalog.push(product("off", "coffee", { listPrice: 1000, active: false }));
    const withCatalog = buildPopulation(customers, catalog, now, options);
    expect(withCatalog.categories.coffee!.priceQuantiles).toEqual([1, 1.4, 2, 3, 4, 4.6, 5]);
    expect(withCatalog.categories.tea!.priceQuantiles[3]).toBe(10); // avgUnitPrice of the one tea buyer
  });

  it("drops pairs below the support threshold", () => {
    const strict = buildPopulation(customers, [], now, { ...options, minPairSupport: 3 });
    expect(strict.complements).toEqual({});
  });

  it("survives an empty population", () => {
    const empty = buildPopulation([], [], now, options);
    expect(empty).toMatchObject({
      customers: 0,
      discountedShare: 0,
      overallIntervalDays: options.fallbackIntervalDays,
    });
    expect(buildPopulation([{ categories: [stat("x", { orders: 0 })] }], [], now, options).customers).toBe(0);
  });
});

describe("price positions", () => {
  it.each([
    [[1, 2, 3], 0, 1],
    [[1, 2, 3], 0.5, 2],
    [[1, 2, 3], 0.75, 2.5],
    [[7], 0.3, 7],
  ])("quantile of %j at %f is %f", (sorted, p, expected) => {
    expect(quantileSorted(sorted, p)).toBeCloseTo(expected, 12);
  });

  it.each([
    [0.5, 0],
    [1, 0],
    [7.5, 0.175],
    [20, 0.5],
    [30, 0.625],
    [500, 1],
  ])("price %f sits at percentile %f", (price, expected) => {
    const pop = population([category("c", { priceQuantiles: [1, 5, 10, 20, 40, 80, 100] })]);
    expect(pricePercentile(pop, "c", price)).toBeCloseTo(expected, 12);
  });

  it("has no percentile for a category without prices", () => {
    expect(pricePercentile(population([category("c", { priceQuantiles: [] })]), "c", 3)).toBeUndefined();
    expect(pricePercentile(population([]), "missing", 3)).toBeUndefined();
  });
});
