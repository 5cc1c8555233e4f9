// Placement of keys on customer shards: stable, spread evenly, and consistent when shards are added.
import { describe, expect, it } from "vitest";
import {
  balancedHome,
  customerIdHomedAt,
  customerKey,
  drainTarget,
  hash64,
  homeShard,
  jumpHash,
  maxShards,
  parseShardCount,
  placedByProblem,
  preparedWriteProblem,
  rehomed,
  reshardPrepared,
  shardCountChanged,
  shardCountProblem,
  shardCountSkew,
} from "../../../worker/core/shards/placement.ts";

const keys = Array.from({ length: 20_000 }, (_, i) => `email:${(i * 2654435761) % 1_000_003}-${i}`);

describe("hash64", () => {
  it("is FNV-1a 64: the published test vectors", () => {
    expect(hash64("")).toBe(0xcbf29ce484222325n);
    expect(hash64("a")).toBe(0xaf63dc4c8601ec8cn);
    expect(hash64("foobar")).toBe(0x85944171f73967e8n);
  });
});

describe("jumpHash", () => {
  it("gives the buckets of a reference implementation", () => {
    // The test table of github.com/dgryski/go-jump, a port of the paper's code.
    expect(jumpHash(1n, 1)).toBe(0);
    expect(jumpHash(42n, 57)).toBe(43);
    expect(jumpHash(0xdead10ccn, 1)).toBe(0);
    expect(jumpHash(0xdead10ccn, 666)).toBe(361);
    expect(jumpHash(256n, 1024)).toBe(520);
    for (const key of [1n, 17n, 123456789n, 0xffffffffffffffffn]) {
      for (const n of [1, 2, 7, 64, 1000]) {
        const bucket = jumpHash(key, n);
        expect(bucket).toBeGreaterThanOrEqual(0);
        expect(bucket).toBeLessThan(n);
      }
    }
  });

  it("refuses a bucket count that is not a positive integer", () => {
    expect(() => jumpHash(1n, 0)).toThrow(RangeError);
    expect(() => jumpHash(1n, 2.5)).toThrow(RangeError);
  });

  it("spreads keys evenly: every one of 16 shards within 10% of its share", () => {
    const counts = new Array(16).fill(0);
    for (const key of keys) counts[homeShard(key, 16)]++;
    for (const count of counts) expect(Math.abs(count - keys.length / 16) / (keys.length / 16)).toBeLessThan(0.1);
  });

  it("moves only keys bound for the new shard when one is added, about 1/(n + 1) of them", () => {
    for (const n of [1, 4, 16]) {
      let moved = 0;
      for (const key of keys) {
        const before = homeShard(key, n);
        const after = homeShard(key, n + 1);
        if (before !== after) {
          moved++;
          expect(after).toBe(n);
        }
      }
      expect(Math.abs(moved / keys.length - 1 / (n + 1))).toBeLessThan(0.02);
    }
  });
});

describe("customerIdHomedAt", () => {
  it("draws customer ids in the usual format whose home is the asked shard", () => {
    let draws = 0;
    const randomHex = () => {
      draws++;
      return crypto.randomUUID().replaceAll("-", "");
    };
    for (let shard = 0; shard < 8; shard++) {
      const id = customerIdHomedAt(shard, 8, randomHex);
      expect(id).toMatch(/^c_[0-9a-f]{20}$/);
      expect(homeShard(customerKey(id), 8)).toBe(shard);
    }
    expect(draws).toBeGreaterThanOrEqual(8);
  });
});

describe("parseShardCount", () => {
  it("reads 0, unset and blank as the one D1 database, and whole numbers as shards", () => {
    expect(parseShardCount(undefined)).toBe(0);
    expect(parseShardCount(" ")).toBe(0);
    expect(parseShardCount("0")).toBe(0);
    expect(parseShardCount("16")).toBe(16);
    expect(parseShardCount(String(maxShards))).toBe(maxShards);
  });

  it("refuses anything else", () => {
    for (const bad of ["-1", "2.5", "four", "1e3", String(maxShards + 1)]) expect(parseShardCount(bad)).toBeNull();
  });
});

