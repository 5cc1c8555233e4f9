// GET /v1/admin/shards (`patron shards status`) over four shards: each shard's customers (not those
// merged into another) and stored bytes as the shard itself holds them, the totals, and the refusals.
import { createExecutionContext, env, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../worker/app.ts";
import type { ShardsOverview } from "../../../worker/core/shards/status.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../../fixtures/builders.ts";
import { shardRows } from "../../fixtures/shard-seed.ts";

const api = client(SELF);

async function status(): Promise<ShardsOverview & { reshard: unknown; rebalance: unknown }> {
  const response = await api.call("GET", "/v1/admin/shards", undefined, adminKey);
  expect(response.status, await response.clone().text()).toBe(200);
  return ((await response.json()) as { data: ShardsOverview & { reshard: unknown; rebalance: unknown } }).data;
}

describe("GET /v1/admin/shards", () => {
  it("answers each shard's customers and stored bytes as the shard holds them, and the totals", async () => {
    const before = await status();
    const p = uniquePrefix("status");
    const orders = Array.from({ length: 12 }, (_, i) =>
      anOrder({ id: `${p}-${i}`, identifiers: { account: `${p}-a${i}` } }),
    );
    expect((await api.postOrders(orders)).status).toBe(200);
    // A loyalty card's customer, then merged into an account's by an order carrying both: one customer.
    expect((await api.postOrders([anOrder({ id: `${p}-card`, identifiers: { loyalty: `${p}-L` } })])).status).toBe(200);
    const merge = await api.postOrders([
      anOrder({ id: `${p}-both`, identifiers: { account: `${p}-a0`, loyalty: `${p}-L` } }),
    ]);
    expect(((await merge.json()) as { data: { merges: number } }).data.merges).toBe(1);
    const view = await status();
    expect(view.count).toBe(4);
    expect(view.limitBytes).toBe(10_000_000_000);
    expect(view.shards.map((part) => part.shard)).toEqual([0, 1, 2, 3]);
    expect(view.totals.customers).toBe(before.totals.customers + 12);
    let mergedAway = 0;
    for (const part of view.shards) {
      const [held] = await shardRows<{ n: number; merged: number }>(
        part.shard,
        "SELECT count(*) - count(merged_into) AS n, count(merged_into) AS merged FROM customers",
      );
      expect(part.customers).toBe(held?.n);
      mergedAway += held?.merged ?? 0;
      const size = await runInDurableObject(
        shardStub(env, part.shard),
        (_instance, state) => state.storage.sql.databaseSize,
      );
      expect(part.bytes).toBe(size);
      expect(part.bytes).toBeGreaterThan(0);
      expect(part.unfinishedMoves).toBe(0);
      expect(part.preparedFor).toBeNull();
      expect(part.serves).toBe(4);
      const [kept] = await shardRows<{ n: number }>(part.shard, "SELECT count(*) AS n FROM erasure_scrubs");
      expect(part.erasureScrubs).toMatchObject({ pending: kept?.n, failing: 0 });
    }
    expect(mergedAway).toBeGreaterThan(0); // held, and not counted as a customer
    expect(view.totals.bytes).toBe(view.shards.reduce((total, part) => total + part.bytes, 0));
    expect(view.unanswered).toEqual([]);
    expect(view.nearlyFull).toBe(false);
    expect(view.reshard).toBeNull();
    expect(view.rebalance).toBeNull();
  });

  it("answers the main D1 database's size, growing as it does, and the members its audiences with a webhook keep", async () => {
    const before = (await status()).main;
    expect(before?.limitBytes).toBe(10_000_000_000);
    expect(before?.bytes).toBeGreaterThan(0);
    // A megabyte more in D1, and an audience with a webhook sized at 1,234 members by a run.
    await env.DB.exec("CREATE TABLE probe_status_bytes (b BLOB)");
    await env.DB.batch(
      Array.from({ length: 16 }, () => env.DB.prepare("INSERT INTO probe_status_bytes VALUES (randomblob(65536))")),
    );
    const saved = await api.call(
      "POST",
      "/v1/admin/audiences",
      { name: "Status probe", filters: {}, webhookUrl: "https://hooks.example.com/status", matchKeys: [] },
      adminKey,
    );
    expect(saved.status, await saved.clone().text()).toBe(201);
    const { id } = ((await saved.json()) as { data: { id: string } }).data;
    await env.DB.prepare("UPDATE audiences SET size = 1234 WHERE id = ?").bind(id).run();
    try {
      const after = (await status()).main;
      expect((after?.bytes ?? 0) - (before?.bytes ?? 0)).toBeGreaterThanOrEqual(16 * 65_536);
      expect(after?.share).toBe((after?.bytes ?? 0) / 10_000_000_000);
      expect(after?.audienceMembers).toBe((before?.audienceMembers ?? 0) + 1234);
      expect(after?.nearlyFull).toBe(false);
    } finally {
      await env.DB.exec("DROP TABLE probe_status_bytes");
      await api.call("DELETE", `/v1/admin/audiences/${id}`, undefined, adminKey);
    }
  });

  it("wants the admin key, and customer data in shards", async () => {
    expect((await api.call("GET", "/v1/admin/shards", undefined, null)).status).toBe(401);
    const context = createExecutionContext();
    const response = await createApp().fetch(
      new Request("http://patron.test/v1/admin/shards", { headers: { Authorization: `Bearer ${adminKey}` } }),
      { ...env, SHARD_COUNT: "0" },
      context,
    );
    await waitOnExecutionContext(context);
    expect(response.status).toBe(409);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(/patron shards migrate/);
  });
});
