// The nightly job's audience steps, run after customers are scored: each saved audience is sized and,
// when it has a webhook, its members are synced and who joined and who left since its receiver was
// last told is POSTed in pages (worker/audiences/delivery.ts). A Workflow step walks up to
// `markPagesPerStep` pages of members, or POSTs up to `deliveryPagesPerStep` pages, with retries and
// backoff: an audience of ten million members takes 1,205–1,244 steps, not one per page (26,000, past
// Workflows' 25,000). A page is kept in D1 before its POST and accepted with the members it names, so a
// retried step resumes at the page that failed and sends it unchanged, under its delivery id. One audience's
// failure (a receiver down, a URL no longer allowed) is recorded on that audience and never stops the
// run or the other audiences.
import type { WorkflowStep } from "cloudflare:workers";
import { NonRetryableError } from "cloudflare:workflows";
import { type ListedRow, type ListFilter, listCustomers } from "../admin/customer-lists.repo.ts";
import { type CustomerRowView, csvHeader, listedCustomerView, matchKeysByCustomer } from "../admin/customer-rows.ts";
import type { Db, Env } from "../env.ts";
import { errorText } from "../http/error-text.ts";
import { enabledMatchKeys, type MatchKeyName, matchKeyColumn } from "../identity/match-keys.ts";
import {
  type AudienceRow,
  countMembers,
  dropHeldPagesNaming,
  dropUndelivered,
  findAudience,
  holdPage,
  joinedPage,
  leftPage,
  listAudiences,
  type Member,
  markMembersPage,
  membersNamed,
  type PendingPage,
  pageAccepted,
  pendingChanges,
  pendingPage,
  purgeMembers,
  recordDelivery,
  recordSize,
  removeMembers,
  scoredCustomers,
  startSync,
} from "./audiences.repo.ts";
import type { AudienceFilters } from "./audiences.schemas.ts";
import { type DeliveryResult, deliver } from "./delivery.ts";
import type { AudiencePaging } from "./paging.ts";
import { defaultAudiencePaging } from "./paging.ts";
import { openSecret } from "./secrets.ts";
import { allowsLocalWebhooks, webhookUrlProblem } from "./webhook-url.ts";

/** Customers per webhook POST (joined rows or left ids), unless the run asks for another size. */
export const defaultWebhookPageSize = 500;

export { type AudiencePaging, defaultAudiencePaging } from "./paging.ts";

const dbRetries = {
  retries: { limit: 3, delay: "5 seconds" as const, backoff: "exponential" as const },
  timeout: "5 minutes" as const,
};
/**
 * A delivery step gets 5 tries, about 2.5 minutes of waits between them, each resuming at the page that
 * failed (and ending the step once it is accepted, so each page gets 5 tries); a page still failing
 * leaves the audience's remaining pages to the next run.
 */
const deliveryRetries = {
  retries: { limit: 4, delay: "10 seconds" as const, backoff: "exponential" as const },
  timeout: "10 minutes" as const,
};

export interface AudienceSyncSummary {
  audiences: number;
  delivered: number;
  failed: number;
}

interface SyncPlan {
  name: string;
  url: string;
  filters: AudienceFilters;
  matchKeys: MatchKeyName[];
  seq: number;
}

/**
 * Whether `sync` is still the audience's: a later run (a second nightly job started meanwhile) or a new
 * webhook URL supersedes it, and its pages would tell the wrong receiver, or tell members of the later
 * run they left.
 */
function isCurrent(audience: AudienceRow | undefined, sync: SyncPlan): audience is AudienceRow {
  return audience !== undefined && audience.syncSeq === sync.seq && audience.webhookUrl === sync.url;
}

/**
 * Where the audiences' members are read: the scored customers of the one database, or of every
 * customer shard (worker/shards/nightly.ts). The audiences and their members' delivery state stay in
 * the main database either way.
 */
export interface AudienceCustomers {
  /** Parts the members are walked in, one keyset walk each (1, or the shard count). */
  partitions: number;
  /** The members of an audience without a webhook, counted. */
  count(filters: AudienceFilters): Promise<number>;
  /** One keyset page of the customer list in part `partition`. */
  list(partition: number, filter: ListFilter): Promise<ListedRow[]>;
  /**
   * These members' scored rows (those still scored) in id order, and the match keys asked for; each
   * is looked for in the shard the sync found them in first.
   */
  scored(members: readonly Member[], matchKeys: readonly MatchKeyName[]): Promise<ScoredMembers>;
}

