// The directory a shard keeps for the keys whose home it is: what `locate` answers.
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { homeShard } from "../../../worker/core/shards/placement.ts";
import { homeStub, shardCount, shardStub } from "../../../worker/shards/shards.ts";
import { uniquePrefix } from "../../fixtures/builders.ts";

describe("the sharded test deployment", () => {
  it("runs with SHARD_COUNT=4", () => {
    expect(shardCount(env)).toBe(4);
  });
});

describe("CustomerShard.locate", () => {
  it("answers the placed shard of a key with an entry, and null for the others", async () => {
    const p = uniquePrefix("dir");
    const placedKey = `email:${p}-placed`;
    const home = homeShard(placedKey, 4);
    await runInDurableObject(shardStub(env, home), (_instance, state) => {
      state.storage.sql.exec(
        "INSERT INTO shard_directory (key, shard, updated_at) VALUES (?, ?, ?)",
        placedKey,
        (home + 1) % 4,
        "2026-11-30T00:00:00Z",
      );
    });
    const located = await homeStub(env, placedKey).locate([placedKey, `email:${p}-unknown`]);
    expect(located).toEqual({ [placedKey]: (home + 1) % 4, [`email:${p}-unknown`]: null });
  });
});

describe("CustomerShard.index", () => {
  it("is the number in the shard's name", async () => {
    expect(await shardStub(env, 3).index).toBe(3);
  });
});
