// GET /v1/admin/shards (`patron shards status`) over four shards: each shard's customers and stored
// bytes as the shard itself holds them, the totals, and the refusals.
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
    const view = await status();
    expect(view.count).toBe(4);
    expect(view.limitBytes).toBe(10_000_000_000);
    expect(view.shards.map((part) => part.shard)).toEqual([0, 1, 2, 3]);
    expect(view.totals.customers).toBe(before.totals.customers + 12);
    for (const part of view.shards) {
      const [held] = await shardRows<{ n: number }>(part.shard, "SELECT count(*) AS n FROM customers");
      expect(part.customers).toBe(held?.n);
      const size = await runInDurableObject(
        shardStub(env, part.shard),
        (_instance, state) => state.storage.sql.databaseSize,
      );
      expect(part.bytes).toBe(size);
      expect(part.bytes).toBeGreaterThan(0);
      expect(part.unfinishedMoves).toBe(0);
      expect(part.preparedFor).toBeNull();
      expect(part.serves).toBe(4);
    }
    expect(view.totals.bytes).toBe(view.shards.reduce((total, part) => total + part.bytes, 0));
    expect(view.unanswered).toEqual([]);
    expect(view.nearlyFull).toBe(false);
    expect(view.reshard).toBeNull();
    expect(view.rebalance).toBeNull();
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
