// A shard records the SHARD_COUNT it first served with and refuses every call once the deployment says
// another count: every key's home would differ, and the directory would miss customers. The route
// answers 503 `unavailable` naming both counts, instead of answering as if the customer did not exist.
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { homeShard } from "../../../worker/core/shards/placement.ts";
import { identityKey } from "../../../worker/identity/identity.keys.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { anOrder, client, uniquePrefix } from "../../fixtures/builders.ts";

const api = client(SELF);

describe("a shard placed for another shard count", () => {
  it("records the count it serves with, and refuses every call once it differs", async () => {
    const p = uniquePrefix("count");
    const created = await api.postOrders([anOrder({ id: `${p}-1`, identifiers: { account: `${p}-acct` } })]);
    expect(created.status, await created.clone().text()).toBe(200);
    const home = homeShard(await identityKey("account", `${p}-acct`, "test-identity-secret"), 4);
    const recorded = await runInDurableObject(shardStub(env, home), (_instance, state) =>
      state.storage.get<number>("shardCount"),
    );
    expect(recorded).toBe(4);
    expect((await api.lookup("account", `${p}-acct`)).status).toBe(200);

    // As if it had been placed for 8 shards: the next time the object starts, it refuses.
    await runInDurableObject(shardStub(env, home), async (_instance, state) => {
      await state.storage.put("shardCount", 8);
      await state.storage.sync();
    });
    await runInDurableObject(shardStub(env, home), (_instance, state) => state.abort("start again")).catch(() => {});
    const refused = await api.lookup("account", `${p}-acct`);
    expect(refused.status, await refused.clone().text()).toBe(503);
    const { error } = (await refused.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("unavailable");
    expect(error.message).toMatch(/SHARD_COUNT is 4, but the customer shards were placed for 8/);
  });
});
