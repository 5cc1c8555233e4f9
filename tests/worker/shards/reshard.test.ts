// Growing the customer shards (`POST /v1/admin/shards/reshard`, docs/scaling.md, resharding), the part a
// deployment runs under its old count: the walk writes, at its home among the new count, the entry of
// every key whose home moves to a new shard; a write during the walk starts it over; once prepared, the
// old shards serve as before and take no writes. The switch to the new count and the cleaning after
// it are in tests/cli/reshard.test.ts (they need the deployment restarted with another SHARD_COUNT).
import { createExecutionContext, env, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../worker/app.ts";
import { homeShard } from "../../../worker/core/shards/placement.ts";
import { importResponseSchema } from "../../../worker/imports/imports.schemas.ts";
import { importMaxRetries } from "../../../worker/imports/retries.ts";
import type { ReshardState } from "../../../worker/shards/reshard.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix, verified } from "../../fixtures/builders.ts";
import { errorOf } from "../../fixtures/errors.ts";
import { deliver, recordedBatch } from "../../fixtures/import-queue.ts";

const api = client(SELF);
const reshard = (body: unknown, key: string | null = adminKey) =>
  api.call("POST", "/v1/admin/shards/reshard", body, key);

/** What the reshard route answers: the record, the count the deployment runs, and whether it is done. */
type ReshardView = ReshardState & { running: number; done: boolean };

/** Shoppers whose orders join identifiers across shards (moves), and some with no account. */
function history(p: string) {
  return Array.from({ length: 12 }, (_, i) =>
    anOrder({
      id: `${p}-${i}`,
      channel: i % 2 ? "store" : "web",
      identifiers:
        i % 4 === 3
          ? { email: `guest-${p}-${i}@x.test` }
          : {
              account: `${p}-acct-${i % 6}`,
              loyalty: `${p}-card-${i}`,
              email: verified(`${p}-${i % 5}@x.test`),
            },
    }),
  );
}

/** Every key of the old shards whose home among `to` is a new shard, with the shard its entry must place it in. */
async function expectedEntries(from: number, to: number): Promise<Map<string, number>> {
  const expected = new Map<string, number>();
  for (let shard = 0; shard < from; shard++) {
    const { entries, held } = await runInDurableObject(shardStub(env, shard), (_instance, state) => ({
      entries: state.storage.sql
        .exec<{ key: string; shard: number }>("SELECT key, shard FROM shard_directory")
        .toArray(),
      held: state.storage.sql
        .exec<{ key: string }>(
          `SELECT 'customer:' || id AS key FROM customers UNION ALL SELECT 'order:' || id FROM orders
           UNION SELECT source FROM identity_observations WHERE source LIKE 'identify:%'`,
        )
        .toArray(),
    }));
    // A customer, order or identify call held away from its home has an entry there (in `entries`).
    const keys: [string, number][] = [
      ...entries.map((row): [string, number] => [row.key, row.shard]),
      ...held.filter((row) => homeShard(row.key, from) === shard).map((row): [string, number] => [row.key, shard]),
    ];
    for (const [key, placed] of keys) if (homeShard(key, to) >= from) expected.set(key, placed);
  }
  return expected;
}

async function newShardEntries(from: number, to: number): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  for (let shard = from; shard < to; shard++) {
    const rows = await runInDurableObject(shardStub(env, shard), (_instance, state) =>
      state.storage.sql.exec<{ key: string; shard: number }>("SELECT key, shard FROM shard_directory").toArray(),
    );
    for (const row of rows) {
      expect(homeShard(row.key, to), `${row.key} kept in shard ${shard}`).toBe(shard);
      found.set(row.key, row.shard);
    }
  }
  return found;
}

