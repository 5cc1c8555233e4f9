import { describe, expect, it } from "vitest";
import { dayToIsoDate, parseDay, summarizeEvents } from "../../../worker/core/models/summary.ts";
import { cdnowCutoffDay, cdnowPublishedSummary, cdnowSampleEvents } from "./reference-data.ts";

describe("parseDay", () => {
  it.each([
    ["19970101", "1997-01-01"],
    ["1997-09-30", "1997-09-30"],
    ["2026-03-14T10:22:00Z", "2026-03-14"],
    ["2026-03-14T23:30:00-05:00", "2026-03-15"],
  ])("reads %s as %s", (text, iso) => {
    expect(dayToIsoDate(parseDay(text)!)).toBe(iso);
  });

  it.each(["", "1997-02-30", "19971301", "yesterday", "1997/01/01"])("refuses %j", (text) => {
    expect(parseDay(text)).toBeNull();
  });
});

describe("summarizeEvents", () => {
  const day = (iso: string) => parseDay(iso)!;

  it("merges same-day purchases, drops non-positive repeat values from spend, and counts the holdout", () => {
    const summaries = summarizeEvents(
      [
        { customer: "a", day: day("2024-01-01"), amount: 10 },
        { customer: "a", day: day("2024-01-08"), amount: 20 },
        { customer: "a", day: day("2024-01-08"), amount: 5 },
        { customer: "a", day: day("2024-01-15"), amount: 0 },
        { customer: "a", day: day("2024-02-01"), amount: 7 },
        { customer: "b", day: day("2024-01-29"), amount: 3 },
        { customer: "c", day: day("2024-02-10"), amount: 3 },
      ],
      { cutoffDay: day("2024-01-29"), unit: "week", holdoutEndDay: day("2024-03-01") },
    );
    expect(summaries.map((summary) => summary.customer)).toEqual(["a", "b"]);
    const [a, b] = summaries;
    expect(a).toMatchObject({ x: 2, tx: 2, T: 4, monetaryCount: 1, monetaryMean: 25, secondPurchaseAfter: 1 });
    expect(a!.holdoutPurchases).toBe(1);
    expect(b).toMatchObject({ x: 0, tx: 0, T: 0, monetaryCount: 0, secondPurchaseAfter: null, holdoutPurchases: 0 });
  });

  const roundingSlack = 0.005 + 1e-9;

  it("reproduces the published CDNOW calibration summary from the event log", () => {
    const published = cdnowPublishedSummary();
    const built = summarizeEvents(cdnowSampleEvents(), { cutoffDay: cdnowCutoffDay, unit: "week" });
    expect(built).toHaveLength(published.length);
    built.forEach((summary, index) => {
      const row = published[index]!;
      expect(summary.x).toBe(row.x);
      // The published file is rounded to cents / hundredths of a week.
      expect(Math.abs(summary.tx - row.tx)).toBeLessThanOrEqual(roundingSlack);
      expect(Math.abs(summary.T - row.T)).toBeLessThanOrEqual(roundingSlack);
      expect(Math.abs(summary.monetaryMean - row.zbar)).toBeLessThanOrEqual(roundingSlack);
    });
  });
});