describe("shardCountProblem", () => {
  it("is nothing while the count is the one the shards were placed for, or none was recorded yet", () => {
    expect(shardCountProblem(undefined, 4)).toBeNull();
    expect(shardCountProblem(4, 4)).toBeNull();
    expect(shardCountProblem(4, 0)).toBeNull();
  });

  it("names both counts and what to do when the count changed", () => {
    const problem = shardCountProblem(4, 8) ?? "";
    expect(problem.startsWith(shardCountChanged)).toBe(true);
    expect(problem).toMatch(/SHARD_COUNT is 8, but the customer shards were placed for 4\. Set it back to 4/);
    expect(problem).toMatch(/run patron shards reshard --to 8 first/);
    expect(shardCountProblem(8, 4)).toMatch(
      /Set it back to 8, or, with it set back, run patron shards reshard --to 4 first/,
    );
  });
});

describe("placedByProblem", () => {
  it("is nothing for a write placed by the count the shard serves", () => {
    expect(placedByProblem(4, 4, 2)).toBeNull();
    expect(placedByProblem(4, 4, 2, true)).toBeNull();
  });

  it("lets a shard not in use yet be filled by a count that includes it, and nothing else", () => {
    // A migration from D1 into 4 shards: the deployment, shards included, still runs 0.
    expect(placedByProblem(4, 0, 0, true)).toBeNull();
    expect(placedByProblem(4, 0, 3, true)).toBeNull();
    // A reshard's walk from 4 to 7 writes entries into shards 4, 5 and 6, which still run 4.
    expect(placedByProblem(7, 4, 6, true)).toBeNull();
    // Not an order, an identify call or an erasure: it would create customers homed in itself.
    expect(placedByProblem(7, 4, 6)).toMatch(/^shard_count_skew: /);
    expect(placedByProblem(4, 0, 2)).toMatch(/^shard_count_skew: /);
    // Nor a count that does not include it, nor a shard in use.
    expect(placedByProblem(6, 4, 6, true)).toMatch(/^shard_count_skew: /);
    expect(placedByProblem(7, 4, 3, true)).toMatch(/^shard_count_skew: /);
  });

  it("refuses a write placed by another count, old or new, naming both and what to do", () => {
    for (const [placedBy, count] of [
      [4, 7],
      [7, 4],
    ] as const) {
      const problem = placedByProblem(placedBy, count, 1) ?? "";
      expect(problem.startsWith(shardCountSkew)).toBe(true);
      expect(problem).toContain(`placed its keys among ${placedBy} customer shards, but the shards serve ${count}`);
      expect(problem).toContain(`refused until every Worker runs with SHARD_COUNT = ${count}`);
    }
  });
});

describe("rehomed", () => {
  it("is every key whose home differs between the counts, with its new home: an added shard, or one that stays", () => {
    for (const [from, to] of [
      [4, 7],
      [16, 17],
      [16, 32],
      [7, 4],
      [17, 16],
      [32, 16],
    ] as const) {
      const moved = rehomed(keys, from, to);
      expect(moved).toEqual(
        keys
          .filter((key) => homeShard(key, to) !== homeShard(key, from))
          .map((key) => ({ key, home: homeShard(key, to) })),
      );
      if (to > from) for (const { home } of moved) expect(home).toBeGreaterThanOrEqual(from);
      else {
        // Shrinking, exactly the keys homed in a removed shard.
        expect(moved.map(({ key }) => key)).toEqual(keys.filter((key) => homeShard(key, from) >= to));
        for (const { home } of moved) expect(home).toBeLessThan(to);
      }
      // About 1 − smaller/larger of the keys move (20,000 keys: within 2 points).
      expect(Math.abs(moved.length / keys.length - (1 - Math.min(from, to) / Math.max(from, to)))).toBeLessThan(0.02);
    }
  });

  it("moves nothing when the count stays", () => {
    expect(rehomed(keys, 8, 8)).toEqual([]);
  });
});

