// A known shopper's read through one customer shard (a SQLite-backed Durable Object, the product's
// CustomerShard) next to the same read from D1, with the same data in both, measured in one run under
// wrangler's dev server (workerd, local D1, local Durable Objects). For each size it loads that many
// generated customers (the generator and rows of `npm run bench -- scale`) into a fresh D1 and into
// one shard, then alternates, in rounds, four requests for many distinct shoppers:
// - D1 bare: one row by primary key from D1 (the floor a request path is compared with),
// - D1 shopper: the recommendation path's shopper read (`loadShopper`, one D1 batch),
// - shard bare: one row by primary key through one call to the shard,
// - shard shopper: the same `loadShopper`, run inside the shard through one call.
// Before the reads, the same new orders are ingested through `ingestOrders` into each (existing
// customers, a replay, new customers), for orders/s and rows written per order from each store's
// metadata. Prints the figures, the ratios to D1 bare, and bytes per customer; writes them as JSON.
// Usage: npm run bench -- shard [--sizes 10000,100000] [--requests 400] [--connections 8] [--out file.json]
// With --route [--shards 16]: the real GET /v1/recommendations with customer data in that many shards,
// against a bare single-row D1 read, as the scale bench compares them (tests/bench/shard/route.ts).
// --keep DIR keeps each loaded base in DIR and reuses it on the next run (1,000,000 customers take
// most of an hour to load); --load-only stops after loading, to measure later on a quieter machine;
// --shelf-only measures the shelf and stops (no orders posted, no nightly run: a kept base stays as loaded).
// --fill-backfills does a backfill a kept base's new migration left pending (the nightly job's work) before
// measuring; without it the shelf measures the base as it is. --drop-caches (Linux, root) empties the page cache before each size's shelf, so the first visits read
// the shards' pages from disk; the repeat visits that follow measure the path with them in memory.
// --reshard-to M (with --route --keep DIR --shards N): grows (or shrinks) a copy of each kept base from N to
// M shards as `npx patron shards reshard` does, timing the drain (shrinking), the walk and the finish, and
// measures the shelf before and after;
// with --rebalance, then a rebalance pass (`npx patron shards rebalance`), timed, and the shelf again.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { unstable_startWorker } from "wrangler";
import { generateProducts } from "../../db/seed/generate.ts";
import { hashIdentifiers } from "../../worker/identity/identity.keys.ts";
import type { OrderInput } from "../../worker/orders/orders.schemas.ts";
import { freePort, testSecrets } from "../fixtures/wrangler-dev.ts";
import { accountHolderFrom, accountOf } from "./base-mix.ts";
import { fmt, type LoadResult, load, medianRound } from "./measure.ts";
import {
  benchOrders,
  kindsLine,
  type Options,
  parseOptions,
  printComparison,
  seedCustomers,
  writeResults,
} from "./scale.bench.ts";
import { reshardSize, routeSize } from "./shard/route.ts";

const root = path.resolve(import.meta.dirname, "../..");
const config = path.join(root, "tests/bench/shard/wrangler.toml");
const shoppers = 2000;
const run = promisify(execFile);
// Offline: wrangler would otherwise try to fetch the `cf` object of requests from Cloudflare.
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";

/**
 * The part of a D1 binding the seeding uses (prepare, bind, batch), sent to the bench worker, which
 * runs each batch on D1 or in the shard and answers D1's results.
 */
function remoteD1(url: string, into: "d1" | "shard"): D1Database {
  const statement = (sql: string, params: unknown[] = []) => ({
    sql,
    params,
    bind: (...values: unknown[]) => statement(sql, values),
  });
  return {
    prepare: (sql: string) => statement(sql),
    batch: async (statements: { sql: string; params: unknown[] }[]) => {
      const response = await fetch(`${url}/load?into=${into}`, {
        method: "POST",
        body: JSON.stringify(statements.map(({ sql, params }) => ({ sql, params }))),
      });
      if (!response.ok) throw new Error(`loading into ${into}: ${response.status} ${await response.text()}`);
      return response.json();
    },
  } as unknown as D1Database;
}

async function measure(url: string, size: number, options: Options) {
  const count = Math.min(shoppers, size);
  // Shoppers sign in: the customers holding an account.
  const picked = Array.from({ length: count }, (_, k) => accountHolderFrom(Math.floor((k * size) / count)));
  const keys = await Promise.all(
    picked.map(
      async (index) =>
        (await hashIdentifiers({ account: accountOf(index) }, testSecrets.IDENTITY_HASH_SECRET)).identities[0]!.key,
    ),
  );
  const ids = picked.map((index) => `c_missing_${index}`);
  const kinds = {
    "D1 bare": (i: number) => fetch(`${url}/d1/bare?id=${ids[i % count]}`),
    "D1 shopper": (i: number) => fetch(`${url}/d1/shopper?key=${encodeURIComponent(keys[i % count]!)}`),
    "shard bare": (i: number) => fetch(`${url}/shard/bare?id=${ids[i % count]}`),
    "shard shopper": (i: number) => fetch(`${url}/shard/shopper?key=${encodeURIComponent(keys[i % count]!)}`),
  };
  // Both reads answer real rows: a shopper read that found nobody would flatter the figures.
  const probe = (await (await kinds["shard shopper"](0)).json()) as { summary: unknown };
  const probeD1 = (await (await kinds["D1 shopper"](0)).json()) as { summary: unknown };
  if (!probe.summary || !probeD1.summary) throw new Error("the shopper read found no summary: seeding failed");
  for (let i = 0; i < 40; i++) for (const send of Object.values(kinds)) await (await send(i)).arrayBuffer();
  const rounds = new Map<string, LoadResult[]>(Object.keys(kinds).map((name) => [name, []]));
  for (let round = 0; round < 3; round++)
    for (const [name, send] of Object.entries(kinds))
      rounds
        .get(name)
        ?.push(await load(options.requests, options.connections, (i) => send(i + round * options.requests)));
  return Object.fromEntries([...rounds].map(([name, results]) => [name, medianRound(results)]));
}

