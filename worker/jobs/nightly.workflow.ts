// The nightly model job as a Cloudflare Workflow: fit the population models, fit the ranking
// statistics, then score customers page by page (in the one D1 database, or fanned out over the
// customer shards: nightly.store.ts), POST the stage transitions to TRANSITIONS_WEBHOOK_URL when set
// (transitions.webhook.ts), size the saved audiences and deliver their
// webhooks (worker/audiences/audiences.sync.ts), and last keep events within their retention
// (worker/events/events.upkeep.ts). Each step's result is persisted by Workflows, so a
// restarted run resumes after the last finished step instead of starting over.
import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";
import { NonRetryableError } from "cloudflare:workflows";
import { drizzle } from "drizzle-orm/d1";
import * as eventsSchema from "../../db/events-schema.ts";
import * as schema from "../../db/schema.ts";
import { syncAudiencesSteps } from "../audiences/audiences.sync.ts";
import { addCounts, type TraitCounts } from "../core/insights/best-customers.ts";
import { addClvHistograms, emptyClvHistogram } from "../core/insights/clv-distribution.ts";
import type { PopulationModels } from "../core/profile/population-models.ts";
import type { PopulationStats } from "../core/ranking/population.ts";
import type { Db, Env, EventsDb } from "../env.ts";
import { eventsUpkeepSteps } from "../events/events.upkeep.ts";
import { retailerTimeZone } from "../http/config.ts";
import { modelsById, putInForce } from "../models/models.repo.ts";
import { shardedNightlyStore } from "../shards/nightly.ts";
import { shardCount } from "../shards/shards.ts";
import { finishRunStep, saveInsightRollupStep, startRunStep } from "./nightly.repo.ts";
import { d1NightlyStore, type PageRequest } from "./nightly.store.ts";
import { pushTransitionsSteps } from "./transitions.webhook.ts";

export interface NightlyParams {
  /** ISO time the run treats as "now" (defaults to when it was created). */
  asOf?: string;
  pageSize?: number;
  /** Customers per audience webhook POST. */
  audiencePageSize?: number;
}

/**
 * Customers scored per Workflow step. At ten million customers that is 2,000 steps, well inside
 * Workflows' 10,000 per instance, and one page's CPU time stays far below a step's 30 seconds
 * (measured and worked out in docs/scaling.md).
 */
export const defaultPageSize = 5_000;

const retries = {
  retries: { limit: 3, delay: "5 seconds" as const, backoff: "exponential" as const },
  timeout: "10 minutes" as const,
};

/** A transitions webhook POST step: up to 100 POSTs of up to 15 s each, one after another (25 minutes at most). */
const webhookRetries = { ...retries, timeout: "30 minutes" as const };

/**
 * Scores every partition of the store (the one database, or each customer shard) page by page: a
 * round runs the next page of every partition not yet done, at once, so shards score side by side
 * and a page never spans two. `scorePage` runs one page as a Workflow step; `take` is handed each
 * page's result. The same walk scores the shards' arrivals after.
 */
async function scorePartitions<Result extends { nextCursor: string | null; scored: number }>(
  partitions: readonly number[],
  scorePage: (partition: number, page: number, cursor: string, scoredBefore: number) => Promise<Result>,
  take: (result: Result) => void,
): Promise<void> {
  const cursors = new Map<number, string>(partitions.map((partition) => [partition, ""]));
  const scored = new Map<number, number>();
  for (let page = 0; cursors.size > 0; page++) {
    const round = await Promise.all(
      [...cursors].map(async ([partition, cursor]) => {
        const result = await scorePage(partition, page, cursor, scored.get(partition) ?? 0);
        return { partition, result };
      }),
    );
    for (const { partition, result } of round) {
      take(result);
      scored.set(partition, (scored.get(partition) ?? 0) + result.scored);
      if (result.nextCursor) cursors.set(partition, result.nextCursor);
      else cursors.delete(partition);
    }
  }
}

