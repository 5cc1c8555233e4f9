// The nightly model job end to end through the admin routes (fit, scoring in pages, segments,
// transitions), a retried scoring step, and the transitions webhook step POSTing a run's transitions
// to a real local receiver (tests/fixtures/webhook-receiver.ts), signed or not. Runs on either store:
// on shards the Workflow scores each shard's customers there, the retried step is a shard's page as
// the sharded job runs it, and the webhook pages are each shard's in turn.
import { SELF } from "cloudflare:test";
import type { WorkflowStep } from "cloudflare:workers";
import { NonRetryableError } from "cloudflare:workflows";
import { Webhook } from "standardwebhooks";
import { describe, expect, inject, it, vi } from "vitest";
import {
  jobRunResponseSchema,
  segmentResponseSchema,
  transitionSummaryResponseSchema,
  transitionsResponseSchema,
} from "../../worker/admin/admin.schemas.ts";
import { roundTo } from "../../worker/core/math/round.ts";
import type { PopulationModels } from "../../worker/core/profile/population-models.ts";
import { customerResponseSchema } from "../../worker/customers/customers.schemas.ts";
import { startRunStep } from "../../worker/jobs/nightly.repo.ts";
import {
  firstTransitionsPosition,
  planTransitions,
  postTransitions,
  pushTransitionsSteps,
  transitionsPlanStepName,
  transitionsSecretProblem,
  transitionsStepName,
} from "../../worker/jobs/transitions.webhook.ts";
import { currentModels } from "../../worker/models/models.repo.ts";
import { adminKey, anOrder, client } from "../fixtures/builders.ts";
import { d1Db, nightlyStore } from "../fixtures/nightly-store.ts";
import { storeRows } from "../fixtures/store-rows.ts";
import type { ReceivedRequest } from "../fixtures/webhook-receiver.types.ts";

const api = client(SELF);
const day = 86_400_000;

/** Customers with known rhythms: regulars still buying, regulars who stopped, one-time buyers. */
function population(asOf: Date) {
  const orders = [];
  for (let c = 0; c < 60; c++) {
    const interval = 10 + (c % 5) * 7; // 10..38 days
    const stopped = c % 3 === 0; // every third regular stopped five intervals ago
    const count = c >= 50 ? 1 : 4 + (c % 4);
    const last = asOf.getTime() - (stopped ? interval * 5 : interval * 0.5) * day;
    for (let k = 0; k < count; k++) {
      orders.push(
        anOrder({
          id: `night-${c}-${k}`,
          channel: k % 2 ? "store" : "web",
          placedAt: new Date(last - (count - 1 - k) * interval * day).toISOString(),
          identifiers: { loyalty: `NIGHT-${c}` },
          lines: [
            {
              productId: `p-${c % 7}`,
              categoryId: `cat-${c % 4}`,
              quantity: 1,
              unitPrice: 20 + c,
              listPrice: c % 2 ? 20 + c : 30 + c,
            },
          ],
        }),
      );
    }
  }
  return orders;
}

async function runNightly(asOf: string) {
  const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ asOf, pageSize: 25 }),
  });
  expect(response.status, await response.clone().text()).toBe(200);
  return jobRunResponseSchema.parse(await response.json()).data;
}

/** The run whose transitions the webhook tests POST, and when it ran (set by the transitions test). */
const transitionsRun = { runId: "", asOf: "" };

