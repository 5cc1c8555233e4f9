// The nightly job's stage transitions, POSTed to TRANSITIONS_WEBHOOK_URL after scoring, 1,000 a POST,
// delivered as audience webhooks are (worker/audiences/delivery.ts): `webhook-id`
// `transitions_<run id>_<page>` (the same when the step is retried, so a receiver drops a page it took),
// `webhook-timestamp`, and `webhook-signature` when TRANSITIONS_WEBHOOK_SECRET is set; 15 s a POST,
// redirects not followed. The body is the contract it always was: `{ runId, transitions: [{ customerId,
// from, to, at }] }`. Runs on either store: the pages are the one database's, or each shard's in turn.
// The Workflow sends them in parts of up to `transitionsPagesPerStep` pages, two steps a part: the
// first plans the part's pages (each a range of row ids in one partition, kept by Workflows as the
// step's result), the second POSTs them. A first night, when every customer gets a stage, is millions
// of transitions, and one step sending them all would pass an invocation's 10,000 subrequests (a read
// and a POST a page) and, failing late, send them all again. Planned ranges keep a page the same page
// when its POST step is retried: a customer erased between two attempts leaves a page shorter, never
// moves a transition from one page into another (a receiver ignoring a page it took by its id would
// miss it).
import type { WorkflowStep, WorkflowStepConfig } from "cloudflare:workers";
import { NonRetryableError } from "cloudflare:workflows";
import { deliver } from "../audiences/delivery.ts";
import { transitionsUrlProblem } from "../audiences/webhook-url.ts";
import { isSigningSecret } from "../core/webhooks/signing-secret.ts";
import type { OptionalSettings } from "../env.ts";
import type { TransitionRow } from "./nightly.repo.ts";
import type { NightlyStore } from "./nightly.store.ts";

/**
 * Why the nightly job's webhook step refuses a TRANSITIONS_WEBHOOK_SECRET (sending nothing, never unsigned).
 * Not a reason to answer 503: an optional webhook's typo must not take the storefront's shelf down.
 */
export const transitionsSecretProblem =
  'TRANSITIONS_WEBHOOK_SECRET must be a Standard Webhooks secret: whsec_ and the base64 of 24 to 64 random bytes (make one with: echo "whsec_$(openssl rand -base64 32)").';

/** Transitions per POST. */
export const transitionsPageSize = 1_000;

/**
 * Pages a part holds at most: 100,000 transitions. Its plan step reads each page once, and at most one
 * read more per shard finding it has nothing (left) (at most 1,100 subrequests at 1,000 shards); its
 * POST step reads each page again and POSTs it (200). At 15 s a POST at most, the POST step's timeout
 * is 30 minutes (nightly.workflow.ts).
 */
export const transitionsPagesPerStep = 100;

/** Where the walk of a run's transitions stands: the partition (shard), the last id planned from it, the pages planned. */
export interface TransitionsPosition {
  partition: number;
  afterId: number;
  page: number;
}

export const firstTransitionsPosition: TransitionsPosition = { partition: 0, afterId: 0, page: 0 };

/** Page `page` of a run's transitions: the rows of `partition` with ids in (afterId, lastId]. */
export interface PlannedPage {
  page: number;
  partition: number;
  afterId: number;
  lastId: number;
}

/** A part's pages, and where the next part begins (null: none is left). */
export interface TransitionsPlan {
  pages: PlannedPage[];
  next: TransitionsPosition | null;
}

export type TransitionsWebhookSettings = Pick<
  OptionalSettings,
  "TRANSITIONS_WEBHOOK_URL" | "TRANSITIONS_WEBHOOK_SECRET" | "AUDIENCE_WEBHOOKS_ALLOW_LOCAL"
>;

type TransitionsStore = Pick<NightlyStore, "transitionsPage" | "partitions">;

/**
 * The URL and secret to send to, or null without a URL. A URL the rule above refuses, or a malformed
 * secret, throws naming the setting (logged too), and is not retried.
 */
function transitionsTarget(
  settings: TransitionsWebhookSettings,
  runId: string,
  step: string,
): { url: string; secret: string | null } | null {
  const url = settings.TRANSITIONS_WEBHOOK_URL;
  const secret = settings.TRANSITIONS_WEBHOOK_SECRET ?? null;
  if (!url) return null;
  const problem =
    transitionsUrlProblem(url, settings.AUDIENCE_WEBHOOKS_ALLOW_LOCAL) ??
    (secret !== null && !isSigningSecret(secret) ? transitionsSecretProblem : null);
  if (problem) {
    // Workflows reports the run's error in its own words: the log line names the setting.
    console.error(JSON.stringify({ runId, step, error: problem }));
    throw new NonRetryableError(problem);
  }
  return { url, secret };
}

