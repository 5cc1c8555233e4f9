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
// holds up the others. An invocation settles as many batches as its calls allow (batchesPerInvocation: all
// ten of a delivery up to a few hundred shards, two at 1,000); the rest go back to the queue as new
// messages at once, spending none of their retries.
import { drizzle } from "drizzle-orm/d1";
import * as schema from "../../db/schema.ts";
import { batchesPerInvocation } from "../core/shards/calls.ts";
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
  changedIdsKept,
  holdBatch,
  loadBatch,
  ordersWrittenAt,
  recordBatchAttempt,
  recordBatchDone,
  recordBatchFailed,
  setAsideIdsKept,
} from "./imports.repo.ts";
import { type ImportMessage, importMessageSchema } from "./imports.schemas.ts";
import { importMaxRetries, retryDelaySeconds } from "./retries.ts";

type Outcome =
  | { kind: "done"; counts: BatchRecord }
  | { kind: "retry"; error: string }
  | { kind: "paused" }
  | { kind: "failed"; error: string };

/** Seconds a batch waits in the queue before it is tried again while customer writes are paused. */
export const pausedRequeueSeconds = 30;

/** The first changed duplicates of a batch, each id once. */
function firstChanged(result: IngestResult): string[] {
  const ids = result.results.filter((entry) => entry.changed === true).map((entry) => entry.id);
  return [...new Set(ids)].slice(0, changedIdsKept);
}

/**
 * The batch's counts. On its first delivery, ingestion's own answer. On a later one, the accepted
 * orders are read back: those stored with the batch's received instant, whichever delivery wrote them
 * (one that wrote them but stopped before recording leaves the next finding them "duplicates"); the
 * attributions ignored likewise. Merges and ignored identifiers are the ingesting delivery's own, and so
 * are changed duplicates (orders an earlier delivery wrote come back unchanged: they are this batch's).
 */