/** Orders per ingestion batch (as the scale bench). */
const ingestBatch = 100;

/**
 * `ingestOrders` into D1 and into the shard, the same orders to each: new orders of existing
 * customers, the same again (a replay: nothing is written), orders of new customers. Orders/s is the
 * wall time of sequential batches; rows written per order come from D1's and the shard's metadata.
 */
async function measureIngestion(url: string, size: number) {
  const products = generateProducts({ seed: 11 });
  const { existing, fresh } = benchOrders(size, products, "shard-bench");
  const ingest = async (into: "d1" | "shard", orders: OrderInput[]) => {
    let rowsWritten = 0;
    let accepted = 0;
    const started = performance.now();
    for (let i = 0; i < orders.length; i += ingestBatch) {
      const response = await fetch(`${url}/ingest?into=${into}`, {
        method: "POST",
        body: JSON.stringify({ orders: orders.slice(i, i + ingestBatch) }),
      });
      if (!response.ok) throw new Error(`ingesting into ${into}: ${response.status} ${await response.text()}`);
      const result = (await response.json()) as { rowsWritten: number; accepted: number };
      rowsWritten += result.rowsWritten;
      accepted += result.accepted;
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      orders: orders.length,
      accepted,
      ordersPerSecond: orders.length / seconds,
      rowsWrittenPerOrder: rowsWritten / orders.length,
    };
  };
  type Figure = Awaited<ReturnType<typeof ingest>>;
  const figures: Record<string, { d1: Figure; shard: Figure }> = {};
  for (const [name, orders] of [
    ["existing customers", existing],
    ["replay", existing],
    ["new customers", fresh],
  ] as const)
    figures[name] = { d1: await ingest("d1", orders), shard: await ingest("shard", orders) };
  return figures;
}

async function runSize(size: number, options: Options) {
  const persistDir = mkdtempSync(path.join(tmpdir(), "patron-shard-"));
  try {
    await run(path.join(root, "node_modules/.bin/wrangler"), [
      "d1",
      "migrations",
      "apply",
      "DB",
      "--local",
      "--config",
      config,
      "--persist-to",
      persistDir,
    ]);
    const port = await freePort();
    const worker = await unstable_startWorker({
      config,
      dev: {
        server: { hostname: "127.0.0.1", port },
        persist: persistDir,
        inspector: false,
        watch: false,
        logLevel: "warn",
      },
    });
    await worker.ready;
    const url = `http://127.0.0.1:${port}`;
    try {
      console.log(`loading ${size} customers into D1`);
      const inD1 = await seedCustomers(remoteD1(url, "d1"), size);
      console.log(`loading ${size} customers into one shard`);
      const inShard = await seedCustomers(remoteD1(url, "shard"), size);
      const ingestion = await measureIngestion(url, inShard.customers);
      const figures = await measure(url, size, options);
      const floor = figures["D1 bare"]!.requestsPerSecond;
      return {
        customers: inShard.customers,
        orders: inShard.orders,
        lines: inShard.lines,
        storage: {
          d1BytesPerCustomer: inD1.databaseBytes / inD1.customers,
          shardBytesPerCustomer: inShard.databaseBytes / inShard.customers,
        },
        ingestion,
        requests: figures,
        ratios: Object.fromEntries(
          Object.entries(figures).map(([name, figure]) => [name, figure.requestsPerSecond / floor]),
        ),
      };
    } finally {
      await worker.dispose();
    }
  } finally {
    rmSync(persistDir, { recursive: true, force: true });
  }
}

