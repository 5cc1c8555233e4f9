// `patron import orders` rerun with corrected data: the orders are stored already, so the server
// answers them as duplicates and applies nothing; its summary says how many of them differ from the
// stored orders, and names the first. Through POST /v1/orders (--direct) and through the import queue,
// against a small local HTTP server that keeps orders by id and answers as the worker does (the worker's
// own answers: tests/worker/orders-changed.test.ts).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wireOrder } from "../fixtures/wire-order.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");

type Order = { id: string };

/** The worker's answer to a batch: orders stored by id; a stored one is a duplicate, changed when it differs. */
function ingest(stored: Map<string, string>, orders: Order[]) {
  const results = orders.map((order) => {
    const known = stored.get(order.id);
    if (known === undefined) {
      stored.set(order.id, JSON.stringify(order));
      return { id: order.id, customerId: "c_1", status: "created" };
    }
    return { id: order.id, customerId: null, status: "duplicate", changed: known !== JSON.stringify(order) };
  });
  const changed = results.filter((result) => result.changed === true);
  return {
    accepted: results.filter((result) => result.status === "created").length,
    duplicates: results.filter((result) => result.status === "duplicate").length,
    changed: changed.length,
    changedIds: changed.slice(0, 10).map((result) => result.id),
    suppressed: 0,
    results,
    ignoredIdentifiers: [],
  };
}

function workerLike(): Server {
  const stored = new Map<string, string>();
  const imports = new Map<string, Record<string, unknown>[]>();
  const reply = (response: ServerResponse, status: number, data: unknown) => {
    response.writeHead(status, { "Content-Type": "application/json" });
    response.end(JSON.stringify({ data }));
  };
  const view = (id: string) => {
    const batches = imports.get(id) ?? [];
    const sum = (field: string) => batches.reduce((total, batch) => total + Number(batch[field]), 0);
    return {
      id,
      status: batches.length > 0 ? "done" : "open",
      expectedBatches: null,
      batches: { received: batches.length, queued: 0, done: batches.length, failed: 0 },
      orders: { received: sum("orders"), processed: sum("orders") },
      totals: { accepted: sum("accepted"), duplicates: sum("duplicates"), changed: sum("changed"), suppressed: 0 },
    };
  };
  return createServer((request: IncomingMessage, response: ServerResponse) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      const url = new URL(request.url ?? "/", "http://local");
      const batchesOf = url.pathname.match(/^\/v1\/imports\/(imp_\d+)\/batches$/)?.[1];
      const importOf = url.pathname.match(/^\/v1\/imports\/(imp_\d+)$/)?.[1];
      if (request.method === "POST" && url.pathname === "/v1/orders") {
        const { changedIds: _ids, ...answer } = ingest(stored, (JSON.parse(body) as { orders: Order[] }).orders);
        return reply(response, 200, answer);
      }
      if (request.method === "POST" && url.pathname === "/v1/imports") {
        const id = `imp_${imports.size + 1}`;
        imports.set(id, []);
        return reply(response, 201, view(id));
      }
      if (request.method === "POST" && batchesOf) {
        const { sequence, orders } = JSON.parse(body) as { sequence: number; orders: Order[] };
        const { results: _results, ignoredIdentifiers: _ignored, ...counts } = ingest(stored, orders);
        const batch = {
          sequence,
          status: "done",
          orders: orders.length,
          ...counts,
          ignoredIdentifiers: 0,
          error: null,
        };
        imports.get(batchesOf)?.push(batch);
        return reply(response, 202, batch);
      }
      if (request.method === "GET" && importOf) return reply(response, 200, view(importOf));
      if (request.method === "GET" && batchesOf) {
        const wanted = url.searchParams.get("status");
        const batches = (imports.get(batchesOf) ?? []).filter((batch) => !wanted || batch.status === wanted);
        return reply(response, 200, { batches, next: null });
      }
      response.writeHead(404).end();
    });
  });
}

let server: Server;
let url: string;
let workDir: string;
beforeAll(async () => {
  server = workerLike();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  workDir = mkdtempSync(path.join(tmpdir(), "patron-changed-"));
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(workDir, { recursive: true, force: true });
});

async function patron(...args: string[]) {
  const { stdout, stderr } = await run(
    process.execPath,
    [path.join(root, "cli/bin.mjs"), "import", "orders", ...args, "--url", url, "--key", "k"],
    { cwd: workDir },
  );
  return { stdout, stderr };
}

/** Ten orders; the corrected file changes the total of seven of them (not the first three). */
function files(prefix: string): { original: string; corrected: string } {
  const ids = Array.from({ length: 10 }, (_, i) => `${prefix}-${i}`);
  const original = path.join(workDir, `${prefix}.ndjson`);
  const corrected = path.join(workDir, `${prefix}-fixed.ndjson`);
  writeFileSync(original, `${ids.map((id) => wireOrder(id)).join("\n")}\n`);
  const fixed = ids.map((id, i) =>
    wireOrder(id, `acct-${id}`, {
      lines: [{ productId: "sku-1", categoryId: "heels", quantity: 1, unitPrice: i < 3 ? 10 : 11, listPrice: 12 }],
    }),
  );
  writeFileSync(corrected, `${fixed.join("\n")}\n`);
  return { original, corrected };
}

describe("patron import orders rerun with corrected orders", () => {
  for (const [mode, flags] of [
    ["--direct", ["--direct"]],
    ["the import queue", ["--poll-interval", "20"]],
  ] as const) {
    it(`says how many duplicates differ from the stored orders and names the first, through ${mode}`, async () => {
      const prefix = mode === "--direct" ? "direct" : "queued";
      const { original, corrected } = files(prefix);
      const first = await patron(original, "--batch-size", "4", ...flags);
      expect(first.stdout).toMatch(/^accepted\s+10$/m);
      expect(first.stdout).not.toMatch(/^changed/m);

      const again = await patron(corrected, "--batch-size", "4", ...flags);
      expect(again.stdout).toMatch(/^accepted\s+0$/m);
      expect(again.stdout).toMatch(/^duplicates\s+10$/m);
      const changed = again.stdout.split("\n").find((line) => line.startsWith("changed "));
      expect(changed).toMatch(/^changed\s+7 of them differ from the stored orders and were not applied: /);
      const named =
        changed
          ?.split(": ")[1]
          ?.replace(/ and up to \d+ more$/, "")
          .split(", ") ?? [];
      expect(named).toHaveLength(5);
      for (const id of named) expect(Number(id.split("-")[1])).toBeGreaterThanOrEqual(3);
      expect(changed).toMatch(/ and up to 2 more$/);
    }, 30_000);
  }
});
