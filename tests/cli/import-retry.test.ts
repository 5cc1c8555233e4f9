// `patron import` retries what the API says is temporary (409 busy customers, which carries
// Retry-After, 429 rate limited, 503 database busy) with backoff, honouring Retry-After, a bounded
// number of times, and says so; a 400, and a 409 without Retry-After, are never retried. Against a small local HTTP server that answers from a script, no worker needed.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { describeFailure } from "../../cli/commands/import.ts";
import { BatchRejected, IngestClient, IngestFailed } from "../../cli/import/client.ts";
import { ImportIncomplete, ImportStalled } from "../../cli/import/queued.ts";
import { wireOrder } from "../fixtures/wire-order.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");

interface Scripted {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

interface Received {
  path: string;
  authorization: string | undefined;
  body: string;
}

const accepted = (orders: number): Scripted => ({ status: 200, body: { data: { accepted: orders, duplicates: 0 } } });
const refused = (status: number, code: string, retryAfter?: string): Scripted => ({
  status,
  headers: retryAfter === undefined ? {} : { "Retry-After": retryAfter },
  body: { error: { code, message: `scripted ${status}`, requestId: `req-${status}` } },
});

let server: Server | null = null;

/**
 * Answers each request with the next scripted answer, then with `rest` (a 200 by default); `null` leaves
 * the request unanswered, as a stalled worker would.
 */
async function scriptedServer(
  script: (Scripted | null)[],
  rest: (body: string) => Scripted | null = () => accepted(2),
) {
  const received: Received[] = [];
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      received.push({ path: request.url ?? "", authorization: request.headers.authorization, body });
      const answer = script.length > 0 ? script.shift() : rest(body);
      if (!answer) return;
      response.writeHead(answer.status, { "Content-Type": "application/json", ...answer.headers });
      response.end(typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received };
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = null;
});

/** A client whose waits are recorded instead of slept, with the randomness of the jitter fixed. */
function recordingClient(url: string, maxAttempts = 8) {
  const waits: number[] = [];
  const notes: string[] = [];
  const client = new IngestClient({
    url,
    apiKey: "k",
    retry: { maxAttempts, baseDelayMs: 100, maxDelayMs: 30_000 },
    sleep: async (ms) => {
      waits.push(ms);
    },
    random: () => 0.5,
    onRetry: (info) => notes.push(`${info.attempt}/${info.maxAttempts} ${info.reason}`),
  });
  return { client, waits, notes };
}

