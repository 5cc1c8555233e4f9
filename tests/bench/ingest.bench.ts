// Ingestion throughput into local D1 through the real worker (`wrangler dev`): orders/s and lines/s
// for fresh orders (identity resolution + summaries in one batch), for a replay of the same batches
// (idempotent: reads only, nothing written), for other customers' orders sent in time order across all
// customers, oldest first and newest first (then a customer's orders are spread over many batches, and
// newest first every order but their first is older than their last purchase day: each is added with a
// read of its stored day), and GET /health as the baseline measured in the same run.
// Usage: npm run bench -- ingest [customers=2000] [batch=500]
import { generateCustomers, generateProducts } from "../../db/seed/generate.ts";
import { startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";

async function timed<T>(work: () => Promise<T>): Promise<{ result: T; seconds: number }> {
  const start = performance.now();
  const result = await work();
  return { result, seconds: (performance.now() - start) / 1000 };
}

export default async function ingestBench(args: string[]) {
  const customers = Number(args[0] ?? 2000);
  const batchSize = Number(args[1] ?? 500);
  const worker = await startDevWorker();
  const headers = { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}`, "Content-Type": "application/json" };
  try {
    const seed = { seed: 7, customers, today: "2026-06-01", includePersonas: false };
    const orders = [...generateCustomers(seed)].flatMap((customer) => customer.orders);
    const lines = orders.reduce((sum, order) => sum + order.lines.length, 0);
    const products = generateProducts(seed);
    for (let i = 0; i < products.length; i += 1000) {
      await fetch(`${worker.url}/v1/products`, {
        method: "POST",
        headers,
        body: JSON.stringify({ products: products.slice(i, i + 1000) }),
      });
    }
    const batchesOf = (list: readonly unknown[]) => {
      const bodies: string[] = [];
      for (let i = 0; i < list.length; i += batchSize)
        bodies.push(JSON.stringify({ orders: list.slice(i, i + batchSize) }));
      return bodies;
    };
    const batches = batchesOf(orders);
    // Other customers (other seeds: no identifier in common), all their orders in time order.
    const byTime = (seedNumber: number, direction: 1 | -1) =>
      [...generateCustomers({ ...seed, seed: seedNumber })]
        .flatMap((customer) => customer.orders)
        .sort((a, b) => direction * (Date.parse(a.placedAt) - Date.parse(b.placedAt)));
    const oldestFirst = byTime(8, 1);
    const newestFirst = byTime(9, -1);

    const post = async (bodies: readonly string[] = batches) => {
      let accepted = 0;
      for (const body of bodies) {
        const response = await fetch(`${worker.url}/v1/orders`, { method: "POST", headers, body });
        if (!response.ok) throw new Error(`POST /v1/orders answered ${response.status}: ${await response.text()}`);
        accepted += ((await response.json()) as { data: { accepted: number } }).data.accepted;
      }
      return accepted;
    };
    const fresh = await timed(() => post());
    const replay = await timed(() => post());
    const early = await timed(() => post(batchesOf(oldestFirst)));
    const late = await timed(() => post(batchesOf(newestFirst)));
    const healthRequests = 500;
    const health = await timed(async () => {
      for (let i = 0; i < healthRequests; i++) await (await fetch(`${worker.url}/health`)).arrayBuffer();
    });

    const healthRate = healthRequests / health.seconds;
    const batchRate = batches.length / fresh.seconds;
    console.log(`customers ${customers}, orders ${orders.length}, lines ${lines}, batches of ${batchSize}`);
    console.log(
      `fresh ingest:  ${(orders.length / fresh.seconds).toFixed(0)} orders/s, ${(lines / fresh.seconds).toFixed(0)} lines/s (${fresh.result} accepted in ${fresh.seconds.toFixed(2)} s)`,
    );
    console.log(
      `replay (no-op): ${(orders.length / replay.seconds).toFixed(0)} orders/s (${replay.result} accepted: must be 0)`,
    );
    const rate = (count: number, seconds: number) => count / seconds;
    for (const [label, list, run] of [
      ["by time, oldest first:", oldestFirst, early],
      ["by time, newest first:", newestFirst, late],
    ] as const)
      console.log(
        `${label} ${rate(list.length, run.seconds).toFixed(0)} orders/s (${run.result} of ${list.length} accepted in ${run.seconds.toFixed(2)} s)`,
      );
    console.log(
      `newest first / oldest first: ${(rate(newestFirst.length, late.seconds) / rate(oldestFirst.length, early.seconds)).toFixed(2)}x`,
    );
    console.log(`baseline GET /health, sequential: ${healthRate.toFixed(0)} req/s`);
    console.log(
      `ratio: one ${batchSize}-order batch costs ${(healthRate / batchRate).toFixed(1)} /health requests; replay is ${(fresh.seconds / replay.seconds).toFixed(1)}x faster than fresh ingest`,
    );
    if (replay.result !== 0) throw new Error("replay accepted orders: ingestion is not idempotent");
    if (early.result !== oldestFirst.length || late.result !== newestFirst.length)
      throw new Error("orders sent in time order were not all accepted");
  } finally {
    await worker.stop();
  }
}
