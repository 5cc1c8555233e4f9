// `patron import` end to end: the real worker under `wrangler dev` with its own local D1 and its local
// import queue, a slice of the Complete Journey sample through the preset, then a rerun that resumes
// (sends nothing) and a forced restart that the server answers with duplicates only; a bad NDJSON
// line stops the run with its line number; a run whose confirmations were lost resumes from what the
// server reports done; `--direct` takes the synchronous POST /v1/orders path; an erased customer's
// orders are counted as suppressed; a refused first batch leaves an import that the fixed file's run
// takes up; a line that is not JSON ends with what was written before it; an import stopped part-way
// (Ctrl-C, a rejected batch) stays open, knowing its batch count, and the resumed run finishes it and
// counts the earlier run's batches; a missing file or a CSV preset on NDJSON is one line, not a stack.
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { parse } from "csv-parse/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wireOrder } from "../fixtures/wire-order.ts";
import { type DevWorker, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const fixtures = path.join(root, "tests/fixtures/completejourney");
const transactions = path.join(fixtures, "transactions_sample.csv");
const products = path.join(fixtures, "products.csv");

let worker: DevWorker;
let workDir: string;

beforeAll(async () => {
  worker = await startDevWorker();
  workDir = mkdtempSync(path.join(tmpdir(), "patron-import-"));
}, 300_000);

afterAll(async () => {
  await worker?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function patron(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(root, "cli/bin.mjs"), ...args], {
      cwd: workDir,
      env: { ...process.env, PATRON_API_KEY: testSecrets.PATRON_API_KEY },
    });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
  }
}

interface ImportView {
  status: string;
  expectedBatches: number | null;
  batches: { received: number; queued: number; done: number; failed: number };
  totals: { accepted: number; duplicates: number };
  finishedAt: string | null;
}

