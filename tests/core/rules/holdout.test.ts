import { describe, expect, it } from "vitest";
import { fnv1a32, holdoutArm, holdoutBucket } from "../../../worker/core/rules/holdout.ts";

describe("fnv1a32", () => {
  // Reference values of 32-bit FNV-1a (draft-eastlake-fnv test vectors).
  it.each([
    ["", 0x811c9dc5],
    ["a", 0xe40c292c],
    ["foobar", 0xbf9cf968],
  ])("%j → %i", (text, expected) => {
    expect(fnv1a32(text)).toBe(expected);
  });

  it("hashes the UTF-8 bytes of non-ASCII text", () => {
    // "é" is C3 A9 in UTF-8.
    const byHand = Math.imul(Math.imul(0x811c9dc5 ^ 0xc3, 0x01000193) ^ 0xa9, 0x01000193) >>> 0;
    expect(fnv1a32("é")).toBe(byHand);
  });
});

describe("holdoutArm", () => {
  const ids = Array.from({ length: 20_000 }, (_, i) => `cust-${i}`);

  it.each([0, 0.05, 0.1, 0.5, 1])("holds out about %f of customers", (share) => {
    const held = ids.filter((id) => holdoutArm(id, { share, salt: "s1" }) === "holdout").length / ids.length;
    expect(Math.abs(held - share)).toBeLessThan(0.01);
  });

  it("is stable for a customer and reshuffled by a new salt", () => {
    const first = ids.map((id) => holdoutArm(id, { share: 0.2, salt: "s1" }));
    expect(ids.map((id) => holdoutArm(id, { share: 0.2, salt: "s1" }))).toEqual(first);
    const reshuffled = ids.map((id) => holdoutArm(id, { share: 0.2, salt: "s2" }));
    expect(reshuffled).not.toEqual(first);
  });

  it("keeps a held-out customer held out when the share grows", () => {
    const small = ids.filter((id) => holdoutArm(id, { share: 0.05, salt: "s1" }) === "holdout");
    expect(small.every((id) => holdoutArm(id, { share: 0.2, salt: "s1" }) === "holdout")).toBe(true);
    expect(holdoutBucket("cust-1", "s1")).toBeGreaterThanOrEqual(0);
  });

  it("rejects a share outside [0, 1]", () => {
    expect(() => holdoutArm("x", { share: 1.5, salt: "s" })).toThrow(/holdoutArm/);
  });
});
