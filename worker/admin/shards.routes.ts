// Admin routes for the customer shards (docs/scaling.md): how full and even they are (GET /, `patron
// shards status`), the move of a single-database deployment's
// customer data into them (`patron shards migrate`: one step per POST, its progress and a count check),
// growing or shrinking them (`patron shards reshard`: one step per POST, and its progress), and moving regions to
// their home shards (`patron shards rebalance`: one page per POST, and its progress).
import { Hono } from "hono";
import { z } from "zod";
import { webhookAudienceMembers } from "../audiences/audiences.repo.ts";
import { maxShards } from "../core/shards/placement.ts";
import { type MainDatabasePart, reshardNext, shardsOverview } from "../core/shards/status.ts";
import type { AppEnv, Db } from "../env.ts";
import { requireAdminKey } from "../http/auth.ts";
import { ApiError, notFound } from "../http/errors.ts";
import { jsonBody, queryParams } from "../http/validate.ts";
import { changesSince, customerTableCounts, migrateStep, migrationState } from "../shards/migrate.ts";
import { rebalanceState, rebalanceStep } from "../shards/rebalance.ts";
import { rebalanceView } from "../shards/rebalance-view.ts";
import { type ReshardState, type ReshardStep, reshardState, reshardStep } from "../shards/reshard.ts";
import { everyShard, shardCount, shardStub } from "../shards/shards.ts";
import { setWritePause, writePauseCacheMs } from "../shards/write-pause.ts";

const migrateBodySchema = z.strictObject({
  shards: z.number().int().min(1).max(maxShards),
  limit: z.number().int().min(1).max(500).default(100),
  /** Start a new pass even over shards that stored rows of their own since the last pass finished. */
  discardShardData: z.boolean().default(false),
  /** After a finished pass, empty the shards and copy D1 whole instead of catching up on its changes. */
  full: z.boolean().default(false),
});
const writesBodySchema = z.strictObject({
  /** true pauses customer writes on D1 for the last pass; false opens them again. */
  paused: z.boolean(),
});
const statusQuerySchema = z.strictObject({ verify: z.enum(["true", "false"]).default("false") });
const reshardBodySchema = z.strictObject({
  /** The shard count to grow or shrink to (SHARD_COUNT after the switch). */
  to: z.number().int().min(1).max(maxShards),
  /** Rows of one old shard visited per step. */
  limit: z.number().int().min(1).max(5000).default(1000),
});

const rebalanceBodySchema = z.strictObject({
  /** Customers of one shard visited per step. */
  limit: z.number().int().min(1).max(1000).default(200),
});

const notSharded = () =>
  new ApiError(
    409,
    "conflict",
    "This deployment keeps its customer data in the one D1 database (SHARD_COUNT is 0): move it into shards with patron shards migrate.",
  );

/** A reshard's record as the routes show it, with the count the deployment runs with now. */
const reshardView = (state: ReshardState, running: number) => ({ ...state, running, done: state.phase === "done" });

