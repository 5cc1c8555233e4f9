// A write whose keys a Worker placed by another count than the shards serve (one still on the old
// version while a reshard's new count rolls out, or already on the new one while the shards are not)
// is refused with 503 `unavailable` naming both counts, and writes nothing: its directory entries
// would sit where no read under the shards' count looks.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../worker/app.ts";
import { identityKey } from "../../../worker/identity/identity.keys.ts";
import { adminKey, anOrder, client, type Fetcher, uniquePrefix } from "../../fixtures/builders.ts";
import { shardRows } from "../../fixtures/shard-seed.ts";

const api = client(SELF);

/** The same Worker with SHARD_COUNT set to `count`, calling the shards, which serve 4. */
function workerUnder(count: number): Fetcher {
  return {
    async fetch(input, init) {
      const context = createExecutionContext();
      const response = await createApp().fetch(
        new Request(input, init),
        { ...env, SHARD_COUNT: String(count) },
        context,
      );
      await waitOnExecutionContext(context);
      return response;
    },
  };
}

async function expectSkewRefusal(response: Response, placedBy: number) {
  expect(response.status, await response.clone().text()).toBe(503);
  expect(response.headers.get("Retry-After")).toBe("30");
  const { error } = (await response.json()) as { error: { code: string; message: string } };
  expect(error.code).toBe("unavailable");
  expect(error.message).toContain(`placed its keys among ${placedBy} customer shards, but the shards serve 4`);
}

describe("a Worker placing keys by another count than the shards serve", () => {
  it("has its orders and identify calls refused, old count or new, and nothing is written", async () => {
    const p = uniquePrefix("skew");
    for (const count of [3, 5]) {
      const skewed = client(workerUnder(count));
      const account = `${p}-${count}-acct`;
      const order = anOrder({ id: `${p}-${count}-1`, identifiers: { account, email: `${p}-${count}@example.com` } });
      await expectSkewRefusal(await skewed.postOrders([order]), count);
      await expectSkewRefusal(await skewed.identify({ account, loyalty: `${p}-${count}-card` }), count);
      const key = await identityKey("account", account, "test-identity-secret");
      for (const shard of [0, 1, 2, 3, 4]) {
        expect(await shardRows(shard, "SELECT key FROM shard_directory WHERE key = ?", key)).toEqual([]);
        expect(await shardRows(shard, "SELECT id FROM orders WHERE id = ?", order.id)).toEqual([]);
      }
      expect((await api.lookup("account", account)).status).toBe(404);
      // The same order through the Worker placing by the shards' count is taken.
      expect((await api.postOrders([order])).status).toBe(200);
      expect((await api.lookup("account", account)).status).toBe(200);
    }
  });

  it("has an erasure and a suppression lift refused, and the customer stays", async () => {
    const p = uniquePrefix("skew-erase");
    const created = await api.postOrders([anOrder({ id: `${p}-1`, identifiers: { account: `${p}-acct` } })]);
    expect(created.status, await created.clone().text()).toBe(200);
    const found = (await (await api.lookup("account", `${p}-acct`)).json()) as { data: { customerId: string } };
    for (const count of [3, 5]) {
      const skewed = client(workerUnder(count));
      await expectSkewRefusal(
        await skewed.call("DELETE", `/v1/customers/${found.data.customerId}`, undefined, adminKey),
        count,
      );
      expect((await api.customer(found.data.customerId)).status).toBe(200);
      await expectSkewRefusal(
        await skewed.call("DELETE", "/v1/admin/suppressions", { kind: "order", value: `${p}-1` }, adminKey),
        count,
      );
    }
  });
});
