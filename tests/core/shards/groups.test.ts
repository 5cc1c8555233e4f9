// Splitting a batch into the groups that must be ingested together, and the shard each goes to.
import { describe, expect, it } from "vitest";
import { type GroupItem, groupItems, sourcesToMove, targetShard } from "../../../worker/core/shards/groups.ts";
import { homeShard } from "../../../worker/core/shards/placement.ts";

const item = (id: string, ...keys: string[]): GroupItem => ({
  ownKey: `order:${id}`,
  keys: keys.map((key) => ({ kind: key.slice(0, key.indexOf(":")), key })),
});

describe("groupItems", () => {
  it("joins items through chains of shared verified keys, and keeps the others apart", () => {
    const items = [
      item("1", "account:a", "email:e"),
      item("2", "loyalty:l"),
      item("3", "loyalty:l", "email:e"),
      item("4"),
      item("5", "account:b"),
    ];
    expect(groupItems(items)).toEqual([
      { items: [0, 1, 2], keys: ["account:a", "email:e", "loyalty:l"] },
      { items: [3], keys: [] },
      { items: [4], keys: ["account:b"] },
    ]);
  });

  it("keeps two copies of one order in one group, even with different identifiers", () => {
    expect(groupItems([item("1", "account:a"), item("2"), item("1", "account:z")])).toEqual([
      { items: [0, 2], keys: ["account:a", "account:z"] },
      { items: [1], keys: [] },
    ]);
  });

  it("gives the same partition whatever the order of the items", () => {
    const items = Array.from({ length: 60 }, (_, n) => item(String(n), `card:${n % 7}`, `email:${n % 11}`));
    const partition = (list: GroupItem[]) =>
      groupItems(list)
        .map((group) => group.items.map((index) => (list[index] as GroupItem).ownKey).sort())
        .sort((a, b) => String(a).localeCompare(String(b)));
    const reversed = [...items].reverse();
    expect(partition(reversed)).toEqual(partition(items));
    // 7 and 11 are coprime: every card meets every email, so everything is one region.
    expect(partition(items)).toHaveLength(1);
  });
});

describe("targetShard", () => {
  const count = 16;
  it("sends a new region to the home of its account key, else of its first verified key, else of the order", () => {
    const items = [item("1", "email:e", "loyalty:l"), item("2", "loyalty:l", "account:a"), item("3")];
    const [region, lone] = groupItems(items);
    const unknown = new Map<string, number | null>();
    expect(targetShard(region!, items, unknown, count)).toBe(homeShard("account:a", count));
    const noAccount = [item("1", "email:e", "loyalty:l")];
    expect(targetShard(groupItems(noAccount)[0]!, noAccount, unknown, count)).toBe(homeShard("email:e", count));
    expect(targetShard(lone!, items, unknown, count)).toBe(homeShard("order:3", count));
    expect(targetShard(lone!, items, new Map([["order:3", 5]]), count)).toBe(5);
  });

  it("follows the one shard holding its known keys, and picks the lowest of several", () => {
    const items = [item("1", "email:e", "loyalty:l", "account:a")];
    const [group] = groupItems(items);
    expect(targetShard(group!, items, new Map([["loyalty:l", 9]]), count)).toBe(9);
    const placements = new Map<string, number | null>([
      ["loyalty:l", 9],
      ["email:e", 4],
      ["account:a", null],
    ]);
    expect(targetShard(group!, items, placements, count)).toBe(4);
    expect([...sourcesToMove(group!, placements, 4)]).toEqual([[9, ["loyalty:l"]]]);
  });
});
