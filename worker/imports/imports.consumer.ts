// The queue consumer of bulk imports: each message is one batch of orders, ingested as POST /v1/orders
// ingests them (`ingestOrders`, or the shards' router). Orders are idempotent on their id, and a batch's
// counts are recorded once, by the delivery that moves it to `done` (one already done is acknowledged
// untouched), so a redelivered message never counts twice. A batch refused because some of its orders'
// identifiers link more orders than a region may hold (a placeholder, such as a store's walk-in card) is
// cut in halves, and those again, until the refused parts are single orders: those are set aside, named in
// the batch's record, and the rest is stored. A passing failure (customers busy in another request, D1 busy
// or failing) is retried with a growing delay; on the last delivery, or for a failure no retry can fix, the
// batch is recorded failed with its error. While customer writes on D1 are paused for a migration's last
// pass, a batch is sent to the queue again as a new message (`pausedRequeueSeconds` later) instead, so a
// pause of any length spends none of its retries. Each message is settled on its own: one bad batch never
// holds up the others. An invocation spends at most `consumerCallBudget` calls on ingestions: each one,
// a batch's first and each half of a batch cut in halves alike, takes the most it can call
// (ingestAttemptCalls) before it starts. It takes up as many batches as can each make one ingestion
// (batchesPerInvocation: all ten of a delivery up to about 170 shards, one at 1,000); the rest, and a
// batch that finds the calls spent, go back to the queue as new messages at once, spending none of their
// retries. A batch cut in halves that runs out of calls keeps where it stopped (its split progress in
// D1), and the next delivery goes on from there, so one whose cutting takes more calls than an
// invocation has finishes over several.
import { drizzle } from "drizzle-orm/d1";
import * as schema from "../../db/schema.ts";
import { batchesPerInvocation, consumerCallBudget, ingestAttemptCalls } from "../core/shards/calls.ts";
import { eventsDatabase } from "../databases.ts";
import type { Db, Env } from "../env.ts";
import { type Conversion, storedConversions } from "../events/conversions.repo.ts";
import { retailerCurrency } from "../http/config.ts";
import { classifyDatabaseError } from "../http/database-errors.ts";
import { enabledMatchKeys, matchKinds } from "../identity/match-keys.ts";
import { phoneRegion } from "../identity/phone.ts";
import { followInEvents } from "../orders/events-follow.ts";
import { type CustomerMerge, type IngestResult, ingestOrders } from "../orders/ingest.ts";
import { foreignCurrency, type OrderInput } from "../orders/orders.schemas.ts";
import { attributionSettings } from "../recommendations/attribution.ts";
import { ingestSharded, type ShardedRefusal } from "../shards/ingest-router.ts";
import { shardCount } from "../shards/shards.ts";
import { writesPausedAt } from "../shards/write-pause.ts";
import {
  type BatchRecord,
  batchProgress,
  changedIdsKept,
  holdBatch,
  keepBatchProgress,
  ordersWrittenAt,
  recordBatchAttempt,
  recordBatchDone,
  recordBatchFailed,
  type SplitProgress,
  setAsideIdsKept,
} from "./imports.repo.ts";
import { type ImportMessage, importMessageSchema } from "./imports.schemas.ts";
import { importMaxRetries, retryDelaySeconds } from "./retries.ts";

type Outcome =
  | { kind: "done"; counts: BatchRecord }
  | { kind: "retry"; error: string }
  | { kind: "paused" }
  | { kind: "failed"; error: string }
  /** Out of calls: `progress` is where the batch stands now, absent when this delivery tried nothing. */
  | { kind: "stopped"; progress?: SplitProgress };

/** Seconds a batch waits in the queue before it is tried again while customer writes are paused. */
export const pausedRequeueSeconds = 30;

/**
 * The calls an invocation's ingestions may still make. Each ingestion takes `perIngestion` (the most
 * one can call, ingestAttemptCalls) before it starts, a batch's first and each half alike; `take` says
 * false when that would pass the budget. The invocation's first ingestion always goes, so even a
 * budget smaller than one ingestion moves every batch on.
 */
interface CallBudget {
  take(): boolean;
}

function callBudget(calls: number, perIngestion: number): CallBudget {
  let left = calls;
  let started = false;
  return {
    take() {
      if (started && left < perIngestion) return false;
      started = true;
      left -= perIngestion;
      return true;
    },
  };
}

