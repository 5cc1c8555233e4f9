// allCalls: a request that fans out to several shards answers only once every call has settled.
import { describe, expect, it } from "vitest";
import { allCalls } from "../../../worker/core/shards/calls.ts";

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
