// `patron import orders` through the queue when the worker records a batch failed: the other batches'
// totals are printed, each failed batch with its error, the run exits 1, and a rerun sends only the
// failed batch again; and when the queue processes nothing, the wait stops after the stall time. The
// import is created with the number of batches the run will post; an import left empty is taken up
// only by a run that posts as many; input that cannot be read further stops the run once the batches
// in flight are answered.
// Against a small local HTTP server playing the import API (the real worker's queue path is covered by
// tests/cli/import.test.ts; a batch failing there needs a failing D1).
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { IngestClient } from "../../cli/import/client.ts";
import { ImportStalled, openQueuedImport, runQueuedImport, unusedImport } from "../../cli/import/queued.ts";
import { ReadStopped } from "../../cli/import/run.ts";
import { InputError } from "../../cli/import/sources.ts";
import { confirmBatch, countConfirmed, emptyState, emptyTotals, type ImportState } from "../../cli/import/state.ts";
import { wireOrder } from "../fixtures/wire-order.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");

interface Batch {
  sequence: number;
  status: "queued" | "done" | "failed";
  orders: number;
  accepted: number;
  duplicates: number;
  ignoredIdentifiers: number;
  setAside?: number;
  setAsideIds?: string[];
  error: string | null;
}

/**
 * The import API over one import, `imp_1`, whose batch `failing` fails on the first run only, and whose
 * batch `rejected` (if any) is refused with a 400 as the worker refuses an invalid order, as is any
 * order on the channel "fax"; `failure` is the error the failing batch records. `created` counts the imports created, `expected` lists the
 * `expectedBatches` each was created with.
 */
async function importApi(
  failing: number,
  rejected?: number,
  failure = "database busy: D1_ERROR: database is locked",
  setAsideIn?: number,
) {
  const batches = new Map<number, Batch>();
  const posted: number[] = [];
  const expected: (number | null)[] = [];
  let created = 0;
  let run = 1;
  const json = (response: import("node:http").ServerResponse, status: number, data: unknown) => {
    response.writeHead(status, { "Content-Type": "application/json" });
    response.end(JSON.stringify({ data }));
  };
  const view = () => {
    const all = [...batches.values()];
    const count = (status: Batch["status"]) => all.filter((b) => b.status === status).length;
    const expectedBatches = expected.at(-1) ?? null;
    const open = all.length === 0 || all.length < (expectedBatches ?? 0);
    return {
      id: "imp_1",
      status: open ? "open" : count("failed") > 0 ? "failed" : "done",
      expectedBatches,
      batches: { received: all.length, queued: 0, done: count("done"), failed: count("failed") },
      orders: { received: all.reduce((sum, b) => sum + b.orders, 0), processed: all.reduce((s, b) => s + b.orders, 0) },
      totals: { accepted: all.reduce((sum, b) => sum + b.accepted, 0), duplicates: 0 },
    };
  };
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      const url = new URL(request.url ?? "/", "http://local");
      if (request.method === "POST" && url.pathname === "/v1/imports") {
        created++;
        expected.push((JSON.parse(body) as { expectedBatches?: number }).expectedBatches ?? null);
        return json(response, 201, view());
      }
      if (request.method === "POST" && url.pathname === "/v1/imports/imp_1/batches") {
        const { sequence, orders } = JSON.parse(body) as {
          sequence: number;
          orders: { id: string; channel?: string }[];
        };
        if (sequence === rejected || orders.some((order) => order.channel === "fax")) {
          response.writeHead(400, { "Content-Type": "application/json" });
          return response.end(
            JSON.stringify({
              error: {
                code: "invalid_request",
                message: "Invalid request body: 1 problem found.",
                requestId: "req-1",
                issues: [{ path: ["orders", 0, "channel"], message: "Invalid option" }],
              },
            }),
          );
        }
        posted.push(sequence);
        const fails = sequence === failing && run === 1;
        const batch: Batch = {
          sequence,
          status: fails ? "failed" : "done",
          orders: orders.length,
          accepted: fails ? 0 : orders.length,
          duplicates: 0,
          ignoredIdentifiers: 0,
          error: fails ? failure : null,
        };
        // The batch's first order carries a placeholder: the worker stores the rest and sets it aside.
        if (sequence === setAsideIn)
          Object.assign(batch, {
            accepted: orders.length - 1,
            setAside: 1,
            setAsideIds: [orders[0]?.id],
            error: setAsideReason,
          });
        batches.set(sequence, batch);
        return json(response, 202, batch);
      }
      if (request.method === "GET" && url.pathname === "/v1/imports/imp_1") return json(response, 200, view());
      if (request.method === "GET" && url.pathname === "/v1/imports/imp_1/batches") {
        const status = url.searchParams.get("status");
        const after = Number(url.searchParams.get("after") ?? -1);
        const page = [...batches.values()]
          .filter((b) => (!status || b.status === status) && b.sequence > after)
          .sort((a, b) => a.sequence - b.sequence);
        return json(response, 200, { batches: page, next: null });
      }
      response.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    posted,
    expected,
    created: () => created,
    nextRun: () => {
      run++;
      posted.length = 0;
    },
  };
}

