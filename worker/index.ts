// Worker entry: HTTP through the Hono app; the cron trigger starts the nightly model Workflow (or skips,
// with a log line, while a run is running); the import queue's batches go to the import consumer.
import { createApp } from "./app.ts";
import { mainDatabase } from "./databases.ts";
import type { Env } from "./env.ts";
import { consumeImportBatches } from "./imports/imports.consumer.ts";
import { startNightlyRun } from "./jobs/nightly.start.ts";

export { NightlyModelWorkflow } from "./jobs/nightly.workflow.ts";
export { CustomerShard } from "./shards/customer-shard.ts";

const app = createApp();

export default {
  fetch: app.fetch,
  async scheduled(controller, env) {
    const asOf = new Date(controller.scheduledTime);
    const runId = `nightly-${asOf.toISOString().replace(/[:.]/g, "-")}`;
    const outcome = await startNightlyRun(env, mainDatabase(env.DB), { runId, asOf, now: new Date() });
    // e.g. {"job":"nightly","skipped":"nightly-…","why":{"started":false,"reason":"running","runId":"nightly-…","startedAt":"…"}}
    if (!outcome.started) console.log(JSON.stringify({ job: "nightly", skipped: runId, why: outcome }));
  },
  queue: (batch, env) => consumeImportBatches(batch, env),
} satisfies ExportedHandler<Env>;
