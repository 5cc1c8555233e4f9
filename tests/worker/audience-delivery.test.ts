// Audience webhooks end to end: the real nightly Workflow (retry delays switched off, the retries
// themselves real) POSTs to a real local HTTP receiver (tests/fixtures/webhook-receiver.ts). Checked:
// the payload and its pages, the Standard Webhooks signature (verified with the `standardwebhooks`
// library, not our own code), who joined and who left across two runs against the customer list
// itself, retries with one delivery id, a failing receiver recorded on its audience without failing
// the run or the others, a failed delivery caught up by the next run, and the match-key columns.
// Runs on either store: the members are read where the Workflow reads them (D1, or every shard).
import { createExecutionContext, env, introspectWorkflow, SELF, waitOnExecutionContext } from "cloudflare:test";
import type { WorkflowStep } from "cloudflare:workers";
import type { SQL } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { Webhook } from "standardwebhooks";
import { describe, expect, inject, it } from "vitest";
import { jobRunResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { csvHeader } from "../../worker/admin/customer-rows.ts";
import { customerListResponseSchema } from "../../worker/admin/insights.schemas.ts";
import { createApp } from "../../worker/app.ts";
import {
  holdPage,
  type PendingPage,
  pageAccepted,
  purgeMembers,
  startSync,
} from "../../worker/audiences/audiences.repo.ts";
import {
  type AudienceView,
  audienceResponseSchema,
  audienceWebhookPayloadSchema,
  audienceWithSecretResponseSchema,
} from "../../worker/audiences/audiences.schemas.ts";
import {
  type AudiencePaging,
  defaultAudiencePaging,
  deliveryStepName,
  membersStepName,
  purgeStepName,
  syncAudiencesSteps,
} from "../../worker/audiences/audiences.sync.ts";
import { deliver } from "../../worker/audiences/delivery.ts";
import type { Env } from "../../worker/env.ts";
import { hashIdentifiers } from "../../worker/identity/identity.keys.ts";
import { enabledMatchKeys, matchKinds } from "../../worker/identity/match-keys.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, client } from "../fixtures/builders.ts";
import { d1Db, nightlyStore } from "../fixtures/nightly-store.ts";
import { storeRun } from "../fixtures/store-rows.ts";
import type { ReceivedRequest } from "../fixtures/webhook-receiver.types.ts";

const day = 86_400_000;
const now = Date.now();
const firstRunAt = new Date(now - 60 * day);
const secondRunAt = new Date(now);
const pageSize = 10;
/** A smaller page for the tests of steps of several pages. */
const smallPage = 3;

/** The worker as a deployment that opted in to loyalty match keys (stored at ingestion) runs it. */
const app = createApp();
const optedInEnv = { ...env, EXPORT_MATCH_KEYS: "loyalty" };
const optedIn = client({
  fetch: async (input: string, init?: RequestInit) => {
    const context = createExecutionContext();
    const response = await app.fetch(new Request(input, init), optedInEnv, context);
    await waitOnExecutionContext(context);
    return response;
  },
});
const api = client(SELF);

/** Regular customers up to the first run; every third stopped buying long before it. */
function history() {
  const orders = [];
  for (let c = 0; c < 60; c++) {
    const interval = 10 + (c % 5) * 7;
    const stopped = c % 3 === 0;
    const count = 4 + (c % 4);
    const last = firstRunAt.getTime() - (stopped ? interval * 5 : interval * 0.5) * day;
    for (let k = 0; k < count; k++)
      orders.push(
        anOrder({
          id: `aud-${c}-${k}`,
          channel: k % 2 ? "store" : "web",
          placedAt: new Date(last - (count - 1 - k) * interval * day).toISOString(),
          identifiers: { loyalty: `AUD-${c}` },
          lines: [
            { productId: `p-${c % 7}`, categoryId: `cat-${c % 4}`, quantity: 1, unitPrice: 20 + c, listPrice: 30 + c },
          ],
        }),
      );
  }
  return orders;
}

/**
 * On shards, each customer's loyalty match key as an opted-in deployment's shards store it at
 * ingestion. A shard stores match keys under its own settings, which in a deployment are the Worker's;
 * here the opt-in is a copy of the Worker's env (`optedInEnv`) that the shards never see.
 */
async function storeMatchKeysInShards() {
  if (shardCount(env) === 0) return;
  for (let c = 0; c < 60; c++) {
    const { identities } = await hashIdentifiers(
      { loyalty: `AUD-${c}` },
      env.IDENTITY_HASH_SECRET,
      undefined,
      matchKinds(enabledMatchKeys(optedInEnv.EXPORT_MATCH_KEYS)),
    );
    for (const identity of identities)
      await storeRun("UPDATE identities SET match_key = ? WHERE key = ?", identity.matchKey ?? null, identity.key);
  }
}

/** Between the runs the customers who had stopped come back: two recent orders each. */
function comebacks() {
  const orders = [];
  for (let c = 0; c < 60; c += 3)
    for (const daysAgo of [20, 6])
      orders.push(
        anOrder({
          id: `aud-back-${c}-${daysAgo}`,
          placedAt: new Date(now - daysAgo * day).toISOString(),
          identifiers: { loyalty: `AUD-${c}` },
        }),
      );
  return orders;
}

async function runNightly(asOf: Date) {
  // Retries happen for real; only the waits between them are skipped.
  const introspector = await introspectWorkflow(env.NIGHTLY);
  try {
    await introspector.modifyAll(async (m) => {
      await m.disableRetryDelays();
    });
    const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ asOf: asOf.toISOString(), pageSize: 25, audiencePageSize: pageSize }),
    });
    expect(response.status, await response.clone().text()).toBe(200);
    return jobRunResponseSchema.parse(await response.json()).data;
  } finally {
    await introspector.dispose();
  }
}

async function received(box: string): Promise<ReceivedRequest[]> {
  return (await (await fetch(`${inject("webhookReceiver")}/received/${box}`)).json()) as ReceivedRequest[];
}

async function listed(query: string) {
  const response = await api.call("GET", `/v1/admin/customers?${query}&limit=1000`, undefined, adminKey);
  expect(response.status).toBe(200);
  return customerListResponseSchema.parse(await response.json()).data.customers;
}

