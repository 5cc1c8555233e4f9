// Bulk imports through the queue (API key): create an import, post its batches (each validated like
// POST /v1/orders, recorded, and sent to the queue as one message), read its progress, list the
// imports newest first, and list its batches by status so a client can resume. The queue consumer (imports.consumer.ts) ingests them.
import { Hono } from "hono";
import type { AppEnv, Env } from "../env.ts";
import { requireApiKey } from "../http/auth.ts";
import { retailerCurrency } from "../http/config.ts";
import { ApiError, notFound, unavailable } from "../http/errors.ts";
import { jsonBody, parseOrThrow, queryParams } from "../http/validate.ts";
import { assertNoFutureOrders } from "../orders/orders.routes.ts";
import { pausedOnD1 } from "../shards/write-pause.ts";
import {
  type BatchRow,
  type BatchTally,
  batchesPage,
  batchTallies,
  batchTalliesOf,
  deleteQueuedBatch,
  type ImportRow,
  importsPage,
  insertBatch,
  insertImport,
  loadImport,
  reclaimStaleBatch,
  recordBatchFailed,
  requeueFailedBatch,
  unclaimBatch,
} from "./imports.repo.ts";
import {
  type BatchView,
  batchesQuerySchema,
  createImportSchema,
  type ImportMessage,
  type ImportSummary,
  type ImportView,
  importBatchSchemaIn,
  importIdSchema,
  importsQuerySchema,
  maxImportBatchMessageBytes,
  maxImportMessageBytes,
} from "./imports.schemas.ts";

/** Failed batches listed in an import's progress; the rest are a page of GET …/batches?status=failed away. */
const failedBatchesListed = 100;
/**
 * A batch queued this long without a change (a delivery or retry updates it; the longest retry delay
 * is 80 s) has lost its message, e.g. D1 was down through every retry of recording it: a resend
 * queues it again.
 */
const staleQueuedMs = 15 * 60 * 1000;
/** How soon to resend a batch whose message the queue did not take. */
const queueRetryAfterSeconds = 5;

const tooLargeForQueue = () =>
  new ApiError(
    413,
    "payload_too_large",
    `An import batch travels as one queue message, at most ${maxImportMessageBytes.toLocaleString("en-US")} bytes with the queue's own ${(maxImportMessageBytes - maxImportBatchMessageBytes).toLocaleString("en-US")}: send fewer orders per batch.`,
  );

