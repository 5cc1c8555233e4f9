// A shard serving for the first time (SHARD_COUNT=4) takes the deployment's count only if shard 0 serves
// under it too: a count raised without a reshard is refused by the shards it adds as by the old ones,
// instead of those serving the keys homed there (docs/scaling.md, resharding). Shard 0 is left placed
// for another count at the end, so this file has a test of its own.
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { homeShard } from "../../../worker/core/shards/placement.ts";
import { identityKey } from "../../../worker/identity/identity.keys.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { anOrder, client, uniquePrefix } from "../../fixtures/builders.ts";

const api = client(SELF);

const restart = (shard: number) =>
  runInDurableObject(shardStub(env, shard), (_instance, state) => state.abort("start again")).catch(() => {});
const recordedIn = (shard: number) =>
  runInDurableObject(shardStub(env, shard), (_instance, state) => state.storage.get<number>("shardCount"));
/** As if the shard had never served: its recorded count goes, and it starts again. */
async function neverServed(shard: number) {
  await runInDurableObject(shardStub(env, shard), async (_instance, state) => {
    await state.storage.delete("shardCount");
    await state.storage.sync();
  });
  await restart(shard);
}

describe("a shard serving for the first time", () => {
  it("takes the count shard 0 serves under, and refuses one shard 0 refuses (a count raised without a reshard)", async () => {
    const p = uniquePrefix("first");
    // An account homed in shard 3: a shard a raised count would add.
    let account = "";
    for (let i = 0; !account; i++) {
      const candidate = `${p}-acct-${i}`;
      if (homeShard(await identityKey("account", candidate, "test-identity-secret"), 4) === 3) account = candidate;
    }
    expect((await api.postOrders([anOrder({ id: `${p}-1`, identifiers: { account } })])).status).toBe(200);

    // Shard 3 starting afresh while shard 0 serves under 4: it records 4 and serves.
    await neverServed(3);
    expect((await api.lookup("account", account)).status).toBe(200);
    expect(await recordedIn(3)).toBe(4);

    // Shard 0 placed for 3 shards (the deployment's count raised to 4 without a reshard): shard 3,
    // starting afresh, refuses as shard 0 does.
    await runInDurableObject(shardStub(env, 0), async (_instance, state) => {
      await state.storage.put("shardCount", 3);
      await state.storage.sync();
    });
    await restart(0);
    await neverServed(3);
    const refused = await api.lookup("account", account);
    expect(refused.status, await refused.clone().text()).toBe(503);
    const { error } = (await refused.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("unavailable");
    expect(error.message).toMatch(/SHARD_COUNT is 4, but the customer shards were placed for 3/);
  });
});
