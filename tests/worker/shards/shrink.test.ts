// Shrinking the customer shards (`POST /v1/admin/shards/reshard` with a smaller `to`, docs/scaling.md,
// resharding), the part a deployment runs under its old count: the drain moves every customer, guest
// and identify call out of the shards removed, the walk writes each of their directory entries at its
// home among the new count (marked as the walk's), and every shard is prepared; meanwhile every answer
// stays the same. The switch and the finish are in tests/cli/reshard.test.ts (they need the deployment
// restarted with another SHARD_COUNT).
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { homeShard } from "../../../worker/core/shards/placement.ts";
import type { CustomerShard } from "../../../worker/shards/customer-shard.ts";
import type { ReshardState } from "../../../worker/shards/reshard.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix, verified } from "../../fixtures/builders.ts";
import { errorOf } from "../../fixtures/errors.ts";

const api = client(SELF);
const reshard = (body: unknown) => api.call("POST", "/v1/admin/shards/reshard", body, adminKey);

/** What the reshard route answers: the record, the count the deployment runs, and whether it is done. */
type ReshardView = ReshardState & { running: number; done: boolean };

/** Accounts joined across channels (merges, moves), store-only cards and guests with a typed email alone. */
function history(p: string) {
  return Array.from({ length: 40 }, (_, i) =>
    anOrder({
      id: `${p}-${i}`,
      channel: i % 2 ? "store" : "web",
      identifiers:
        i % 8 === 7
          ? { email: `guest-${p}-${i}@x.test` }
          : i % 8 === 5
            ? { loyalty: `${p}-card-only-${i}` }
            : {
                account: `${p}-acct-${i % 12}`,
                loyalty: `${p}-card-${i % 14}`,
                email: verified(`${p}-${i % 9}@x.test`),
              },
    }),
  );
}

/** Rows of `sql` in shard `index`. */
const rowsIn = <T extends Record<string, SqlStorageValue>>(index: number, query: string) =>
  runInDurableObject(shardStub(env, index), (_instance, state) => state.storage.sql.exec<T>(query).toArray());

/** What shard `index` holds of customer data: customers, orders and identify calls. */
async function held(index: number) {
  const [row] = await rowsIn<{ customers: number; orders: number; calls: number }>(
    index,
    `SELECT (SELECT count(*) FROM customers) AS customers, (SELECT count(*) FROM orders) AS orders,
      (SELECT count(DISTINCT source) FROM identity_observations WHERE source LIKE 'identify:%') AS calls`,
  );
  return row;
}

