// `patron shards migrate` against a small local HTTP server that answers as the worker would: what the
// command says when a pass was made with writes open, and when Ctrl-C stops or a failure ends a pass
// that paused them (the pause outlives the command, and orders are refused until it is finished or lifted).
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  stillPausedNote,
  stoppedCheckingNote,
  stoppedNote,
  stoppedWhilePausedNote,
  unpausedNote,
} from "../../cli/commands/shards.ts";

const root = path.resolve(import.meta.dirname, "../..");
let server: Server | null = null;
let child: ChildProcess | null = null;

afterEach(async () => {
  child?.kill("SIGKILL");
  child = null;
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = null;
});

const step = {
  shards: 4,
  mode: "full",
  phase: null,
  since: null,
  cursor: null,
  visited: 3,
  total: 3,
  regions: 3,
  customers: 3,
  changed: 0,
  pruned: 0,
  done: true,
};

/** Requests the stand-in received, by path. */
let received: string[] = [];

/**
 * A worker stand-in: `migrate` answers `onMigrate` (never, to keep a pass running; fail, a 409 refusal;
 * refuse-pause, a 409 to the pause itself; done-unchecked, the pass done and its check never answered).
 */
async function worker(onMigrate: "done" | "never" | "fail" | "refuse-pause" | "done-unchecked") {
  received = [];
  const listening = createServer((request, response) => {
    received.push(request.url ?? "");
    const answer = (data: unknown) => {
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(JSON.stringify({ data }));
    };
    const url = request.url ?? "";
    request.resume();
    if (url === "/v1/admin/shards/migrate/writes" && onMigrate === "refuse-pause") {
      response.writeHead(409, { "Content-Type": "application/json" });
      return response.end(
        JSON.stringify({ error: { code: "conflict", message: "No migration is recorded.", requestId: "r2" } }),
      );
    }
    if (url === "/v1/admin/shards/migrate/writes")
      return answer({ writesPausedAt: "2026-12-06T07:00:00.000Z", pauseSeenWithinSeconds: 0 });
    if (url.startsWith("/v1/admin/jobs/nightly")) return answer({ runs: [] });
    if (url.startsWith("/v1/admin/shards/migrate?verify") && onMigrate === "done-unchecked") return;
    if (url.startsWith("/v1/admin/shards/migrate?verify"))
      return answer({
        writesPausedAt: null,
        counts: { d1: { customers: 3 }, shards: [{ customers: 3 }] },
        changedSince: {},
      });
    if (url === "/v1/admin/shards/migrate" && (onMigrate === "done" || onMigrate === "done-unchecked"))
      return answer(step);
    if (url === "/v1/admin/shards/migrate" && onMigrate === "fail") {
      response.writeHead(409, { "Content-Type": "application/json" });
      return response.end(
        JSON.stringify({ error: { code: "conflict", message: "A shard did not answer.", requestId: "r1" } }),
      );
    }
    // "never": the request stays open, as a long pass's step would.
  });
  server = listening;
  await new Promise<void>((resolve) => listening.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
}

function run(args: string[]) {
  child = spawn(
    process.execPath,
    [path.join(root, "cli/bin.mjs"), "shards", "migrate", "--shards", "4", "--key", "k", ...args],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const out = { stdout: "", stderr: "" };
  child.stdout?.on("data", (chunk) => {
    out.stdout += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    out.stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child?.on("exit", (code) => resolve(code)));
  return { out, exited };
}

describe("patron shards migrate", () => {
  it("after a pass with writes open, says an order arriving before the switch stays in D1 only", async () => {
    const url = await worker("done");
    const { out, exited } = run(["--url", url]);
    expect(await exited).toBe(0);
    expect(out.stdout).toContain("checked: every customer table has the same rows in the shards as in D1");
    expect(out.stdout).toContain(unpausedNote);
    expect(out.stdout).toContain("--pause-writes first");
  }, 60_000);

  it("says the pause outlives it when Ctrl-C stops a pass that paused writes", async () => {
    const url = await worker("never");
    const { out, exited } = run(["--url", url, "--pause-writes"]);
    // Once the pause is in place and the pass has begun (its first step asked), Ctrl-C.
    await expect.poll(() => received, { timeout: 30_000 }).toContain("/v1/admin/shards/migrate");
    expect(received[0]).toBe("/v1/admin/shards/migrate/writes");
    child?.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(out.stderr).toContain(stoppedWhilePausedNote);
    expect(out.stderr).toContain("npx patron shards resume-writes");
  }, 60_000);

  it("says how to continue when a SIGTERM stops a pass with writes open, and nothing of a pause", async () => {
    const url = await worker("never");
    const { out, exited } = run(["--url", url]);
    await expect.poll(() => received, { timeout: 30_000 }).toContain("/v1/admin/shards/migrate");
    child?.kill("SIGTERM");
    expect(await exited).toBe(143);
    expect(out.stderr).toContain(stoppedNote);
    expect(out.stderr).not.toContain("stay paused");
  }, 60_000);

  it("says the pass is done when Ctrl-C stops the check of the copy after it", async () => {
    const url = await worker("done-unchecked");
    const { out, exited } = run(["--url", url]);
    await expect.poll(() => received, { timeout: 30_000 }).toContain("/v1/admin/shards/migrate?verify=true");
    child?.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(out.stderr).toContain(stoppedCheckingNote);
    expect(out.stderr).not.toContain(stoppedNote);
  }, 60_000);

  it("says the pause outlives it when a pass that paused writes fails, and says nothing of a pause when none was asked", async () => {
    const url = await worker("fail");
    const paused = run(["--url", url, "--pause-writes"]);
    expect(await paused.exited).toBe(1);
    expect(paused.out.stderr).toContain("A shard did not answer.");
    expect(paused.out.stderr).toContain(stillPausedNote);
    const open = run(["--url", url]);
    expect(await open.exited).toBe(1);
    expect(open.out.stderr).toContain("A shard did not answer.");
    expect(open.out.stderr).not.toContain("stay paused");
  }, 60_000);

  it("says nothing of a pause the worker refused: nothing was paused", async () => {
    const url = await worker("refuse-pause");
    const refused = run(["--url", url, "--pause-writes"]);
    expect(await refused.exited).toBe(1);
    expect(refused.out.stderr).toContain("No migration is recorded.");
    expect(refused.out.stderr).not.toContain("stay paused");
  }, 60_000);
});
