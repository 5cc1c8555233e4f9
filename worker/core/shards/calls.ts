// Fanning a request out to several shards: every call is waited for, whichever fails.

/**
 * Like Promise.all for calls to several shards, but settles only once every call has: a request that
 * fails on one shard answers after the others have finished too, never while a write it started is
 * still on its way (that write would land after the client was told the request failed). The first
 * failure is thrown.
 */
export async function allCalls<T>(calls: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(calls);
  const failed = settled.find((outcome) => outcome.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<T>).value);
}

/**
 * Subrequests one order batch of up to 1,000 orders makes at most, as counted in
 * tests/worker/shards/subrequests.test.ts: with `shards` customer shards three calls to each shard it
 * touches (locate, claim, ingest) and a few D1 queries; on the one D1 database (0) a few queries. A
 * batch whose customers move between shards takes more rounds; this is the usual batch.
 */
export const orderBatchCalls = (shards: number): number => 3 * shards + 10;

/**
 * Subrequests one ingestion of a batch, or of a part of one, may make when it is refused because an
 * identifier links too many orders (region_too_large): the usual batch's calls, and one more to each
 * shard to drop the claims of the orders it stored nowhere (counted in
 * tests/worker/shards/subrequests.test.ts). The import consumer takes this much of its budget before
 * each ingestion it starts, a batch's first and each half of a batch cut in halves alike.
 */
export const ingestAttemptCalls = (shards: number): number => orderBatchCalls(shards) + shards;

/**
 * Of Workers Paid's 10,000 subrequests per invocation, what an import consumer invocation spends on
 * its ingestions, leaving room for a batch that takes more rounds and for the batches' bookkeeping.
 */
export const consumerCallBudget = 7_000;

/**
 * Import batches one consumer invocation takes up: as many as can each make one ingestion within the
 * budget, one at least. A batch cut in halves takes more; the budget stops it where it runs out.
 */
export const batchesPerInvocation = (shards: number): number =>
  Math.max(1, Math.floor(consumerCallBudget / ingestAttemptCalls(shards)));

/**
 * wrangler.toml's `[limits] subrequests`: what one nightly Workflow instance may spend over all its
 * steps, which share one budget (Cloudflare's default 10,000; Workers Paid may set up to 10 million).
 * A run's calls grow with the base and the shards (docs/scaling.md, "Calls of one nightly run": at
 * most about 160,000 on a usual night at ten million customers and 1,000 shards, 183,000 on a first
 * night with the transitions webhook set, 20,000 more for an audience of a million joining).
 */
export const nightlyRunSubrequests = 1_000_000;
