// Nightly runs one at a time, never back in time, and listed whoever started them: three starts at once
// (one runs, the others are refused naming it), the cron trigger skipping while a run holds the claim,
// a claim whose Workflow instance never came released, a back-dated asOf before the last run's refused,
// the recent runs (the cron's included) listed newest first, the present replacing a run dated ahead, and
// a run that fails after its fit leaving the last run's fits in force.
import { createScheduledController, env, introspectWorkflow, SELF } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { jobRunResponseSchema, jobRunsResponseSchema } from "../../worker/admin/admin.schemas.ts";
import worker from "../../worker/index.ts";
import { claimRun, releaseRun } from "../../worker/jobs/nightly.repo.ts";
import { adminKey, anOrder, client } from "../fixtures/builders.ts";
import { d1Db } from "../fixtures/nightly-store.ts";

const api = client(SELF);
const day = 86_400_000;

/** The error envelope's code and message, and the Retry-After header. */
async function refusal(response: Response) {
  const body = (await response.json()) as { error: { code: string; message: string; issues?: { path: unknown[] }[] } };
  return { ...body.error, retryAfter: response.headers.get("Retry-After") };
}

async function start(body: Record<string, unknown> = {}, wait = false) {
  return api.call("POST", `/v1/admin/jobs/nightly${wait ? "?wait=1" : ""}`, body, adminKey);
}

async function view(runId: string) {
  const response = await api.call("GET", `/v1/admin/jobs/nightly/${encodeURIComponent(runId)}`, undefined, adminKey);
  expect(response.status).toBe(200);
  return jobRunResponseSchema.parse(await response.json()).data;
}

/** Polls a run until it has finished. */
async function finished(runId: string) {
  for (let poll = 0; poll < 240; poll++) {
    const run = await view(runId);
    if (["done", "errored", "terminated"].includes(run.status)) return run;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`run ${runId} did not finish`);
}

const runIds = async () =>
  (await env.DB.prepare("SELECT id FROM job_runs ORDER BY id").all<{ id: string }>()).results.map((row) => row.id);

/** The cron trigger, as the runtime calls the Worker's scheduled handler. */
async function cron(at: Date) {
  const controller = createScheduledController({ scheduledTime: at, cron: "15 3 * * *" });
  await worker.scheduled(controller, env);
}