export interface ScoredMembers {
  rows: ListedRow[];
  /** Customer id → match key name → value. */
  keys: Record<string, Record<string, string>>;
}

/** The scored rows and match keys of these customers in `db` (the one database, or a shard's own). */
export async function scoredMembers(
  db: Db,
  customerIds: readonly string[],
  matchKeys: readonly MatchKeyName[],
): Promise<ScoredMembers> {
  const rows = await scoredCustomers(db, customerIds);
  const keys = matchKeys.length ? await matchKeysByCustomer(db, rows, matchKeys) : new Map();
  return { rows, keys: Object.fromEntries(keys) };
}

/** The members in the one database. */
export function d1AudienceCustomers(db: Db): AudienceCustomers {
  return {
    partitions: 1,
    count: (filters) => countMembers(db, filters),
    list: (_partition, filter) => listCustomers(db, filter),
    scored: (members, matchKeys) =>
      scoredMembers(
        db,
        members.map((member) => member.customerId),
        matchKeys,
      ),
  };
}

export async function syncAudiencesSteps(
  step: WorkflowStep,
  db: Db,
  env: Env,
  runId: string,
  webhookPageSize = defaultWebhookPageSize,
  customers: AudienceCustomers = d1AudienceCustomers(db),
  paging: AudiencePaging = defaultAudiencePaging,
): Promise<AudienceSyncSummary> {
  // First the members of audiences deleted or given a new receiver since the last run are forgotten.
  // A purge that keeps failing stops only itself: an audience whose purge is pending does not sync
  // (startSync), the others do, and the next run takes the purge up where it stopped.
  try {
    for (let part = 1; ; part++) {
      const purge = await step.do(purgeStepName(part), dbRetries, async () =>
        purgeMembers(db, paging.purgePageSize, paging.purgePagesPerStep),
      );
      if (!purge.left) break;
    }
  } catch (error) {
    console.error(JSON.stringify({ runId, step: "audiences: purge", error: errorText(error) }));
  }
  const ids = await step.do("audiences", dbRetries, async () => (await listAudiences(db)).map((a) => a.id));
  const summary: AudienceSyncSummary = { audiences: ids.length, delivered: 0, failed: 0 };
  for (const id of ids) {
    try {
      const outcome = await syncAudience(step, db, env, runId, id, { webhookPageSize, customers, paging });
      if (outcome === "delivered") summary.delivered += 1;
      if (outcome === "failed") summary.failed += 1;
    } catch (error) {
      summary.failed += 1;
      console.error(JSON.stringify({ runId, audienceId: id, step: "audience sync", error: errorText(error) }));
      await recordFailure(step, db, runId, id, error);
    }
  }
  return summary;
}

/** Records a sync that stopped on an error; a page that failed has already recorded its status code. */
async function recordFailure(step: WorkflowStep, db: Db, runId: string, id: string, error: unknown) {
  try {
    await step.do(`audience ${id}: record failure`, dbRetries, async () => {
      const audience = await findAudience(db, id);
      if (!audience) return;
      // A page that failed has recorded its own attempt (with the receiver's status): that stays. Any
      // other error is this one, even after a page of the run failed and then got through.
      const pageFailed = /^(\w*Error: )*page \d+ of \d+: /.test(String(error));
      const sameRun = pageFailed && audience.lastDeliveryRunId === runId && audience.lastDeliveryOutcome === "failed";
      await recordDelivery(db, id, {
        at: new Date(),
        runId,
        outcome: "failed",
        statusCode: sameRun ? audience.lastDeliveryStatusCode : null,
        error: sameRun && audience.lastDeliveryError ? audience.lastDeliveryError : errorText(error),
        joined: sameRun ? (audience.lastDeliveryJoined ?? 0) : 0,
        left: sameRun ? (audience.lastDeliveryLeft ?? 0) : 0,
      });
    });
  } catch (recordError) {
    console.error(JSON.stringify({ runId, audienceId: id, step: "record failure", error: String(recordError) }));
  }
}