/** Counts of a batch's stored orders, with the first changed duplicates this delivery found. */
type Tally = SplitProgress["counts"] & { changedIds: string[] };

const noTally: Tally = {
  accepted: 0,
  duplicates: 0,
  changed: 0,
  suppressed: 0,
  ignored: 0,
  merges: 0,
  ignoredIdentifiers: 0,
  changedIds: [],
};

/** The counts an earlier delivery kept of a batch and this delivery's of the parts it stored, as one. */
function plus(a: SplitProgress["counts"], b: Tally): Tally {
  return {
    accepted: a.accepted + b.accepted,
    duplicates: a.duplicates + b.duplicates,
    changed: a.changed + b.changed,
    suppressed: a.suppressed + b.suppressed,
    ignored: a.ignored + b.ignored,
    merges: a.merges + b.merges,
    ignoredIdentifiers: a.ignoredIdentifiers + b.ignoredIdentifiers,
    changedIds: b.changedIds,
  };
}

/** The first changed duplicates of a batch, each id once. */
function firstChanged(result: IngestResult): string[] {
  const ids = result.results.filter((entry) => entry.changed === true).map((entry) => entry.id);
  return [...new Set(ids)].slice(0, changedIdsKept);
}

/**
 * The counts of the orders this delivery stored. On a batch's first delivery, ingestion's own answer.
 * Read back otherwise: the accepted orders are those stored with the batch's received instant, whichever
 * delivery wrote them (one that wrote them but stopped before recording leaves the next finding them
 * "duplicates"); the attributions ignored likewise. Merges and ignored identifiers are the ingesting
 * delivery's own, and so are changed duplicates (orders an earlier delivery wrote come back unchanged:
 * they are this batch's).
 */
async function tallyOf(
  orders: readonly OrderInput[],
  result: IngestResult,
  readBack: boolean,
  writtenAt: () => Promise<ReadonlyMap<string, string | null>>,
  countedBefore: ReadonlySet<string>,
): Promise<Tally> {
  const own = {
    changed: result.changed,
    changedIds: firstChanged(result),
    suppressed: result.suppressed,
    merges: result.merges,
    ignoredIdentifiers: result.ignoredIdentifiers.length,
  };
  if (!readBack) return { accepted: result.accepted, duplicates: result.duplicates, ignored: result.ignored, ...own };
  // An order id an earlier delivery of the batch already counted (a batch may carry one id twice, and
  // a batch gone on with reads back only this delivery's parts) is a duplicate here, not accepted again.
  const written = new Map([...(await writtenAt())].filter(([id]) => !countedBefore.has(id)));
  const sentWithRecommendation = new Set(orders.filter((order) => order.recommendationId).map((order) => order.id));
  const ignored = [...written].filter(([id, stored]) => sentWithRecommendation.has(id) && stored === null).length;
  return { accepted: written.size, duplicates: orders.length - written.size - result.suppressed, ignored, ...own };
}

/** What a done batch records: its tally, and the orders it set aside with why. */
function recordOf(
  orders: readonly OrderInput[],
  tally: Tally,
  setAside: readonly number[],
  limit: number,
): BatchRecord {
  const aside = setAside.map((at) => orders[at] as OrderInput);
  return {
    ...tally,
    setAside: aside.length,
    setAsideIds: [...new Set(aside.map((order) => order.id))].slice(0, setAsideIdsKept),
    error:
      aside.length === 0
        ? null
        : `${aside.length === 1 ? "1 order was" : `${aside.length} orders were`} set aside, not stored: their identifiers link more than ${limit} orders and calls; one of them is probably a placeholder (a store's walk-in email or card). Send those orders without it.`,
  };
}

/**
 * Ingests a batch where customer data lives (the customer shards, or the one D1 database), with a way
 * to read back the orders stored at its received instant (from the shards that hold them, or D1).
 */