describe("the reshard route", () => {
  it("answers 401 without the admin key, 400 for a bad body, 404 before a reshard, 409 for the count it runs", async () => {
    expect((await reshard({ to: 5 }, null)).status).toBe(401);
    expect((await reshard({ to: 5 }, "test-api-key")).status).toBe(401);
    expect((await api.call("GET", "/v1/admin/shards/reshard", undefined, null)).status).toBe(401);
    for (const body of [{}, { to: 0 }, { to: 2.5 }, { to: "5" }, { to: 5, limit: 0 }, { to: 5, extra: true }])
      await errorOf(await reshard(body), 400);
    expect((await api.call("GET", "/v1/admin/shards/reshard", undefined, adminKey)).status).toBe(404);
    const error = await errorOf(await reshard({ to: 4 }), 409);
    expect(error.message).toMatch(/runs 4 customer shards already: "to" must be another count/);
  });

  it("answers 409 on a deployment still on its one D1 database", async () => {
    const app = createApp();
    const context = createExecutionContext();
    const response = await app.fetch(
      new Request("http://patron.test/v1/admin/shards/reshard", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${adminKey}` },
        body: JSON.stringify({ to: 4 }),
      }),
      { ...env, SHARD_COUNT: "0" },
      context,
    );
    await waitOnExecutionContext(context);
    expect((await errorOf(response, 409)).message).toMatch(/one D1 database .* patron shards migrate/);
  });
});

describe("a reshard from 4 to 7 shards, under the old count", () => {
  it("writes every moved key's entry at its new home, walks again after a write, then takes no writes", async () => {
    const p = uniquePrefix("grow");
    const seeded = await api.postOrders(history(p));
    expect(seeded.status, await seeded.clone().text()).toBe(200);
    // Identify calls with no verified identifier: each is placed by its own key (`identify:<hash>`).
    for (let i = 0; i < 8; i++)
      expect((await api.identify({ email: `${p}-seen-${i}@x.test`, device: `${p}-dev-${i}` })).status).toBe(200);
    const lookups = async () =>
      Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const response = await api.lookup("account", `${p}-acct-${i}`);
          expect(response.status, await response.clone().text()).toBe(200);
          return ((await response.json()) as { data: { customerId: string; orders: { id: string }[] } }).data;
        }),
      );
    const before = await lookups();

    // A first step, then an order while the walk is under way: the walk's end finds it and starts over.
    let step = await reshard({ to: 7, limit: 3 });
    expect(step.status, await step.clone().text()).toBe(200);
    expect(((await step.json()) as { data: ReshardView }).data).toMatchObject({ from: 4, to: 7, phase: "copying" });
    expect((await api.postOrders([anOrder({ id: `${p}-late`, identifiers: { account: `${p}-late` } })])).status).toBe(
      200,
    );
    let written: string | null = null;
    let view: ReshardView | null = null;
    for (let i = 0; i < 500 && view?.phase !== "prepared"; i++) {
      step = await reshard({ to: 7, limit: 3 });
      if (step.status === 409) {
        written = (await errorOf(step, 409)).message;
        continue;
      }
      expect(step.status, await step.clone().text()).toBe(200);
      view = ((await step.json()) as { data: ReshardView }).data;
    }
    expect(written).toMatch(
      /stored orders: 1, customers: 1, directory entries: \d+, .*orders rows added or removed: 1.* after the walk began/,
    );
    // The walk done, no key is kept as its cursor (an erasure would leave it named there).
    expect(view).toMatchObject({ from: 4, to: 7, phase: "prepared", running: 4, done: false, cursor: "" });

    const expected = await expectedEntries(4, 7);
    expect(expected.size).toBeGreaterThan(10);
    expect([...expected.keys()].some((key) => key.startsWith("identify:"))).toBe(true);
    expect(await newShardEntries(4, 7)).toEqual(expected);
    expect(view?.written).toBe(expected.size);
    expect(view?.scanned).toBe(view?.total);
    // The new shards record no count yet: they take the new one at the switch.
    for (let shard = 4; shard < 7; shard++)
      expect(await runInDurableObject(shardStub(env, shard), (_i, state) => state.storage.get("shardCount"))).toBe(
        undefined,
      );

    // Prepared: reads as before, no writes, the same answer to a rerun, another count refused.
    expect(await lookups()).toEqual(before);
    const refused = await errorOf(
      await api.postOrders([anOrder({ id: `${p}-refused`, identifiers: { account: `${p}-acct-0` } })]),
      503,
    );
    expect(refused.code).toBe("unavailable");
    expect(refused.message).toMatch(/a reshard from 4 to 7 customer shards is prepared.*SHARD_COUNT = 7/);
    // A Worker already on 7, calling these shards still on 4 (the rollout of the switch): the count's
    // refusal, for the seconds of a rollout, not the reshard's.
    const context = createExecutionContext();
    const early = await createApp().fetch(
      new Request("http://patron.test/v1/orders", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer test-api-key" },
        body: JSON.stringify({ orders: [anOrder({ id: `${p}-early`, identifiers: { account: `${p}-acct-0` } })] }),
      }),
      { ...env, SHARD_COUNT: "7" },
      context,
    );
    await waitOnExecutionContext(context);
    expect(early.headers.get("Retry-After")).toBe("30");
    expect((await errorOf(early, 503)).message).toMatch(
      /placed its keys among 7 customer shards, but the shards serve 4/,
    );
    const again = await reshard({ to: 7 });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { data: ReshardView }).data).toMatchObject({
      phase: "prepared",
      written: view?.written,
    });
    expect((await errorOf(await reshard({ to: 8 }), 409)).message).toMatch(
      /A reshard from 4 to 7 shards is under way \(prepared\): set SHARD_COUNT to 7 and deploy \(or restart npm start\), then finish it with patron shards reshard --to 7\./,
    );
    const status = await api.call("GET", "/v1/admin/shards/reshard", undefined, adminKey);
    expect(((await status.json()) as { data: ReshardView }).data.phase).toBe("prepared");
  });
});

/** Steps the reshard from 4 to 7 until the shards are prepared, every step answering 200. */
async function stepUntilPrepared(): Promise<ReshardView> {
  let view: ReshardView | null = null;
  for (let i = 0; i < 50 && view?.phase !== "prepared"; i++) {
    const step = await reshard({ to: 7, limit: 5000 });
    expect(step.status, await step.clone().text()).toBe(200);
    view = ((await step.json()) as { data: ReshardView }).data;
  }
  expect(view?.phase).toBe("prepared");
  return view as ReshardView;
}

/** Undoes the reshard an earlier test prepared (the shards' storage outlives a test): a fresh start. */
async function forgetReshard(from: number, to: number) {
  for (let shard = 0; shard < to; shard++)
    await runInDurableObject(shardStub(env, shard), async (instance, state) => {
      if (shard >= from) state.storage.sql.exec("DELETE FROM shard_directory");
      await state.storage.delete(["reshardTo", "reshardWalkCounts"]);
      (instance as unknown as { reshardMark?: unknown }).reshardMark = undefined;
    });
  await env.DB.prepare("DELETE FROM shard_reshard").run();
}

describe("an erasure while the walk is under way", () => {
  it("leaves none of the erased customer's entries in the new shards once prepared", async () => {
    await forgetReshard(4, 7);
    // A customer with an order whose home moves to a new shard: the walk copies its entry there. About
    // one history in 150 has none (each order's home moves with chance 3/7): another history then.
    let erased: { customerId: string; orders: { id: string }[] } | undefined;
    for (let attempt = 0; attempt < 5 && !erased; attempt++) {
      const p = uniquePrefix("erase");
      expect((await api.postOrders(history(p))).status).toBe(200);
      for (let i = 0; i < 6 && !erased; i++) {
        const { data } = (await (await api.lookup("account", `${p}-acct-${i}`)).json()) as {
          data: { customerId: string; orders: { id: string }[] };
        };
        if (data.orders.some((order) => homeShard(`order:${order.id}`, 7) >= 4)) erased = data;
      }
    }
    if (!erased) throw new Error("no customer with an order homed in a new shard in five histories");

    // Every part of every old shard walked but the last (4 shards, 4 parts), then the erasure: the walk's end starts it over.
    for (let i = 0; i < 15; i++) expect((await reshard({ to: 7, limit: 5000 })).status).toBe(200);
    const rehomedOrders = erased.orders.map((order) => `order:${order.id}`).filter((key) => homeShard(key, 7) >= 4);
    expect([...(await newShardEntries(4, 7)).keys()]).toEqual(expect.arrayContaining(rehomedOrders));
    expect((await api.call("DELETE", `/v1/customers/${erased.customerId}`, undefined, adminKey)).status).toBe(200);
    let view: ReshardView | null = null;
    let restarted = false;
    for (let i = 0; i < 50 && view?.phase !== "prepared"; i++) {
      const step = await reshard({ to: 7, limit: 5000 });
      if (step.status === 409) {
        expect((await errorOf(step, 409)).message).toMatch(
          /stored .*suppressed keys \(erasures\): \d+.* after the walk began/,
        );
        restarted = true;
        continue;
      }
      view = ((await step.json()) as { data: ReshardView }).data;
    }
    expect(restarted).toBe(true);
    expect(view?.phase).toBe("prepared");

    // The new shards keep only entries of keys the old shards still place: none of the erased orders'.
    const kept = await newShardEntries(4, 7);
    expect(rehomedOrders.filter((key) => kept.has(key))).toEqual([]);
    expect(kept).toEqual(await expectedEntries(4, 7));
  });
});

describe("a walk whose shards are not settled", () => {
  it("is not stopped by a new shard that took the new count too early, and is not prepared over a move left unfinished", async () => {
    await forgetReshard(4, 7);
    // The new count was set before the reshard, and a call reached new shard 5, which recorded it.
    await runInDurableObject(shardStub(env, 5), async (_instance, state) => {
      await state.storage.put("shardCount", 7);
    });
    await runInDurableObject(shardStub(env, 5), (_instance, state) => state.abort("start again")).catch(() => {});
    const p = uniquePrefix("unsettled");
    expect((await api.postOrders(history(p))).status).toBe(200);
    expect((await reshard({ to: 7, limit: 5000 })).status).toBe(200);

    // A move recorded in shard 2 and not finished when the walk ends: not prepared, walked again.
    const move = [
      "INSERT INTO shard_moves (id, direction, peer, keys, customers, sources, status, created_at, updated_at) VALUES (?, 'in', 1, '[]', '[]', '[]', 'copying', ?, ?)",
    ];
    const at = new Date().toISOString();
    await runInDurableObject(shardStub(env, 2), (_instance, state) => {
      state.storage.sql.exec(move[0] as string, `${p}-move`, at, at);
    });
    let refusal = "";
    for (let i = 0; i < 20 && !refusal; i++) {
      const step = await reshard({ to: 7, limit: 5000 });
      if (step.status === 409) refusal = (await errorOf(step, 409)).message;
      else expect(((await step.json()) as { data: ReshardView }).data.phase).toBe("copying");
    }
    expect(refusal).toMatch(/moves not finished: 1/);
    await runInDurableObject(shardStub(env, 2), (_instance, state) => {
      state.storage.sql.exec("DELETE FROM shard_moves WHERE id = ?", `${p}-move`);
    });
    await stepUntilPrepared();
    expect(await newShardEntries(4, 7)).toEqual(await expectedEntries(4, 7));
  });
});

describe("an import batch while the shards are prepared", () => {
  it("is retried by the queue, recorded failed on its last delivery, and ingested once writes are taken again", async () => {
    await forgetReshard(4, 7);
    const p = uniquePrefix("import");
    expect((await api.postOrders(history(p))).status).toBe(200);
    await stepUntilPrepared();

    const created = await api.call("POST", "/v1/imports", { source: "during a reshard" });
    expect(created.status, await created.clone().text()).toBe(201);
    const importId = importResponseSchema.parse(await created.json()).data.id;
    const sent = [
      anOrder({ id: `${p}-imported`, identifiers: { account: `${p}-acct-0` } }),
      anOrder({ id: `${p}-imported-new`, identifiers: { account: `${p}-acct-new` } }),
    ];
    const message = await recordedBatch(importId, 1, sent);
    const orderIds = async () => {
      const response = await api.lookup("account", `${p}-acct-0`);
      return ((await response.json()) as { data: { orders: { id: string }[] } }).data.orders.map((order) => order.id);
    };
    const progress = async () =>
      importResponseSchema.parse(await (await api.call("GET", `/v1/imports/${importId}`)).json()).data;

    // Refused by the prepared shards: delivered again later, nothing written.
    const first = await deliver([{ body: message }]);
    expect(first.retryMessages).toHaveLength(1);
    expect(first.explicitAcks).toEqual([]);
    expect(await orderIds()).not.toContain(`${p}-imported`);
    expect((await api.lookup("account", `${p}-acct-new`)).status).toBe(404);

    // The last delivery records the batch failed, with the reason (patron import resumes it later).
    const last = await deliver([{ body: message, attempts: importMaxRetries + 1 }]);
    expect(last.explicitAcks).toHaveLength(1);
    const failed = await progress();
    expect(failed.batches).toMatchObject({ failed: 1, done: 0 });
    expect(failed.failedBatches[0]?.error).toMatch(/a reshard from 4 to 7 customer shards is prepared/);

    // The reshard no longer holds writes: the batch, delivered again, is ingested once.
    await forgetReshard(4, 7);
    const resumed = await deliver([{ body: message }]);
    expect(resumed.explicitAcks).toHaveLength(1);
    expect((await progress()).batches).toMatchObject({ failed: 0, done: 1 });
    expect(await orderIds()).toContain(`${p}-imported`);
    expect((await api.lookup("account", `${p}-acct-new`)).status).toBe(200);
  });
});