async function countsOf(
  orders: readonly OrderInput[],
  result: IngestResult,
  delivered: boolean,
  writtenAt: () => Promise<ReadonlyMap<string, string | null>>,
  setAside: SetAside,
): Promise<BatchRecord> {
  const own = {
    changed: result.changed,
    changedIds: firstChanged(result),
    suppressed: result.suppressed,
    merges: result.merges,
    ignoredIdentifiers: result.ignoredIdentifiers.length,
    setAside: setAside.orders.length,
    setAsideIds: [...new Set(setAside.orders.map((order) => order.id))].slice(0, setAsideIdsKept),
    error:
      setAside.orders.length === 0
        ? null
        : `${setAside.orders.length === 1 ? "1 order was" : `${setAside.orders.length} orders were`} set aside, not stored: their identifiers link more than ${setAside.limit} orders and calls; one of them is probably a placeholder (a store's walk-in email or card). Send those orders without it.`,
  };
  if (!delivered) return { accepted: result.accepted, duplicates: result.duplicates, ignored: result.ignored, ...own };
  const written = await writtenAt();
  const sentWithRecommendation = new Set(orders.filter((order) => order.recommendationId).map((order) => order.id));
  const ignored = [...written].filter(([id, stored]) => sentWithRecommendation.has(id) && stored === null).length;
  return { accepted: written.size, duplicates: orders.length - written.size - result.suppressed, ignored, ...own };
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

/** Orders set aside as refused `region_too_large` on their own, with the limit they reached. */
interface SetAside {
  orders: OrderInput[];
  limit: number;
}

/** A part of a batch stored: its orders, ingestion's answer, and the read-back of those it wrote. */
interface Part {
  orders: OrderInput[];
  result: IngestResult;
  writtenAt: () => Promise<ReadonlyMap<string, string | null>>;
}

type Stored = { kind: "stored"; parts: Part[]; setAside: SetAside };

/**
 * Ingests `orders`, and the events database follows, as for POST /v1/orders: the attributed orders'
 * conversions (the holdout's figures) and the merged customers' events. Refused `region_too_large`,
 * the orders are cut in halves ingested in turn (the halves of a half refused likewise), so only the
 * orders that reach the oversized region on their own are set aside. `split` says this is such a half:
 * a pause there, after other halves were stored, retries the batch rather than requeue it as new, so
 * the next delivery reads back what this one stored.
 */
async function ingestParts(
  env: Env,
  db: Db,
  orders: OrderInput[],
  receivedAt: string,
  split = false,
): Promise<Stored | Exclude<Outcome, { kind: "done" }>> {
  // A failure here retries the batch, whose orders then come back as duplicates with their conversions.
  const follow = (
    part: readonly OrderInput[],
    results: IngestResult["results"],
    resent: Conversion[],
    merged: CustomerMerge[],
  ) => followInEvents(eventsDatabase(env.EVENTS_DB), env.IDENTITY_HASH_SECRET, part, results, resent, merged);
  const outcome = await ingestInStore(env, db, orders, receivedAt);
  switch (outcome.kind) {
    case "ingested":
      await follow(orders, outcome.result.results, outcome.resent, outcome.merged);
      return {
        kind: "stored",
        parts: [{ orders, result: outcome.result, writtenAt: outcome.writtenAt }],
        setAside: { orders: [], limit: 0 },
      };
    case "busy":
      return { kind: "retry", error: "These customers were being updated by other requests." };
    case "paused":
      return split ? { kind: "retry", error: "Customer writes were paused for a migration." } : { kind: "paused" };
    case "region_too_large": {
      // On shards, groups stored before the refusal are followed as the route follows them; the halves
      // find them stored (duplicates), and the read-back counts them as this batch's.
      const { stored } = outcome as ShardedRefusal;
      if (stored)
        await follow(
          orders,
          stored.created.map(({ result }) => result),
          stored.resent,
          stored.merged,
        );
      if (orders.length === 1) return { kind: "stored", parts: [], setAside: { orders, limit: outcome.limit } };
      const middle = Math.ceil(orders.length / 2);
      const parts: Part[] = [];
      const setAside: SetAside = { orders: [], limit: outcome.limit };
      for (const half of [orders.slice(0, middle), orders.slice(middle)]) {
        const answer = await ingestParts(env, db, half, receivedAt, true);
        if (answer.kind !== "stored") return answer;
        parts.push(...answer.parts);
        setAside.orders.push(...answer.setAside.orders);
      }
      return { kind: "stored", parts, setAside };
    }
  }
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

/** Ingests a batch; `delivered` says an earlier delivery of it may have written its orders already. */
async function ingestBatch(
  env: Env,
  db: Db,
  orders: OrderInput[],
  receivedAt: string,
  delivered: boolean,
): Promise<Outcome> {
  // Checked when the batch was posted; a batch queued before RETAILER_CURRENCY changed is refused whole.
  const shopCurrency = retailerCurrency(env.RETAILER_CURRENCY);
  const foreign = orders.findIndex((order) => order.currency !== shopCurrency);
  if (foreign >= 0) return { kind: "failed", error: `orders[${foreign}].currency: ${foreignCurrency(shopCurrency)}` };
  try {
    const outcome = await ingestParts(env, db, orders, receivedAt);
    if (outcome.kind !== "stored") return outcome;
    const { parts, setAside } = outcome;
    const kept = parts.flatMap((part) => part.orders);
    const writtenAt = async () =>
      new Map((await Promise.all(parts.map((part) => part.writtenAt()))).flatMap((written) => [...written]));
    // A split batch is counted by its read-back, as a redelivered one is: on shards a refused part may
    // have stored some orders, which its halves then find stored.
    const split = parts.length !== 1 || setAside.orders.length > 0;
    return { kind: "done", counts: await countsOf(kept, joined(parts), delivered || split, writtenAt, setAside) };
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

async function settle(env: Env, db: Db, message: Message<unknown>): Promise<void> {
  const body = readMessage(message);
  if (!body) return;
  const { importId, sequence, receivedAt, orders } = body;
  const batch = await loadBatch(db, importId, sequence);
  if (!batch || batch.status === "done") {
    message.ack();
    return;
  }
  // This message's deliveries and those of the messages it was sent back as, so the retry limit holds.
  const attempts = deliveries(body, message);
  // A batch requeued after failing keeps its attempts: its new message is not its first delivery.
  const delivered = attempts > 1 || batch.attempts > 0;
  const outcome = await ingestBatch(env, db, orders, receivedAt, delivered);
  const now = new Date().toISOString();
  if (outcome.kind === "done") {
    await recordBatchDone(db, importId, sequence, outcome.counts, attempts, now);
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
  const worker = async () => {
    for (let message = pending.shift(); message; message = pending.shift()) {
      try {
        await settle(env, db, message);
      } catch (error) {
        // Recording failed (D1 unavailable): deliver again later, as for a failed ingestion.
        console.error(JSON.stringify({ error: "import_batch_record", id: message.id, cause: String(error) }));
        message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
      }
    }
  };
  await Promise.all(Array.from({ length: parallelMessages }, worker));
}
