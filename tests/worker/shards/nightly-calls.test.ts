// One nightly run's calls, every step together. Cloudflare counts a Workflow instance's subrequests
// over all its steps (10,000 by default), so wrangler.toml raises the limit ([limits] subrequests,
// nightlyRunSubrequests). Here the real Workflow class runs on 4 shards with counted bindings (D1,
// events D1, shard calls; webhook POSTs counted at the receiver) and a step runner that runs each step
// once, one at a time, so every call is its step's. From the steps' calls, and how each kind grows
// (a step that asks every shard: at most 2 calls a shard and 4 more, tests/worker/shards/subrequests.test.ts;
// a page: calls that do not grow with shards), the run's calls at 10 million customers and the most
// shards a deployment may have, printed for docs/scaling.md ("Calls of one nightly run").
import { env, SELF } from "cloudflare:test";
import type { WorkflowEvent, WorkflowStep } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, inject, it } from "vitest";
import * as schema from "../../../db/schema.ts";
import {
  defaultAudiencePaging,
  defaultWebhookPageSize,
  purgeStepName,
} from "../../../worker/audiences/audiences.sync.ts";
import { nightlyRunSubrequests } from "../../../worker/core/shards/calls.ts";
import { maxShards } from "../../../worker/core/shards/placement.ts";
import type { Db, Env } from "../../../worker/env.ts";
import { defaultPageSize, NightlyModelWorkflow, type NightlyParams } from "../../../worker/jobs/nightly.workflow.ts";
import { transitionsPageSize, transitionsPagesPerStep } from "../../../worker/jobs/transitions.webhook.ts";
import { shardedNightlyStore } from "../../../worker/shards/nightly.ts";
import { shardCount } from "../../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../../fixtures/builders.ts";
import { countedEnv, subrequests } from "../../fixtures/subrequests.ts";
import type { ReceivedRequest } from "../../fixtures/webhook-receiver.types.ts";

const api = client(SELF);

/** Workflows' steps per instance on Workers Paid unless raised (up to 25,000). */
const workflowStepsDefault = 10_000;

async function received(box: string): Promise<ReceivedRequest[]> {
  return (await (await fetch(`${inject("webhookReceiver")}/received/${box}`)).json()) as ReceivedRequest[];
}

/**
 * What a step is, by its name: a page of one shard, an audience's members step (up to 25 pages of
 * 2,000, over shards) or delivery step (up to 20 POSTs) or own step (once per audience), a webhook
 * step, an upkeep step (up to 20 of each kind a night), or a step the run takes once.
 */
function kindOf(
  name: string,
): "page" | "members" | "delivery" | "audience" | "purge" | "plan" | "webhook" | "upkeep" | "once" {
  if (/^score shard \d+ (page|arrivals) \d+$/.test(name)) return "page";
  if (/^audiences: purge \d+$/.test(name)) return "purge";
  if (/^audience .+: mark \d+$/.test(name)) return "members";
  if (/^audience .+: deliver \d+$/.test(name)) return "delivery";
  if (/^audience .+: [a-z ]+$/.test(name)) return "audience";
  if (/^post transitions pages( \d+)?$/.test(name)) return "webhook";
  if (/^plan transitions pages( \d+)?$/.test(name)) return "plan";
  if (/^(move legacy events|expire events|expire conversions|expire browse days) \d+$/.test(name)) return "upkeep";
  return "once";
}

