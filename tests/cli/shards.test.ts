// `patron shards migrate`'s check of the copy: every customer table's rows summed over the shards
// against D1's.
import { describe, expect, it } from "vitest";
import {
  changesText,
  countMismatches,
  migrationRate,
  rebalanceSummary,
  reshardSwitchInstruction,
  switchInstruction,
} from "../../cli/commands/shards.ts";

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
      "visited 100,412 customers in 32 shards: moved 51,230 to the home shard of their account key, in 612 moves (2m 3s)",
    ]);
  });

  it("says what was left and why: held by a move (run again) or too large a region", () => {
    const lines = rebalanceSummary({ ...view, busy: 12, tooLarge: 1 }, "1s");
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(
      /^12 customers were left where they are: a move between shards held them\. .*run the command again later/,
    );
    expect(lines[2]).toMatch(
      /^1 customer was left where they are: their identifiers connect more orders than one move takes/,
    );
  });
});