describe("drainTarget", () => {
  it("is the home among the shards that stay of the region's least account key, else least key, else least source", () => {
    const sources = ["order:w-9", "order:w-10"];
    const held = ["email:b@example.com", "account:u-2", "card:77", "account:u-10"];
    expect(drainTarget({ keys: held, sources }, 5)).toBe(homeShard("account:u-10", 5));
    expect(drainTarget({ keys: ["email:b@example.com", "card:77"], sources }, 5)).toBe(homeShard("card:77", 5));
    expect(drainTarget({ keys: [], sources }, 5)).toBe(homeShard("order:w-10", 5));
    expect(drainTarget({ keys: [], sources: [] }, 5)).toBeNull();
    for (const key of keys.slice(0, 200)) expect(drainTarget({ keys: [key], sources: [] }, 3)).toBeLessThan(3);
  });
});

describe("preparedWriteProblem", () => {
  it("refuses writes only under a count other than the one a reshard prepared the shard for", () => {
    expect(preparedWriteProblem(undefined, 4)).toBeNull();
    const mark = { count: 7, since: "2026-12-02T09:00:00.000Z" };
    expect(preparedWriteProblem(mark, 7)).toBeNull();
    const problem = preparedWriteProblem(mark, 4) ?? "";
    expect(problem.startsWith(reshardPrepared)).toBe(true);
    expect(problem).toMatch(/a reshard from 4 to 7 customer shards is prepared.*SHARD_COUNT = 7/);
  });
});

describe("balancedHome", () => {
  const count = 16;
  const accounts = Array.from({ length: 400 }, (_, i) => `account:${i.toString(16).padStart(8, "0")}`);
  const cards = Array.from({ length: 400 }, (_, i) => `loyalty:${i.toString(16).padStart(8, "0")}`);
  const orders = Array.from({ length: 400 }, (_, i) => `order:${i}`);
  const homeOf = (key: string) => homeShard(key, count);
  const region = (keys: string[], sources: string[] = []) => ({ keys, sources });

  it("leaves a region with an account key homed where it is, whatever its other keys", () => {
    for (const [i, key] of accounts.slice(0, 50).entries()) {
      const here = homeOf(key);
      const card = cards.find((each) => homeOf(each) !== here) as string;
      expect(balancedHome(region([card, key], [orders[i] as string]), here, count)).toBeNull();
    }
    expect(balancedHome(region([]), 3, count)).toBeNull();
  });

  it("moves a region whose account keys are all homed elsewhere to the home of the least of them, and leaves it there", () => {
    let checked = 0;
    for (let i = 0; i + 1 < accounts.length; i += 2) {
      const pair = [accounts[i + 1] as string, accounts[i] as string, "email:ff"];
      const homes = new Set(pair.slice(0, 2).map(homeOf));
      for (let here = 0; here < count; here++) {
        if (homes.has(here)) continue;
        const target = balancedHome(region(pair), here, count);
        expect(target).toBe(homeOf(accounts[i] as string));
        expect(balancedHome(region(pair), target as number, count)).toBeNull();
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(2000);
  });

  it("places a region with no account key by its identity keys, and a guest's by its orders, as a drain would", () => {
    let checked = 0;
    for (let i = 0; i + 1 < cards.length; i += 2) {
      const storeOnly = region([cards[i + 1] as string, cards[i] as string], [orders[i] as string]);
      const guest = region([], [orders[i + 1] as string, orders[i] as string]);
      for (const [each, deciding] of [
        [storeOnly, storeOnly.keys],
        [guest, guest.sources],
      ] as const) {
        const homes = new Set(deciding.map(homeOf));
        for (let here = 0; here < count; here++) {
          const target = balancedHome(each, here, count);
          if (homes.has(here)) {
            expect(target).toBeNull();
            continue;
          }
          expect(target).toBe(homeOf([...deciding].sort()[0] as string));
          expect(target).toBe(drainTarget(each, count));
          expect(balancedHome(each, target as number, count)).toBeNull();
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(4000);
  });
});
