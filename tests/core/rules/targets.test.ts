import { describe, expect, it } from "vitest";
import { nearestTargets, type TargetCandidate, targetNearness, typosAllowed } from "../../../worker/rules/targets.ts";

const categories: TargetCandidate[] = [
  { id: "heels", name: "Heels" },
  { id: "boots", name: "Ankle boots" },
  { id: "sneakers", name: "Sneakers" },
  { id: "heel-care", name: "Heel care" },
  { id: "bags", name: "Bags" },
];
const ids = (found: TargetCandidate[]) => found.map((each) => each.id);

describe("nearestTargets", () => {
  it("finds the id itself first, then ids and names starting with what was typed, then holding it", () => {
    expect(ids(nearestTargets("heels", categories, 5))).toEqual(["heels", "heel-care"]);
    expect(ids(nearestTargets("HEEL", categories, 5))).toEqual(["heel-care", "heels"]);
    expect(ids(nearestTargets("ankle", categories, 5))).toEqual(["boots"]);
    expect(ids(nearestTargets("oot", categories, 5))).toEqual(["boots"]);
  });

  it("finds an id or a name's word within a few typos, nearer ones first", () => {
    expect(ids(nearestTargets("heelz", categories, 5))).toEqual(["heels", "heel-care"]);
    expect(ids(nearestTargets("sneekers", categories, 5))).toEqual(["sneakers"]);
    expect(ids(nearestTargets("boats", categories, 5))).toEqual(["boots"]);
    expect(ids(nearestTargets("zzzzzz", categories, 5))).toEqual([]);
  });

  it("lists the catalog by name when nothing is typed, and keeps to the limit", () => {
    expect(ids(nearestTargets("", categories, 3))).toEqual(["boots", "bags", "heel-care"]);
    expect(nearestTargets("  ", categories, 10)).toHaveLength(5);
    expect(ids(nearestTargets("e", categories, 2))).toEqual(["heel-care", "heels"]);
  });

  it("allows one typo per three characters typed, from one to three", () => {
    expect([1, 4, 6, 8, 12, 40].map((n) => typosAllowed("x".repeat(n)))).toEqual([1, 1, 2, 2, 3, 3]);
    expect(targetNearness("candels", { id: "candles", name: "Candles" })).toBe(10);
    expect(targetNearness("cofee", { id: "coffee", name: "Coffee" })).toBe(8);
    expect(targetNearness("cofee", { id: "c-17", name: "Coffee" })).toBe(9);
    expect(targetNearness("cfe", { id: "coffee", name: "Coffee" })).toBeNull();
  });
});
