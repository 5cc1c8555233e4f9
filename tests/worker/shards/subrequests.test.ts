// Calls out of one request, counted (tests/fixtures/subrequests.ts): Cloudflare caps an invocation's
// subrequests (Workers Paid: 10,000; D1 queries count among them), and the local runtime does not. An
// order batch costs calls per shard, not per order; an erasure one call per shard and a few more; the
// heaviest admin step, a migration step at its largest limit, stays within the cap. Each count is
// printed, for docs/scaling.md ("Calls per request").
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../worker/app.ts";
import type { Env } from "../../../worker/env.ts";
import { shardCount } from "../../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../../fixtures/builders.ts";
import { wrapShardEnvs } from "../../fixtures/events-store.ts";
import { type CallCounts, countedEnv, subrequests } from "../../fixtures/subrequests.ts";

/** Workers Paid's subrequests per invocation. */
const subrequestCap = 10_000;

const app = createApp();

/** An API client whose requests run with counted bindings (`settings` over the test's own). */
function counted(settings: Partial<Env> = {}) {
  const { env: bindings, counts } = countedEnv({ ...env, ...settings } as Env);
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

describe("calls out of one request", () => {
  it("a migration step, at the default and the largest limit, stays within Workers Paid's cap", async () => {
    const p = uniquePrefix("calls-migrate");
    // A deployment on its one D1 database with 1,000 customers.
    const seeded = await counted({ SHARD_COUNT: "0" }).api.postOrders(newCustomers(p, 1000));
    expect(seeded.status, await seeded.clone().text()).toBe(200);
    for (const limit of [100, 500]) {
      const { api, counts } = counted({ SHARD_COUNT: "0" });
      // The first step empties the shards (other tests' customers), as a migration's first pass does.
      const body = { shards: 4, limit, discardShardData: limit === 100 };
      const step = await api.call("POST", "/v1/admin/shards/migrate", body, adminKey);
      expect(step.status, await step.clone().text()).toBe(200);
      const { data } = (await step.json()) as { data: { regions: number } };
      expect(data.regions).toBeGreaterThanOrEqual(limit === 100 ? 100 : 600);
      report(`migration step of ${limit} customers`, counts);
      expect(counts.shards).toBeGreaterThan(limit);
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
      expect(subrequests(counts)).toBeLessThanOrEqual(5 * shardCount(env));
    }
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
});
