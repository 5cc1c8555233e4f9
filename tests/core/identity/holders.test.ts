import { describe, expect, it } from "vitest";
import { type HolderRow, mergeHolders } from "../../../worker/core/identity/holders.ts";

const row = (customerId: string, extra: Partial<HolderRow> = {}): HolderRow => ({
  customerId,
  held: false,
  verified: false,
  orders: 1,
  firstSeenAt: "2026-01-01T00:00:00Z",
  lastSeenAt: "2026-01-01T00:00:00Z",
  ...extra,
});

describe("mergeHolders", () => {
  it("lists every part's holders by id, each with its trust: verified when held or vouched for", () => {
    const merged = mergeHolders(
      [
        { known: true, shared: false, holders: [row("c_b"), row("c_d", { held: true, verified: true })] },
        { known: false, shared: false, holders: [] },
        { known: true, shared: false, holders: [row("c_a", { verified: true }), row("c_c", { held: true })] },
      ],
      10,
    );
    expect(merged.holders.map((h) => [h.customerId, h.held, h.trust])).toEqual([
      ["c_a", false, "verified"],
      ["c_b", false, "unverified"],
      ["c_c", true, "verified"],
      ["c_d", true, "verified"],
    ]);
    expect(merged.holders[0]).not.toHaveProperty("verified");
    expect([merged.known, merged.shared, merged.truncated]).toEqual([true, false, false]);
  });

  it("is shared when any part marks it so, and keeps the first `limit` of the merge", () => {
    const merged = mergeHolders(
      [
        { known: true, shared: true, holders: [row("c_1"), row("c_3")] },
        { known: true, shared: false, holders: [row("c_2"), row("c_4")] },
      ],
      3,
    );
    expect(merged.holders.map((h) => h.customerId)).toEqual(["c_1", "c_2", "c_3"]);
    expect([merged.shared, merged.truncated]).toEqual([true, true]);
  });

  it("answers an identifier nobody has seen with no holders", () => {
    expect(mergeHolders([{ known: false, shared: false, holders: [] }], 5)).toEqual({
      known: false,
      shared: false,
      holders: [],
      truncated: false,
    });
  });
});
