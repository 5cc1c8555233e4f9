// Test projects: `core` (pure functions and the CLI in Node), `worker` (the real app in workerd with
// real local D1 and the real migrations), `worker-shards` (the same with customer data in four
// customer shards, SHARD_COUNT=4), `browser` (widget and console in headless Chromium).
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

const root = import.meta.dirname;

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(root, "db/migrations"));
  const eventsMigrations = await readD1Migrations(path.join(root, "db/events-migrations"));
  /** The real app in workerd with real local D1 and the real migrations; `bindings` adds settings. */
  const workerProject = (
    name: string,
    files: { include: string[]; exclude?: string[] },
    bindings: Record<string, string> = {},
  ) => ({
    plugins: [
      cloudflareTest({
        wrangler: { configPath: path.join(root, "wrangler.toml") },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            TEST_EVENTS_MIGRATIONS: eventsMigrations,
            PATRON_API_KEY: "test-api-key",
            PATRON_ADMIN_KEY: "test-admin-key",
            SHOPPER_TOKEN_SECRET: "test-shopper-secret",
            IDENTITY_HASH_SECRET: "test-identity-secret",
            // Pinned here so a developer's local .dev.vars cannot change what the tests see.
            HOLDOUT_SHARE: "0.1",
            // Lets audience webhooks point at the local test receiver (http://127.0.0.1:<port>).
            AUDIENCE_WEBHOOKS_ALLOW_LOCAL: "on",
            // `npm run bench -- fuzz [runs]` sets these for tests/worker/fuzz.test.ts; unset, it runs its default.
            FUZZ_RUNS: process.env.FUZZ_RUNS ?? "",
            FUZZ_SEED: process.env.FUZZ_SEED ?? "",
            ...bindings,
          },
        },
      }),
    ],
    test: {
      name,
      ...files,
      testTimeout: 60_000,
      // The worker's logs go straight to workerd's output. Intercepted, each line is a call back to
      // vitest, and a line logged from another I/O context (a request handler, a Workflow step, a
      // waitUntil) as a file ends can leave the run waiting for its answer forever
      // (cloudflare/workers-sdk#15719); tests/run.ts restarts a run that stalls all the same.
      disableConsoleIntercept: true,
      setupFiles: ["tests/worker/apply-migrations.ts"],
      // A real local HTTP server the nightly job's audience webhooks are delivered to.
      globalSetup: ["tests/fixtures/webhook-receiver.ts"],
    },
  });
  return {
    test: {
      reporters: ["default", path.join(root, "tests/reporter.ts")],
      projects: [
        {
          test: {
            name: "core",
            include: ["tests/core/**/*.test.ts", "tests/cli/**/*.test.ts"],
            environment: "node",
            // Not vitest's 5 s: the CPU-bound property tests take 1–2 s alone and took 5.8 s in a full
            // run on two shared cores (json-chunks' utf8Bytes, 2026-12-02); a hang still fails.
            testTimeout: 30_000,
          },
        },
        workerProject("worker", { include: ["tests/worker/**/*.test.ts"], exclude: ["tests/worker/shards/**"] }),
        // Customer data in four customer shards (docs/scaling.md) instead of the one D1 database: the
        // shards' own tests, and every other worker test with the same assertions (fixtures read and
        // plant rows wherever the store keeps them: tests/fixtures/store-rows.ts and its neighbours).
        workerProject(
          "worker-shards",
          {
            include: ["tests/worker/**/*.test.ts"],
          },
          { SHARD_COUNT: "4" },
        ),
        {
          test: {
            name: "browser",
            include: ["tests/widget/**/*.test.ts", "tests/e2e/**/*.test.ts"],
            environment: "node",
            testTimeout: 60_000,
            // A hook that starts the dev worker may start it twice (tests/fixtures/wrangler-dev.ts).
            hookTimeout: 300_000,
            fileParallelism: false,
            // A shared machine running the whole suite can take seconds over what one page does alone:
            // every expect.poll waits up to 10 s (the default, 1 s, made tests fail under load).
            expect: { poll: { timeout: 10_000 } },
          },
        },
      ],
    },
  };
});
