// A customer shard's part of a reshard (docs/scaling.md, resharding; driven by worker/shards/reshard.ts).
// While the deployment still runs with the old count, the shard answers pages of the keys it keeps
// (directory entries) or holds (its customers and orders) whose home among the new count is another
// shard, then is marked prepared: from then on it takes no more writes under the old count, so what
// the walk copied stays complete, and it serves under either count. After the switch it deletes the
// entries it keeps for keys homed elsewhere now, and records the new count.
import { sql } from "drizzle-orm";
import { jsonEach, runBatch } from "../../db/batch.ts";
import { orderSource } from "../core/identity/plan.ts";
import { customerKey, homeShard, rehomed } from "../core/shards/placement.ts";
import type { Db } from "../env.ts";
import type { Placement } from "./directory.ts";
import { rowsAfter } from "./migrate.ts";
import { unfinishedMoves } from "./moves.ts";

export const reshardParts = ["directory", "customers", "orders", "identify"] as const;
export type ReshardPart = (typeof reshardParts)[number];

export interface ReshardPage {
  /** The entries to write, each at its new home. */
  entries: (Placement & { home: number })[];
  /** The last key or id visited, to pass as `after` for the next page; null when the part is done. */
  next: string | null;
  scanned: number;
}

/** Rows of each part here: what the walk will visit (a full count, once per reshard). */
export async function reshardTotals(db: Db): Promise<Record<ReshardPart, number>> {
  const [directory, customers, orders, identify] = await Promise.all(
    [
      sql`SELECT count(*) AS n FROM shard_directory`,
      sql`SELECT count(*) AS n FROM customers`,
      sql`SELECT count(*) AS n FROM orders`,
      sql`SELECT count(DISTINCT source) AS n FROM identity_observations ${identifyRange("")}`,
    ].map((query) => db.get<{ n: number }>(query)),
  );
  return {
    directory: directory?.n ?? 0,
    customers: customers?.n ?? 0,
    orders: orders?.n ?? 0,
    identify: identify?.n ?? 0,
  };
}

/** The identify calls' observation sources (`identify:<hash>`) after `after`, along the primary key. */
const identifyRange = (after: string) => sql`WHERE source > ${after || "identify:"} AND source < 'identify;'`;

/**
 * The next `limit` rows of `part` after `after` (in key or id order, along the primary key), and the
 * entries those whose home moves to a new shard need there: a directory entry is copied as it is (it
 * places its key wherever it does); a customer, an order or an identify call (its observations'
 * source, which places a call with no verified identifier) homed and held here gets one placing it
 * here, as one away from its home has (`self` is this shard).
 */
export async function reshardPage(
  db: Db,
  self: number,
  part: ReshardPart,
  after: string,
  limit: number,
  counts: { from: number; to: number },
): Promise<ReshardPage> {
  if (part === "directory") {
    const rows = await db.all<{ key: string; shard: number }>(
      sql`SELECT key, shard FROM shard_directory WHERE key > ${after} ORDER BY key LIMIT ${limit}`,
    );
    // Shrinking, an entry placing its key in a shard removed places nothing once drained: not copied
    // (dropEntriesIntoRemoved).
    const placed = new Map(
      rows.filter((row) => counts.to > counts.from || row.shard < counts.to).map((row) => [row.key, Number(row.shard)]),
    );
    return {
      entries: rehomed([...placed.keys()], counts.from, counts.to).map(({ key, home }) => ({
        key,
        home,
        shard: placed.get(key) as number,
      })),
      next: rows.length < limit ? null : (rows.at(-1)?.key ?? null),
      scanned: rows.length,
    };
  }
  const rows = await db.all<{ id: string }>(
    part === "identify"
      ? sql`SELECT DISTINCT source AS id FROM identity_observations ${identifyRange(after)} ORDER BY source LIMIT ${limit}`
      : sql`SELECT id FROM ${sql.raw(part)} WHERE id > ${after} ORDER BY id LIMIT ${limit}`,
  );
  const keyOf = { customers: customerKey, orders: orderSource, identify: (source: string) => source }[part];
  // One moved in from its home has an entry there, which that shard's directory walk copies.
  const homedHere = rows.map((row) => keyOf(row.id)).filter((key) => homeShard(key, counts.from) === self);
  return {
    entries: rehomed(homedHere, counts.from, counts.to).map(({ key, home }) => ({ key, home, shard: self })),
    next: rows.length < limit ? null : (rows.at(-1)?.id ?? null),
    scanned: rows.length,
  };
}

/**
 * What this shard wrote after `since` that changes where keys are: new orders and customers (each
 * needs an entry at its new home), directory entries written (claims, moves), erasures (their
 * suppressions: an erased customer's entries may have been copied already) and moves, with any move
 * not finished, and any change of its rows since `countsAtStart` (taken when the walk began). Browsing,
 * scores and backfills place nothing, and go on during a reshard.
 */
