// The words of `patron shards`: migrate's check of the copy (every customer table's rows summed over
// the shards against D1's), reshard's and rebalance's instructions and summaries, and status's table.
import { describe, expect, it } from "vitest";
import {
  bytesText,
  catchUpStage,
  changesText,
  countMismatches,
  migrationRate,
  migrationSummary,
  pausedNote,
  pauseText,
  rebalanceSummary,
  reshardSwitchInstruction,
  resumeText,
  runsStillWriting,
  shardsStatusText,
  switchInstruction,
  waitingForRunText,
} from "../../cli/commands/shards.ts";
import { maxShards } from "../../worker/core/shards/placement.ts";
import { shardsOverview } from "../../worker/core/shards/status.ts";

describe("countMismatches", () => {
  it("is empty when the shards together hold what D1 holds", () => {
    expect(
      countMismatches({
        d1: { customers: 5, orders: 9 },
        shards: [
          { customers: 2, orders: 4 },
          { customers: 3, orders: 5 },
        ],
      }),
    ).toEqual([]);
  });

  it("names every table that differs, a table missing from the shards included", () => {
    expect(
      countMismatches({
        d1: { customers: 5, orders: 9, order_lines: 12 },
        shards: [{ customers: 5, orders: 8 }],
      }),
    ).toEqual(["orders: 9 in D1, 8 in the shards", "order_lines: 12 in D1, 0 in the shards"]);
  });
});

describe("a catch-up pass's words", () => {
  const step = {
    shards: 4,
    mode: "catch_up" as const,
    phase: "collect" as const,
    since: "2026-12-03T10:00:00.000Z",
    cursor: "1:100000",
    visited: 0,
    total: 0,
    regions: 0,
    customers: 0,
    changed: 0,
    pruned: 0,
    done: false,
  };

  it("names the table it scans, then the shard it checks for erased customers", () => {
    expect(catchUpStage(step)).toBe(
      "catching up: finding the customers D1 changed since 2026-12-03T10:00:00.000Z (orders)…",
    );
    expect(catchUpStage({ ...step, phase: "prune", cursor: "2:c_42", changed: 7 })).toBe(
      "7 customers changed; checking shard 3 of 4 for customers D1 erased…",
    );
  });

  it("sums up a catch-up pass apart from a full one", () => {
    const done = { ...step, phase: "copy" as const, changed: 13, visited: 13, regions: 7, customers: 13, pruned: 1 };
    expect(migrationSummary(done, 1_500)).toMatch(
      /^caught up on what D1 wrote since 2026-12-03T10:00:00.000Z: 13 changed customers, 7 identity regions copied again \(13 customers\), 1 erased customer dropped, in /,
    );
    expect(migrationSummary({ ...done, mode: "full", visited: 459, regions: 448, customers: 459 }, 4_700)).toMatch(
      /^visited 459 customers and copied 448 identity regions \(459 customers\) into 4 shards in /,
    );
  });

  it("says when the pass began in an earlier run, so its counts are not this run's alone", () => {
    const full = { ...step, mode: "full" as const, visited: 3001, regions: 2953, customers: 3001 };
    const runStartedAt = Date.parse("2026-12-07T12:53:20.000Z");
    // Continued: the pass began before this run (which Ctrl-C had stopped).
    expect(migrationSummary({ ...full, startedAt: "2026-12-07T12:52:50.070Z" }, 98_200, runStartedAt)).toBe(
      "visited 3001 customers and copied 2953 identity regions (3001 customers) into 4 shards: the pass began at 2026-12-07T12:52:50.070Z, in an earlier run, and this run took 98.2 s",
    );
    const caughtUp = { ...step, phase: "copy" as const, changed: 13, regions: 7, customers: 13, pruned: 1 };
    expect(migrationSummary({ ...caughtUp, startedAt: "2026-12-07T12:52:50.070Z" }, 1_500, runStartedAt)).toMatch(
      /, 1 erased customer dropped: the pass began at 2026-12-07T12:52:50\.070Z, in an earlier run, and this run took /,
    );
    // Begun by this run: its time is the pass's.
    expect(migrationSummary({ ...full, startedAt: "2026-12-07T12:53:20.500Z" }, 98_200, runStartedAt)).toBe(
      "visited 3001 customers and copied 2953 identity regions (3001 customers) into 4 shards in 98.2 s",
    );
  });
});

