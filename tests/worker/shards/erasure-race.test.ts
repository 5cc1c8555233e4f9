// An order racing an erasure across shards: the erasure puts the customer's identifiers on D1's
// suppression list, then deletes their directory entries. An order whose router read the list before
// the erasure wrote it, and located its keys after the entries were gone, finds them unknown and
// claims them for a new region in a shard whose own list never had them. The router reads the list
// again once it has claimed new keys: the order is answered busy (409, Retry-After), and the retry
// finds it suppressed. Here the race is made deterministic: the router's first read of the list is
// answered empty, as it would have been just before the erasure.
import { createExecutionContext, env, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../worker/app.ts";
import { homeShard } from "../../../worker/core/shards/placement.ts";
import { identityKey } from "../../../worker/identity/identity.keys.ts";
import { normalizeForKey } from "../../../worker/identity/phone.ts";
import { ingestResultSchema } from "../../../worker/orders/orders.schemas.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { adminKey, anOrder, apiKey, client, uniquePrefix } from "../../fixtures/builders.ts";

const app = createApp();
const api = client(SELF);

/** The real D1 binding, except that the first read of the suppression list finds nothing. */
function listReadLate(): D1Database {
  let first = true;
  return new Proxy(env.DB, {
    get(target, property) {
      if (property === "batch")
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements);
          const query = (statements[0] as unknown as { statement?: string }).statement ?? "";
          if (first && statements.length === 1 && /FROM suppressions s\s+WHERE s\.key = CASE/.test(query)) {
            first = false;
            return results.map((result) => ({ ...result, results: [] }));
          }
          return results;
        };
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function postWith(db: D1Database, orders: unknown[]) {
  const context = createExecutionContext();
  const response = await app.fetch(
    new Request("http://patron.test/v1/orders", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ orders }),
    }),
    { ...env, DB: db },
    context,
  );
  await waitOnExecutionContext(context);
  return response;
}

async function ordersInShards(prefix: string): Promise<number> {
  let n = 0;
  for (let shard = 0; shard < 4; shard++) {
    n += await runInDurableObject(shardStub(env, shard), (_instance, state) =>
      Number(state.storage.sql.exec("SELECT count(*) AS n FROM orders WHERE id LIKE ?", `${prefix}%`).one().n),
    );
  }
  return n;
}

async function keyOf(kind: "account" | "loyalty", value: string): Promise<string> {
  const normalized = normalizeForKey(kind, value);
  if (!normalized.ok) throw new Error(normalized.reason);
  return identityKey(kind, normalized.value, "test-identity-secret");
}

/** A web account and a loyalty card whose keys have different home shards. */
async function apart(p: string) {
  for (let n = 0; ; n++) {
    const account = `${p}-web-${n}`;
    const loyalty = `${p}-CARD-${n}`;
    if (homeShard(await keyOf("account", account), 4) !== homeShard(await keyOf("loyalty", loyalty), 4))
      return { account, loyalty };
  }
}

describe("an order racing an erasure across shards", () => {
  it("is answered busy when its identifier was erased after the first read of the list, then suppressed", async () => {
    const p = uniquePrefix("race-erase");
    // The customer lives in its account's home shard; its card's home is another shard, whose own
    // suppression list the erasure never writes.
    const { account, loyalty } = await apart(p);
    const first = await api.postOrders([anOrder({ id: `${p}-1`, identifiers: { account, loyalty } })]);
    expect(first.status, await first.clone().text()).toBe(200);
    const customerId = ingestResultSchema.parse(await first.json()).data.results[0]?.customerId as string;
    const erased = await api.call("DELETE", `/v1/customers/${customerId}`, undefined, adminKey);
    expect(erased.status, await erased.clone().text()).toBe(200);

    const card = { channel: "store" as const, identifiers: { loyalty } };
    const racing = await postWith(listReadLate(), [anOrder({ id: `${p}-2`, ...card })]);
    expect(racing.status, await racing.clone().text()).toBe(409);
    expect(racing.headers.get("Retry-After")).not.toBeNull();
    expect(await ordersInShards(p)).toBe(0);

    const retried = await api.postOrders([anOrder({ id: `${p}-2`, ...card })]);
    expect(retried.status, await retried.clone().text()).toBe(200);
    expect(ingestResultSchema.parse(await retried.json()).data.results[0]?.status).toBe("suppressed");
    expect(await ordersInShards(p)).toBe(0);
  });
});