describe("IngestClient against a local HTTP server", () => {
  it("retries 409 (customers busy), 429 and 503 with backoff, honouring Retry-After, and resends the same batch", async () => {
    const { url, received } = await scriptedServer([
      refused(409, "conflict", "1"),
      refused(429, "rate_limited", "3"),
      refused(503, "unavailable", "2"),
      refused(503, "unavailable"),
    ]);
    const { client, waits, notes } = recordingClient(url);
    const result = await client.post("/v1/orders", { orders: [{ id: "o-1" }, { id: "o-2" }] });
    expect(result).toEqual({ data: { accepted: 2, duplicates: 0 }, attempts: 5, storedBeforeRetry: [] });
    expect(received).toHaveLength(5);
    expect(new Set(received.map((request) => request.body)).size).toBe(1);
    expect(received.every((request) => request.authorization === "Bearer k")).toBe(true);
    // Full jitter at 0.5: half of 100·2^(n−1) ms; a Retry-After, when longer, wins.
    expect(waits).toEqual([1000, 3000, 2000, 400]);
    expect(notes).toEqual([
      "1/8 HTTP 409 scripted 409",
      "2/8 HTTP 429 scripted 429",
      "3/8 HTTP 503 scripted 503",
      "4/8 HTTP 503 scripted 503",
    ]);
  });

  it("retries a 503 that is not Patron's (a local proxy's plain-text page) and says what it said", async () => {
    const { url, received } = await scriptedServer([
      { status: 503, body: "Your worker restarted mid-request. Please try sending the request again.\nMore." },
    ]);
    const { client, notes } = recordingClient(url);
    const result = await client.post("/v1/orders", { orders: [{ id: "o-1" }] });
    expect(result.attempts).toBe(2);
    expect(received).toHaveLength(2);
    expect(notes).toEqual(["1/8 HTTP 503 Your worker restarted mid-request. Please try sending the request again."]);
  });

  it("asks a read again when it has not answered within its own timeout (one parked by a proxy)", async () => {
    let reads = 0;
    server = createServer((_request, response) => {
      reads++;
      if (reads === 1) return; // never answered
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(JSON.stringify({ data: { id: "imp_1" } }));
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const { client, notes } = recordingClient(`http://127.0.0.1:${port}`);
    const result = await client.get<{ id: string }>("/v1/imports/imp_1", { timeoutMs: 300 });
    expect(result).toEqual({ data: { id: "imp_1" }, attempts: 2, storedBeforeRetry: [] });
    expect(notes).toEqual(["1/8 TimeoutError: The operation was aborted due to timeout"]);
    server.closeAllConnections();
  });

  it("never retries a 400, and gives up after the last attempt", async () => {
    const rejected = await scriptedServer([
      { status: 400, body: { error: { code: "invalid_request", message: "bad", requestId: "r-400", issues: [] } } },
    ]);
    const first = recordingClient(rejected.url);
    const error = await first.client.post("/v1/orders", { orders: [] }).catch((caught) => caught);
    expect(error).toBeInstanceOf(BatchRejected);
    expect(error).toMatchObject({ status: 400, requestId: "r-400" });
    expect(rejected.received).toHaveLength(1);
    expect(first.waits).toEqual([]);
    await new Promise((resolve) => server?.close(resolve));

    const busy = await scriptedServer([], () => refused(503, "unavailable", "1"));
    const second = recordingClient(busy.url, 3);
    const gaveUp = await second.client.post("/v1/orders", { orders: [] }).catch((caught) => caught);
    expect(gaveUp).toBeInstanceOf(IngestFailed);
    expect(String(gaveUp.message)).toMatch(/gave up after 3 attempts \(last: HTTP 503/);
    expect(busy.received).toHaveLength(3);
    expect(second.waits).toEqual([1000, 1000]);
  });

  it("stops at once on a 409 without Retry-After: waiting does not clear it", async () => {
    const { url, received } = await scriptedServer([refused(409, "conflict")]);
    const { client, waits } = recordingClient(url);
    const error = await client.post("/v1/orders", { orders: [] }).catch((caught) => caught);
    expect(error).toBeInstanceOf(IngestFailed);
    expect(String(error.message)).toMatch(/HTTP 409 scripted 409/);
    expect(received).toHaveLength(1);
    expect(waits).toEqual([]);
  });
});

describe("IngestClient and a refused connection", () => {
  /** A port on this machine where nothing listens (a server's, closed). */
  async function closedPort() {
    const { url } = await scriptedServer([]);
    await new Promise((resolve) => server?.close(resolve));
    server = null;
    return url;
  }

  it("fails at once, naming it, when nothing has ever answered there", async () => {
    const url = await closedPort();
    const { client, waits, notes } = recordingClient(url);
    const error = await client.get("/v1/admin/shards").catch((caught) => caught);
    expect(error).toBeInstanceOf(IngestFailed);
    expect(String(error.message)).toBe(`${url}/v1/admin/shards: connection refused`);
    expect(waits).toEqual([]);
    expect(notes).toEqual([]);
  });

  it("retries it once the worker has answered: a restart, not a wrong address", async () => {
    const { url } = await scriptedServer([]);
    const port = Number(new URL(url).port);
    const waits: number[] = [];
    const client = new IngestClient({
      url,
      apiKey: "k",
      retry: { baseDelayMs: 100 },
      random: () => 0.5,
      // The worker comes back while the client waits.
      sleep: async (ms) => {
        waits.push(ms);
        await new Promise<void>((resolve) => server?.listen(port, "127.0.0.1", resolve));
      },
    });
    expect((await client.post("/v1/orders", { orders: [] })).attempts).toBe(1);
    await new Promise((resolve) => server?.close(resolve));
    const again = await client.post("/v1/orders", { orders: [] });
    expect(again).toEqual({ data: { accepted: 2, duplicates: 0 }, attempts: 2, storedBeforeRetry: [] });
    expect(waits).toEqual([50]);
  });
});

describe("IngestClient at an address that is not Patron", () => {
  it("stops at once on an answer that is not Patron's JSON (another site's page), naming the URL", async () => {
    const page = "<!doctype html>\n<html><title>Our shop</title></html>";
    for (const status of [200, 403, 404]) {
      const { url, received } = await scriptedServer([
        { status, headers: { "Content-Type": "text/html; charset=utf-8" }, body: page },
      ]);
      const { client, waits } = recordingClient(url);
      const error = await client.post("/v1/orders", { orders: [] }).catch((caught) => caught);
      expect(error).toBeInstanceOf(IngestFailed);
      expect(error.status).toBe(status);
      expect(String(error.message)).toBe(
        `${url}/v1/orders: HTTP ${status} (text/html) is not an answer of Patron's API: ` +
          `"<!doctype html> <html><title>Our shop</title></html>"; check that --url is the worker's address` +
          (status === 403 ? " (or what stands in front of it refused the request)" : ""),
      );
      expect(received).toHaveLength(1);
      expect(waits).toEqual([]);
      await new Promise((resolve) => server?.close(resolve));
      server = null;
    }
  });

  it("names the worker's URL with a refused key, and keeps the hint", async () => {
    const { url } = await scriptedServer([refused(401, "unauthorized")]);
    const { client } = recordingClient(url);
    const error = await client.get("/v1/admin/shards").catch((caught) => caught);
    expect(String(error.message)).toBe(`${url}/v1/admin/shards: HTTP 401 scripted 401 (check --key)`);
  });

  it("stops at once on a host name that does not resolve, before anything answered", async () => {
    // Node's fetch reports it as a TypeError "fetch failed" whose cause carries the code.
    const lookupFailed = () =>
      Promise.reject(
        Object.assign(new TypeError("fetch failed"), {
          cause: Object.assign(new Error("getaddrinfo ENOTFOUND patorn.example"), { code: "ENOTFOUND" }),
        }),
      );
    const waits: number[] = [];
    const client = new IngestClient({
      url: "https://patorn.example/",
      apiKey: "k",
      fetch: lookupFailed,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    const error = await client.post("/v1/orders", { orders: [] }).catch((caught) => caught);
    expect(String(error.message)).toBe('https://patorn.example/v1/orders: no such host "patorn.example" (check --url)');
    expect(waits).toEqual([]);
  });

  it("says why a request failed, not only 'fetch failed'", async () => {
    const { url } = await scriptedServer([]);
    const { client, notes } = recordingClient(url, 2);
    expect((await client.get("/health")).attempts).toBe(1);
    // The worker now closes connections without answering: a fault once it has answered, retried.
    server?.removeAllListeners("request");
    server?.on("request", (request) => request.socket.destroy());
    const error = await client.get("/health").catch((caught) => caught);
    expect(notes).toEqual(["1/2 TypeError: fetch failed (other side closed)"]);
    expect(String(error.message)).toBe(
      `${url}/health: gave up after 2 attempts (last: TypeError: fetch failed (other side closed))`,
    );
  });

  it("stops at once on a port fetch never calls", async () => {
    const { client, notes } = recordingClient("http://127.0.0.1:6666");
    const error = await client.get("/health").catch((caught) => caught);
    expect(notes).toEqual([]);
    expect(String(error.message)).toBe(
      'http://127.0.0.1:6666/health: fetch refuses to call port 6666 (a "bad port" of the Fetch standard): run the worker on another',
    );
  });
});

describe("patron import against a server that is busy for a while", () => {
  let workDir: string | null = null;
  afterEach(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    workDir = null;
  });

  it("prints that it is retrying, then finishes every batch", async () => {
    workDir = mkdtempSync(path.join(tmpdir(), "patron-retry-"));
    const order = (id: string) => wireOrder(id);
    const file = path.join(workDir, "orders.ndjson");
    writeFileSync(file, `${["a", "b", "c", "d"].map(order).join("\n")}\n`);
    const { url, received } = await scriptedServer([
      refused(409, "conflict", "0"),
      refused(503, "unavailable", "0"),
      accepted(2),
      refused(429, "rate_limited", "0"),
    ]);
    const { stdout, stderr } = await run(
      process.execPath,
      [
        path.join(root, "cli/bin.mjs"),
        "import",
        "orders",
        file,
        "--url",
        url,
        "--key",
        "k",
        "--batch-size",
        "2",
        "--concurrency",
        "1",
        "--state",
        path.join(workDir, "state.json"),
        // The synchronous path: this server answers POST /v1/orders only (no queued imports).
        "--direct",
      ],
      { cwd: workDir },
    );
    expect(stderr).toMatch(/retrying in \d+ ms \(attempt 2 of 8\): HTTP 409/);
    expect(stderr).toMatch(/retrying in \d+ ms \(attempt 3 of 8\): HTTP 503/);
    expect(stderr).toMatch(/retrying in \d+ ms \(attempt 2 of 8\): HTTP 429/);
    expect(stdout).toMatch(/^accepted\s+4$/m);
    const batches = received.map((request) => (JSON.parse(request.body) as { orders: { id: string }[] }).orders);
    expect(batches.map((orders) => orders.map((o) => o.id).join(""))).toEqual(["ab", "ab", "ab", "cd", "cd"]);
  }, 30_000);

  it("counts the orders a refused attempt stored (customer shards) as this run's, not as duplicates of the resend", async () => {
    workDir = mkdtempSync(path.join(tmpdir(), "patron-stored-"));
    const file = path.join(workDir, "orders.ndjson");
    writeFileSync(file, `${["a", "b"].map((id) => wireOrder(id)).join("\n")}\n`);
    const { url } = await scriptedServer([
      {
        status: 409,
        headers: { "Retry-After": "0" },
        body: {
          error: {
            code: "conflict",
            message: "busy; 1 of its orders was stored before this answer",
            issues: [{ path: ["orders", 0], message: "stored by this request before it was refused" }],
          },
        },
      },
      {
        status: 200,
        body: {
          data: {
            accepted: 1,
            duplicates: 1,
            results: [
              { id: "a", status: "duplicate", changed: false },
              { id: "b", status: "created" },
            ],
          },
        },
      },
    ]);
    const { stdout } = await run(
      process.execPath,
      [
        path.join(root, "cli/bin.mjs"),
        "import",
        "orders",
        file,
        ...["--url", url, "--key", "k", "--batch-size", "2", "--state", path.join(workDir, "state.json"), "--direct"],
      ],
      { cwd: workDir },
    );
    expect(stdout).toMatch(/^accepted\s+2$/m);
    expect(stdout).toMatch(/^duplicates\s+0$/m);
  }, 30_000);

  it("counts the orders of a batch a killed run had in flight as accepted when the rerun finds them stored, not as duplicates", async () => {
    workDir = mkdtempSync(path.join(tmpdir(), "patron-killed-"));
    const file = path.join(workDir, "orders.ndjson");
    writeFileSync(file, `${["a", "b", "c", "d"].map((id) => wireOrder(id)).join("\n")}\n`);
    // The first batch is accepted; the second is stored but the run is killed before its answer, so
    // the resend finds both orders already there.
    let killed = false;
    const { url, received } = await scriptedServer([accepted(2)], () =>
      killed
        ? {
            status: 200,
            body: {
              data: {
                accepted: 0,
                duplicates: 2,
                results: ["c", "d"].map((id) => ({ id, status: "duplicate", changed: false })),
              },
            },
          }
        : null,
    );
    const state = path.join(workDir, "state.json");
    const args = [
      path.join(root, "cli/bin.mjs"),
      "import",
      "orders",
      file,
      ...["--url", url, "--key", "k", "--batch-size", "2", "--concurrency", "1", "--state", state, "--direct"],
    ];
    const child = spawn(process.execPath, args, { cwd: workDir, stdio: "ignore" });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on("exit", (_code, signal) => resolve(signal)),
    );
    await expect.poll(() => received.length, { timeout: 20_000 }).toBe(2);
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    expect(JSON.parse(readFileSync(state, "utf8"))).toMatchObject({ confirmedThrough: 1, posted: [1] });

    killed = true;
    const { stdout, stderr } = await run(process.execPath, args, { cwd: workDir });
    expect(`${stdout}${stderr}`).toMatch(
      /resuming: 1 batch already confirmed; 1 batch sent and not answered before it stopped go again/,
    );
    expect(stdout).toMatch(/^accepted\s+2$/m);
    expect(stdout).toMatch(/^duplicates\s+0$/m);
    expect(stdout).toMatch(/^in all\s+4 orders in 2 batches: 4 accepted, 0 duplicates, 0 suppressed/m);
    expect(JSON.parse(readFileSync(state, "utf8"))).toMatchObject({ confirmedThrough: 2, posted: [] });
  }, 30_000);

  it.each([
    ["", []],
    [" without --restart", ["--restart"]],
  ])(
    "says how to resume when a SIGTERM stops it (run again%s), and keeps what was confirmed",
    async (how, flags) => {
      workDir = mkdtempSync(path.join(tmpdir(), "patron-stopped-"));
      const file = path.join(workDir, "orders.ndjson");
      writeFileSync(file, `${["a", "b", "c", "d"].map((id) => wireOrder(id)).join("\n")}\n`);
      // The first batch is accepted; the second is never answered.
      const { url, received } = await scriptedServer([accepted(2)], () => null);
      const state = path.join(workDir, "state.json");
      const child = spawn(
        process.execPath,
        [
          path.join(root, "cli/bin.mjs"),
          "import",
          "orders",
          file,
          ...["--url", url, "--key", "k", "--batch-size", "2", "--concurrency", "1", "--state", state, "--direct"],
          ...flags,
        ],
        { cwd: workDir, stdio: ["ignore", "ignore", "pipe"] },
      );
      let stderr = "";
      child.stderr?.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      await expect.poll(() => received.length, { timeout: 20_000 }).toBe(2);
      child.kill("SIGTERM");
      expect(await exited).toBe(143);
      expect(stderr).toContain(
        `stopped: run the same command again${how} to resume (what is confirmed is kept in ${state};`,
      );
      const kept = JSON.parse(readFileSync(state, "utf8")) as {
        confirmedThrough: number;
        totals: { accepted: number };
      };
      expect(kept).toMatchObject({ confirmedThrough: 1, totals: { accepted: 2 } });
    },
    30_000,
  );
});

describe("what a failed import says to do next", () => {
  const incomplete = new ImportIncomplete({
    importId: "imp_1",
    failed: [{ sequence: 1, error: "database busy" }],
    setAside: [],
  } as unknown as ConstructorParameters<typeof ImportIncomplete>[0]);
  const stalled = new ImportStalled("imp_1", 3, 10);

  it.each([
    ["a queue that failed batches", incomplete],
    ["a queue that stalled", stalled],
  ])("after %s, tells a run started with --restart to leave it out when rerun", (_, error) => {
    const plain = describeFailure(error, "orders.ndjson", "orders", false);
    const restarted = describeFailure(error, "orders.ndjson", "orders", true);
    expect(plain.join("\n")).toMatch(/Rerun the same command/);
    expect(plain.join("\n")).not.toContain("--restart");
    expect(restarted.at(-1)).toBe(
      "This run was started with --restart: leave it out when you rerun, or every batch is sent again.",
    );
  });
});
