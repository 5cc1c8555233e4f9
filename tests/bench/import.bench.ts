// `patron import` throughput, through the queue-backed import and through POST /v1/orders (--direct),
// for the same demo-generator orders, each into a fresh local D1 under its own `wrangler dev`, then a
// replay of the queued run (--restart: every order a duplicate). Orders/s is the CLI's wall time from
// start to every batch processed, as a user sees it.
// Usage: npm run bench -- import [orders=20000] [batch=500]
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { generateCustomers, generateProducts } from "../../db/seed/generate.ts";
import type { WireOrder } from "../../db/seed/wire.ts";
import { type DevWorker, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");

/** The first `count` orders of the demo generator's customers. */
function demoOrders(count: number): WireOrder[] {
  const orders: WireOrder[] = [];
  for (const customer of generateCustomers({
    seed: 7,
    customers: count,
    today: "2026-06-01",
    includePersonas: false,
  })) {
    orders.push(...customer.orders);
    if (orders.length >= count) break;
  }
  return orders.slice(0, count);
}

async function withWorker<T>(work: (worker: DevWorker) => Promise<T>): Promise<T> {
  const worker = await startDevWorker({ timeoutMs: 120_000 });
  try {
    const headers = { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}`, "Content-Type": "application/json" };
    const products = generateProducts({ seed: 7, customers: 1, today: "2026-06-01", includePersonas: false });
    for (let i = 0; i < products.length; i += 1000)
      await fetch(`${worker.url}/v1/products`, {
        method: "POST",
        headers,
        body: JSON.stringify({ products: products.slice(i, i + 1000) }),
      });
    return await work(worker);
  } finally {
    await worker.stop();
  }
}

async function importRun(file: string, workDir: string, args: string[]) {
  const start = performance.now();
  const { stdout } = await run(process.execPath, [path.join(root, "cli/bin.mjs"), "import", "orders", file, ...args], {
    cwd: workDir,
    env: { ...process.env, PATRON_API_KEY: testSecrets.PATRON_API_KEY },
    maxBuffer: 16 * 1024 * 1024,
  });
  const seconds = (performance.now() - start) / 1000;
  const figure = (label: string) => Number(stdout.match(new RegExp(`^${label}\\s+(\\d+)`, "m"))?.[1]);
  return { seconds, accepted: figure("accepted"), duplicates: figure("duplicates"), batches: figure("batches") };
}

export default async function importBench(args: string[]) {
  const count = Number(args[0] ?? 20_000);
  const batchSize = String(Number(args[1] ?? 500));
  const workDir = mkdtempSync(path.join(tmpdir(), "patron-import-bench-"));
  try {
    const orders = demoOrders(count);
    const lines = orders.reduce((sum, order) => sum + order.lines.length, 0);
    const file = path.join(workDir, "orders.ndjson");
    writeFileSync(file, `${orders.map((order) => JSON.stringify(order)).join("\n")}\n`);
    console.log(`orders ${orders.length}, lines ${lines}, --batch-size ${batchSize}, --concurrency 2 (the default)`);

    const direct = await withWorker((worker) =>
      importRun(file, workDir, ["--url", worker.url, "--batch-size", batchSize, "--direct", "--restart"]),
    );
    const [queued, replay] = await withWorker(async (worker) => {
      const common = ["--url", worker.url, "--batch-size", batchSize, "--poll-interval", "250", "--restart"];
      return [await importRun(file, workDir, common), await importRun(file, workDir, common)] as const;
    });
    const rate = (r: { seconds: number }) => (orders.length / r.seconds).toFixed(0);
    console.log(
      `direct (POST /v1/orders): ${rate(direct)} orders/s, ${direct.batches} batches, ${direct.accepted} accepted in ${direct.seconds.toFixed(1)} s`,
    );
    console.log(
      `queued (POST /v1/imports): ${rate(queued)} orders/s, ${queued.batches} batches, ${queued.accepted} accepted in ${queued.seconds.toFixed(1)} s`,
    );
    console.log(
      `queued replay: ${rate(replay)} orders/s, ${replay.duplicates} duplicates in ${replay.seconds.toFixed(1)} s`,
    );
    console.log(`ratio queued / direct: ${(direct.seconds / queued.seconds).toFixed(2)}`);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}
