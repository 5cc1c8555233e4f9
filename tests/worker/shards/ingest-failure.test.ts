// A POST /v1/orders whose shard call fails with an exception (not a refusal) after it claimed its
// orders' directory entries: a claim whose order was stored nowhere is dropped, so it names no shard
// for the next request; a claim whose order may be stored where the call went stays, so a resend
// finds the order there and stores it nowhere else.
import { createExecutionContext, env, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../worker/app.ts";
import { homeShard } from "../../../worker/core/shards/placement.ts";
import { identityKey, normalizeForKey } from "../../../worker/identity/identity.keys.ts";
import { ingestResultSchema } from "../../../worker/orders/orders.schemas.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { anOrder, client, uniquePrefix } from "../../fixtures/builders.ts";
import { interceptedEnv } from "./intercepted-env.ts";

const api = client(SELF);
const count = 4;
const secret = "test-identity-secret";

async function accountKey(value: string): Promise<string> {
  const normalized = normalizeForKey("account", value);
  if (!normalized.ok) throw new Error(normalized.reason);
  return identityKey("account", normalized.value, secret);
}

/** The first of `${p}-0`, `${p}-1`, … for which `accept` holds. */
async function firstOf(p: string, accept: (value: string) => Promise<boolean> | boolean): Promise<string> {
  for (let n = 0; ; n++) if (await accept(`${p}-${n}`)) return `${p}-${n}`;
}

/** The shards holding order `id`. */
async function holders(id: string): Promise<number[]> {
  const found: number[] = [];
  for (let shard = 0; shard < count; shard++) {
    const rows = await runInDurableObject(shardStub(env, shard), (_instance, state) =>
      state.storage.sql.exec("SELECT id FROM orders WHERE id = ?", id).toArray(),
    );
    if (rows.length > 0) found.push(shard);
  }
  return found;
}

/** Order `id`'s directory entry at its home: the shard it names and the request claiming it, or null. */
async function entryOf(id: string): Promise<{ shard: number; claimedBy: string | null } | null> {
  const [row] = await runInDurableObject(shardStub(env, homeShard(`order:${id}`, count)), (_instance, state) =>
    state.storage.sql.exec("SELECT shard, claimed_by FROM shard_directory WHERE key = ?", `order:${id}`).toArray(),
  );
  return row ? { shard: Number(row.shard), claimedBy: row.claimed_by === null ? null : String(row.claimed_by) } : null;
}

/** An API client whose requests run with `bindings`. */
function clientWith(bindings: typeof env) {
  const app = createApp();
  return client({
    async fetch(input: string, init?: RequestInit) {
      const context = createExecutionContext();
      const response = await app.fetch(new Request(input, init), bindings, context);
      await waitOnExecutionContext(context);
      return response;
    },
  });
}

type IngestGroups = (...args: unknown[]) => Promise<unknown>;

/** The test's env with shard `failing`'s `ingestGroups` calls answered by `call` (given the real one). */
const failingShardEnv = (failing: number, call: (real: IngestGroups, args: unknown[]) => Promise<unknown>) =>
  interceptedEnv((shard, method, real) =>
    shard === `shard-${failing}` && method === "ingestGroups"
      ? (...args: unknown[]) => call(real as IngestGroups, args)
      : real,
  );

/**
 * A new customer's order whose account is homed in one shard (where the order is stored) and whose id
 * is homed in another, so its claim records an entry at the id's home naming the account's shard.
 */
async function awayOrder(p: string) {
  const account = `${p}-acct`;
  const target = homeShard(await accountKey(account), count);
  const id = await firstOf(`${p}-o`, (value) => homeShard(`order:${value}`, count) !== target);
  return { order: anOrder({ id, identifiers: { account } }), target };
}

describe("an order batch whose shard call fails with an exception", () => {
  it("drops its claims when the shard threw and holds none of its orders, and the resend stores them once", async () => {
    const p = uniquePrefix("fail-inside");
    const { order, target } = await awayOrder(p);
    // The shard refuses the call from inside (a Worker on another SHARD_COUNT, as during a rollout):
    // an exception thrown in the shard's own code, nothing written.
    const failing = failingShardEnv(target, (real, args) => real(...args.slice(0, 4), count + 1));
    const failed = await clientWith(failing).postOrders([order]);
    expect(failed.status, await failed.clone().text()).toBe(503);
    expect(await holders(order.id)).toEqual([]);
    expect(await entryOf(order.id), "a claim left naming a shard that never stored its order").toBeNull();

    const resent = await api.postOrders([order]);
    expect(resent.status).toBe(200);
    const { data } = ingestResultSchema.parse(await resent.json());
    expect(data).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await holders(order.id)).toEqual([target]);
    expect(await entryOf(order.id)).toMatchObject({ shard: target });
  });

  it.each([
    ["the connection is lost after the shard stored it", async () => new Error("Network connection lost.")],
    [
      "the shard throws after storing it",
      // An exception thrown in the shard's own code, as its read-back after the write could throw.
      async (real: IngestGroups, args: unknown[]) =>
        real(...args.slice(0, 4), count + 1).then(
          () => new Error("expected the shard to refuse"),
          (error: unknown) => error,
        ),
    ],
  ])("keeps the claim of an order stored where the call went when %s", async (_case, failure) => {
    const p = uniquePrefix("fail-after");
    const { order, target } = await awayOrder(p);
    const failing = failingShardEnv(target, async (real, args) => {
      await real(...args);
      throw await failure(real, args);
    });
    const failed = await clientWith(failing).postOrders([order]);
    expect(failed.status, await failed.clone().text()).toBe(503);
    expect(await holders(order.id)).toEqual([target]);
    expect(await entryOf(order.id)).toMatchObject({ shard: target });

    // The resend finds it stored: a duplicate, stored nowhere else.
    const resent = await api.postOrders([order]);
    expect(resent.status).toBe(200);
    const { data } = ingestResultSchema.parse(await resent.json());
    expect(data).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(await holders(order.id)).toEqual([target]);
  });
});
