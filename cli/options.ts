// Parsers of command-line option values. A value they refuse is commander's InvalidArgumentError, so
// commander prints one line naming the option (`error: option '--to <n>' argument 'abc' is invalid. …`)
// and exits with 1, instead of a stack trace.
import { InvalidArgumentError } from "commander";

/** A parser of whole numbers from `min` to `max` (no upper bound when omitted). */
export function wholeNumber(min: number, max = Number.POSITIVE_INFINITY): (value: string) => number {
  const range = max === Number.POSITIVE_INFINITY ? `${min} or more` : `from ${min} to ${max}`;
  return (value) => {
    // Digits only: Number() would also take "0x10", "1e3" and "0b1".
    const number = /^\s*-?\d+\s*$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isInteger(number) || number < min || number > max)
      throw new InvalidArgumentError(`It must be a whole number ${range}.`);
    return number;
  };
}
