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