describe("changesText", () => {
  it("lists what D1 wrote since the copy started, and nothing when it wrote nothing", () => {
    expect(changesText({ orders: 0, customers: 0, identities: 0, suppressions: 0 })).toBe("");
    expect(changesText({ orders: 3, customers: 0, identities: 1, suppressions: 2 })).toBe(
      "3 orders, 1 identities, 2 suppressions",
    );
  });
});

describe("switchInstruction", () => {
  it("names .dev.vars for the local worker and wrangler.toml for a deployment", () => {
    expect(switchInstruction(4, true)).toBe(
      "Now set SHARD_COUNT=4 in .dev.vars and restart npm start; D1's copy stays until you delete it.",
    );
    expect(switchInstruction(16, false)).toMatch(/^Now set SHARD_COUNT = "16" in wrangler.toml \[vars\] and deploy/);
  });
});

describe("migrationRate", () => {
  it("says nothing until a second has passed, then customers per second", () => {
    // The trial's first reading: 100 customers 8 ms after the first answer read 12,500 customers/s.
    expect(migrationRate(100, 8)).toBe("–");
    expect(migrationRate(0, 0)).toBe("–");
    expect(migrationRate(1700, 100_000)).toBe("17");
  });
});

describe("reshardSwitchInstruction", () => {
  it("names where to set the new count, to run again after, and what waits until the switch", () => {
    expect(reshardSwitchInstruction(8, true)).toMatch(
      /^Now set SHARD_COUNT=8 in \.dev\.vars and restart npm start, then run patron shards reshard --to 8 again to finish\./,
    );
    const deployed = reshardSwitchInstruction(32, false);
    expect(deployed).toMatch(
      /^Now set SHARD_COUNT = "32" in wrangler\.toml \[vars\] and deploy \(npm run deploy\), then, once the new version serves everywhere, run patron shards reshard --to 32 again/,
    );
    expect(deployed).toMatch(/take no orders \(imports included\), identify calls, erasures or suppression changes/);
  });
});

describe("rebalanceSummary", () => {
  const view = {
    count: 32,
    scanned: 100_412,
    total: 100_000,
    moved: 51_230,
    moves: 612,
    busy: 0,
    tooLarge: 0,
    done: true,
  };

  it("says what moved, in how many moves, with thousands separated", () => {
    expect(rebalanceSummary(view, "2m 3s")).toEqual([
      "visited 100,412 customers in 32 shards: moved 51,230 to their home shard, in 612 moves (2m 3s)",
    ]);
  });

  it("says what was left and why: held by a move (run again) or too large a region", () => {
    const lines = rebalanceSummary({ ...view, busy: 12, tooLarge: 1 }, "1s");
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(
      /^12 customers were left where they are: a move between shards held them, or a page had spent the calls it may make\. Run the command again later\.$/,
    );
    expect(lines[2]).toMatch(
      /^1 customer was left where they are: their identifiers connect more orders than one move takes/,
    );
  });
});

describe("bytesText", () => {
  it("gives bytes in decimal units, as the 10 GB limit is given, without trailing zeros", () => {
    expect(bytesText(0)).toBe("0 B");
    expect(bytesText(999)).toBe("999 B");
    expect(bytesText(1_500)).toBe("1.5 KB");
    expect(bytesText(245_760)).toBe("245.8 KB");
    expect(bytesText(10_000_000_000)).toBe("10 GB");
    expect(bytesText(1_234_567)).toBe("1.23 MB");
    // Rounded as shown before the unit is chosen.
    expect(bytesText(999_999)).toBe("1 MB");
    expect(bytesText(999_949)).toBe("999.9 KB");
  });
});