async function syncAudience(
  step: WorkflowStep,
  db: Db,
  env: Env,
  runId: string,
  id: string,
  sizes: { webhookPageSize: number; customers: AudienceCustomers; paging: AudiencePaging },
): Promise<"sized" | "delivered" | "no_changes" | "failed" | "gone" | "superseded"> {
  const { webhookPageSize, customers, paging } = sizes;
  const start = await step.do(
    `audience ${id}: start`,
    dbRetries,
    async (): Promise<SyncPlan | "sized" | "failed" | "gone"> => {
      const audience = await findAudience(db, id);
      if (!audience) return "gone";
      const filters = audience.filters as AudienceFilters;
      if (!audience.webhookUrl) {
        await recordSize(db, id, await customers.count(filters), new Date(), filters);
        return "sized";
      }
      // Checked again at delivery: the URL may predate a change of AUDIENCE_WEBHOOKS_ALLOW_LOCAL.
      const problem = webhookUrlProblem(audience.webhookUrl, allowsLocalWebhooks(env.AUDIENCE_WEBHOOKS_ALLOW_LOCAL));
      if (problem) {
        await recordSize(db, id, await customers.count(filters), new Date(), filters);
        await recordDelivery(db, id, {
          at: new Date(),
          runId,
          outcome: "failed",
          statusCode: null,
          error: `not sent: the webhook URL ${problem} on this deployment`,
          joined: 0,
          left: 0,
        });
        return "failed";
      }
      const seq = await startSync(db, id);
      if (seq === undefined) return "gone";
      const enabled = enabledMatchKeys(env.EXPORT_MATCH_KEYS);
      const matchKeys = (audience.matchKeys as MatchKeyName[]).filter((name) => enabled.has(name));
      return { name: audience.name, url: audience.webhookUrl, filters, matchKeys, seq };
    },
  );
  if (typeof start === "string") return start;

  let size = 0;
  let position: MembersPosition | null = { partition: 0 };
  for (let part = 1; position; part++) {
    const from: MembersPosition = position;
    const marked = await step.do(membersStepName(id, part), dbRetries, async () =>
      markMembers(db, id, start, customers, from, paging),
    );
    size += marked.marked;
    position = marked.next;
  }
  const changes = await step.do(`audience ${id}: changes`, dbRetries, async () => {
    await dropUndelivered(db, id, start.seq);
    await recordSize(db, id, size, new Date(), start.filters);
    return pendingChanges(db, id, start.seq);
  });
  const joinedPages = Math.ceil(changes.joined / webhookPageSize);
  const pages = joinedPages + Math.ceil(changes.left / webhookPageSize);
  if (pages === 0) {
    await step.do(`audience ${id}: no changes`, dbRetries, async () =>
      recordDelivery(db, id, {
        at: new Date(),
        runId,
        outcome: "no_changes",
        statusCode: null,
        error: null,
        ...changes,
      }),
    );
    return "no_changes";
  }

  // Every step either throws or leaves fewer members to tell, so the walk ends; a receiver that needs
  // retries on many pages is left, past the steps they may add, to the next run.
  const stepsAllowed = Math.ceil(pages / paging.deliveryPagesPerStep) + 1 + paging.retriedDeliverySteps;
  for (let part = 1; ; part++) {
    if (part > stepsAllowed) {
      const outcome = await step.do(`audience ${id}: stopped`, dbRetries, async () => {
        const audience = await findAudience(db, id);
        // The last page may have got through on a retry in the last step allowed (which then answers
        // "more"): with no page held and nothing left to tell, the sync is delivered.
        const current = isCurrent(audience, start);
        const untold = current ? await pendingChanges(db, id, start.seq) : null;
        if (current && untold && untold.joined + untold.left === 0 && !pendingPage(audience, start.seq)) {
          const statusCode = audience.syncStatusCode ?? null;
          await recordDelivery(db, id, {
            at: new Date(),
            runId,
            outcome: "delivered",
            statusCode,
            error: null,
            ...changes,
          });
          return "delivered" as const;
        }
        await recordDelivery(db, id, {
          at: new Date(),
          runId,
          outcome: "failed",
          statusCode: audience?.syncStatusCode ?? null,
          error: `stopped after ${stepsAllowed} delivery steps (${audience?.syncPagesSent ?? 0} of ${pages} pages accepted): the receiver needed retries on too many pages; the next run sends the rest`,
          ...changes,
        });
        return "failed" as const;
      });
      return outcome;
    }
    const sent = await step.do(deliveryStepName(id, part), deliveryRetries, async (ctx) =>
      deliverPages(env, db, runId, id, start, { changes, pages, webhookPageSize, customers }, paging, ctx.attempt),
    );
    if (sent === "superseded") return "superseded";
    if (sent === "done") break;
  }
  await step.do(`audience ${id}: delivered`, dbRetries, async () => {
    // The last accepted page's answer, kept with it (a step's own result is lost if the step is retried).
    const statusCode = (await findAudience(db, id))?.syncStatusCode ?? null;
    await recordDelivery(db, id, { at: new Date(), runId, outcome: "delivered", statusCode, error: null, ...changes });
  });
  return "delivered";
}