async function audience(id: string): Promise<AudienceView> {
  return audienceResponseSchema.parse(
    await (await api.call("GET", `/v1/admin/audiences/${id}`, undefined, adminKey)).json(),
  ).data;
}

/** A customer's export (GET /v1/customers/:id/export), as text. */
async function exportText(customerId: string | undefined) {
  const response = await api.call("GET", `/v1/customers/${customerId}/export`, undefined, adminKey);
  expect(response.status).toBe(200);
  return JSON.stringify(await response.json());
}

interface Saved {
  id: string;
  secret: string;
  box: string;
}

async function save(name: string, filters: Record<string, string>, hook: string | null, matchKeys: string[] = []) {
  const box = `${name.replace(/\W+/g, "-")}-${crypto.randomUUID().slice(0, 8)}`;
  const webhookUrl = hook === null ? null : `${inject("webhookReceiver")}/hooks/${box}${hook}`;
  const response = await optedIn.call(
    "POST",
    "/v1/admin/audiences",
    { name, filters, webhookUrl, matchKeys },
    adminKey,
  );
  expect(response.status, await response.clone().text()).toBe(201);
  const { id, secret } = audienceWithSecretResponseSchema.parse(await response.json()).data;
  return { id, secret, box };
}

/** The payloads of requests the receiver accepted, checked against the signature and the schema. */
function payloads(requests: readonly ReceivedRequest[], saved: Saved) {
  const webhook = new Webhook(saved.secret);
  return requests.map((request) => {
    webhook.verify(request.body, request.headers);
    return audienceWebhookPayloadSchema.parse(JSON.parse(request.body));
  });
}

/** Where the Workflow reads the audiences' members: the one database, or every shard. */
const members = (settings: Env = env) => nightlyStore(settings, d1Db()).audienceCustomers;

/** Workflow steps run once each (no retries). */
const onceEach = {
  do: (_name: string, _config: unknown, run: (ctx: { attempt: number }) => unknown) => run({ attempt: 1 }),
};

/**
 * The audience steps as the Workflow runs them, each step once (no retries), here under a deployment
 * whose settings the test chooses.
 */
async function syncSteps(runId: string, settings: Env) {
  return syncAudiencesSteps(onceEach as unknown as WorkflowStep, d1Db(), settings, runId, pageSize, members(settings));
}

/**
 * The audience steps with Workflows' retries: a step that throws is run again, up to its 5 tries,
 * unless the error says retrying cannot help (`beforeRetry` runs between the tries); the first try of
 * step `lost` that succeeds has its result lost, so the step runs again. Answers the
 * summary and the steps' names in order.
 */
async function retriedSyncSteps(
  runId: string,
  paging: AudiencePaging,
  webhookPageSize = pageSize,
  beforeRetry: (error: unknown) => Promise<void> = async () => {},
  box?: string,
  lost?: string,
) {
  const names: string[] = [];
  let resultLost = false;
  /** Step name → the requests `box` had received when the step ended. */
  const receivedAfter = new Map<string, number>();
  const step = {
    async do(name: string, _config: unknown, run: (ctx: { attempt: number }) => unknown) {
      names.push(name);
      for (let attempt = 1; ; attempt++) {
        try {
          const result = await run({ attempt });
          if (name === lost && !resultLost) {
            // The step did its work, but the Workflow never recorded its result (the Worker was evicted).
            resultLost = true;
            throw new Error("step result lost");
          }
          if (box) receivedAfter.set(name, (await received(box)).length);
          return result;
        } catch (error) {
          if (attempt === 5 || (error instanceof Error && error.name === "NonRetryableError")) throw error;
          await beforeRetry(error);
        }
      }
    },
  };
  const summary = await syncAudiencesSteps(
    step as unknown as WorkflowStep,
    d1Db(),
    env,
    runId,
    webhookPageSize,
    members(),
    paging,
  );
  return { summary, names, receivedAfter };
}

/** Every delivery id the receiver got came with one body, however often it was sent. */
function expectOneBodyPerId(requests: readonly ReceivedRequest[]) {
  const bodies = new Map<string, Set<string>>();
  for (const request of requests) {
    const id = request.headers["webhook-id"] ?? "";
    bodies.set(id, (bodies.get(id) ?? new Set()).add(request.body));
  }
  expect([...bodies.values()].every((sent) => sent.size === 1)).toBe(true);
}

const ids = (rows: readonly { customerId: string }[]) => new Set(rows.map((row) => row.customerId));
const minus = (a: Set<string>, b: Set<string>) => new Set([...a].filter((id) => !b.has(id)));

