// Worker entry: HTTP through the Hono app; the cron trigger starts the nightly model Workflow (or skips,
// with a log line, while a run is running); the import queue's batches go to the import consumer.
import { createApp } from "./app.ts";
import { mainDatabase } from "./databases.ts";
import type { Env } from "./env.ts";
import { consumeImportBatches } from "./imports/imports.consumer.ts";
import { startNightlyRun } from "./jobs/nightly.start.ts";
import { unmigratedProblemOf, unmigratedRetrySeconds } from "./shards/migration-guard.ts";

export { NightlyModelWorkflow } from "./jobs/nightly.workflow.ts";
export { CustomerShard } from "./shards/customer-shard.ts";

const app = createApp();

export default {
  fetch: app.fetch,
  async scheduled(controller, env) {
    // Not over shards that never got D1's customers (SHARD_COUNT set before patron shards migrate).
    const unmigrated = await unmigratedProblemOf(env, mainDatabase(env.DB));
    if (unmigrated) return console.error(JSON.stringify({ job: "nightly", skipped: true, why: unmigrated }));
    const asOf = new Date(controller.scheduledTime);
    const runId = `nightly-${asOf.toISOString().replace(/[:.]/g, "-")}`;
    const outcome = await startNightlyRun(env, mainDatabase(env.DB), { runId, asOf, now: new Date() });
    // e.g. {"job":"nightly","skipped":"nightly-…","why":{"started":false,"reason":"running","runId":"nightly-…","startedAt":"…"}}
    if (!outcome.started) console.log(JSON.stringify({ job: "nightly", skipped: runId, why: outcome }));
  },
  async queue(batch, env) {
    // Import batches wait (retried later) rather than make customers in shards D1's never reached.
    const unmigrated = await unmigratedProblemOf(env, mainDatabase(env.DB));
    if (unmigrated) {
      console.error(JSON.stringify({ queue: "imports", retried: batch.messages.length, why: unmigrated }));
      return batch.retryAll({ delaySeconds: unmigratedRetrySeconds });
    }
    return consumeImportBatches(batch, env);
  },
} satisfies ExportedHandler<Env>;
