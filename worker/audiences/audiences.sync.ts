// The nightly job's audience steps, run after customers are scored: each saved audience is sized and,
// when it has a webhook, its members are synced and who joined and who left since its receiver was
// last told is POSTed in pages (worker/audiences/delivery.ts). Every page is its own Workflow step with
// retries and backoff. One audience's failure (a receiver down, a URL no longer allowed) is recorded
// on that audience and never stops the run or the other audiences.
import type { WorkflowStep } from "cloudflare:workers";
import { NonRetryableError } from "cloudflare:workflows";
import { type ListedRow, type ListFilter, listCustomers } from "../admin/customer-lists.repo.ts";
import { type CustomerRowView, csvHeader, listedCustomerView, matchKeysByCustomer } from "../admin/customer-rows.ts";
import type { Db, Env } from "../env.ts";
import { enabledMatchKeys, type MatchKeyName, matchKeyColumn } from "../identity/match-keys.ts";
import {
  countMembers,
  dropUndelivered,
  findAudience,
  joinedPage,
  leftPage,
  listAudiences,
  type Member,
  markDelivered,
  markMembersPage,
  pendingChanges,
  recordDelivery,
  recordSize,
  removeMembers,
  scoredCustomers,
  startSync,
} from "./audiences.repo.ts";
import type { AudienceFilters } from "./audiences.schemas.ts";
import { type DeliveryResult, deliver } from "./delivery.ts";
import { openSecret } from "./secrets.ts";
import { allowsLocalWebhooks, webhookUrlProblem } from "./webhook-url.ts";

/** Members marked per step (one keyset read and one write). */
const markPageSize = 2_000;
/** Customers per webhook POST (joined rows or left ids), unless the run asks for another size. */
export const defaultWebhookPageSize = 500;

