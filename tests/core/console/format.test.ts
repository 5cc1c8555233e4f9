// The console's shared formatters (console/src/api.ts): shares never rounded to 0% or 100% unless exactly
// so, overdue ratios at the places the API rounds them to, wherever the console shows one, and a fading
// customer's next order worded as holding only if they still buy, on the list and the customer page alike.
import { describe, expect, it } from "vitest";
import { alivePercent, day, nextOrder, percent, ratio, timeZone, typedNumber } from "../../../console/src/api.ts";

describe("alivePercent", () => {
  it("reads a P(alive) the API rounded to 0 as <1% while the customer is still worth something", () => {
    expect(alivePercent(0, 0.01)).toBe("<1%"); // a positive CLV needs a chance above 0
    expect(alivePercent(0, 0)).toBe("0%");
    expect(alivePercent(0.47, 120)).toBe("47%");
  });
});

describe("percent", () => {
  it("never rounds a share between 0 and 1 to 0% or 100%", () => {
    expect(percent(0.9957)).toBe("99.6%");
    expect(percent(0.9996)).toBe(">99.9%");
    expect(percent(0.003)).toBe("<1%");
    expect(percent(0.0004, 1)).toBe("<0.1%");
    expect(percent(0.99996, 1)).toBe(">99.99%");
  });

  it("writes every other share as before", () => {
    expect(percent(0)).toBe("0%");
    expect(percent(1)).toBe("100%");
    expect(percent(0.47)).toBe("47%");
    expect(percent(0.005)).toBe("1%");
    expect(percent(0.9949)).toBe("99%");
    expect(percent(0.1234, 2)).toBe("12.34%");
    expect(percent(1.5)).toBe("150%");
    expect(percent(null)).toBe("–");
  });
});

describe("ratio", () => {
  it("writes an overdue ratio to 2 places, as the API rounds it, on the list and the customer page alike", () => {
    expect(ratio(1.72)).toBe("1.72");
    expect(ratio(3.2)).toBe("3.20");
    expect(ratio(0)).toBe("0.00");
    expect(ratio(null)).toBe("–");
  });
});

describe("nextOrder", () => {
  it("words a fading customer's next order as holding only if they still buy", () => {
    expect(nextOrder("fading", "2026-03-03T00:00:00.000Z")).toBe("if still buying: around 3 Mar 2026");
  });

  it("gives anyone else's as a bare date, and no date as a dash", () => {
    expect(nextOrder("active", "2026-03-03T00:00:00.000Z")).toBe("3 Mar 2026");
    expect(nextOrder("new", "2026-03-03T00:00:00.000Z")).toBe("3 Mar 2026");
    expect(nextOrder("lapsed", null)).toBe("–");
    expect(nextOrder("fading", null)).toBe("–");
  });
});

describe("typedNumber", () => {
  it("reads a decimal point or a decimal comma, never a comma as nothing (1,5 is 1.5, not 15)", () => {
    expect(["1.5", "1,5", " 2 ", "-0,25", ".5", "1e3", "10"].map(typedNumber)).toEqual([
      1.5, 1.5, 2, -0.25, 0.5, 1000, 10,
    ]);
  });

  it("gives back what is not a number as typed, for the API to refuse, and nothing for an empty field", () => {
    expect(["1.000,5", "1,5,0", "abc", "1.5x", "Infinity", "1e999", "1,000", "12,500"].map(typedNumber)).toEqual([
      "1.000,5",
      "1,5,0",
      "abc",
      "1.5x",
      "Infinity",
      "1e999",
      "1,000",
      "12,500",
    ]);
    expect(typedNumber("  ")).toBeNull();
  });
});

describe("day", () => {
  it("shows an instant on the retailer's clock, and a date without a time as that date in any zone", () => {
    const kept = timeZone.value;
    try {
      timeZone.value = "America/New_York";
      expect(day("2017-09-05T02:00:00Z")).toBe("4 Sept 2017");
      expect(day("2017-09-05")).toBe("5 Sept 2017");
      timeZone.value = "Pacific/Auckland";
      expect(day("2017-09-05")).toBe("5 Sept 2017");
      expect(day(null)).toBe("–");
    } finally {
      timeZone.value = kept;
    }
  });
});
