// An erasure's part outside the shard that held the customer: every shard scrubs the family from its
// records of finished moves and its identifiers from the sightings on other customers' records
// (forgetErased), and the directory entries of what was erased go at their homes. The erasing shard
// keeps it as a to-do (erasure_scrubs), written in the erasure's own batch: the request runs it at
// once, and the shard's alarm runs it once more at its due time, so a shard that did not answer, or a
// move that carried a sighting into a shard already scrubbed and finished by then, is caught by that
// later pass; a failed pass is tried again later. Every step deletes what is there and nothing else,
// so a pass run twice changes nothing the second time.
import { asc, eq, lte, type SQL, sql } from "drizzle-orm";
import { erasureScrubs } from "../../db/schema.ts";
import { orderSource } from "../core/identity/plan.ts";
import { allCalls, consumerCallBudget } from "../core/shards/calls.ts";
import { byShard } from "../core/shards/groups.ts";
import { homeShard } from "../core/shards/placement.ts";
import type { Db, Env } from "../env.ts";
import { erasedDirectoryKeys } from "./console-shard.ts";
import { everyShard, shardCount, shardStub } from "./shards.ts";

type ShardEnv = Pick<Env, "CUSTOMER_SHARDS" | "SHARD_COUNT">;

/** What the scrub needs of an erasure's plan, and the shard that erased (where its directory entries placed it). */
export interface ScrubPlan {
  customerIds: string[];
  orderIds: string[];
  identifiers: { key: string; kind: string }[];
  sources: string[];
  shard: number;
}

/** The later pass: long after a request's own pass, so a move under way then has finished. */
export const scrubAgainAfterMs = 10 * 60_000;
/** After a failed pass, the next waits this long, doubled at each failure up to a day. */
const retryBaseMs = 60_000;
const retryMostMs = 86_400_000;
/**
 * Passes one alarm runs: each calls every shard once and each home of the erased directory keys once
 * (at most twice the shard count), within the calls one invocation spends (consumerCallBudget).
 */
const scrubsPerAlarm = (shards: number) => Math.min(20, Math.max(1, Math.floor(consumerCallBudget / (2 * shards))));

/**
 * Scrubs an erasure from every shard and deletes its directory entries at their homes, all in
 * parallel. Answers the sightings deleted in the shards; throws if a call failed (what the others did stays).
 */
export async function scrubEverywhere(env: ShardEnv, plan: ScrubPlan): Promise<number> {
  const directoryKeys = erasedDirectoryKeys(plan);
  const forgetting = allCalls(
    everyShard(env).map((shard) =>
      shard.forgetErased({ customers: plan.customerIds, identifiers: plan.identifiers, sources: plan.sources }),
    ),
  );
  await allCalls<unknown>([dropDirectoryEntries(env, directoryKeys, plan.shard), forgetting]);
  return (await forgetting).reduce((sum, part) => sum + part.sightings, 0);
}

/** Deletes the directory entries of `keys` that place them in `placed`, at each key's home, homes in parallel. */
async function dropDirectoryEntries(env: ShardEnv, keys: readonly string[], placed: number) {
  const count = shardCount(env);
  const byHome = byShard(keys, (key) => homeShard(key, count));
  await allCalls([...byHome].map(([home, homed]) => shardStub(env, home).dropDirectoryEntries(homed, placed, count)));
}

/** The most one plan may take: well under the 2 MB a Durable Object's SQLite takes in one value. */
const maxPlanChars = 1_500_000;

/**
 * The statement (one, or none) that keeps an erasure's scrub in the shard that erased, for the erasure's own batch
 * (so it is written with the erasure or not at all), due for its later pass at `dueAt`. It keeps only
 * what the scrub needs: not the plan's shared or linked keys, nor its orders' suppression keys, and
 * its orders' sources only as their ids (readPlan rebuilds them). A plan too big for one value (a
 * family of some 40,000 orders) is not kept, and logged: the erasure must not fail for its to-do, and
 * the request's own pass still runs.
 */
export function scrubStatements(plan: ScrubPlan, now: Date, dueAt: Date): SQL[] {
  const { customerIds, orderIds, identifiers, shard } = plan;
  const ordered = new Set(orderIds.map(orderSource));
  const sources = plan.sources.filter((source) => !ordered.has(source));
  const kept = JSON.stringify({ customerIds, orderIds, identifiers, sources, shard } satisfies ScrubPlan);
  if (kept.length > maxPlanChars) {
    console.warn(JSON.stringify({ warning: "erasure scrub too big to keep: the request's pass only", shard }));
    return [];
  }
  return [
    sql`INSERT OR REPLACE INTO erasure_scrubs (customer_id, plan, due_at, attempts, created_at)
      VALUES (${customerIds[0] ?? ""}, ${kept}, ${dueAt.toISOString()}, 0, ${now.toISOString()})`,
  ];
}

/** The scrubs this shard keeps, those a pass has failed for (tried again later) and the most tries one has had. */
export async function scrubsState(db: Db): Promise<{ pending: number; failing: number; mostAttempts: number }> {
  const [row] = await db
    .select({
      pending: sql<number>`count(*)`,
      failing: sql<number>`coalesce(sum(${erasureScrubs.attempts} > 0), 0)`,
      mostAttempts: sql<number>`coalesce(max(${erasureScrubs.attempts}), 0)`,
    })
    .from(erasureScrubs);
  return {
    pending: Number(row?.pending ?? 0),
    failing: Number(row?.failing ?? 0),
    mostAttempts: Number(row?.mostAttempts ?? 0),
  };
}

/** A kept plan, its orders' sources rebuilt from their ids. */
function readPlan(text: string): ScrubPlan {
  const plan = JSON.parse(text) as ScrubPlan;
  return { ...plan, sources: [...plan.sources, ...plan.orderIds.map(orderSource)] };
}

/**
 * Runs the scrubs due by `until` (the oldest due first, at most `scrubsPerAlarm`): one that succeeds is
 * done and deleted; one that fails is logged and due again later than `now`. Never throws for a failed
 * scrub. Answers when the next one is due (null: none left).
 */
export async function runDueScrubs(db: Db, env: ShardEnv, now: Date, until = now): Promise<string | null> {
  const due = await db
    .select()
    .from(erasureScrubs)
    .where(lte(erasureScrubs.dueAt, until.toISOString()))
    .orderBy(asc(erasureScrubs.dueAt))
    .limit(scrubsPerAlarm(shardCount(env)));
  for (const scrub of due) {
    try {
      const sightings = await scrubEverywhere(env, readPlan(scrub.plan));
      await db.delete(erasureScrubs).where(eq(erasureScrubs.customerId, scrub.customerId));
      if (sightings > 0) console.log(JSON.stringify({ step: "erasure scrub: later pass", sightings }));
    } catch (error) {
      const attempts = scrub.attempts + 1;
      const wait = Math.min(retryBaseMs * 2 ** (attempts - 1), retryMostMs);
      await db
        .update(erasureScrubs)
        .set({ attempts, dueAt: new Date(now.getTime() + wait).toISOString() })
        .where(eq(erasureScrubs.customerId, scrub.customerId));
      console.warn(
        JSON.stringify({
          warning: "erasure scrub failed: tried again later",
          attempts,
          retryInSeconds: wait / 1000,
          error: error instanceof Error ? error.message : String(error),
        }),
      );
    }
  }
  const [next] = await db.select({ dueAt: sql<string>`min(${erasureScrubs.dueAt})` }).from(erasureScrubs);
  return next?.dueAt ?? null;
}
