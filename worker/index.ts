// Worker entry: HTTP through the Hono app; the cron trigger starts the nightly model Workflow; the
// import queue's batches go to the import consumer.
import { createApp } from "./app.ts";
import type { Env } from "./env.ts";
import { consumeImportBatches } from "./imports/imports.consumer.ts";

export { NightlyModelWorkflow } from "./jobs/nightly.workflow.ts";
export { CustomerShard } from "./shards/customer-shard.ts";

const app = createApp();

export default {
  fetch: app.fetch,
  async scheduled(controller, env) {
    const asOf = new Date(controller.scheduledTime).toISOString();
    await env.NIGHTLY.create({ id: `nightly-${asOf.replace(/[:.]/g, "-")}`, params: { asOf } });
  },
  queue: (batch, env) => consumeImportBatches(batch, env),
} satisfies ExportedHandler<Env>;
