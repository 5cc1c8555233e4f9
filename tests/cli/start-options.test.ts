// `npm start`'s options: `--no-demo` starts on a local store with no demo retailer (nothing seeded, no
// model fit, /demo off), `--state <dir>` keeps that store in a folder of its own, `--no-build` serves
// the assets as built; a mistake in them stops the start before anything is built.
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, expect, it, onTestFinished } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");

function startWith(args: string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", path.join(root, "cli/start.ts"), ...args],
      { cwd: root, env: { ...process.env, PORT: "8799" }, timeout: 60_000 },
      (_error, out, err) => resolve({ code: child.exitCode, stdout: out, stderr: err }),
    );
  });
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

it("refuses an unknown option or a --state without a folder, with the usage, before building", async () => {
  for (const [args, message] of [
    [["--nodemo"], 'unknown option "--nodemo"'],
    [["--state"], "--state needs a folder"],
  ] as const) {
    const { code, stdout, stderr } = await startWith([...args]);
    expect(code).toBe(1);
    expect(stderr).toContain(message);
    expect(stderr).toContain("Usage: npm start -- [--no-demo] [--state <dir>] [--no-build]");
    expect(stdout).not.toContain("Building");
  }
}, 120_000);

// `npm test` builds first; run alone on a fresh clone (vitest --project core), this file builds what
// --no-build serves.
beforeAll(() => {
  if (!existsSync(path.join(root, "dist/public/widget/v1.js")))
    execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "ignore" });
}, 180_000);

/** `npm start` with `args` on a free port, until it prints its banner; stopped (its whole group) when the test ends. */
async function launch(args: string[]) {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", path.join(root, "cli/start.ts"), ...args], {
    cwd: root,
    env: { ...process.env, PORT: String(port) },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += String(chunk);
  });
  child.stderr?.on("data", (chunk) => {
    output += String(chunk);
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    process.kill(-child.pid, "SIGTERM");
    await exited;
  };
  onTestFinished(stop, 60_000);
  await expect.poll(() => output, { timeout: 150_000, interval: 500 }).toContain("Press Ctrl-C to stop.");
  return { base: `http://127.0.0.1:${port}`, output, stop };
}

it("starts without the demo on a store of its own: nothing seeded, no /demo, and says how to load data", async () => {
  const state = mkdtempSync(path.join(tmpdir(), "patron-start-"));
  onTestFinished(() => rmSync(state, { recursive: true, force: true }), 60_000);
  // --no-build: the other tests' worker and browser serve dist/public meanwhile, so it is not rebuilt under them.
  const first = await launch(["--no-demo", "--", "--state", state, "--no-build"]);
  const { base, output } = first;
  expect(output).toContain("without the demo");
  expect(output).toContain(`(kept in ${state})`);
  expect(output).toContain("No demo data: load your own");
  // The sample docs/import.md loads: an asOf after its last orders (2018-01-01T03:32Z), as that page runs.
  expect(output).toContain(`-d '{"asOf":"2018-01-02T00:00:00Z"}' "${base}/v1/admin/jobs/nightly?wait=1"`);
  expect(output).not.toContain("Seeding the demo");
  expect(output).not.toContain("Fitting the customer models");
  expect(output).not.toContain("Building");
  const admin = { Authorization: "Bearer dev-admin-key" };
  expect((await fetch(`${base}/health`)).status).toBe(200);
  expect((await fetch(`${base}/demo/`)).status).toBe(404);
  const lookup = await fetch(`${base}/v1/customers/lookup?kind=account&value=demo-full-price`, { headers: admin });
  expect(lookup.status).toBe(404);
  // No model fit yet: the first run may be as of an old history's last day.
  expect((await fetch(`${base}/v1/admin/models`, { headers: admin })).status).toBe(404);
  // An import of one's own (patron import orders creates one through the queue).
  const created = await fetch(`${base}/v1/imports`, {
    method: "POST",
    headers: { Authorization: "Bearer dev-api-key", "Content-Type": "application/json" },
    body: JSON.stringify({ source: "own orders" }),
  });
  expect(created.status).toBe(201);
  await first.stop();
  expect(existsSync(path.join(state, "patron-own-data"))).toBe(true);

  // Started again without --no-demo, the store stays the own data's: no demo is seeded into it.
  const again = await launch(["--state", state, "--no-build"]);
  expect(again.output).toContain("is kept for your own data: starting it without the demo again");
  expect(again.output).toContain("Your data is kept here (0 products, 1 import): nothing to load again.");
  expect(again.output).not.toContain("No demo data: load your own");
  expect(again.output).not.toContain("Seeding the demo");
  expect((await fetch(`${again.base}/demo/`)).status).toBe(404);
  const still = await fetch(`${again.base}/v1/customers/lookup?kind=account&value=demo-full-price`, { headers: admin });
  expect(still.status).toBe(404);
  await again.stop();

  // Without the mark (a store whose data came in before it existed), its imports keep the demo out too.
  rmSync(path.join(state, "patron-own-data"));
  const unmarked = await launch(["--state", state, "--no-build"]);
  expect(unmarked.output).toContain(
    "holds data of its own (0 products, 1 import) and no demo: the demo is not seeded into it",
  );
  expect(unmarked.output).not.toContain("Seeding the demo");
  expect(unmarked.output).not.toContain("Fitting the customer models");
  expect((await fetch(`${unmarked.base}/demo/`)).status).toBe(404);
  expect(existsSync(path.join(state, "patron-own-data"))).toBe(true);
}, 400_000);
