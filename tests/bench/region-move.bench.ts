// A region moved between customer shards when an order links it to another (docs/scaling.md, ingestion
// across shards), at a size one Workers RPC call cannot carry. Under `wrangler dev` with 4 shards:
// - the baseline: a web account with one order and a loyalty card with one store order, their keys
//   homed in different shards, joined by a store order carrying both (the link moves a region);
// - the same with the account's history grown to `--orders` orders of `--lines` lines each, posted
//   through POST /v1/orders, then the link, timed, and the joined customer looked up.
// Prints each link's time and the big one's against the baseline.
// Usage: npm run bench -- region-move [--orders 2000] [--lines 100] [--out file.json]
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { homeShard } from "../../worker/core/shards/placement.ts";
import { identityKey, normalizeForKey } from "../../worker/identity/identity.keys.ts";
import { startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";

const root = path.resolve(import.meta.dirname, "../..");
const shards = 4;
const categories = 20;

interface Options {
  orders: number;
  lines: number;
  out: string;
}

function parseOptions(args: string[]): Options {
  const value = (name: string, fallback: string) => {
    const index = args.indexOf(`--${name}`);
    return index >= 0 ? (args[index + 1] ?? fallback) : fallback;
  };
  const whole = (name: string, fallback: string, min: number, max: number) => {
    const n = Number(value(name, fallback));
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`--${name} takes a whole number from ${min} to ${max}, got ${value(name, fallback)}`);
    return n;
  };
  return {
    orders: whole("orders", "2000", 1, 20_000),
    lines: whole("lines", "100", 1, 500),
    out: path.resolve(value("out", path.join(root, ".wrangler/bench/region-move.json"))),
  };
}

async function keyOf(kind: "account" | "loyalty", value: string): Promise<string> {
  const normalized = normalizeForKey(kind, value);
  if (!normalized.ok) throw new Error(normalized.reason);
  return identityKey(kind, normalized.value, testSecrets.IDENTITY_HASH_SECRET);
}

/**
 * An account and a card whose regions start in different shards, the account's in the higher one: a
 * link goes to the lowest shard its keys are in, so the account's region is the one that moves.
 */
async function apart(prefix: string) {
  for (let n = 0; ; n++) {
    const account = `${prefix}-web-${n}`;
    const loyalty = `${prefix}-CARD-${n}`;
    if (homeShard(await keyOf("account", account), shards) > homeShard(await keyOf("loyalty", loyalty), shards))
      return { account, loyalty };
  }
}

const day = (n: number) => new Date(Date.UTC(2024, 0, 1) + n * 3_600_000).toISOString();

function order(id: string, placedAt: string, identifiers: Record<string, string>, lines: number, channel = "web") {
  return {
    id,
    channel,
    storeId: channel === "store" ? "store-1" : null,
    placedAt,
    currency: "USD",
    identifiers,
    lines: Array.from({ length: lines }, (_, k) => ({
      productId: `bench-sku-${k}`,
      categoryId: `bench-category-${k % categories}`,
      quantity: 1 + (k % 3),
      unitPrice: 5 + (k % 17),
      listPrice: 9 + (k % 17),
    })),
    recommendationId: null,
  };
}

async function post(url: string, route: string, body: unknown) {
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${url}${route}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    // A 409 with Retry-After clears by itself (a move under way); clients send it again.
    if ((response.status === 409 || response.status === 503) && attempt < 20) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      continue;
    }
    if (!response.ok) throw new Error(`POST ${route} answered ${response.status}: ${text.slice(0, 500)}`);
    return JSON.parse(text) as { data: { merges: number; accepted: number } };
  }
}

async function lookup(url: string, kind: string, value: string) {
  const response = await fetch(`${url}/v1/customers/lookup?kind=${kind}&value=${encodeURIComponent(value)}`, {
    headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
  });
  if (!response.ok) throw new Error(`lookup answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
  return ((await response.json()) as { data: { customerId: string; summary: { orders: number } | null } }).data;
}

/** A web history of `orders` orders of `lines` lines, a store order on a card elsewhere, and the link, timed. */
async function join(url: string, prefix: string, orders: number, lines: number) {
  const { account, loyalty } = await apart(prefix);
  const history = Array.from({ length: orders }, (_, n) => order(`${prefix}-w${n}`, day(n), { account }, lines));
  const perRequest = Math.max(1, Math.min(1000, Math.floor(40_000 / lines)));
  const loadStarted = performance.now();
  for (let i = 0; i < history.length; i += perRequest) {
    await post(url, "/v1/orders", { orders: history.slice(i, i + perRequest) });
    if (orders > perRequest) process.stdout.write(`\r  posted ${Math.min(i + perRequest, orders)}/${orders} orders`);
  }
  if (orders > perRequest) process.stdout.write("\n");
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  await post(url, "/v1/orders", { orders: [order(`${prefix}-s0`, day(orders), { loyalty }, 1, "store")] });
  const started = performance.now();
  const linked = await post(url, "/v1/orders", {
    orders: [order(`${prefix}-link`, day(orders + 1), { account, loyalty }, 1, "store")],
  });
  const seconds = (performance.now() - started) / 1000;
  const [byAccount, byCard] = [await lookup(url, "account", account), await lookup(url, "loyalty", loyalty)];
  const joined = byAccount.customerId === byCard.customerId && byAccount.summary?.orders === orders + 2;
  return { orders, lines: orders * lines, loadSeconds, seconds, merges: linked.data.merges, joined };
}

export default async function main(args: string[]) {
  const options = parseOptions(args);
  const worker = await startDevWorker({
    vars: { RATE_LIMITS: "off", SHARD_COUNT: String(shards) },
    timeoutMs: 180_000,
  });
  try {
    const baseline = await join(worker.url, "small", 1, 1);
    console.log(
      `baseline: a 1-order region joined in ${(baseline.seconds * 1000).toFixed(0)} ms (joined: ${baseline.joined})`,
    );
    const big = await join(worker.url, "big", options.orders, options.lines);
    console.log(
      `big: ${big.orders.toLocaleString("en-US")} orders, ${big.lines.toLocaleString("en-US")} lines posted in ${big.loadSeconds.toFixed(1)} s; the link moving the region answered in ${big.seconds.toFixed(1)} s = ${(big.seconds / baseline.seconds).toFixed(0)}x the baseline; merges ${big.merges}; one customer with every order: ${big.joined}`,
    );
    mkdirSync(path.dirname(options.out), { recursive: true });
    writeFileSync(options.out, `${JSON.stringify({ shards, baseline, big }, null, 2)}\n`);
    console.log(`wrote ${path.relative(root, options.out)}`);
  } finally {
    await worker.stop();
  }
}
