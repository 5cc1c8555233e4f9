// A deployment on its one D1 database that sets SHARD_COUNT without first running `patron shards
// migrate` would serve from empty shards: every lookup a 404, and every order from a known shopper a new
// customer beside the one D1 still holds. Such a deployment serves nothing until SHARD_COUNT is set back
// or the migration has run (docs/scaling.md, from one database to shards).
import { sql } from "drizzle-orm";
import type { Db } from "../env.ts";

/** How soon a refused deployment checks again (and tells clients to). */
export const unmigratedRetrySeconds = 60;

/**
 * Why a deployment on `count` shards must refuse to serve, or null: D1 holds customers (a summary) and no
 * migration pass into the shards has finished. One read of two rows; a deployment that started on
 * shards keeps no customer in D1, and one that migrated has its finished pass.
 */
export async function unmigratedProblem(db: Db, count: number): Promise<string | null> {
  const [row] = await db.all<{ held: number; migrated: number }>(sql`
    SELECT EXISTS (SELECT 1 FROM customer_summaries) AS held,
      EXISTS (SELECT 1 FROM shard_migration WHERE finished_at IS NOT NULL) AS migrated`);
  if (!row?.held || row.migrated) return null;
  return `SHARD_COUNT is ${count}, but the main database holds customers that were never copied into the customer shards: served from the shards, they would not be found, and their next orders would make new customers beside them. Set SHARD_COUNT back to 0 and run npx patron shards migrate --shards ${count} first, then set it again (docs/scaling.md, from one database to shards).`;
}

/** Per isolate: a deployment found migrated stays so; a refusal is checked again after a while. */
let checked: { at: number; problem: Promise<string | null> } | null = null;

export function unmigratedProblemCached(db: Db, count: number, now: number): Promise<string | null> {
  if (!checked || now - checked.at > unmigratedRetrySeconds * 1000) {
    const problem = unmigratedProblem(db, count);
    checked = { at: now, problem };
    // A failed read is not an answer: the next request asks again.
    problem.then(
      (found) => {
        if (found === null && checked?.problem === problem) checked = { at: Number.POSITIVE_INFINITY, problem };
      },
      () => {
        if (checked?.problem === problem) checked = null;
      },
    );
  }
  return checked.problem;
}

/** Drops this isolate's answer, so the next request reads again (tests). */
export function forgetUnmigratedCheck(): void {
  checked = null;
}
