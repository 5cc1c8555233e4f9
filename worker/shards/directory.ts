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

/** A claim's answer: the key's placement now recorded, and whether it is the claiming request's own. */
export interface Claimed extends Placement {
  /**
   * An `order:<id>` entry the claiming request holds alone (its token is on it, or it records nothing
   * at the order's home): the request may point it elsewhere or drop it. False for an entry another
   * request claimed, one this claim adopted, and every identity key.
   */
  own: boolean;
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
 *
 * Order entries carry the claiming request's `token` (ingest-router.ts), so that request alone may
 * point its entry at another shard (claimed again for it) or drop it (releaseClaims) while the order is
 * stored nowhere. Claimed for the shard an entry of another request names, the entry is adopted: its
 * token is cleared, since this request may be storing the order there from now on, and no request
 * points it elsewhere any more. One batch, so the home serialises claims, re-pointings, adoptions and
 * releases of one entry.
 */
export async function claimPlacements(
  db: Db,
  entries: readonly Placement[],
  now: string,
  self: number,
  token: string | null = null,
): Promise<Claimed[]> {
  if (entries.length === 0) return [];
  const orders = entries.filter(({ key }) => key.startsWith("order:"));
  const orderIds = orders.map(({ key }) => key.slice("order:".length));
  // The shard each order key is claimed for, read beside its entry (found by key, the primary key).
  const claimedFor = sql`(SELECT value ->> 'shard' FROM ${jsonEach(orders)} WHERE value ->> 'key' = shard_directory.key)`;
  const [, , , , placed = [], held = []] = await batchRows(db, [
    // This request's own entries, claimed for another shard now: pointed there; at their home, dropped
    // (an order claimed for its home needs no entry).
    sql`
      UPDATE shard_directory SET shard = ${claimedFor}, updated_at = ${now}
      WHERE key IN (SELECT value ->> 'key' FROM ${jsonEach(orders)} WHERE value ->> 'shard' != ${self})
        AND claimed_by = ${token} AND shard != ${claimedFor}`,
    sql`
      DELETE FROM shard_directory
      WHERE key IN (SELECT value ->> 'key' FROM ${jsonEach(orders)} WHERE value ->> 'shard' = ${self})
        AND claimed_by = ${token}`,
    // Another request's entries naming the shard claimed: adopted.
    sql`
      UPDATE shard_directory SET claimed_by = NULL
      WHERE key IN (SELECT value ->> 'key' FROM ${jsonEach(orders)})
        AND claimed_by IS NOT NULL AND claimed_by IS NOT ${token} AND shard = ${claimedFor}`,
    sql`
      INSERT OR IGNORE INTO shard_directory (key, shard, updated_at, claimed_by)
      SELECT value ->> 'key', value ->> 'shard', ${now},
        CASE WHEN substr(value ->> 'key', 1, 6) = 'order:' THEN ${token} END
      FROM ${jsonEach(entries)}
      WHERE NOT (substr(value ->> 'key', 1, 6) = 'order:' AND (value ->> 'shard' = ${self}
        OR EXISTS (SELECT 1 FROM orders WHERE orders.id = substr(value ->> 'key', 7))))`,
    sql`SELECT key, shard, claimed_by FROM shard_directory WHERE key IN (SELECT value ->> 'key' FROM ${jsonEach(entries)})`,
    ...(orderIds.length > 0 ? [sql`SELECT id FROM orders WHERE id IN (SELECT value FROM ${jsonEach(orderIds)})`] : []),
  ]);
  const recorded = new Map(placed.map((row) => [String(row.key), row]));
  const heldHere = new Set(held.map((row) => orderSource(String(row.id))));
  return entries.map(({ key }) => {
    const row = recorded.get(key);
    if (row) return { key, shard: Number(row.shard), own: token !== null && row.claimed_by === token };
    // No entry: an order held here is placed here; one claimed for here is, and records nothing (so
    // it is this request's own to claim elsewhere later).
    return { key, shard: self, own: key.startsWith("order:") && !heldHere.has(key) };
  });
}

/**
 * Drops the `order:<id>` entries of `keys` that still carry `token`: a request that gives up drops the
 * claims of the orders it stored nowhere, so they place nothing for the next request sending them. An
 * entry another request adopted (it may be storing the order where it names) has lost the token, and
 * stays. Answers how many were dropped.
 */
export async function releaseClaims(db: Db, keys: readonly string[], token: string): Promise<number> {
  if (keys.length === 0) return 0;
  const [result] = await runBatch(db, [
    sql`DELETE FROM shard_directory WHERE claimed_by = ${token} AND key IN (SELECT value FROM ${jsonEach(keys)})`,
  ]);
  return result?.meta.changes ?? 0;
}

/**
 * Points each key at its shard, whatever was recorded: a move's directory step (moves.ts). An order it
 * points is stored there: its entry is no request's claim any more.
 */
export async function setPlacements(db: Db, entries: readonly Placement[], now: string): Promise<void> {
  if (entries.length === 0) return;
  await runBatch(db, [
    sql`
      INSERT INTO shard_directory (key, shard, updated_at)
      SELECT value ->> 'key', value ->> 'shard', ${now} FROM ${jsonEach(entries)} WHERE true
      ON CONFLICT (key) DO UPDATE SET shard = excluded.shard, updated_at = excluded.updated_at, claimed_by = NULL`,
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