/** Why a reshard step cannot go on (ReshardStep's refusals), as the error the route answers. */
function reshardRefusal(
  step: Exclude<ReshardStep, { kind: "stepped" | "rebalance_running" }>,
  running: number,
): ApiError {
  switch (step.kind) {
    case "not_sharded":
      return notSharded();
    case "same_count":
      return new ApiError(
        409,
        "conflict",
        `This deployment runs ${step.count} customer shards already: "to" must be another count.`,
      );
    case "not_drained": {
      const one = step.state.from - step.state.to === 1;
      const removed = one
        ? `Shard ${step.state.to}, which the reshard removes, still holds`
        : `The shards ${step.state.to} to ${step.state.from - 1}, which the reshard removes, still hold`;
      return new ApiError(
        409,
        "conflict",
        `${removed} ${writtenText(step.held)}, and the last pass over ${one ? "it" : "them"} moved nothing: their regions are held by moves under way, or too large to move (a placeholder identifier?). Run again in a minute; patron shards status shows unfinished moves.`,
      );
    }
    case "other_reshard":
      return new ApiError(
        409,
        "conflict",
        `A reshard from ${step.state.from} to ${step.state.to} shards is under way (${step.state.phase}): ${reshardNext(step.state, running)}.`,
      );
    case "moves_pending":
      return new ApiError(
        409,
        "conflict",
        `${step.moves} moves between shards are not finished; they resume on their own. Run again in a minute.`,
      );
    case "written":
      return new ApiError(
        409,
        "conflict",
        `The shards stored ${writtenText(step.written)} after the walk began, which it may have missed. Stop the order feeds, identify calls and erasures, then run again: the walk starts over.`,
      );
    case "wrong_count": {
      const { from, to, phase } = step.state;
      const message = {
        draining: `SHARD_COUNT is ${step.count}, but the reshard from ${from} to ${to} shards is still moving the customers of the shards it removes: set SHARD_COUNT back to ${from} and run again until it says they are prepared, then set it to ${to}.`,
        copying: `SHARD_COUNT is ${step.count}, but the reshard from ${from} to ${to} shards has not prepared the shards yet: set SHARD_COUNT back to ${from} and run again until it says they are prepared, then set it to ${to}.`,
        prepared: `SHARD_COUNT is ${step.count}, but the shards are prepared for a reshard from ${from} to ${to}: set SHARD_COUNT to ${to} and run again to finish.`,
        cleaning: `SHARD_COUNT is ${step.count}, but the deployment has switched to ${to} shards and the reshard is removing the old shards' entries: set SHARD_COUNT back to ${to} and run again to finish.`,
      }[phase as "draining" | "copying" | "prepared" | "cleaning"];
      return new ApiError(409, "conflict", message);
    }
  }
}

/** Rows by table as "orders: 2, customers: 1", the tables with none left out. */
const writtenText = (written: Record<string, number>) =>
  Object.entries(written)
    .filter(([, n]) => n > 0)
    .map(([table, n]) => `${table}: ${n.toLocaleString("en-US")}`)
    .join(", ");

/** The main D1 database's size (D1 reports it after every query) and its audience members. */
async function mainDatabasePart(d1: D1Database, db: Db): Promise<MainDatabasePart> {
  const [probe, audienceMembers] = await Promise.all([d1.prepare("SELECT 1").run(), webhookAudienceMembers(db)]);
  return { bytes: probe.meta.size_after, audienceMembers };
}

