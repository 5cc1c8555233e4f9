// The nightly model job as a Cloudflare Workflow: fit the population models, fit the ranking
// statistics, then score customers page by page, size the saved audiences and deliver their
// webhooks (worker/audiences/audiences.sync.ts), and last keep events within their retention
// (worker/events/events.upkeep.ts). Each step's result is persisted by Workflows, so a
// restarted run resumes after the last finished step instead of starting over.
import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";
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
import { diagnosticsStep } from "../models/diagnostics.repo.ts";
import { modelsById } from "../models/models.repo.ts";
import {
  copurchaseStep,
  countTransitions,
  finishRunStep,
  fitCustomerModelsStep,
  fitPopulationStep,
  saveInsightRollupStep,
  scorePageStep,
  startRunStep,
  transitionsOfRun,
} from "./nightly.repo.ts";

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

/** Transitions per webhook POST. */
const webhookPageSize = 1_000;

const retries = {
  retries: { limit: 3, delay: "5 seconds" as const, backoff: "exponential" as const },
  timeout: "10 minutes" as const,
};

export class NightlyModelWorkflow extends WorkflowEntrypoint<Env, NightlyParams> {
  override async run(event: Readonly<WorkflowEvent<NightlyParams>>, step: WorkflowStep) {
    const db = drizzle(this.env.DB, { schema }) as Db;
    // The models are fitted "as of" this instant; started/finished times in job_runs are wall-clock.
    const now = new Date(event.payload.asOf ?? event.timestamp);
    const runId = event.instanceId;
    const pageSize = event.payload.pageSize ?? defaultPageSize;

    await step.do("start run", retries, async () => startRunStep(db, runId, new Date()));
    const fit = await step.do("fit customer models", retries, async () => fitCustomerModelsStep(db, now));
    const population = await step.do("fit ranking statistics", retries, async () => fitPopulationStep(db, now));
    await step.do("co-purchase table", retries, async () => copurchaseStep(db, now));

    let cursor = "";
    let scored = 0;
    const skippedReasons: Record<string, number> = {};
    const traits: TraitCounts = {};
    const clvHistogram = emptyClvHistogram();
    const timeZone = retailerTimeZone(this.env.RETAILER_TIME_ZONE);
    for (let page = 0; ; page++) {
      const scoredBefore = scored;
      const result = await step.do(`score page ${page}`, retries, async () => {
        // Score with this run's own fit, whatever other runs stored since.
        const models = await modelsById<PopulationModels>(db, fit.id);
        const stats = await modelsById<PopulationStats>(db, population.id);
        return scorePageStep(db, models, cursor, pageSize, runId, now, { population: stats, timeZone, scoredBefore });
      });
      scored += result.scored;
      addCounts(traits, result.traits ?? {});
      // A page result persisted by a run from before the histogram existed has none: it adds nothing.
      addClvHistograms(clvHistogram, result.clvHistogram);
      for (const [reason, count] of Object.entries(result.skipped ?? {}))
        skippedReasons[reason] = (skippedReasons[reason] ?? 0) + (count ?? 0);
      if (!result.nextCursor) break;
      cursor = result.nextCursor;
    }
    // Checked on a bounded sample; a failure here is recorded and never fails the run.
    const diagnostics = await step.do("model diagnostics", retries, async () => {
      try {
        return await diagnosticsStep(db, now);
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
    const transitions = await step.do("count transitions", retries, async () => countTransitions(db, runId));

    const webhook = this.env.TRANSITIONS_WEBHOOK_URL;
    if (webhook && transitions > 0) {
      await step.do("push transitions to webhook", retries, async () => {
        let afterId = 0;
        let sent = 0;
        for (;;) {
          const rows = await transitionsOfRun(db, runId, afterId, webhookPageSize);
          if (rows.length === 0) break;
          const response = await fetch(webhook, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({
              runId,
              transitions: rows.map((row) => ({
                customerId: row.customer_id,
                from: row.from_stage,
                to: row.to_stage,
                at: row.at,
              })),
            }),
          });
          if (!response.ok) throw new Error(`webhook answered ${response.status}`);
          sent += rows.length;
          afterId = rows[rows.length - 1]?.id ?? afterId;
        }
        return { sent };
      });
    }
    // Saved audiences: sized, and their webhooks told who joined and left; failures stay per audience.
    const audiences = await syncAudiencesSteps(step, db, this.env, runId, event.payload.audiencePageSize);
    // Event retention, the browse window, and the move of events from before the events database.
    const eventsDb = drizzle(this.env.EVENTS_DB, { schema: eventsSchema }) as EventsDb;
    const events = await eventsUpkeepSteps(step, db, eventsDb, this.env, now, retries);
    const skipped = Object.values(skippedReasons).reduce((sum, count) => sum + count, 0);
    // `fit.fallbacks` names any degenerate fit and what replaced it; `skipped` counts customers left unscored.
    const detail = {
      fit,
      population,
      scored,
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
