// The ids of GET /v1/admin/transitions on customer shards. On D1 a row's id is its feed id: one
// database numbers its rows in the order it writes them. Shards number their own rows, and a row
// changes shard (and local id) when its customer moves, so the sharded feed gives each row an id when
// it is written instead: from ranges D1 hands out in order (feed_sequences), copied with the row.
//
// A run takes a range for each scoring page before the page writes, so ids grow with time across
// runs and shards. Within a run they do not (shards score in parallel), so while a run is running the
// feed shows only the ids below the first one it could take (job_runs.feed_from): a client paging with
// `next` sees every row once, in order, whatever moves or reshards between its pages.

import { sql } from "drizzle-orm";
import type { Db } from "../env.ts";
import type { TransitionRow } from "./nightly.repo.ts";

/**
 * The first id the sharded feed hands out: above the ids D1's feed shows (a migration keeps them) and
 * those the shards showed before rows carried their own (local id × shard count + shard).
 */
export const firstFeedId = 1_000_000_000_000;

/** The next id the feed would hand out: what a run starting now records as its `feed_from`. */
export const nextFeedIdSql = sql`coalesce((SELECT next FROM feed_sequences WHERE name = 'transitions'), ${firstFeedId})`;

/** Takes `count` ids in one upsert and returns the first: the range is first … first + count − 1. */
export async function takeFeedIds(db: Db, count: number): Promise<number> {
  const row = await db.get<{ first: number }>(sql`
    INSERT INTO feed_sequences (name, next) VALUES ('transitions', ${firstFeedId + count})
    ON CONFLICT (name) DO UPDATE SET next = next + ${count}
    RETURNING next - ${count} AS first`);
  if (!row) throw new Error("feed_sequences: the upsert returned no row");
  return row.first;
}

/**
 * The feed ids a reader may see now: those below the running nightly run's first (it is still writing
 * rows at ids below ones already written), or all when none runs. One read of job_runs_one_running_idx.
 */
export async function visibleFeedIdsBelow(db: Db): Promise<number> {
  const row = await db.get<{ feed_from: number | null }>(sql`
    SELECT feed_from FROM job_runs WHERE kind = 'nightly' AND status = 'running'`);
  return row?.feed_from ?? Number.MAX_SAFE_INTEGER;
}

/**
 * In a shard: gives the rows written without a feed id (by a version before feed ids, or copied from
 * one) the id the feed showed them by before: local id × shard count + shard.
 */
export const numberOlderTransitionsQuery = (shard: number, count: number) => sql`
  UPDATE stage_transitions SET feed_id = id * ${count} + ${shard} WHERE feed_id IS NULL`;

export function numberOlderTransitions(db: Db, shard: number, count: number) {
  return db.run(numberOlderTransitionsQuery(shard, count));
}

/** In a shard: its transitions at or after `since` with feed ids after `after` and below `below`, in feed-id order. */
export const transitionsFeedQuery = (since: string, after: number, below: number, limit: number) => sql`
  SELECT feed_id AS id, customer_id, from_stage, to_stage, at, run_id FROM stage_transitions
  WHERE feed_id > ${after} AND feed_id < ${below} AND at >= ${since} ORDER BY feed_id LIMIT ${limit}`;

export function transitionsFeedPage(db: Db, since: string, after: number, below: number, limit: number) {
  return db.all<TransitionRow>(transitionsFeedQuery(since, after, below, limit));
}
