// How full and how even the customer shards are (GET /v1/admin/shards, `patron shards status`): each
// shard's customers and stored bytes against what one Durable Object holds, so an operator grows the
// count (patron shards reshard) before a shard fills, instead of after its writes start failing; and
// the main D1 database beside them, whose audience members grow with the customers.

/** What one SQLite-backed Durable Object stores at most (Cloudflare's limit per object, 10 GB). */
export const shardStorageLimitBytes = 10_000_000_000;

/** From this share of the limit on, the fullest shard is nearly full: time to grow the count. */
export const nearlyFullShare = 0.7;

/** What one D1 database stores at most (Cloudflare's limit, 10 GB, not raised on request). */
export const d1StorageLimitBytes = 10_000_000_000;

/**
 * The main D1 database beside the shards: the shared state (catalog, rules, runs, audiences) and the one
 * part that grows with the customers, the members of audiences with a webhook (their delivery state,
 * about 268 bytes each: npm run bench -- audience-members).
 */
export interface MainDatabasePart {
  /** The database's size, as D1 reports it after a query. */
  bytes: number;
  /** Members of the audiences with a webhook at their last nightly run (the rows the webhook sync keeps). */
  audienceMembers: number;
}

/** One shard's own figures, as it reports them. */
export interface ShardPart {
  shard: number;
  /** Customers held here (not those merged into another: what the nightly run scores). */
  customers: number;
  /** The size of the shard's SQLite database. */
  bytes: number;
  /** Moves between shards recorded here and not finished (in or out). */
  unfinishedMoves: number;
  /** The count a prepared reshard marked this shard for, or null. */
  preparedFor: number | null;
  /** The SHARD_COUNT this shard runs with (its version's; another than the Worker's while a new count rolls out). */
  serves: number;
  /**
   * Erasures this shard ran whose scrub of the other shards it keeps (worker/shards/erasure-scrubs.ts):
   * `pending` (each waits for its later pass), `failing` (a pass failed: tried again later, up to once
   * a day) and the most passes one has failed, `mostAttempts`.
   */
  erasureScrubs: { pending: number; failing: number; mostAttempts: number };
}

/** A shard that did not answer (it refuses every call under another count, or failed), and why. */
export interface UnansweredShard {
  shard: number;
  error: string;
}

export interface ShardsOverview {
  count: number;
  limitBytes: number;
  shards: (ShardPart & { share: number })[];
  /** Shards that did not answer: the figures are those of the others. */
  unanswered: UnansweredShard[];
  totals: { customers: number; bytes: number; unfinishedMoves: number; failingErasureScrubs: number };
  /** The shard storing the most bytes, and its share of the limit; null when none answered. */
  fullest: { shard: number; bytes: number; share: number } | null;
  /**
   * The most customers one shard holds over the mean (1: even), over the first `spreadOver` shards:
   * all of them, or during a shrink the shards that stay (the ones it removes are being emptied);
   * null without customers there.
   */
  spread: number | null;
  spreadOver: number;
  /**
   * Stored bytes per customer over the shards that hold customers (an empty shard's own overhead, new
   * after a grow, is not the customers'), and how many customers one shard holds at that rate; null
   * without customers.
   */
  bytesPerCustomer: number | null;
  customersPerShard: number | null;
  /** True once the fullest shard holds `nearlyFullShare` of the limit or more. */
  nearlyFull: boolean;
  /** The main D1 database, its share of D1's limit and whether it holds `nearlyFullShare` of it; null when not read. */
  main: (MainDatabasePart & { limitBytes: number; share: number; nearlyFull: boolean }) | null;
}

/**
 * The overview of `parts`, one per shard of a deployment running `count` shards that answered; during a
 * shrink, `staying` is the count it shrinks to, and the spread is of those shards.
 */
export function shardsOverview(
  count: number,
  parts: readonly ShardPart[],
  unanswered: readonly UnansweredShard[] = [],
  main: MainDatabasePart | null = null,
  staying: number = count,
): ShardsOverview {
  const shards = [...parts]
    .sort((a, b) => a.shard - b.shard)
    .map((part) => ({ ...part, share: part.bytes / shardStorageLimitBytes }));
  const totals = {
    customers: sum(shards.map((part) => part.customers)),
    bytes: sum(shards.map((part) => part.bytes)),
    unfinishedMoves: sum(shards.map((part) => part.unfinishedMoves)),
    failingErasureScrubs: sum(shards.map((part) => part.erasureScrubs?.failing ?? 0)),
  };
  const fullest = shards.reduce<(typeof shards)[number] | null>(
    (most, part) => (most === null || part.bytes > most.bytes ? part : most),
    null,
  );
  const holding = shards.filter((part) => part.customers > 0);
  const bytesPerCustomer =
    totals.customers > 0 ? sum(holding.map((part) => part.bytes)) / sum(holding.map((part) => part.customers)) : null;
  const kept = shards.filter((part) => part.shard < staying).map((part) => part.customers);
  const keptCustomers = sum(kept);
  return {
    count,
    limitBytes: shardStorageLimitBytes,
    shards,
    unanswered: [...unanswered].sort((a, b) => a.shard - b.shard),
    totals,
    fullest: fullest && { shard: fullest.shard, bytes: fullest.bytes, share: fullest.share },
    spread: keptCustomers > 0 ? Math.max(...kept) / (keptCustomers / kept.length) : null,
    spreadOver: Math.min(staying, count),
    bytesPerCustomer,
    customersPerShard: bytesPerCustomer === null ? null : Math.floor(shardStorageLimitBytes / bytesPerCustomer),
    nearlyFull: (fullest?.share ?? 0) >= nearlyFullShare,
    main: main && {
      ...main,
      limitBytes: d1StorageLimitBytes,
      share: main.bytes / d1StorageLimitBytes,
      nearlyFull: main.bytes / d1StorageLimitBytes >= nearlyFullShare,
    },
  };
}

const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);

/**
 * What finishes a reshard under way, in the words of `patron shards reshard`: a reshard prepared while
 * the deployment still runs the old count needs the count switched first, else the command goes on.
 * The routes' refusals and `patron shards status` (and `npm start`) both say it this way.
 */
export function reshardNext(reshard: { phase: string; to: number }, running: number): string {
  return reshard.phase === "prepared" && running !== reshard.to
    ? `set SHARD_COUNT to ${reshard.to} and deploy (or restart npm start), then finish it with patron shards reshard --to ${reshard.to}`
    : `finish it with patron shards reshard --to ${reshard.to}`;
}
