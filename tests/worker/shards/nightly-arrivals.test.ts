// A customer a move brings into a shard while a nightly run scores can come in behind the run: after
// the shard's pages passed its id, or after its source's page scored it between the move's copy and
// its delete (which takes that score away). The run scores the customers moved into each shard since
// its first page there once every shard's pages are done (worker/shards/nightly-shard.ts), so they get
// the score a customer with the same history that stayed put gets.
import { env, runInDurableObject } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import * as schema from "../../../db/schema.ts";
import type { PopulationModels } from "../../../worker/core/profile/population-models.ts";
import type { PopulationStats } from "../../../worker/core/ranking/population.ts";
import type { Db } from "../../../worker/env.ts";
import { retailerTimeZone } from "../../../worker/http/config.ts";
import type { NightlyStore, PageRequest } from "../../../worker/jobs/nightly.store.ts";
import { modelsById } from "../../../worker/models/models.repo.ts";
import type { CustomerShard } from "../../../worker/shards/customer-shard.ts";
import { type MoveContext, recordMoveOut, resumeMove, runStep } from "../../../worker/shards/moves.ts";
import { shardedNightlyStore } from "../../../worker/shards/nightly.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { anOrder } from "../../fixtures/builders.ts";
import { seedRegion, shardRows } from "../../fixtures/shard-seed.ts";

const db = drizzle(env.DB, { schema }) as Db;
const day = 86_400_000;
const shards = 4;
const pageSize = 3;
const asOf = new Date(Date.UTC(2026, 5, 1));
/** Long enough after the last orders that every customer's stage changes. */
const later = new Date(asOf.getTime() + 150 * day);

/** Customer `c` buys regularly until just before asOf; customers c and c + 8 have the same history. */
function ordersOf(c: number) {
  const shape = c % 8;
  const interval = 10 + shape * 3;
  const count = 4 + (shape % 3);
  return Array.from({ length: count }, (_, k) =>
    anOrder({
      id: `arrivals-${c}-${k}`,
      channel: k % 2 ? "store" : "web",
      placedAt: new Date(asOf.getTime() - (3 + (count - 1 - k) * interval) * day).toISOString(),
      identifiers: { account: `arrivals-${c}` },
      lines: [{ productId: `p-${shape}`, categoryId: `cat-${shape % 3}`, quantity: 1, unitPrice: 12 + shape * 5 }],
    }),
  );
}

type Row = Record<string, string | number | null>;

const scoreRow = async (shard: number, customerId: string) =>
  (await shardRows<Row>(shard, "SELECT * FROM customer_scores WHERE customer_id = ?", customerId))[0];

/** A score without its customer's id: what two customers with the same history share. */
const withoutId = (row: Row | undefined) => {
  const { customer_id: _customerId, ...rest } = row ?? {};
  return rest;
};

/** The run's request for a page, with the models fitted at `at`. */
async function requestFor(store: NightlyStore, runId: string, at: Date): Promise<Omit<PageRequest, "cursor">> {
  const fit = await store.fitCustomerModels(at);
  const population = await store.fitPopulation(at);
  return {
    models: await modelsById<PopulationModels>(db, fit.id),
    population: await modelsById<PopulationStats>(db, population.id),
    pageSize,
    runId,
    now: at,
    timeZone: retailerTimeZone(env.RETAILER_TIME_ZONE),
    scoredBefore: 0,
  };
}

/** Every page of `partition`, as the Workflow runs them. */
async function scorePages(store: NightlyStore, partition: number, request: Omit<PageRequest, "cursor">) {
  let cursor = "";
  for (;;) {
    const page = await store.scorePage(partition, { ...request, cursor });
    if (!page.nextCursor) return;
    cursor = page.nextCursor;
  }
}

/** Every page of `partition`'s arrivals: how many customers they read, and the transitions they wrote. */
async function scoreArrivals(store: NightlyStore, partition: number, request: Omit<PageRequest, "cursor">) {
  const arrivals = store.arrivals;
  if (!arrivals) throw new Error("the sharded store scores no arrivals");
  let cursor = "";
  let read = 0;
  let transitions = 0;
  for (;;) {
    const page = await arrivals.scorePage(partition, { ...request, cursor });
    read += page.arrivals;
    transitions += page.transitions;
    if (!page.nextCursor) return { read, transitions };
    cursor = page.nextCursor;
  }
}

