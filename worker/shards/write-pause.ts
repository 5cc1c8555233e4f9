// Customer writes paused on the one D1 database for a migration's last pass (`patron shards migrate
// --pause-writes`, docs/scaling.md, switching). While the pause is set, a deployment on D1 answers
// order batches, identify calls and erasures 503 with Retry-After, its import consumer sends its
// batches back to the queue for later (spending no retry), no nightly run starts, and a known
// shopper's events keep their impressions and clicks but add no browse days, so nothing D1 holds of a
// customer changes behind the pass. A deployment on the shards never reads it. Each isolate reads the
// flag at most every `writePauseCacheMs`: the command waits that long after pausing (and for a nightly
// run that began before) before it copies, and its check catches a write that began before.
import { sql } from "drizzle-orm";
import { batchRows } from "../../db/batch.ts";
import type { Db, Env } from "../env.ts";
import { migrationId } from "./migrate.ts";
import { shardCount } from "./shards.ts";

/** How long an isolate trusts what it read of the pause. */
export const writePauseCacheMs = 5_000;

let known: { readAt: number; pausedAt: string | null } | null = null;

/** When customer writes on D1 were paused (null: they are not), as this isolate last read it. */
export async function writesPausedAt(db: Db, nowMs = Date.now()): Promise<string | null> {
  if (known && nowMs - known.readAt < writePauseCacheMs) return known.pausedAt;
  const row = await db.get<{ at: string | null }>(
    sql`SELECT writes_paused_at AS at FROM shard_migration WHERE id = ${migrationId}`,
  );
  known = { readAt: nowMs, pausedAt: row?.at ?? null };
  return known.pausedAt;
}

/**
 * The pause as this deployment sees it: on D1, when its customer writes were paused (null: open); on
 * the shards, always null (the pause holds D1's copy only, and shards never read it).
 */
export async function pausedOnD1(env: Pick<Env, "SHARD_COUNT">, db: Db): Promise<string | null> {
  return shardCount(env) > 0 ? null : writesPausedAt(db);
}

/** Drops what this isolate read of the pause (the route that sets it: this isolate sees it at once). */
export function forgetWritePause(): void {
  known = null;
}

/**
 * Pauses customer writes on D1 (`paused`), or opens them again. Pausing needs a migration recorded
 * (its full pass runs with writes going on); a pause already set keeps its time. Answers the pause's
 * time (null: open) and what it was before (null: writes were open), or `no_migration`.
 */
export async function setWritePause(
  db: Db,
  paused: boolean,
  now: Date,
): Promise<{ kind: "set"; writesPausedAt: string | null; wasPausedAt: string | null } | { kind: "no_migration" }> {
  // One batch, so what the pause was is read in the same transaction as it is set.
  const [before = [], after = []] = (await batchRows(db, [
    sql`SELECT writes_paused_at AS at FROM shard_migration WHERE id = ${migrationId}`,
    sql`
      UPDATE shard_migration
      SET writes_paused_at = ${paused ? sql`coalesce(writes_paused_at, ${now.toISOString()})` : null}
      WHERE id = ${migrationId}
      RETURNING writes_paused_at AS at`,
  ])) as { at: string | null }[][];
  forgetWritePause();
  const [row] = after;
  if (!row) return paused ? { kind: "no_migration" } : { kind: "set", writesPausedAt: null, wasPausedAt: null };
  return { kind: "set", writesPausedAt: row.at ?? null, wasPausedAt: before[0]?.at ?? null };
}