/** `--route`: the real recommendations route on sharded customer data against the bare D1 read. */
async function routeBench(args: string[]) {
  const keepIndex = args.indexOf("--keep");
  const options = {
    ...parseOptions(args, "shard-route"),
    keep: keepIndex >= 0 ? args[keepIndex + 1] : undefined,
    loadOnly: args.includes("--load-only"),
    shelfOnly: args.includes("--shelf-only"),
    fillBackfills: args.includes("--fill-backfills"),
    rebalance: args.includes("--rebalance"),
  };
  if (options.loadOnly && !options.keep)
    throw new Error("--load-only needs --keep DIR, to measure what it loaded later");
  const shardsIndex = args.indexOf("--shards");
  const shards = shardsIndex >= 0 ? Number(args[shardsIndex + 1]) : 16;
  if (!Number.isInteger(shards) || shards <= 0) throw new Error(`--shards takes a positive count, got ${shards}`);
  const reshardIndex = args.indexOf("--reshard-to");
  if (reshardIndex >= 0) return reshardBench(Number(args[reshardIndex + 1]), shards, options);
  const results = [];
  for (const size of options.sizes) {
    if (!Number.isInteger(size) || size <= 0) throw new Error(`--sizes takes positive customer counts, got ${size}`);
    const result = await routeSize(size, shards, options);
    if (!result) continue;
    results.push(result);
    const r = result.recommendations;
    console.log(
      `${result.customers} customers in ${shards} shards (${result.kinds ? kindsLine(result.kinds) : "each with one account"}; ${result.orders} orders)`,
    );
    printComparison(r, "  ");
  }
  if (results.length > 0) writeResults(options.out, { ...options, shards }, results);
}

/** `--route --reshard-to M`: a kept base grown or shrunk from --shards to M shards, timed, the shelf measured before and after. */
async function reshardBench(to: number, from: number, options: Parameters<typeof routeSize>[2]) {
  if (!Number.isInteger(to) || to < 1 || to === from)
    throw new Error(`--reshard-to takes a positive count other than --shards (${from}), got ${to}`);
  const results = [];
  for (const size of options.sizes) {
    const result = await reshardSize(size, from, to, options);
    results.push(result);
    const { drain, walk, finish } = result;
    console.log(`${result.customers} customers (${result.orders} orders), ${from} → ${to} shards`);
    if (drain)
      console.log(
        `  drain under ${from}: ${drain.customersMoved} customers moved out of shards ${to} to ${from - 1} in ${drain.seconds.toFixed(1)} s (${drain.customersPerSecond.toFixed(0)}/s, ${drain.moves} moves, ${drain.passes} ${drain.passes === 1 ? "pass" : "passes"}, ${drain.steps} steps)`,
      );
    console.log(
      `  walk under ${from}: ${walk.rows} rows in ${walk.seconds.toFixed(1)} s (${walk.rowsPerSecond.toFixed(0)} rows/s, ${walk.steps} steps), ${walk.entriesWritten} entries written at their new homes`,
    );
    console.log(
      `  finish under ${to}: ${finish.seconds.toFixed(1)} s (${finish.steps} steps), ${finish.entriesRemoved} ${drain ? "entries dropped with the shards emptied" : "old entries removed"}`,
    );
    console.log(
      `  shoppers whose shelf is forwarded once more after it: ${(result.shoppersForwarded * 100).toFixed(1)}%`,
    );
    console.log(`  shelf before, ${from} shards:`);
    printComparison(result.before, "    ");
    console.log(`  shelf after the switch, ${to} shards:`);
    printComparison(result.recommendations, "    ");
    const { rebalance } = result;
    if (rebalance) {
      console.log(
        `  rebalance: ${rebalance.customersVisited} customers visited in ${rebalance.seconds.toFixed(1)} s (${rebalance.customersPerSecond.toFixed(0)}/s, ${rebalance.steps} steps), ${rebalance.customersMoved} moved in ${rebalance.moves} moves, ${rebalance.busy} busy, ${rebalance.tooLarge} too large`,
      );
      console.log(`  shelf after the rebalance, ${to} shards:`);
      printComparison(rebalance.recommendations, "    ");
    }
  }
  writeResults(options.out, { ...options, from, to }, results);
}

export default async function shardBench(args: string[]) {
  if (args.includes("--route")) return routeBench(args);
  const options = parseOptions(args, "shard");
  const results = [];
  for (const size of options.sizes) {
    if (!Number.isInteger(size) || size <= 0) throw new Error(`--sizes takes positive customer counts, got ${size}`);
    const result = await runSize(size, options);
    results.push(result);
    console.log(
      `${result.customers} customers (${result.orders} orders): D1 ${(result.storage.d1BytesPerCustomer / 1024).toFixed(1)} KiB per customer, shard ${(result.storage.shardBytesPerCustomer / 1024).toFixed(1)} KiB`,
    );
    for (const [name, { d1, shard }] of Object.entries(result.ingestion))
      console.log(
        `  ingestOrders, ${name}, batches of ${ingestBatch}: D1 ${d1.ordersPerSecond.toFixed(0)} orders/s, ${d1.rowsWrittenPerOrder.toFixed(1)} rows per order; shard ${shard.ordersPerSecond.toFixed(0)} orders/s, ${shard.rowsWrittenPerOrder.toFixed(1)} rows per order`,
      );
    for (const [name, figure] of Object.entries(result.requests))
      console.log(`  ${name.padEnd(14)} ${fmt(figure)}  ratio to D1 bare ${result.ratios[name]!.toFixed(2)}`);
  }
  mkdirSync(path.dirname(options.out), { recursive: true });
  writeFileSync(options.out, `${JSON.stringify({ measuredAt: new Date().toISOString(), results }, null, 2)}\n`);
  console.log(`wrote ${options.out}`);
}
