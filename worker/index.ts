// Worker entry: HTTP through the Hono app; the cron trigger runs the nightly model job.
import { createApp } from "./app.ts";
import type { Env } from "./env.ts";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
