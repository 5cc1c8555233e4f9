// Calls out of one request, counted (tests/fixtures/subrequests.ts): Cloudflare caps an invocation's
// subrequests (Workers Paid: 10,000; D1 queries count among them, and D1 lists 1,000 of its own), and
// the local runtime does not. An order batch costs calls per shard, not per order; an erasure one call
// per shard and a few more; a migration step stays within both caps at any limit; a request or nightly
// step that asks every shard, counted at 2 and 4 shards, stays within the cap at the most shards a
// deployment may have; a drain page's calls go by its moves. Each count is printed, for
// docs/scaling.md ("Calls per request").
import { createExecutionContext, createMessageBatch, env, waitOnExecutionContext } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import * as schema from "../../../db/schema.ts";
import { createApp } from "../../../worker/app.ts";
import type { PopulationModels } from "../../../worker/core/profile/population-models.ts";
import type { PopulationStats } from "../../../worker/core/ranking/population.ts";
import { ingestAttemptCalls, orderBatchCalls } from "../../../worker/core/shards/calls.ts";
import { maxShards } from "../../../worker/core/shards/placement.ts";
import type { Db, Env } from "../../../worker/env.ts";
import { retailerTimeZone } from "../../../worker/http/config.ts";
import { consumeImportBatches } from "../../../worker/imports/imports.consumer.ts";
import type { ImportMessage } from "../../../worker/imports/imports.schemas.ts";
import { startRunStep } from "../../../worker/jobs/nightly.repo.ts";
import { modelsById } from "../../../worker/models/models.repo.ts";
import { migrateCustomersPerStep } from "../../../worker/shards/migrate.ts";
import { shardedNightlyStore } from "../../../worker/shards/nightly.ts";
import { shardCount } from "../../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../../fixtures/builders.ts";
import { wrapShardEnvs } from "../../fixtures/events-store.ts";
import { recordedBatch, walkInAccount } from "../../fixtures/import-queue.ts";
import { type CallCounts, countedEnv, subrequests } from "../../fixtures/subrequests.ts";

/** Workers Paid's subrequests per invocation. */
const subrequestCap = 10_000;

/** D1's queries per Worker invocation, as its limits page lists them (a batch counted as one). */
const d1QueryCap = 1_000;

const app = createApp();

/** An API client whose requests run with counted bindings (`settings` over the test's own). */
function counted(settings: Partial<Env> = {}, log?: string[]) {
  const { env: bindings, counts } = countedEnv({ ...env, ...settings } as Env, undefined, log);
  const api = client({
    async fetch(input: string, init?: RequestInit) {
      const context = createExecutionContext();
      const response = await app.fetch(new Request(input, init), bindings, context);
      await waitOnExecutionContext(context);
      return response;
    },
  });
  return { api, counts };
}

const report = (what: string, counts: CallCounts) =>
  console.log(`calls: ${what}: ${subrequests(counts)} (${counts.d1} D1 queries, ${counts.shards} shard calls)`);

const newCustomers = (p: string, n: number) =>
  Array.from({ length: n }, (_, i) => anOrder({ id: `${p}-${i}`, identifiers: { account: `${p}-${i}` } }));

/**
 * What `work` calls with a deployment of `shards` shards: counted at 2 and at 4 shards, the calls a
 * shard adds and the calls that do not grow with shards, and from them the calls at `maxShards`.
 */
async function perShard(what: string, work: (bindings: Env) => Promise<unknown>) {
  const at: number[] = [];
  for (const shards of [2, 4]) {
    const { env: bindings, counts } = countedEnv({ ...env, SHARD_COUNT: String(shards) } as Env);
    await work(bindings);
    at.push(subrequests(counts));
  }
  const [two = 0, four = 0] = at;
  const slope = (four - two) / 2;
  const fixed = two - 2 * slope;
  const atMost = slope * maxShards + fixed;
  console.log(
    `calls: ${what}: ${two} at 2 shards, ${four} at 4: ${slope} a shard + ${fixed}; at ${maxShards.toLocaleString("en")} shards ${atMost.toLocaleString("en")}`,
  );
  return { slope, fixed, atMost };
}

