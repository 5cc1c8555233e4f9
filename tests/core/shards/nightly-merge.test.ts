// The nightly job's merges of the customer shards' parts equal what the single database's bounded
// reads give over the union of the shards' rows: checked against a plain recompute over random rows
// spread over random shard counts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  firstById,
  membersByShard,
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

describe("membersByShard", () => {
  it("groups the ids by the shard each was found in, in their order, leaving out shards the deployment no longer has", () => {
    fc.assert(
      fc.property(
        ids,
        fc.array(fc.integer({ min: -1, max: 8 }), { minLength: 60, maxLength: 60 }),
        fc.integer({ min: 1, max: 6 }),
        (all, shards, count) => {
          const members = all.map((customerId, i) => ({ customerId, shard: shards[i] ?? 0 }));
          const grouped = membersByShard(members, count);
          for (const [shard, customerIds] of grouped) {
            expect(shard).toBeGreaterThanOrEqual(0);
            expect(shard).toBeLessThan(count);
            expect(customerIds).toEqual(members.filter((m) => m.shard === shard).map((m) => m.customerId));
          }
          const kept = members.filter((m) => m.shard >= 0 && m.shard < count).map((m) => m.customerId);
          expect([...grouped.values()].flat().sort()).toEqual([...kept].sort());
        },
      ),
    );
    expect(membersByShard([{ customerId: "c_1", shard: 1.5 }], 4).size).toBe(0);
  });
});

describe("rankPairs", () => {
  interface Basket {
    customer: number;
    products: readonly string[];
  }

  /**
   * The single database's statement over every order: each pair's orders and different customers, kept
   * when at least `minCustomers` customers bought it, top per product by orders then id.
   */
  function recompute(baskets: readonly Basket[], minCustomers: number, maxPerProduct: number): PairCount[] {
    const counts = new Map<string, { orders: number; customers: Set<number> }>();
    for (const { customer, products } of baskets)
      for (const a of new Set(products))
        for (const b of new Set(products)) {
          if (a === b) continue;
          const count = counts.get(`${a}|${b}`) ?? { orders: 0, customers: new Set<number>() };
          count.orders++;
          count.customers.add(customer);
          counts.set(`${a}|${b}`, count);
        }
    const rows = [...counts]
      .map(([pair, count]) => {
        const [productId = "", otherId = ""] = pair.split("|");
        return { productId, otherId, orders: count.orders, customers: count.customers.size };
      })
      .filter((row) => row.customers >= minCustomers)
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
  const countsOf = (baskets: readonly Basket[]) => recompute(baskets, 1, Number.POSITIVE_INFINITY);

  it("equals the threshold and ranking over every shard's orders at once, each customer's orders in one shard", () => {
    const basket = fc.record({
      // Few customers, so that many pairs are bought by one or two customers in several orders.
      customer: fc.integer({ min: 0, max: 7 }),
      products: fc.uniqueArray(fc.constantFrom("p1", "p2", "p3", "p4", "p5", "p6"), { minLength: 1, maxLength: 4 }),
    });
    fc.assert(
      fc.property(
        fc.array(basket, { maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        (baskets, count, minCustomers, maxPerProduct) => {
          const parts = spread(baskets, count, ({ customer }) => customer * 7).map(countsOf);
          const expected = recompute(baskets, minCustomers, maxPerProduct);
          expect(rankPairs(parts, minCustomers, maxPerProduct)).toEqual(expected);
        },
      ),
    );
  });

  it("counts a pair that is rare in every shard but bought by enough customers over all of them", () => {
    const part: PairCount[] = [{ productId: "a", otherId: "b", orders: 1, customers: 1 }];
    expect(rankPairs([part, part, part], 3, 20)).toEqual([{ productId: "a", otherId: "b", orders: 3, customers: 3 }]);
    expect(rankPairs([part, part], 3, 20)).toEqual([]);
  });

  it("keeps no pair that fewer customers bought, however many orders hold it, and ranks kept pairs by orders", () => {
    // One shopper's five baskets of a with b, two shoppers' ten of a with c, three shoppers' three of a with d
    // and nine of a with e.
    const parts: PairCount[][] = [
      [
        { productId: "a", otherId: "b", orders: 5, customers: 1 },
        { productId: "a", otherId: "c", orders: 6, customers: 1 },
        { productId: "a", otherId: "d", orders: 1, customers: 1 },
      ],
      [
        { productId: "a", otherId: "c", orders: 4, customers: 1 },
        { productId: "a", otherId: "d", orders: 2, customers: 2 },
        { productId: "a", otherId: "e", orders: 9, customers: 3 },
      ],
    ];
    expect(rankPairs(parts, 3, 20)).toEqual([
      { productId: "a", otherId: "e", orders: 9, customers: 3 },
      { productId: "a", otherId: "d", orders: 3, customers: 3 },
    ]);
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