describe("a reshard from 4 to 2 shards, under the old count", () => {
  it("moves everything out of shards 2 and 3, copies their entries to their homes among 2, and answers the same", async () => {
    const p = uniquePrefix("shrink");
    expect((await api.postOrders(history(p))).status).toBe(200);
    // Identify calls with no verified identifier: placed by their source alone, in no customer's region
    // (sixteen, so some land in shards 2 and 3 but once in 65,536 histories).
    for (let i = 0; i < 16; i++)
      expect((await api.identify({ email: `${p}-seen-${i}@x.test`, device: `${p}-dev-${i}` })).status).toBe(200);
    const lookups = async () => {
      const answers: Record<string, unknown> = {};
      for (const [kind, value] of [
        ...Array.from({ length: 12 }, (_, i) => ["account", `${p}-acct-${i}`]),
        ...[5, 13, 21, 29, 37].map((i) => ["loyalty", `${p}-card-only-${i}`]),
      ] as [string, string][]) {
        const response = await api.lookup(kind, value);
        expect(response.status, `${kind} ${value}: ${await response.clone().text()}`).toBe(200);
        const { data } = (await response.json()) as { data: { customerId: string; orders: { id: string }[] } };
        answers[`${kind}:${value}`] = { customerId: data.customerId, orders: data.orders.map((o) => o.id).sort() };
      }
      return answers;
    };
    const before = await lookups();
    const heldBefore = await Promise.all([2, 3].map(held));
    expect(heldBefore.reduce((n, row) => n + (row?.customers ?? 0), 0)).toBeGreaterThan(1);
    expect(heldBefore.reduce((n, row) => n + (row?.calls ?? 0), 0)).toBeGreaterThan(0);

    // The first step drains; the answers stay the same while customers move.
    const first = await reshard({ to: 2, limit: 5 });
    expect(first.status, await first.clone().text()).toBe(200);
    expect(((await first.json()) as { data: ReshardView }).data).toMatchObject({ from: 4, to: 2, phase: "draining" });
    let view: ReshardView | null = null;
    const phases = new Set<string>();
    for (let i = 0; i < 200 && view?.phase !== "prepared"; i++) {
      const step = await reshard({ to: 2, limit: 5 });
      expect(step.status, await step.clone().text()).toBe(200);
      view = ((await step.json()) as { data: ReshardView }).data;
      phases.add(view.phase);
    }
    expect([...phases]).toEqual(expect.arrayContaining(["draining", "copying", "prepared"]));
    expect(view).toMatchObject({ from: 4, to: 2, phase: "prepared", done: false, cursor: "" });
    expect(view?.drained).toBeGreaterThanOrEqual(heldBefore.reduce((n, row) => n + (row?.customers ?? 0), 0));
    expect(view?.drainMoves).toBeGreaterThan(0);
    expect(view?.drainPasses).toBe(1);

    // Shards 2 and 3 hold no customer data; every entry they keep that places its key in a shard that
    // stays is copied, marked, to its key's home among 2. One placing it in a removed shard (an
    // identifier seen only unverified with a guest who moved) places nothing: neither copied nor kept.
    for (const index of [2, 3]) expect(await held(index)).toEqual({ customers: 0, orders: 0, calls: 0 });
    // The status's spread is of the two shards that stay, not of all four (two of them emptied).
    const overview = (
      (await (await api.call("GET", "/v1/admin/shards", undefined, adminKey)).json()) as {
        data: { spread: number; spreadOver: number; shards: { shard: number; customers: number }[] };
      }
    ).data;
    const staying = overview.shards.filter((part) => part.shard < 2).map((part) => part.customers);
    expect(overview.spreadOver).toBe(2);
    expect(overview.spread).toBeCloseTo(Math.max(...staying) / ((staying[0]! + staying[1]!) / 2), 10);
    const removedEntries = new Map<string, number>();
    for (const index of [2, 3])
      for (const row of await rowsIn<{ key: string; shard: number }>(index, "SELECT key, shard FROM shard_directory"))
        if (row.shard < 2) removedEntries.set(row.key, row.shard);
    expect(removedEntries.size).toBeGreaterThan(10);
    const copied = new Map<string, number>();
    for (const index of [0, 1])
      for (const row of await rowsIn<{ key: string; shard: number }>(
        index,
        "SELECT key, shard FROM shard_directory WHERE reshard_walk = 1",
      )) {
        expect(homeShard(row.key, 2), `${row.key} copied to shard ${index}`).toBe(index);
        copied.set(row.key, row.shard);
      }
    expect(copied).toEqual(removedEntries);
    for (const index of [0, 1])
      expect(await rowsIn(index, "SELECT key FROM shard_directory WHERE shard >= 2")).toEqual([]);

    // Prepared: reads as before, a resend finds its orders, writes wait for the switch.
    expect(await lookups()).toEqual(before);
    const refused = await errorOf(
      await api.postOrders([anOrder({ id: `${p}-refused`, identifiers: { account: `${p}-acct-0` } })]),
      503,
    );
    expect(refused.message).toMatch(/a reshard from 4 to 2 customer shards is prepared.*SHARD_COUNT = 2/);
    expect((await errorOf(await reshard({ to: 3 }), 409)).message).toMatch(
      /A reshard from 4 to 2 shards is under way \(prepared\): set SHARD_COUNT to 2/,
    );
  });
});

