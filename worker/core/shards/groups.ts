// Which orders (and identify calls) of a batch must be ingested together, and into which shard. Orders
// linked through a verified identity key belong to one identity region, and a region lives in one
// shard (docs/scaling.md, ingestion across shards): the batch is split into the connected groups of
// its items over their verified keys (union-find), an item with no verified key being a group of its
// own, keyed by its own id. Pure: the router locates the keys and calls the shards.
import { homeShard } from "./placement.ts";

/** One order or identify call of a batch, as placement sees it. */
export interface GroupItem {
  /** The item's own key: `order:<id>` for an order, the identify call's source for a call. */
  ownKey: string;
  /** Its verified identity keys, in the order its identifiers were hashed (kind order). */
  keys: readonly { kind: string; key: string }[];
}

/** Items that must be ingested together: their indexes (ascending) and their distinct verified keys. */
export interface ItemGroup {
  items: number[];
  keys: string[];
}

/**
 * The groups of `items`, in the order of their first item. Two items are in one group when a chain of
 * shared verified keys links them, or when they share their own key (an order sent twice in a batch
 * is decided once, where D1 decides it: the first copy wins).
 */
export function groupItems(items: readonly GroupItem[]): ItemGroup[] {
  const parent = items.map((_, index) => index);
  const find = (index: number): number => {
    let root = index;
    while (parent[root] !== root) root = parent[root] as number;
    for (let at = index; at !== root; ) {
      const next = parent[at] as number;
      parent[at] = root;
      at = next;
    }
    return root;
  };
  const firstWith = new Map<string, number>();
  const link = (key: string, index: number) => {
    const first = firstWith.get(key);
    if (first === undefined) firstWith.set(key, index);
    else {
      const [a, b] = [find(first), find(index)];
      if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
    }
  };
  items.forEach((item, index) => {
    link(item.ownKey, index);
    for (const { key } of item.keys) link(key, index);
  });
  const groups = new Map<number, ItemGroup>();
  items.forEach((item, index) => {
    const root = find(index);
    const group = groups.get(root) ?? { items: [], keys: [] };
    groups.set(root, group);
    group.items.push(index);
    for (const { key } of item.keys) if (!group.keys.includes(key)) group.keys.push(key);
  });
  return [...groups.values()];
}

/**
 * The shard a group is ingested into, from the directory's placements of its keys (null: unknown) and,
 * for a group without verified keys, of its first item's own key (null: at its home).
 * - Keys placed in one shard: that shard. In several: the lowest index, so routers racing on the same
 *   keys pick the same target and the other regions move there.
 * - No key placed (a new region): the home of the first account key of its items (the shopper's
 *   signed-in identity, so their shelf is one call), else the home of the first item's first verified
 *   key, else (no verified key at all) the placement of its own key, or its home.
 */
export function targetShard(
  group: ItemGroup,
  items: readonly GroupItem[],
  placements: ReadonlyMap<string, number | null>,
  count: number,
): number {
  const placed = group.keys.map((key) => placements.get(key)).filter((shard) => shard != null);
  if (placed.length > 0) return Math.min(...placed);
  const members = group.items.map((index) => items[index] as GroupItem);
  const account = members.flatMap((item) => item.keys).find((ref) => ref.kind === "account");
  if (account) return homeShard(account.key, count);
  const first = members.find((item) => item.keys.length > 0)?.keys[0];
  if (first) return homeShard(first.key, count);
  const own = (members[0] as GroupItem).ownKey;
  return placements.get(own) ?? homeShard(own, count);
}

/** The shards other than `target` that hold some of the group's keys: the regions to move first. */
export function sourcesToMove(group: ItemGroup, placements: ReadonlyMap<string, number | null>, target: number) {
  const sources = new Map<number, string[]>();
  for (const key of group.keys) {
    const shard = placements.get(key);
    if (shard == null || shard === target) continue;
    sources.set(shard, [...(sources.get(shard) ?? []), key]);
  }
  return sources;
}

/** Items grouped by a number (a shard), in first-seen order. */
export function byShard<T>(items: Iterable<T>, shardOf: (item: T) => number): Map<number, T[]> {
  const grouped = new Map<number, T[]>();
  for (const item of items) {
    const shard = shardOf(item);
    const list = grouped.get(shard);
    if (list) list.push(item);
    else grouped.set(shard, [item]);
  }
  return grouped;
}