/** The next `pagesPerStep` pages of the run's transitions from `from`, as id ranges; nothing is sent. */
export async function planTransitions(
  store: TransitionsStore,
  runId: string,
  from: TransitionsPosition = firstTransitionsPosition,
  pageSize = transitionsPageSize,
  pagesPerStep = transitionsPagesPerStep,
): Promise<TransitionsPlan> {
  let { partition, afterId, page } = from;
  const pages: PlannedPage[] = [];
  while (pages.length < pagesPerStep) {
    if (partition >= Math.max(1, store.partitions)) return { pages, next: null };
    const rows = await store.transitionsPage(runId, partition, afterId, pageSize);
    const lastId = rows[rows.length - 1]?.id;
    if (lastId !== undefined) {
      page += 1;
      pages.push({ page, partition, afterId, lastId });
      afterId = lastId;
    }
    // A short page is the partition's last: the next read is the next partition's.
    if (rows.length < pageSize) {
      partition += 1;
      afterId = 0;
    }
  }
  // A part filled by the last partition's last page ends the walk: no step more to find nothing.
  return { pages, next: partition >= Math.max(1, store.partitions) ? null : { partition, afterId, page } };
}

/**
 * The planned pages POSTed in order, each with the rows still in its range (a page all of whose
 * customers were erased since it was planned is not sent): the transitions sent. A page the receiver
 * did not take throws, and the Workflow step retries from the part's first page, each under its id.
 */
export async function postTransitions(
  settings: TransitionsWebhookSettings,
  store: TransitionsStore,
  runId: string,
  pages: readonly PlannedPage[],
  pageSize = transitionsPageSize,
  step = transitionsStepName(1),
): Promise<number> {
  const target = transitionsTarget(settings, runId, step);
  if (!target) return 0;
  let sent = 0;
  for (const planned of pages) {
    const read = await store.transitionsPage(runId, planned.partition, planned.afterId, pageSize);
    const rows = read.filter((row) => row.id <= planned.lastId);
    if (rows.length === 0) continue;
    await postPage(target.url, target.secret, runId, planned.page, rows);
    sent += rows.length;
  }
  return sent;
}

/**
 * The name of the Workflow step that sends part `part` (from 1) of a run's transitions. (Before pages
 * were planned, one step per part did both as "push transitions to webhook …": a name of its own keeps a
 * run resumed across that change from taking such a step's cached result for this one's.)
 */
export const transitionsStepName = (part: number): string => partStep("post transitions pages", part);

/** The name of the Workflow step that plans part `part`'s pages. */
export const transitionsPlanStepName = (part: number): string => partStep("plan transitions pages", part);

/** A part's step name: the first part's is the bare name. */
const partStep = (name: string, part: number) => (part === 1 ? name : `${name} ${part}`);

/**
 * The run's transitions POSTed as the Workflow sends them: part after part, each planned in one step
 * (with `retries`) and POSTed in the next (with `config`: up to 100 POSTs of up to 15 s each, one
 * after another), until none is left. Answers the transitions sent.
 */
export async function pushTransitionsSteps(
  step: Pick<WorkflowStep, "do">,
  config: WorkflowStepConfig,
  retries: WorkflowStepConfig,
  settings: TransitionsWebhookSettings,
  store: TransitionsStore,
  runId: string,
  pageSize = transitionsPageSize,
  pagesPerStep = transitionsPagesPerStep,
): Promise<number> {
  let position: TransitionsPosition | null = firstTransitionsPosition;
  let sent = 0;
  for (let part = 1; position; part++) {
    const from: TransitionsPosition = position;
    const plan = await step.do(transitionsPlanStepName(part), retries, async () => {
      // A refused URL or secret fails the run before anything is read.
      transitionsTarget(settings, runId, transitionsPlanStepName(part));
      return planTransitions(store, runId, from, pageSize, pagesPerStep);
    });
    if (plan.pages.length > 0)
      sent += await step.do(transitionsStepName(part), config, async () =>
        postTransitions(settings, store, runId, plan.pages, pageSize, transitionsStepName(part)),
      );
    position = plan.next;
  }
  return sent;
}
/** POSTs page `page` of the run's transitions; throws when the receiver did not take it. */
async function postPage(
  url: string,
  secret: string | null,
  runId: string,
  page: number,
  rows: readonly TransitionRow[],
): Promise<void> {
  const body = JSON.stringify({
    runId,
    transitions: rows.map((row) => ({
      customerId: row.customer_id,
      from: row.from_stage,
      to: row.to_stage,
      at: row.at,
    })),
  });
  const id = `transitions_${runId}_${page}`;
  const result = await deliver({ url, secret, id, body, agent: "Patron-Transitions/1" }, new Date());
  if (!result.ok) throw new Error(`transitions webhook page ${page}: ${result.error}`);
}