describe("customers a move brings into a shard during a nightly run", () => {
  const store = shardedNightlyStore(env, db);
  /** Customer c's id and shard, c = 0…15, each seeded into shard c % 4. */
  const seeded: { customerId: string; shard: number }[] = [];

  beforeAll(async () => {
    for (let c = 0; c < 16; c++) seeded.push(await seedRegion(`arrivals-${c}`, ordersOf(c), { at: c % shards }));
    const first = await requestFor(store, "arrivals-1", asOf);
    for (let shard = 0; shard < shards; shard++) await scorePages(store, shard, first);
  }, 120_000);

  const keysOf = async (shard: number, customerId: string) =>
    (await shardRows<{ key: string }>(shard, "SELECT key FROM identities WHERE customer_id = ?", customerId)).map(
      (row) => row.key,
    );

  it("are scored by the run after its pages, as a customer with the same history that stayed put", async () => {
    const second = await requestFor(store, "arrivals-2", later);
    const moved = seeded[0] as { customerId: string; shard: number }; // shard 0, moved whole into shard 1
    const copied = seeded[2] as { customerId: string; shard: number }; // shard 2, copied into shard 3
    expect([moved.shard, copied.shard]).toEqual([0, 2]);
    const [movedKeys, copiedKeys] = await Promise.all([keysOf(0, moved.customerId), keysOf(2, copied.customerId)]);

    // Shard 1's and shard 3's pages are done before anything arrives there.
    await scorePages(store, 1, second);
    await scorePages(store, 3, second);
    // Moved whole into shard 1, behind its pages.
    await runInDurableObject(shardStub(env, 0), async (instance) => {
      expect(await (instance as unknown as CustomerShard).moveOut(movedKeys, 1, shards)).toEqual({ kind: "moved" });
    });
    // Copied into shard 3; shard 2's pages score it there before the move's delete.
    const moveId = await runInDurableObject(shardStub(env, 2), async (instance) => {
      const placement = (instance as unknown as { placement: MoveContext }).placement;
      const recorded = await recordMoveOut(placement, copiedKeys, 3);
      if (recorded.kind !== "recorded") throw new Error(`the move was not recorded: ${recorded.kind}`);
      expect(await runStep(placement, recorded.id)).toBe("directory");
      return recorded.id;
    });
    await scorePages(store, 0, second);
    await scorePages(store, 2, second);
    expect((await scoreRow(2, copied.customerId))?.run_id).toBe("arrivals-2");
    await runInDurableObject(shardStub(env, 2), async (instance) => {
      await resumeMove((instance as unknown as { placement: MoveContext }).placement, moveId);
    });
    expect(await scoreRow(2, copied.customerId)).toBeUndefined();

    // What the pages left: both with the first run's score, where they are now.
    expect((await scoreRow(1, moved.customerId))?.run_id).toBe("arrivals-1");
    expect((await scoreRow(3, copied.customerId))?.run_id).toBe("arrivals-1");

    const before = await Promise.all(
      [0, 1, 2, 3].map((shard) => shardRows<Row>(shard, "SELECT * FROM customer_scores")),
    );
    const arrivals = await Promise.all([0, 1, 2, 3].map((shard) => scoreArrivals(store, shard, second)));
    expect(arrivals.map((part) => part.read)).toEqual([0, 1, 0, 1]);
    // Each changed stage (active 150 days ago), recorded where the customer is.
    expect(arrivals.map((part) => part.transitions)).toEqual([0, 1, 0, 1]);

    for (const [at, customer, twin] of [
      [1, moved, seeded[8]],
      [3, copied, seeded[10]],
    ] as const) {
      const score = await scoreRow(at, customer.customerId);
      expect(score?.run_id).toBe("arrivals-2");
      expect(withoutId(score)).toEqual(withoutId(await scoreRow(twin?.shard ?? -1, twin?.customerId ?? "")));
      expect(
        await shardRows(
          at,
          "SELECT from_stage, run_id FROM stage_transitions WHERE customer_id = ? AND run_id = ?",
          customer.customerId,
          "arrivals-2",
        ),
      ).toEqual([{ from_stage: "active", run_id: "arrivals-2" }]);
    }
    // Nobody else's score was touched.
    const after = await Promise.all(
      [0, 1, 2, 3].map((shard) => shardRows<Row>(shard, "SELECT * FROM customer_scores")),
    );
    const others = (rows: Row[][]) =>
      rows.map((part) =>
        part.filter((row) => row.customer_id !== moved.customerId && row.customer_id !== copied.customerId),
      );
    expect(others(after)).toEqual(others(before));

    // A retried step scores the same arrivals and writes nothing.
    const snapshot = () =>
      Promise.all([1, 3].map((shard) => shardRows(shard, "SELECT * FROM customer_scores ORDER BY customer_id")));
    const transitionsBefore = await Promise.all(
      [1, 3].map((shard) => shardRows(shard, "SELECT * FROM stage_transitions ORDER BY id")),
    );
    const kept = await snapshot();
    expect((await scoreArrivals(store, 1, second)).transitions).toBe(0);
    expect((await scoreArrivals(store, 3, second)).transitions).toBe(0);
    expect(await snapshot()).toEqual(kept);
    expect(
      await Promise.all([1, 3].map((shard) => shardRows(shard, "SELECT * FROM stage_transitions ORDER BY id"))),
    ).toEqual(transitionsBefore);
  }, 120_000);

  it("are read in pages, by customer id, only for moves since the run's first page there", async () => {
    const third = await requestFor(store, "arrivals-3", later);
    // A run that has not scored a page here has no arrivals here.
    expect((await scoreArrivals(store, 1, third)).read).toBe(0);
    // The move into shard 1 above came before this run's first page there (a few milliseconds later
    // on the shard's clock, which moves on with each request).
    await new Promise((resolve) => setTimeout(resolve, 10));
    await scorePages(store, 1, third);
    expect((await scoreArrivals(store, 1, third)).read).toBe(0);
    // Several customers moved into shard 0 after the run's first page there: read a page at a time.
    await scorePages(store, 0, third);
    for (const c of [5, 9, 13])
      await runInDurableObject(shardStub(env, 1), async (instance) => {
        const customer = seeded[c] as { customerId: string };
        const keys = await keysOf(1, customer.customerId);
        expect(await (instance as unknown as CustomerShard).moveOut(keys, 0, shards)).toEqual({ kind: "moved" });
      });
    const arrivals = store.arrivals;
    if (!arrivals) throw new Error("the sharded store scores no arrivals");
    const pages: { arrivals: number; scored: number }[] = [];
    let cursor = "";
    for (;;) {
      const page = await arrivals.scorePage(0, { ...third, pageSize: 2, cursor });
      pages.push({ arrivals: page.arrivals, scored: page.scored });
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    // All three scored where they are now (their scores unchanged since the second run: nothing written).
    expect(pages).toEqual([
      { arrivals: 2, scored: 2 },
      { arrivals: 1, scored: 1 },
    ]);
  }, 120_000);
});
