// `patron import orders` of a CSV in which a row repeats another exactly (an export glitch, a file
// concatenated twice, a join that doubled rows, or a till that writes a line per unit): the run counts
// such rows and names the first before sending, keeps them as lines by default, and sends each once
// with --drop-repeated-rows. Against a small local HTTP server that records the orders posted to
// POST /v1/orders (--direct); the grouping is the same through the queue.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { wireOrder } from "../fixtures/wire-order.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");

interface PostedOrder {
  id: string;
  lines: { productId: string; quantity: number; unitPrice: number }[];
}

/** Every order posted, in the order the batches came. */
let posted: PostedOrder[] = [];
let batches = 0;
let server: Server;
let url: string;
let workDir: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      if (request.method !== "POST" || request.url !== "/v1/orders") return response.writeHead(404).end();
      const { orders } = JSON.parse(body) as { orders: PostedOrder[] };
      posted.push(...orders);
      batches++;
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(
        JSON.stringify({
          data: {
            accepted: orders.length,
            duplicates: 0,
            changed: 0,
            suppressed: 0,
            results: orders.map((order) => ({ id: order.id, customerId: "c_1", status: "created" })),
            ignoredIdentifiers: [],
          },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  workDir = mkdtempSync(path.join(tmpdir(), "patron-repeated-"));
  writeFileSync(
    path.join(workDir, "pos-mapping.json"),
    JSON.stringify({
      kind: "orders",
      orderId: { column: "order_no", prefix: "pos-" },
      channel: { value: "store" },
      placedAt: { column: "sold_at", transform: "datetime" },
      identifiers: { email: { column: "email", transform: "lower" } },
      line: { productId: "sku", categoryId: "category", quantity: "qty", unitPrice: "price" },
    }),
  );
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(workDir, { recursive: true, force: true });
});
beforeEach(() => {
  posted = [];
  batches = 0;
});

async function patron(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      [path.join(root, "cli/bin.mjs"), "import", "orders", ...args, "--url", url, "--key", "k"],
      { cwd: workDir },
    );
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
  }
}

/**
 * Three receipts. Line 5 repeats line 2 exactly, after another receipt, and line 7 repeats line 6;
 * line 3 sells the same shoes at the same price as line 2 but is another line of the till (its
 * `till_line` differs, a column the mapping does not read), so it is no repeat.
 */
const csv = [
  "order_no,till_line,sold_at,email,sku,category,qty,price",
  "100,1,2026-03-14 10:22:00,jane@example.com,sku-1,heels,1,89",
  "100,2,2026-03-14 10:22:00,jane@example.com,sku-1,heels,1,89",
  "101,1,2026-03-14 11:05:00,omar@example.com,sku-2,flats,1,45",
  "100,1,2026-03-14 10:22:00,jane@example.com,sku-1,heels,1,89",
  "102,1,2026-03-15 09:40:00,li@example.com,sku-3,boots,2,120",
  "102,1,2026-03-15 09:40:00,li@example.com,sku-3,boots,2,120",
  "",
].join("\n");

const linesOf = (id: string) => posted.find((order) => order.id === id)?.lines.length;

describe("patron import orders of a CSV with a row repeated exactly", () => {
  it("warns before sending, naming the first repeat, and keeps the repeats as lines, in whatever batch their order falls", async () => {
    const file = path.join(workDir, "pos-lines.csv");
    writeFileSync(file, csv);
    const result = await patron(file, "--mapping", "pos-mapping.json", "--direct", "--batch-size", "1");
    expect(result.code).toBe(0);
    expect(result.stdout.split("\n").slice(0, 2)).toEqual([
      "read 6 rows into 3 orders to send",
      'warning: 2 rows repeat an earlier row of their order exactly, every column alike, in 2 orders (first: line 5, order "pos-100", the same as line 2); they are sent as lines of their own, as a till that writes a line per unit means them, but a file exported or joined twice doubles such lines and its orders\' totals: check the export, and if the repeats are copies, rerun with --drop-repeated-rows to send each row once',
    ]);
    expect(batches).toBe(3);
    expect([linesOf("pos-100"), linesOf("pos-101"), linesOf("pos-102")]).toEqual([3, 1, 2]);
  }, 60_000);

  it("sends each repeated row once with --drop-repeated-rows, as a run of its own, gzipped or not", async () => {
    const file = path.join(workDir, "twice.csv");
    writeFileSync(file, csv);
    writeFileSync(`${file}.gz`, gzipSync(csv));
    for (const input of [file, `${file}.gz`]) {
      const kept = await patron(input, "--mapping", "pos-mapping.json", "--direct");
      expect(kept.code).toBe(0);
      posted = [];
      const result = await patron(input, "--mapping", "pos-mapping.json", "--direct", "--drop-repeated-rows");
      expect(result.code).toBe(0);
      // Not a resumption of the run without the flag (its state file is another): every order goes again.
      expect(result.stdout).not.toMatch(/resuming/);
      expect(posted).toHaveLength(3);
      expect(result.stdout.split("\n").slice(0, 2)).toEqual([
        "read 6 rows into 3 orders to send",
        'dropped 2 rows that repeat an earlier row of their order exactly, every column alike, in 2 orders (first: line 5, order "pos-100", the same as line 2) (--drop-repeated-rows)',
      ]);
      // The till's second line of the same shoes stays: it differs in till_line.
      expect([linesOf("pos-100"), linesOf("pos-101"), linesOf("pos-102")]).toEqual([2, 1, 1]);
    }
  }, 60_000);

  it("says nothing of repeats when there are none, names a single one, and refuses --drop-repeated-rows for NDJSON", async () => {
    const file = path.join(workDir, "distinct.csv");
    writeFileSync(file, csv.split("\n").slice(0, 4).join("\n"));
    const result = await patron(file, "--mapping", "pos-mapping.json", "--direct");
    expect(result.code).toBe(0);
    expect(result.stdout).not.toMatch(/an earlier row/);
    writeFileSync(file, csv.split("\n").slice(0, 5).join("\n"));
    const once = await patron(file, "--mapping", "pos-mapping.json", "--direct");
    expect(once.stdout.split("\n")[1]).toBe(
      'warning: 1 row repeats an earlier row of its order exactly, every column alike (line 5, order "pos-100", the same as line 2); it is sent as a line of its own, as a till that writes a line per unit means them, but a file exported or joined twice doubles such lines and its orders\' totals: check the export, and if the repeat is a copy, rerun with --drop-repeated-rows to send each row once',
    );
    const ndjson = path.join(workDir, "orders.ndjson");
    writeFileSync(ndjson, `${wireOrder("nd-1")}\n`);
    posted = [];
    const refused = await patron(ndjson, "--drop-repeated-rows");
    expect(refused.code).toBe(1);
    expect(refused.stderr.split("\n")[0]).toBe(
      `--drop-repeated-rows is for CSV files, and ${ndjson} is NDJSON: its lines are wire-format records, imported as they are. Drop --drop-repeated-rows, or give it the CSV export (docs/import.md).`,
    );
    expect(posted).toEqual([]);
  }, 60_000);
});