/** Where the walk of an audience's members stands: the part (shard) and the list's keyset cursor in it. */
interface MembersPosition {
  partition: number;
  after?: ListFilter["after"];
}

/** The name of the Workflow step that marks part `part` (from 1) of audience `id`'s members. */
export const membersStepName = (id: string, part: number): string => `audience ${id}: mark ${part}`;

/** The name of the Workflow step that forgets part `part` (from 1) of the members of deleted or re-pointed audiences. */
export const purgeStepName = (part: number): string => `audiences: purge ${part}`;

/** The name of the Workflow step that POSTs part `part` (from 1) of audience `id`'s changes. */
export const deliveryStepName = (id: string, part: number): string => `audience ${id}: deliver ${part}`;

/**
 * Marks the members from `from` on, up to `paging.markPagesPerStep` keyset pages (over parts: a short page is its part's
 * last): how many were marked, and where the next step begins (null: all were). Marking again is
 * harmless, so a retried step simply starts from `from` again.
 */
async function markMembers(
  db: Db,
  id: string,
  sync: SyncPlan,
  customers: AudienceCustomers,
  from: MembersPosition,
  paging: AudiencePaging,
): Promise<{ marked: number; next: MembersPosition | null }> {
  let { partition, after } = from;
  let marked = 0;
  for (let read = 0; read < paging.markPagesPerStep && partition < customers.partitions; read++) {
    const part = partition;
    const page = await markMembersPage(
      db,
      id,
      sync.seq,
      sync.filters,
      after,
      paging.markPageSize,
      (filter) => customers.list(part, filter),
      part,
    );
    marked += page.marked;
    if (page.after) after = page.after;
    else {
      partition += 1;
      after = undefined;
    }
  }
  return { marked, next: partition < customers.partitions ? { partition, after } : null };
}

/**
 * POSTs the sync's changes, joined first and then left, up to `paging.deliveryPagesPerStep` pages.
 * Each page is numbered after the pages accepted so far and kept in D1 before its POST (`holdPage`),
 * so every try of it, in this step or a retry, sends the same body under the same delivery id, and an
 * id never names other customers; accepting it marks its members and lets it go in one batch. A page
 * the receiver did not take is recorded on the audience and throws (retried unless the answer says it
 * cannot help); a retry that gets it accepted ends its step there, so the pages after it get tries of
 * their own in the next step rather than what the failures left of this one's. Answers "done" once
 * nothing is left to tell, "more" when pages may be, "superseded" when a later run or URL took over.
 */
async function deliverPages(
  env: Env,
  db: Db,
  runId: string,
  id: string,
  sync: SyncPlan,
  plan: {
    changes: { joined: number; left: number };
    pages: number;
    webhookPageSize: number;
    customers: AudienceCustomers;
  },
  paging: AudiencePaging,
  attempt: number,
): Promise<"done" | "more" | "superseded"> {
  const { changes, pages } = plan;
  for (let read = 0; read < paging.deliveryPagesPerStep; read++) {
    const audience = await findAudience(db, id);
    if (!isCurrent(audience, sync)) return "superseded";
    let pending = pendingPage(audience, sync.seq);
    // A held page is tried again: one naming a customer erased (or merged away) since it was made is
    // let go as the erasure lets it go, in case the erasure ran between the page's read and its hold.
    const gone = pending?.kind === "joined" ? await goneSince(db, id, pending, plan.customers) : [];
    if (gone.length > 0) {
      await dropHeldPagesNaming(db, gone);
      continue;
    }
    if (!pending) {
      const next = await nextPage(db, runId, id, sync, plan, audience.syncPagesSent + 1);
      if (next === "done") return "done";
      if (next === "skip") continue;
      pending = next;
      // Not kept: since the audience was read, a later run started or the webhook URL changed (the
      // next read ends this try), or another try of this step took the number (the next read finds
      // its page held, and sends it from here too under the same delivery id, or accepted).
      if (!(await holdPage(db, id, pending, sync.url))) continue;
    }
    const secret = await openSecret(audience.secret, id, env.IDENTITY_HASH_SECRET);
    const delivery = {
      url: sync.url,
      secret,
      id: `${id}_${runId}_${pending.page}`,
      body: pending.body,
      agent: "Patron-Audiences/1",
    };
    const result = await deliver(delivery, new Date());
    if (!result.ok) {
      await recordAttempt(db, id, runId, result, changes, attempt, deliveryRetries.retries.limit + 1);
      const message = `page ${pending.page} of ${pages}: ${result.error}`;
      throw result.retry ? new Error(message) : new NonRetryableError(message);
    }
    await pageAccepted(db, id, pending, result.statusCode);
    if (attempt > 1) return "more";
  }
  return "more";
}

