// A signed-in shopper's requests when customer data is in shards (SHARD_COUNT > 0): GET
// /v1/recommendations is one call to the home shard of the account key, which reads the shopper and
// ranks the shelf there (or in the one shard it forwards to), and POST
// /v1/events finds each token's customer there and adds the browse rollups in the shard holding that
// customer. Shared state (catalog, models, rules, suppressions) stays in D1 and events in EVENTS_DB.

import { allCalls } from "../core/shards/calls.ts";
import { homeShard } from "../core/shards/placement.ts";
import type { Env } from "../env.ts";
import type { BrowseDay } from "../events/events.repo.ts";
import type { KeyOwner } from "../recommendations/attribution.repo.ts";
import type { ComputedShelf, ShelfRequest } from "../recommendations/shelf.ts";
import { homeStub, shardCount, shardStub } from "./shards.ts";
import type { BrowseForward, PlacedOwner } from "./shopper-shard.ts";

type ShardEnv = Pick<Env, "CUSTOMER_SHARDS" | "SHARD_COUNT">;

/** A signed-in account's shelf: one call to the account key's home shard (which forwards once if it must). */
export function shardedShelf(
  env: ShardEnv,
  accountKey: string,
  now: Date,
  request: ShelfRequest,
  holdoutShare: number | undefined,
): Promise<ComputedShelf> {
  return homeStub(env, accountKey).shelf(accountKey, now.toISOString(), request, holdoutShare);
}

/**
 * The customers behind identity keys and the merged-away family of each, as `ownersOf` answers on D1,
 * with the shard holding each: one call per home shard of the keys, in parallel.
 */
export async function shardedOwners(env: ShardEnv, keys: readonly string[]): Promise<Map<string, PlacedOwner>> {
  const count = shardCount(env);
  const byHome = new Map<number, string[]>();
  for (const key of new Set(keys)) {
    const home = homeShard(key, count);
    byHome.set(home, [...(byHome.get(home) ?? []), key]);
  }
  const found = await Promise.all([...byHome].map(([home, homed]) => shardStub(env, home).owners(homed)));
  return new Map(found.flatMap((owners) => [...owners]));
}

/** How many times browse days follow their customers' moves before they are given up (a move per hop). */
const browseHops = 3;

/**
 * Adds browse days to the rollups in the shards that hold their customers, one call per shard in
 * parallel. Days whose customer a move took elsewhere after it was located come back with the shard it
 * went to and are sent there (up to browseHops times).
 */
export async function addShardedBrowse(
  env: ShardEnv,
  days: readonly BrowseDay[],
  shardOf: ReadonlyMap<string, number>,
): Promise<void> {
  let pending: BrowseForward[] = days.flatMap((day) => {
    const shard = shardOf.get(day.customerId);
    return shard === undefined ? [] : [{ shard, days: [day] }];
  });
  for (let hop = 0; hop <= browseHops && pending.length > 0; hop++) {
    const byShard = new Map<number, BrowseDay[]>();
    for (const { shard, days: held } of pending) byShard.set(shard, [...(byShard.get(shard) ?? []), ...held]);
    // A shard on a version before forwards answers nothing.
    const answers = await allCalls([...byShard].map(([shard, held]) => shardStub(env, shard).addBrowse(held)));
    pending = answers.flatMap((answer) => answer ?? []);
  }
}

/** Where POST /v1/events finds shoppers and adds their browsing: the one D1 database or the shards. */
export interface BrowseStore {
  owners(keys: readonly string[]): Promise<Map<string, KeyOwner>>;
  addBrowse(days: readonly BrowseDay[]): Promise<void>;
}

/** The sharded store for one request: browse days go to the shard each owner was found in. */
export function shardedBrowseStore(env: ShardEnv): BrowseStore {
  const shardOf = new Map<string, number>();
  return {
    async owners(keys) {
      const owners = await shardedOwners(env, keys);
      for (const owner of owners.values()) shardOf.set(owner.customerId, owner.shard);
      return owners;
    },
    addBrowse: (days) => addShardedBrowse(env, days, shardOf),
  };
}
