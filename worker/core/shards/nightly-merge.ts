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

/** A row of the co-purchase table: a product, another bought in the same orders, and by how many shoppers. */
export interface PairCount {
  productId: string;
  otherId: string;
  /** Orders holding both products. */
  orders: number;
  /** Different shoppers who placed those orders (customers sharing an identifier are one). */
  shoppers: number;
}

/**
 * A customer shard's part of the co-purchase table. A shopper is named by a label: the least identity
 * key among the identifiers of the customers it joins (`?` for those still settling, `customer:<id>`
 * for a customer with none); shoppers of different shards who share an identifier are one, which
 * `links` lets the merge see.
 */
export interface PairCountsPart {
  /** Every shopper label the part names, each once. */
  labels: string[];
  /** Each ordered pair of products: the orders holding both, and who placed them (indexes into `labels`). */
  pairs: { productId: string; otherId: string; orders: number; shoppers: number[] }[];
  /** Each identifier of a shopper that is not its label, with its shopper (an index into `labels`). */
  links: { key: string; shopper: number }[];
}

/** A part from rows naming shoppers by label: each label written once, in `labels`, and referred to by index. */
export function pairCountsPart(
  pairs: readonly { productId: string; otherId: string; orders: number; shoppers: readonly string[] }[],
  links: readonly { key: string; shopper: string }[],
): PairCountsPart {
  const labels: string[] = [];
  const indexes = new Map<string, number>();
  const indexOf = (label: string) => {
    let index = indexes.get(label);
    if (index === undefined) {
      index = labels.length;
      labels.push(label);
      indexes.set(label, index);
    }
    return index;
  };
  return {
    pairs: pairs.map(({ productId, otherId, orders, shoppers }) => ({
      productId,
      otherId,
      orders,
      shoppers: shoppers.map(indexOf),
    })),
    links: links.map(({ key, shopper }) => ({ key, shopper: indexOf(shopper) })),
    labels,
  };
}

/** Union-find over strings: which of them are one. */
function disjointSets() {
  const parent = new Map<string, string>();
  const find = (item: string): string => {
    let root = item;
    for (let up = parent.get(root); up !== undefined && up !== root; up = parent.get(root)) root = up;
    // Every item on the way now points at the root.
    for (let at = item; at !== root; ) {
      const up = parent.get(at) as string;
      parent.set(at, root);
      at = up;
    }
    return root;
  };
  const union = (a: string, b: string) => {
    const [rootA, rootB] = [find(a), find(b)];
    // The lesser root stays: the result depends on the sets, not on the order of the unions.
    if (rootA !== rootB) parent.set(rootA < rootB ? rootB : rootA, rootA < rootB ? rootA : rootB);
  };
  return { find, union };
}

/**
 * The co-purchase table from the shards' parts: shoppers who share an identifier across shards made
 * one (through each part's links), each pair's orders summed and its shoppers counted over every part,
 * kept when at least `minShoppers` shoppers bought it, and per product the `maxPerProduct` most
 * co-bought by orders (ties by the other product's id), ordered by product then rank: what the single
 * database's statement writes.
 */
export function rankPairs(parts: readonly PairCountsPart[], minShoppers: number, maxPerProduct: number): PairCount[] {
  const shoppers = disjointSets();
  for (const { labels, links } of parts)
    for (const { key, shopper } of links) shoppers.union(key, labels[shopper] as string);
  const sums = new Map<string, Map<string, { orders: number; shoppers: Set<string> }>>();
  for (const { labels, pairs } of parts)
    for (const pair of pairs) {
      let row = sums.get(pair.productId);
      if (!row) {
        row = new Map();
        sums.set(pair.productId, row);
      }
      let sum = row.get(pair.otherId);
      if (!sum) {
        sum = { orders: 0, shoppers: new Set() };
        row.set(pair.otherId, sum);
      }
      sum.orders += pair.orders;
      for (const index of pair.shoppers) sum.shoppers.add(shoppers.find(labels[index] as string));
    }
  const ranked: PairCount[] = [];
  for (const productId of [...sums.keys()].sort(byText)) {
    const others = [...(sums.get(productId) ?? [])]
      .filter(([, sum]) => sum.shoppers.size >= minShoppers)
      .sort(([aId, a], [bId, b]) => b.orders - a.orders || byText(aId, bId))
      .slice(0, maxPerProduct);
    for (const [otherId, sum] of others)
      ranked.push({ productId, otherId, orders: sum.orders, shoppers: sum.shoppers.size });
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
