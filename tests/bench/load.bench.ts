// Mixed traffic against the real worker on `wrangler dev` (loopback, RATE_LIMITS=off, a seeded and
// fitted database): recommendations for many known shoppers with real tokens, anonymous
// recommendations, event beacons and order ingestion, all at once, with GET /health in the mix. Each
// route has its own autocannon instance and connections and all of them run concurrently, so the
// /health baseline sees the same machine, worker and load as every route; /health alone is measured
// just before and just after the mix too. Prints req/s, p50/p99 latency and errors per route; errors
// (non-2xx, connection errors, timeouts) must be 0, and the process exits non-zero if any occurred.
// With --shards N the customer data is in N customer shards (SHARD_COUNT), as `npm start` runs it;
// without it, in the one D1 database.
// Usage: npm run bench -- load [--seconds 60] [--customers 2000] [--connections 14] [--orders 10] [--shards N]
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { generateCustomers, generateProducts } from "../../db/seed/generate.ts";
import type { WireOrder } from "../../db/seed/wire.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";

interface RouteLoad {
  name: string;
  /** Share of the connections. */
  weight: number;
  request: () => autocannon.Request;
}

interface Served {
  token: string;
  recommendationId: string;
  itemIds: string[];
}

const apiHeaders = { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}`, "content-type": "application/json" };
const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)] as T;

async function post(url: string, body: unknown, headers: Record<string, string> = apiHeaders): Promise<Response> {
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`POST ${url} answered ${response.status}: ${await response.text()}`);
  return response;
}

/** Products, generated customers' orders and the nightly fit; returns shopper accounts and order templates. */
async function seed(url: string, customers: number) {
  const options = { seed: 23, customers, today: new Date().toISOString().slice(0, 10), includePersonas: true };
  const products = generateProducts(options);
  for (let i = 0; i < products.length; i += 1000)
    await post(`${url}/v1/products`, { products: products.slice(i, i + 1000) });
  const accounts: string[] = [];
  const templates: WireOrder[] = [];
  let batch: WireOrder[] = [];
  for (const customer of generateCustomers(options)) {
    if (customer.truth.identifiers.account) accounts.push(customer.truth.identifiers.account);
    if (customer.orders[0] && templates.length < 1000) templates.push(customer.orders[0]);
    batch.push(...customer.orders);
    if (batch.length >= 500) {
      await post(`${url}/v1/orders`, { orders: batch });
      batch = [];
    }
  }
  if (batch.length) await post(`${url}/v1/orders`, { orders: batch });
  const fit = await fetch(`${url}/v1/admin/jobs/nightly?wait=1`, {
    method: "POST",
    headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
  });
  if (!fit.ok) throw new Error(`the nightly job answered ${fit.status}: ${await fit.text()}`);
  return { accounts, templates, productIds: products.map((product) => product.id) };
}

function routeLoads(
  tokens: string[],
  served: Served[],
  templates: WireOrder[],
  productIds: string[],
  ordersPerBatch: number,
): RouteLoad[] {
  let orderNumber = 0;
  const run = Date.now().toString(36);
  return [
    {
      name: "GET /health (baseline)",
      weight: 2,
      request: () => ({ method: "GET", path: "/health" }),
    },
    {
      name: "GET /v1/recommendations, known shopper",
      weight: 5,
      request: () => ({
        method: "GET",
        path: "/v1/recommendations?limit=8&categories=4",
        headers: { authorization: `Bearer ${pick(tokens)}` },
      }),
    },
    {
      name: "GET /v1/recommendations, anonymous",
      weight: 2,
      request: () => ({ method: "GET", path: "/v1/recommendations?limit=8&categories=4" }),
    },
    {
      name: "POST /v1/events (impressions + view)",
      weight: 4,
      request: () => {
        const shown = pick(served);
        const events = [
          ...shown.itemIds.map((productId) => ({
            type: "impression",
            recommendationId: shown.recommendationId,
            productId,
          })),
          { type: "view", productId: pick(productIds) },
        ];
        return {
          method: "POST",
          path: "/v1/events",
          headers: { "content-type": "text/plain;charset=UTF-8" },
          body: JSON.stringify({ events, token: shown.token }),
        };
      },
    },
    {
      name: `POST /v1/orders (${ordersPerBatch} orders)`,
      weight: 1,
      request: () => {
        const placedAt = new Date(Date.now() - 60_000).toISOString();
        const orders = Array.from({ length: ordersPerBatch }, () => ({
          ...pick(templates),
          id: `load-${run}-${++orderNumber}`,
          placedAt,
          recommendationId: null,
        }));
        return { method: "POST", path: "/v1/orders", headers: apiHeaders, body: JSON.stringify({ orders }) };
      },
    },
  ];
}

/** Non-2xx answers, connection errors and timeouts. */
const failures = (result: autocannon.Result) => result.errors + result.timeouts + result.non2xx;
const ms = (value: number) => `${value.toFixed(1)} ms`.padStart(9);

export default async function loadBench(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: "string", default: "60" },
      customers: { type: "string", default: "2000" },
      connections: { type: "string", default: "14" },
      orders: { type: "string", default: "10" },
      shards: { type: "string", default: "0" },
    },
  });
  const seconds = Number(values.seconds);
  const customers = Number(values.customers);
  const connections = Number(values.connections);
  const ordersPerBatch = Number(values.orders);
  const shards = Number(values.shards);
  if (!Number.isInteger(shards) || shards < 0)
    throw new Error(`--shards must be a whole number, 0 for D1 (got ${values.shards})`);
  const store = shards > 0 ? `${shards} customer shards` : "the one D1 database";
  const worker = await startDevWorker({ vars: { RATE_LIMITS: "off", SHARD_COUNT: String(shards) } });
  try {
    const seedStart = performance.now();
    const { accounts, templates, productIds } = await seed(worker.url, customers);
    const now = new Date();
    const tokens = await Promise.all(
      accounts.map((account) => signShopperToken(account, testSecrets.SHOPPER_TOKEN_SECRET, 3600, now)),
    );
    // What the widget would beacon: shelves actually served to shoppers (also warms the isolate caches).
    const served: Served[] = [];
    for (const token of tokens.slice(0, 200)) {
      const response = await fetch(`${worker.url}/v1/recommendations?limit=8&categories=4`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      const { data } = (await response.json()) as { data: { recommendationId: string; items: { id: string }[] } };
      served.push({ token, recommendationId: data.recommendationId, itemIds: data.items.map((item) => item.id) });
    }
    console.log(
      `seeded ${customers} generated customers (${accounts.length} with a storefront account), fitted, ${served.length} shelves served, in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`,
    );

    const loads = routeLoads(tokens, served, templates, productIds, ordersPerBatch);
    const totalWeight = loads.reduce((sum, load) => sum + load.weight, 0);
    const run = (load: RouteLoad, conns: number, duration: number) =>
      autocannon({
        url: worker.url,
        connections: conns,
        duration,
        // Each request is built afresh (a random shopper, new order ids) on top of autocannon's defaults.
        requests: [
          {
            setupRequest: (defaults) => {
              const request = load.request();
              return { ...defaults, ...request, headers: { ...defaults.headers, ...request.headers } };
            },
          },
        ],
      });
    const health = loads[0] as RouteLoad;
    const quietSeconds = Math.max(2, Math.round(seconds / 10));
    // /health alone, before and after the mix: what the worker answers when nothing else is running.
    const before = await run(health, connections, quietSeconds);
    const results = await Promise.all(
      loads.map(async (load) => ({
        load,
        result: await run(load, Math.max(1, Math.round((connections * load.weight) / totalWeight)), seconds),
      })),
    );
    const after = await run(health, connections, quietSeconds);

    console.log(
      `${seconds} s of mixed traffic, ${connections} connections in all, limits off, ${tokens.length} shoppers with tokens, customer data in ${store}`,
    );
    const header = `${"route".padEnd(44)} ${"conns".padStart(5)} ${"req/s".padStart(7)} ${"p50".padStart(9)} ${"p99".padStart(9)} ${"errors".padStart(6)}`;
    const row = (name: string, result: autocannon.Result, ratio = "") =>
      `${name.padEnd(44)} ${String(result.connections).padStart(5)} ${(result.requests.total / result.duration).toFixed(0).padStart(7)} ${ms(result.latency.p50)} ${ms(result.latency.p99)} ${String(failures(result)).padStart(6)}${ratio}`;
    console.log(`${header}  p50 vs /health in the mix`);
    const baseline = results[0]?.result.latency.p50 ?? 0;
    for (const { load, result } of results)
      console.log(row(load.name, result, `  ${(result.latency.p50 / baseline).toFixed(1)}x`));
    console.log(`GET /health alone, ${quietSeconds} s before and after the mix:`);
    console.log(row("GET /health alone (before)", before));
    console.log(row("GET /health alone (after)", after));
    const errors = [before, after, ...results.map(({ result }) => result)].reduce(
      (sum, result) => sum + failures(result),
      0,
    );
    const total = results.reduce((sum, { result }) => sum + result.requests.total, 0);
    console.log(`mix, all routes: ${(total / seconds).toFixed(0)} req/s; errors ${errors} (must be 0)`);
    if (errors > 0) process.exitCode = 1;
  } finally {
    await worker.stop();
  }
}