export class NightlyModelWorkflow extends WorkflowEntrypoint<Env, NightlyParams> {
  override async run(event: Readonly<WorkflowEvent<NightlyParams>>, step: WorkflowStep) {
    const db = drizzle(this.env.DB, { schema }) as Db;
    // The models are fitted "as of" this instant; started/finished times in job_runs are wall-clock.
    const now = new Date(event.payload.asOf ?? event.timestamp);
    const runId = event.instanceId;
    const pageSize = event.payload.pageSize ?? defaultPageSize;

    // The one branch on the store: customer data in D1, or in the customer shards.
    const store = shardCount(this.env) > 0 ? shardedNightlyStore(this.env, db) : d1NightlyStore(db);

    // The start claimed the run's row already (nightly.start.ts); this writes it only for an instance
    // created without a claim.
    const held = await step.do("start run", retries, async () => startRunStep(db, runId, new Date(), now));
    // Released as stale while it waited, or started beside another run: it must not write.
    if (!held)
      throw new NonRetryableError(`Nightly run ${runId} does not hold the run's claim: another run may be running.`);
    const fit = await step.do("fit customer models", retries, async () => store.fitCustomerModels(now));
    const population = await step.do("fit ranking statistics", retries, async () => store.fitPopulation(now));
    await step.do("co-purchase table", retries, async () => store.copurchase(now));

    const timeZone = retailerTimeZone(this.env.RETAILER_TIME_ZONE);
    let scored = 0;
    const skippedReasons: Record<string, number> = {};
    const traits: TraitCounts = {};
    const clvHistogram = emptyClvHistogram();
    // Score with this run's own fit, whatever other runs stored since.
    const pageRequest = async (cursor: string, scoredBefore: number): Promise<PageRequest> => ({
      models: await modelsById<PopulationModels>(db, fit.id),
      population: await modelsById<PopulationStats>(db, population.id),
      cursor,
      pageSize,
      runId,
      now,
      timeZone,
      scoredBefore,
    });
    await scorePartitions(
      Array.from({ length: store.partitions }, (_, partition) => partition),
      async (partition, page, cursor, scoredBefore) =>
        step.do(store.pageStepName(partition, page), retries, async () =>
          store.scorePage(partition, await pageRequest(cursor, scoredBefore)),
        ),
      (result) => {
        scored += result.scored;
        addCounts(traits, result.traits ?? {});
        // A page result persisted by a run from before the histogram existed has none: it adds nothing.
        addClvHistograms(clvHistogram, result.clvHistogram);
        for (const [reason, count] of Object.entries(result.skipped ?? {}))
          skippedReasons[reason] = (skippedReasons[reason] ?? 0) + (count ?? 0);
      },
    );
    // On customer shards, the customers a move brought into a shard since its first page (they may
    // have come in behind its pages), once every shard's pages are done: counted on every shard in one
    // step, then scored a page per step in the shards that have any.
    let arrivals = 0;
    const arrivalSteps = store.arrivals;
    if (arrivalSteps) {
      const counts = await step.do("count arrivals", retries, async () => arrivalSteps.count(runId));
      await scorePartitions(
        counts.flatMap((count, partition) => (count > 0 ? [partition] : [])),
        async (partition, page, cursor) =>
          step.do(arrivalSteps.stepName(partition, page), retries, async () =>
            arrivalSteps.scorePage(partition, await pageRequest(cursor, 0)),
          ),
        (result) => {
          arrivals += result.arrivals;
        },
      );
    }
    // Every customer is scored with this run's fits: request paths take them up from now on. A run that
    // failed before here left the last run's fits in force, with the scores they made.
    await step.do("put models in force", retries, async () => putInForce(db, [fit.id, population.id], new Date()));
    // This run's fit, checked on a bounded sample; a failure here is recorded and never fails the run.
    const diagnostics = await step.do("model diagnostics", retries, async () => {
      try {
        return await store.diagnostics(now, await modelsById<PopulationModels>(db, fit.id));
      } catch (error) {
        console.error(JSON.stringify({ runId, step: "model diagnostics", error: String(error) }));
        return { id: 0, ok: false, reason: "error" };
      }
    });
    // What each tier's customers share, summed over the pages: the best-customers insight; and the
    // customers per CLV bucket: the Overview's CLV distribution.
    await step.do("save best-customers rollup", retries, async () =>
      saveInsightRollupStep(db, runId, now, traits, new Date(), clvHistogram),
    );
    // Counted from what was stored, so a retried page cannot make it disagree with the feed.
    const transitions = await step.do("count transitions", retries, async () => store.countTransitions(runId));

    // Signed with TRANSITIONS_WEBHOOK_SECRET when set (transitions.webhook.ts); a malformed one fails the run here.
    // A part of up to transitionsPagesPerStep pages is planned in one step and POSTed in the next; the
    // next part goes on from where the last stopped.
    if (this.env.TRANSITIONS_WEBHOOK_URL && transitions > 0)
      await pushTransitionsSteps(step, webhookRetries, retries, this.env, store, runId);
    // Saved audiences: sized, and their webhooks told who joined and left; failures stay per audience.
    const audiences = await syncAudiencesSteps(
      step,
      db,
      this.env,
      runId,
      event.payload.audiencePageSize,
      store.audienceCustomers,
    );
    // Event retention, the browse window, and the move of events from before the events database.
    const eventsDb = drizzle(this.env.EVENTS_DB, { schema: eventsSchema }) as EventsDb;
    // Retention counts back from the run's date, but never from a date ahead of the wall clock: a run
    // dated ahead of today (a typo in asOf's year) must not delete the events and conversions of today.
    const retainedFrom = new Date(Math.min(now.getTime(), event.timestamp.getTime()));
    const events = await eventsUpkeepSteps(step, db, eventsDb, this.env, retainedFrom, retries, store);
    const skipped = Object.values(skippedReasons).reduce((sum, count) => sum + count, 0);
    // `fit.fallbacks` names any degenerate fit and what replaced it; `skipped` counts customers left unscored.
    const detail = {
      fit,
      population,
      scored,
      ...(arrivalSteps ? { arrivals } : {}),
      skipped,
      skippedReasons,
      fallbacks: fit.fallbacks,
      transitions,
      diagnostics,
      audiences,
      events,
    };
    await step.do("finish run", retries, async () => finishRunStep(db, runId, detail, new Date()));
    return detail;
  }
}
