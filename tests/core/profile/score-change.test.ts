// When the nightly job rewrites a stored score: labels exactly, figures within their tolerances.
import { describe, expect, it } from "vitest";
import { type ScoreFigures, scoreChanged } from "../../../worker/core/profile/score-change.ts";

const now = new Date("2026-06-01T00:00:00Z");
const stored: ScoreFigures = {
  stage: "active",
  valueTier: "high",
  discountSensitivity: "mixed",
  offerGuidance: "modest",
  clv12: 200,
  clv24: 350,
  clvAtStake: 40,
  probabilityAlive: 0.9,
  overdueRatio: 1.2,
  expectedNextOrderAt: "2026-06-21T00:00:00.000Z",
  purchaseDays: 6,
  lapsedCategories: ["tea", "cups"],
};
const changed = (fresh: Partial<ScoreFigures>) => scoreChanged(stored, { ...stored, ...fresh }, now);

describe("scoreChanged", () => {
  it("writes a customer with no stored score, and not one whose score is the same", () => {
    expect(scoreChanged(null, stored, now)).toBe(true);
    expect(changed({})).toBe(false);
    expect(changed({ lapsedCategories: ["cups", "tea"] })).toBe(false);
  });

  it("compares the labels lists and audiences filter on exactly", () => {
    expect(changed({ stage: "fading" })).toBe(true);
    expect(changed({ valueTier: "top" })).toBe(true);
    expect(changed({ discountSensitivity: null })).toBe(true);
    expect(changed({ offerGuidance: "deal_driven" })).toBe(true);
    expect(changed({ lapsedCategories: ["tea"] })).toBe(true);
    expect(changed({ lapsedCategories: ["tea", "mugs"] })).toBe(true);
  });

  it("rewrites a row whose purchase days changed, or were stored as 0 before the column existed", () => {
    expect(changed({ purchaseDays: 7 })).toBe(true);
    expect(scoreChanged({ ...stored, purchaseDays: 0 }, stored, now)).toBe(true);
  });

  it("compares each figure within its tolerance of the stored value", () => {
    // Money: 2%, at least half a unit.
    expect(changed({ clv12: 203.9 })).toBe(false);
    expect(changed({ clv12: 204.1 })).toBe(true);
    expect(changed({ clv24: 343.5 })).toBe(false);
    expect(changed({ clv24: 342.9 })).toBe(true);
    // CLV at stake: also within 1% of the year at stake (40 at P(alive) 0.9: a year of 400).
    expect(changed({ clvAtStake: 43.9 })).toBe(false);
    expect(changed({ clvAtStake: 44.6 })).toBe(true);
    const sure = { ...stored, probabilityAlive: 1, clvAtStake: 0 };
    expect(scoreChanged(sure, { ...sure, clvAtStake: 0.4 }, now)).toBe(false);
    expect(scoreChanged(sure, { ...sure, clvAtStake: 0.6 }, now)).toBe(true);
    // P(alive): one percentage point.
    expect(changed({ probabilityAlive: 0.891 })).toBe(false);
    expect(changed({ probabilityAlive: 0.889 })).toBe(true);
    // Overdue ratio: 10%, at least 0.1.
    expect(changed({ overdueRatio: 1.31 })).toBe(false);
    expect(changed({ overdueRatio: 1.33 })).toBe(true);
    // Next order: within a quarter of the days from now to the fresh date (24 days ahead: 6 days; 28: 7).
    expect(changed({ expectedNextOrderAt: "2026-06-25T00:00:00.000Z" })).toBe(false);
    expect(changed({ expectedNextOrderAt: "2026-06-29T00:00:00.000Z" })).toBe(true);
  });

  it("keeps a near date within two days", () => {
    const soon = { ...stored, expectedNextOrderAt: "2026-06-02T00:00:00.000Z" };
    expect(scoreChanged(soon, { ...soon, expectedNextOrderAt: "2026-06-03T20:00:00.000Z" }, now)).toBe(false);
    expect(scoreChanged(soon, { ...soon, expectedNextOrderAt: "2026-06-04T06:00:00.000Z" }, now)).toBe(true);
    // A row stored before the column existed ('') is rewritten once it has a date.
    const old = { ...stored, expectedNextOrderAt: "" };
    expect(scoreChanged(old, stored, now)).toBe(true);
  });
});
