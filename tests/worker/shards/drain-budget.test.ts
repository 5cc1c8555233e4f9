// A page of moves between shards keeps within the calls it may make (pageMoveCalls in
// worker/shards/rebalance-shard.ts): at hundreds of shards a page of 1,000 customers bound for as many
// shards would make one move each, past an invocation's subrequests. Here the budget is set low
// enough to cut a drain page of shard 3 short after its first move: the moves past it wait, counted
// busy, a later page moves them, and every lookup answers as before.
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { MoveContext, MovePeer } from "../../../worker/shards/moves.ts";
import { drainPage, moveCalls } from "../../../worker/shards/rebalance-shard.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { anOrder, client, uniquePrefix } from "../../fixtures/builders.ts";

const api = client(SELF);

/** Customers shard `index` holds (survivors only). */
async function customersIn(index: number): Promise<number> {
  return runInDurableObject(shardStub(env, index), (_instance, state) => {
    const [row] = state.storage.sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM customers WHERE merged_into IS NULL")
      .toArray();
    return row?.n ?? 0;
  });
}

/** A drain page of shard 3 into shards 0–2, with `pageCalls`; the calls its moves made to other shards. */
function drainShard3(pageCalls?: number) {
  return runInDurableObject(shardStub(env, 3), async (instance) => {
    const placement = (instance as unknown as { placement: MoveContext }).placement;
    const calls: string[] = [];
    const peer = (index: number): MovePeer => {
      const stub = placement.peer(index);
      return new Proxy(stub, {
        get(target, method) {
          const value = Reflect.get(target, method);
          if (typeof value !== "function" || method === "then") return value;
          return (...args: unknown[]) => {
            calls.push(`shard-${index}.${String(method)}`);
            return Reflect.apply(value, target, args);
          };
        },
      });
    };
    const page = await drainPage({ ...placement, peer, pageCalls }, "", 1000, 3);
    return { page, calls };
  });
}

describe("a page of moves with its calls spent", () => {
  it("moves what its calls allow, counts the rest busy, and a later page moves them; every answer stays the same", async () => {
    const p = uniquePrefix("budget");
    const accounts = Array.from({ length: 60 }, (_, i) => `${p}-acct-${i}`);
    const orders = accounts.flatMap((account, i) => [
      anOrder({ id: `${p}-${i}-web`, identifiers: { account } }),
      anOrder({ id: `${p}-${i}-store`, channel: "store", identifiers: { account, loyalty: `${p}-card-${i}` } }),
    ]);
    expect((await api.postOrders(orders)).status).toBe(200);
    const lookups = async () => {
      const answers: Record<string, unknown> = {};
      for (const account of accounts) {
        const response = await api.lookup("account", account);
        expect(response.status, await response.clone().text()).toBe(200);
        const { data } = (await response.json()) as { data: { customerId: string; orders: { id: string }[] } };
        answers[account] = { customerId: data.customerId, orders: data.orders.map((o) => o.id).sort() };
      }
      return answers;
    };
    const before = await lookups();
    const held = await customersIn(3);
    expect(held).toBeGreaterThan(3);

    // A budget of 1 call: a page's first move always goes (whatever it costs), and every later one waits.
    const cut = await drainShard3(1);
    expect(cut.page.moves).toBe(1);
    expect(cut.page.busy).toBeGreaterThan(0);
    expect(cut.page.moved + cut.page.busy + cut.page.tooLarge).toBe(held);
    // Its calls: the copy, the finish and the directory calls, at most one per shard (3 + 4 priced).
    expect(cut.calls.length).toBeGreaterThan(0);
    expect(cut.calls.length).toBeLessThanOrEqual(7);
    expect(await customersIn(3)).toBe(held - cut.page.moved);

    // With the usual budget the next page moves the rest.
    const rest = await drainShard3();
    expect(rest.page.busy).toBe(0);
    expect(rest.page.moved).toBe(held - cut.page.moved);
    expect(await customersIn(3)).toBe(0);
    expect(await lookups()).toEqual(before);
  });

  it("prices a move at its copy, finish and one call per shard homing an entry", () => {
    const region = (keys: string[], customers: string[], sources: string[]) => ({ keys, customers, sources });
    // One shard: every entry homed in it.
    expect(moveCalls([region(["account:a"], ["c1"], ["order:o1", "order:o2"])], 1)).toBe(4);
    // Many shards: at most one call per entry.
    const many = moveCalls([region(["account:a", "loyalty:b"], ["c1"], ["order:o1", "order:o2", "identify:x"])], 1000);
    expect(many).toBeGreaterThan(4);
    expect(many).toBeLessThanOrEqual(3 + 5);
    // A region without identity keys is found by its sources: each identify call has an entry too.
    expect(moveCalls([region([], ["c1"], ["identify:x", "identify:y"])], 1000)).toBeGreaterThan(4);
  });
});
