// The nightly job's stage transitions, POSTed to TRANSITIONS_WEBHOOK_URL after scoring, 1,000 a POST,
// delivered as audience webhooks are (worker/audiences/delivery.ts): `webhook-id`
// `transitions_<run id>_<page>` (the same when the step is retried, so a receiver drops a page it took),
// `webhook-timestamp`, and `webhook-signature` when TRANSITIONS_WEBHOOK_SECRET is set; 15 s a POST,
// redirects not followed. The body is the contract it always was: `{ runId, transitions: [{ customerId,
// from, to, at }] }`. Runs on either store: the pages are the one database's, or each shard's in turn.
// A Workflow step POSTs at most `transitionsPagesPerStep` pages and answers where the next begins: a
// first night, when every customer gets a stage, is millions of transitions, and one step sending them
// all would pass an invocation's 10,000 subrequests (a read and a POST a page) and, failing late,
// send them all again.
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
 * Pages one step POSTs at most: 100,000 transitions; a read and a POST each, and at most one read
 * more per shard, finding it has nothing (left) to send (at most 1,200 subrequests at 1,000 shards). At 15 s a POST at most,
 * the step's timeout is 30 minutes (nightly.workflow.ts).
 */
export const transitionsPagesPerStep = 100;

/** Where the walk of a run's transitions stands: the partition (shard) and the last id sent from it, the pages and transitions sent. */
export interface TransitionsPosition {
  partition: number;
  afterId: number;
  page: number;
  sent: number;
}

export const firstTransitionsPosition: TransitionsPosition = { partition: 0, afterId: 0, page: 0, sent: 0 };

export type TransitionsWebhookSettings = Pick<
  OptionalSettings,
  "TRANSITIONS_WEBHOOK_URL" | "TRANSITIONS_WEBHOOK_SECRET" | "AUDIENCE_WEBHOOKS_ALLOW_LOCAL"
>;

/**
 * The run's transitions POSTed in order from `from`, up to `pagesPerStep` pages: the transitions sent
 * so far, and where the next step begins (null: all were sent). A page the receiver did not take
 * throws, and the Workflow step retries from its own first page, each page under the same id. A URL
 * the rule above refuses, or a malformed secret, throws before anything is sent, naming the setting
 * (logged too), and is not retried.
 */
export async function pushTransitions(
  settings: TransitionsWebhookSettings,
  store: Pick<NightlyStore, "transitionsPage" | "partitions">,
  runId: string,
  from: TransitionsPosition = firstTransitionsPosition,
  pageSize = transitionsPageSize,
  pagesPerStep = transitionsPagesPerStep,
): Promise<{ sent: number; next: TransitionsPosition | null }> {
  const url = settings.TRANSITIONS_WEBHOOK_URL;
  const secret = settings.TRANSITIONS_WEBHOOK_SECRET ?? null;
  if (!url) return { sent: from.sent, next: null };
  const problem =
    transitionsUrlProblem(url, settings.AUDIENCE_WEBHOOKS_ALLOW_LOCAL) ??
    (secret !== null && !isSigningSecret(secret) ? transitionsSecretProblem : null);
  if (problem) {
    // Workflows reports the run's error in its own words: the log line names the setting.
    console.error(JSON.stringify({ runId, step: "push transitions to webhook", error: problem }));
    throw new NonRetryableError(problem);
  }
  let { partition, afterId, page, sent } = from;
  for (let posted = 0; posted < pagesPerStep; ) {
    if (partition >= Math.max(1, store.partitions)) return { sent, next: null };
    const rows = await store.transitionsPage(runId, partition, afterId, pageSize);
    if (rows.length > 0) {
      page += 1;
      await postPage(url, secret, runId, page, rows);
      posted += 1;
      sent += rows.length;
      afterId = rows[rows.length - 1]?.id ?? afterId;
    }
    // A short page is the partition's last: the next read is the next partition's.
    if (rows.length < pageSize) {
      partition += 1;
      afterId = 0;
    }
  }
  return { sent, next: { partition, afterId, page, sent } };
}

/** The name of the Workflow step that sends part `part` (from 1) of a run's transitions. */
export const transitionsStepName = (part: number): string =>
  part === 1 ? "push transitions to webhook" : `push transitions to webhook ${part}`;

/**
 * The run's transitions POSTed as the Workflow sends them: step after step, each `pushTransitions`
 * from where the last stopped, until all were sent, each step with `config` (its retries and timeout:
 * up to 100 POSTs of up to 15 s each, one after another). Answers the transitions sent.
 */
export async function pushTransitionsSteps(
  step: Pick<WorkflowStep, "do">,
  config: WorkflowStepConfig,
  settings: TransitionsWebhookSettings,
  store: Pick<NightlyStore, "transitionsPage" | "partitions">,
  runId: string,
  pageSize = transitionsPageSize,
  pagesPerStep = transitionsPagesPerStep,
): Promise<number> {
  let position: TransitionsPosition | null = firstTransitionsPosition;
  let sent = 0;
  for (let part = 1; position; part++) {
    const from: TransitionsPosition = position;
    const pushed = await step.do(transitionsStepName(part), config, async () =>
      pushTransitions(settings, store, runId, from, pageSize, pagesPerStep),
    );
    position = pushed.next;
    sent = pushed.sent;
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
