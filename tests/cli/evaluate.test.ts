// Runs the real `patron evaluate` as a child process on The Complete Journey and checks its output.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { readCompleteJourney } from "../../cli/evaluate/completejourney.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
/** The full 75,000-line sample, gzipped (tests/fixtures/completejourney-full/SOURCE.md). */
const completeJourney = path.join(import.meta.dirname, "../fixtures/completejourney-full");

interface Metrics {
  hitRate: number;
  recall: number;
  ndcg: number;
}

async function evaluate(...args: string[]) {
  const { stdout } = await run("node", ["cli/bin.mjs", "evaluate", ...args, "--json"], {
    cwd: root,
    maxBuffer: 1 << 20,
  });
  const lines = stdout.trim().split("\n");
  expect(lines).toHaveLength(1); // one JSON object, nothing else on stdout
  return JSON.parse(lines[0]!) as {
    k: number;
    level: string;
    households: number;
    patron: Metrics;
    baselines: { popularity: Metrics; ownFrequency: Metrics };
  };
}

describe("patron evaluate", () => {
  it("beats popularity and own-frequency baselines on Complete Journey after 2017-10-01", async () => {
    const result = await evaluate(
      "--dataset",
      completeJourney,
      "--cutoff",
      "2017-10-01",
      "--k",
      "5",
      "--level",
      "product_category",
    );
    expect(result).toMatchObject({ k: 5, level: "product_category" });
    expect(result.households).toBeGreaterThan(1500);
    for (const metrics of [result.patron, result.baselines.popularity, result.baselines.ownFrequency]) {
      for (const value of Object.values(metrics)) expect(value).toBeGreaterThan(0);
      expect(Object.keys(metrics).sort()).toEqual(["hitRate", "ndcg", "recall"]);
      expect(metrics.recall).toBeLessThanOrEqual(metrics.hitRate);
    }
    for (const metric of ["hitRate", "recall", "ndcg"] as const) {
      expect(result.patron[metric]).toBeGreaterThan(result.baselines.popularity[metric]);
      expect(result.patron[metric]).toBeGreaterThan(result.baselines.ownFrequency[metric]);
    }
  }, 60_000);

  it("answers bad input with a line naming the flag, no stack trace: exit code 2, or 1 for a malformed number", async () => {
    const refused = async (...args: string[]) => refusedWith(2, ...args);
    const refusedWith = async (code: number, ...args: string[]) => {
      const failed = await run("node", ["cli/bin.mjs", "evaluate", ...args], { cwd: root }).then(
        () => null,
        (error: { code: number; stdout: string; stderr: string }) => error,
      );
      expect(failed, args.join(" ")).not.toBeNull();
      expect(failed?.code).toBe(code);
      expect(failed?.stderr).not.toMatch(/\n\s+at /);
      expect(failed?.stdout).toBe("");
      return failed?.stderr ?? "";
    };
    // Numbers are read by the flag parser every command uses (cli/options.ts), which prints the usage too.
    expect((await refusedWith(1, "--dataset", completeJourney, "--k", "0")).split("\n")[0]).toBe(
      "error: option '--k <n>' argument '0' is invalid. It must be a whole number 1 or more.",
    );
    expect(await refused("--dataset", completeJourney, "--options", "{bad")).toMatch(
      /^patron evaluate: --options must be JSON \(.+\), got \{bad\n$/,
    );
    expect(await refused("--dataset", completeJourney, "--cutoff", "soon")).toBe(
      "patron evaluate: --cutoff must be a date (YYYY-MM-DD), got soon\n",
    );
    expect(await refused("--dataset", path.join(completeJourney, "nothing-here"))).toMatch(
      /^patron evaluate: --dataset must be a Complete Journey folder .* no folder .*nothing-here\n$/,
    );
    expect(await refused("--dataset", import.meta.dirname)).toBe(
      `patron evaluate: --dataset ${import.meta.dirname} has no products.csv\n`,
    );
  }, 60_000);

  it("reads a fuel line as one unit, as the import preset counts it, and other lines by their quantity", async () => {
    const lines = await readCompleteJourney(completeJourney, "product_type");
    const fuel = lines.filter((line) => line.categoryId.startsWith("GASOLINE"));
    expect(fuel.length).toBeGreaterThan(0);
    expect(new Set(fuel.map((line) => line.quantity))).toEqual(new Set([1]));
    expect(lines.some((line) => !line.categoryId.startsWith("GASOLINE") && line.quantity > 1)).toBe(true);
  });
});