beforeAll(async () => {
  const now = Date.now();
  const orders = Array.from({ length: 20 }, (_, c) =>
    [0, 1, 2].map((k) =>
      anOrder({
        id: `runs-${c}-${k}`,
        placedAt: new Date(now - (5 + k * 20 + c) * day).toISOString(),
        identifiers: { loyalty: `RUNS-${c}` },
      }),
    ),
  ).flat();
  expect((await api.postOrders(orders)).status).toBe(200);
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("nightly runs", () => {
  let firstRun = "";

  it("starts one run of three started at once and refuses the others with 409, naming the running run", async () => {
    const answers = await Promise.all([start(), start(), start()]);
    const accepted = answers.filter((response) => response.status === 202);
    expect(answers.map((response) => response.status).sort()).toEqual([202, 409, 409]);
    const run = jobRunResponseSchema.parse(await accepted[0]!.json()).data;
    // Started when it was accepted: the answer says when, whatever the Workflow has got to.
    expect(run.startedAt).not.toBeNull();
    expect(["queued", "running"]).toContain(run.status);
    for (const response of answers.filter((answer) => answer.status === 409)) {
      const error = await refusal(response);
      expect(error.code).toBe("conflict");
      expect(error.message).toContain(run.runId);
      expect(Number(error.retryAfter)).toBeGreaterThan(0);
    }
    expect(await runIds()).toEqual([run.runId]);
    expect((await finished(run.runId)).status).toBe("done");
    firstRun = run.runId;
  });

  it("refuses an asOf before the last run's, and writes nothing", async () => {
    const last = await view(firstRun);
    const earlier = new Date(Date.parse(last.asOf as string) - day).toISOString();
    const response = await start({ asOf: earlier });
    expect(response.status).toBe(400);
    const error = await refusal(response);
    expect(error.code).toBe("invalid_request");
    expect(error.message).toContain("cannot go back before the last run's asOf");
    expect(error.issues?.map((issue) => issue.path)).toEqual([["asOf"]]);
    expect(await runIds()).toEqual([firstRun]);
  });

  it("skips the cron trigger while a run holds the claim, and releases a claim whose instance never came", async () => {
    // A start that claimed its row and has not created its Workflow instance yet.
    expect(await claimRun(d1Db(), "held-run", new Date().toISOString(), new Date(), false)).toEqual({ claimed: true });
    const refused = await start();
    expect(refused.status).toBe(409);
    expect((await refusal(refused)).message).toContain("held-run");

    const logs = vi.spyOn(console, "log").mockImplementation(() => undefined);
    await cron(new Date());
    const skipped = logs.mock.calls.map(([line]) => String(line)).find((line) => line.includes('"skipped"'));
    expect(skipped).toContain('"reason":"running"');
    expect(skipped).toContain("held-run");
    expect(await runIds()).toEqual(["held-run", firstRun].sort());

    // Its instance still missing minutes later: the claim is stale, and the next start runs.
    await env.DB.prepare("UPDATE job_runs SET started_at = ? WHERE id = 'held-run'")
      .bind(new Date(Date.now() - 3 * 60_000).toISOString())
      .run();
    const response = await start({}, true);
    expect(response.status, await response.clone().text()).toBe(200);
    expect(jobRunResponseSchema.parse(await response.json()).data.status).toBe("done");
    expect((await view("held-run")).status).toBe("errored");
  });

  it("lists the recent runs newest first, the cron's included, each as GET /v1/admin/jobs/nightly/:id shows it", async () => {
    const scheduledTime = new Date();
    await cron(scheduledTime);
    const cronRun = `nightly-${scheduledTime.toISOString().replace(/[:.]/g, "-")}`;
    expect((await finished(cronRun)).status).toBe("done");

    const list = async (query = "") => {
      const response = await api.call("GET", `/v1/admin/jobs/nightly${query}`, undefined, adminKey);
      expect(response.status, await response.clone().text()).toBe(200);
      return jobRunsResponseSchema.parse(await response.json()).data.runs;
    };
    const runs = await list();
    expect(runs).toHaveLength(4);
    expect(runs[0]?.runId).toBe(cronRun);
    const started = runs.map((run) => run.startedAt as string);
    expect(started).toEqual([...started].sort().reverse());
    for (const run of runs) expect(run).toEqual(await view(run.runId));
    expect(runs[0]).toMatchObject({ status: "done", asOf: scheduledTime.toISOString(), processed: 20 });
    expect(await list("?limit=2")).toEqual(runs.slice(0, 2));
    for (const limit of ["0", "51", "ten"])
      expect((await api.call("GET", `/v1/admin/jobs/nightly?limit=${limit}`, undefined, adminKey)).status).toBe(400);
    expect((await api.call("GET", "/v1/admin/jobs/nightly", undefined, null)).status).toBe(401);
  });

  it("stops a run whose claim was released before it began, and writes nothing", async () => {
    // Released as stale (marked errored) by another start while its instance was still to come.
    const at = new Date().toISOString();
    await env.DB.prepare(
      "INSERT INTO job_runs (id, kind, status, cursor, processed, started_at, as_of) VALUES ('released-run', 'nightly', 'errored', '', 0, ?, ?)",
    )
      .bind(at, at)
      .run();
    const instance = await env.NIGHTLY.create({ id: "released-run", params: { asOf: at } });
    let state = await instance.status();
    for (let poll = 0; poll < 120 && !["errored", "complete", "terminated"].includes(state.status); poll++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      state = await instance.status();
    }
    expect(state.status).toBe("errored");
    // The local runtime words it generally; the step's own message names the lost claim.
    expect(state.error?.message).toContain("NonRetryableError");
    expect(await view("released-run")).toMatchObject({ status: "errored", processed: 0 });
  });

  it("leaves the last finished run's fits in force when a run fails after its fit, and a finished run puts its own", async () => {
    const fittedAt = async () => {
      const response = await api.call("GET", "/v1/admin/models", undefined, adminKey);
      expect(response.status).toBe(200);
      const body = (await response.json()) as {
        data: { customer: { fittedAt: string }; population: { fittedAt: string } };
      };
      return { customer: body.data.customer.fittedAt, population: body.data.population.fittedAt };
    };
    const fitsOf = async (runId: string) => {
      const { detail } = await view(runId);
      const { fit, population } = detail as { fit: { id: number }; population: { id: number } };
      const rows = await env.DB.prepare("SELECT id, fitted_at FROM model_params WHERE id IN (?, ?)")
        .bind(fit.id, population.id)
        .all<{ id: number; fitted_at: string }>();
      return rows.results.map((row) => row.fitted_at).sort();
    };
    const done = await start({}, true);
    expect(done.status, await done.clone().text()).toBe(200);
    const finishedRun = jobRunResponseSchema.parse(await done.json()).data;
    expect(finishedRun.status).toBe("done");
    const inForce = await fittedAt();
    expect([inForce.customer, inForce.population].sort()).toEqual(await fitsOf(finishedRun.runId));

    // The next run fits (a minute later: fits of its own), then a step after the fit fails on every try.
    const introspector = await introspectWorkflow(env.NIGHTLY);
    try {
      await introspector.modifyAll(async (m) => {
        await m.disableRetryDelays();
        await m.mockStepError({ name: "co-purchase table" }, new Error("co-purchase failed"));
      });
      const failed = await start({ asOf: new Date(Date.now() + 60_000).toISOString() }, true);
      expect(failed.status, await failed.clone().text()).toBe(200);
      const failedRun = jobRunResponseSchema.parse(await failed.json()).data;
      expect(failedRun.status).toBe("errored");
      const stored = await env.DB.prepare("SELECT count(*) AS n FROM model_params WHERE in_force_at IS NULL").first<{
        n: number;
      }>();
      expect(stored?.n).toBe(2); // its two fits, stored and not in force
      // Its claim released as the next start does on finding its instance errored (disposing of the
      // introspector forgets the instance, which would hold the claim two minutes).
      await releaseRun(d1Db(), failedRun.runId, "errored", new Date());
    } finally {
      await introspector.dispose();
    }
    expect(await fittedAt()).toEqual(inForce);

    // A run that finishes puts its own fits in force, and the failed run's never come into force.
    const next = await start({ asOf: new Date(Date.now() + 120_000).toISOString() }, true);
    expect(next.status, await next.clone().text()).toBe(200);
    const nextRun = jobRunResponseSchema.parse(await next.json()).data;
    expect(nextRun.status).toBe("done");
    const now = await fittedAt();
    expect([now.customer, now.population].sort()).toEqual(await fitsOf(nextRun.runId));
    expect(now.customer).not.toBe(inForce.customer);
  });

  it("lets the present replace a run dated ahead of it: a run without asOf, and the cron's", async () => {
    const ahead = await start({ asOf: new Date(Date.now() + 30 * day).toISOString() }, true);
    expect(ahead.status, await ahead.clone().text()).toBe(200);
    // No body sent with a JSON Content-Type (as many clients do) is no body: a run as of now, not a 400.
    const now = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
    });
    expect(now.status, await now.clone().text()).toBe(200);
    expect(jobRunResponseSchema.parse(await now.json()).data.status).toBe("done");
    // Back-dated by more than the hour that counts as the present: refused, the run ahead being later.
    expect((await start({ asOf: new Date(Date.now() - 2 * 3_600_000).toISOString() })).status).toBe(400);
    const scheduledTime = new Date();
    await cron(scheduledTime);
    expect((await finished(`nightly-${scheduledTime.toISOString().replace(/[:.]/g, "-")}`)).status).toBe("done");
  });
});
