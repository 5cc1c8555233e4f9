import { applyD1Migrations, env } from "cloudflare:test";
import { testHarnessMigration } from "../fixtures/harness-migration.ts";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
await applyD1Migrations(env.EVENTS_DB, env.TEST_EVENTS_MIGRATIONS);

// On customer shards, tests that compare the shards with D1 write customers into D1 beside them (an app
// with SHARD_COUNT=0 on the same bindings). A deployment refuses to serve from shards while D1 holds
// customers no migration copied (worker/shards/migration-guard.ts): this database stands for one whose
// migration finished. Its id is no migration's, so `patron shards migrate` starts from nothing as before.
if (Number(env.SHARD_COUNT) > 0)
  await env.DB.prepare(
    "INSERT OR IGNORE INTO shard_migration (id, shards, started_at, updated_at, finished_at) VALUES (?1, ?2, ?3, ?3, ?3)",
  )
    .bind(testHarnessMigration, Number(env.SHARD_COUNT), new Date(0).toISOString())
    .run();
