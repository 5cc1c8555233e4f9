// The nightly job's stage transitions, POSTed to TRANSITIONS_WEBHOOK_URL after scoring, 1,000 a POST,
// delivered as audience webhooks are (worker/audiences/delivery.ts): `webhook-id`
// `transitions_<run id>_<page>` (the same when the step is retried, so a receiver drops a page it took),
// `webhook-timestamp`, and `webhook-signature` when TRANSITIONS_WEBHOOK_SECRET is set; 15 s a POST,
// redirects not followed. The body is the contract it always was: `{ runId, transitions: [{ customerId,
// from, to, at }] }`. Runs on either store: the pages are the one database's, or each shard's in turn.
import { NonRetryableError } from "cloudflare:workflows";
import { deliver } from "../audiences/delivery.ts";
import { transitionsUrlProblem } from "../audiences/webhook-url.ts";
import { isSigningSecret } from "../core/webhooks/signing-secret.ts";
import type { OptionalSettings } from "../env.ts";
import type { NightlyStore } from "./nightly.store.ts";

/**
 * Why the nightly job's webhook step refuses a TRANSITIONS_WEBHOOK_SECRET (sending nothing, never unsigned).
 * Not a reason to answer 503: an optional webhook's typo must not take the storefront's shelf down.
 */
export const transitionsSecretProblem =
  'TRANSITIONS_WEBHOOK_SECRET must be a Standard Webhooks secret: whsec_ and the base64 of 24 to 64 random bytes (make one with: echo "whsec_$(openssl rand -base64 32)").';

/** Transitions per POST. */
export const transitionsPageSize = 1_000;

export type TransitionsWebhookSettings = Pick<
  OptionalSettings,
  "TRANSITIONS_WEBHOOK_URL" | "TRANSITIONS_WEBHOOK_SECRET" | "AUDIENCE_WEBHOOKS_ALLOW_LOCAL"
>;

/**
 * Every page of the run's transitions POSTed, in order; what was sent. A page the receiver did not take
 * throws, and the Workflow step retries from the first page, each page under the same id. A URL the
 * rule above refuses, or a malformed secret, throws before anything is sent, naming the setting (logged
 * too), and is not retried.
 */
export async function pushTransitions(
  settings: TransitionsWebhookSettings,
  store: Pick<NightlyStore, "transitionPages">,
  runId: string,
  pageSize = transitionsPageSize,
): Promise<{ sent: number }> {
  const url = settings.TRANSITIONS_WEBHOOK_URL;
  const secret = settings.TRANSITIONS_WEBHOOK_SECRET ?? null;
  if (!url) return { sent: 0 };
  const problem =
    transitionsUrlProblem(url, settings.AUDIENCE_WEBHOOKS_ALLOW_LOCAL) ??
    (secret !== null && !isSigningSecret(secret) ? transitionsSecretProblem : null);
  if (problem) {
    // Workflows reports the run's error in its own words: the log line names the setting.
    console.error(JSON.stringify({ runId, step: "push transitions to webhook", error: problem }));
    throw new NonRetryableError(problem);
  }
  let sent = 0;
  let page = 0;
  for await (const rows of store.transitionPages(runId, pageSize)) {
    page += 1;
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
    sent += rows.length;
  }
  return { sent };
}
