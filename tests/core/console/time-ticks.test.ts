// The console's time axes: calendar ticks whose labels never repeat (a customer page once read
// "Oct 2026 | Nov 2026 | Nov 2026 | Nov 2026 | Dec 2026" under a five-week history).
import { describe, expect, it } from "vitest";
import { placeLabels, timeTicks } from "../../../console/src/time-ticks.ts";
import { fromZoneInput, toZoneInput, zoneAbbreviation, zoneOffset } from "../../../console/src/time-zone.ts";

const at = (iso: string) => Date.parse(iso);
const day = 86_400_000;

describe("timeTicks", () => {
  it("labels a five-week history by day, each label once", () => {
    const ticks = timeTicks(at("2026-10-24T09:00:00Z"), at("2026-12-01T15:00:00Z"), 5);
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    expect(new Set(ticks.map((tick) => tick.label)).size).toBe(ticks.length);
    expect(ticks[0]?.label).toMatch(/^\d{1,2} (Oct|Nov) 2026$/);
  });

  it("labels by month, then by year, as the span grows", () => {
    const months = timeTicks(at("2025-01-10T00:00:00Z"), at("2026-01-20T00:00:00Z"), 5);
    expect(months.map((tick) => tick.label)).toEqual(["Apr 2025", "Jul 2025", "Oct 2025", "Jan 2026"]);
    const years = timeTicks(at("2018-03-01T00:00:00Z"), at("2026-06-01T00:00:00Z"), 5);
    expect(years.map((tick) => tick.label)).toEqual(["2020", "2022", "2024", "2026"]);
  });

  it("labels a history of hours by the hour", () => {
    const ticks = timeTicks(at("2026-11-30T08:00:00Z"), at("2026-11-30T20:00:00Z"), 5);
    expect(ticks.map((tick) => tick.label)).toContain("30 Nov, 12:00");
  });

  it("gives distinct labels inside the span, in order, for spans from an hour to ten years", () => {
    const from = at("2026-02-17T13:37:00Z");
    for (let span = 3600_000; span < 3650 * day; span *= 1.37) {
      const ticks = timeTicks(from, from + span, 5);
      const label = `span ${(span / day).toFixed(2)} days`;
      expect(ticks.length, label).toBeGreaterThanOrEqual(2);
      expect(ticks.length, label).toBeLessThanOrEqual(12);
      expect(new Set(ticks.map((tick) => tick.label)).size, label).toBe(ticks.length);
      for (const tick of ticks) {
        expect(tick.at, label).toBeGreaterThanOrEqual(from);
        expect(tick.at, label).toBeLessThanOrEqual(from + span);
      }
      const times = ticks.map((tick) => tick.at);
      expect(times, label).toEqual([...times].sort((a, b) => a - b));
    }
  });

  it("finds and labels the ticks on the retailer's clock: midnights in Tokyo, not in UTC", () => {
    // 21 Nov 2026 00:00 in Tokyo is 20 Nov 15:00 UTC; a UTC axis would label that instant "20 Nov 2026".
    const ticks = timeTicks(at("2026-11-18T20:00:00Z"), at("2026-11-23T20:00:00Z"), 5, "Asia/Tokyo");
    expect(ticks.map((tick) => tick.label)).toContain("21 Nov 2026");
    const tokyoMidnight = ticks.find((tick) => tick.label === "21 Nov 2026");
    expect(tokyoMidnight?.at).toBe(at("2026-11-20T15:00:00Z"));
    const months = timeTicks(at("2026-01-10T00:00:00Z"), at("2026-12-20T00:00:00Z"), 5, "America/New_York");
    expect(months.map((tick) => tick.label)).toEqual(["Apr 2026", "Jul 2026", "Oct 2026"]);
    // New York's midnight of 1 Jul (summer time, UTC−4) and of 1 Oct.
    expect(months.map((tick) => new Date(tick.at).toISOString())).toEqual([
      "2026-04-01T04:00:00.000Z",
      "2026-07-01T04:00:00.000Z",
      "2026-10-01T04:00:00.000Z",
    ]);
  });
});

describe("the retailer's clock", () => {
  it("knows a zone's offset through summer time", () => {
    expect(zoneOffset(at("2026-11-20T15:00:00Z"), "Asia/Tokyo")).toBe(9 * 3600_000);
    expect(zoneOffset(at("2026-07-01T12:00:00Z"), "America/New_York")).toBe(-4 * 3600_000);
    expect(zoneOffset(at("2026-12-01T12:00:00Z"), "America/New_York")).toBe(-5 * 3600_000);
    expect(zoneOffset(at("2026-12-01T12:00:00.500Z"), "UTC")).toBe(0);
  });

  it("reads and writes a datetime-local field on that clock, whatever the browser's", () => {
    expect(toZoneInput("2026-12-01T00:30:00Z", "Asia/Tokyo")).toBe("2026-12-01T09:30");
    expect(fromZoneInput("2026-12-01T09:30", "Asia/Tokyo")).toBe("2026-12-01T00:30:00.000Z");
    expect(fromZoneInput("2026-07-04T09:00", "Europe/London")).toBe("2026-07-04T08:00:00.000Z");
    expect(toZoneInput("2026-07-04T08:00:00Z", "Europe/London")).toBe("2026-07-04T09:00");
    expect(fromZoneInput("", "Asia/Tokyo")).toBeNull();
    expect(toZoneInput(null, "Asia/Tokyo")).toBe("");
  });

  it("names the zone as en-GB does", () => {
    expect(zoneAbbreviation(at("2026-07-04T08:00:00Z"), "Europe/London")).toBe("BST");
    expect(zoneAbbreviation(at("2026-12-01T08:00:00Z"), "Asia/Tokyo")).toBe("GMT+9");
    expect(zoneAbbreviation(at("2026-12-01T08:00:00Z"), "UTC")).toBe("UTC");
  });
});

describe("placeLabels", () => {
  const tick = (at: number, label: string) => ({ at, label });
  const x = (at: number) => at;

  it("anchors a label at an edge to start or end at its date, and leaves out one that would overlap it as drawn", () => {
    // "Dec 2026" near the right edge ends at its date (226–300), over a centred "Nov 2026" (172–246).
    expect(placeLabels([tick(209, "Nov 2026"), tick(300, "Dec 2026")], x, 310)).toEqual([
      { at: 209, label: "Nov 2026", anchor: "middle" },
    ]);
    expect(placeLabels([tick(150, "Nov 2026"), tick(300, "Dec 2026")], x, 310)).toEqual([
      { at: 150, label: "Nov 2026", anchor: "middle" },
      { at: 300, label: "Dec 2026", anchor: "end" },
    ]);
    // Near the left edge a label starts at its date; the next must clear its end (10–84).
    expect(placeLabels([tick(10, "Oct 2026"), tick(100, "Nov 2026"), tick(130, "Dec 2026")], x, 400)).toEqual([
      { at: 10, label: "Oct 2026", anchor: "start" },
      { at: 130, label: "Dec 2026", anchor: "middle" },
    ]);
  });
});
