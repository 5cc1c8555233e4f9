// SHARD_COUNT set on a deployment whose customers are still in D1 only (no `patron shards migrate`):
// it serves nothing, and says what to do, rather than miss those customers and make them again in the
// shards. Once a migration pass has finished, it serves.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { createApp } from "../../../worker/app.ts";
import { forgetUnmigratedCheck, startedOnShardsId } from "../../../worker/shards/migration-guard.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../../fixtures/builders.ts";
import { testHarnessMigration } from "../../fixtures/harness-migration.ts";

const app = createApp();
/** The same bindings as a deployment still on its one D1 database sees them (SHARD_COUNT=0). */
const d1Api = client({
  async fetch(input: string, init?: RequestInit) {
    const context = createExecutionContext();
    const response = await app.fetch(new Request(input, init), { ...env, SHARD_COUNT: "0" }, context);
    await waitOnExecutionContext(context);
    return response;
  },
});
const shardApi = client(SELF);

afterEach(() => forgetUnmigratedCheck());

describe("SHARD_COUNT on customers never migrated", () => {
  it("refuses every route with 503 naming the command, and serves once a migration pass has finished", async () => {
    // A deployment on its one D1 database (the tests' database otherwise stands for a migrated one)...
    await env.DB.prepare("DELETE FROM shard_migration WHERE id = ?").bind(testHarnessMigration).run();
    const account = uniquePrefix("unmigrated");
    const stored = await d1Api.postOrders([anOrder({ identifiers: { account } })]);
    expect(stored.status, await stored.clone().text()).toBe(200);
    // ...that then sets SHARD_COUNT without migrating.
    forgetUnmigratedCheck();
    for (const response of [
      await SELF.fetch("http://patron.test/health"),
      await shardApi.lookup("account", account),
      await shardApi.postOrders([anOrder({ identifiers: { account } })]),
    ]) {
      expect(response.status).toBe(503);
      expect(response.headers.get("Retry-After")).toBe("60");
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("unavailable");
      expect(body.error.message).toMatch(
        /^SHARD_COUNT is 4, but the main database holds customers and no migration pass into the customer shards has finished: .* Set SHARD_COUNT back to 0 and run npx patron shards migrate --shards 4 first/,
      );
    }
    // Nothing was written to the shards: the order stayed with D1 alone.
    expect((await d1Api.lookup("account", account)).status).toBe(200);

    await env.DB.prepare(
      "INSERT INTO shard_migration (id, shards, started_at, updated_at, finished_at) VALUES ('d1-to-shards', 4, ?1, ?1, ?1)",
    )
      .bind(new Date().toISOString())
      .run();
    forgetUnmigratedCheck();
    expect((await SELF.fetch("http://patron.test/health")).status).toBe(200);
    expect((await shardApi.call("GET", "/v1/admin/shards", undefined, adminKey)).status).toBe(200);
  });

  it("serves a deployment that started on shards, set back to 0 for a while and then to its count again", async () => {
    await env.DB.prepare("DELETE FROM shard_migration").run();
    await env.DB.prepare("DELETE FROM customer_summaries").run();
    // Started on shards: D1 holds no customer, and the deployment records so.
    forgetUnmigratedCheck();
    expect((await SELF.fetch("http://patron.test/health")).status).toBe(200);
    const marked = await env.DB.prepare("SELECT shards, finished_at FROM shard_migration WHERE id = ?")
      .bind(startedOnShardsId)
      .first<{ shards: number; finished_at: string | null }>();
    expect(marked?.shards).toBe(4);
    expect(marked?.finished_at).toBeTruthy();
    // Run on D1 for a while (its customers there), then on the shards again: served.
    const stored = await d1Api.postOrders([anOrder({ identifiers: { account: uniquePrefix("back") } })]);
    expect(stored.status, await stored.clone().text()).toBe(200);
    forgetUnmigratedCheck();
    expect((await SELF.fetch("http://patron.test/health")).status).toBe(200);
  });
});