async function ingestInStore(env: Env, db: Db, orders: OrderInput[], receivedAt: string) {
  if (shardCount(env) > 0) {
    const outcome = await ingestSharded(env, db, orders, new Date(receivedAt));
    if (outcome.kind !== "ingested") return outcome;
    return { ...outcome, writtenAt: async () => outcome.writtenAt };
  }
  if ((await writesPausedAt(db)) !== null) return { kind: "paused" as const };
  const outcome = await ingestOrders(
    db,
    env.IDENTITY_HASH_SECRET,
    orders,
    new Date(receivedAt),
    attributionSettings(env),
    phoneRegion(env.PHONE_DEFAULT_REGION),
    matchKinds(enabledMatchKeys(env.EXPORT_MATCH_KEYS)),
  );
  if (outcome.kind !== "ingested") return outcome;
  const ids = orders.map((order) => order.id);
  return {
    ...outcome,
    resent: await storedConversions(db, orders, outcome.result.results),
    writtenAt: () => ordersWrittenAt(db, ids, receivedAt),
  };
}

/** A part of a batch stored: its orders, ingestion's answer, and the read-back of those it wrote. */
interface Part {
  orders: OrderInput[];
  result: IngestResult;
  writtenAt: () => Promise<ReadonlyMap<string, string | null>>;
}

/** Where a batch's cutting stands: the ranges of its orders still to ingest, and those set aside. */
type Split = Omit<SplitProgress, "counts">;

/** What a delivery stored of a batch; `tried` says it ingested anything, `cut` that a part was refused. */
type Stored = { kind: "stored"; parts: Part[]; split: Split; tried: boolean; cut: boolean };

/**
 * Ingests the `from.pending` ranges of `orders` in turn, and the events database follows, as for POST
 * /v1/orders: the attributed orders' conversions (the holdout's figures) and the merged customers'
 * events. A range refused `region_too_large` is cut in halves, which come next (the halves of a half
 * refused likewise), so only the orders that reach the oversized region on their own are set aside.
 * Each ingestion first takes its calls from `calls`; when they run out, the ranges not tried are
 * answered still pending. A pause after this delivery stored or cut something retries the batch rather
 * than requeue it as new, so the next delivery reads back what this one stored.
 */
async function ingestParts(
  env: Env,
  db: Db,
  orders: OrderInput[],
  receivedAt: string,
  from: Split,
  calls: CallBudget,
): Promise<Stored | Exclude<Outcome, { kind: "done" | "stopped" }>> {
  // A failure here retries the batch, whose orders then come back as duplicates with their conversions.
  const follow = (
    part: readonly OrderInput[],
    results: IngestResult["results"],
    resent: Conversion[],
    merged: CustomerMerge[],
  ) => followInEvents(eventsDatabase(env.EVENTS_DB), env.IDENTITY_HASH_SECRET, part, results, resent, merged);
  const pending = [...from.pending];
  const setAside = [...from.setAside];
  let limit = from.limit;
  const parts: Part[] = [];
  let cut = false;
  let tried = false;
  for (let range = pending.shift(); range; range = pending.shift()) {
    if (!calls.take()) {
      pending.unshift(range);
      break;
    }
    tried = true;
    const [start, end] = range;
    const part = orders.slice(start, end);
    const outcome = await ingestInStore(env, db, part, receivedAt);
    switch (outcome.kind) {
      case "ingested":
        await follow(part, outcome.result.results, outcome.resent, outcome.merged);
        parts.push({ orders: part, result: outcome.result, writtenAt: outcome.writtenAt });
        break;
      case "busy":
        return { kind: "retry", error: "These customers were being updated by other requests." };
      case "paused":
        return cut || parts.length > 0
          ? { kind: "retry", error: "Customer writes were paused for a migration." }
          : { kind: "paused" };
      case "region_too_large": {
        // On shards, groups stored before the refusal are followed as the route follows them; the halves
        // find them stored (duplicates), and the read-back counts them as this batch's.
        const { stored } = outcome as ShardedRefusal;
        if (stored)
          await follow(
            part,
            stored.created.map(({ result }) => result),
            stored.resent,
            stored.merged,
          );
        cut = true;
        limit = outcome.limit;
        if (end - start === 1) setAside.push(start);
        else {
          const middle = start + Math.ceil((end - start) / 2);
          pending.unshift([start, middle], [middle, end]);
        }
      }
    }
  }
  return { kind: "stored", parts, split: { pending, setAside, limit }, tried, cut };
}