describe("shardsStatusText", () => {
  const part = (shard: number, customers: number, bytes: number, unfinishedMoves = 0, serves = 2, failing = 0) => ({
    shard,
    customers,
    bytes,
    unfinishedMoves,
    preparedFor: null,
    serves,
    erasureScrubs: { pending: failing, failing, mostAttempts: failing > 0 ? 3 : 0 },
  });

  it("says when erasures' scrubs of the other shards keep failing, in which shards, and nothing when none does", () => {
    const none = shardsStatusText({
      ...shardsOverview(2, [part(0, 10, 1), part(1, 10, 1)]),
      reshard: null,
      rebalance: null,
    });
    expect(none.join("\n")).not.toContain("scrub");
    const lines = shardsStatusText({
      ...shardsOverview(3, [part(0, 10, 1, 0, 3, 2), part(1, 10, 1, 0, 3), part(2, 10, 1, 0, 3, 1)]),
      reshard: null,
      rebalance: null,
    });
    expect(lines).toContain(
      "3 erasures' scrubs of the other shards fail (in shards 0, 2; at most 3 passes failed): they are tried again, up to once a day, and a shard keeping one is not retired; their logs say why (docs/scaling.md, erasure and export across shards).",
    );
    const single = { ...part(1, 10, 1, 0, 2, 1), erasureScrubs: { pending: 1, failing: 1, mostAttempts: 1 } };
    const once = shardsStatusText({ ...shardsOverview(2, [part(0, 10, 1), single]), reshard: null, rebalance: null });
    expect(once).toContain(
      "1 erasure's scrub of the other shards fails (in shard 1; at most 1 pass failed): it is tried again, up to once a day, and a shard keeping one is not retired; its logs say why (docs/scaling.md, erasure and export across shards).",
    );
  });

  it("tabulates the shards, says how full the fullest is and how many one holds, and nothing is under way", () => {
    const view = {
      ...shardsOverview(2, [part(0, 1_000, 12_000_000), part(1, 3_000, 36_000_000)]),
      reshard: null,
      rebalance: null,
    };
    const lines = shardsStatusText(view);
    expect(lines[0]).toBe("2 customer shards: 4,000 customers, 48 MB stored (12 KB per customer)");
    expect(lines.slice(2, 5)).toEqual([
      "shard  customers  stored  of 10 GB  moves under way",
      "    0      1,000   12 MB     0.12%  0",
      "    1      3,000   36 MB     0.36%  0",
    ]);
    expect(lines).toContain(
      "The fullest, shard 1, holds 0.36% of the 10 GB one shard can store; at this density one shard holds about 833,333 customers.",
    );
    expect(lines).toContain("The shard with the most customers holds 1.50× the mean.");
    expect(lines.join("\n")).not.toMatch(/Grow the shards|under way[:;(]|main database/);
  });

  it("says how full the main database is and how many audience members it keeps, and what to do once it fills", () => {
    const parts = [part(0, 1_000, 12_000_000), part(1, 3_000, 36_000_000)];
    const main = { bytes: 250_000_000, audienceMembers: 812_345 };
    const lines = shardsStatusText({ ...shardsOverview(2, parts, [], main), reshard: null, rebalance: null });
    expect(lines).toContain(
      "The main database (D1) stores 250 MB, 2.50% of the 10 GB D1 allows; it keeps 812,345 members of audiences with a webhook (about 268 bytes each).",
    );
    expect(lines.join("\n")).not.toContain("The main database is filling");
    const filling = { bytes: 7_200_000_000, audienceMembers: 26_000_000 };
    const text = shardsStatusText({ ...shardsOverview(2, parts, [], filling), reshard: null, rebalance: null }).join(
      "\n",
    );
    expect(text).toContain("stores 7.2 GB, 72.0% of the 10 GB D1 allows; it keeps 26,000,000 members");
    expect(text).toContain("The main database is filling: the members of audiences with a webhook");
    expect(text).not.toContain("Grow the shards");
  });

  it("during a shrink, gives the spread of the shards that stay", () => {
    const parts = [part(0, 300, 3_000_000), part(1, 100, 1_000_000), part(2, 20, 200_000)];
    const shrinking = shardsStatusText({ ...shardsOverview(3, parts, [], null, 2), reshard: null, rebalance: null });
    expect(shrinking).toContain(
      "Of the 2 shards that stay once the shrink is done, the one with the most customers holds 1.50× their mean.",
    );
    const whole = shardsStatusText({ ...shardsOverview(3, parts), reshard: null, rebalance: null });
    expect(whole).toContain("The shard with the most customers holds 2.14× the mean.");
  });

  it("says to grow before the fullest fills, unless a reshard is under way: then how to go on with it", () => {
    const parts = [part(0, 10, 7_500_000_000, 2, 4), part(1, 10, 1, 0, 4), part(2, 10, 1, 0, 4), part(3, 10, 1, 0, 4)];
    const grow = shardsStatusText({ ...shardsOverview(4, parts), reshard: null, rebalance: null }).join("\n");
    expect(grow).toContain("Grow the shards before shard 0 fills: patron shards reshard --to 8");
    expect(grow).toContain("2 moves between shards are under way");
    // At the most shards a deployment may have, no reshard is offered that would be refused.
    const most = Array.from({ length: maxShards }, (_, i) => part(i, 10, i === 0 ? 7_500_000_000 : 1, 0, maxShards));
    const full = shardsStatusText({ ...shardsOverview(maxShards, most), reshard: null, rebalance: null }).join("\n");
    expect(full).not.toContain("Grow the shards");
    expect(full).toContain(
      "Shard 0 is filling, and 1,000 shards are the most a deployment may have: they cannot grow further (docs/scaling.md, calls per request).",
    );
    const view = {
      ...shardsOverview(4, parts),
      reshard: {
        from: 4,
        to: 6,
        phase: "prepared" as const,
        scanned: 9,
        total: 9,
        written: 3,
        removed: 0,
        drained: 0,
        drainMoves: 0,
        drainPasses: 0,
        running: 4,
        done: false,
      },
      rebalance: null,
    };
    const text = shardsStatusText(view).join("\n");
    expect(text).not.toContain("Grow the shards");
    expect(text).toContain(
      "A reshard from 4 to 6 shards is under way (prepared): set SHARD_COUNT to 6 and deploy (or restart npm start), then finish it with patron shards reshard --to 6.",
    );
    // Switched: what is left is to run it again.
    const switched = shardsStatusText({ ...view, reshard: { ...view.reshard, running: 6 } }).join("\n");
    expect(switched).toContain(
      "A reshard from 4 to 6 shards is under way (prepared): finish it with patron shards reshard --to 6.",
    );
    // A shrink still moving customers out of the shards it removes: the command goes on with it.
    const draining = {
      ...view.reshard,
      to: 3,
      phase: "draining" as const,
      drained: 40,
      drainMoves: 12,
      drainPasses: 1,
    };
    expect(shardsStatusText({ ...view, reshard: draining }).join("\n")).toContain(
      "A reshard from 4 to 3 shards is under way (draining): finish it with patron shards reshard --to 3.",
    );
  });

  it("after a grow, says to rebalance until a pass has begun since it finished", () => {
    const grown = {
      ...shardsOverview(
        6,
        [0, 1, 2, 3, 4, 5].map((shard) => part(shard, shard < 4 ? 10 : 0, 1, 0, 6)),
      ),
      reshard: {
        ...{ from: 4, to: 6, scanned: 9, total: 9, written: 3, removed: 2, drained: 0, drainMoves: 0, drainPasses: 0 },
        phase: "done" as const,
        running: 6,
        done: true,
        finishedAt: "2026-12-01T10:00:00.000Z",
      },
      rebalance: null,
    };
    const hint =
      "The grow from 4 to 6 shards finished and no rebalance pass has run since: the customers whose home is a new shard are still held in the old ones. Run patron shards rebalance to move them.";
    expect(shardsStatusText(grown)).toContain(hint);
    const pass = {
      ...{ count: 6, shard: 6, cursor: "", scanned: 40, total: 40, moved: 12, moves: 3, busy: 0, tooLarge: 0 },
      updatedAt: "2026-12-01T10:05:00.000Z",
      finishedAt: "2026-12-01T10:05:00.000Z",
      running: 6,
      done: true,
    };
    // A pass from before the grow does not count; one begun after it does; a shrink asks for none.
    const before = { ...pass, startedAt: "2026-11-30T10:00:00.000Z" };
    expect(shardsStatusText({ ...grown, rebalance: before })).toContain(hint);
    const after = { ...pass, startedAt: "2026-12-01T10:04:00.000Z" };
    expect(shardsStatusText({ ...grown, rebalance: after }).join("\n")).not.toContain("rebalance pass has run");
    const shrunk = { ...grown.reshard, from: 6, to: 4 };
    expect(shardsStatusText({ ...grown, reshard: shrunk }).join("\n")).not.toContain("rebalance pass has run");
  });

  it("names the shards that did not answer, and those the new count has not reached", () => {
    const view = {
      ...shardsOverview(3, [part(0, 10, 100, 0, 3), part(2, 10, 100, 0, 2)], [{ shard: 1, error: "placed for 2" }]),
      reshard: null,
      rebalance: null,
    };
    const lines = shardsStatusText(view);
    expect(lines).toContain("Shard 1 did not answer: placed for 2");
    expect(lines).toContain(
      "Shard 2 still runs another SHARD_COUNT than this Worker's 3: the new version has not reached it yet.",
    );
  });
});

describe("migrate --pause-writes", () => {
  it("says what the pause refuses and how long it waits, then that it holds until the switch or resume-writes", () => {
    const text = pauseText("2026-12-04T15:00:00.000Z", 6);
    expect(text).toContain("since 2026-12-04T15:00:00.000Z");
    expect(text).toContain("order batches, identify calls and erasures are answered 503 with Retry-After");
    expect(text).toContain("Waiting 6 s");
    expect(pausedNote()).toContain("npx patron shards resume-writes");
  });

  it("resume-writes says whether writes were paused, and says nothing it does not know", () => {
    const view = { writesPausedAt: null, pauseSeenWithinSeconds: 5 };
    expect(resumeText({ ...view, wasPausedAt: null })).toBe("Customer writes on D1 were not paused: nothing changed.");
    expect(resumeText({ ...view, wasPausedAt: "2026-12-05T10:00:00.000Z" })).toBe(
      "Customer writes on D1 are open again, paused since 2026-12-05T10:00:00.000Z (every Worker sees it within 5 s).",
    );
    // A worker from before the field answers without it.
    expect(resumeText(view)).toBe("Customer writes on D1 are open again (every Worker sees it within a few seconds).");
  });

  it("waits for the nightly runs still writing, not those that stopped", () => {
    const run = (runId: string, status: string) => ({
      runId,
      status,
      processed: 40_000,
      startedAt: "2026-12-04T02:00:00Z",
    });
    const runs = [
      run("a", "done"),
      run("b", "running"),
      run("c", "errored"),
      run("d", "queued"),
      run("e", "terminated"),
    ];
    expect(runsStillWriting(runs).map((entry) => entry.runId)).toEqual(["b", "d"]);
    expect(waitingForRunText(run("b", "running"))).toBe(
      "Nightly run b (started 2026-12-04T02:00:00Z) is still writing scores: waiting for it to finish before the pass (40000 customers scored so far; Ctrl-C stops waiting, and the pause stays until resume-writes).",
    );
  });
});
