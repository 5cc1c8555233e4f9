// `patron import` end to end: the real worker under `wrangler dev` with its own local D1 and its local
// import queue, a slice of the Complete Journey sample through the preset, then a rerun that resumes
// (sends nothing) and a forced restart that the server answers with duplicates only; a bad NDJSON
// line stops the run with its line number; a run whose confirmations were lost resumes from what the
// server reports done; `--direct` takes the synchronous POST /v1/orders path; an erased customer's
// orders are counted as suppressed; a refused first batch leaves an import that the fixed file's run
// takes up.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
}, 120_000);

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

function figure(output: string, label: string): number {
  const match = output.match(new RegExp(`^${label}\\s+(\\d+)`, "m"));
  if (!match) throw new Error(`no "${label}" in:\n${output}`);
  return Number(match[1]);
}

/** Orders the fixture should produce: baskets with at least one line of positive quantity. */
function expectedOrders(): { orders: number; zeroLines: number } {
  const rows = parse(readFileSync(transactions), { columns: true }) as Record<string, string>[];
  const baskets = new Set(rows.filter((row) => Number(row.quantity) > 0).map((row) => row.basket_id));
  return { orders: baskets.size, zeroLines: rows.filter((row) => Number(row.quantity) === 0).length };
}

describe("patron import against wrangler dev", () => {
  it("imports the Complete Journey catalog and orders, then resumes and stays idempotent", async () => {
    const expected = expectedOrders();
    const productRun = await patron("import", "products", products, "--preset", "completejourney", "--url", worker.url);
    expect(productRun.stderr).toBe("");
    expect(productRun.code).toBe(0);
    expect(figure(productRun.stdout, "products upserted")).toBeGreaterThan(600);

    const state = path.join(workDir, "orders-state.json");
    const common = ["--preset", "completejourney", "--url", worker.url, "--batch-size", "100", "--state", state];
    const first = await patron("import", "orders", transactions, ...common);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`skipped ${expected.zeroLines} lines (${expected.zeroLines} × quantity 0)`);
    expect(figure(first.stdout, "orders sent")).toBe(expected.orders);
    expect(figure(first.stdout, "accepted")).toBe(expected.orders);
    expect(figure(first.stdout, "duplicates")).toBe(0);
    const batches = Math.ceil(expected.orders / 100);
    expect(first.stdout).toContain(`batches            ${batches} sent, 0 skipped`);

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

    const wrongKey = await patron("import", "orders", file, "--url", worker.url, "--key", "nope");
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/HTTP 401/);
  }, 60_000);

  it("finds the local worker on $PORT and the API key in .dev.vars without --url or --key, as the other commands do", async () => {
    const folder = path.join(workDir, "local");
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, ".dev.vars"), `PATRON_API_KEY=${testSecrets.PATRON_API_KEY}\n`);
    const file = path.join(folder, "one.ndjson");
    writeFileSync(file, `${wireOrder("local-defaults-1", "acct-local-defaults")}\n`);
    const { PATRON_API_KEY: _, PATRON_URL: __, ...env } = process.env;
    const local = (extra: Record<string, string>) =>
      run(process.execPath, [path.join(root, "cli/bin.mjs"), "import", "orders", file, "--direct"], {
        cwd: folder,
        env: { ...env, ...extra },
      });
    const { stdout } = await local({ PORT: new URL(worker.url).port });
    expect(figure(stdout, "accepted")).toBe(1);
    // The local key is never sent to a worker named elsewhere: without a key for it, the command stops.
    const named = await local({ PATRON_URL: worker.url }).catch((error: { stderr: string }) => error);
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
    expect(resumed.stdout).toContain("resuming: 1 batches already confirmed");
    expect(counts(resumed.stdout)).toEqual([4, 0, 2, 2, 0]);
    expect(resumed.stdout).toContain("batches            2 sent, 1 skipped");
    expect(JSON.parse(readFileSync(state, "utf8")).totals).toEqual({
      records: 6,
      accepted: 0,
      duplicates: 4,
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
    expect(rejected.stderr).not.toContain("the batches posted are queued");

    // The fixed file is another file to the state (size, modification time): the import is found anyway.
    writeFileSync(file, `${order("web")}\n${order("web").replace('"fax-1"', '"fax-2"')}\n`);
    const fixed = await patron("import", "orders", file, ...options);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toContain(`taking up import ${importId}`);
    expect(fixed.stdout).toContain(`import             ${importId} (queued)`);
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

    // A run stopped before it recorded any confirmation: the server still knows what it processed.
    writeFileSync(state, JSON.stringify({ ...saved, confirmedThrough: 0, confirmedAbove: [] }));
    const resumed = await patron("import", "orders", file, ...common);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain("batches            0 sent, 3 skipped");
    expect(resumed.stdout).toContain(`import             ${importId} (queued)`);

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
});