/** The answers of a batch's stored parts as one, as if ingested together. */
function joined(parts: readonly Part[]): IngestResult {
  const sum = (count: (result: IngestResult) => number) => parts.reduce((total, part) => total + count(part.result), 0);
  return {
    accepted: sum((result) => result.accepted),
    duplicates: sum((result) => result.duplicates),
    changed: sum((result) => result.changed),
    suppressed: sum((result) => result.suppressed),
    ignored: sum((result) => result.ignored),
    merges: sum((result) => result.merges),
    results: parts.flatMap((part) => part.result.results),
    ignoredIdentifiers: parts.flatMap((part) => part.result.ignoredIdentifiers),
  };
}

/**
 * The ids of the orders an earlier delivery stored and counted in `progress`: those neither still
 * pending nor set aside.
 */
function countedIds(orders: readonly OrderInput[], progress: SplitProgress): Set<string> {
  const open = new Set(progress.setAside);
  for (const [start, end] of progress.pending) for (let at = start; at < end; at++) open.add(at);
  return new Set(orders.filter((_, at) => !open.has(at)).map((order) => order.id));
}

/**
 * Ingests a batch, or goes on with one an earlier invocation cut and stopped (`progress`); `delivered`
 * says an earlier delivery of it may have written its orders already. Stopped for want of calls, it
 * answers where it stands (nothing when it tried nothing).
 */
async function ingestBatch(
  env: Env,
  db: Db,
  orders: OrderInput[],
  receivedAt: string,
  delivered: boolean,
  progress: SplitProgress | null,
  calls: CallBudget,
): Promise<Outcome> {
  // Checked when the batch was posted; a batch queued before RETAILER_CURRENCY changed is refused whole.
  const shopCurrency = retailerCurrency(env.RETAILER_CURRENCY);
  const foreign = orders.findIndex((order) => order.currency !== shopCurrency);
  if (foreign >= 0) return { kind: "failed", error: `orders[${foreign}].currency: ${foreignCurrency(shopCurrency)}` };
  try {
    const from: Split = progress ?? { pending: [[0, orders.length]], setAside: [], limit: 0 };
    const outcome = await ingestParts(env, db, orders, receivedAt, from, calls);
    if (outcome.kind !== "stored") return outcome;
    const { parts, split, tried, cut } = outcome;
    if (!tried) return { kind: "stopped" };
    const kept = parts.flatMap((part) => part.orders);
    const writtenAt = async () =>
      new Map((await Promise.all(parts.map((part) => part.writtenAt()))).flatMap((written) => [...written]));
    // A batch cut, or gone on with, is counted by its read-back, as a redelivered one is: on shards a
    // refused part may have stored some orders, which its halves then find stored.
    const readBack = delivered || cut || progress !== null;
    const tally = plus(
      progress?.counts ?? noTally,
      await tallyOf(kept, joined(parts), readBack, writtenAt, progress ? countedIds(orders, progress) : new Set()),
    );
    if (split.pending.length > 0) {
      const { changedIds: _named, ...counts } = tally;
      return { kind: "stopped", progress: { ...split, counts } };
    }
    return { kind: "done", counts: recordOf(orders, tally, split.setAside, split.limit) };
  } catch (error) {
    const database = classifyDatabaseError(error);
    return { kind: "retry", error: database ? `database ${database.kind}: ${database.message}` : String(error) };
  }
}

/**
 * The batch a message carries; null (logged and acknowledged) for one that is not a batch this Worker
 * sent, or one from an incompatible version: nothing to ingest or record.
 */
function readMessage(message: Message<unknown>): ImportMessage | null {
  const parsed = importMessageSchema.safeParse(message.body);
  if (parsed.success) return parsed.data;
  console.error(JSON.stringify({ error: "import_message_unreadable", id: message.id }));
  message.ack();
  return null;
}

