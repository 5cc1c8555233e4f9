// The nightly job's merges of the customer shards' parts equal what the single database's bounded
// reads give over the union of the shards' rows: checked against a plain recompute over random rows
// spread over random shard counts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  firstById,
  mergeDaySamples,
  type PairCount,
  rankPairs,
  shareOf,
  sumSales,
} from "../../../worker/core/shards/nightly-merge.ts";

/** Splits `items` over `count` shards by `shardOf`. */
function spread<Item>(items: readonly Item[], count: number, shardOf: (item: Item) => number): Item[][] {
  const parts: Item[][] = Array.from({ length: count }, () => []);
  for (const item of items) parts[shardOf(item) % count]?.push(item);
  return parts;
}

const ids = fc.uniqueArray(fc.stringMatching(/^c_[0-9a-f]{6}$/), { maxLength: 60 });

describe("shareOf", () => {
  it("splits the cap over the shards, the shares adding up to it exactly", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300_000 }), fc.integer({ min: 1, max: 1_000 }), (cap, count) => {
        const shares = Array.from({ length: count }, (_, i) => shareOf(cap, count, i));
        expect(shares.reduce((sum, share) => sum + share, 0)).toBe(cap);
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
      }),
    );
    expect(shareOf(100_000, 3, 0)).toBe(33_334);
    expect(shareOf(100_000, 3, 2)).toBe(33_333);
    expect(() => shareOf(10, 0, 0)).toThrow(RangeError);
    expect(() => shareOf(10, 2, 2)).toThrow(RangeError);
  });
});

describe("firstById", () => {
  it("below the cap is every shard's rows in id order, as ORDER BY id over them all", () => {
    fc.assert(
      fc.property(ids, fc.integer({ min: 1, max: 6 }), (all, count) => {
        const parts = spread(all, count, (id) => id.charCodeAt(7));
        expect(firstById(parts, (id) => id, all.length)).toEqual([...all].sort());
      }),
    );
  });

  it("above the cap keeps the first `cap` ids of the shards' own first ids", () => {
    fc.assert(
      fc.property(ids, fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 30 }), (all, count, cap) => {
        // Each shard sends its first `share` ids, as the shards do.
        const parts = spread(all, count, (id) => id.charCodeAt(6)).map((part, i) =>
          [...part].sort().slice(0, shareOf(cap, count, i)),
        );
        const merged = firstById(parts, (id) => id, cap);
        expect(merged.length).toBe(Math.min(cap, parts.flat().length));
        expect(merged).toEqual([...parts.flat()].sort().slice(0, cap));
      }),
    );
  });
});

describe("rankPairs", () => {
  /** The single database's statement over every order: counts, threshold, top per product by count then id. */
  function recompute(orders: readonly string[][], minOrders: number, maxPerProduct: number): PairCount[] {
    const counts = new Map<string, number>();
    for (const order of orders)
      for (const a of new Set(order))
        for (const b of new Set(order)) if (a !== b) counts.set(`${a}|${b}`, (counts.get(`${a}|${b}`) ?? 0) + 1);
    const rows = [...counts]
      .map(([pair, n]) => {
        const [productId = "", otherId = ""] = pair.split("|");
        return { productId, otherId, orders: n };
      })
      .filter((row) => row.orders >= minOrders)
      .sort((a, b) =>
        a.productId < b.productId
          ? -1
          : a.productId > b.productId
            ? 1
            : b.orders - a.orders || (a.otherId < b.otherId ? -1 : 1),
      );
    const kept = new Map<string, number>();
    return rows.filter((row) => {
      const n = (kept.get(row.productId) ?? 0) + 1;
      kept.set(row.productId, n);
      return n <= maxPerProduct;
    });
  }

  /** One shard's unthresholded pair counts over its orders. */
  const countsOf = (orders: readonly string[][]) => recompute(orders, 1, Number.POSITIVE_INFINITY);

  it("equals the threshold and ranking over every shard's orders at once", () => {
    const order = fc.uniqueArray(fc.constantFrom("p1", "p2", "p3", "p4", "p5", "p6"), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(
        fc.array(order, { maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        (orders, count, minOrders, maxPerProduct) => {
          const parts = spread(
            orders.map((products, i) => ({ products, i })),
            count,
            ({ i }) => i * 7,
          ).map((part) => countsOf(part.map(({ products }) => products)));
          expect(rankPairs(parts, minOrders, maxPerProduct)).toEqual(recompute(orders, minOrders, maxPerProduct));
        },
      ),
    );
  });

  it("counts a pair that is rare in every shard but common over all of them", () => {
    const part: PairCount[] = [{ productId: "a", otherId: "b", orders: 1 }];
    expect(rankPairs([part, part, part], 3, 20)).toEqual([{ productId: "a", otherId: "b", orders: 3 }]);
    expect(rankPairs([part, part], 3, 20)).toEqual([]);
  });
});

describe("sumSales", () => {
  it("adds each product's units over the shards", () => {
    expect(
      sumSales([
        [
          { productId: "a", units: 2 },
          { productId: "b", units: 1 },
        ],
        [{ productId: "a", units: 5 }],
        [],
      ]),
    ).toEqual([
      { productId: "a", units: 7 },
      { productId: "b", units: 1 },
    ]);
  });
});

describe("mergeDaySamples", () => {
  it("keeps the first customers by id and their days, in customer then day order", () => {
    const merged = mergeDaySamples(
      [
        {
          customerIds: ["c_2", "c_5"],
          days: [
            { customerId: "c_2", day: "2026-02-01" },
            { customerId: "c_5", day: "2026-01-01" },
          ],
        },
        {
          customerIds: ["c_1", "c_3"],
          days: [
            { customerId: "c_1", day: "2026-03-01" },
            { customerId: "c_1", day: "2026-01-05" },
            { customerId: "c_3", day: "2026-01-01" },
          ],
        },
      ],
      3,
    );
    expect(merged).toEqual({
      customerIds: ["c_1", "c_2", "c_3"],
      days: [
        { customerId: "c_1", day: "2026-01-05" },
        { customerId: "c_1", day: "2026-03-01" },
        { customerId: "c_2", day: "2026-02-01" },
        { customerId: "c_3", day: "2026-01-01" },
      ],
    });
  });
});
