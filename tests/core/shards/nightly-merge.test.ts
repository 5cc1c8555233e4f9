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
  pairCountsPart,
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
    /** The identity keys observed on the order (each customer's keys are those of all its orders). */
    keys: readonly string[];
    products: readonly string[];
  }

  /**
   * Who each customer of `baskets` is: customers sharing a key are one shopper, through any chain of
   * shared keys; each shopper labelled by its least key, or `customer:<n>` without one.
   */
  function shoppersOf(baskets: readonly Basket[]): Map<number, string> {
    const parent = new Map<string, string>();
    const find = (x: string): string => {
      const up = parent.get(x);
      return up === undefined || up === x ? x : find(up);
    };
    const join = (a: string, b: string) => {
      const [ra, rb] = [find(a), find(b)];
      if (ra !== rb) parent.set(ra, rb);
    };
    for (const { customer, keys } of baskets) for (const key of keys) join(`customer:${customer}`, key);
    const least = new Map<string, string>();
    for (const { keys } of baskets)
      for (const key of keys) {
        const root = find(key);
        const known = least.get(root);
        if (known === undefined || key < known) least.set(root, key);
      }
    const labels = new Map<number, string>();
    for (const { customer } of baskets) {
      const own = `customer:${customer}`;
      labels.set(customer, least.get(find(own)) ?? own);
    }
    return labels;
  }

  /**
   * The single database's statement over every order: each pair's orders and different shoppers, kept
   * when at least `minShoppers` shoppers bought it, top per product by orders then id.
   */
  function recompute(baskets: readonly Basket[], minShoppers: number, maxPerProduct: number): PairCount[] {
    const shoppers = shoppersOf(baskets);
    const counts = new Map<string, { orders: number; shoppers: Set<string> }>();
    for (const { customer, products } of baskets)
      for (const a of new Set(products))
        for (const b of new Set(products)) {
          if (a === b) continue;
          const count = counts.get(`${a}|${b}`) ?? { orders: 0, shoppers: new Set<string>() };
          count.orders++;
          count.shoppers.add(shoppers.get(customer) as string);
          counts.set(`${a}|${b}`, count);
        }
    const rows = [...counts]
      .map(([pair, count]) => {
        const [productId = "", otherId = ""] = pair.split("|");
        return { productId, otherId, orders: count.orders, shoppers: count.shoppers.size };
      })
      .filter((row) => row.shoppers >= minShoppers)
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

  /** One shard's part over its orders, as its statements answer: its own shoppers, labels and links. */
  function partOf(baskets: readonly Basket[]) {
    const shoppers = shoppersOf(baskets);
    const pairs = new Map<string, { orders: number; shoppers: Set<string> }>();
    for (const { customer, products } of baskets)
      for (const a of new Set(products))
        for (const b of new Set(products)) {
          if (a === b) continue;
          const pair = pairs.get(`${a}|${b}`) ?? { orders: 0, shoppers: new Set<string>() };
          pair.orders++;
          pair.shoppers.add(shoppers.get(customer) as string);
          pairs.set(`${a}|${b}`, pair);
        }
    const links = new Map<string, string>();
    for (const { customer, keys } of baskets)
      for (const key of keys) {
        const shopper = shoppers.get(customer) as string;
        if (key !== shopper) links.set(key, shopper);
      }
    return pairCountsPart(
      [...pairs].map(([pair, { orders, shoppers: labels }]) => {
        const [productId = "", otherId = ""] = pair.split("|");
        return { productId, otherId, orders, shoppers: [...labels] };
      }),
      [...links].map(([key, shopper]) => ({ key, shopper })),
    );
  }

  const basket = fc.record({
    // Few customers and few identifiers, so that many pairs are bought by one or two shoppers in several
    // orders, some of them guest customers who share an identifier, in one shard or in several.
    customer: fc.integer({ min: 0, max: 7 }),
    keys: fc.uniqueArray(fc.constantFrom("device:d1", "email:e1", "email:e2", "phone:p1", "phone:p2"), {
      maxLength: 2,
    }),
    products: fc.uniqueArray(fc.constantFrom("p1", "p2", "p3", "p4", "p5", "p6"), { minLength: 1, maxLength: 4 }),
  });

  it("equals the threshold and ranking over every shard's orders at once, shoppers sharing an identifier in any shards one", () => {
    fc.assert(
      fc.property(
        fc.array(basket, { maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        (baskets, count, minShoppers, maxPerProduct) => {
          const parts = spread(baskets, count, ({ customer }) => customer * 7).map(partOf);
          expect(rankPairs(parts, minShoppers, maxPerProduct)).toEqual(recompute(baskets, minShoppers, maxPerProduct));
        },
      ),
    );
  });

  it("counts a pair that is rare in every shard but bought by enough shoppers over all of them", () => {
    const part = (shopper: string) =>
      pairCountsPart([{ productId: "a", otherId: "b", orders: 1, shoppers: [shopper] }], []);
    expect(rankPairs([part("email:x"), part("email:y"), part("email:z")], 3, 20)).toEqual([
      { productId: "a", otherId: "b", orders: 3, shoppers: 3 },
    ]);
    expect(rankPairs([part("email:x"), part("email:y")], 3, 20)).toEqual([]);
  });

  it("counts one person's guest orders in three shards once: the same label, or labels their links join", () => {
    const part = (shopper: string, links: { key: string; shopper: string }[] = []) =>
      pairCountsPart([{ productId: "a", otherId: "b", orders: 1, shoppers: [shopper] }], links);
    // The same email on the three orders.
    expect(rankPairs([part("email:x"), part("email:x"), part("email:x")], 3, 20)).toEqual([]);
    // A phone; the phone and the email (labelled by the email); the email and a device (labelled by the device).
    const chain = [
      part("phone:p"),
      part("email:e", [{ key: "phone:p", shopper: "email:e" }]),
      part("device:d", [{ key: "email:e", shopper: "device:d" }]),
    ];
    expect(rankPairs(chain, 3, 20)).toEqual([]);
    expect(rankPairs(chain, 1, 20)).toEqual([{ productId: "a", otherId: "b", orders: 3, shoppers: 1 }]);
  });

  it("keeps no pair that fewer shoppers bought, however many orders hold it, and ranks kept pairs by orders", () => {
    // One shopper's five baskets of a with b, two shoppers' ten of a with c, three shoppers' three of a with d
    // and nine of a with e.
    const parts = [
      pairCountsPart(
        [
          { productId: "a", otherId: "b", orders: 5, shoppers: ["customer:1"] },
          { productId: "a", otherId: "c", orders: 6, shoppers: ["customer:1"] },
          { productId: "a", otherId: "d", orders: 1, shoppers: ["customer:1"] },
        ],
        [],
      ),
      pairCountsPart(
        [
          { productId: "a", otherId: "c", orders: 4, shoppers: ["customer:2"] },
          { productId: "a", otherId: "d", orders: 2, shoppers: ["customer:2", "customer:3"] },
          { productId: "a", otherId: "e", orders: 9, shoppers: ["customer:2", "customer:3", "customer:4"] },
        ],
        [],
      ),
    ];
    expect(rankPairs(parts, 3, 20)).toEqual([
      { productId: "a", otherId: "e", orders: 9, shoppers: 3 },
      { productId: "a", otherId: "d", orders: 3, shoppers: 3 },
    ]);
  });

  it("writes each label once in a part and names it by index", () => {
    expect(
      pairCountsPart(
        [
          { productId: "a", otherId: "b", orders: 2, shoppers: ["email:x", "customer:1"] },
          { productId: "b", otherId: "a", orders: 2, shoppers: ["email:x", "customer:1"] },
        ],
        [{ key: "phone:y", shopper: "email:x" }],
      ),
    ).toEqual({
      labels: ["email:x", "customer:1"],
      pairs: [
        { productId: "a", otherId: "b", orders: 2, shoppers: [0, 1] },
        { productId: "b", otherId: "a", orders: 2, shoppers: [0, 1] },
      ],
      links: [{ key: "phone:y", shopper: 0 }],
    });
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