async function settle(env: Env, db: Db, message: Message<unknown>, calls: CallBudget): Promise<void> {
  const body = readMessage(message);
  if (!body) return;
  const { importId, sequence, receivedAt, orders } = body;
  const batch = await batchProgress(db, importId, sequence);
  if (!batch || batch.status === "done") {
    message.ack();
    return;
  }
  // This message's deliveries and those of the messages it was sent back as, so the retry limit holds.
  const attempts = deliveries(body, message);
  // A batch requeued after failing keeps its attempts: its new message is not its first delivery.
  const delivered = attempts > 1 || batch.attempts > 0;
  const outcome = await ingestBatch(env, db, orders, receivedAt, delivered, batch.progress, calls);
  const now = new Date().toISOString();
  if (outcome.kind === "done") {
    await recordBatchDone(db, importId, sequence, outcome.counts, attempts, now);
    message.ack();
  } else if (outcome.kind === "stopped") {
    // Out of calls: the batch goes on from where it stopped in a later invocation, as a new message at
    // once that spends none of its retries (nothing failed). Its progress is kept first: sent back
    // without it, the batch would start over, and one whose cutting takes more than an invocation's
    // calls would never finish. Should the send fail, the message is retried and goes on from there too.
    // A copy of a batch another delivery has meanwhile recorded (failed, or done) is not queued any
    // more: it keeps nothing and is not sent back, or it would go round for ever spending no retries.
    if (await keepBatchProgress(db, importId, sequence, outcome.progress, now)) await sendBack(env, body, message);
    message.ack();
  } else if (outcome.kind === "paused") {
    // Nothing was written. The batch stays queued (its time refreshed, so a resend does not take it for
    // lost) and comes back as a new message; one the queue refuses is delivered again as a retry.
    await holdBatch(db, importId, sequence, now);
    await sendBack(env, body, message, pausedRequeueSeconds);
    message.ack();
  } else if (outcome.kind === "failed" || attempts > importMaxRetries) {
    await recordBatchFailed(db, importId, sequence, outcome.error, attempts, now);
    message.ack();
  } else {
    console.error(JSON.stringify({ error: "import_batch_retry", importId, sequence, cause: outcome.error }));
    await recordBatchAttempt(db, importId, sequence, attempts, now);
    message.retry({ delaySeconds: retryDelaySeconds(attempts) });
  }
}

/** The batch's deliveries so far: this message's, and those before it was sent back as a new one. */
const deliveries = (body: ImportMessage, message: Message<unknown>) => (body.attemptsBefore ?? 0) + message.attempts;

/**
 * Sends a batch back to the queue as a new message (`delaySeconds` later) that carries the deliveries
 * it had, not counting this one (it is not an attempt: nothing was tried).
 */
function sendBack(env: Env, body: ImportMessage, message: Message<unknown>, delaySeconds = 0) {
  const next: ImportMessage = { ...body, attemptsBefore: deliveries(body, message) - 1 };
  return env.IMPORT_QUEUE.send(next, { contentType: "json", delaySeconds });
}

/**
 * Messages settled at once within one invocation: two, as `patron import --direct` keeps two batches in
 * flight, so one batch's D1 round trips overlap the other's work. More would mostly make batches that
 * share customers wait on each other (ingestion re-plans when the same customers changed meanwhile).
 */
const parallelMessages = 2;

/**
 * Sends a message this invocation has no room for back to the queue as a new one, spending none of its
 * retries; its batch stays queued, its time refreshed (a resend does not take it for lost).
 */
async function defer(env: Env, db: Db, message: Message<unknown>): Promise<void> {
  const body = readMessage(message);
  if (!body) return;
  await holdBatch(db, body.importId, body.sequence, new Date().toISOString());
  await sendBack(env, body, message);
  message.ack();
}

export async function consumeImportBatches(
  batch: MessageBatch<unknown>,
  env: Env,
  most = batchesPerInvocation(shardCount(env)),
  budget = consumerCallBudget,
): Promise<void> {
  const db = drizzle(env.DB, { schema }) as Db;
  // Messages delivered before go first: the ones sent back are those on their first delivery.
  const ordered = [...batch.messages].sort((a, b) => b.attempts - a.attempts);
  const pending = ordered.slice(0, most);
  for (const message of ordered.slice(most)) {
    try {
      await defer(env, db, message);
    } catch (error) {
      // Not sent back (the queue or D1 failing): settled here after all, within the budget's headroom.
      console.error(JSON.stringify({ error: "import_batch_defer", id: message.id, cause: String(error) }));
      pending.push(message);
    }
  }
  const calls = callBudget(budget, ingestAttemptCalls(shardCount(env)));
  const worker = async () => {
    for (let message = pending.shift(); message; message = pending.shift()) {
      try {
        await settle(env, db, message, calls);
      } catch (error) {
        // Recording failed (D1 unavailable): deliver again later, as for a failed ingestion.
        console.error(JSON.stringify({ error: "import_batch_record", id: message.id, cause: String(error) }));
        message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
      }
    }
  };
  await Promise.all(Array.from({ length: parallelMessages }, worker));
}
