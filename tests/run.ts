// `npm test`: runs vitest (the arguments go to it as they are) and watches that tests keep finishing.
//
// The Workers pool can stall in the middle of a run: a file's tests pass, then nothing more happens,
// with no error and no exit (cloudflare/workers-sdk#15498, #15719), until CI's own limit stops it with
// nothing counted. So when no test has finished for PATRON_TEST_STALL_SECONDS (600: the longest test
// or hook timeout here is 300 s), the run is stopped, the files it was running are named, and every
// file it had not finished runs once more in a fresh vitest, one per project (with the run's --config
// and no other argument). The closing line counts the files the first run finished and the second
// run's. A second run that stalls as well fails, with each file it did not finish counted as one
// failure.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { countLine } from "./reporter.ts";
import { addCounts, byProject, type RunProgress, readProgress, runningFiles, unfinishedFiles } from "./run-progress.ts";

const stallMs = Number(process.env.PATRON_TEST_STALL_SECONDS || 600) * 1000;
const vitestBin = path.join(path.dirname(createRequire(import.meta.url).resolve("vitest/package.json")), "vitest.mjs");
const scratch = mkdtempSync(path.join(tmpdir(), "patron-test-run-"));
let current: number | undefined;

/** Stops a run and everything it started (workerd, wrangler dev, Chromium): they share its group. */
function stopGroup(pid: number) {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-pid, name);
    } catch {
      // The group has already gone.
    }
  };
  signal("SIGTERM");
  setTimeout(() => signal("SIGKILL"), 5_000).unref();
}

for (const name of ["SIGINT", "SIGTERM"] as const) {
  process.on(name, () => {
    if (current !== undefined) stopGroup(current);
    rmSync(scratch, { recursive: true, force: true });
    process.exit(130);
  });
}

const relative = (file: string) => path.relative(process.cwd(), file);

/** One vitest run; `stalled` when it was stopped for want of a finished test. */
async function run(args: string[], label: string): Promise<{ code: number; stalled: boolean; progress: RunProgress }> {
  const progressFile = path.join(scratch, `${label}.jsonl`);
  writeFileSync(progressFile, "");
  const child = spawn(process.execPath, [vitestBin, "run", ...args], {
    stdio: "inherit",
    detached: true,
    env: { ...process.env, PATRON_TEST_PROGRESS: progressFile },
  });
  current = child.pid;
  let stalled = false;
  const watch = setInterval(
    () => {
      if (Date.now() - statSync(progressFile).mtimeMs < stallMs) return;
      stalled = true;
      clearInterval(watch);
      const running = runningFiles(readProgress(readFileSync(progressFile, "utf8")));
      const where = running.map(({ project, file }) => [project, relative(file)].filter(Boolean).join(" ")).join(", ");
      process.stdout.write(
        `\nNo test finished for ${stallMs / 1000} s (running: ${where || "no file"}). Stopping this run.\n`,
      );
      if (child.pid !== undefined) stopGroup(child.pid);
    },
    Math.min(5_000, stallMs / 2),
  );
  const code = await new Promise<number>((resolve) => child.on("exit", (exitCode) => resolve(exitCode ?? 1)));
  clearInterval(watch);
  current = undefined;
  return { code, stalled, progress: readProgress(readFileSync(progressFile, "utf8")) };
}

/** The `--config` the run was given, if any: a second run takes the files it names and nothing else. */
function configArgs(args: string[]): string[] {
  const at = args.findIndex((arg) => arg === "--config" || arg === "-c");
  if (at >= 0) return args.slice(at, at + 2);
  const joined = args.find((arg) => arg.startsWith("--config="));
  return joined ? [joined] : [];
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const first = await run(args, "run");
  if (!first.stalled) return first.code;
  if (first.progress.files.length === 0) {
    process.stdout.write("The run stalled before it listed its files; nothing was counted.\n");
    return 1;
  }

  const runs = [first.progress];
  let notFinished = 0;
  for (const [project, files] of byProject(unfinishedFiles(first.progress))) {
    process.stdout.write(
      `\nRunning again the ${files.length} file(s) of ${project || "the run"} it had not finished.\n`,
    );
    const again = await run(
      [...configArgs(args), ...(project ? ["--project", project] : []), ...files],
      `again-${project}`,
    );
    runs.push(again.progress);
    // A second stall, or a run that never reached its end: each file it did not finish fails.
    if (again.stalled || again.progress.unhandledErrors === null) {
      const left = again.progress.files.length > 0 ? unfinishedFiles(again.progress).length : files.length;
      notFinished += left;
      process.stdout.write(`${left} file(s) of ${project || "the run"} did not finish a second time.\n`);
    }
  }
  const total = addCounts(runs);
  total.failed += notFinished;
  process.stdout.write(`\n${countLine(total)}\n`);
  return total.failed > 0 ? 1 : 0;
}

const code = await main();
rmSync(scratch, { recursive: true, force: true });
process.exit(code);