export async function placingWritesSince(
  db: Db,
  since: string,
  countsAtStart: Record<ReshardPart, number> | undefined,
): Promise<Record<string, number>> {
  const [written, moving, counts] = await Promise.all([
    rowsAfter(db, since, {
      orders: ["orders", "created_at"],
      customers: ["customers", "created_at"],
      "directory entries": ["shard_directory", "updated_at"],
      "suppressed keys (erasures)": ["suppressions", "created_at"],
      "moves between shards": ["shard_moves", "updated_at"],
    }),
    unfinishedMoves(db),
    reshardTotals(db),
  ]);
  // A write is stamped with its request's start: one that began before the walk but landed after
  // the shard's count was taken shows in the counts instead.
  const changed = reshardParts.filter((part) => countsAtStart !== undefined && counts[part] !== countsAtStart[part]);
  return {
    ...written,
    "moves not finished": moving,
    ...Object.fromEntries(
      changed.map((part) => [`${part} rows added or removed`, Math.abs(counts[part] - (countsAtStart?.[part] ?? 0))]),
    ),
  };
}

/**
 * Before the switch, in a shard that takes a walk's entries: deletes the entries an earlier walk wrote
 * here, so a walk started over keeps none for a key erased (or no longer placed there) meanwhile.
 * Growing, that is every entry of a shard the reshard adds placing a key in an old shard; shrinking,
 * every entry marked as the walk's in a shard that stays (placeWalkEntries).
 */
export async function dropWalkEntries(db: Db, from: number, to: number): Promise<void> {
  await runBatch(db, [
    from > to
      ? sql`DELETE FROM shard_directory WHERE reshard_walk IS NOT NULL`
      : sql`DELETE FROM shard_directory WHERE shard < ${from}`,
  ]);
}

/**
 * A shrinking walk's entries, in a shard that stays: each key (homed in a removed shard until the
 * switch) is placed as `entries` say, marked as the walk's until the reshard's finish clears the mark.
 */
export async function placeWalkEntries(db: Db, entries: readonly Placement[], now: string): Promise<void> {
  if (entries.length === 0) return;
  await runBatch(db, [
    sql`
      INSERT INTO shard_directory (key, shard, updated_at, reshard_walk)
      SELECT value ->> 'key', value ->> 'shard', ${now}, 1 FROM ${jsonEach(entries)} WHERE true
      ON CONFLICT (key) DO UPDATE SET shard = excluded.shard, updated_at = excluded.updated_at, reshard_walk = 1`,
  ]);
}

/**
 * A shrink's preparing, in a shard that stays, once the shards removed hold no customer data: deletes
 * the entries placing keys in one of them. They place nothing any more: a claim for an order its
 * request never stored there, an identifier seen only unverified on the orders of a region the drain
 * moved (a move points only its region's verified keys at the target). Such a key is unknown then, as
 * the walk leaves it (reshardPage). Answers how many went.
 */
export async function dropEntriesIntoRemoved(db: Db, to: number): Promise<number> {
  const [result] = await runBatch(db, [sql`DELETE FROM shard_directory WHERE shard >= ${to}`]);
  return result?.meta.changes ?? 0;
}

/** A shrink's finish in a shard that stays: the walk's marks go (its entries are this shard's own now). */
export async function keepWalkEntries(db: Db): Promise<void> {
  await runBatch(db, [sql`UPDATE shard_directory SET reshard_walk = NULL WHERE reshard_walk IS NOT NULL`]);
}

/**
 * What a shard a shrinking reshard removes still holds of customer data: its customers, orders and
 * identify calls, each of which its drain moves to a shard that stays. All zero before it is prepared.
 */
export async function heldRows(db: Db): Promise<Record<string, number>> {
  const { customers, orders, identify } = await reshardTotals(db);
  return { "customers still held": customers, "orders still held": orders, "identify calls still held": identify };
}

/**
 * After the switch: deletes this shard's directory entries, among the next `limit` after `after`,
 * whose home is a new shard now (the walk copied each there). Answers how many went.
 */
export async function dropRehomedEntries(
  db: Db,
  after: string,
  limit: number,
  counts: { from: number; to: number },
): Promise<{ removed: number; next: string | null; scanned: number }> {
  const rows = await db.all<{ key: string }>(
    sql`SELECT key FROM shard_directory WHERE key > ${after} ORDER BY key LIMIT ${limit}`,
  );
  const gone = rehomed(
    rows.map((row) => row.key),
    counts.from,
    counts.to,
  ).map(({ key }) => key);
  let removed = 0;
  if (gone.length > 0) {
    const [result] = await runBatch(db, [
      sql`DELETE FROM shard_directory WHERE key IN (SELECT value FROM ${jsonEach(gone)})`,
    ]);
    removed = result?.meta.changes ?? 0;
  }
  return { removed, next: rows.length < limit ? null : (rows.at(-1)?.key ?? null), scanned: rows.length };
}
