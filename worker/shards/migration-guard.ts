// A deployment on its one D1 database that sets SHARD_COUNT without first running `patron shards
// migrate` would serve from empty shards: every lookup a 404, and every order from a known shopper a new
// customer beside the one D1 still holds. Such a deployment serves nothing until SHARD_COUNT is set back
// or the migration has run (docs/scaling.md, from one database to shards).
import { sql } from "drizzle-orm";
import type { Db } from "../env.ts";
import { shardCount } from "./shards.ts";

/** How soon a refused deployment checks again (and tells clients to). */
export const unmigratedRetrySeconds = 60;

/**
 * The row a deployment on shards records (as a finished pass) the first time it finds D1 without
 * customers: it started on shards. Set back to 0 for a while and then to its count again, it serves its
 * shards' customers, as docs/scaling.md describes, whatever D1 gathered meanwhile.
 */
export const startedOnShardsId = "started-on-shards";

/**
 * Why a deployment on `count` shards must refuse to serve, or null: D1 holds customers (a summary) and no
 * migration pass into the shards has finished (nor did the deployment start on shards). One read of
 * two rows, and once per deployment the write of its `started-on-shards` row.
 */
export async function unmigratedProblem(db: Db, count: number, now: Date): Promise<string | null> {
  const [row] = await db.all<{ held: number; migrated: number }>(sql`
    SELECT EXISTS (SELECT 1 FROM customer_summaries) AS held,
      EXISTS (SELECT 1 FROM shard_migration WHERE finished_at IS NOT NULL) AS migrated`);
  if (row?.migrated) return null;
  if (!row?.held) {
    await db.run(sql`INSERT OR IGNORE INTO shard_migration (id, shards, started_at, updated_at, finished_at)
      VALUES (${startedOnShardsId}, ${count}, ${now.toISOString()}, ${now.toISOString()}, ${now.toISOString()})`);
    return null;
  }
  return `SHARD_COUNT is ${count}, but the main database holds customers and no migration pass into the customer shards has finished: served from the shards, those customers would not be found, and their next orders would make new customers beside them. Set SHARD_COUNT back to 0 and run npx patron shards migrate --shards ${count} first, then set it again (docs/scaling.md, from one database to shards).`;
}

/** Per isolate: a deployment found migrated stays so; a refusal is checked again after a while. */
let checked: { at: number; problem: Promise<string | null> } | null = null;

/**
 * unmigratedProblem, asked once per isolate (again a minute after a refusal). A read that fails is no
 * answer: the request goes on (the database's own refusal, if it is down, says so where it matters), and
 * the next request asks again.
 */
export async function unmigratedProblemCached(db: Db, count: number, now: Date): Promise<string | null> {
  let current = checked;
  if (!current || now.getTime() - current.at > unmigratedRetrySeconds * 1000) {
    const problem = unmigratedProblem(db, count, now);
    current = checked = { at: now.getTime(), problem };
    problem.then(
      (found) => {
        if (found === null && checked?.problem === problem) checked = { at: Number.POSITIVE_INFINITY, problem };
      },
      () => {
        if (checked?.problem === problem) checked = null;
      },
    );
  }
  try {
    return await current.problem;
  } catch (error) {
    console.warn(JSON.stringify({ warning: "shard migration check failed: serving", error: String(error) }));
    return null;
  }
}

/** The refusal for work outside a request (the nightly cron, the import queue), or null. */
export function unmigratedProblemOf(env: { SHARD_COUNT?: string }, db: Db): Promise<string | null> {
  const count = shardCount(env as Parameters<typeof shardCount>[0]);
  return count === 0 ? Promise.resolve(null) : unmigratedProblemCached(db, count, new Date());
}

/** Drops this isolate's answer, so the next request reads again (tests). */
export function forgetUnmigratedCheck(): void {
  checked = null;
}
