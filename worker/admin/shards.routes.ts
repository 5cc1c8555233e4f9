// Admin routes for the move of a single-database deployment's customer data into customer shards
// (`patron shards migrate`, docs/scaling.md): one step per POST, its progress and a count check.
import { Hono } from "hono";
import { z } from "zod";
import { maxShards } from "../core/shards/placement.ts";
import type { AppEnv } from "../env.ts";
import { requireAdminKey } from "../http/auth.ts";
import { ApiError, notFound } from "../http/errors.ts";
import { jsonBody, queryParams } from "../http/validate.ts";
import { changesSince, customerTableCounts, migrateStep, migrationState } from "../shards/migrate.ts";
import { shardCount, shardStub } from "../shards/shards.ts";

const migrateBodySchema = z.strictObject({
  shards: z.number().int().min(1).max(maxShards),
  limit: z.number().int().min(1).max(500).default(100),
  /** Start a new pass even over shards that stored rows of their own since the last pass finished. */
  discardShardData: z.boolean().default(false),
});
const statusQuerySchema = z.strictObject({ verify: z.enum(["true", "false"]).default("false") });

/** Rows by table as "orders: 2, customers: 1", the tables with none left out. */
const writtenText = (written: Record<string, number>) =>
  Object.entries(written)
    .filter(([, n]) => n > 0)
    .map(([table, n]) => `${table}: ${n.toLocaleString("en-US")}`)
    .join(", ");

export const shardAdminRoutes = new Hono<AppEnv>()
  .use("*", requireAdminKey)
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
    });
    if (step.kind === "shards_written")
      throw new ApiError(
        409,
        "conflict",
        `${step.since === null ? "The customer shards already hold data, before a first pass" : `The customer shards stored rows of their own after the last pass finished (${step.since})`}: ${writtenText(step.written)}. A deployment ran on them, and D1 does not hold those. A new pass would empty the shards and lose them. To serve from the shards again, set SHARD_COUNT back to their count. To replace them with D1's copy anyway, run again with --discard-shard-data ("discardShardData": true), then resend the orders stored since.`,
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
  });
