// How full and how even the customer shards are: the overview GET /v1/admin/shards answers.
import { describe, expect, it } from "vitest";
import {
  d1StorageLimitBytes,
  nearlyFullShare,
  type ShardPart,
  shardStorageLimitBytes,
  shardsOverview,
} from "../../../worker/core/shards/status.ts";

const part = (shard: number, customers: number, bytes: number, extra: Partial<ShardPart> = {}): ShardPart => ({
  shard,
  customers,
  bytes,
  unfinishedMoves: 0,
  preparedFor: null,
  serves: 3,
  erasureScrubs: { pending: 0, failing: 0, mostAttempts: 0 },
  ...extra,
});

describe("shardsOverview", () => {
  it("puts the main D1 database beside the shards, against D1's own limit", () => {
    const parts = [part(0, 100, 1_000_000)];
    expect(shardsOverview(1, parts).main).toBeNull();
    const main = shardsOverview(1, parts, [], { bytes: 2_500_000_000, audienceMembers: 9_000_000 }).main;
    expect(main).toEqual({
      bytes: 2_500_000_000,
      audienceMembers: 9_000_000,
      limitBytes: d1StorageLimitBytes,
      share: 0.25,
      nearlyFull: false,
    });
    const filling = shardsOverview(1, parts, [], { bytes: nearlyFullShare * d1StorageLimitBytes, audienceMembers: 0 });
    expect(filling.main?.nearlyFull).toBe(true);
    // The shards' own verdict is theirs alone.
    expect(filling.nearlyFull).toBe(false);
  });

  it("adds the shards up, in index order, each with its share of what one shard stores", () => {
    const view = shardsOverview(3, [
      part(2, 300, 3_000_000, { unfinishedMoves: 2, erasureScrubs: { pending: 2, failing: 1, mostAttempts: 4 } }),
      part(0, 100, 1_000_000),
      part(1, 200, 2_000_000, { preparedFor: 6 }),
    ]);
    expect(view.shards.map((shard) => shard.shard)).toEqual([0, 1, 2]);
    expect(view.shards[2]?.share).toBe(3_000_000 / shardStorageLimitBytes);
    expect(view.totals).toEqual({ customers: 600, bytes: 6_000_000, unfinishedMoves: 2, failingErasureScrubs: 1 });
    expect(view.fullest).toEqual({ shard: 2, bytes: 3_000_000, share: 3_000_000 / shardStorageLimitBytes });
    expect(view.shards[1]?.preparedFor).toBe(6);
    // The most customers (300) over the mean (200).
    expect(view.spread).toBe(1.5);
    // 10,000 bytes per customer: a shard holds 1,000,000 of them.
    expect(view.bytesPerCustomer).toBe(10_000);
    expect(view.customersPerShard).toBe(1_000_000);
    expect(view.nearlyFull).toBe(false);
  });

  it("is nearly full from the share on, by the shard storing the most bytes", () => {
    const at = Math.ceil(nearlyFullShare * shardStorageLimitBytes);
    expect(shardsOverview(2, [part(0, 10, at - 1), part(1, 10, 5)]).nearlyFull).toBe(false);
    const full = shardsOverview(2, [part(0, 10, 5), part(1, 10, at)]);
    expect(full.nearlyFull).toBe(true);
    expect(full.fullest?.shard).toBe(1);
  });

  it("during a shrink, spreads over the shards that stay: the ones it removes are being emptied", () => {
    const parts = [part(0, 300, 3_000_000), part(1, 100, 1_000_000), part(2, 20, 200_000), part(3, 0, 40_960)];
    const shrinking = shardsOverview(4, parts, [], null, 2);
    // 300 over the mean of shards 0 and 1 (200), not over all four's (105).
    expect(shrinking.spread).toBe(1.5);
    expect(shrinking.spreadOver).toBe(2);
    expect(shrinking.totals.customers).toBe(420);
    const whole = shardsOverview(4, parts);
    expect(whole.spread).toBeCloseTo(300 / 105, 10);
    expect(whole.spreadOver).toBe(4);
  });

  it("reads the density off the shards holding customers: the new empty ones after a grow do not lower it", () => {
    const grown = shardsOverview(4, [
      part(0, 100, 1_000_000),
      part(1, 100, 1_000_000),
      part(2, 0, 650_000),
      part(3, 0, 650_000),
    ]);
    expect(grown.bytesPerCustomer).toBe(10_000); // not 3,300,000 ÷ 200 = 16,500
    expect(grown.customersPerShard).toBe(1_000_000);
  });

  it("has no spread or density without customers", () => {
    const view = shardsOverview(2, [part(0, 0, 40_960), part(1, 0, 40_960)]);
    expect(view.spread).toBeNull();
    expect(view.bytesPerCustomer).toBeNull();
    expect(view.customersPerShard).toBeNull();
    expect(view.fullest?.shard).toBe(0);
  });

  it("sums the shards that answered and lists the others; none answered: no fullest", () => {
    const view = shardsOverview(
      3,
      [part(2, 30, 300), part(0, 10, 100)],
      [{ shard: 1, error: "shard_count_changed: …" }],
    );
    expect(view.shards.map((shard) => shard.shard)).toEqual([0, 2]);
    expect(view.unanswered).toEqual([{ shard: 1, error: "shard_count_changed: …" }]);
    expect(view.totals.customers).toBe(40);
    expect(view.spread).toBe(1.5);
    const none = shardsOverview(
      2,
      [],
      [
        { shard: 1, error: "b" },
        { shard: 0, error: "a" },
      ],
    );
    expect(none.fullest).toBeNull();
    expect(none.nearlyFull).toBe(false);
    expect(none.unanswered.map((shard) => shard.shard)).toEqual([0, 1]);
  });
});
