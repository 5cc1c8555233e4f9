// Admin routes (admin key): start and watch the nightly model job, read the stage-transition feed and
// the current population models.
import { Hono } from "hono";
import { roundTo } from "../core/math/round.ts";
import { defaultRankingOptions } from "../core/ranking/options.ts";
import { ordersPerRecommendationLift } from "../core/rules/per-recommendation.ts";
import type { AppEnv } from "../env.ts";
import { eventRetentionDays } from "../events/retention.ts";
import { requireAdminKey } from "../http/auth.ts";
import { ApiError, invalidRequest, notFound } from "../http/errors.ts";
import { optionalJsonBody, parseOrThrow, queryParams } from "../http/validate.ts";
import { jobRun, recentRuns, type TransitionRow, transitionSummary, transitionsSince } from "../jobs/nightly.repo.ts";
import { type StartOutcome, startNightlyRun, workflowState } from "../jobs/nightly.start.ts";
import { visibleFeedIdsBelow } from "../jobs/transitions-feed.repo.ts";
import { currentModels } from "../models/models.repo.ts";
import { attributionSettings } from "../recommendations/attribution.ts";
import { holdoutShareOf } from "../recommendations/shelf.ts";
import { shardedSegment, shardedTransitionSummary, shardedTransitions } from "../shards/console.ts";
import { shardCount } from "../shards/shards.ts";
import { holdoutResults, type SegmentCustomerRow, segment } from "./admin.repo.ts";
import {
  defaultHoldoutWindowDays,
  holdoutQuerySchema,
  recentRunsQuerySchema,
  runParamsSchema,
  segmentQuerySchema,
  startNightlyQuerySchema,
  startNightlySchema,
  transitionSummaryQuerySchema,
  transitionsQuerySchema,
} from "./admin.schemas.ts";
import { diagnosticsRoutes } from "./diagnostics.routes.ts";
import { experimentBegan } from "./experiments.repo.ts";
import { experimentView } from "./experiments.ts";

const waitLimitMs = 120_000;
/** Seconds a start refused while another run is running is told to wait (`Retry-After`). */
const runningRetryAfterSeconds = 60;

type RunContext = { env: AppEnv["Bindings"]; var: AppEnv["Variables"] };
type RunRow = NonNullable<Awaited<ReturnType<typeof jobRun>>>;

/**
 * A run as the job recorded it in job_runs, completed by the Workflow's status while it is not done. A
 * run whose claim was released (errored, terminated) and whose instance is gone keeps the row's status.
 */
async function viewOf(c: RunContext, runId: string, run: RunRow | undefined) {
  const state = run?.status === "done" ? { status: "done", error: null } : await workflowState(c.env, runId);
  const known = state.status !== "not_found" && state.status !== "unreadable";
  if (!run && !known) return null;
  return {
    runId,
    status: known ? state.status : (run?.status ?? "queued"),
    asOf: run?.asOf ?? null,
    processed: run?.processed ?? 0,
    startedAt: run?.startedAt ?? null,
    finishedAt: run?.finishedAt ?? null,
    detail: run?.detail ?? null,
    error: state.error,
  };
}

/** The error a refused start answers: a bad asOf (400), or another run or a migration's write pause in the way (409). */
function refusal(outcome: Exclude<StartOutcome, { started: true }>) {
  switch (outcome.reason) {
    case "before_last_run": {
      const message = `A run replaces the live models, scores and stage transitions; it cannot go back before the last run's asOf (${outcome.lastAsOf}). Send an asOf at or after it.`;
      return invalidRequest(message, [{ path: ["asOf"], message }]);
    }
    case "running":
      return new ApiError(
        409,
        "conflict",
        `Nightly run ${outcome.runId} is running (started ${outcome.startedAt}): one run at a time. Follow it at GET /v1/admin/jobs/nightly/${outcome.runId} and start another once it has finished.`,
        undefined,
        runningRetryAfterSeconds,
      );
    case "exists":
      return new ApiError(409, "conflict", `Nightly run ${outcome.runId} exists already.`);
    case "writes_paused":
      return new ApiError(
        409,
        "conflict",
        `Customer writes are paused (since ${outcome.pausedAt}) while this deployment's customer data moves into customer shards: a run now would write scores behind the copy. Start it once the deployment runs on the shards, or after npx patron shards resume-writes.`,
      );
  }
}

const runView = async (c: RunContext, runId: string) => viewOf(c, runId, await jobRun(c.var.db, runId));

/** A stage change as the transitions feed and its summary answer it. */
const transitionView = (row: TransitionRow) => ({
  id: row.id,
  customerId: row.customer_id,
  from: row.from_stage,
  to: row.to_stage,
  at: row.at,
  runId: row.run_id,
});

