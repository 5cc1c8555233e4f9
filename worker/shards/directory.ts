// The directory of customer shards (docs/scaling.md, ingestion across shards): for the keys whose home
// is this shard, where their data is placed. Run inside the home shard (CustomerShard), on its own
// database: a Durable Object handles one call at a time up to its first await, and these functions
// make one batch each, so two routers claiming the same new key always agree on the winner.
import { type SQL, sql } from "drizzle-orm";
import { batchRows, jsonEach, runBatch } from "../../db/batch.ts";
import { orderSource } from "../core/identity/plan.ts";
import type { Db } from "../env.ts";

export interface Placement {
  key: string;
  shard: number;
}

/**
 * Where each of `keys` (all homed in this shard, `self`) is placed: its directory entry's shard, else,
 * for an order held here (`order:<id>` of an order at its home needs no entry), this shard; else null
 * (an unknown identity key, a customer at its home, an order stored nowhere).
 */
export async function locatePlacements(db: Db, keys: readonly string[], self: number): Promise<Map<string, number>> {
  const placed = new Map<string, number>();
  for (let i = 0; i < keys.length; i += 500) {
    const page = keys.slice(i, i + 500);
    const orderIds = page.filter((key) => key.startsWith("order:")).map((key) => key.slice("order:".length));
    // The orders are asked only for order keys (a shopper's shelf locates an account key alone).
    // One key (a shopper's shelf) is an equality search: reading a JSON list costs SQLite more than the search.
    const [entries = [], heldHere = []] = await batchRows(db, [
      page.length === 1
        ? sql`SELECT key, shard FROM shard_directory WHERE key = ${page[0]}`
        : sql`SELECT key, shard FROM shard_directory WHERE key IN (SELECT value FROM ${jsonEach(page)})`,
      ...(orderIds.length > 0
        ? [sql`SELECT id FROM orders WHERE id IN (SELECT value FROM ${jsonEach(orderIds)})`]
        : []),
    ]);
    for (const row of heldHere) placed.set(orderSource(String(row.id)), self);
    for (const row of entries) placed.set(String(row.key), Number(row.shard));
  }
  return placed;
}

/**
 * Records each entry whose key has none yet, and answers every key's placement now recorded: the
 * claimed shard, or the one an earlier claim (or a move) recorded, so a caller whose claim lost sees
 * the winner. An `order:<id>` whose order this shard (`self`, their home) holds, or that is claimed for
 * this shard, records nothing and answers this shard: an order at its home needs no entry, and the
 * home's own ingestion checks for an entry naming another shard (orderEntryGuard).
 */
export async function claimPlacements(
  db: Db,
  entries: readonly Placement[],
  now: string,
  self: number,
): Promise<Placement[]> {
  if (entries.length === 0) return [];
  const orderIds = entries.filter(({ key }) => key.startsWith("order:")).map(({ key }) => key.slice("order:".length));
  const [, placed = [], held = []] = await batchRows(db, [
    sql`
      INSERT OR IGNORE INTO shard_directory (key, shard, updated_at)
      SELECT value ->> 'key', value ->> 'shard', ${now} FROM ${jsonEach(entries)}
      WHERE NOT (substr(value ->> 'key', 1, 6) = 'order:' AND (value ->> 'shard' = ${self}
        OR EXISTS (SELECT 1 FROM orders WHERE orders.id = substr(value ->> 'key', 7))))`,
    sql`SELECT key, shard FROM shard_directory WHERE key IN (SELECT value ->> 'key' FROM ${jsonEach(entries)})`,
    ...(orderIds.length > 0 ? [sql`SELECT id FROM orders WHERE id IN (SELECT value FROM ${jsonEach(orderIds)})`] : []),
  ]);
  const shardOf = new Map(placed.map((row) => [String(row.key), Number(row.shard)]));
  for (const row of held) if (!shardOf.has(orderSource(String(row.id)))) shardOf.set(orderSource(String(row.id)), self);
  // Claimed for this shard with no entry: placed here.
  return entries.map(({ key }) => ({ key, shard: shardOf.get(key) ?? self }));
}

/** Points each key at its shard, whatever was recorded: a move's directory step (moves.ts). */
export async function setPlacements(db: Db, entries: readonly Placement[], now: string): Promise<void> {
  if (entries.length === 0) return;
  await runBatch(db, [
    sql`
      INSERT INTO shard_directory (key, shard, updated_at)
      SELECT value ->> 'key', value ->> 'shard', ${now} FROM ${jsonEach(entries)} WHERE true
      ON CONFLICT (key) DO UPDATE SET shard = excluded.shard, updated_at = excluded.updated_at`,
  ]);
}

/** Of `keys`, those fenced here: their region was moved (or is moving) out of this shard. */
export async function fencedKeys(db: Db, keys: readonly string[]): Promise<Map<string, string>> {
  if (keys.length === 0) return new Map();
  const rows = await db.all<{ key: string; move_id: string }>(
    sql`SELECT key, move_id FROM shard_fences WHERE key IN (SELECT value FROM ${jsonEach(keys)})`,
  );
  return new Map(rows.map((row) => [row.key, row.move_id]));
}

/**
 * The first statement of a shard's ingestion batch: aborts it when one of `keys` was fenced since the
 * router chose this shard (a move out recorded meanwhile), by inserting a row whose key is NULL, which
 * shard_fences' NOT NULL refuses; nothing is inserted otherwise. See isFenceAbort.
 */
export function fenceGuard(keys: readonly string[]): SQL {
  return sql`
    INSERT INTO shard_fences (key, move_id, created_at)
    SELECT NULL, '', '' WHERE EXISTS (SELECT 1 FROM shard_fences WHERE key IN (SELECT value FROM ${jsonEach(keys)}))`;
}

/**
 * Aborts a shard's ingestion batch as fenceGuard does when one of `orderIds`, which the router found
 * stored here, is not here any more (its region moved out meanwhile): stored here, a resent order
 * writes nothing; stored anywhere else it must not be stored again.
 */
export function heldGuard(orderIds: readonly string[]): SQL {
  return sql`
    INSERT INTO shard_fences (key, move_id, created_at)
    SELECT NULL, '', '' WHERE EXISTS (
      SELECT 1 FROM (SELECT value FROM ${jsonEach(orderIds)}) AS held
      WHERE NOT EXISTS (SELECT 1 FROM orders WHERE orders.id = held.value))`;
}

/**
 * Aborts a shard's ingestion batch as fenceGuard does when one of `orderIds` has an entry here (this
 * shard is its home) naming another shard: another request claimed it for that shard before this one
 * stores it here, so it is stored there (ingest-router.ts).
 */
export function orderEntryGuard(orderIds: readonly string[], self: number): SQL {
  return sql`
    INSERT INTO shard_fences (key, move_id, created_at)
    SELECT NULL, '', '' WHERE EXISTS (
      SELECT 1 FROM shard_directory
      WHERE key IN (SELECT 'order:' || value FROM ${jsonEach(orderIds)}) AND shard != ${self})`;
}

/** True when a batch was aborted by fenceGuard or heldGuard: the router re-plans where the keys are now. */
export function isFenceAbort(error: unknown): boolean {
  return String((error as Error)?.message ?? error).includes("shard_fences.key");
}
