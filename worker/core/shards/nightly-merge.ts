// How the nightly job puts the customer shards' parts back together (docs/scaling.md, the nightly job
// over customer shards). Each bounded read of the single database (the first customers by id, the
// newest orders) is split into one share per shard, and the parts are merged here into what the one
// database's read gives: the same rows when everything fits under the bound, a sample of the same
// size drawn the same way above it. Pure: plain data in and out.

import { byShard } from "./groups.ts";

/**
 * Shard `index`'s share of a bound `cap` split over `count` shards: `cap ÷ count`, the remainder one
 * each to the first shards, so the shares add up to `cap` exactly.
 */
export function shareOf(cap: number, count: number, index: number): number {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, not ${count}`);
  if (!Number.isInteger(index) || index < 0 || index >= count)
    throw new RangeError(`index must be a shard of ${count}, not ${index}`);
  return Math.floor(cap / count) + (index < cap % count ? 1 : 0);
}

/** SQLite's order of ASCII text (ids): by code unit, as `ORDER BY` with the BINARY collation. */
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The first `cap` items by id of the shards' parts, in id order: what `ORDER BY id LIMIT cap` over
 * their union gives. Each part holds its shard's first ids (its share of the cap), so this is every
 * item of every part, in the order the single database reads its own sample.
 */
export function firstById<Item>(
  parts: readonly (readonly Item[])[],
  idOf: (item: Item) => string,
  cap: number,
): Item[] {
  return parts
    .flat()
    .sort((a, b) => byText(idOf(a), idOf(b)))
    .slice(0, cap);
}

/**
 * The customer ids of `members` by the shard each was found in, for a deployment of `count` shards;
 * a shard outside it (from before a reshard) names none, and its members are left out.
 */
export function membersByShard(
  members: readonly { customerId: string; shard: number }[],
  count: number,
): Map<number, string[]> {
  const known = members.filter(({ shard }) => Number.isInteger(shard) && shard >= 0 && shard < count);
  const grouped = byShard(known, (member) => member.shard);
  return new Map([...grouped].map(([shard, list]) => [shard, list.map((member) => member.customerId)]));
}

export interface PairCount {
  productId: string;
  otherId: string;
  /** Orders holding both products. */
  orders: number;
  /** Different customers who placed those orders. */
  customers: number;
}

/**
 * The co-purchase table from the shards' pair counts: each pair's orders and customers summed over the
 * shards (a customer lives in one shard, so the customer counts add up), kept when at least
 * `minCustomers` customers bought it, and per product the `maxPerProduct` most co-bought by orders (ties
 * by the other product's id), ordered by product then rank: what the single database's statement writes.
 */
export function rankPairs(parts: readonly (readonly PairCount[])[], minCustomers: number, maxPerProduct: number) {
  const sums = new Map<string, Map<string, { orders: number; customers: number }>>();
  for (const part of parts)
    for (const { productId, otherId, orders, customers } of part) {
      let row = sums.get(productId);
      if (!row) {
        row = new Map();
        sums.set(productId, row);
      }
      const sum = row.get(otherId) ?? { orders: 0, customers: 0 };
      row.set(otherId, { orders: sum.orders + orders, customers: sum.customers + customers });
    }
  const ranked: PairCount[] = [];
  for (const productId of [...sums.keys()].sort(byText)) {
    const others = [...(sums.get(productId) ?? [])]
      .filter(([, sum]) => sum.customers >= minCustomers)
      .sort(([aId, a], [bId, b]) => b.orders - a.orders || byText(aId, bId))
      .slice(0, maxPerProduct);
    for (const [otherId, sum] of others) ranked.push({ productId, otherId, ...sum });
  }
  return ranked;
}

/** Units sold per product summed over the shards' parts. */
export function sumSales(parts: readonly (readonly { productId: string; units: number }[])[]) {
  const units = new Map<string, number>();
  for (const part of parts)
    for (const sale of part) units.set(sale.productId, (units.get(sale.productId) ?? 0) + sale.units);
  return [...units].map(([productId, total]) => ({ productId, units: total }));
}

/**
 * The diagnostics' sample from the shards' samples: the first `cap` customers by id and their purchase
 * days, in customer id then day order, as the single database reads them.
 */
export function mergeDaySamples(
  parts: readonly { customerIds: readonly string[]; days: readonly { customerId: string; day: string }[] }[],
  cap: number,
) {
  const customerIds = firstById(
    parts.map((part) => part.customerIds),
    (id) => id,
    cap,
  );
  const sampled = new Set(customerIds);
  const days = parts
    .flatMap((part) => part.days)
    .filter((row) => sampled.has(row.customerId))
    .sort((a, b) => byText(a.customerId, b.customerId) || byText(a.day, b.day));
  return { customerIds, days };
}