const newImportId = () => `imp_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;

/** What a resent sequence is compared by: the SHA-256 of its orders as validated. */
export async function batchDigest(orders: readonly unknown[]): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(orders)));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

function batchView({ digest: _digest, ...batch }: BatchRow): BatchView {
  return batch;
}

/**
 * An import's progress from its batch tallies: `open` while a batch is queued or fewer batches than
 * expected have arrived, `failed` when every batch is processed but some failed (resending one
 * requeues it), `done` when every batch is processed and none failed.
 */
function importSummary(row: ImportRow, tallies: readonly BatchTally[], writesPausedAt: string | null): ImportSummary {
  const of = (status: BatchTally["status"]) => tallies.find((tally) => tally.status === status);
  const count = (status: BatchTally["status"]) => of(status)?.batches ?? 0;
  const batches = { queued: count("queued"), done: count("done"), failed: count("failed") };
  const received = batches.queued + batches.done + batches.failed;
  const waiting = batches.queued > 0 || received === 0 || received < (row.expectedBatches ?? 0);
  const status = waiting ? "open" : batches.failed > 0 ? "failed" : "done";
  const done = of("done");
  const updatedAt = tallies.reduce(
    (latest, tally) => (tally.updatedAt > latest ? tally.updatedAt : latest),
    row.createdAt,
  );
  return {
    id: row.id,
    source: row.source,
    status,
    expectedBatches: row.expectedBatches,
    batches: { received, ...batches },
    orders: {
      received: tallies.reduce((sum, tally) => sum + tally.orders, 0),
      processed: (done?.orders ?? 0) + (of("failed")?.orders ?? 0),
    },
    totals: {
      accepted: done?.accepted ?? 0,
      duplicates: done?.duplicates ?? 0,
      changed: done?.changed ?? 0,
      suppressed: done?.suppressed ?? 0,
      ignored: done?.ignored ?? 0,
      merges: done?.merges ?? 0,
      ignoredIdentifiers: done?.ignoredIdentifiers ?? 0,
      setAside: done?.setAside ?? 0,
    },
    createdAt: row.createdAt,
    updatedAt,
    finishedAt: status === "open" ? null : updatedAt,
    writesPausedAt,
  };
}

function importView(
  row: ImportRow,
  tallies: readonly BatchTally[],
  failed: readonly BatchRow[],
  writesPausedAt: string | null,
): ImportView {
  return { ...importSummary(row, tallies, writesPausedAt), failedBatches: failed.map(batchView) };
}

async function existingImport(c: { var: AppEnv["Variables"] }, id: string): Promise<ImportRow> {
  const row = await loadImport(c.var.db, id);
  if (!row) throw notFound(`No import ${id}.`);
  return row;
}

/** Sends a batch's message; a queue that refuses it leaves the batch as it was before, and answers 503. */
async function enqueue(env: Env, message: ImportMessage, undo: () => Promise<void>): Promise<void> {
  try {
    await env.IMPORT_QUEUE.send(message, { contentType: "json" });
  } catch (error) {
    console.error(JSON.stringify({ error: "import_queue_send", cause: String(error) }));
    await undo();
    throw unavailable("The import queue did not take the batch; send it again.", queueRetryAfterSeconds);
  }
}

export const importRoutes = new Hono<AppEnv>()
  .use("*", requireApiKey)
  .post("/", async (c) => {
    const { source, expectedBatches } = await jsonBody(c, createImportSchema);
    const row: ImportRow = {
      id: newImportId(),
      source: source ?? null,
      expectedBatches: expectedBatches ?? null,
      createdAt: c.var.now.toISOString(),
    };
    await insertImport(c.var.db, row);
    return c.json({ data: importView(row, [], [], await pausedOnD1(c.env, c.var.db)) }, 201);
  })
  .get("/", async (c) => {
    const { before, limit } = queryParams(c, importsQuerySchema);
    if (before !== undefined) await existingImport(c, before);
    const rows = await importsPage(c.var.db, before ?? null, limit + 1);
    const page = rows.slice(0, limit);
    const [tallies, pausedAt] = await Promise.all([
      batchTalliesOf(
        c.var.db,
        page.map((row) => row.id),
      ),
      pausedOnD1(c.env, c.var.db),
    ]);
    const imports = page.map((row) => importSummary(row, tallies.get(row.id) ?? [], pausedAt));
    c.header("Cache-Control", "no-store");
    return c.json({ data: { imports, next: rows.length > limit ? (page.at(-1)?.id ?? null) : null } });
  })
  .post("/:id/batches", async (c) => {
    const { id } = parseOrThrow(importIdSchema, c.req.param(), "import id");
    let body: { sequence: number; orders: ImportMessage["orders"] };
    try {
      body = await jsonBody(c, importBatchSchemaIn(retailerCurrency(c.env.RETAILER_CURRENCY)), maxImportMessageBytes);
    } catch (error) {
      throw error instanceof ApiError && error.status === 413 ? tooLargeForQueue() : error;
    }
    const { sequence, orders } = body;
    const now = c.var.now;
    assertNoFutureOrders(orders, now);
    await existingImport(c, id);
    const receivedAt = now.toISOString();
    const message: ImportMessage = { importId: id, sequence, receivedAt, orders };
    if (new TextEncoder().encode(JSON.stringify(message)).byteLength > maxImportBatchMessageBytes)
      throw tooLargeForQueue();
    const digest = await batchDigest(orders);

    const db = c.var.db;
    const { inserted, batch } = await insertBatch(db, {
      importId: id,
      sequence,
      digest,
      orders: orders.length,
      receivedAt,
    });
    if (inserted) {
      await enqueue(c.env, message, () => deleteQueuedBatch(db, id, sequence));
      return c.json({ data: batchView(batch) }, 202);
    }
    if (batch.digest !== digest)
      throw new ApiError(
        409,
        "conflict",
        `Batch ${sequence} of import ${id} was sent with other orders: a sequence number stands for one batch.`,
      );
    if (batch.status === "queued") {
      const olderThan = new Date(now.getTime() - staleQueuedMs).toISOString();
      const reclaimed = await reclaimStaleBatch(db, id, sequence, olderThan, receivedAt);
      if (reclaimed)
        await enqueue(c.env, { ...message, receivedAt: batch.receivedAt }, () =>
          unclaimBatch(db, id, sequence, batch.updatedAt),
        );
      return c.json({ data: batchView(reclaimed ?? batch) }, 202);
    }
    if (batch.status !== "failed") return c.json({ data: batchView(batch) }, 202);
    const requeued = await requeueFailedBatch(db, id, sequence, receivedAt);
    if (!requeued) return c.json({ data: batchView(batch) }, 202);
    // The orders are written as received when the batch first arrived, so its counts stay exact.
    await enqueue(c.env, { ...message, receivedAt: batch.receivedAt }, () =>
      recordBatchFailed(db, id, sequence, batch.error ?? "failed", batch.attempts, receivedAt),
    );
    return c.json({ data: batchView(requeued) }, 202);
  })
  .get("/:id", async (c) => {
    const { id } = parseOrThrow(importIdSchema, c.req.param(), "import id");
    const row = await existingImport(c, id);
    const [tallies, failed, pausedAt] = await Promise.all([
      batchTallies(c.var.db, id),
      batchesPage(c.var.db, id, "failed", -1, failedBatchesListed),
      pausedOnD1(c.env, c.var.db),
    ]);
    c.header("Cache-Control", "no-store");
    return c.json({ data: importView(row, tallies, failed, pausedAt) });
  })
  .get("/:id/batches", async (c) => {
    const { id } = parseOrThrow(importIdSchema, c.req.param(), "import id");
    const { status, after, limit } = queryParams(c, batchesQuerySchema);
    await existingImport(c, id);
    const rows = await batchesPage(c.var.db, id, status, after, limit + 1);
    const page = rows.slice(0, limit);
    c.header("Cache-Control", "no-store");
    return c.json({
      data: { batches: page.map(batchView), next: rows.length > limit ? (page.at(-1)?.sequence ?? null) : null },
    });
  });
