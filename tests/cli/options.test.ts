// Option values the commands refuse are commander's InvalidArgumentError: one line naming the option,
// not a stack trace.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { wholeNumber, workerUrl } from "../../cli/options.ts";

const run = promisify(execFile);
const bin = path.resolve(import.meta.dirname, "../../cli/bin.mjs");

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

describe("workerUrl", () => {
  it("takes http and https addresses", () => {
    for (const value of ["http://127.0.0.1:8787", "https://patron.example.com", "http://localhost:8793/"])
      expect(workerUrl(value)).toBe(value);
  });

  it("refuses an address without its scheme, or with another", () => {
    for (const value of ["127.0.0.1:8787", "patron.example.com", ""]) {
      expect(() => workerUrl(value)).toThrow(InvalidArgumentError);
      expect(() => workerUrl(value)).toThrow("It is not an address: it must start with http:// or https://");
    }
    // "localhost:8787" parses, with "localhost:" as its scheme.
    expect(() => workerUrl("localhost:8787")).toThrow("(not localhost:)");
    expect(() => workerUrl("ftp://127.0.0.1")).toThrow("(not ftp:)");
  });

  // Before, a missing scheme reached fetch: half a minute of retries, then "--key is required".
  it.each([
    ["--url", ["shards", "status", "--url", "127.0.0.1:8787", "--key", "k"], {}, "option '--url <url>' argument"],
    ["$PATRON_URL", ["backfill", "status", "--key", "k"], { PATRON_URL: "localhost:8787" }, "$PATRON_URL must be"],
    ["$PATRON_URL", ["import", "orders", "missing.ndjson", "--key", "k"], { PATRON_URL: "x" }, "$PATRON_URL is not"],
  ])(
    "a command given a worker address without http:// (%s) says so and exits 1 without a request",
    async (_label, args, env, message) => {
      const failed = await run("node", [bin, ...args], { env: { ...process.env, ...env }, timeout: 20_000 }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      expect(failed?.code).toBe(1);
      expect(failed?.stderr).toContain(message);
      expect(failed?.stderr).not.toContain("retrying");
    },
    30_000,
  );
});