const setAsideReason =
  "1 order was set aside, not stored: their identifiers link more than 20000 orders and calls; one of them is probably a placeholder (a store's walk-in email or card). Send those orders without it.";

let server: Server | null = null;
let workDir: string | null = null;
afterEach(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = null;
  if (workDir) rmSync(workDir, { recursive: true, force: true });
  workDir = null;
});

async function patron(args: string[], cwd: string) {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(root, "cli/bin.mjs"), ...args], { cwd });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
  }
}

describe("patron import orders through the queue, with a batch the worker records failed", () => {
  it("says a batch refused for a placeholder identifier needs a fix first, not a rerun", async () => {
    const refusal =
      "These identifiers link more than 20000 orders and calls; one of them is probably a placeholder (a store's walk-in email or card). Send the batch without it.";
    const api = await importApi(1, undefined, refusal);
    server = api.server;
    workDir = mkdtempSync(path.join(tmpdir(), "patron-queued-"));
    const file = path.join(workDir, "orders.ndjson");
    writeFileSync(file, `${["a", "b", "c", "d", "e", "f"].map((id) => wireOrder(id)).join("\n")}\n`);
    const args = [
      "import",
      "orders",
      file,
      "--url",
      api.url,
      "--key",
      "k",
      "--batch-size",
      "2",
      "--poll-interval",
      "50",
    ];
    const first = await patron([...args, "--state", path.join(workDir, "state.json")], workDir);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain(`batch 2 failed: ${refusal}`);
    expect(first.stderr).not.toContain("Rerun the same command");
    expect(first.stderr).toContain(
      "Batch 2, refused for an identifier linking too many orders, would be refused again as it is: find the identifier many of its orders share (a store's walk-in card or email, a till's default phone), leave it out of those orders in the export (or its column out of the mapping), and import the fixed file (orders of it already stored come back as duplicates).",
    );
  });

  it("names the orders the worker set aside for a placeholder, counts the rest in, and exits 1", async () => {
    const api = await importApi(-1, undefined, undefined, 1);
    server = api.server;
    workDir = mkdtempSync(path.join(tmpdir(), "patron-queued-"));
    const file = path.join(workDir, "orders.ndjson");
    writeFileSync(file, `${["a", "b", "c", "d", "e", "f"].map((id) => wireOrder(id)).join("\n")}\n`);
    const state = path.join(workDir, "state.json");
    const args = ["import", "orders", file, "--url", api.url, "--key", "k", "--batch-size", "2", "--state", state];
    const first = await patron([...args, "--poll-interval", "50"], workDir);
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(/^orders sent\s+6 /m);
    expect(first.stdout).toMatch(/^accepted\s+5$/m);
    expect(first.stdout).toMatch(/^set aside\s+1 \(identifiers linking too many orders: below\)$/m);
    expect(first.stdout).toContain("import status      done");
    expect(first.stderr).toContain(
      "Set aside: 1 order was not stored, as their identifiers link too many orders; every other order is in:",
    );
    expect(first.stderr).toContain(`  batch 2: c: ${setAsideReason}`);
    expect(first.stderr).toContain("leave it out of them in the export");
    expect(first.stderr).not.toContain("Rerun the same command");
    // Every batch is confirmed, with the set-aside order outside the totals.
    expect(JSON.parse(readFileSync(state, "utf8"))).toMatchObject({
      confirmedThrough: 3,
      totals: { records: 5, accepted: 5 },
    });

    // The same command again sends nothing, and still says the order is not stored and exits 1: a
    // script rerunning the import must not read the earlier run's set-aside order as fixed.
    const again = await patron([...args, "--poll-interval", "50"], workDir);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/^batches\s+0 sent, 3 skipped \(confirmed by an earlier run\)$/m);
    expect(again.stdout).not.toMatch(/^set aside/m);
    expect(again.stderr).toContain(
      "Set aside: 1 order was not stored, as their identifiers link too many orders; every other order is in:",
    );
    expect(again.stderr).toContain(`  batch 2, sent by an earlier run: c: ${setAsideReason}`);
  }, 30_000);

  it("prints the failed batch, exits 1, and a rerun resends only that batch", async () => {
    const api = await importApi(1);
    server = api.server;
    workDir = mkdtempSync(path.join(tmpdir(), "patron-queued-"));
    const order = (id: string) => wireOrder(id);
    const file = path.join(workDir, "orders.ndjson");
    writeFileSync(file, `${["a", "b", "c", "d", "e", "f"].map(order).join("\n")}\n`);
    const state = path.join(workDir, "state.json");
    const args = ["import", "orders", file, "--url", api.url, "--key", "k", "--batch-size", "2", "--state", state];

    const first = await patron([...args, "--poll-interval", "50"], workDir);
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(/^accepted\s+4$/m);
    expect(first.stdout).toContain("import             imp_1 (queued)\nimport status      failed\n");
    expect(first.stderr).toContain("batch 2 failed: database busy: D1_ERROR: database is locked");
    expect(first.stderr).toContain("Rerun the same command to send the failed batches again.");
    expect(api.posted.sort()).toEqual([0, 1, 2]);
    expect(api.expected).toEqual([3]);
    expect(JSON.parse(readFileSync(state, "utf8"))).toMatchObject({ importId: "imp_1", confirmedThrough: 1 });

    api.nextRun();
    const second = await patron([...args, "--poll-interval", "50"], workDir);
    expect(second.code, second.stderr).toBe(0);
    expect(api.posted).toEqual([1]);
    expect(second.stdout).toMatch(/^accepted\s+2$/m);
    expect(second.stdout).toContain("batches            1 sent, 2 skipped");
    expect(second.stdout).toMatch(/^in all\s+6 orders in 3 batches: 6 accepted, 0 duplicates, 0 suppressed/m);
    expect(api.created()).toBe(1);
  }, 30_000);

  it("stops when the input cannot be read further, after the batches in flight are answered", async () => {
    const api = await importApi(-1);
    server = api.server;
    async function* brokenAfter(count: number) {
      for (let i = 0; i < count; i++) yield { value: JSON.parse(wireOrder(`r-${i}`)), lines: [i + 1] };
      throw new InputError(`orders.ndjson:${count + 1}: not valid JSON (Unexpected end of JSON input)`);
    }
    const error = await runQueuedImport({
      kind: "orders",
      source: "orders.ndjson",
      records: brokenAfter(4),
      client: new IngestClient({ url: api.url, apiKey: "k" }),
      batchSize: 2,
      concurrency: 2,
      pollIntervalMs: 1,
      sleep: async () => {},
    }).catch((caught) => caught);
    expect(error).toBeInstanceOf(ReadStopped);
    expect(error.message).toBe("orders.ndjson:5: not valid JSON (Unexpected end of JSON input)");
    expect(error.result).toMatchObject({ importId: "imp_1", posted: 2 });
    expect(api.posted.sort()).toEqual([0, 1]);
  });
});

