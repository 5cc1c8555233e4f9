// Runs the real `patron fit` as a child process (node cli/bin.mjs fit ...) and checks its output:
// the published CDNOW parameters from the raw event log, the exact JSON shape, and input errors.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it, onTestFinished } from "vitest";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const fixtures = path.join(import.meta.dirname, "../fixtures");
const cdnow = path.join(fixtures, "cdnow/cdnowElog.csv");
const timeout = 60_000;

async function runFit(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run("node", ["cli/bin.mjs", "fit", ...args], { cwd: root, maxBuffer: 1 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function onlyJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split("\n");
  expect(lines).toHaveLength(1); // one JSON object, nothing else on stdout
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

const cdnowArgs = ["--input", cdnow, "--customer", "masterid", "--date", "date", "--cutoff", "1997-09-30"];

describe("patron fit", () => {
  it(
    "prints the published CDNOW parameters as one JSON object",
    async () => {
      const { code, stdout } = await runFit(...cdnowArgs, "--amount", "sales", "--unit", "week", "--json");
      expect(code).toBe(0);
      const result = onlyJson(stdout) as {
        bgnbd: Record<string, number>;
        gammaGamma: Record<string, number>;
        customers: number;
        fitMs: number;
      };
      expect(Object.keys(result)).toEqual(["bgnbd", "gammaGamma", "customers", "fitMs"]);
      expect(Object.keys(result.bgnbd)).toEqual(["r", "alpha", "a", "b", "logLikelihood"]);
      expect(Object.keys(result.gammaGamma)).toEqual(["p", "q", "gamma"]);
      // Fader, Hardie & Lee (2005): within 0.001 of each published BG/NBD parameter.
      expect(Math.abs(result.bgnbd.r! - 0.243)).toBeLessThan(0.001);
      expect(Math.abs(result.bgnbd.alpha! - 4.414)).toBeLessThan(0.001);
      expect(Math.abs(result.bgnbd.a! - 0.793)).toBeLessThan(0.001);
      expect(Math.abs(result.bgnbd.b! - 2.426)).toBeLessThan(0.001);
      expect(Math.abs(result.bgnbd.logLikelihood! + 9582.4)).toBeLessThan(0.05);
      expect(Math.abs(result.gammaGamma.p! - 6.25)).toBeLessThan(0.005);
      expect(Math.abs(result.gammaGamma.q! - 3.74)).toBeLessThan(0.005);
      expect(Math.abs(result.gammaGamma.gamma! - 15.44)).toBeLessThan(0.005);
      expect(result.customers).toBe(2357);
      expect(result.fitMs).toBeGreaterThan(0);
    },
    timeout,
  );

  it(
    "leaves Gamma-Gamma null without --amount and fits in days with alpha scaled by 7",
    async () => {
      const { code, stdout } = await runFit(...cdnowArgs, "--unit", "day", "--json");
      expect(code).toBe(0);
      const result = onlyJson(stdout) as { bgnbd: Record<string, number>; gammaGamma: unknown };
      expect(result.gammaGamma).toBeNull();
      expect(Math.abs(result.bgnbd.alpha! / 7 - 4.414)).toBeLessThan(0.002);
      expect(Math.abs(result.bgnbd.r! - 0.243)).toBeLessThan(0.001);
    },
    timeout,
  );

  it(
    "reads ISO dates (the grocery log) and prints a readable summary without --json",
    async () => {
      const { code, stdout } = await runFit(
        ...["--input", path.join(fixtures, "grocery/groceryElog.csv"), "--customer", "cust", "--date", "date"],
        ...["--cutoff", "2007-12-31", "--unit", "week"],
      );
      expect(code).toBe(0);
      expect(stdout).toMatch(/Calibration: 1525 customers/);
      expect(stdout).toMatch(/BG\/NBD\s+r 0\.30\d\d/);
      expect(stdout).toMatch(/converged/);
    },
    timeout,
  );

  it(
    "names the available columns when a column is missing, with exit code 2",
    async () => {
      const { code, stdout, stderr } = await runFit(
        "--input",
        cdnow,
        "--customer",
        "customer_id",
        "--date",
        "date",
        "--cutoff",
        "1997-09-30",
      );
      expect(code).toBe(2);
      expect(stdout).toBe("");
      expect(stderr).toContain('--customer column "customer_id" is not in');
      expect(stderr).toContain("available columns: masterid, sampleid, date, cds, sales");
    },
    timeout,
  );

  it(
    "reports a bad date in the file with its line, a bad cutoff, a bad unit and missing flags, with exit code 2",
    async () => {
      const folder = mkdtempSync(path.join(tmpdir(), "patron-fit-"));
      onTestFinished(() => rmSync(folder, { recursive: true, force: true }));
      const file = path.join(folder, "events.csv");
      writeFileSync(file, "who,when,value\na,2024-01-01,10\na,2024-31-01,12\n");
      const badRow = await runFit("--input", file, "--customer", "who", "--date", "when", "--cutoff", "2024-06-01");
      expect(badRow.code).toBe(2);
      expect(badRow.stderr).toContain('line 3: "2024-31-01" in column "when" is not a date');

      const badCutoff = await runFit("--input", file, "--customer", "who", "--date", "when", "--cutoff", "June");
      expect(badCutoff.code).toBe(2);
      expect(badCutoff.stderr).toContain("--cutoff must be a date");

      const badUnit = await runFit(...cdnowArgs, "--unit", "month");
      expect(badUnit.code).toBe(2);
      expect(badUnit.stderr).toContain("--unit must be week or day");

      const missing = await runFit("--input", cdnow);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain("missing --customer, --date, --cutoff");
    },
    timeout,
  );
});