async function importView(importId: string): Promise<ImportView> {
  const response = await fetch(`${worker.url}/v1/imports/${importId}`, {
    headers: { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}` },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: ImportView }).data;
}

/** The first value `read` gives that is not undefined, read every 25 ms for up to `ms`. */
async function until<T>(read: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function figure(output: string, label: string): number {
  const match = output.match(new RegExp(`^${label}\\s+(\\d+)`, "m"));
  if (!match) throw new Error(`no "${label}" in:\n${output}`);
  return Number(match[1]);
}

/** Orders the fixture should produce: baskets with at least one line of positive quantity. */
function expectedOrders(): { orders: number; zeroLines: number; fuelLines: number } {
  const rows = parse(readFileSync(transactions), { columns: true }) as Record<string, string>[];
  const types = new Map(
    (parse(readFileSync(products), { columns: true }) as Record<string, string>[]).map((row) => [
      row.product_id,
      row.product_type ?? "",
    ]),
  );
  const baskets = new Set(rows.filter((row) => Number(row.quantity) > 0).map((row) => row.basket_id));
  const fuelLines = rows.filter(
    (row) => Number(row.quantity) > 0 && types.get(row.product_id ?? "")?.startsWith("GASOLINE"),
  ).length;
  return { orders: baskets.size, zeroLines: rows.filter((row) => Number(row.quantity) === 0).length, fuelLines };
}

describe("patron import against wrangler dev", () => {
  it("imports the Complete Journey catalog and orders, then resumes and stays idempotent", async () => {
    const expected = expectedOrders();
    const productRun = await patron("import", "products", products, "--preset", "completejourney", "--url", worker.url);
    // Nothing but, on a slow machine, the progress lines a run past 30 s prints where stderr is not a terminal.
    expect(productRun.stderr.split("\n").filter((line) => line && !/^products \d+ of \d+ /.test(line))).toEqual([]);
    expect(productRun.code).toBe(0);
    expect(figure(productRun.stdout, "products upserted")).toBeGreaterThan(600);

    const state = path.join(workDir, "orders-state.json");
    const common = ["--preset", "completejourney", "--url", worker.url, "--batch-size", "100", "--state", state];
    const first = await patron("import", "orders", transactions, ...common);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`skipped ${expected.zeroLines} lines (${expected.zeroLines} × quantity 0)`);
    expect(expected.fuelLines).toBeGreaterThan(0);
    expect(first.stdout).toContain(
      `counted ${expected.fuelLines} lines sold by measure as one unit each, at the line's prices (countAsOneUnit)`,
    );
    expect(figure(first.stdout, "orders sent")).toBe(expected.orders);
    expect(figure(first.stdout, "accepted")).toBe(expected.orders);
    expect(figure(first.stdout, "duplicates")).toBe(0);
    const batches = Math.ceil(expected.orders / 100);
    expect(first.stdout).toContain(`batches            ${batches} sent, 0 skipped`);

    // The import is listed, newest first, done, with its batches and orders.
    const importId = first.stdout.match(/import\s+(imp_[0-9a-f]{20})/)?.[1];
    expect(importId).toBeDefined();
    const listed = await patron("import", "list", "--url", worker.url, "--limit", "1");
    expect(listed.code).toBe(0);
    const [header, row] = listed.stdout.split("\n");
    expect(header).toMatch(/^import\s+created \(UTC\)\s+status\s+batches\s+orders processed\s+accepted\s+source/);
    expect(row).toMatch(
      new RegExp(`^${importId}\\s+\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}\\s+done\\s+${batches} of ${batches}\\s+`),
    );
    expect(row).toContain(`${expected.orders.toLocaleString("en-US")} of ${expected.orders.toLocaleString("en-US")}`);
    const json = await patron("import", "list", "--url", worker.url, "--limit", "1", "--json");
    expect(JSON.parse(json.stdout).imports[0]).toMatchObject({ id: importId, status: "done" });

    const lookup = await fetch(`${worker.url}/v1/customers/lookup?kind=loyalty&value=CJ-0002`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    expect(lookup.status).toBe(200);

    const resumed = await patron("import", "orders", transactions, ...common);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(`resuming: ${batches} batches already confirmed`);
    expect(resumed.stdout).toContain(`batches            0 sent, ${batches} skipped`);
    expect(figure(resumed.stdout, "accepted")).toBe(0);

    const restarted = await patron("import", "orders", transactions, ...common, "--restart");
    expect(restarted.code).toBe(0);
    expect(figure(restarted.stdout, "accepted")).toBe(0);
    expect(figure(restarted.stdout, "duplicates")).toBe(expected.orders);
  }, 180_000);

  it("stops at a rejected batch and names the input line", async () => {
    const good = (id: string) => wireOrder(id);
    const bad = good("bad-1").replace('"quantity":1', '"quantity":-2');
    const file = path.join(workDir, "orders.ndjson");
    writeFileSync(file, `${[good("ok-1"), good("ok-2"), "", good("ok-3"), bad, good("ok-4")].join("\n")}\n`);
    const result = await patron(
      "import",
      "orders",
      file,
      "--url",
      worker.url,
      "--batch-size",
      "2",
      "--concurrency",
      "1",
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/batch 2 rejected/);
    expect(result.stderr).toContain(`${file}:5 bad-1 lines.0.quantity:`);
    // The import was told it gets 3 batches: with 1 of them in, it stays open once the queue is done.
    const importId = result.stderr.match(/queued in import (imp_[0-9a-f]+)/)?.[1];
    expect(importId, result.stderr).toBeDefined();
    const stopped = await until(async () => {
      const view = await importView(importId as string);
      return view.batches.queued === 0 ? view : undefined;
    });
    expect(stopped).toMatchObject({ status: "open", expectedBatches: 3, batches: { received: 1, done: 1 } });

    const wrongKey = await patron("import", "orders", file, "--url", worker.url, "--key", "nope");
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/HTTP 401/);
  }, 60_000);

  it("reports a CSV line in another currency than the shop's like any other invalid line", async () => {
    const file = path.join(workDir, "currencies.csv");
    writeFileSync(
      file,
      "order_no,sold_at,card,sku,category,qty,price,currency\n" +
        "cur-1,2026-01-05T10:00:00Z,CARD-1001,sku-1,heels,1,80,USD\n" +
        "cur-2,2026-01-06T10:00:00Z,CARD-1001,sku-2,heels,1,12000,JPY\n",
    );
    const mapping = path.join(workDir, "currencies-mapping.json");
    writeFileSync(
      mapping,
      JSON.stringify({
        kind: "orders",
        orderId: "order_no",
        channel: { value: "store" },
        placedAt: "sold_at",
        currency: "currency",
        identifiers: { loyalty: "card" },
        line: {
          productId: "sku",
          categoryId: "category",
          quantity: { column: "qty", transform: "number" },
          unitPrice: { column: "price", transform: "number" },
        },
      }),
    );
    const args = ["--mapping", mapping, "--url", worker.url, "--batch-size", "1", "--concurrency", "1", "--direct"];
    const result = await patron("import", "orders", file, ...args);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("batch 2 rejected");
    expect(result.stderr).toContain(
      `${file}:3 cur-2 currency: this shop's figures are in USD (RETAILER_CURRENCY): convert the order's amounts to USD first`,
    );
    expect(result.stderr).toContain("Before it: 1 batches confirmed (1 accepted, 0 duplicates, 0 suppressed)");
  }, 60_000);

  it("reports a products CSV line priced in another currency than the shop's, naming its line", async () => {
    const file = path.join(workDir, "priced.csv");
    writeFileSync(file, "sku,name,cat,price,cur\ncur-sku-1,Pumps,heels,80,USD\ncur-sku-2,Boots,boots,9000,JPY\n");
    const mapping = path.join(workDir, "priced-mapping.json");
    writeFileSync(
      mapping,
      JSON.stringify({
        kind: "products",
        product: { id: "sku", title: "name", categoryId: "cat", listPrice: "price", currency: "cur" },
      }),
    );
    const args = ["--mapping", mapping, "--url", worker.url, "--batch-size", "1", "--concurrency", "1"];
    const result = await patron("import", "products", file, ...args);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("batch 2 rejected");
    expect(result.stderr).toContain(
      `${file}:3 cur-sku-2 currency: this shop's figures are in USD (RETAILER_CURRENCY): convert the product's prices to USD first`,
    );
  }, 60_000);

  it("reads a products CSV through before sending it: every row the mapping cannot read is named, and nothing is sent", async () => {
    const file = path.join(workDir, "unreadable-products.csv");
    writeFileSync(
      file,
      "sku,name,cat,price\nok-sku-1,Pumps,heels,80\nbad-sku-2,,heels,80\nok-sku-3,Boots,boots,90\nbad-sku-4,Sandals,sandals,\n",
    );
    const mapping = path.join(workDir, "unreadable-products-mapping.json");
    writeFileSync(
      mapping,
      JSON.stringify({
        kind: "products",
        product: { id: "sku", title: "name", categoryId: "cat", listPrice: "price" },
      }),
    );
    const result = await patron(
      "import",
      "products",
      file,
      "--mapping",
      mapping,
      "--url",
      worker.url,
      "--batch-size",
      "1",
    );
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual([
      `${file}:3: product.title: the cell is empty (give the mapping a "default" if that is right)`,
      `${file}:5: product.listPrice: the cell is empty (give the mapping a "default" if that is right)`,
      "2 rows the mapping cannot read; nothing was sent",
    ]);
    expect(result.stdout).not.toMatch(/upserted|confirmed/);
    // The catalog has none of the file's products, the readable ones included.
    const asked = await fetch(`${worker.url}/v1/admin/rules/targets?type=product&q=ok-sku`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    expect(asked.status).toBe(200);
    const { targets } = ((await asked.json()) as { data: { targets: { id: string }[] } }).data;
    expect(targets.map((target) => target.id).filter((id) => id.startsWith("ok-sku"))).toEqual([]);
  }, 60_000);

  it("finds the local worker on $PORT and the API key in .dev.vars without --url or --key, as the other commands do", async () => {
    const folder = path.join(workDir, "local");
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, ".dev.vars"), `PATRON_API_KEY=${testSecrets.PATRON_API_KEY}\n`);
    const file = path.join(folder, "one.ndjson");
    writeFileSync(file, `${wireOrder("local-defaults-1", "acct-local-defaults")}\n`);
    const { PATRON_API_KEY: _, PATRON_URL: __, ...env } = process.env;
    const second = path.join(folder, "two.ndjson");
    writeFileSync(second, `${wireOrder("local-defaults-2", "acct-local-defaults")}\n`);
    const local = (extra: Record<string, string>, sent = file) =>
      run(process.execPath, [path.join(root, "cli/bin.mjs"), "import", "orders", sent, "--direct"], {
        cwd: folder,
        env: { ...env, ...extra },
      });
    const { stdout } = await local({ PORT: new URL(worker.url).port });
    expect(figure(stdout, "accepted")).toBe(1);
    // A worker named on this machine (npm start on another port) is the local one: its key is read.
    expect(figure((await local({ PATRON_URL: worker.url }, second)).stdout, "accepted")).toBe(1);
    // The local key is never sent to a worker on another machine: without a key for it, the command stops.
    const named = await local({ PATRON_URL: "https://patron.example.invalid" }).catch(
      (error: { stderr: string }) => error,
    );
    expect((named as { stderr: string }).stderr).toContain("--key is required (or PATRON_API_KEY)");
  }, 60_000);

  it("counts an erased customer's orders as suppressed, direct and queued, and resumes an older state file", async () => {
    const order = (id: string, account: string, day: number) =>
      wireOrder(id, account, { placedAt: new Date(Date.UTC(2026, 2, day)).toISOString() });
    const orders = [
      order("er-keep-1", "acct-er-keep-1", 1),
      order("er-keep-2", "acct-er-keep-2", 2),
      order("er-keep-3", "acct-er-keep-1", 3),
      order("er-keep-4", "acct-er-keep-2", 4),
      order("er-gone-1", "acct-er-gone", 5),
      order("er-gone-2", "acct-er-gone", 6),
    ];
    const file = path.join(workDir, "erasure.ndjson");
    writeFileSync(file, `${orders.join("\n")}\n`);
    const state = path.join(workDir, "erasure-state.json");
    const direct = ["--url", worker.url, "--batch-size", "2", "--concurrency", "1", "--state", state, "--direct"];
    const first = await patron("import", "orders", file, ...direct);
    expect(first.code, first.stderr).toBe(0);
    expect([figure(first.stdout, "accepted"), figure(first.stdout, "suppressed")]).toEqual([6, 0]);

    const admin = { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` };
    const lookup = await fetch(`${worker.url}/v1/customers/lookup?kind=account&value=acct-er-gone`, { headers: admin });
    expect(lookup.status).toBe(200);
    const { customerId } = ((await lookup.json()) as { data: { customerId: string } }).data;
    const erased = await fetch(`${worker.url}/v1/customers/${customerId}`, { method: "DELETE", headers: admin });
    expect(erased.status).toBe(200);

    const counts = (output: string) =>
      ["orders sent", "accepted", "duplicates", "suppressed", "ignored identifiers"].map((label) =>
        figure(output, label),
      );
    const again = await patron("import", "orders", file, ...direct, "--restart");
    expect(again.code, again.stderr).toBe(0);
    expect(counts(again.stdout)).toEqual([6, 0, 4, 2, 0]);

    // A state file as the previous version wrote it (no `suppressed` total), one batch confirmed.
    const saved = JSON.parse(readFileSync(state, "utf8")) as Record<string, unknown>;
    const oldTotals = { records: 2, accepted: 0, duplicates: 2, upserted: 0, ignoredIdentifiers: 0 };
    writeFileSync(state, JSON.stringify({ ...saved, confirmedThrough: 1, confirmedAbove: [], totals: oldTotals }));
    const resumed = await patron("import", "orders", file, ...direct);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain("resuming: 1 batch already confirmed");
    expect(counts(resumed.stdout)).toEqual([4, 0, 2, 2, 0]);
    expect(resumed.stdout).toContain("batches            2 sent, 1 skipped");
    expect(JSON.parse(readFileSync(state, "utf8")).totals).toEqual({
      records: 6,
      accepted: 0,
      duplicates: 4,
      changed: 0,
      suppressed: 2,
      upserted: 0,
      ignoredIdentifiers: 0,
    });

    const queued = await patron(
      "import",
      "orders",
      file,
      "--url",
      worker.url,
      "--batch-size",
      "2",
      "--state",
      path.join(workDir, "erasure-queued-state.json"),
      "--poll-interval",
      "200",
    );
    expect(queued.code, queued.stderr).toBe(0);
    expect(counts(queued.stdout)).toEqual([6, 0, 4, 2, 0]);
    const importId = queued.stdout.match(/^import\s+(imp_[0-9a-f]+) \(queued\)$/m)?.[1];
    const view = await fetch(`${worker.url}/v1/imports/${importId}`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}` },
    });
    expect(((await view.json()) as { data: { totals: unknown } }).data.totals).toMatchObject({
      accepted: 0,
      duplicates: 4,
      suppressed: 2,
    });
  }, 120_000);

  it("says so when no batch was posted, and the rerun of the fixed file takes up the import left empty", async () => {
    const order = (channel: string) => wireOrder("fax-1", "acct-fax-1", { channel, placedAt: "2026-03-10T10:00:00Z" });
    const file = path.join(workDir, "bad.ndjson");
    writeFileSync(file, `${order("fax")}\n`);
    const options = ["--url", worker.url, "--poll-interval", "200"];

    const direct = await patron("import", "orders", file, ...options, "--direct");
    expect(direct.code).toBe(1);
    expect(direct.stderr).toContain(`${file}:1 fax-1 channel:`);
    expect(direct.stderr).toContain("No batch was posted; nothing was written.");
    expect(direct.stderr).not.toContain("Before it");

    const rejected = await patron("import", "orders", file, ...options);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toContain("batch 1 rejected");
    const importId = rejected.stderr.match(/No batch was posted; import (imp_[0-9a-f]+) has received nothing/)?.[1];
    expect(importId, rejected.stderr).toBeDefined();
    expect(rejected.stderr).not.toContain("the batches posted, before it");

    // The fixed file is another file to the state (size, modification time): the import is found anyway.
    writeFileSync(file, `${order("web")}\n${order("web").replace('"fax-1"', '"fax-2"')}\n`);
    const fixed = await patron("import", "orders", file, ...options);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toContain(`taking up import ${importId}`);
    expect(fixed.stdout).toContain(`import             ${importId} (queued)\nimport status      done\n`);
    expect(figure(fixed.stdout, "accepted")).toBe(2);
    const view = await fetch(`${worker.url}/v1/imports/${importId}`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}` },
    });
    expect(((await view.json()) as { data: unknown }).data).toMatchObject({
      status: "done",
      batches: { received: 1, done: 1 },
    });
  }, 120_000);

  it("resumes a queued import from the batches the server reports done, and imports directly with --direct", async () => {
    const orders = Array.from({ length: 30 }, (_, i) =>
      wireOrder(`q-${i}`, `acct-q-${i % 7}`, {
        channel: i % 2 ? "web" : "store",
        storeId: i % 2 ? null : "store-1",
        placedAt: new Date(Date.UTC(2026, 1, 1 + i)).toISOString(),
        lines: [{ productId: `sku-${i % 4}`, categoryId: "heels", quantity: 1, unitPrice: 10 + i, listPrice: 40 }],
      }),
    );
    const file = path.join(workDir, "queued.ndjson");
    writeFileSync(file, `${orders.join("\n")}\n`);
    const state = path.join(workDir, "queued-state.json");
    const common = ["--url", worker.url, "--batch-size", "10", "--state", state, "--poll-interval", "200"];
    const first = await patron("import", "orders", file, ...common);
    expect(first.code, first.stderr).toBe(0);
    expect(figure(first.stdout, "accepted")).toBe(30);
    expect(first.stdout).toContain("batches            3 sent, 0 skipped");
    const importId = first.stdout.match(/^import\s+(imp_[0-9a-f]+) \(queued\)$/m)?.[1];
    expect(importId).toBeDefined();
    const saved = JSON.parse(readFileSync(state, "utf8")) as Record<string, unknown>;
    expect(saved.importId).toBe(importId);

    // A run stopped before it recorded any confirmation (so no totals either): the server still knows
    // what it processed.
    const none = { records: 0, accepted: 0, duplicates: 0, suppressed: 0, upserted: 0, ignoredIdentifiers: 0 };
    writeFileSync(state, JSON.stringify({ ...saved, confirmedThrough: 0, confirmedAbove: [], totals: none }));
    const resumed = await patron("import", "orders", file, ...common);
    expect(resumed.code, resumed.stderr).toBe(0);
    // The resume line counts what the worker reports done, not the state file's 0; the summary adds it up.
    expect(resumed.stdout).toContain(`resuming: 3 batches already confirmed (3 found done in import ${importId})`);
    expect(resumed.stdout).not.toContain("resuming: 0 batches");
    expect(resumed.stdout).toContain("batches            0 sent, 3 skipped");
    expect(resumed.stdout).toMatch(/^in all\s+30 orders in 3 batches: 30 accepted, 0 duplicates, 0 suppressed/m);
    expect(resumed.stdout).toContain(`import             ${importId} (queued)\nimport status      done\n`);

    const progress = await fetch(`${worker.url}/v1/imports/${importId}`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}` },
    });
    const view = ((await progress.json()) as { data: { status: string; totals: { accepted: number } } }).data;
    expect(view).toMatchObject({ status: "done", totals: { accepted: 30 } });

    const direct = await patron("import", "orders", file, "--url", worker.url, "--batch-size", "10", "--direct");
    expect(direct.code, direct.stderr).toBe(0);
    expect(figure(direct.stdout, "duplicates")).toBe(30);
    expect(direct.stdout).not.toContain("(queued)");
  }, 120_000);
  it("ends a line that is not JSON with what was written before it; through the queue nothing is sent", async () => {
    const good = Array.from({ length: 6 }, (_, i) => wireOrder(`nj-${i}`));
    const file = path.join(workDir, "truncated.ndjson");
    writeFileSync(file, `${[...good, wireOrder("nj-bad").slice(0, 60), wireOrder("nj-7")].join("\n")}\n`);
    const options = ["--url", worker.url, "--batch-size", "2", "--concurrency", "1", "--poll-interval", "200"];

    const state = path.join(workDir, "truncated-direct.json");
    // Named as typed (relative to the working directory), never by its absolute path.
    const direct = await patron("import", "orders", "truncated.ndjson", ...options, "--state", state, "--direct");
    expect(direct.code).toBe(1);
    expect(direct.stderr).toMatch(/^truncated\.ndjson:7: not valid JSON/m);
    expect(direct.stderr).toContain("Before it: 3 batches confirmed (6 accepted, 0 duplicates, 0 suppressed).");
    expect(direct.stderr).toContain("Fix that line and rerun");
    expect(JSON.parse(readFileSync(state, "utf8"))).toMatchObject({ confirmedThrough: 3, totals: { accepted: 6 } });

    // Through the queue the file is read through (to count its batches) before the import is created.
    const queuedState = path.join(workDir, "truncated-queued.json");
    const queued = await patron("import", "orders", "truncated.ndjson", ...options, "--state", queuedState);
    expect(queued.code).toBe(1);
    expect(queued.stderr).toMatch(/^truncated\.ndjson:7: not valid JSON/m);
    expect(queued.stderr).toContain("Nothing was sent");
    expect(existsSync(queuedState)).toBe(false);
  }, 60_000);

  it("creates an import with its batch count: one stopped by Ctrl-C stays open, and the resumed run ends it done", async () => {
    const count = 200;
    const file = path.join(workDir, "interrupted.ndjson");
    const orders = Array.from({ length: count }, (_, i) => wireOrder(`int-${i}`, `acct-int-${i}`));
    writeFileSync(file, `${orders.join("\n")}\n`);
    const state = path.join(workDir, "interrupted-state.json");
    const args = ["import", "orders", file, "--url", worker.url, "--batch-size", "1", "--concurrency", "1"];
    const options = [...args, "--state", state, "--poll-interval", "200"];

    const child = spawn(process.execPath, [path.join(root, "cli/bin.mjs"), ...options], {
      cwd: workDir,
      env: { ...process.env, PATRON_API_KEY: testSecrets.PATRON_API_KEY },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = once(child, "exit");
    const importId = await until(() => {
      if (!existsSync(state)) return undefined;
      return (JSON.parse(readFileSync(state, "utf8")) as { importId?: string }).importId;
    });
    await until(async () => ((await importView(importId)).batches.received >= 5 ? true : undefined));
    child.kill("SIGINT");
    // It says how to take up where it stopped, and exits as an interrupted command does.
    expect((await exited)[0]).toBe(130);
    expect(stderr).toContain(`stopped: run the same command again to resume (what is confirmed is kept in ${state};`);
    const stopped = await until(async () => {
      const view = await importView(importId);
      return view.batches.queued === 0 ? view : undefined;
    });
    expect(stopped.batches.received).toBeLessThan(count);
    expect(stopped).toMatchObject({ status: "open", expectedBatches: count, finishedAt: null });

    const resumed = await patron(...options);
    expect(resumed.code, resumed.stderr).toBe(0);
    const before = stopped.batches.done;
    expect(resumed.stdout).toContain(
      `resuming: ${before} ${before === 1 ? "batch" : "batches"} already confirmed (${before} found done in import`,
    );
    expect(figure(resumed.stdout, "accepted")).toBe(count - before);
    expect(resumed.stdout).toContain(`batches            ${count - before} sent, ${before} skipped`);
    expect(resumed.stdout).toMatch(
      new RegExp(`^in all\\s+${count} orders in ${count} batches: ${count} accepted`, "m"),
    );
    expect(await importView(importId)).toMatchObject({
      status: "done",
      expectedBatches: count,
      batches: { received: count, done: count },
      totals: { accepted: count },
    });
  }, 120_000);

  it("says in one line that a file is missing, and refuses a CSV preset or mapping for an NDJSON file", async () => {
    const stack = /\n\s+at /;
    const missing = await patron("import", "orders", "nonexistent.ndjson", "--url", worker.url);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("No such file: nonexistent.ndjson\n");
    const mapping = await patron("import", "orders", transactions, "--mapping", "nope.json", "--url", worker.url);
    expect(mapping.code).toBe(1);
    expect(mapping.stderr).toBe("No such file: nope.json (--mapping)\n");
    writeFileSync(path.join(workDir, "broken.json"), '{"kind": "orders", ');
    const broken = await patron("import", "orders", transactions, "--mapping", "broken.json", "--url", worker.url);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/^broken\.json \(--mapping\) is not JSON: .+\n$/);
    expect(broken.stderr).not.toMatch(stack);

    const file = path.join(workDir, "preset.ndjson");
    writeFileSync(file, `${wireOrder("preset-1")}\n`);
    for (const kind of ["orders", "products"]) {
      const preset = await patron("import", kind, file, "--preset", "completejourney", "--url", worker.url);
      expect(preset.code).toBe(1);
      expect(preset.stderr).toContain(`--preset completejourney is for CSV files, and ${file} is NDJSON`);
      expect(preset.stderr).not.toMatch(stack);
      expect(preset.stderr).not.toContain("ENOENT");
    }
    writeFileSync(path.join(workDir, "mapping.json"), JSON.stringify({ kind: "orders" }));
    const mapped = await patron("import", "orders", file, "--mapping", "mapping.json", "--url", worker.url);
    expect(mapped.code).toBe(1);
    expect(mapped.stderr).toContain(`--mapping is for CSV files, and ${file} is NDJSON`);

    // A CSV: the preset's catalog missing beside it, then a malformed row, each one line.
    const folder = path.join(workDir, "malformed");
    mkdirSync(folder, { recursive: true });
    const csv = path.join(folder, "transactions_sample.csv");
    writeFileSync(csv, `${readFileSync(transactions, "utf8").split("\n").slice(0, 3).join("\n")}\n1,2,3\n`);
    const noCatalog = await patron("import", "orders", csv, "--preset", "completejourney", "--url", worker.url);
    expect(noCatalog.code).toBe(1);
    expect(noCatalog.stderr).toBe(
      `No such file: ${path.join(folder, "products.csv")}: the "products" lookup is read from products.csv (or products.csv.gz) in ${folder} (beside the file imported with --preset, beside the mapping file with --mapping); put it there, or name another file in the mapping's "lookups".\n`,
    );
    writeFileSync(path.join(folder, "products.csv"), readFileSync(products));
    const malformed = await patron("import", "orders", csv, "--preset", "completejourney", "--url", worker.url);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toMatch(/^\S+transactions_sample\.csv: Invalid Record Length: .* on line 4\n$/);
    // The last field's closing quote missing on line 3, the file's last: csv-parse finds it at the end.
    const [header, first, third] = readFileSync(transactions, "utf8").split("\n");
    writeFileSync(csv, `${header}\n${first}\n${third?.slice(0, -1)}\n`);
    const unclosed = await patron("import", "orders", csv, "--preset", "completejourney", "--url", worker.url);
    expect(unclosed.code).toBe(1);
    expect(unclosed.stderr).toBe(
      `${csv}: a quote opened on line 3 or after is never closed (the file ends inside a quoted field)\n`,
    );
  }, 60_000);

  it("stops on an empty export, and names the columns a mapping misses: those differing in case, a delimiter not a comma", async () => {
    const folder = path.join(workDir, "exports");
    mkdirSync(folder, { recursive: true });
    writeFileSync(
      path.join(folder, "mapping.json"),
      JSON.stringify({
        kind: "orders",
        orderId: "order_id",
        channel: { value: "web" },
        placedAt: { column: "order_date", transform: "datetime" },
        identifiers: { account: "account_id" },
        line: { productId: "sku", categoryId: "category", quantity: "qty", unitPrice: "price" },
      }),
    );
    const header = "order_id,order_date,account_id,sku,category,qty,price";
    const run = (name: string, content: string) => {
      writeFileSync(path.join(folder, name), content);
      return patron(
        "import",
        "orders",
        path.join(folder, name),
        "--mapping",
        path.join(folder, "mapping.json"),
        "--url",
        worker.url,
      );
    };
    for (const [name, content] of [
      ["empty.csv", ""],
      ["header-only.csv", `${header}\n`],
    ] as const) {
      const empty = await run(name, content);
      expect(empty.code, empty.stdout).toBe(1);
      expect(empty.stderr).toContain(`${name}: no orders to import`);
      expect(empty.stderr).toContain("nothing was sent");
      expect(empty.stdout).not.toContain("import status");
    }
    const shouting = await run("shouting.csv", `${header.toUpperCase()}\nw1,2026-03-01,u1,s1,tea,1,4\n`);
    expect(shouting.code).toBe(1);
    expect(shouting.stderr).toContain("its columns are ORDER_ID, ORDER_DATE,");
    expect(shouting.stderr).toContain("case included (the file has ORDER_ID for order_id, ORDER_DATE for order_date");
    const semicolons = await run("semicolons.csv", `${header.replaceAll(",", ";")}\nw1;2026-03-01;u1;s1;tea;1;4\n`);
    expect(semicolons.code).toBe(1);
    expect(semicolons.stderr).toContain('the header looks delimited by ";", and the file is read as comma-separated');
    // With decimal commas the rows split before the header is checked: the parser's stop says it too.
    const decimals = await run("decimals.csv", `${header.replaceAll(",", ";")}\nw1;2026-03-01;u1;s1;tea;1;3,50\n`);
    expect(decimals.code).toBe(1);
    expect(decimals.stderr).toContain("Invalid Record Length");
    expect(decimals.stderr).toContain('the header looks delimited by ";", and the file is read as comma-separated');
    // Every row the mapping cannot read, in one run, and nothing sent.
    const rows = [
      "w1,2026-02-30,u1,s1,tea,1,4",
      "w2,2026-03-01,u1,s1,tea,1,4",
      "w3,05/03/2026,u2,s1,tea,1,4",
      "w4,,u3,s1,tea,1,4",
    ];
    const bad = await run("bad-dates.csv", `${header}\n${rows.join("\n")}\n`);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split("\n")).toEqual([
      `${path.join(folder, "bad-dates.csv")}:2: placedAt: "2026-02-30" is not a date-time (ISO 8601 is read: 2026-03-05, 2026-03-05 10:00:00, 2026-03-05T10:00:00-0500)`,
      `${path.join(folder, "bad-dates.csv")}:4: placedAt: "05/03/2026" is not a date-time (ISO 8601 is read: 2026-03-05, 2026-03-05 10:00:00, 2026-03-05T10:00:00-0500)`,
      `${path.join(folder, "bad-dates.csv")}:5: placedAt: the cell is empty (give the mapping a "default" if that is right)`,
      "3 rows the mapping cannot read; nothing was sent",
    ]);
  }, 60_000);
});
