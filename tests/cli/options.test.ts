// Option values the commands refuse are commander's InvalidArgumentError: one line naming the option,
// not a stack trace.
import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { wholeNumber } from "../../cli/options.ts";

describe("wholeNumber", () => {
  it("takes whole numbers in the range", () => {
    expect(wholeNumber(1, 5000)("1")).toBe(1);
    expect(wholeNumber(1, 5000)("5000")).toBe(5000);
    expect(wholeNumber(0)("0")).toBe(0);
    expect(wholeNumber(1)("1000000")).toBe(1_000_000);
  });

  it("refuses anything else as an invalid argument that says the range", () => {
    for (const value of ["abc", "", " ", "1.5", "0", "5001", "-3", "1e3", "0x10", "0b1"]) {
      const parse = () => wholeNumber(1, 5000)(value);
      expect(parse).toThrow(InvalidArgumentError);
      expect(parse).toThrow("It must be a whole number from 1 to 5000.");
    }
    expect(() => wholeNumber(0)("-1")).toThrow("It must be a whole number 0 or more.");
  });
});