export const adminRoutes = new Hono<AppEnv>()
  .use("*", requireAdminKey)
  .route("/models/diagnostics", diagnosticsRoutes)
  .post("/jobs/nightly", async (c) => {
    // The body is optional: none, or an empty one sent with a JSON Content-Type, starts a run as of now.
    const params = (await optionalJsonBody(c, startNightlySchema)) ?? {};
    const { wait } = queryParams(c, startNightlyQuerySchema);
    const runId = `nightly-${c.var.now.toISOString().replace(/[:.]/g, "-")}-${crypto.randomUUID().slice(0, 8)}`;
    const outcome = await startNightlyRun(c.env, c.var.db, {
      runId,
      asOf: params.asOf ? new Date(params.asOf) : c.var.now,
      now: c.var.now,
      pageSize: params.pageSize,
      audiencePageSize: params.audiencePageSize,
    });
    if (!outcome.started) throw refusal(outcome);
    if (wait === "1" || wait === "true") {
      // Polls the job's own record (one cheap D1 read); the Workflow is asked only every few seconds,
      // to notice a run that errored.
      const deadline = Date.now() + waitLimitMs;
      for (let poll = 1; Date.now() < deadline; poll++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        const run = await jobRun(c.var.db, runId);
        if (run?.status === "done" || poll % 12 === 0) {
          const view = await viewOf(c, runId, run);
          if (view && ["done", "errored", "terminated"].includes(view.status)) return c.json({ data: view });
        }
      }
    }
    // The claim wrote the run's row, so the view has its start time and asOf from the first answer.
    return c.json({ data: await runView(c, runId) }, 202);
  })
  .get("/jobs/nightly", async (c) => {
    const { limit } = queryParams(c, recentRunsQuerySchema);
    const runs = await recentRuns(c.var.db, limit);
    const views = await Promise.all(runs.map((run) => viewOf(c, run.id, run)));
    return c.json({ data: { runs: views.filter((view) => view !== null) } });
  })
  .get("/jobs/nightly/:id", async (c) => {
    const { id } = parseOrThrow(runParamsSchema, c.req.param(), "path");
    const view = await runView(c, id);
    if (!view) throw notFound(`No nightly run with id ${id}.`);
    return c.json({ data: view });
  })
  .get("/transitions/summary", async (c) => {
    // The Overview's "Movement": every change since `since` counted by kind, and the newest few, however
    // many there are (the feed below pages them oldest first).
    const { since, recent } = queryParams(c, transitionSummaryQuerySchema);
    const from = new Date(since).toISOString();
    const summary =
      shardCount(c.env) > 0
        ? await shardedTransitionSummary(c.env, from, await visibleFeedIdsBelow(c.var.db), recent)
        : await transitionSummary(c.var.db, from, recent);
    const kinds = summary.kinds
      .map((row) => ({ from: row.from_stage, to: row.to_stage, changes: Number(row.changes) }))
      .sort((a, b) => b.changes - a.changes || `${a.from}→${a.to}`.localeCompare(`${b.from}→${b.to}`));
    return c.json({
      data: {
        since: from,
        changes: kinds.reduce((sum, row) => sum + row.changes, 0),
        kinds,
        recent: summary.recent.map(transitionView),
      },
    });
  })
  .get("/transitions", async (c) => {
    const { since, after, limit } = queryParams(c, transitionsQuerySchema);
    const from = new Date(since).toISOString();
    const rows =
      shardCount(c.env) > 0
        ? await shardedTransitions(c.env, from, after, await visibleFeedIdsBelow(c.var.db), limit + 1)
        : await transitionsSince(c.var.db, from, after, limit + 1);
    const page = rows.slice(0, limit);
    return c.json({
      data: {
        transitions: page.map(transitionView),
        // Pass `next` as `after` (with the same `since`) for the next page; null on the last one.
        next: rows.length > limit ? (page[page.length - 1]?.id ?? null) : null,
      },
    });
  })
  .get("/segments", async (c) => {
    // Who is valuable and who is fading, from the scores the nightly job materialised.
    const filter = queryParams(c, segmentQuerySchema);
    const { customers, summary } =
      shardCount(c.env) > 0 ? await shardedSegment(c.env, filter) : await segment(c.var.db, filter);
    // Rounded as GET /v1/customers/:id and the lists round them: money to cents, P(alive) to 4 places.
    const rounded = (customers as SegmentCustomerRow[]).map((row) => ({
      ...row,
      clv12: roundTo(row.clv12, 2),
      clv24: roundTo(row.clv24, 2),
      probabilityAlive: roundTo(row.probabilityAlive, 4),
    }));
    return c.json({ data: { customers: rounded, summary } });
  })
  .get("/holdout", async (c) => {
    const { since, by, placement } = queryParams(c, holdoutQuerySchema);
    const { began, lastHeld } = await experimentBegan(c.var.eventsDb, placement);
    const holdoutShare = holdoutShareOf(c.env.HOLDOUT_SHARE) ?? defaultRankingOptions.holdout.share;
    // HOLDOUT_SHARE set back to 0 after shoppers were held out: the experiment ended with its last
    // held-out shelf. Counted past it, those shoppers would be in both arms, and the verdict would move
    // on shelves no holdout is compared with.
    const ended = holdoutShare === 0 ? lastHeld : null;
    // since=start: from the first holdout event kept (now, before any: an empty window).
    const from =
      since === "start"
        ? (began ?? c.var.now.toISOString())
        : since
          ? new Date(since).toISOString()
          : new Date(c.var.now.getTime() - defaultHoldoutWindowDays * 86_400_000).toISOString();
    // A window that starts after the end holds personalized shelves alone: nobody in two arms, no end to apply.
    const until = ended !== null && from <= ended ? ended : null;
    const results = await holdoutResults(c.var.eventsDb, from, placement, until);
    const withRate = <T extends { clicks: number; impressions: number }>(row: T) => ({
      ...row,
      clickThroughRate: row.impressions > 0 ? Math.round((row.clicks / row.impressions) * 10_000) / 10_000 : null,
    });
    const arms = results.arms.map(withRate);
    const placements = new Map<string | null, ReturnType<typeof withRate<(typeof results.placements)[number]>>[]>();
    for (const row of results.placements)
      placements.set(row.placement, [...(placements.get(row.placement) ?? []), withRate(row)]);
    const personalized = arms.find((row) => row.arm === "personalized");
    const holdout = arms.find((row) => row.arm === "holdout");
    const ratio = (a?: number | null, b?: number | null) => (a != null && b ? Math.round((a / b) * 1000) / 1000 : null);
    const perRecommendation = ordersPerRecommendationLift(
      results.perRecommendation.get("personalized"),
      results.perRecommendation.get("holdout"),
    );
    const experiment = await experimentView(c.var.eventsDb, from, by, c.env.HOLDOUT_SHARE, placement, until);
    return c.json({
      data: {
        since: from,
        began,
        // Its first days are past the retention (or about to be): since=start then moves each day.
        startTrimmed:
          began !== null &&
          Date.parse(began) <=
            c.var.now.getTime() -
              (eventRetentionDays(c.env.EVENT_RETENTION_DAYS, attributionSettings(c.env)) - 1) * 86_400_000,
        placement: placement ?? null,
        // The share held out now (HOLDOUT_SHARE, or the default): at 0 no shopper joins the holdout arm.
        holdoutShare,
        // Where the results end (HOLDOUT_SHARE is 0 after shoppers were held out): the last held-out shelf.
        ended,
        arms: arms.map((row) => ({ ...row, ...experiment.arms(row.arm) })),
        // Personalized ÷ held out: above 1 means the personalized shelf does better.
        lift: {
          // From the counts, not the rounded rates: the same lift as intervals.clickThroughRate.value.
          clickThroughRate: ratio(
            personalized && personalized.impressions > 0 ? personalized.clicks / personalized.impressions : null,
            holdout && holdout.impressions > 0 ? holdout.clicks / holdout.impressions : null,
          ),
          // Per recommendation seen, not per shopper (the unit of `intervals`); its interval is null
          // where it cannot be estimated (an arm with no order, or fewer than two recommendations).
          ordersPerRecommendation: ratio(
            personalized && personalized.attributedOrders / personalized.recommendations,
            holdout && holdout.attributedOrders / holdout.recommendations,
          ),
          ordersPerRecommendationCi95: perRecommendation.ci95,
          intervals: experiment.lift,
        },
        // Attributed orders whose shelf reported no widget event: in no arm, lift or interval.
        withoutEvents: results.withoutEvents,
        verdict: experiment.verdict,
        overTime: experiment.overTime,
        // The same counts per placement (null: events sent without one).
        placements: [...placements].map(([name, rows]) => ({
          placement: name,
          arms: rows.map(({ placement: _, ...row }) => row),
        })),
      },
    });
  })
  .get("/models", async (c) => {
    const models = await currentModels(c.var.db, c.var.now);
    if (!models.customer) throw notFound("No models fitted yet: POST /v1/admin/jobs/nightly to fit them.");
    const { secondPurchase, ...customer } = models.customer;
    return c.json({
      data: {
        customer: {
          ...customer,
          secondPurchase: { sample: secondPurchase.sample, returnedShare: secondPurchase.returnedShare },
        },
        population: models.population
          ? {
              fittedAt: models.population.fittedAt,
              customers: models.population.customers,
              categories: Object.keys(models.population.categories).length,
            }
          : null,
      },
    });
  });