describe("audience webhooks", () => {
  // Saved by the first test, read by the others (they run in order, on the same store).
  const saved = {} as Record<"active" | "flaky" | "down" | "gone" | "plain", Saved>;
  let activeAtFirstRun = new Set<string>();
  let firstRunId = "";

  it("POSTs every member as joined at the first run, in signed pages, and records each audience's outcome", async () => {
    const orders = history();
    for (let i = 0; i < orders.length; i += 200)
      expect((await optedIn.postOrders(orders.slice(i, i + 200))).status).toBe(200);
    saved.active = await save("Active regulars", { stage: "active" }, "", ["loyalty"]);
    saved.flaky = await save("Active via flaky receiver", { stage: "active" }, "/fail-first/1");
    saved.down = await save("Active via receiver down", { stage: "active" }, "/fail-first/5");
    saved.gone = await save("Lapsed via retired receiver", { stage: "lapsed" }, "/status/410");
    saved.plain = await save("Top tier, no webhook", { valueTier: "top" }, null);

    const run = await runNightly(firstRunAt);
    firstRunId = run.runId;
    expect(run.status).toBe("done");
    expect(run.detail).toMatchObject({ audiences: { audiences: 5, delivered: 2, failed: 2 } });

    const active = await listed("stage=active");
    activeAtFirstRun = ids(active);
    expect(activeAtFirstRun.size).toBeGreaterThan(pageSize);

    const requests = await received(saved.active.box);
    expect(requests.every((request) => request.status === 204)).toBe(true);
    const pages = payloads(requests, saved.active);
    expect(pages).toHaveLength(Math.ceil(activeAtFirstRun.size / pageSize));
    expect(pages.map((page) => page.page)).toEqual(pages.map((_, index) => index + 1));
    expect(new Set(requests.map((request) => request.headers["webhook-id"])).size).toBe(requests.length);
    for (const page of pages) {
      expect(page).toMatchObject({ audience: { id: saved.active.id, name: "Active regulars" }, runId: run.runId });
      expect(page.pages).toBe(pages.length);
      expect(page.left).toEqual([]);
      expect(page.joined.length).toBeLessThanOrEqual(pageSize);
    }
    const joined = pages.flatMap((page) => page.joined);
    expect(new Set(joined.map((row) => String(row.customerId)))).toEqual(activeAtFirstRun);
    // Rows as in the CSV export; loyalty is dropped because this deployment's worker has not opted in.
    const byId = new Map(active.map((row) => [row.customerId, row]));
    for (const row of joined) {
      expect(Object.keys(row)).toEqual([...csvHeader]);
      const listedRow = byId.get(String(row.customerId));
      expect(row).toMatchObject({
        stage: "active",
        clv12: listedRow?.clv12,
        probabilityAlive: listedRow?.probabilityAlive,
        overdueRatio: listedRow?.overdueRatio,
        expectedNextOrderAt: listedRow?.expectedNextOrderAt,
        offerGuidance: listedRow?.offerGuidance,
      });
    }
    // A body changed on the way is refused by the receiver's check.
    const [first] = requests;
    if (!first) throw new Error("no request");
    expect(() => new Webhook(saved.active.secret).verify(`${first.body} `, first.headers)).toThrow();

    expect(await audience(saved.active.id)).toMatchObject({
      size: activeAtFirstRun.size,
      lastDelivery: {
        outcome: "delivered",
        runId: run.runId,
        statusCode: 204,
        error: null,
        joined: activeAtFirstRun.size,
        left: 0,
      },
    });
  });

  it("retries a page that failed with the same delivery id, and delivers it", async () => {
    const requests = await received(saved.flaky.box);
    expect(requests.map((request) => request.status).slice(0, 2)).toEqual([500, 204]);
    const [failed, retried] = requests;
    expect(retried?.headers["webhook-id"]).toBe(failed?.headers["webhook-id"]);
    expect(retried?.body).toBe(failed?.body);
    const joined = payloads(
      requests.filter((r) => r.status === 204),
      saved.flaky,
    ).flatMap((page) => page.joined);
    expect(new Set(joined.map((row) => String(row.customerId)))).toEqual(activeAtFirstRun);
    expect((await audience(saved.flaky.id)).lastDelivery).toMatchObject({ outcome: "delivered", statusCode: 204 });
  });

  it("records a receiver that keeps failing on its audience, without failing the run or the other audiences", async () => {
    const down = await received(saved.down.box);
    expect(down.map((request) => request.status)).toEqual([500, 500, 500, 500, 500]);
    expect(new Set(down.map((request) => request.headers["webhook-id"])).size).toBe(1);
    expect(await audience(saved.down.id)).toMatchObject({
      size: activeAtFirstRun.size,
      lastDelivery: {
        outcome: "failed",
        runId: firstRunId,
        statusCode: 500,
        error: expect.stringMatching(/HTTP 500.*attempt 5 of 5/),
      },
    });
    // A 410 says the receiver will never take it: tried once, not retried.
    const gone = await received(saved.gone.box);
    expect(gone.map((request) => request.status)).toEqual([410]);
    expect((await audience(saved.gone.id)).lastDelivery).toMatchObject({
      outcome: "failed",
      statusCode: 410,
      error: expect.stringMatching(/HTTP 410/),
    });
    // Without a webhook an audience is only sized, from the same list the console shows.
    expect(await audience(saved.plain.id)).toMatchObject({
      size: (await listed("valueTier=top")).length,
      lastDelivery: null,
    });
  });

  it("sizes an audience when it is saved and when its filters change, from the scores in force", async () => {
    const response = await optedIn.call(
      "POST",
      "/v1/admin/audiences",
      { name: "Active now", filters: { stage: "active" } },
      adminKey,
    );
    expect(response.status).toBe(201);
    const created = audienceWithSecretResponseSchema.parse(await response.json()).data;
    expect(activeAtFirstRun.size).toBeGreaterThan(0);
    expect([created.size, created.sizedAt]).toEqual([activeAtFirstRun.size, expect.any(String)]);
    const changed = await optedIn.call(
      "PATCH",
      `/v1/admin/audiences/${created.id}`,
      { filters: { valueTier: "top" } },
      adminKey,
    );
    expect(changed.status).toBe(200);
    const top = (await listed("valueTier=top")).length;
    expect(top).not.toBe(activeAtFirstRun.size);
    expect(audienceResponseSchema.parse(await changed.json()).data.size).toBe(top);
    // A change that keeps the filters keeps the size.
    const renamed = await optedIn.call("PATCH", `/v1/admin/audiences/${created.id}`, { name: "Top now" }, adminKey);
    expect(audienceResponseSchema.parse(await renamed.json()).data.size).toBe(top);
    expect((await optedIn.call("DELETE", `/v1/admin/audiences/${created.id}`, undefined, adminKey)).status).toBe(204);
  });

  it("POSTs who joined and who left since the previous delivery at the next run", async () => {
    expect((await optedIn.postOrders(comebacks())).status).toBe(200);
    const before = (await received(saved.active.box)).length;
    const run = await runNightly(secondRunAt);
    expect(run.status).toBe("done");
    const activeNow = ids(await listed("stage=active"));
    const expectedJoined = minus(activeNow, activeAtFirstRun);
    const expectedLeft = minus(activeAtFirstRun, activeNow);
    expect(expectedJoined.size).toBeGreaterThan(0);
    expect(expectedLeft.size).toBeGreaterThan(0);

    const pages = payloads((await received(saved.active.box)).slice(before), saved.active);
    expect(pages.every((page) => page.runId === run.runId)).toBe(true);
    // Each run numbers its pages from 1.
    expect(pages.map((page) => page.page)).toEqual(pages.map((_, index) => index + 1));
    expect(new Set(pages.flatMap((page) => page.joined.map((row) => String(row.customerId))))).toEqual(expectedJoined);
    expect(new Set(pages.flatMap((page) => page.left))).toEqual(expectedLeft);
    expect(await audience(saved.active.id)).toMatchObject({
      size: activeNow.size,
      lastDelivery: { outcome: "delivered", runId: run.runId, joined: expectedJoined.size, left: expectedLeft.size },
    });

    // The receiver that was down at the first run was never told anything: it now gets the whole audience.
    const caughtUp = (await received(saved.down.box)).filter((request) => request.status === 204);
    const downPages = payloads(caughtUp, saved.down);
    expect(new Set(downPages.flatMap((page) => page.joined.map((row) => String(row.customerId))))).toEqual(activeNow);
    expect(downPages.flatMap((page) => page.left)).toEqual([]);
    expect((await audience(saved.down.id)).lastDelivery).toMatchObject({ outcome: "delivered", runId: run.runId });
  });

  it("adds the audience's match keys as columns where the deployment opted in", async () => {
    const withKeys = await save("Active with loyalty", { stage: "active" }, "", ["loyalty"]);
    await storeMatchKeysInShards();
    await syncSteps("run-match-keys", optedInEnv);
    const joined = payloads(await received(withKeys.box), withKeys).flatMap((page) => page.joined);
    const active = ids(await listed("stage=active"));
    expect(new Set(joined.map((row) => String(row.customerId)))).toEqual(active);
    for (const row of joined) {
      expect(Object.keys(row)).toEqual([...csvHeader, "loyalty"]);
      expect(row.loyalty).toMatch(/^AUD\d+$/);
    }
  });
  it("sends nothing when nobody joined or left, and says so on the audience", async () => {
    const before = (await received(saved.active.box)).length;
    await syncSteps("run-unchanged", env);
    expect(await received(saved.active.box)).toHaveLength(before);
    expect((await audience(saved.active.id)).lastDelivery).toMatchObject({
      outcome: "no_changes",
      runId: "run-unchanged",
      joined: 0,
      left: 0,
    });
  });

  it("lists a member's audiences in their export", async () => {
    const [member] = await listed("stage=active");
    if (!member) throw new Error("no active customer");
    const exported = await api.call("GET", `/v1/customers/${member.customerId}/export`, undefined, adminKey);
    expect(exported.status).toBe(200);
    const { audiences } = ((await exported.json()) as { data: { audiences: unknown[] } }).data;
    expect(audiences).toContainEqual({ audienceId: saved.active.id, name: "Active regulars", delivered: true });
  });

  it("tells the receiver that an erased customer left", async () => {
    const [member] = await listed("stage=active");
    if (!member) throw new Error("no active customer");
    expect((await api.call("DELETE", `/v1/customers/${member.customerId}`, undefined, adminKey)).status).toBe(200);
    const before = (await received(saved.active.box)).length;
    await syncSteps("run-after-erasure", env);
    const pages = payloads((await received(saved.active.box)).slice(before), saved.active);
    expect(pages).toHaveLength(1);
    expect(pages[0]).toMatchObject({ runId: "run-after-erasure", joined: [], left: [member.customerId] });
  });

  it("starts over at a new webhook URL: its receiver gets every member as joined", async () => {
    const box = `moved-${crypto.randomUUID().slice(0, 8)}`;
    const moved = await api.call(
      "PATCH",
      `/v1/admin/audiences/${saved.active.id}`,
      { webhookUrl: `${inject("webhookReceiver")}/hooks/${box}` },
      adminKey,
    );
    expect(moved.status).toBe(200);
    await syncSteps("run-after-move", env);
    const joined = payloads(await received(box), saved.active).flatMap((page) => page.joined);
    expect(new Set(joined.map((row) => String(row.customerId)))).toEqual(ids(await listed("stage=active")));
  });

  it("checks the URL again before delivering: one no longer allowed is recorded and not called", async () => {
    const before = (await received(saved.flaky.box)).length;
    const { AUDIENCE_WEBHOOKS_ALLOW_LOCAL: _, ...withoutLocal } = env;
    const summary = await syncSteps("run-without-local", withoutLocal as Env);
    expect(summary).toMatchObject({ delivered: 0, failed: summary.audiences - 1 });
    expect(await received(saved.flaky.box)).toHaveLength(before);
    expect((await audience(saved.flaky.id)).lastDelivery).toMatchObject({
      outcome: "failed",
      runId: "run-without-local",
      statusCode: null,
      error: expect.stringMatching(/not sent: the webhook URL must use https/),
    });
  });

  it("keeps a run that started earlier from making a later run tell current members they left", async () => {
    const racing = await save("Racing runs", { stage: "active" }, "");
    await syncSteps("run-race-seed", env); // Every member told once, as joined.
    const before = (await received(racing.box)).length;
    expect(payloads(await received(racing.box), racing).flatMap((page) => page.joined).length).toBeGreaterThan(0);
    const db = d1Db();
    type Run = (ctx: { attempt: number }) => unknown;
    let earlierMarks: Run | undefined;
    // The later run: the earlier run's marks land between its own marks and its look at who changed.
    const later = {
      do: async (name: string, _config: unknown, run: Run) => {
        if (name === `audience ${racing.id}: changes`) await earlierMarks?.({ attempt: 1 });
        return run({ attempt: 1 });
      },
    };
    // The earlier run: it has started its sync (the smaller sequence number) when the later one runs.
    const earlier = {
      do: async (name: string, _config: unknown, run: Run) => {
        if (name === membersStepName(racing.id, 1) && !earlierMarks) {
          earlierMarks = run;
          await syncAudiencesSteps(later as unknown as WorkflowStep, db, env, "run-race-later", pageSize, members());
        }
        return run({ attempt: 1 });
      },
    };
    await syncAudiencesSteps(earlier as unknown as WorkflowStep, db, env, "run-race-earlier", pageSize, members());
    expect(earlierMarks).toBeDefined();
    // Nobody joined or left between the runs: no receiver page may say anyone left.
    const pages = payloads((await received(racing.box)).slice(before), racing);
    expect(pages.flatMap((page) => page.left)).toEqual([]);
    expect(pages.flatMap((page) => page.joined)).toEqual([]);
    // And the next run still finds every member where they were.
    await syncSteps("run-race-after", env);
    expect((await received(racing.box)).slice(before)).toHaveLength(pages.length);
    expect((await audience(racing.id)).lastDelivery).toMatchObject({ outcome: "no_changes", runId: "run-race-after" });
  });

  it("resumes a retried delivery step at the page that failed, under that page's number and delivery id", async () => {
    // Small pages and steps: the members are marked over several steps, and the changes POSTed 3 pages
    // a step; the receiver refuses the second page once, in the middle of the first step.
    const midStep = await save("Active, one page refused", { stage: "active" }, "/fail-at/2");
    // (The other audiences are synced too; the one whose receiver answers 410 fails as before.)
    const { names, receivedAfter } = await retriedSyncSteps(
      "run-mid-step",
      { ...defaultAudiencePaging, markPageSize: 7, markPagesPerStep: 2, deliveryPagesPerStep: 3 },
      smallPage,
      undefined,
      midStep.box,
    );
    // The first delivery step ended once its retry got page 2 accepted: pages 1 and 2 (2 tried twice).
    expect(receivedAfter.get(deliveryStepName(midStep.id, 1))).toBe(3);
    const active = ids(await listed("stage=active"));
    const requests = await received(midStep.box);
    expect(requests.map((request) => request.status).slice(0, 3)).toEqual([204, 500, 204]);
    const [, refused, resent] = requests;
    expect(resent?.headers["webhook-id"]).toBe(refused?.headers["webhook-id"]);
    expect(resent?.body).toBe(refused?.body);
    // A delivery id names one page's members, however often it is sent.
    expectOneBodyPerId(requests);
    // The accepted pages are numbered 1, 2, 3, … and name every member once.
    const pages = payloads(
      requests.filter((request) => request.status === 204),
      midStep,
    );
    expect(pages.length).toBe(Math.ceil(active.size / smallPage));
    expect(pages.length).toBeGreaterThan(5);
    expect(pages.map((page) => page.page)).toEqual(pages.map((_, index) => index + 1));
    expect(pages.every((page) => page.pages === pages.length)).toBe(true);
    const joined = pages.flatMap((page) => page.joined.map((row) => String(row.customerId)));
    expect(joined).toHaveLength(active.size);
    expect(new Set(joined)).toEqual(active);
    // Steps of several pages each: the members' reads of 7 (a part's last read may be empty) 2 a
    // step; the changes 3 pages a step, except the first: its retry got page 2 accepted and ended it
    // there, so page 3 has tries of its own; the last step finds nothing more to send.
    const own = names.filter((name) => name.startsWith(`audience ${midStep.id}:`));
    const markSteps = own.filter((name) => name.includes(": mark "));
    expect(markSteps.length).toBeGreaterThan(1);
    expect(markSteps.length).toBeLessThanOrEqual(Math.ceil((active.size / 7 + members().partitions) / 2));
    expect(markSteps).toEqual(markSteps.map((_, k) => membersStepName(midStep.id, k + 1)));
    expect(own.filter((name) => name.includes(": deliver "))).toEqual(
      Array.from({ length: 1 + Math.floor((pages.length - 2) / 3) + 1 }, (_, k) => deliveryStepName(midStep.id, k + 1)),
    );
    expect(await audience(midStep.id)).toMatchObject({
      size: active.size,
      lastDelivery: { outcome: "delivered", runId: "run-mid-step", joined: active.size, left: 0 },
    });
    expect(defaultAudiencePaging.deliveryPagesPerStep).toBeGreaterThan(1);
  });

  it("lets a page go rather than send it again when its customers were erased before the retry (its acceptance not recorded)", async () => {
    const held = await save("Active, acceptance lost", { stage: "active" }, "");
    const db = env.DB;
    // The first acceptance of this audience's pages fails in D1 after the receiver took the page.
    await db.exec("CREATE TABLE probe_fail (n INTEGER)");
    await db.exec("INSERT INTO probe_fail VALUES (1)");
    await db
      .prepare(
        `CREATE TRIGGER probe_lost_acceptance BEFORE UPDATE OF sync_pages_sent ON audiences
         WHEN NEW.id = '${held.id}' AND NEW.sync_pages_sent > OLD.sync_pages_sent AND (SELECT count(*) FROM probe_fail) > 0
         BEGIN SELECT RAISE(ABORT, 'probe: acceptance lost'); END`,
      )
      .run();
    let erased: string[] = [];
    try {
      await retriedSyncSteps(
        "run-lost-acceptance",
        { ...defaultAudiencePaging, deliveryPagesPerStep: 3 },
        smallPage,
        async (error) => {
          if (!String(error).includes("probe")) return;
          await db.exec("DELETE FROM probe_fail");
          // Before the retry, the customers of the page the receiver took are erased from the scores.
          const [taken] = payloads(await received(held.box), held);
          erased = (taken?.joined ?? []).map((row) => String(row.customerId));
          for (const customerId of erased)
            await storeRun("DELETE FROM customer_scores WHERE customer_id = ?", customerId);
        },
      );
    } finally {
      await db.exec("DROP TRIGGER IF EXISTS probe_lost_acceptance");
      await db.exec("DROP TABLE IF EXISTS probe_fail");
    }
    const requests = await received(held.box);
    expect(erased.length).toBeGreaterThan(0);
    // The held page names only erased customers: it is not sent again (their rows would go out after
    // the erasure); its number is spent, and the pages after it follow on. No id named other customers.
    const [first, ...later] = requests;
    expect(first?.body).toContain(erased[0]);
    for (const request of later) for (const customerId of erased) expect(request.body).not.toContain(customerId);
    expectOneBodyPerId(requests);
    const pages = payloads(requests, held);
    expect(pages.map((page) => page.page)).toEqual(pages.map((_, index) => index + 1));
    // The erased customers were told they joined, and stay members until a run tells them they left.
    const kept = await db
      .prepare("SELECT customer_id AS customerId FROM audience_members WHERE audience_id = ? AND delivered = 1")
      .bind(held.id)
      .all<{ customerId: string }>();
    const keptIds = new Set(kept.results.map((row) => row.customerId));
    for (const customerId of erased) expect(keptIds.has(customerId)).toBe(true);
    const told = new Set(pages.flatMap((page) => page.joined.map((row) => String(row.customerId))));
    expect(keptIds).toEqual(told);
  });

  it("records the receiver's answer when the step that delivered is run again and finds nothing left", async () => {
    const once = await save("Active, step result lost", { stage: "active" }, "");
    await retriedSyncSteps(
      "run-result-lost",
      defaultAudiencePaging,
      pageSize,
      undefined,
      undefined,
      deliveryStepName(once.id, 1),
    );
    const active = ids(await listed("stage=active"));
    const requests = await received(once.box);
    // Every page was sent once, in the step's first try: its second try found nothing left to send.
    expect(requests.length).toBe(Math.ceil(active.size / pageSize));
    expect(requests.length).toBeLessThanOrEqual(defaultAudiencePaging.deliveryPagesPerStep);
    expect(new Set(requests.map((request) => request.headers["webhook-id"])).size).toBe(requests.length);
    expect(requests.every((request) => request.status === 204)).toBe(true);
    expect(await audience(once.id)).toMatchObject({
      lastDelivery: { outcome: "delivered", runId: "run-result-lost", statusCode: 204, joined: active.size, left: 0 },
    });
  });

  it("forgets a deleted audience's members at the next run, a page at a time, and leaves them out of exports meanwhile", async () => {
    const gone = await save("Active, deleted", { stage: "active" }, "");
    await retriedSyncSteps("run-before-delete", defaultAudiencePaging);
    const db = env.DB;
    const count = async (id: string) =>
      (
        await db
          .prepare("SELECT count(*) AS n FROM audience_members WHERE audience_id = ?")
          .bind(id)
          .first<{ n: number }>()
      )?.n ?? 0;
    const members = await count(gone.id);
    expect(members).toBe(ids(await listed("stage=active")).size);
    const [member] = await listed("stage=active");
    expect(await exportText(member?.customerId)).toContain(gone.id);
    // The route answers at once: the members stay until the run, out of the member's export.
    expect((await api.call("DELETE", `/v1/admin/audiences/${gone.id}`, undefined, adminKey)).status).toBe(204);
    expect(await count(gone.id)).toBe(members);
    expect(await exportText(member?.customerId)).not.toContain(gone.id);
    const { names } = await retriedSyncSteps("run-after-delete", {
      ...defaultAudiencePaging,
      purgePageSize: 4,
      purgePagesPerStep: 2,
    });
    expect(await count(gone.id)).toBe(0);
    expect((await db.prepare("SELECT count(*) AS n FROM audience_member_purges").first<{ n: number }>())?.n).toBe(0);
    // Pages of 4, two a step (the last page, short, lets the request go), before the audiences are synced.
    const purges = names.filter((name) => name.startsWith("audiences: purge "));
    expect(purges).toEqual(
      Array.from({ length: Math.ceil((Math.floor(members / 4) + 1) / 2) }, (_, k) => purgeStepName(k + 1)),
    );
    expect(names.indexOf("audiences")).toBe(purges.length);
  });

  it("does not start an audience's sync while the members its old receiver was told of are still to be forgotten", async () => {
    const moving = await save("Active, re-pointed", { stage: "active" }, "");
    await retriedSyncSteps("run-before-repoint", defaultAudiencePaging);
    const [member] = await listed("stage=active");
    expect(await exportText(member?.customerId)).toContain(moving.id);
    const repointed = await api.call(
      "PATCH",
      `/v1/admin/audiences/${moving.id}`,
      { webhookUrl: `${inject("webhookReceiver")}/hooks/${moving.box}-new` },
      adminKey,
    );
    expect(repointed.status).toBe(200);
    // What the old receiver was told is no longer the audience's: the export leaves it out until the run.
    expect(await exportText(member?.customerId)).not.toContain(moving.id);
    const db = d1Db();
    expect(await startSync(db, moving.id)).toBeUndefined();
    while ((await purgeMembers(db, 1_000, 1)).left);
    expect(await startSync(db, moving.id)).toBeGreaterThan(0);
  });

  it("syncs the other audiences when forgetting a re-pointed one's members keeps failing, and leaves that one to the next run", async () => {
    const moving = await save("Active, re-pointed, purge failing", { stage: "active" }, "");
    const steady = await save("Active, steady beside a failing purge", { stage: "active" }, "");
    await retriedSyncSteps("run-before-failing-purge", defaultAudiencePaging);
    const path = { webhookUrl: `${inject("webhookReceiver")}/hooks/${moving.box}-new` };
    expect((await api.call("PATCH", `/v1/admin/audiences/${moving.id}`, path, adminKey)).status).toBe(200);
    const names: string[] = [];
    const step = {
      async do(name: string, _config: unknown, run: (ctx: { attempt: number }) => unknown) {
        names.push(name);
        if (name.startsWith("audiences: purge ")) throw new Error("D1_ERROR: simulated outage");
        return run({ attempt: 1 });
      },
    };
    const summary = await syncAudiencesSteps(
      step as unknown as WorkflowStep,
      d1Db(),
      env,
      "run-failing-purge",
      pageSize,
      members(),
    );
    expect(names[0]).toBe(purgeStepName(1));
    expect(summary.audiences).toBeGreaterThanOrEqual(2);
    expect((await audience(steady.id)).lastDelivery).toMatchObject({
      runId: "run-failing-purge",
      outcome: "no_changes",
    });
    // The re-pointed audience waits for its purge: nothing was sent to its new receiver.
    expect(await received(`${moving.box}-new`)).toHaveLength(0);
    expect((await audience(moving.id)).lastDelivery?.runId).not.toBe("run-failing-purge");
    // The next run, with D1 back, forgets the old members and syncs it.
    await retriedSyncSteps("run-after-failing-purge", defaultAudiencePaging);
    expect((await audience(moving.id)).lastDelivery).toMatchObject({
      runId: "run-after-failing-purge",
      outcome: "delivered",
    });
  });

  it("lets a try of a delivery step whose page another try took meanwhile go on: the run is not given up", async () => {
    const overlapping = await save("Active, overlapping tries", { stage: "active" }, "");
    const db = d1Db();
    const dialect = new SQLiteAsyncDialect();
    let secondTry: (() => Promise<unknown>) | undefined;
    const answers: unknown[] = [];
    // A retry that starts while the first try still runs (Workflows may retry a step that timed out):
    // it holds, sends and has accepted page 1 between the first try's read and its hold of that page.
    const racing = new Proxy(db, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (property !== "run") return typeof value === "function" ? value.bind(target) : value;
        return async (query: SQL) => {
          const run = secondTry;
          if (run && /SET sync_pending_page =/.test(dialect.sqlToQuery(query).sql)) {
            secondTry = undefined;
            answers.push(await run());
          }
          return target.run(query);
        };
      },
    });
    type Run = (ctx: { attempt: number }) => unknown;
    const step = {
      async do(name: string, _config: unknown, run: Run) {
        if (name !== deliveryStepName(overlapping.id, 1)) return run({ attempt: 1 });
        secondTry = async () => run({ attempt: 2 });
        const first = await run({ attempt: 1 });
        answers.push(first);
        return first;
      },
    };
    await syncAudiencesSteps(step as unknown as WorkflowStep, racing, env, "run-overlapping", pageSize, members());
    expect(answers).toHaveLength(2);
    expect(answers).not.toContain("superseded");
    expect((await audience(overlapping.id)).lastDelivery).toMatchObject({
      runId: "run-overlapping",
      outcome: "delivered",
    });
    // Each page went out under one delivery id, however many tries sent it, and told every member once.
    const requests = await received(overlapping.box);
    const firsts = new Map(requests.map((request) => [request.headers["webhook-id"], request]));
    for (const request of requests) expect(request.body).toBe(firsts.get(request.headers["webhook-id"])?.body);
    const joined = payloads([...firsts.values()], overlapping).flatMap((page) =>
      page.joined.map((row) => String(row.customerId)),
    );
    expect(joined.length).toBeGreaterThan(0);
    expect(new Set(joined).size).toBe(joined.length);
    expect(joined.length).toBe((await listed("stage=active")).length);
  });

  it("sends the page another try holds under a number, not one of its own: one delivery id, one body", async () => {
    const overlapping = await save("Active, page held by another try", { stage: "active" }, "");
    const url = `${inject("webhookReceiver")}/hooks/${overlapping.box}`;
    const db = d1Db();
    const dialect = new SQLiteAsyncDialect();
    let theirs: PendingPage | undefined;
    // Between this try's read and its hold of page 1, another try holds page 1 built from its own read
    // (here: the same members in another order) and has not had it accepted yet.
    const racing = new Proxy(db, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (property !== "run") return typeof value === "function" ? value.bind(target) : value;
        return async (query: SQL) => {
          const { sql: text, params } = dialect.sqlToQuery(query);
          if (!theirs && /SET sync_pending_page =/.test(text) && params[1] === overlapping.id) {
            const mine = JSON.parse(String(params[0])) as PendingPage;
            const body = JSON.parse(mine.body) as { joined: unknown[] };
            theirs = { ...mine, body: JSON.stringify({ ...body, joined: [...body.joined].reverse() }) };
            expect(theirs.body).not.toBe(mine.body);
            expect(await holdPage(db, overlapping.id, theirs, url)).toBe(true);
          }
          return target.run(query);
        };
      },
    });
    await syncAudiencesSteps(onceEach as unknown as WorkflowStep, racing, env, "run-page-held", pageSize, members());
    expect(theirs).toBeDefined();
    const requests = await received(overlapping.box);
    const first = requests.filter((request) => request.headers["webhook-id"] === `${overlapping.id}_run-page-held_1`);
    expect(first.map((request) => request.body)).toEqual([theirs!.body]);
    expect((await audience(overlapping.id)).lastDelivery).toMatchObject({
      runId: "run-page-held",
      outcome: "delivered",
    });
  });

  it("keeps a superseded run's page from being sent or forgetting a member, and counts a page accepted twice once", async () => {
    const raced = await save("Active, raced", { stage: "active" }, "");
    await retriedSyncSteps("run-before-race", defaultAudiencePaging);
    const db = d1Db();
    const [member] = await listed("stage=active");
    const customerIds = [String(member?.customerId)];
    const state = async () => ({
      row: await env.DB.prepare(
        "SELECT sync_seq AS seq, sync_pages_sent AS sent, sync_pending_page AS pending FROM audiences WHERE id = ?",
      )
        .bind(raced.id)
        .first<{ seq: number; sent: number; pending: string | null }>(),
      members: (
        await env.DB.prepare("SELECT count(*) AS n FROM audience_members WHERE audience_id = ?")
          .bind(raced.id)
          .first<{ n: number }>()
      )?.n,
    });
    const before = await state();
    const stale = before.row?.seq ?? 0;
    const later = await startSync(db, raced.id);
    expect(later).toBe(stale + 1);
    const delivered = async () =>
      (
        await env.DB.prepare("SELECT delivered FROM audience_members WHERE audience_id = ? AND customer_id = ?")
          .bind(raced.id, customerIds[0])
          .first<{ delivered: number }>()
      )?.delivered;
    expect(await delivered()).toBe(1);
    // The earlier run's page is not kept, so not sent; were it accepted (its POST in flight as the later
    // run started), the member it names as left stays, untold, for the later run to tell again.
    const page = { seq: stale, page: 1, kind: "left" as const, customerIds, body: "{}" };
    const url = `${inject("webhookReceiver")}/hooks/${raced.box}`;
    expect(await holdPage(db, raced.id, page, url)).toBe(false);
    await pageAccepted(db, raced.id, page, 204);
    expect(await state()).toEqual({ row: { seq: stale + 1, sent: 0, pending: null }, members: before.members });
    expect(await delivered()).toBe(0);
    // The later run's page 1 is kept and accepted once; a second acceptance of it changes nothing.
    const current = { ...page, seq: stale + 1 };
    // Not for a receiver the audience no longer has.
    expect(await holdPage(db, raced.id, current, `${url}-old`)).toBe(false);
    expect(await holdPage(db, raced.id, current, url)).toBe(true);
    await pageAccepted(db, raced.id, current, 204);
    expect(await state()).toEqual({
      row: { seq: stale + 1, sent: 1, pending: null },
      members: (before.members ?? 0) - 1,
    });
    await pageAccepted(db, raced.id, current, 204);
    expect(await state()).toEqual({
      row: { seq: stale + 1, sent: 1, pending: null },
      members: (before.members ?? 0) - 1,
    });
  });

  it("lets a held page go when a customer it names is erased: its number is skipped, and they are told they left", async () => {
    const refused = await save("Active, receiver retired", { stage: "active" }, "/status/410");
    await syncSteps("run-held-page", env);
    const heldRow = () =>
      env.DB.prepare("SELECT sync_pending_page AS pending, sync_pages_sent AS sent FROM audiences WHERE id = ?")
        .bind(refused.id)
        .first<{ pending: string | null; sent: number }>();
    const before = await heldRow();
    // The receiver refused page 1 for good: it is held, rows and all, for the next try.
    const page = JSON.parse(before?.pending ?? "null") as { page: number; customerIds: string[]; body: string } | null;
    expect(page?.page).toBe(1);
    const erasedId = String(page?.customerIds[0]);
    const rows = (JSON.parse(page?.body ?? "{}") as { joined: { customerId: string; clv12: number }[] }).joined;
    expect(rows.find((row) => row.customerId === erasedId)?.clv12).toBeGreaterThan(0);
    const erased = await api.call("DELETE", `/v1/customers/${erasedId}`, undefined, adminKey);
    expect(erased.status).toBe(200);
    const { deleted } = ((await erased.json()) as { data: { deleted: Record<string, number> } }).data;
    expect(deleted.held_audience_pages).toBeGreaterThanOrEqual(1);
    // No page held anywhere names them now; this one's number is not used again.
    const naming = await env.DB.prepare("SELECT count(*) AS n FROM audiences WHERE instr(sync_pending_page, ?) > 0")
      .bind(erasedId)
      .first<{ n: number }>();
    expect(naming?.n).toBe(0);
    expect(await heldRow()).toEqual({ pending: null, sent: (before?.sent ?? 0) + 1 });
    // Counted as told they joined, so a run tells the receiver, which may have taken the page, they left.
    const member = await env.DB.prepare(
      "SELECT delivered FROM audience_members WHERE audience_id = ? AND customer_id = ?",
    )
      .bind(refused.id, erasedId)
      .first<{ delivered: number }>();
    expect(member?.delivered).toBe(1);
  });

  it("leaves to the next run the pages of a receiver that fails every first try, past the steps retries may add", async () => {
    const flaky = await save("Active, every first try refused", { stage: "active" }, "/fail-odd");
    const paging = { ...defaultAudiencePaging, deliveryPagesPerStep: 3, retriedDeliverySteps: 2 };
    // One member a page.
    const { summary, names } = await retriedSyncSteps("run-flaky", paging, 1);
    const pages = ids(await listed("stage=active")).size;
    const allowed = Math.ceil(pages / 3) + 1 + 2;
    expect(pages).toBeGreaterThan(allowed);
    // Each page needed its retry, which ended its step: one page a step, until the steps allowed ran out.
    const own = names.filter((name) => name.startsWith(`audience ${flaky.id}:`));
    expect(own.filter((name) => name.includes(": deliver "))).toEqual(
      Array.from({ length: allowed }, (_, k) => deliveryStepName(flaky.id, k + 1)),
    );
    const accepted = (await received(flaky.box)).filter((request) => request.status === 204);
    expect(accepted).toHaveLength(allowed);
    expect((await audience(flaky.id)).lastDelivery).toMatchObject({
      outcome: "failed",
      runId: "run-flaky",
      statusCode: 204,
      error: `stopped after ${allowed} delivery steps (${allowed} of ${pages} pages accepted): the receiver needed retries on too many pages; the next run sends the rest`,
    });
    expect(own.at(-1)).toBe(`audience ${flaky.id}: stopped`);
    // The other audiences were delivered as ever.
    expect(summary.delivered).toBeGreaterThan(0);
  });

  it("records as delivered a sync whose last page got through on a retry in the last step allowed", async () => {
    const flaky = await save("Active, every first try refused, just enough steps", { stage: "active" }, "/fail-odd");
    const pages = ids(await listed("stage=active")).size;
    // One member a page, one page a step (each needs its retry): exactly as many steps as pages.
    const retried = pages - Math.ceil(pages / 3) - 1;
    expect(retried).toBeGreaterThan(0);
    const paging = { ...defaultAudiencePaging, deliveryPagesPerStep: 3, retriedDeliverySteps: retried };
    const { names } = await retriedSyncSteps("run-just-enough", paging, 1);
    const own = names.filter((name) => name.startsWith(`audience ${flaky.id}:`));
    expect(own.filter((name) => name.includes(": deliver "))).toHaveLength(pages);
    expect((await received(flaky.box)).filter((request) => request.status === 204)).toHaveLength(pages);
    expect((await audience(flaky.id)).lastDelivery).toMatchObject({
      outcome: "delivered",
      runId: "run-just-enough",
      statusCode: 204,
      error: null,
      joined: pages,
    });
  });

  it("records the error that stopped an audience's sync, not a page's failure the run got past", async () => {
    const late = await save("Active, stopped after a retry", { stage: "active" }, "/fail-at/1");
    // The first POST fails once and gets through on its retry; then the delivery cannot be recorded.
    await env.DB.prepare(
      `CREATE TRIGGER probe_record_fails BEFORE UPDATE OF last_delivery_outcome ON audiences
       WHEN NEW.id = '${late.id}' AND NEW.last_delivery_outcome = 'delivered'
       BEGIN SELECT RAISE(ABORT, 'probe: the delivery could not be recorded'); END`,
    ).run();
    try {
      await retriedSyncSteps("run-stopped-late", defaultAudiencePaging);
    } finally {
      await env.DB.exec("DROP TRIGGER IF EXISTS probe_record_fails");
    }
    expect((await received(late.box)).map((request) => request.status)[0]).toBe(500);
    expect((await audience(late.id)).lastDelivery).toMatchObject({
      outcome: "failed",
      runId: "run-stopped-late",
      statusCode: null,
      error: expect.stringContaining("probe: the delivery could not be recorded"),
    });
  });

  it("records a receiver that cannot be reached in the runtime's words, retryable, without the error's class name", async () => {
    // Port 9 (discard) on the loopback: nothing listens there, so the connection is refused.
    const result = await deliver(
      { url: "http://127.0.0.1:9/hook", secret: "c2VjcmV0", id: "msg_x", body: "{}", agent: "Patron-Audiences/1" },
      new Date(),
    );
    expect(result).toMatchObject({ ok: false, retry: true, statusCode: null });
    expect(result.ok ? "" : result.error).toMatch(/^could not connect: \S/);
    expect(result.ok ? "" : result.error).not.toMatch(/Error:/);
  });
});