describe("calls out of one request", () => {
  it("a migration step, at the default and the largest limit, stays within Workers Paid's cap and D1's queries", async () => {
    const p = uniquePrefix("calls-migrate");
    // A deployment on its one D1 database with 250 customers of 13 orders each, web and store, an
    // account, a loyalty card and an email: what a step reads of D1 does not grow with the orders.
    const history = Array.from({ length: 250 }, (_, c) =>
      Array.from({ length: 13 }, (_, k) =>
        anOrder({
          id: `${p}-${c}-${k}`,
          channel: k % 2 ? "store" : "web",
          placedAt: new Date(Date.UTC(2025, 0, 1 + k * 20)).toISOString(),
          identifiers:
            k % 2
              ? { loyalty: `${p}-card-${c}` }
              : { account: `${p}-${c}`, loyalty: `${p}-card-${c}`, email: `${p}-${c}@example.com` },
        }),
      ),
    ).flat();
    for (let i = 0; i < history.length; i += 1000) {
      const seeded = await counted({ SHARD_COUNT: "0" }).api.postOrders(history.slice(i, i + 1000));
      expect(seeded.status, await seeded.clone().text()).toBe(200);
    }
    for (const limit of [100, 500]) {
      const log: string[] = [];
      const { api, counts } = counted({ SHARD_COUNT: "0" }, log);
      // The first step empties the shards (other tests' customers), as a migration's first pass does.
      const body = { shards: 4, limit, discardShardData: limit === 100 };
      const step = await api.call("POST", "/v1/admin/shards/migrate", body, adminKey);
      expect(step.status, await step.clone().text()).toBe(200);
      const { data } = (await step.json()) as { data: { regions: number } };
      // Regions copied so far in the pass: a step copies at most migrateCustomersPerStep, whatever its limit.
      expect(data.regions).toBe(limit === 100 ? 100 : 200);
      report(`migration step with limit ${limit}`, counts);
      // D1's limits page lists its 1,000 queries an invocation as "read subrequest limits", and a batch
      // is one request to D1 (counted as one here); its statements, each counted, for docs/scaling.md.
      const statements = log
        .filter((line) => /^(EVENTS_)?DB: /.test(line))
        .reduce((sum, line) => sum + Number(/^(?:EVENTS_)?DB: batch of (\d+):/.exec(line)?.[1] ?? 1), 0);
      console.log(`calls: the same step's D1 statements, a batch's each counted: ${statements}`);
      expect(statements).toBeGreaterThanOrEqual(counts.d1);
      expect(counts.shards).toBeGreaterThan(migrateCustomersPerStep);
      expect(counts.d1).toBeLessThanOrEqual(d1QueryCap);
      expect(subrequests(counts)).toBeLessThanOrEqual(subrequestCap);
    }
  });

  it("an order batch of 1,000 new customers costs a few calls per shard, not calls per order, and so does its replay", async () => {
    const orders = newCustomers(uniquePrefix("calls-orders"), 1000);
    for (const what of ["1,000 new customers' orders", "the same 1,000 orders again"]) {
      const { api, counts } = counted();
      const response = await api.postOrders(orders);
      expect(response.status, await response.clone().text()).toBe(200);
      report(what, counts);
      expect(counts.shards).toBeGreaterThan(0);
      // What an import consumer invocation budgets a batch (batchesPerInvocation).
      expect(subrequests(counts)).toBeLessThanOrEqual(orderBatchCalls(shardCount(env)));
    }
  });

  it("an order batch of 1,000 orders joining customers across shards costs a move per pair of shards, not per join", async () => {
    const p = uniquePrefix("calls-joins");
    const web = Array.from({ length: 1000 }, (_, i) =>
      anOrder({ id: `${p}-w${i}`, identifiers: { account: `${p}-${i}` } }),
    );
    const store = Array.from({ length: 1000 }, (_, i) =>
      anOrder({ id: `${p}-s${i}`, channel: "store", identifiers: { loyalty: `${p}-card-${i}` } }),
    );
    for (const orders of [web, store]) expect((await counted().api.postOrders(orders)).status).toBe(200);
    const joins = Array.from({ length: 1000 }, (_, i) =>
      anOrder({ id: `${p}-j${i}`, channel: "store", identifiers: { account: `${p}-${i}`, loyalty: `${p}-card-${i}` } }),
    );
    const { api, counts } = counted();
    const response = await api.postOrders(joins);
    expect(response.status, await response.clone().text()).toBe(200);
    expect(((await response.json()) as { data: { merges: number } }).data.merges).toBe(1000);
    report("1,000 orders each joining a web customer and a store customer", counts);
    // About three joins in four are between two shards; their regions move into the lower shard, one
    // move for each source and target (moveGroupsOut), so at most one call per pair of shards.
    const shards = shardCount(env);
    expect(counts.shards).toBeLessThanOrEqual(3 * shards + (shards * (shards - 1)) / 2);
  });

  it("an erasure calls each shard about once", async () => {
    const account = `${uniquePrefix("calls-erase")}-ann`;
    const seeded = await counted().api.postOrders([anOrder({ identifiers: { account } })]);
    expect(seeded.status).toBe(200);
    const lookup = await counted().api.lookup("account", account);
    const { customerId } = ((await lookup.json()) as { data: { customerId: string } }).data;
    const { api, counts } = counted();
    const erased = await api.call("DELETE", `/v1/customers/${customerId}`, undefined, adminKey);
    expect(erased.status, await erased.clone().text()).toBe(200);
    report("an erasure", counts);
    expect(counts.shards).toBeGreaterThanOrEqual(shardCount(env));
    expect(subrequests(counts)).toBeLessThanOrEqual(2 * shardCount(env) + 4);
  });

  it("each nightly step that asks every shard makes a few calls a shard, within the cap at the most shards a deployment may have", async () => {
    const p = uniquePrefix("calls-nightly");
    const placed = Array.from({ length: 40 }, (_, i) =>
      anOrder({
        id: `${p}-${i}`,
        placedAt: new Date(Date.UTC(2026, 4, 1 + (i % 20))).toISOString(),
        identifiers: { account: `${p}-${i % 13}` },
      }),
    );
    expect((await counted().api.postOrders(placed)).status).toBe(200);
    const now = new Date(Date.UTC(2026, 5, 1));
    const runId = `${p}-run`;
    const d1 = drizzle(env.DB, { schema }) as Db;
    await startRunStep(d1, runId, now);
    const store = (bindings: Env) => shardedNightlyStore(bindings, drizzle(bindings.DB, { schema }) as Db);
    const fits = await shardedNightlyStore(env, d1).fitCustomerModels(now);
    const models = await modelsById<PopulationModels>(d1, fits.id);
    const steps: [string, (bindings: Env) => Promise<unknown>][] = [
      ["fit customer models", (bindings) => store(bindings).fitCustomerModels(now)],
      ["fit ranking statistics", (bindings) => store(bindings).fitPopulation(now)],
      ["co-purchase table", (bindings) => store(bindings).copurchase(now)],
      ["count arrivals", (bindings) => store(bindings).arrivals?.count(runId) ?? Promise.resolve()],
      ["model diagnostics", (bindings) => store(bindings).diagnostics(now, models)],
      ["count transitions", (bindings) => store(bindings).countTransitions(runId)],
      ["expire browse days", (bindings) => store(bindings).expireBrowse("2026-01-01")],
      ["count an audience", (bindings) => store(bindings).audienceCustomers.count({ stage: "fading" })],
    ];
    for (const [what, work] of steps) {
      const { slope, atMost } = await perShard(`nightly step "${what}"`, work);
      expect(slope, what).toBeGreaterThanOrEqual(1);
      expect(slope, what).toBeLessThanOrEqual(2);
      expect(atMost, what).toBeLessThanOrEqual(subrequestCap);
    }
    // A scoring page is one shard's: its calls do not grow with shards.
    const population = await modelsById<PopulationStats>(d1, (await store(env).fitPopulation(now)).id);
    const page = await perShard('nightly step "score a page"', (bindings) =>
      store(bindings).scorePage(0, {
        models,
        population,
        cursor: "",
        pageSize: 100,
        runId,
        now,
        timeZone: retailerTimeZone(env.RETAILER_TIME_ZONE),
        scoredBefore: 0,
      }),
    );
    expect(page.slope).toBe(0);
    expect(page.fixed).toBeLessThanOrEqual(4);
  });

  it("the shards' status, which asks every shard, stays within the cap at the most shards", async () => {
    const status = await perShard("GET /v1/admin/shards", async (bindings) => {
      const response = await app.fetch(
        new Request("http://patron.test/v1/admin/shards", { headers: { Authorization: `Bearer ${adminKey}` } }),
        bindings,
        createExecutionContext(),
      );
      expect(response.status, await response.clone().text()).toBe(200);
    });
    expect(status.slope).toBeGreaterThanOrEqual(1);
    expect(status.atMost).toBeLessThanOrEqual(subrequestCap);
  });

  it("a shrink's drain page, run in the shard it empties, stays within the cap at its 1,000 customers", async () => {
    const p = uniquePrefix("calls-drain");
    // Customers joined across channels: regions of one or more customers, in every shard.
    const orders = Array.from({ length: 160 }, (_, i) =>
      anOrder({
        id: `${p}-${i}`,
        channel: i % 2 ? "store" : "web",
        identifiers:
          i % 4 === 3 ? { loyalty: `${p}-card-${i - 1}` } : { account: `${p}-acct-${i}`, loyalty: `${p}-card-${i}` },
      }),
    );
    expect((await counted().api.postOrders(orders)).status).toBe(200);
    // Every shard's calls, whoever makes them: the drained shard's page and what the shards it calls
    // do in their own invocations, so an upper bound of the page's own.
    const counts: CallCounts = { d1: 0, shards: 0, queue: 0, workflows: 0 };
    const restore = await wrapShardEnvs((real) => countedEnv(real, counts).env);
    const { api, counts: worker } = counted();
    const step = await api.call("POST", "/v1/admin/shards/reshard", { to: 3, limit: 1000 }, adminKey);
    await restore();
    expect(step.status, await step.clone().text()).toBe(200);
    const { data } = (await step.json()) as { data: { phase: string; written: number; removed: number } };
    expect(data.phase).toBe("draining");
    expect(data.written).toBeGreaterThan(10);
    const perCustomer = subrequests(counts) / data.written;
    report(`a drain page moving ${data.written} customers in ${data.removed} moves, in the shards`, counts);
    report("the same step, in the Worker", worker);
    console.log(
      `calls: ${perCustomer.toFixed(1)} per customer moved; at a page's 1,000: ${Math.round(perCustomer * 1000)}`,
    );
    expect(perCustomer * 1000).toBeLessThanOrEqual(subrequestCap);
    // Calls go by moves, not customers: a move is its copy, one directory call per shard homing its keys,
    // and its finish (worker/shards/moves.ts, runStep); the Worker's step asks the drained shard for the
    // page and the removed shards what they still hold.
    expect(data.removed).toBeGreaterThan(0);
    expect(counts.shards).toBeLessThanOrEqual(data.removed * (shardCount(env) + 2));
    expect(subrequests(worker)).toBeLessThanOrEqual(2 * shardCount(env) + 4);
  });

  it("an import batch with a placeholder's order is cut in halves, each an ingestion of its own, within the calls budgeted for it", async () => {
    const p = uniquePrefix("calls-split");
    const walkIn = await walkInAccount(counted().api, p);
    const created = await counted().api.call("POST", "/v1/imports", {});
    const importId = ((await created.json()) as { data: { id: string } }).data.id;
    // A few hundred orders fit a queue message: 256 new customers, and 255 with a walk-in sale among them.
    const size = 256;
    const batches = [
      newCustomers(`${p}-usual`, size),
      [...newCustomers(`${p}-cut`, size - 1), anOrder({ id: `${p}-w1`, identifiers: { account: walkIn } })],
    ];
    const spent: number[] = [];
    for (const [sequence, orders] of batches.entries()) {
      const body = await recordedBatch(importId, sequence, orders);
      const log: string[] = [];
      const { env: bindings, counts } = countedEnv(env, undefined, log);
      const batch = createMessageBatch<ImportMessage>("patron-import", [
        { id: `m-${p}-${sequence}`, timestamp: new Date(), attempts: 1, body },
      ]);
      await consumeImportBatches(batch as MessageBatch, bindings);
      // The batch's own bookkeeping (loading and recording it) aside: what its ingestions called.
      const ingestion = subrequests(counts) - log.filter((line) => line.includes("import_batches")).length;
      spent.push(ingestion);
      report(`import batch of ${size} orders, ${sequence ? "one on a walk-in account" : "new customers"}`, counts);
    }
    const [usual = 0, cut = 0] = spent;
    // Cut in halves until the refused part is the walk-in sale alone: 1 + 2 × log2(256) ingestions.
    const ingestions = 1 + 2 * Math.log2(size);
    const shards = shardCount(env);
    console.log(
      `calls: the cut batch's ingestions: ${cut} in ${ingestions} ingestions against ${usual} for the usual batch, ${(cut / usual).toFixed(1)}×; budgeted ${ingestions} × ${ingestAttemptCalls(shards)} = ${ingestions * ingestAttemptCalls(shards)}`,
    );
    expect(usual).toBeLessThanOrEqual(orderBatchCalls(shards));
    expect(cut).toBeGreaterThan(4 * usual);
    expect(cut).toBeLessThanOrEqual(ingestions * ingestAttemptCalls(shards));
    const view = await counted().api.call("GET", `/v1/imports/${importId}`);
    const { data } = (await view.json()) as { data: { totals: { accepted: number; setAside: number } } };
    expect(data.totals).toMatchObject({ accepted: 2 * size - 1, setAside: 1 });
  });
});
