// What the customer page says beside a CLV that rests on all customers' averages more than on the customer.
import { describe, expect, it } from "vitest";
import { clvBasis } from "../../../console/src/profile-words.ts";

describe("a CLV's basis in words", () => {
  it("says a CLV from one or two days of orders rests on all customers' averages", () => {
    expect(clvBasis(1)).toEqual([
      "mostly all customers' averages: one day of orders says little of how often they buy or what they spend",
    ]);
    expect(clvBasis(2)).toEqual([
      "much of it all customers' averages: two days of orders say little of how often they buy",
    ]);
  });

  it("says nothing from three days of orders on, nor without orders", () => {
    for (const days of [3, 40, 0, null]) expect(clvBasis(days), String(days)).toEqual([]);
  });
});
