// The nightly model job as a Cloudflare Workflow: fit the population models, fit the ranking
// statistics, then score customers page by page. Each step's result is persisted by Workflows, so a
// restarted run resumes after the last finished step instead of starting over.
import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import * as schema from "../../db/schema.ts";
import type { PopulationModels } from "../core/profile/population-models.ts";
import type { Db, Env } from "../env.ts";
import { currentModels, forgetModels } from "../models/models.repo.ts";
import {
  finishRunStep,
  fitCustomerModelsStep,
  fitPopulationStep,
  scorePageStep,
  startRunStep,
  transitionsSince,
} from "./nightly.repo.ts";

export interface NightlyParams {
  /** ISO time the run treats as "now" (defaults to when it was created). */
  asOf?: string;
  pageSize?: number;
}

const retries = {
  retries: { limit: 3, delay: "5 seconds" as const, backoff: "exponential" as const },
  timeout: "10 minutes" as const,
};

export class NightlyModelWorkflow extends WorkflowEntrypoint<Env, NightlyParams> {
  override async run(event: Readonly<WorkflowEvent<NightlyParams>>, step: WorkflowStep) {
    const db = drizzle(this.env.DB, { schema }) as Db;
    const now = new Date(event.payload.asOf ?? event.timestamp);
    const runId = event.instanceId;
    const pageSize = event.payload.pageSize ?? 500;

    await step.do("start run", retries, async () => startRunStep(db, runId, now));
    const fit = await step.do("fit customer models", retries, async () => fitCustomerModelsStep(db, now));
    const population = await step.do("fit ranking statistics", retries, async () => fitPopulationStep(db, now));

    let cursor = "";
    let scored = 0;
    let transitions = 0;
    for (let page = 0; ; page++) {
      const result = await step.do(`score page ${page}`, retries, async () => {
        forgetModels();
        const models = (await currentModels(db, now)).customer as PopulationModels;
        return scorePageStep(db, models, cursor, pageSize, runId, now);
      });
      scored += result.scored;
      transitions += result.transitions;
      if (!result.nextCursor) break;
      cursor = result.nextCursor;
    }

    const webhook = this.env.TRANSITIONS_WEBHOOK_URL;
    if (webhook && transitions > 0) {
      await step.do("push transitions to webhook", retries, async () => {
        const rows = await transitionsSince(db, now.toISOString(), 10_000);
        const mine = rows.filter((row) => row.run_id === runId);
        const response = await fetch(webhook, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({
            runId,
            transitions: mine.map((row) => ({
              customerId: row.customer_id,
              from: row.from_stage,
              to: row.to_stage,
              at: row.at,
            })),
          }),
        });
        if (!response.ok) throw new Error(`webhook answered ${response.status}`);
        return { sent: mine.length };
      });
    }
    const detail = { fit, population, scored, transitions };
    await step.do("finish run", retries, async () => finishRunStep(db, runId, detail, now));
    return detail;
  }
}