export const shardAdminRoutes = new Hono<AppEnv>()
  .use("*", requireAdminKey)
  .get("/", async (c) => {
    const count = shardCount(c.env);
    if (count === 0) throw notSharded();
    // Every shard answers for itself: one that refuses (placed for another count) is listed, not fatal.
    const [answers, reshard, rebalance, main] = await Promise.all([
      Promise.allSettled(everyShard(c.env).map((shard) => shard.status())),
      reshardState(c.var.db),
      rebalanceState(c.var.db),
      mainDatabasePart(c.env.DB, c.var.db),
    ]);
    const parts = answers.flatMap((answer) => (answer.status === "fulfilled" ? [answer.value] : []));
    const unanswered = answers.flatMap((answer, shard) =>
      answer.status === "rejected" ? [{ shard, error: String(answer.reason?.message ?? answer.reason) }] : [],
    );
    return c.json({
      data: {
        // During a shrink the spread is of the shards that stay: the others are being emptied.
        ...shardsOverview(
          count,
          parts,
          unanswered,
          main,
          reshard && reshard.phase !== "done" && reshard.to < count ? reshard.to : count,
        ),
        reshard: reshard && reshardView(reshard, count),
        rebalance: rebalance && rebalanceView(rebalance, count),
      },
    });
  })
  .post("/migrate", async (c) => {
    const body = await jsonBody(c, migrateBodySchema);
    const running = shardCount(c.env);
    if (running > 0)
      throw new ApiError(
        409,
        "conflict",
        `This deployment keeps its customer data in ${running} shards already (SHARD_COUNT): there is nothing in D1 to migrate.`,
      );
    const step = await migrateStep(c.env, c.var.db, body.shards, body.limit, c.var.now, {
      discardShardData: body.discardShardData,
      full: body.full,
    });
    if (step.kind === "shards_written")
      throw new ApiError(
        409,
        "conflict",
        `${step.since === null ? "The customer shards already hold data, before a first pass" : `The customer shards stored rows of their own after the last pass finished (${step.since})`}: ${writtenText(step.written)}. A deployment ran on them, and D1 does not hold those. A new pass would copy D1 over them and lose them. To serve from the shards again, set SHARD_COUNT back to their count. To replace them with D1's copy anyway, run again with --discard-shard-data ("discardShardData": true), then resend the orders stored since.`,
      );
    if (step.kind === "other_count")
      throw new ApiError(
        409,
        "conflict",
        `A migration into ${step.shards} shards is under way: finish it with shards=${step.shards}.`,
      );
    if (step.kind === "region_too_large")
      throw new ApiError(
        409,
        "conflict",
        `Customer ${step.customerId}'s identifiers connect more than 20,000 orders and identify calls (a placeholder identifier?); the migration stops before it. Erase or correct the identifier, then run again.`,
      );
    return c.json({ data: { ...step.state, total: step.total, done: step.state.finishedAt !== null } });
  })
  .post("/migrate/writes", async (c) => {
    const { paused } = await jsonBody(c, writesBodySchema);
    const running = shardCount(c.env);
    if (paused && running > 0)
      throw new ApiError(
        409,
        "conflict",
        `This deployment keeps its customer data in ${running} shards already (SHARD_COUNT): its writes go there, and a pause on D1 would change nothing.`,
      );
    const set = await setWritePause(c.var.db, paused, c.var.now);
    if (set.kind === "no_migration")
      throw notFound(
        "No migration into shards has started: run patron shards migrate first (its full pass runs while the deployment keeps writing), then pause writes for the last pass.",
      );
    return c.json({
      data: {
        writesPausedAt: set.writesPausedAt,
        wasPausedAt: set.wasPausedAt,
        pauseSeenWithinSeconds: writePauseCacheMs / 1000,
      },
    });
  })
  .get("/migrate", async (c) => {
    const { verify } = queryParams(c, statusQuerySchema);
    const state = await migrationState(c.var.db);
    if (!state) throw notFound("No migration into shards has started.");
    if (verify !== "true") return c.json({ data: state });
    const counts = {
      d1: await customerTableCounts(c.var.db),
      shards: await Promise.all(
        Array.from({ length: state.shards }, (_, index) => shardStub(c.env, index).tableCounts()),
      ),
    };
    return c.json({ data: { ...state, counts, changedSince: await changesSince(c.var.db, state.startedAt) } });
  })
  .post("/reshard", async (c) => {
    const body = await jsonBody(c, reshardBodySchema);
    const step = await reshardStep(c.env, c.var.db, body.to, body.limit, c.var.now);
    if (step.kind === "rebalance_running") {
      const pass = await rebalanceState(c.var.db);
      const visited = pass
        ? ` (${pass.scanned.toLocaleString("en-US")} of ${pass.total.toLocaleString("en-US")} customers visited)`
        : "";
      throw new ApiError(
        409,
        "conflict",
        `A rebalance pass is under way${visited}: its moves would make the reshard's walk start over. Finish it first with patron shards rebalance.`,
      );
    }
    if (step.kind !== "stepped") throw reshardRefusal(step, shardCount(c.env));
    return c.json({ data: reshardView(step.state, shardCount(c.env)) });
  })
  .get("/reshard", async (c) => {
    const state = await reshardState(c.var.db);
    if (!state) throw notFound("No reshard has started.");
    return c.json({ data: reshardView(state, shardCount(c.env)) });
  })
  .post("/rebalance", async (c) => {
    const body = await jsonBody(c, rebalanceBodySchema);
    const step = await rebalanceStep(c.env, c.var.db, body.limit, c.var.now);
    if (step.kind === "not_sharded") throw notSharded();
    if (step.kind === "reshard_running")
      throw new ApiError(
        409,
        "conflict",
        `A reshard from ${step.state.from} to ${step.state.to} shards is under way (${step.state.phase}): ${reshardNext(step.state, shardCount(c.env))}, then rebalance.`,
      );
    return c.json({ data: rebalanceView(step.state, shardCount(c.env)) });
  })
  .get("/rebalance", async (c) => {
    const state = await rebalanceState(c.var.db);
    if (!state) throw notFound("No rebalance has started.");
    return c.json({ data: rebalanceView(state, shardCount(c.env)) });
  });
