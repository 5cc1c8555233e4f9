// The fuzz property of tests/worker/fuzz.test.ts at a larger count: hostile payloads on every write
// route through the real worker and local D1, counting failures instead of stopping at the first.
// Prints runs, failures, answers by status and time, and the first failures in full.
// Usage: npm run bench -- fuzz [runs=2000] [seed=random]
import { spawn } from "node:child_process";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");

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
  console.log(`fuzzing every write route: ${runs} runs, seed ${seed}`);
  const started = performance.now();
  const result = await run(
    path.join(root, "node_modules", ".bin", "vitest"),
    ["run", "--config", "vitest.config.ts", "--project", "worker", "tests/worker/fuzz.test.ts"],
    { FUZZ_RUNS: String(runs), FUZZ_SEED: String(seed) },
  );
  const wall = (performance.now() - started) / 1000;
  const line = /FUZZ_RESULT (\{.*\})/.exec(result.output);
  if (!line) {
    console.log(result.output.slice(-4000));
    throw new Error("the fuzz test did not report a result (see its output above)");
  }
  const summary = JSON.parse(line[1]!) as {
    runs: number;
    failures: number;
    seconds: number;
    seed: number;
    statuses: Record<string, number>;
  };
  console.log(`runs:     ${summary.runs}`);
  console.log(`failures: ${summary.failures}`);
  console.log(
    `time:     ${summary.seconds.toFixed(1)} s in the property (${(summary.runs / summary.seconds).toFixed(0)} requests/s), ${wall.toFixed(1)} s with workerd start-up`,
  );
  console.log(
    `answers:  ${Object.entries(summary.statuses)
      .map(([status, n]) => `${status}×${n}`)
      .join("  ")}`,
  );
  const failures = [...result.output.matchAll(/FUZZ_FAILURE ([^\n]*(?:\n {2}[^\n]*)*)/g)].map((m) => m[1]);
  for (const failure of failures) console.log(`failure: ${failure}`);
  if (summary.failures > 0) {
    console.log(`replay with: npm run bench -- fuzz ${runs} ${seed}`);
    process.exitCode = 1;
  }
}