describe("one nightly run's calls", () => {
  it("stay within wrangler.toml's limit for a run at ten million customers and the most shards", async () => {
    const shards = shardCount(env);
    const p = uniquePrefix("run-calls");
    // 48 customers over the shards, 2 orders each: every one gets a stage on this first run.
    const orders = Array.from({ length: 96 }, (_, i) =>
      anOrder({
        id: `${p}-${i}`,
        placedAt: new Date(Date.UTC(2026, 3, 1 + (i % 40))).toISOString(),
        identifiers: { account: `${p}-${i % 48}` },
      }),
    );
    expect((await api.postOrders(orders)).status).toBe(200);
    const receiver = inject("webhookReceiver");
    const transitionsBox = `${p}-transitions`;
    const audienceBox = `${p}-audience`;
    // An audience of every customer, with a webhook: all 48 join on this run.
    const saved = await api.call(
      "POST",
      "/v1/admin/audiences",
      { name: `${p} everyone`, filters: {}, webhookUrl: `${receiver}/hooks/${audienceBox}` },
      adminKey,
    );
    expect(saved.status, await saved.clone().text()).toBe(201);

    const { env: bindings, counts } = countedEnv({
      ...env,
      TRANSITIONS_WEBHOOK_URL: `${receiver}/hooks/${transitionsBox}`,
      AUDIENCE_WEBHOOKS_ALLOW_LOCAL: "on",
    } as Env);
    const posts = async () => (await received(transitionsBox)).length + (await received(audienceBox)).length;
    const steps: { name: string; calls: number; tries: number }[] = [];
    let turn = Promise.resolve();
    const step = {
      do<T>(name: string, config: unknown, run?: (ctx: { attempt: number }) => Promise<T>): Promise<T> {
        const work = (run ?? config) as (ctx: { attempt: number }) => Promise<T>;
        const done = turn.then(async () => {
          const before = subrequests(counts) + (await posts());
          const result = await work({ attempt: 1 });
          // The tries Workflows gives the step: its retries and the first (6 under Workflows' default).
          const retries = run ? (config as { retries?: { limit?: number } }).retries?.limit : undefined;
          steps.push({ name, calls: subrequests(counts) + (await posts()) - before, tries: (retries ?? 5) + 1 });
          return result;
        });
        turn = done.then(
          () => undefined,
          () => undefined,
        );
        return done;
      },
    };
    const pageSize = 5;
    const event = {
      payload: { asOf: "2026-06-01T00:00:00.000Z", pageSize, audiencePageSize: 10 },
      timestamp: new Date(),
      instanceId: `${p}-run`,
    } as unknown as WorkflowEvent<NightlyParams>;
    // The Workflow's own run, on these bindings (the runtime builds the class with its context only).
    const workflow = Object.assign(Object.create(NightlyModelWorkflow.prototype), {
      env: bindings,
    }) as NightlyModelWorkflow;
    await workflow.run(event, step as unknown as WorkflowStep);

    const of = (kind: ReturnType<typeof kindOf>) => steps.filter((s) => kindOf(s.name) === kind);
    const total = steps.reduce((sum, s) => sum + s.calls, 0);
    const most = (list: { calls: number }[]) => Math.max(0, ...list.map((s) => s.calls));
    for (const s of steps) console.log(`calls: run step "${s.name}": ${s.calls}`);
    console.log(`calls: the run: ${total} in ${steps.length} steps at ${shards} shards`);
    // It ran through: pages in every shard, the transitions and the audience's joined members POSTed.
    expect(of("page").length).toBeGreaterThanOrEqual(shards * 2);
    expect(of("plan").length).toBe(1);
    expect(of("webhook").length).toBe(1);
    // 48 members at 10 a POST: 5 POSTs, all in one step (20 a step).
    const audiencePosts = (await received(audienceBox)).length;
    expect(audiencePosts).toBe(5);
    expect(of("delivery").length).toBe(1);
    // Every shard's members (fewer than 2,000 each: a page a shard) marked in one step.
    expect(of("members").length).toBe(1);
    expect(steps.at(-1)?.name).toBe("finish run");

    // A step the run (or an audience) takes once, and an upkeep step, asks a shard at most twice; a
    // page's calls do not grow with shards, nor do an audience's members pages.
    const once = of("once");
    expect(once.map((s) => s.name)).toEqual([
      "start run",
      "fit customer models",
      "fit ranking statistics",
      "co-purchase table",
      "count arrivals",
      "put models in force",
      "model diagnostics",
      "save best-customers rollup",
      "count transitions",
      "audiences",
      "finish run",
    ]);
    for (const s of [...once, ...of("audience"), ...of("upkeep")])
      expect(s.calls, s.name).toBeLessThanOrEqual(2 * shards + 4);
    // Nothing to forget: one look at D1 for audiences deleted or re-pointed since the last run.
    expect(of("purge").map((s) => s.name)).toEqual([purgeStepName(1)]);
    expect(of("purge")[0]?.calls).toBe(1);
    expect(of("upkeep").map((s) => s.name)).toEqual([
      "expire events 0",
      "expire conversions 0",
      "expire browse days 0",
    ]);
    // A members page: the shard's list read and the marks written to D1.
    const membersCalls = most(of("members")) / shards;
    expect(membersCalls).toBeLessThanOrEqual(2);
    const pageCalls = most(of("page"));
    expect(pageCalls).toBeLessThanOrEqual(6);
    // The webhook's plan step: a read a page (a page never spans two shards), a read more for each
    // shard whose last page was full or empty; its POST step: a read and a POST a page.
    const webhookPosts = (await received(transitionsBox)).length;
    expect(webhookPosts).toBeGreaterThanOrEqual(1);
    expect(of("plan")[0]?.calls).toBeLessThanOrEqual(webhookPosts + shards);
    expect(of("webhook")[0]?.calls).toBeLessThanOrEqual(2 * webhookPosts);
    // An audience's joined page, read in shard order, asks the shards its members were found in for
    // their rows (each shard one page more than its own pages: the pages cross shards at most
    // shards - 1 times), reads the audience and the members, keeps the page before its POST and marks
    // them after it in D1 (4 queries) and POSTs them; the last step finds nothing more to send (3 queries).
    const delivery = of("delivery");
    const deliveryCalls = delivery.reduce((sum, s) => sum + s.calls, 0);
    expect(deliveryCalls).toBeLessThanOrEqual(audiencePosts * (1 + 5) + shards - 1 + 3);

    // At ten million customers and maxShards, each step kind at its most: the once-a-run steps and
    // the upkeep steps (3 kinds on shards, at most 20 steps each when events have piled up) at 2 calls
    // a shard and 4 more; the pages (5,000 customers each, a short page more in every shard) and as
    // many arrivals pages as shards; a first night's transitions webhook (every customer's stage:
    // 1,000 a POST, a short page more in every shard, 100 POSTs a part: its plan step reads each page,
    // again where the last stopped and once more for every shard, its POST step reads each page again
    // and POSTs it); and an audience with a webhook whose million
    // members all join (its 3 own steps, its members pages of 2,000 in every shard, its joined pages
    // of 500 at 6 calls, a shard crossing each shard and the last look for more). Retried steps spend
    // their calls again.
    const S = maxShards;
    const fanOut = 2 * S + 4;
    const customers = 10_000_000;
    const pages = Math.ceil(customers / defaultPageSize) + S + S;
    const usual = (once.length + 3 * 20) * fanOut + pages * pageCalls;
    const webhookPages = Math.ceil(customers / transitionsPageSize) + S;
    const webhookSteps = Math.ceil(webhookPages / transitionsPagesPerStep);
    const webhookPlanCalls = webhookPages + webhookSteps + S;
    const webhookPostCalls = 2 * webhookPages;
    const webhookCalls = webhookPlanCalls + webhookPostCalls;
    const firstNight = usual + webhookCalls;
    const joining = 1_000_000;
    const audienceOwn = 3 * fanOut;
    const audienceMembers = (Math.ceil(joining / 2_000) + S) * membersCalls;
    const audienceDelivery = Math.ceil(joining / 500) * 6 + S + 3;
    const audience = audienceOwn + audienceMembers + audienceDelivery;
    // And an audience of all ten million deleted the day before: its members forgotten in pages of
    // 20,000, 25 a step, each page a look at the requests, the delete and (the last) letting it go.
    const { purgePageSize, purgePagesPerStep } = defaultAudiencePaging;
    const purgeSteps = Math.ceil((Math.floor(customers / purgePageSize) + 1) / purgePagesPerStep);
    const purge = purgeSteps * (3 * purgePagesPerStep + 1);
    const n = (value: number) => value.toLocaleString("en");
    console.log(
      `calls: a run at ${n(customers)} customers and ${n(S)} shards: ${once.length + 60} once-a-run and upkeep steps × ${n(fanOut)} + ` +
        `${n(pages)} pages × ${pageCalls} = ${n(usual)} at most on a usual night; ${n(firstNight)} on a first night with the ` +
        `transitions webhook; an audience of ${n(joining)} joining adds ${n(audience)} (here its ${audiencePosts} joined pages ${deliveryCalls} at ${shards} shards); ` +
        `forgetting a deleted audience of ${n(customers)} ${n(purge)} in ${purgeSteps} steps`,
    );
    expect(firstNight + audience + purge).toBeLessThanOrEqual(nightlyRunSubrequests);

    // A step retried spends its calls again. Were every step of that night tried as often as its retry
    // setting allows, the run would still keep within the setting.
    const tries = (kinds: ReturnType<typeof kindOf>[]) =>
      Math.max(...steps.filter((s) => kinds.includes(kindOf(s.name))).map((s) => s.tries));
    const everyTry =
      (once.length + 3 * 20) * fanOut * tries(["once", "upkeep"]) +
      pages * pageCalls * tries(["page"]) +
      webhookPlanCalls * tries(["plan"]) +
      webhookPostCalls * tries(["webhook"]) +
      audienceOwn * tries(["audience"]) +
      audienceMembers * tries(["members"]) +
      audienceDelivery * tries(["delivery"]) +
      purge * tries(["purge"]);
    console.log(
      `calls: the same first night and audience with every step at its last try (${tries(["once", "page", "members"])} tries; ` +
        `${tries(["delivery"])} a delivery step): ${n(everyTry)}`,
    );
    expect(everyTry).toBeLessThanOrEqual(nightlyRunSubrequests);

    // Steps, counted the same way: on a first night with the transitions webhook, and an audience with
    // a webhook that every one of the 10 million customers joins, the run stays within Workflows'
    // default 10,000 steps (the members in steps of 25 pages of 2,000, the changes 20 POSTs of 500 a
    // step, the last step finding nothing more).
    // A receiver that needs retries on many pages adds at most `retriedDeliverySteps` and the step
    // that records the stop.
    const { markPageSize, markPagesPerStep, deliveryPagesPerStep, retriedDeliverySteps } = defaultAudiencePaging;
    const everyoneSteps =
      3 +
      Math.ceil((Math.ceil(customers / markPageSize) + S) / markPagesPerStep) +
      Math.floor(Math.ceil(customers / defaultWebhookPageSize) / deliveryPagesPerStep) +
      1 +
      retriedDeliverySteps +
      1;
    const runSteps = once.length + 3 * 20 + pages + 2 * webhookSteps + everyoneSteps + purgeSteps;
    console.log(
      `steps: a first night at ${n(customers)} customers and ${n(S)} shards with an audience of all of them ` +
        `and another forgotten: ${n(runSteps)} (the audience ${n(everyoneSteps)}, the purge ${purgeSteps}; here ${steps.length})`,
    );
    expect(runSteps).toBeLessThanOrEqual(workflowStepsDefault);

    // The members' rows, each asked of the shard the sync found them in: one call for members of one
    // shard. A member not there (a stale shard, or one the deployment no longer has) is looked up at
    // its id's home in the directory and asked where it is now, so still found, never by asking every
    // shard; an unknown id is found nowhere.
    const audienceId = ((await saved.json()) as { data: { id: string } }).data.id;
    const found = await env.DB.prepare(
      "SELECT customer_id AS customerId, shard FROM audience_members WHERE audience_id = ?",
    )
      .bind(audienceId)
      .all<{ customerId: string; shard: number }>();
    const [first, second] = found.results;
    if (!first || !second) throw new Error("the run kept no members");
    expect(new Set(found.results.map((m) => m.shard)).size).toBe(shards);
    const members = async (list: { customerId: string; shard: number }[]) => {
      const log: string[] = [];
      const { env: counting, counts: calls } = countedEnv(env, undefined, log);
      const { rows } = await shardedNightlyStore(
        counting,
        drizzle(counting.DB, { schema }) as Db,
      ).audienceCustomers.scored(list, []);
      const asked = (method: string) => log.filter((line) => line.endsWith(`.${method}`)).length;
      return {
        ids: rows.map((row) => row.customerId),
        calls: subrequests(calls),
        rows: asked("nightlyAudienceRows"),
        located: asked("locate"),
      };
    };
    const one = found.results.filter((m) => m.shard === first.shard).slice(0, 3);
    expect(await members(one)).toEqual({ ids: one.map((m) => m.customerId).sort(), calls: 1, rows: 1, located: 0 });
    // Both stale members are in one shard, away from the one they are recorded in: one ask where
    // recorded, the directory asked at the ids' homes, one ask where they are (and one at the unknown
    // id's home, unless it is where it was recorded): 2 or 3 asks, where every shard would be 5.
    const [a, b] = found.results.filter((m) => m.shard === (first.shard + 1) % shards);
    if (!a || !b) throw new Error("a shard kept fewer than two members");
    const stale = [
      { ...a, shard: first.shard },
      { ...b, shard: shards + 7 },
    ];
    const answer = await members([...stale, { customerId: `${p}-nobody`, shard: first.shard }]);
    expect(answer.ids).toEqual([a.customerId, b.customerId].sort());
    expect(answer.rows).toBeGreaterThanOrEqual(2);
    expect(answer.rows).toBeLessThanOrEqual(3);
    expect(answer.located).toBeGreaterThanOrEqual(1);
    expect(answer.located).toBeLessThanOrEqual(3);
    expect(answer.calls).toBe(answer.rows + answer.located);
  });
});