/** The customers a held page of joined members names who are no longer scored where the sync found them. */
async function goneSince(db: Db, id: string, pending: PendingPage, customers: AudienceCustomers): Promise<string[]> {
  const { rows } = await customers.scored(await membersNamed(db, id, pending.customerIds), []);
  const present = new Set(rows.map((row) => row.customerId));
  return pending.customerIds.filter((customerId) => !present.has(customerId));
}

/**
 * The next page to send, numbered `page`: the first joined members not yet accepted, with their rows,
 * else the first leavers; "skip" when every member read had been erased since the sync listed them
 * (they are forgotten: there is nothing to tell), "done" when nothing is left.
 */
async function nextPage(
  db: Db,
  runId: string,
  id: string,
  sync: SyncPlan,
  plan: { pages: number; webhookPageSize: number; customers: AudienceCustomers },
  page: number,
): Promise<PendingPage | "skip" | "done"> {
  const members = await joinedPage(db, id, sync.seq, plan.webhookPageSize);
  const kind = members.length > 0 ? "joined" : "left";
  const ids =
    kind === "joined"
      ? members.map((member) => member.customerId)
      : await leftPage(db, id, sync.seq, plan.webhookPageSize);
  if (ids.length === 0) return "done";
  const joined = kind === "joined" ? await joinedRows(plan.customers, members, sync.matchKeys) : [];
  const sentIds = new Set(joined.map((row) => String(row.customerId)));
  // Joined but no longer scored (erased since): nothing to tell, nothing to keep.
  await removeMembers(
    db,
    id,
    ids.filter((customerId) => kind === "joined" && !sentIds.has(customerId)),
  );
  if (kind === "joined" && joined.length === 0) return "skip";
  const body = JSON.stringify({
    audience: { id, name: sync.name },
    runId,
    page,
    pages: plan.pages,
    joined,
    left: kind === "left" ? ids : [],
  });
  return { seq: sync.seq, page, kind, customerIds: kind === "joined" ? [...sentIds] : ids, body };
}

/** A failed attempt, recorded as it happens so the audience shows the receiver's last answer. */
async function recordAttempt(
  db: Db,
  id: string,
  runId: string,
  result: Extract<DeliveryResult, { ok: false }>,
  changes: { joined: number; left: number },
  attempt: number,
  attempts: number,
) {
  const tries = result.retry ? ` (attempt ${attempt} of ${attempts})` : "";
  await recordDelivery(db, id, {
    at: new Date(),
    runId,
    outcome: "failed",
    statusCode: result.statusCode,
    error: `${result.error}${tries}`,
    ...changes,
  });
}

/** Joined customers as CSV rows (the export's columns, then the audience's match keys). */
async function joinedRows(
  customers: AudienceCustomers,
  members: readonly Member[],
  matchKeys: readonly MatchKeyName[],
) {
  const { rows, keys } = await customers.scored(members, matchKeys);
  return rows.map((row) => {
    const view: CustomerRowView = listedCustomerView(row);
    const found: Record<string, string> = keys[row.customerId] ?? {};
    return Object.fromEntries([
      ...csvHeader.map((column) => [column, view[column]]),
      ...matchKeys.map((name) => [matchKeyColumn[name], found[name] ?? null]),
    ]) as Record<string, string | number | null>;
  });
}