describe("a shard a shrink removed, emptied after the switch", () => {
  it("is refused while it holds customer data, then keeps nothing, and a second run finds it empty", async () => {
    // The shards that stay take writes, as after the switch (an erasure's scrub drops directory entries there).
    await forgetShrink();
    // Shard 6 is past the pool's count of 4, as a removed shard is after the switch to 4.
    const shard = shardStub(env, 6);
    const at = new Date().toISOString();
    await runInDurableObject(shard, (_instance, state) => {
      state.storage.sql.exec("INSERT INTO shard_directory (key, shard, updated_at) VALUES ('email:x', 1, ?)", at);
      state.storage.sql.exec("INSERT INTO suppressions (key, kind, created_at) VALUES ('email:x', 'email', ?)", at);
      state.storage.sql.exec(
        "INSERT INTO customers (id, created_at, updated_at) VALUES ('c_retire_me_0000000000', ?, ?)",
        at,
        at,
      );
    });
    // Called on the object itself: a refusal through the stub would also surface as an unhandled rejection.
    await runInDurableObject(shard, async (instance: CustomerShard, state) => {
      await expect(instance.retire(4)).rejects.toThrow(/shard 6 still holds customer data .*"customers still held":1/);
      state.storage.sql.exec("DELETE FROM customers");
      // An erasure this shard ran whose scrub of the others fails (a plan no shard can read): refused.
      const scrub = (plan: unknown, due: string) =>
        state.storage.sql.exec(
          "INSERT OR REPLACE INTO erasure_scrubs (customer_id, plan, due_at, attempts, created_at) VALUES ('c_erased', ?, ?, 0, ?)",
          JSON.stringify(plan),
          due,
          at,
        );
      const plan = { customerIds: ["c_erased"], orderIds: [], identifiers: [], sources: [], shard: 6 };
      scrub({ ...plan, identifiers: null }, at);
      await expect(instance.retire(4)).rejects.toThrow(
        /shard 6 has 1 erasure scrub\(s\) of the other shards that fail/,
      );
      // GET /v1/admin/shards shows it failing, with the passes it failed.
      expect((await instance.status()).erasureScrubs).toMatchObject({ pending: 1, failing: 1 });
      expect((await instance.status()).erasureScrubs.mostAttempts).toBeGreaterThan(0);
      // One that can run is run now, though not yet due (else it would still be there), and the shard retires.
      scrub(plan, new Date(Date.now() + 600_000).toISOString());
    });
    expect(await shard.retire(4)).toBe(1);
    const left = await runInDurableObject(shard, (_instance, state) => ({
      directory: state.storage.sql.exec("SELECT count(*) AS n FROM shard_directory").one().n,
      suppressions: state.storage.sql.exec("SELECT count(*) AS n FROM suppressions").one().n,
    }));
    expect(left).toEqual({ directory: 0, suppressions: 0 });
    expect(await shard.retire(4)).toBe(0);
    // A shard that stays is never emptied.
    await runInDurableObject(shardStub(env, 1), async (instance: CustomerShard) => {
      await expect(instance.retire(4)).rejects.toThrow(/retire in shard 1, which 4 shards keep/);
    });
  });
});

/** Undoes the shrink an earlier test prepared (the shards' storage outlives a test): writes are taken again. */
async function forgetShrink() {
  for (let index = 0; index < 4; index++)
    await runInDurableObject(shardStub(env, index), async (instance, state) => {
      state.storage.sql.exec("DELETE FROM shard_directory WHERE reshard_walk IS NOT NULL");
      await state.storage.delete(["reshardTo", "reshardWalkCounts"]);
      (instance as unknown as { reshardMark?: unknown }).reshardMark = undefined;
    });
  await env.DB.prepare("DELETE FROM shard_reshard").run();
}

