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

/**
 * Why `value` cannot name a worker, or undefined when it can: an http:// or https:// address. Without
 * the scheme (`127.0.0.1:8787`) fetch could not reach anything, and a command would retry for half a
 * minute before saying so.
 */
export function workerUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "is not an address: it must start with http:// or https://, such as http://127.0.0.1:8787.";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return `must be an http:// or https:// address, such as http://127.0.0.1:8787 (not ${url.protocol}).`;
  return undefined;
}

/** A parser of --url: an http:// or https:// address (workerUrlProblem). */
export function workerUrl(value: string): string {
  const problem = workerUrlProblem(value);
  if (problem) throw new InvalidArgumentError(`It ${problem}`);
  return value;
}