const dbRetries = {
  retries: { limit: 3, delay: "5 seconds" as const, backoff: "exponential" as const },
  timeout: "5 minutes" as const,
};
/** A receiver gets 5 tries of each page over about 2.5 minutes before the page is given up until the next run. */
const deliveryRetries = {
  retries: { limit: 4, delay: "10 seconds" as const, backoff: "exponential" as const },
  timeout: "2 minutes" as const,
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
 * Where the audiences' members are read: the scored customers of the one database, or of every
 * customer shard (worker/shards/nightly.ts). The audiences and their members' delivery state stay in
 * the main database either way.
 */
export interface AudienceCustomers {
  /** Parts the members are walked in, one keyset walk each (1, or the shard count). */
  partitions: number;
  /** The Workflow step name of page `page` of part `partition` of audience `id`'s members. */
  membersStepName(id: string, partition: number, page: number): string;
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
    membersStepName: (id, _partition, page) => `audience ${id}: members ${page}`,
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
): Promise<AudienceSyncSummary> {
  const ids = await step.do("audiences", dbRetries, async () => (await listAudiences(db)).map((a) => a.id));
  const summary: AudienceSyncSummary = { audiences: ids.length, delivered: 0, failed: 0 };
  for (const id of ids) {
    try {
      const outcome = await syncAudience(step, db, env, runId, id, webhookPageSize, customers);
      if (outcome === "delivered") summary.delivered += 1;
      if (outcome === "failed") summary.failed += 1;
    } catch (error) {
      summary.failed += 1;
      console.error(JSON.stringify({ runId, audienceId: id, step: "audience sync", error: String(error) }));
      await recordFailure(step, db, runId, id, error);
    }
  }
  return summary;
}

/** Records a sync that stopped on an error; the page that failed may already have recorded its status code. */
async function recordFailure(step: WorkflowStep, db: Db, runId: string, id: string, error: unknown) {
  try {
    await step.do(`audience ${id}: record failure`, dbRetries, async () => {
      const audience = await findAudience(db, id);
      if (!audience) return;
      const sameRun = audience.lastDeliveryRunId === runId && audience.lastDeliveryOutcome === "failed";
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

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error)).slice(0, 500);

async function syncAudience(
  step: WorkflowStep,
  db: Db,
  env: Env,
  runId: string,
  id: string,
  webhookPageSize: number,
  customers: AudienceCustomers,
): Promise<"sized" | "delivered" | "no_changes" | "failed" | "gone" | "superseded"> {
  const start = await step.do(
    `audience ${id}: start`,
    dbRetries,
    async (): Promise<SyncPlan | "sized" | "failed" | "gone"> => {
      const audience = await findAudience(db, id);
      if (!audience) return "gone";
      const filters = audience.filters as AudienceFilters;
      if (!audience.webhookUrl) {
        await recordSize(db, id, await customers.count(filters), new Date());
        return "sized";
      }
      // Checked again at delivery: the URL may predate a change of AUDIENCE_WEBHOOKS_ALLOW_LOCAL.
      const problem = webhookUrlProblem(audience.webhookUrl, allowsLocalWebhooks(env.AUDIENCE_WEBHOOKS_ALLOW_LOCAL));
      if (problem) {
        await recordSize(db, id, await customers.count(filters), new Date());
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
  for (let partition = 0; partition < customers.partitions; partition++) {
    let after: Parameters<typeof markMembersPage>[4];
    for (let page = 0; ; page++) {
      const marked = await step.do(customers.membersStepName(id, partition, page), dbRetries, async () =>
        markMembersPage(
          db,
          id,
          start.seq,
          start.filters,
          after,
          markPageSize,
          (filter) => customers.list(partition, filter),
          partition,
        ),
      );
      size += marked.marked;
      if (!marked.after) break;
      after = marked.after;
    }
  }
  const changes = await step.do(`audience ${id}: changes`, dbRetries, async () => {
    await dropUndelivered(db, id, start.seq);
    await recordSize(db, id, size, new Date());
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

  let statusCode: number | null = null;
  for (let page = 0; page < pages; page++) {
    const kind = page < joinedPages ? "joined" : "left";
    const sent = await step.do(`audience ${id}: ${kind} page ${page + 1}`, deliveryRetries, async (ctx) => {
      // A later run (a second nightly job started meanwhile) or a new webhook URL supersedes this run:
      // its pages would tell the wrong receiver, or tell members of the later run they left.
      const audience = await findAudience(db, id);
      if (!audience || audience.syncSeq !== start.seq || audience.webhookUrl !== start.url)
        return { statusCode: null, superseded: true };
      const members = kind === "joined" ? await joinedPage(db, id, start.seq, webhookPageSize) : [];
      const ids =
        kind === "joined"
          ? members.map((member) => member.customerId)
          : await leftPage(db, id, start.seq, webhookPageSize);
      if (ids.length === 0) return { statusCode: null };
      const joined = kind === "joined" ? await joinedRows(customers, members, start.matchKeys) : [];
      const sentIds = new Set(joined.map((row) => String(row.customerId)));
      // Joined but no longer scored (erased since): nothing to tell, nothing to keep.
      const unscored = kind === "joined" ? ids.filter((customerId) => !sentIds.has(customerId)) : [];
      await removeMembers(db, id, unscored);
      if (kind === "joined" && joined.length === 0) return { statusCode: null };
      const body = JSON.stringify({
        audience: { id, name: start.name },
        runId,
        page: page + 1,
        pages,
        joined,
        left: kind === "left" ? ids : [],
      });
      const secret = await openSecret(audience.secret, id, env.IDENTITY_HASH_SECRET);
      const delivery = { url: start.url, secret, id: `${id}_${runId}_${page + 1}`, body, agent: "Patron-Audiences/1" };
      const result = await deliver(delivery, new Date());
      if (!result.ok) {
        await recordAttempt(db, id, runId, result, changes, ctx.attempt, deliveryRetries.retries.limit + 1);
        const message = `page ${page + 1} of ${pages}: ${result.error}`;
        throw result.retry ? new Error(message) : new NonRetryableError(message);
      }
      if (kind === "joined") await markDelivered(db, id, [...sentIds]);
      else await removeMembers(db, id, ids);
      return { statusCode: result.statusCode };
    });
    if ("superseded" in sent) return "superseded";
    statusCode = sent.statusCode ?? statusCode;
  }
  await step.do(`audience ${id}: delivered`, dbRetries, async () =>
    recordDelivery(db, id, { at: new Date(), runId, outcome: "delivered", statusCode, error: null, ...changes }),
  );
  return "delivered";
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