describe("nightly model job", () => {
  // Anchored to today: the customer endpoint computes its figures at request time.
  const asOf = new Date();

  it("fits the models, scores every customer in pages and serves the figures on the customer endpoint", async () => {
    const orders = population(asOf);
    for (let i = 0; i < orders.length; i += 200)
      expect((await api.postOrders(orders.slice(i, i + 200))).status).toBe(200);

    const run = await runNightly(asOf.toISOString());
    expect(run.status).toBe("done");
    expect(run.processed).toBe(60);
    expect(run.detail).toMatchObject({ scored: 60, fit: { sampleSize: 60, source: "fitted" } });

    const models = await api.call("GET", "/v1/admin/models", undefined, adminKey);
    const body = (await models.json()) as {
      data: {
        customer: {
          bgnbd: Record<string, number> & { dropoutAtFirstPurchase: boolean };
          source: string;
          fadingBelowProbabilityAlive: number;
        };
      };
    };
    for (const key of ["r", "alpha", "a", "b"]) expect(body.data.customer.bgnbd[key]).toBeGreaterThan(0);
    // The likelier dropout story and the base's expected-F1 fading line are stored with the fit.
    expect(typeof body.data.customer.bgnbd.dropoutAtFirstPurchase).toBe("boolean");
    expect(body.data.customer.fadingBelowProbabilityAlive).toBeGreaterThanOrEqual(0.25);
    expect(body.data.customer.fadingBelowProbabilityAlive).toBeLessThan(1);

    const regular = customerResponseSchema.parse(await (await api.lookup("loyalty", "NIGHT-1")).json()).data;
    const stopped = customerResponseSchema.parse(await (await api.lookup("loyalty", "NIGHT-3")).json()).data;
    const oneTime = customerResponseSchema.parse(await (await api.lookup("loyalty", "NIGHT-55")).json()).data;
    expect(regular.profile?.stage, JSON.stringify(regular.profile)).toBe("active");
    expect(["fading", "lapsed"]).toContain(stopped.profile?.stage);
    expect(stopped.profile?.cadence.overdueRatio).toBeGreaterThan(2);
    expect(regular.profile?.probabilityAlive).toBeGreaterThan(stopped.profile?.probabilityAlive as number);
    expect(regular.profile?.clv12).toBeGreaterThan(stopped.profile?.clv12 as number);
    expect(regular.profile?.clv24).toBeGreaterThan(regular.profile?.clv12 as number);
    // A one-time buyer cannot have stopped under the BG/NBD; under the MBG/NBD they may have.
    if (body.data.customer.bgnbd.dropoutAtFirstPurchase) {
      expect(oneTime.profile?.probabilityAlive).toBeGreaterThan(0);
      expect(oneTime.profile?.probabilityAlive).toBeLessThan(1);
    } else {
      expect(oneTime.profile?.probabilityAlive).toBe(1);
    }
    expect(Date.parse(stopped.profile?.cadence.nextExpectedAt as string)).toBeGreaterThan(Date.now() - day);
    expect(regular.profile?.channelMix.shares.web).toBeGreaterThan(0);
  });

  it("lists a segment from the materialised scores, most valuable first, with counts by stage and tier", async () => {
    const all = segmentResponseSchema.parse(
      await (await api.call("GET", "/v1/admin/segments?limit=1000", undefined, adminKey)).json(),
    ).data;
    expect(all.summary.reduce((sum, row) => sum + row.customers, 0)).toBe(60);
    const clvs = all.customers.map((customer) => customer.clv12);
    expect(clvs).toEqual([...clvs].sort((a, b) => b - a));
    // Rounded as the customer page and the lists show them: money to cents, P(alive) to 4 places.
    for (const customer of all.customers) {
      expect(customer.clv12).toBe(roundTo(customer.clv12, 2));
      expect(customer.clv24).toBe(roundTo(customer.clv24, 2));
      expect(customer.probabilityAlive).toBe(roundTo(customer.probabilityAlive, 4));
    }
    // Filtering by each stage present returns exactly that stage's customers.
    for (const stage of new Set(all.summary.map((row) => row.stage))) {
      const path = `/v1/admin/segments?stage=${stage}&limit=1000`;
      const filtered = segmentResponseSchema.parse(
        await (await api.call("GET", path, undefined, adminKey)).json(),
      ).data;
      const expected = all.summary.filter((row) => row.stage === stage).reduce((sum, row) => sum + row.customers, 0);
      expect(filtered.customers).toHaveLength(expected);
      expect(filtered.customers.every((customer) => customer.stage === stage)).toBe(true);
    }
    expect(new Set(all.summary.map((row) => row.stage)).size).toBeGreaterThan(1);
    expect((await api.call("GET", "/v1/admin/segments?stage=gone", undefined, adminKey)).status).toBe(400);
  });

  it("records stage transitions by each customer's own cadence, as a feed", async () => {
    // A month later with no new orders: regulars on a 10-day rhythm are now overdue.
    const later = new Date(asOf.getTime() + 30 * day).toISOString();
    const run = await runNightly(later);
    Object.assign(transitionsRun, { runId: run.runId, asOf: later });
    const response = await api.call(
      "GET",
      `/v1/admin/transitions?since=${encodeURIComponent(later)}`,
      undefined,
      adminKey,
    );
    expect(response.status).toBe(200);
    const { transitions } = transitionsResponseSchema.parse(await response.json()).data;
    expect(transitions.length).toBeGreaterThan(0);
    expect(transitions.every((t) => t.from !== t.to)).toBe(true);
    expect(transitions.some((t) => t.from === "active" && (t.to === "fading" || t.to === "lapsed"))).toBe(true);

    // Paging: one transition at a time, following `next`, visits each exactly once.
    const seen: number[] = [];
    let after = 0;
    for (let page = 0; page < 500; page++) {
      const path = `/v1/admin/transitions?since=${encodeURIComponent(later)}&limit=1&after=${after}`;
      const body = transitionsResponseSchema.parse(
        await (await api.call("GET", path, undefined, adminKey)).json(),
      ).data;
      seen.push(...body.transitions.map((t) => t.id));
      if (body.next === null) break;
      after = body.next;
    }
    expect(seen).toEqual(transitions.map((t) => t.id));
  });

  it("sums every change since a date by kind and gives the newest first, as the whole feed has them", async () => {
    const since = encodeURIComponent(new Date(asOf.getTime() - 365 * day).toISOString());
    const feed = transitionsResponseSchema.parse(
      await (await api.call("GET", `/v1/admin/transitions?since=${since}&limit=10000`, undefined, adminKey)).json(),
    ).data.transitions;
    // The first scores and the month-later run's changes: more kinds than one, so the sums are tested.
    const expected = new Map<string, number>();
    for (const t of feed) expected.set(`${t.from}→${t.to}`, (expected.get(`${t.from}→${t.to}`) ?? 0) + 1);
    expect(expected.size).toBeGreaterThan(1);
    const response = await api.call(
      "GET",
      `/v1/admin/transitions/summary?since=${since}&recent=3`,
      undefined,
      adminKey,
    );
    expect(response.status).toBe(200);
    const summary = transitionSummaryResponseSchema.parse(await response.json()).data;
    expect(summary.changes).toBe(feed.length);
    expect(new Map(summary.kinds.map((kind) => [`${kind.from}→${kind.to}`, kind.changes]))).toEqual(expected);
    const counts = summary.kinds.map((kind) => kind.changes);
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
    expect(summary.recent).toEqual(feed.slice(-3).reverse());
    // Since the later run's date: only its changes.
    const later = encodeURIComponent(transitionsRun.asOf);
    const laterFeed = transitionsResponseSchema.parse(
      await (await api.call("GET", `/v1/admin/transitions?since=${later}&limit=10000`, undefined, adminKey)).json(),
    ).data.transitions;
    const laterSummary = transitionSummaryResponseSchema.parse(
      await (await api.call("GET", `/v1/admin/transitions/summary?since=${later}`, undefined, adminKey)).json(),
    ).data;
    expect(laterSummary.changes).toBe(laterFeed.length);
    expect(laterSummary.recent).toEqual(laterFeed.slice(-10).reverse());
    for (const bad of ["since=yesterday", `since=${since}&recent=0`, `since=${since}&recent=101`, ""])
      expect((await api.call("GET", `/v1/admin/transitions/summary?${bad}`, undefined, adminKey)).status).toBe(400);
    expect(
      (await api.call("GET", `/v1/admin/transitions/summary?since=${since}`, undefined, "test-api-key")).status,
    ).toBe(401);
  });

  it("rejects bad input and unknown runs, and needs the admin key", async () => {
    expect((await api.call("GET", "/v1/admin/transitions?since=yesterday", undefined, adminKey)).status).toBe(400);
    expect((await api.call("GET", "/v1/admin/jobs/nightly/nope", undefined, adminKey)).status).toBe(404);
    // A run id is a path id as any other: blank or with a control character is bad input, not an unknown run.
    for (const id of ["%20%20", "nope%00"]) {
      const response = await api.call("GET", `/v1/admin/jobs/nightly/${id}`, undefined, adminKey);
      expect(response.status, id).toBe(400);
      expect(((await response.json()) as { error: { issues: { path: string[] }[] } }).error.issues[0]?.path).toEqual([
        "id",
      ]);
    }
    expect((await api.call("POST", "/v1/admin/jobs/nightly", { pageSize: 1 }, adminKey)).status).toBe(400);
    expect((await api.call("GET", "/v1/admin/models", undefined, "test-api-key")).status).toBe(401);
    expect((await api.call("POST", "/v1/admin/jobs/nightly", undefined, null)).status).toBe(401);
  });
});

