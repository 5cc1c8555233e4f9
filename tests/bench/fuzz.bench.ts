// The fuzz property of tests/worker/fuzz.test.ts at a larger count: hostile payloads on every write
// route through the real worker and local D1, counting failures instead of stopping at the first.
// Runs in rounds of 500 (one workerd each, seeds seed, seed + 1 …); prints runs, failures, answers by
// status and time, the slowest requests, and every failure in full.
// Usage: npm run bench -- fuzz [runs=2000] [seed=random]
import { spawn } from "node:child_process";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");
const runsPerRound = 500;

function run(command: string, args: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

export default async function fuzzBench(args: string[]) {
  const runs = Number(args[0] ?? 2000);
  const seed = Number(args[1] ?? Math.floor(Math.random() * 2 ** 31));
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive whole number, got ${args[0]}`);
  if (!Number.isInteger(seed)) throw new Error(`seed must be a whole number, got ${args[1]}`);
  // The worker project serves the built widget and demo assets, so build them first, as `npm test` does.
  const build = await run("npm", ["run", "build", "--silent"], {});
  if (build.code !== 0) throw new Error(`build failed:\n${build.output}`);
  console.log(`fuzzing every write route: ${runs} runs, seed ${seed}, in rounds of at most ${runsPerRound}`);
  const total = { runs: 0, failures: 0, seconds: 0, statuses: {} as Record<string, number> };
  const failures: string[] = [];
  const slowest: string[] = [];
  const started = performance.now();
  // One workerd per round: a long run in one isolate slows down request by request (the worker's
  // /health latency grows with the requests served before it), so rounds keep the figure per request honest.
  for (let round = 0; round * runsPerRound < runs; round++) {
    const roundRuns = Math.min(runsPerRound, runs - round * runsPerRound);
    const roundSeed = seed + round;
    const result = await run(
      path.join(root, "node_modules", ".bin", "vitest"),
      ["run", "--config", "vitest.config.ts", "--project", "worker", "tests/worker/fuzz.test.ts"],
      { FUZZ_RUNS: String(roundRuns), FUZZ_SEED: String(roundSeed) },
    );
    const line = /FUZZ_RESULT (\{.*\})/.exec(result.output);
    if (!line) {
      console.log(result.output.slice(-4000));
      throw new Error(`round ${round + 1} (seed ${roundSeed}) did not report a result (see its output above)`);
    }
    const summary = JSON.parse(line[1]!) as {
      runs: number;
      failures: number;
      seconds: number;
      statuses: Record<string, number>;
    };
    total.runs += summary.runs;
    total.failures += summary.failures;
    total.seconds += summary.seconds;
    for (const [status, n] of Object.entries(summary.statuses))
      total.statuses[status] = (total.statuses[status] ?? 0) + n;
    for (const m of result.output.matchAll(/FUZZ_FAILURE ([^\n]*(?:\n {2}[^\n]*)*)/g))
      failures.push(`(seed ${roundSeed}) ${m[1]}`);
    for (const m of result.output.matchAll(/FUZZ_SLOWEST ([^\n]*)/g)) slowest.push(m[1]!);
    console.log(
      `round ${round + 1}: ${summary.runs} runs, seed ${roundSeed}, ${summary.failures} failures, ${summary.seconds.toFixed(1)} s`,
    );
  }
  const wall = (performance.now() - started) / 1000;
  console.log(`runs:     ${total.runs}`);
  console.log(`failures: ${total.failures}`);
  console.log(
    `time:     ${total.seconds.toFixed(1)} s in the property (${(total.runs / total.seconds).toFixed(0)} requests/s), ${wall.toFixed(1)} s with workerd start-ups`,
  );
  console.log(
    `answers:  ${Object.entries(total.statuses)
      .map(([status, n]) => `${status}×${n}`)
      .join("  ")}`,
  );
  slowest.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  for (const slow of slowest.slice(0, 3)) console.log(`slowest:  ${slow}`);
  for (const failure of failures) console.log(`failure: ${failure}`);
  if (total.failures > 0) {
    console.log(
      `replay a round with: FUZZ_RUNS=<runs> FUZZ_SEED=<seed> npx vitest run --project worker tests/worker/fuzz.test.ts`,
    );
    process.exitCode = 1;
  }
}
