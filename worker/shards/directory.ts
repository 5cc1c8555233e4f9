// The directory of customer shards (docs/scaling.md, ingestion across shards): for the keys whose home
// is this shard, where their data is placed. Run inside the home shard (CustomerShard), on its own
// database: a Durable Object handles one call at a time up to its first await, and these functions
// make one batch each, so two routers claiming the same new key always agree on the winner.
import { type SQL, sql } from "drizzle-orm";
import { batchRows, jsonEach, runBatch } from "../../db/batch.ts";
import type { Db } from "../env.ts";

export interface Placement {
  key: string;
  shard: number;
}

/**
 * Records each entry whose key has none yet, and answers every key's placement now recorded: the
 * claimed shard, or the one an earlier claim (or a move) recorded, so a caller whose claim lost sees
 * the winner.
 */
export async function claimPlacements(db: Db, entries: readonly Placement[], now: string): Promise<Placement[]> {
  if (entries.length === 0) return [];
  const [, placed = []] = await batchRows(db, [
    sql`
      INSERT OR IGNORE INTO shard_directory (key, shard, updated_at)
      SELECT value ->> 'key', value ->> 'shard', ${now} FROM ${jsonEach(entries)}`,
    sql`SELECT key, shard FROM shard_directory WHERE key IN (SELECT value ->> 'key' FROM ${jsonEach(entries)})`,
  ]);
  const shardOf = new Map(placed.map((row) => [String(row.key), Number(row.shard)]));
  return entries.map(({ key }) => ({ key, shard: shardOf.get(key) as number }));
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

/** True when a batch was aborted by fenceGuard: the router re-plans where the keys are now. */
export function isFenceAbort(error: unknown): boolean {
  return String((error as Error)?.message ?? error).includes("shard_fences.key");
}