describe("nightly job steps", () => {
  it("re-running a scoring step after a restart writes the same rows: no double-counted transitions", async () => {
    const db = d1Db();
    const models = (await currentModels(db, new Date())).customer;
    expect(models).not.toBeNull();
    const runId = "restart-test";
    await startRunStep(db, runId, new Date());
    // Pages of the first part (the one database, or shard 0), as the Workflow asks for them, up to the
    // first that records a transition (which customers a page holds depends on their random ids).
    const request = {
      models: models as PopulationModels,
      population: null,
      pageSize: 10,
      runId,
      now: new Date(Date.now() + 90 * day),
      timeZone: "UTC",
      scoredBefore: 0,
    };
    const count = async () =>
      (await storeRows<{ n: number }>("SELECT count(*) AS n FROM stage_transitions WHERE run_id = ?", runId)).reduce(
        (sum, row) => sum + row.n,
        0,
      );
    let page = { ...request, cursor: "" };
    let first = await nightlyStore().scorePage(0, page);
    while (first.transitions === 0 && first.nextCursor !== null) {
      page = { ...request, cursor: first.nextCursor };
      first = await nightlyStore().scorePage(0, page);
    }
    const after = await count();
    expect(first.scored).toBeGreaterThan(0);
    expect(first.transitions).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(0);
    // The same step again, as Workflows would retry it if the isolate died before recording the result.
    await nightlyStore().scorePage(0, page);
    expect(await count()).toBe(after);
  });
});

