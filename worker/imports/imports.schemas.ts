// Wire format of bulk imports through the queue (POST /v1/imports …): the batch body is the body of
// POST /v1/orders plus its sequence number, validated by the same schema.
import * as z from "zod";
import { textField, wholeNumberParam } from "../http/fields.schemas.ts";
import { orderSchema, ordersBatchSchemaIn, perCurrency } from "../orders/orders.schemas.ts";

/**
 * Cloudflare Queues carries at most 128 KB per message (128,000 bytes, as the local queue counts it),
 * and one batch is one message: a body or message larger than this is refused with 413.
 */
export const maxImportMessageBytes = 128_000;
/**
 * Of a message's bytes, what its batch may take (the message's own JSON): the queue counts about 100
 * bytes of metadata toward the 128 KB, and a message the consumer sends back carries `attemptsBefore`
 * too, so 1,000 are kept for them.
 */
export const maxImportBatchMessageBytes = maxImportMessageBytes - 1_000;
/** Sequence numbers are the client's batch numbers (0, 1, 2 …). */
export const maxSequence = 10_000_000;

export const createImportSchema = z.strictObject({
  source: textField(200).optional(),
  expectedBatches: z.number().int().min(1).max(maxSequence).optional(),
});

/** The body of POST /v1/imports/:id/batches for a shop whose amounts are in `shopCurrency`. */
export const importBatchSchemaIn = perCurrency((shopCurrency) =>
  ordersBatchSchemaIn(shopCurrency).safeExtend({ sequence: z.number().int().min(0).max(maxSequence) }),
);

const importId = z.string().regex(/^imp_[0-9a-f]{20}$/, "is not an import id");

export const importIdSchema = z.strictObject({ id: importId });

export const importsQuerySchema = z.strictObject({
  /** The `next` of the previous page: imports created before this one. */
  before: importId.optional(),
  limit: wholeNumberParam("limit", 1, 100).default(20),
});

export const batchStatuses = ["queued", "done", "failed"] as const;
export type BatchStatus = (typeof batchStatuses)[number];

export const batchesQuerySchema = z.strictObject({
  status: z.enum(batchStatuses).optional(),
  /** The `next` of the previous page: batches with a greater sequence. */
  after: wholeNumberParam("after", -1, maxSequence).default(-1),
  limit: wholeNumberParam("limit", 1, 1000).default(500),
});

/**
 * One queue message: a batch of an import, as accepted (orders already validated and normalised, with
 * the shop's currency then; the consumer checks it is still the shop's). Not strict at its top level:
 * a field a later version adds to the message (as `attemptsBefore` was) is read past, so a Worker still
 * running during a deploy settles the new one's messages rather than dropping them as unreadable. The
 * orders stay as strict as POST /v1/orders: an older Worker still drops a message whose orders carry a
 * field it does not know.
 */
export const importMessageSchema = z.object({
  importId: z.string(),
  sequence: z.number().int().min(0),
  receivedAt: z.string(),
  orders: z.array(orderSchema),
  /**
   * Deliveries of this batch before this message, when the consumer sent it back as a new message
   * (no room in an invocation, writes paused): the queue counts the new message's deliveries from 1.
   */
  attemptsBefore: z.number().int().min(0).optional(),
});
export type ImportMessage = z.infer<typeof importMessageSchema>;

const totalsShape = {
  accepted: z.number(),
  duplicates: z.number(),
  changed: z.number(),
  suppressed: z.number(),
  ignored: z.number(),
  merges: z.number(),
  ignoredIdentifiers: z.number(),
  /** Orders left out because their identifiers link more orders than a region may hold (a placeholder). */
  setAside: z.number(),
};

export const batchViewSchema = z.object({
  sequence: z.number(),
  status: z.enum(batchStatuses),
  orders: z.number(),
  ...totalsShape,
  /** The first few changed duplicates of the batch, by id. */
  changedIds: z.array(z.string()),
  /** The first few set-aside orders of the batch, by id; `error` then says why they were set aside. */
  setAsideIds: z.array(z.string()),
  attempts: z.number(),
  error: z.string().nullable(),
  receivedAt: z.string(),
  updatedAt: z.string(),
});
export type BatchView = z.infer<typeof batchViewSchema>;

export const importViewSchema = z.object({
  id: z.string(),
  source: z.string().nullable(),
  status: z.enum(["open", "done", "failed"]),
  expectedBatches: z.number().nullable(),
  batches: z.object({ received: z.number(), queued: z.number(), done: z.number(), failed: z.number() }),
  orders: z.object({ received: z.number(), processed: z.number() }),
  totals: z.object(totalsShape),
  failedBatches: z.array(batchViewSchema),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().nullable(),
  /** On D1, since when a migration's last pass has customer writes paused (batches wait in the queue); else null. */
  writesPausedAt: z.string().nullable(),
});
export type ImportView = z.infer<typeof importViewSchema>;

export const importResponseSchema = z.object({ data: importViewSchema });
/** An import as the list shows it: its progress and totals, without its failed batches. */
export const importSummarySchema = importViewSchema.omit({ failedBatches: true });
export type ImportSummary = z.infer<typeof importSummarySchema>;
export const importsResponseSchema = z.object({
  data: z.object({ imports: z.array(importSummarySchema), next: z.string().nullable() }),
});
export const batchResponseSchema = z.object({ data: batchViewSchema });
export const batchesResponseSchema = z.object({
  data: z.object({ batches: z.array(batchViewSchema), next: z.number().nullable() }),
});