describe("patron import orders through the queue, when the queue processes nothing", () => {
  it("stops waiting after the stall time and says how to resend, rather than waiting for ever", async () => {
    const posted: number[] = [];
    server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => {
        body += chunk;
      });
      request.on("end", () => {
        const url = new URL(request.url ?? "/", "http://local");
        const reply = (status: number, data: unknown) => {
          response.writeHead(status, { "Content-Type": "application/json" });
          response.end(JSON.stringify({ data }));
        };
        const queued = posted.length;
        const view = {
          id: "imp_1",
          status: "open",
          batches: { received: queued, queued, done: 0, failed: 0 },
          orders: { received: queued * 2, processed: 0 },
          totals: { accepted: 0, duplicates: 0 },
        };
        if (request.method === "POST" && url.pathname === "/v1/imports") return reply(201, view);
        if (request.method === "POST" && url.pathname === "/v1/imports/imp_1/batches") {
          const { sequence } = JSON.parse(body) as { sequence: number };
          posted.push(sequence);
          return reply(202, { sequence, status: "queued", orders: 2, accepted: 0, duplicates: 0, error: null });
        }
        if (request.method === "GET" && url.pathname === "/v1/imports/imp_1") return reply(200, view);
        response.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    // A clock that moves a minute every time it is read: the wait sees time pass without sleeping.
    let minutes = 0;
    const now = () => new Date(Date.UTC(2026, 0, 1, 0, minutes++));
    const records = ["a", "b", "c", "d"].map((id, i) => ({ value: { id }, lines: [i + 1] }));
    const attempt = runQueuedImport({
      kind: "orders",
      source: "orders.ndjson",
      records,
      client: new IngestClient({ url: `http://127.0.0.1:${port}`, apiKey: "k" }),
      batchSize: 2,
      pollIntervalMs: 1,
      stallMs: 5 * 60_000,
      sleep: async () => {},
      now,
    });
    const error = await attempt.catch((caught) => caught);
    expect(error).toBeInstanceOf(ImportStalled);
    expect(error.message).toContain("2 batch(es) of import imp_1 are still queued after 5 minutes");
    expect(error.message).toContain("Rerun the same command");
    expect(posted.sort()).toEqual([0, 1]);
    // It waited about the stall time, not for ever, and not less.
    expect(minutes).toBeGreaterThanOrEqual(5);
    expect(minutes).toBeLessThan(12);
  });
});

describe("patron import orders through the queue, with a batch the worker refuses as invalid", () => {
  it("stops on it with its input line and says the batches posted before it are queued, not '0 confirmed'", async () => {
    const api = await importApi(-1, 1);
    server = api.server;
    workDir = mkdtempSync(path.join(tmpdir(), "patron-queued-"));
    const order = (id: string) => wireOrder(id);
    const file = path.join(workDir, "orders.ndjson");
    writeFileSync(file, `${["a", "b", "c", "d"].map(order).join("\n")}\n`);
    const args = ["import", "orders", file, "--url", api.url, "--key", "k", "--batch-size", "2", "--concurrency", "1"];

    const result = await patron([...args, "--state", path.join(workDir, "state.json")], workDir);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("batch 2 rejected");
    expect(result.stderr).toContain(`${file}:3 c channel: Invalid option`);
    expect(result.stderr).toContain(
      "the batches posted, before it and any sent beside it while it was answered, are queued in import imp_1, and the worker ingests them",
    );
    expect(result.stderr).not.toContain("0 batches confirmed");
    expect(api.posted).toEqual([0]);
  }, 30_000);
});

describe("patron import orders through the queue, when the first batch is refused", () => {
  it("says no batch was posted, and the rerun of the fixed file posts to that import rather than a new one", async () => {
    const api = await importApi(-1);
    server = api.server;
    workDir = mkdtempSync(path.join(tmpdir(), "patron-queued-"));
    const order = (id: string, channel: string) => wireOrder(id, `acct-${id}`, { channel });
    const file = path.join(workDir, "bad.ndjson");
    writeFileSync(file, `${order("a", "fax")}\n`);
    const args = ["import", "orders", file, "--url", api.url, "--key", "k", "--poll-interval", "50"];

    const first = await patron(args, workDir);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain("batch 1 rejected");
    expect(first.stderr).toContain(
      "No batch was posted; import imp_1 has received nothing and is kept in the state file: fix the input and rerun",
    );
    expect(first.stderr).not.toContain("the batches posted, before it");
    expect(api.posted).toEqual([]);
    expect(api.created()).toBe(1);

    writeFileSync(file, `${order("a", "web")}\n${order("b", "web")}\n`);
    const second = await patron(args, workDir);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain("taking up import imp_1: an earlier run of this file created it");
    expect(second.stdout).toMatch(/^accepted\s+2$/m);
    expect(api.posted).toEqual([0]);
    expect(api.created()).toBe(1);
    expect(api.expected).toEqual([1]);
  }, 30_000);

  it("takes up an import left empty only for a run that posts as many batches as it expects", async () => {
    const api = await importApi(-1);
    server = api.server;
    const client = new IngestClient({ url: api.url, apiKey: "k" });
    await client.post("/v1/imports", { source: "bad.ndjson", expectedBatches: 1 });
    expect(await unusedImport(client, ["imp_1"], 1)).toBe("imp_1");
    // Taken up by a run of 2 batches, it would read done after 1: another import is created instead.
    expect(await unusedImport(client, ["imp_1"], 2)).toBeNull();
  });
});

describe("openQueuedImport, when the worker no longer knows the import the state names", () => {
  it("creates one expecting every batch, and confirms none: the worker's store may have been reset", async () => {
    const api = await importApi(-1);
    server = api.server;
    const client = new IngestClient({ url: api.url, apiKey: "k" });
    const at = new Date("2026-01-01T00:00:00Z");
    let state: ImportState = { ...emptyState("f", "orders.ndjson", at), importId: "imp_gone" };
    for (const batch of [0, 1]) state = confirmBatch(state, batch, { ...emptyTotals(), accepted: 2 }, at);
    const opened = await openQueuedImport({ client, state, source: "orders.ndjson", expectedBatches: 5 });
    expect(opened).toMatchObject({ importId: "imp_1", lost: "imp_gone" });
    // Batches 0 and 1 went to the lost import, which may be gone with its orders: the new one gets all 5.
    expect(api.expected).toEqual([5]);
    expect(opened.state && countConfirmed(opened.state)).toBe(0);
  });
});