/** A signing secret made as a receiver's operator would: `whsec_` and base64 of 32 random bytes. */
const newSecret = (bytes = 32) =>
  `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))))}`;

/** A fresh box on the local receiver, and its URL with `suffix` (`/fail-first/1` …). */
function receiverBox(suffix = "") {
  const box = `transitions-${crypto.randomUUID().slice(0, 8)}`;
  return { box, url: `${inject("webhookReceiver")}/hooks/${box}${suffix}` };
}

async function received(box: string): Promise<ReceivedRequest[]> {
  return (await (await fetch(`${inject("webhookReceiver")}/received/${box}`)).json()) as ReceivedRequest[];
}

/** The Standard Webhooks signature worked out here, apart from the worker's code: `v1,` + base64 HMAC-SHA256. */
async function expectedSignature(secret: string, request: ReceivedRequest): Promise<string> {
  const keyBytes = Uint8Array.from(atob(secret.replace(/^whsec_/, "")), (char) => char.charCodeAt(0));
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const signed = `${request.headers["webhook-id"]}.${request.headers["webhook-timestamp"]}.${request.body}`;
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(signed)));
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}

interface TransitionsPage {
  runId: string;
  transitions: { customerId: string; from: string | null; to: string; at: string }[];
}

/** A page's body, checked to be exactly the contract: `{ runId, transitions: [{ customerId, from, to, at }] }`. */
function contractBody(request: ReceivedRequest): TransitionsPage {
  const page = JSON.parse(request.body) as TransitionsPage;
  const transitions = page.transitions.map(({ customerId, from, to, at }) => ({ customerId, from, to, at }));
  expect(request.body).toBe(JSON.stringify({ runId: page.runId, transitions }));
  return page;
}

