// allCalls: a request that fans out to several shards answers only once every call has settled.
import { describe, expect, it } from "vitest";
import {
  allCalls,
  batchesPerInvocation,
  consumerCallBudget,
  ingestAttemptCalls,
  orderBatchCalls,
} from "../../../worker/core/shards/calls.ts";
import { maxShards } from "../../../worker/core/shards/placement.ts";

const later = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

describe("allCalls", () => {
  it("answers every value in order, as Promise.all does", async () => {
    expect(await allCalls([later(5, "a"), Promise.resolve("b"), later(1, "c")])).toEqual(["a", "b", "c"]);
    expect(await allCalls([])).toEqual([]);
  });

  it("throws the first failure only after the slower calls have finished", async () => {
    const finished: string[] = [];
    const slowWrite = later(30, "written").then((value) => {
      finished.push(value);
      return value;
    });
    const failure = new Error("shard 1 is busy");
    const outcome = await allCalls([Promise.reject(failure), slowWrite, Promise.reject(new Error("second"))]).catch(
      (error: unknown) => error,
    );
    expect(outcome).toBe(failure);
    // Promise.all would have rejected before the write finished.
    expect(finished).toEqual(["written"]);
  });
});

describe("batchesPerInvocation", () => {
  it("settles a whole delivery of ten batches up to about 170 shards, fewer past them, one at least", () => {
    expect(batchesPerInvocation(0)).toBeGreaterThanOrEqual(10);
    expect(batchesPerInvocation(16)).toBeGreaterThanOrEqual(10);
    expect(batchesPerInvocation(172)).toBe(10);
    expect(batchesPerInvocation(200)).toBe(8);
    expect(batchesPerInvocation(maxShards)).toBe(1);
    expect(batchesPerInvocation(1_000_000)).toBe(1);
  });

  it("keeps an invocation's batches within the budget, and the budget within Workers Paid's 10,000 subrequests", () => {
    for (const shards of [0, 1, 4, 16, 100, 333, 500, maxShards]) {
      // A batch's first ingestion is budgeted as one that may be refused, which calls each shard once more.
      expect(ingestAttemptCalls(shards)).toBe(orderBatchCalls(shards) + shards);
      expect(batchesPerInvocation(shards) * ingestAttemptCalls(shards), String(shards)).toBeLessThanOrEqual(
        consumerCallBudget,
      );
    }
    expect(consumerCallBudget).toBeLessThan(10_000);
  });
});
