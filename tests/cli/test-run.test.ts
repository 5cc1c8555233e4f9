// `npm test` (tests/run.ts) against a run that stalls as the Workers pool can: a file whose test waits
// forever without failing. The run is stopped, the files it had not finished run again once, and the
// closing line counts both runs; a second stall fails the run.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { addCounts, byProject, readProgress, runningFiles, unfinishedFiles } from "../run-progress.ts";

const root = path.resolve(import.meta.dirname, "../..");
let scratch = "";

afterEach(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs tests/run.ts on the stall fixture; resolves with its exit code and output. */
function testRun(mode: "once" | "always") {
  scratch = mkdtempSync(path.join(tmpdir(), "patron-stall-"));
  const env = {
    ...process.env,
    PATRON_TEST_STALL_SECONDS: "2",
    STALL_MODE: mode,
    STALL_MARKER: path.join(scratch, "stalled"),
    RUN_LOG: path.join(scratch, "runs"),
  };
  const args = ["--import", "tsx", "tests/run.ts", "--config", "tests/fixtures/stall/vitest.config.ts"];
  return new Promise<{ code: number; output: string; runs: string[] }>((resolve) => {
    execFile(process.execPath, args, { cwd: root, env }, (error, stdout) => {
      const runs = existsSync(env.RUN_LOG) ? readFileSync(env.RUN_LOG, "utf8").trim().split("\n") : [];
      resolve({ code: error ? Number(error.code) : 0, output: stdout, runs });
    });
  });
}

const lastLine = (output: string) => output.trim().split("\n").at(-1);

it("stops a run in which no test finishes, runs the files it had not finished again, and counts both", async () => {
  const { code, output, runs } = await testRun("once");
  expect(output).toContain("No test finished for 2 s (running: tests/fixtures/stall/stalls.check.ts)");
  expect(output).toContain("Running again the 1 file(s)");
  // The file that finished in the first run is counted from it, not run twice.
  expect(runs).toEqual(["finishes"]);
  expect(lastLine(output)).toBe("4 passed, 0 failed");
  expect(code).toBe(0);
}, 60_000);

it("fails when the second run stalls too, counting the file it did not finish", async () => {
  const { code, output } = await testRun("always");
  expect(output).toContain("1 file(s) of the run did not finish a second time.");
  expect(lastLine(output)).toBe("2 passed, 1 failed");
  expect(code).toBe(1);
}, 60_000);

describe("the progress a run records", () => {
  const a = { project: "worker", file: "/r/tests/worker/a.test.ts" };
  const b = { project: "worker", file: "/r/tests/worker/b.test.ts" };
  const c = { project: "core", file: "/r/tests/core/c.test.ts" };
  const lines = [
    { type: "files", files: [a, b, c] },
    { type: "start", ...a },
    { type: "start", ...c },
    { type: "case" },
    { type: "file", ...c, passed: 3, failed: 1, skipped: 1 },
  ].map((record) => JSON.stringify(record));

  it("tells the files finished, running and not finished, leaving out a line cut short by a killed run", () => {
    const progress = readProgress(`${lines.join("\n")}\n{"type":"file","proj`);
    expect(progress.finished).toHaveLength(1);
    expect(runningFiles(progress)).toEqual([a]);
    expect(unfinishedFiles(progress)).toEqual([a, b]);
    expect(byProject([a, c, b])).toEqual(
      new Map([
        ["worker", [a.file, b.file]],
        ["core", [c.file]],
      ]),
    );
    expect(progress.unhandledErrors).toBeNull();
  });

  it("adds up the finished files of every run and the unhandled errors of runs that ended", () => {
    const stalled = readProgress(lines.join("\n"));
    const again = readProgress(
      [
        { type: "files", files: [a, b] },
        { type: "file", ...a, passed: 2, failed: 0, skipped: 0 },
        { type: "file", ...b, passed: 4, failed: 0, skipped: 2 },
        { type: "end", unhandledErrors: 1 },
      ]
        .map((record) => JSON.stringify(record))
        .join("\n"),
    );
    expect(addCounts([stalled, again])).toEqual({ passed: 9, failed: 2, skipped: 3 });
  });
});
