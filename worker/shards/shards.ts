// The customer shards a deployment has, and how the Worker reaches one. SHARD_COUNT decides the store:
// 0 (the default) is the one D1 database; N is N shards named `shard-0` … `shard-<N-1>` in the
// CUSTOMER_SHARDS namespace, created on first use (nothing is provisioned per shard).
import { homeShard, parseShardCount } from "../core/shards/placement.ts";
import type { Env } from "../env.ts";

/** How many customer shards this deployment has; 0: customer data is in the one D1 database. */
export function shardCount(env: Pick<Env, "SHARD_COUNT">): number {
  // configProblems refuses an invalid value before any route runs.
  return parseShardCount(env.SHARD_COUNT) ?? 0;
}

export const shardName = (index: number) => `shard-${index}`;

/** The stub of shard `index` (an RPC target: its methods are CustomerShard's). */
export function shardStub(env: Pick<Env, "CUSTOMER_SHARDS">, index: number) {
  return env.CUSTOMER_SHARDS.get(env.CUSTOMER_SHARDS.idFromName(shardName(index)));
}

export type ShardStub = ReturnType<typeof shardStub>;

/** Every shard's stub, in index order. */
export function everyShard(env: Pick<Env, "CUSTOMER_SHARDS" | "SHARD_COUNT">): ShardStub[] {
  return Array.from({ length: shardCount(env) }, (_, index) => shardStub(env, index));
}

/** The stub of the home shard of `key` (where its directory entry lives). */
export function homeStub(env: Pick<Env, "CUSTOMER_SHARDS" | "SHARD_COUNT">, key: string): ShardStub {
  return shardStub(env, homeShard(key, shardCount(env)));
}
