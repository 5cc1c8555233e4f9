// The migration from the one D1 database into customer shards (`patron shards migrate`) as it runs on a
// deployment: the shards run the deployment's settings too, so while it is on D1 they serve count 0,
// and they take the migration's regions and directory entries, placed by the count it migrates into.
// (tests/worker/shards/migrate.test.ts checks the answers before and after, with shards that run 4.)
// Run in both worker projects: on D1 it migrates; where the deployment is on shards already (the
// worker-shards project) it is refused.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { shardCount } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix, verified } from "../fixtures/builders.ts";

const api = client(SELF);

describe("a migration into shards that run the deployment's count", () => {
  it("copies every customer table on D1, and is refused on shards", async () => {
    const p = uniquePrefix("mig-d1");
    const orders = [
      anOrder({ id: `${p}-1`, identifiers: { account: `${p}-ann`, email: verified(`ann-${p}@x.test`) } }),
      anOrder({
        id: `${p}-2`,
        channel: "store",
        identifiers: { loyalty: `${p}-ANN`, email: verified(`ann-${p}@x.test`) },
      }),
      anOrder({ id: `${p}-3`, identifiers: { account: `${p}-bob` } }),
    ];
    expect((await api.postOrders(orders)).status).toBe(200);
    const step = () => api.call("POST", "/v1/admin/shards/migrate", { shards: 3, limit: 1 }, adminKey);
    if (shardCount(env) > 0) {
      const refused = await step();
      expect(refused.status).toBe(409);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/shards already/);
      return;
    }
    let done = false;
    for (let steps = 0; !done && steps < 100; steps++) {
      const response = await step();
      expect(response.status, await response.clone().text()).toBe(200);
      done = ((await response.json()) as { data: { done: boolean } }).data.done;
    }
    expect(done).toBe(true);
    const verify = await api.call("GET", "/v1/admin/shards/migrate?verify=true", undefined, adminKey);
    expect(verify.status).toBe(200);
    const { counts } = (
      (await verify.json()) as {
        data: { counts: { d1: Record<string, number>; shards: Record<string, number>[] } };
      }
    ).data;
    const summed: Record<string, number> = {};
    for (const shard of counts.shards)
      for (const [table, n] of Object.entries(shard)) summed[table] = (summed[table] ?? 0) + n;
    expect(counts.d1.orders).toBe(3);
    expect(summed).toEqual(counts.d1);
  });
});
