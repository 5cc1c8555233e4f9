// How full and how even the customer shards are (GET /v1/admin/shards, `patron shards status`): each
// shard's customers and stored bytes against what one Durable Object holds, so an operator grows the
// count (patron shards reshard) before a shard fills, instead of after its writes start failing.

/** What one SQLite-backed Durable Object stores at most (Cloudflare's limit per object, 10 GB). */
export const shardStorageLimitBytes = 10_000_000_000;

/** From this share of the limit on, the fullest shard is nearly full: time to grow the count. */
export const nearlyFullShare = 0.7;

/** One shard's own figures, as it reports them. */
export interface ShardPart {
  shard: number;
  /** Customers held here (merged-away ones included). */
  customers: number;
  /** The size of the shard's SQLite database. */
  bytes: number;
  /** Moves between shards recorded here and not finished (in or out). */
  unfinishedMoves: number;
  /** The count a prepared reshard marked this shard for, or null. */
  preparedFor: number | null;
}

export interface ShardsOverview {
  count: number;
  limitBytes: number;
  shards: (ShardPart & { share: number })[];
  totals: { customers: number; bytes: number; unfinishedMoves: number };
  /** The shard storing the most bytes, and its share of the limit. */
  fullest: { shard: number; bytes: number; share: number };
  /** The most customers one shard holds over the mean (1: even); null without customers. */
  spread: number | null;
  /** Stored bytes per customer over all shards, and how many customers one shard holds at that rate; null without customers. */
  bytesPerCustomer: number | null;
  customersPerShard: number | null;
  /** True once the fullest shard holds `nearlyFullShare` of the limit or more. */
  nearlyFull: boolean;
}

/** The overview of `parts`, one per shard of a deployment running `count` shards. */
export function shardsOverview(count: number, parts: readonly ShardPart[]): ShardsOverview {
  const shards = [...parts]
    .sort((a, b) => a.shard - b.shard)
    .map((part) => ({ ...part, share: part.bytes / shardStorageLimitBytes }));
  const totals = {
    customers: sum(shards.map((part) => part.customers)),
    bytes: sum(shards.map((part) => part.bytes)),
    unfinishedMoves: sum(shards.map((part) => part.unfinishedMoves)),
  };
  const fullest = shards.reduce(
    (most, part) => (part.bytes > most.bytes ? part : most),
    shards[0] as (typeof shards)[0],
  );
  const bytesPerCustomer = totals.customers > 0 ? totals.bytes / totals.customers : null;
  return {
    count,
    limitBytes: shardStorageLimitBytes,
    shards,
    totals,
    fullest: { shard: fullest.shard, bytes: fullest.bytes, share: fullest.share },
    spread:
      totals.customers > 0
        ? Math.max(...shards.map((part) => part.customers)) / (totals.customers / shards.length)
        : null,
    bytesPerCustomer,
    customersPerShard: bytesPerCustomer === null ? null : Math.floor(shardStorageLimitBytes / bytesPerCustomer),
    nearlyFull: fullest.share >= nearlyFullShare,
  };
}

const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);