describe("orders while a shrink drains", () => {
  it("are taken, and the drain's next pass moves what they bring into the shards removed; nothing is lost or stored twice", async () => {
    await forgetShrink();
    const p = uniquePrefix("during");
    const orders = history(p);
    expect((await api.postOrders(orders)).status).toBe(200);
    const orderIdsOf = async (account: string) => {
      const response = await api.lookup("account", account);
      expect(response.status, await response.clone().text()).toBe(200);
      return ((await response.json()) as { data: { orders: { id: string }[] } }).data.orders.map((o) => o.id).sort();
    };

    // One step of the drain, then new orders: for existing accounts and for shoppers never seen, some
    // of whom are placed in the shards being removed (their keys' homes among 4).
    expect((await reshard({ to: 2, limit: 5 })).status).toBe(200);
    const late = [
      ...Array.from({ length: 12 }, (_, i) =>
        anOrder({ id: `${p}-late-${i}`, identifiers: { account: `${p}-acct-${i}` } }),
      ),
      ...Array.from({ length: 16 }, (_, i) =>
        anOrder({ id: `${p}-new-${i}`, identifiers: { account: `${p}-new-${i}` } }),
      ),
    ];
    const taken = await api.postOrders(late);
    expect(taken.status, await taken.clone().text()).toBe(200);
    expect(((await taken.json()) as { data: { accepted: number } }).data.accepted).toBe(late.length);

    let view: ReshardView | null = null;
    for (let i = 0; i < 300 && view?.phase !== "prepared"; i++) {
      const step = await reshard({ to: 2, limit: 5 });
      if (step.status === 409) continue; // the walk saw the writes: it drains again
      expect(step.status, await step.clone().text()).toBe(200);
      view = ((await step.json()) as { data: ReshardView }).data;
    }
    expect(view?.phase).toBe("prepared");
    for (const index of [2, 3]) expect(await held(index)).toEqual({ customers: 0, orders: 0, calls: 0 });
    // Every order once, with its customer; a resend of all of them is all duplicates.
    for (let i = 0; i < 12; i++) expect(await orderIdsOf(`${p}-acct-${i}`)).toContain(`${p}-late-${i}`);
    for (let i = 0; i < 16; i++) expect(await orderIdsOf(`${p}-new-${i}`)).toEqual([`${p}-new-${i}`]);
    await forgetShrink();
    const resent = await api.postOrders([...orders, ...late]);
    expect(resent.status, await resent.clone().text()).toBe(200);
    expect((await resent.json()) as { data: { accepted: number; duplicates: number } }).toMatchObject({
      data: { accepted: 0, duplicates: orders.length + late.length },
    });
  });
});

describe("a drain that cannot move a region", () => {
  it("answers 409 with what is still held once a pass moves nothing, and goes on when the region is free", async () => {
    await forgetShrink();
    const p = uniquePrefix("held");
    // Find an account whose region sits in shard 3, which a shrink to 2 removes.
    let account: string | null = null;
    for (let i = 0; i < 40 && !account; i++) {
      const candidate = `${p}-solo-${i}`;
      expect((await api.postOrders([anOrder({ id: `${p}-o-${i}`, identifiers: { account: candidate } })])).status).toBe(
        200,
      );
      const { data } = (await (await api.lookup("account", candidate)).json()) as { data: { customerId: string } };
      const inShard3 = await rowsIn<{ id: string }>(3, `SELECT id FROM customers WHERE id = '${data.customerId}'`);
      if (inShard3.length > 0) account = candidate;
    }
    if (!account) throw new Error("no account placed in shard 3");
    // A fence on every account key of shard 3 (as an unfinished move holds them): their regions cannot move.
    const at = new Date().toISOString();
    await runInDurableObject(shardStub(env, 3), (_instance, state) => {
      state.storage.sql.exec(
        "INSERT INTO shard_fences (key, move_id, created_at) SELECT key, 'held-by-test', ? FROM identities WHERE kind = 'account'",
        at,
      );
    });
    let refusal = "";
    for (let i = 0; i < 100 && !refusal; i++) {
      const step = await reshard({ to: 2, limit: 50 });
      if (step.status === 409) refusal = (await errorOf(step, 409)).message;
      else expect(((await step.json()) as { data: ReshardView }).data.phase).toBe("draining");
    }
    expect(refusal).toMatch(
      /The shards 2 to 3, which the reshard removes, still hold customers still held: \d+.* and the last pass over them moved nothing/,
    );
    expect((await held(3))?.customers).toBeGreaterThan(0);

    // The fences go (the move they stood for finished): the next passes drain the shard.
    await runInDurableObject(shardStub(env, 3), (_instance, state) => {
      state.storage.sql.exec("DELETE FROM shard_fences WHERE move_id = 'held-by-test'");
    });
    let view: ReshardView | null = null;
    for (let i = 0; i < 100 && view?.phase !== "prepared"; i++) {
      const step = await reshard({ to: 2, limit: 50 });
      expect(step.status, await step.clone().text()).toBe(200);
      view = ((await step.json()) as { data: ReshardView }).data;
    }
    expect(view?.phase).toBe("prepared");
    // The pass that moved nothing and the one that drained the shard, at least.
    expect(view?.drainPasses).toBeGreaterThanOrEqual(2);
    expect(await held(3)).toEqual({ customers: 0, orders: 0, calls: 0 });
    expect((await api.lookup("account", account)).status).toBe(200);
  });
});