describe("transitions webhook", () => {
  const pageSize = 3;
  // The receiver is local: plain http to 127.0.0.1, as tests and development may use.
  const settings = (url: string, secret?: string) => ({
    TRANSITIONS_WEBHOOK_URL: url,
    TRANSITIONS_WEBHOOK_SECRET: secret,
    AUDIENCE_WEBHOOKS_ALLOW_LOCAL: "on",
  });
  const plan = () => planTransitions(nightlyStore(), transitionsRun.runId, firstTransitionsPosition, pageSize);
  /** Every page planned and POSTed in one part, as the Workflow's two steps do. */
  const push = async (url: string, secret?: string) => {
    const { pages, next } = await plan();
    return {
      sent: await postTransitions(settings(url, secret), nightlyStore(), transitionsRun.runId, pages, pageSize),
      next,
    };
  };

  it("POSTs every transition of the run, in pages a receiver verifies with the secret alone", async () => {
    expect(transitionsRun.runId).not.toBe("");
    const path = `/v1/admin/transitions?since=${encodeURIComponent(transitionsRun.asOf)}&limit=1000`;
    const feed = transitionsResponseSchema
      .parse(await (await api.call("GET", path, undefined, adminKey)).json())
      .data.transitions.filter((t) => t.runId === transitionsRun.runId);
    expect(feed.length).toBeGreaterThan(pageSize);

    const secret = newSecret();
    const { box, url } = receiverBox();
    const sentAt = Math.floor(Date.now() / 1000);
    expect(await push(url, secret)).toEqual({ sent: feed.length, next: null });
    const requests = await received(box);
    expect(requests).toHaveLength(Math.ceil(feed.length / pageSize));
    const pages = requests.map(contractBody);
    // Every page a delivery id of its own, stable for the run and page.
    expect(requests.map((r) => r.headers["webhook-id"])).toEqual(
      requests.map((_, index) => `transitions_${transitionsRun.runId}_${index + 1}`),
    );
    for (const request of requests) {
      expect(request.headers["user-agent"]).toBe("Patron-Transitions/1");
      expect(Math.abs(Number(request.headers["webhook-timestamp"]) - sentAt)).toBeLessThan(60);
      expect(request.headers["webhook-signature"]).toBe(await expectedSignature(secret, request));
      // And as a Standard Webhooks library checks it.
      expect(new Webhook(secret).verify(request.body, request.headers)).toEqual(JSON.parse(request.body));
    }
    const first = requests[0] as ReceivedRequest;
    expect(() => new Webhook(secret).verify(`${first.body} `, first.headers)).toThrow();
    expect(() => new Webhook(newSecret()).verify(first.body, first.headers)).toThrow();

    expect(pages.every((page) => page.runId === transitionsRun.runId)).toBe(true);
    expect(pages.every((page) => page.transitions.length <= pageSize)).toBe(true);
    const key = (t: { customerId: string; from: string | null; to: string; at: string }) =>
      `${t.customerId} ${t.from} ${t.to} ${t.at}`;
    const posted = pages.flatMap((page) => page.transitions.map(key));
    expect(posted).toHaveLength(feed.length);
    expect(new Set(posted)).toEqual(new Set(feed.map(key)));
  });

  it("plans pages as id ranges per partition, ending the walk with the last partition's last page", async () => {
    // Two partitions: five transitions and two, pages of three.
    const rows = (count: number) =>
      Array.from({ length: count }, (_, i) => ({
        id: i + 1,
        customer_id: `c${i}`,
        from_stage: null,
        to_stage: "active",
        at: "",
        run_id: "r",
      }));
    const storeOf = (counts: number[]) => ({
      partitions: counts.length,
      transitionsPage: async (_runId: string, partition: number, afterId: number, size: number) =>
        rows(counts[partition] ?? 0)
          .filter((row) => row.id > afterId)
          .slice(0, size),
    });
    const store = storeOf([5, 2]);
    expect(await planTransitions(store, "r", firstTransitionsPosition, 3, 3)).toEqual({
      pages: [
        { page: 1, partition: 0, afterId: 0, lastId: 3 },
        { page: 2, partition: 0, afterId: 3, lastId: 5 },
        { page: 3, partition: 1, afterId: 0, lastId: 2 },
      ],
      // The part ends exactly with the walk: no step more to find nothing.
      next: null,
    });
    const first = await planTransitions(store, "r", firstTransitionsPosition, 3, 2);
    expect(first.next).toEqual({ partition: 1, afterId: 0, page: 2 });
    expect(await planTransitions(store, "r", first.next ?? firstTransitionsPosition, 3, 2)).toEqual({
      pages: [{ page: 3, partition: 1, afterId: 0, lastId: 2 }],
      next: null,
    });
    // A last page that is full cannot tell it is the last: one read more finds nothing.
    const full = storeOf([3]);
    const part = await planTransitions(full, "r", firstTransitionsPosition, 3, 1);
    expect(part).toEqual({
      pages: [{ page: 1, partition: 0, afterId: 0, lastId: 3 }],
      next: { partition: 0, afterId: 3, page: 1 },
    });
    expect(await planTransitions(full, "r", part.next ?? firstTransitionsPosition, 3, 1)).toEqual({
      pages: [],
      next: null,
    });
  });

  it("sends a long run's transitions over several steps, each going on where the last stopped", async () => {
    const whole = receiverBox();
    const all = await push(whole.url);
    const inOne = await received(whole.box);
    expect(inOne.length).toBeGreaterThan(4);
    // Two pages a step, through the Workflow's own loop: each step from the position the last answered.
    const stepped = receiverBox();
    const steps: { name: string; pages: number }[] = [];
    const step = {
      do: async <T>(name: string, _config: unknown, run: () => Promise<T>): Promise<T> => {
        const before = (await received(stepped.box)).length;
        const result = await run();
        steps.push({ name, pages: (await received(stepped.box)).length - before });
        return result;
      },
    };
    const sent = await pushTransitionsSteps(
      step as unknown as WorkflowStep,
      { retries: { limit: 0, delay: 0 } },
      { retries: { limit: 0, delay: 0 } },
      { TRANSITIONS_WEBHOOK_URL: stepped.url, AUDIENCE_WEBHOOKS_ALLOW_LOCAL: "on" },
      nightlyStore(),
      transitionsRun.runId,
      pageSize,
      2,
    );
    // Every step a name of its own, as a Workflow requires of steps it should not take from its cache:
    // a part's pages planned in one step (sending nothing), POSTed in the next.
    expect(new Set(steps.map((s) => s.name)).size).toBe(steps.length);
    const plans = steps.filter((s) => s.name.startsWith("plan "));
    const posts = steps.filter((s) => !s.name.startsWith("plan "));
    expect(plans.map((s) => s.name)).toEqual(plans.map((_, index) => transitionsPlanStepName(index + 1)));
    expect(posts.map((s) => s.name)).toEqual(posts.map((_, index) => transitionsStepName(index + 1)));
    expect(steps.slice(0, 4).map((s) => s.name)).toEqual([
      "plan transitions pages",
      "post transitions pages",
      "plan transitions pages 2",
      "post transitions pages 2",
    ]);
    expect(plans.every((s) => s.pages === 0)).toBe(true);
    const perStep = posts.map((s) => s.pages);
    expect(perStep.every((pages) => pages <= 2)).toBe(true);
    expect(perStep.length).toBeGreaterThanOrEqual(Math.ceil(inOne.length / 2));
    expect(sent).toBe(all.sent);
    // The same pages, under the same delivery ids, in the same order, as one step sends.
    const inSteps = await received(stepped.box);
    expect(inSteps.map((r) => [r.headers["webhook-id"], r.body])).toEqual(
      inOne.map((r) => [r.headers["webhook-id"], r.body]),
    );
  });

  it("sends a page again under the same delivery id when the step is retried", async () => {
    const secret = newSecret();
    const { box, url } = receiverBox("/fail-first/1");
    await expect(push(url, secret)).rejects.toThrow(/^transitions webhook page 1: answered HTTP 500$/);
    // The Workflow retries the step: every page again, from the first.
    const { sent } = await push(url, secret);
    const requests = await received(box);
    expect(requests.map((r) => r.status)).toEqual([500, ...Array(requests.length - 1).fill(204)]);
    const [failed, retried] = requests;
    expect(retried?.headers["webhook-id"]).toBe(`transitions_${transitionsRun.runId}_1`);
    expect(failed?.headers["webhook-id"]).toBe(retried?.headers["webhook-id"]);
    expect(failed?.body).toBe(retried?.body);
    for (const request of requests)
      expect(request.headers["webhook-signature"]).toBe(await expectedSignature(secret, request));
    expect(requests.slice(1).reduce((sum, r) => sum + contractBody(r).transitions.length, 0)).toBe(sent);
  });

  it("without a secret, sends the delivery id and timestamp unsigned", async () => {
    const { box, url } = receiverBox();
    const { sent } = await push(url);
    const requests = await received(box);
    expect(requests.length).toBeGreaterThan(1);
    for (const [index, request] of requests.entries()) {
      expect(request.headers["webhook-id"]).toBe(`transitions_${transitionsRun.runId}_${index + 1}`);
      expect(request.headers["webhook-timestamp"]).toMatch(/^\d+$/);
      expect(request.headers).not.toHaveProperty("webhook-signature");
    }
    expect(requests.reduce((sum, r) => sum + contractBody(r).transitions.length, 0)).toBe(sent);
  });

  it("refuses a malformed secret: nothing is sent, and the step fails naming the setting, not retried", async () => {
    const good = newSecret();
    const malformed = [
      "",
      "not-a-secret",
      "whsec_",
      good.slice("whsec_".length), // without its prefix
      ` ${good}`,
      `${good}\n`,
      good.replace(/=$/, ""), // without its padding
      `whsec_${"A".repeat(43)}!`,
      newSecret(16), // too short a key
      newSecret(65), // too long a key
    ];
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      for (const secret of malformed) {
        const { box, url } = receiverBox();
        const error = await push(url, secret).then(
          () => null,
          (thrown: unknown) => thrown,
        );
        expect(error, JSON.stringify(secret)).toBeInstanceOf(NonRetryableError);
        expect((error as Error).message).toBe(transitionsSecretProblem);
        expect(await received(box), JSON.stringify(secret)).toEqual([]);
        // Logged for the run, naming the setting and never its value.
        expect(JSON.parse(String(log.mock.lastCall?.[0]))).toEqual({
          runId: transitionsRun.runId,
          step: "post transitions pages",
          error: transitionsSecretProblem,
        });
      }
    } finally {
      log.mockRestore();
    }
    // The sizes the Standard Webhooks specification allows are accepted.
    for (const secret of [newSecret(24), newSecret(64)])
      await expect(push(receiverBox().url, secret)).resolves.toBeTruthy();
  });

  it("fails the Workflow's first webhook step on a malformed secret, before reading a page", async () => {
    const { box, url } = receiverBox();
    const names: string[] = [];
    const step = {
      do: async <T>(name: string, _config: unknown, run: () => Promise<T>): Promise<T> => {
        names.push(name);
        return run();
      },
    };
    let reads = 0;
    const store = nightlyStore();
    const counted = {
      partitions: store.partitions,
      transitionsPage: (...args: Parameters<typeof store.transitionsPage>) => {
        reads++;
        return store.transitionsPage(...args);
      },
    };
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const error = await pushTransitionsSteps(
        step as unknown as WorkflowStep,
        { retries: { limit: 0, delay: 0 } },
        { retries: { limit: 0, delay: 0 } },
        { ...settings(url, "not-a-secret") },
        counted,
        transitionsRun.runId,
        pageSize,
      ).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(NonRetryableError);
      expect(JSON.parse(String(log.mock.lastCall?.[0]))).toMatchObject({ step: "plan transitions pages" });
    } finally {
      log.mockRestore();
    }
    expect(names).toEqual(["plan transitions pages"]);
    expect(reads).toBe(0);
    expect(await received(box)).toEqual([]);
  });

  it("refuses a URL an audience webhook could not have: nothing is sent, and the step fails naming the setting", async () => {
    const { box, url } = receiverBox();
    const local = new URL(url);
    const refused: [string, string | undefined, RegExp][] = [
      [
        url,
        undefined,
        /^TRANSITIONS_WEBHOOK_URL must use https \(http to localhost needs AUDIENCE_WEBHOOKS_ALLOW_LOCAL=on/,
      ],
      [`http://crm.example.com${local.pathname}`, "on", /^TRANSITIONS_WEBHOOK_URL must use https/],
      ["https://10.0.0.7/hooks", undefined, /^TRANSITIONS_WEBHOOK_URL must name a host, not an IP address\.$/],
      ["https://crm.internal/hooks", undefined, /^TRANSITIONS_WEBHOOK_URL must name a public host\.$/],
      ["https://user:pw@crm.example.com/hooks", undefined, /^TRANSITIONS_WEBHOOK_URL must not carry credentials/],
      ["crm.example.com/hooks", undefined, /^TRANSITIONS_WEBHOOK_URL must be an absolute URL/],
    ];
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      for (const [target, allowLocal, message] of refused) {
        const { pages } = await plan();
        const error = await postTransitions(
          { TRANSITIONS_WEBHOOK_URL: target, AUDIENCE_WEBHOOKS_ALLOW_LOCAL: allowLocal },
          nightlyStore(),
          transitionsRun.runId,
          pages,
          pageSize,
        ).then(
          () => null,
          (thrown: unknown) => thrown,
        );
        expect(error, target).toBeInstanceOf(NonRetryableError);
        expect((error as Error).message, target).toMatch(message);
        expect(String(log.mock.lastCall?.[0])).toContain('"step":"post transitions pages"');
      }
    } finally {
      log.mockRestore();
    }
    expect(await received(box)).toEqual([]);
  });

  // Last: it erases one of the run's customers.
  it("keeps every page's transitions when a customer is erased before a failed page is sent again", async () => {
    const planned = await plan();
    expect(planned.pages.length).toBeGreaterThan(2);
    const { box, url } = receiverBox("/fail-first/1");
    const whole = receiverBox();
    // What each page holds before the erasure (sent to another box, where nothing fails).
    await postTransitions(settings(whole.url), nightlyStore(), transitionsRun.runId, planned.pages, pageSize);
    const before = (await received(whole.box)).map(contractBody);
    await expect(
      postTransitions(settings(url), nightlyStore(), transitionsRun.runId, planned.pages, pageSize),
    ).rejects.toThrow(/^transitions webhook page 1: answered HTTP 500$/);
    // Between the failed attempt and the retry, the first page's first customer is erased.
    const erased = before[0]?.transitions[0]?.customerId as string;
    expect((await api.call("DELETE", `/v1/customers/${erased}`, undefined, adminKey)).status).toBe(200);
    // The Workflow retries the step with the part's pages as planned.
    await postTransitions(settings(url), nightlyStore(), transitionsRun.runId, planned.pages, pageSize);
    const [, ...retried] = await received(box);
    const without = (page: TransitionsPage) => page.transitions.filter((t) => t.customerId !== erased);
    // Page 1 lost only the erased customer's transition; every other page is the page it was, under
    // its id: none moved into a page a receiver already took.
    expect(retried.map((r) => r.headers["webhook-id"])).toEqual(
      before.map((_, index) => `transitions_${transitionsRun.runId}_${index + 1}`),
    );
    expect(retried.map((r) => contractBody(r).transitions)).toEqual(before.map(without));
    expect(contractBody(retried[0] as ReceivedRequest).transitions).toHaveLength(pageSize - 1);
  });
});
