// The figures of docs/scaling.md at several database sizes. For each size it seeds that many generated
// customers directly into a fresh local D1 (through wrangler's platform proxy, the same local database
// `wrangler dev` then serves; no identity resolution: each generated customer is one Patron customer,
// with the rows ingestion would have left), a mixed base whose shares are set in one place (baseMix:
// customers known by a web account only, by a store loyalty card only, or by both, joined; emails typed
// unverified, some shared by a household), then measures:
// - bytes stored per customer (D1's meta.size_after; per table with dbstat when the sqlite3 CLI is there),
// - rows written per order (D1's meta.rows_written) through the real ingestOrders code, in-process on
//   the seeded database, for new orders of existing customers, for new customers, and for a replay; and
//   the rows a full rebuild of those customers' totals writes (what every touched customer cost per
//   batch before totals were folded, and what a merge still costs),
// - the BG/NBD + Gamma-Gamma fit time on the nightly job's sample and scoring throughput, in-process,
// - the nightly job's wall time (its own run record) and the worker's peak memory under `wrangler
//   dev`, then POST /v1/orders orders/s there (the same three cases, other orders),
// - GET /v1/recommendations for many distinct known shoppers (customers holding an account) next to a
//   bare single-row D1 read (GET /v1/customers/:id of an unknown id), alternated block by block in
//   five rounds (the round with the median ratio is reported), with the worker's CPU time per request
//   on each side.
//   Then the same shoppers again in fifteen rounds (repeat visits: their pages in memory), next to the
//   same bare read, with the quartiles of the rounds' ratios.
// Prints the figures and writes them as JSON.
// Usage: npm run bench -- scale [--sizes 10000,100000] [--requests 400] [--connections 8] [--out file.json]
//   [--drop-caches] (Linux, root: empty the page cache before each size's shelf, so first visits read from disk)
// (1,000,000 customers: --sizes 10000,100000,1000000; it takes a long while and several GB of disk).
// With --shards N [--keep DIR] [--load-only], customer data is in N customer shards instead of D1: the
// same as `npm run bench -- shard --route --shards N` (tests/bench/shard/route.ts).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { progressBar } from "../../cli/import/progress.ts";
import { jsonEach, runBatch } from "../../db/batch.ts";
import * as schema from "../../db/schema.ts";
import { generateCustomers, generateProducts } from "../../db/seed/generate.ts";
import { scoreCustomer } from "../../worker/core/profile/customer-profile.ts";
import { totalsOfOrders } from "../../worker/core/profile/customer-totals.ts";
import {
  fitPopulationModels,
  type PopulationModels,
  type SummaryRow,
} from "../../worker/core/profile/population-models.ts";
import type { Db } from "../../worker/env.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { type HashedIdentity, hashIdentifiers } from "../../worker/identity/identity.keys.ts";
import { fitSampleQuery } from "../../worker/jobs/nightly.repo.ts";
import { ingestOrders } from "../../worker/orders/ingest.ts";
import {
  addProductsStatements,
  insertOrderStatements,
  rebuildSummaryStatements,
  totalsOrderOf,
  writeTotalsStatements,
} from "../../worker/orders/orders.repo.ts";
import type { OrderInput } from "../../worker/orders/orders.schemas.ts";
import { upsertProducts } from "../../worker/orders/products.repo.ts";
import { startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import {
  accountHolderFrom,
  accountOf,
  accountShare,
  emailOf,
  kindOf,
  loyaltyOf,
  ordersOfKind,
  type SeededKind,
} from "./base-mix.ts";
import { freshLocalD1, tableBytes } from "./local-d1.ts";
import { descendantProcesses, fmt, interleavedRounds, medianRatioRound, type RoundResult } from "./measure.ts";
import { meteredD1 } from "./metered-d1.ts";

const root = path.resolve(import.meta.dirname, "../..");
const seed = 11;
/** Customers written per D1 batch while seeding. */
const seedBatchCustomers = 500;
/** Orders per ingestion batch, and batches per measurement. */
const ingestBatch = 100;
const ingestBatches = 10;
/**
 * Requests each side of the shelf comparison gets before it is measured (shoppers never measured), so
 * both run as a serving isolate does: compiled, with their caches filled.
 */
const warmUpRequests = 200;
/** Distinct known shoppers the recommendation load cycles through. */
const shoppers = 2000;
/**
 * Rounds of the recommendations-against-bare-read comparison (odd: the median is a real round). First
 * visits are bounded by the distinct shoppers (each is asked for once); repeat visits take three times
 * as many rounds, since one round's ratio swings by ±0.15 on this shared machine and the flatness
 * figure divides two of them.
 */
const alternatedRoundsCount = 5;
const repeatRoundsCount = 15;
/** Blocks per round and side: the two sides alternate block by block. */
const blocksPerRound = 4;
/** Customers scored in-process for the scoring throughput. */
const scoredCustomers = 5000;
/** How often the nightly run is polled. */
const nightlyPollMs = 1000;

export interface Options {
  sizes: number[];
  requests: number;
  connections: number;
  out: string;
  /** Empty the page cache before each size's shelf measurement (Linux, root): first visits from disk. */
  dropCaches: boolean;
}

/** The scale and shard benches' options; `bench` names the default output file. */
export function parseOptions(args: string[], bench = "scale"): Options {
  const value = (name: string) => {
    const index = args.indexOf(`--${name}`);
    return index >= 0 ? args[index + 1] : undefined;
  };
  return {
    sizes: (value("sizes") ?? "10000,100000").split(",").map(Number),
    requests: Number(value("requests") ?? 400),
    connections: Number(value("connections") ?? 8),
    out: path.resolve(value("out") ?? path.join(root, `.wrangler/bench/${bench}.json`)),
    dropCaches: args.includes("--drop-caches") && canDropPageCache(),
  };
}

/** Refuses --drop-caches before any loading where the page cache cannot be emptied (Linux, root). */
function canDropPageCache(): true {
  try {
    accessSync("/proc/sys/vm/drop_caches", constants.W_OK);
    return true;
  } catch (error) {
    throw new Error(
      `--drop-caches needs Linux and root (writing /proc/sys/vm/drop_caches): ${(error as Error).message}`,
    );
  }
}

/** Random-looking and stable, like the ids ingestion makes (the nightly sample relies on that). */
const customerIdOf = (index: number) => `c_${createHash("sha256").update(accountOf(index)).digest("hex").slice(0, 20)}`;

/** A generated customer as seeding writes it: its id, every identity its orders carry, its orders. */
export interface SeedCustomer {
  customerId: string;
  /** The verified ones (account, loyalty card) are the customer's; the unverified ones (email) nobody's. */
  identities: readonly HashedIdentity[];
  orders: readonly OrderInput[];
}

/**
 * Generated customer `index`'s identities, hashed as ingestion hashes them, the key it is placed by
 * (its account's, else its card's: where a shard bench homes it) first.
 */
export async function identitiesOf(index: number): Promise<HashedIdentity[]> {
  const kind = kindOf(index);
  const { identities } = await hashIdentifiers(
    {
      ...(kind === "store" ? {} : { account: accountOf(index) }),
      ...(kind === "web" ? {} : { loyalty: loyaltyOf(index) }),
      email: emailOf(index),
    },
    testSecrets.IDENTITY_HASH_SECRET,
  );
  return identities.sort((a, b) => placementRank(a.kind) - placementRank(b.kind));
}
const placementRank = (kind: string) => (kind === "account" ? 0 : kind === "loyalty" ? 1 : 2);

/**
 * The rows ingestion would leave for generated customers: the customer, the identities it holds and
 * those seen unverified (owned by nobody; one row for a household's email), each order's observations
 * (verified or not, as sent), its orders and lines, its summary and category stats.
 */
export function customerRowsStatements(customers: readonly SeedCustomer[], at: string) {
  const owned = customers.flatMap(({ customerId, identities }) =>
    identities.filter((identity) => identity.trust === "verified").map((identity) => ({ ...identity, customerId })),
  );
  // Those seen unverified on one of the customer's orders at least (a store-only customer's email only
  // where a receipt carried it).
  const seen = customers.flatMap(({ identities, orders }) =>
    identities.filter(
      (identity) =>
        identity.trust !== "verified" && orders.some((order) => order.identifiers[identity.kind] !== undefined),
    ),
  );
  const observations = customers.flatMap(({ identities, orders }) =>
    orders.flatMap((order) =>
      identities
        .filter((identity) => order.identifiers[identity.kind] !== undefined)
        .map((identity) => ({
          source: `order:${order.id}`,
          key: identity.key,
          verified: identity.trust === "verified" ? 1 : 0,
        })),
    ),
  );
  return [
    sql`INSERT INTO customers (id, created_at, updated_at) SELECT value, ${at}, ${at} FROM ${jsonEach(customers.map((c) => c.customerId))}`,
    sql`INSERT INTO identities (key, kind, customer_id, masked, shared, created_at)
        SELECT value ->> 'key', value ->> 'kind', value ->> 'customerId', value ->> 'masked', 0, ${at}
        FROM ${jsonEach(owned)}`,
    // A household's email is seen on two customers' orders: one row, whichever comes first.
    sql`INSERT OR IGNORE INTO identities (key, kind, customer_id, masked, shared, created_at)
        SELECT value ->> 'key', value ->> 'kind', NULL, value ->> 'masked', 0, ${at}
        FROM ${jsonEach(seen)}`,
    sql`INSERT INTO identity_observations (source, identity_key, verified)
        SELECT value ->> 'source', value ->> 'key', value ->> 'verified' FROM ${jsonEach(observations)}`,
    ...insertOrderStatements(
      // Loaded directly, like orders stored before fingerprints: a resend of one answers `changed: null`.
      customers.flatMap(({ customerId, orders }) => orders.map((order) => ({ order, customerId, fingerprint: null }))),
      at,
    ),
    ...writeTotalsStatements(
      customers.map(({ customerId, orders }) => {
        const totals = totalsOfOrders(orders.map(totalsOrderOf));
        return { customerId, summary: totals.summary, categories: totals.categories };
      }),
      at,
      "seed",
    ),
    ...addProductsStatements(customers.flatMap(({ orders }) => orders.map((order) => order.id))),
  ];
}

/** The generated customers with their orders, identified by their kind (baseMix), as seeding writes them. */
export function* generatedCustomers(size: number, today: string) {
  let index = 0;
  for (const generated of generateCustomers({ seed, customers: size, today, includePersonas: false })) {
    yield { index, kind: kindOf(index), orders: ordersOfKind(index, generated.orders) };
    index++;
  }
}

interface Seeded {
  customers: number;
  /** Of those, how many of each kind (baseMix.shares). */
  kinds: Record<SeededKind, number>;
  orders: number;
  lines: number;
  seconds: number;
  databaseBytes: number;
}

/** Writes `size` generated customers with their orders, identities, summary and category stats. */
export async function seedCustomers(d1: D1Database, size: number): Promise<Seeded> {
  const { binding, meter } = meteredD1(d1);
  const client = { $client: binding };
  const now = new Date();
  const at = now.toISOString();
  const products = generateProducts({ seed }).map((product) => ({ ...product, active: true }));
  await upsertProducts(drizzle(binding, { schema }) as unknown as Db, products, now);
  const bar = progressBar(size, "customers");
  const started = performance.now();
  let customers = 0;
  const kinds: Record<SeededKind, number> = { web: 0, store: 0, both: 0 };
  let orders = 0;
  let lines = 0;
  let pending: { index: number; orders: OrderInput[] }[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const batch = await Promise.all(
      pending.map(async ({ index, orders }) => ({
        customerId: customerIdOf(index),
        identities: await identitiesOf(index),
        orders,
      })),
    );
    await runBatch(client, customerRowsStatements(batch, at));
    customers += pending.length;
    pending = [];
    bar.update(customers);
  };
  for (const { index, kind, orders: customerOrders } of generatedCustomers(size, at.slice(0, 10))) {
    if (customerOrders.length > 0) {
      pending.push({ index, orders: customerOrders });
      kinds[kind]++;
      orders += customerOrders.length;
      lines += customerOrders.reduce((sum, order) => sum + order.lines.length, 0);
    }
    if (pending.length >= seedBatchCustomers) await flush();
  }
  await flush();
  bar.stop();
  return {
    customers,
    kinds,
    orders,
    lines,
    seconds: (performance.now() - started) / 1000,
    databaseBytes: meter.sizeAfter,
  };
}

interface IngestFigure {
  orders: number;
  ordersPerSecond: number;
  rowsWrittenPerOrder: number;
}

/**
 * ingestBatch × ingestBatches new orders of 2 lines, placed a minute ago: one for each of as many
 * existing customers spread over the base (`existing`, customers `existingIndices`), with the
 * identifiers of their kind (a web order with the account and the typed email, a store order with the
 * card; a joined customer's in either channel), and one for each of as many new customers, each with
 * one account (`fresh`).
 * `crossChannel` is as many orders of new customers met in both channels, in three steps of a third
 * each: a web order with an account and an email, a store order with only a loyalty card (a customer
 * of its own, as the till knows nothing else), then a store order with the card and the account, which
 * joins the two (a merge: both customers' totals recomputed as one).
 */
export function benchOrders(size: number, products: readonly { id: string; categoryId: string }[], label: string) {
  const total = ingestBatch * ingestBatches;
  const placedAt = new Date(Date.now() - 60_000).toISOString();
  const orderFor = (account: string, k: number, identifiers: OrderInput["identifiers"] = { account }): OrderInput => {
    const product = products[(k * 7919) % products.length]!;
    const other = products[(k * 104_729 + 13) % products.length]!;
    const inStore = identifiers.loyalty !== undefined;
    return {
      id: `${account}-${label}-${k}`,
      channel: inStore ? "store" : "web",
      storeId: inStore ? "store-1" : null,
      placedAt,
      currency: "USD",
      identifiers,
      lines: [
        { productId: product.id, categoryId: product.categoryId, quantity: 1, unitPrice: 20, listPrice: 25 },
        { productId: other.id, categoryId: other.categoryId, quantity: 2, unitPrice: 8, listPrice: 8 },
      ],
      recommendationId: null,
    };
  };
  const joined = Math.floor(total / 3);
  const both = (k: number) => ({ account: `scale-${label}-both-${k}`, loyalty: `LC-${label}-${k}` });
  const existingIndices = Array.from({ length: total }, (_, k) => Math.floor((k * size) / total));
  const existingOrder = (index: number, k: number) => {
    const kind = kindOf(index);
    const inStore = kind === "store" || (kind === "both" && k % 2 === 0);
    return orderFor(
      accountOf(index),
      k,
      inStore ? { loyalty: loyaltyOf(index) } : { account: accountOf(index), email: emailOf(index) },
    );
  };
  return {
    existing: existingIndices.map((index, k) => existingOrder(index, k)),
    existingIndices,
    fresh: Array.from({ length: total }, (_, k) => orderFor(`scale-${label}-${k}`, k)),
    crossChannel: {
      web: Array.from({ length: joined }, (_, k) =>
        orderFor(both(k).account, k, { account: both(k).account, email: `${both(k).account}@example.com` }),
      ),
      store: Array.from({ length: joined }, (_, k) =>
        orderFor(`${both(k).account}-card`, k, { loyalty: both(k).loyalty }),
      ),
      join: Array.from({ length: joined }, (_, k) => orderFor(`${both(k).account}-join`, k, both(k))),
    },
  };
}

/** POST /v1/orders on `wrangler dev`: orders/s for new orders of existing customers, a replay, new customers. */
export async function measureHttpIngestion(url: string, size: number, products: { id: string; categoryId: string }[]) {
  const headers = { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}`, "Content-Type": "application/json" };
  const { existing, fresh, crossChannel: crossChannelOrders } = benchOrders(size, products, "http");
  const post = async (orders: OrderInput[]) => {
    const started = performance.now();
    for (let i = 0; i < orders.length; i += ingestBatch) {
      const response = await fetch(`${url}/v1/orders`, {
        method: "POST",
        headers,
        body: JSON.stringify({ orders: orders.slice(i, i + ingestBatch) }),
      });
      if (!response.ok) throw new Error(`POST /v1/orders answered ${response.status}: ${await response.text()}`);
      await response.arrayBuffer();
    }
    return { orders: orders.length, ordersPerSecond: orders.length / ((performance.now() - started) / 1000) };
  };
  const existingCustomers = await post(existing);
  const replay = await post(existing);
  const newCustomers = await post(fresh);
  const crossChannel = await crossChannelSteps(crossChannelOrders, post);
  return { batchSize: ingestBatch, existingCustomers, replay, newCustomers, crossChannel };
}

/**
 * ingestOrders (the code POST /v1/orders runs) on the seeded database: a new order for each of
 * ingestBatch × ingestBatches existing customers spread over the base, the same batches replayed, and
 * as many orders of new customers.
 */
async function measureIngestion(d1: D1Database, size: number, products: { id: string; categoryId: string }[]) {
  const { binding, meter } = meteredD1(d1);
  const db = drizzle(binding, { schema }) as unknown as Db;
  const now = new Date();
  const attribution = { secrets: [testSecrets.SHOPPER_TOKEN_SECRET], eventWindowDays: 7, orderWindowDays: 30 };
  const {
    existing,
    existingIndices,
    fresh,
    crossChannel: crossChannelOrders,
  } = benchOrders(size, products, "in-process");
  const run = async (orders: OrderInput[]): Promise<IngestFigure> => {
    meter.rowsWritten = 0;
    const started = performance.now();
    for (let i = 0; i < orders.length; i += ingestBatch) {
      const outcome = await ingestOrders(
        db,
        testSecrets.IDENTITY_HASH_SECRET,
        orders.slice(i, i + ingestBatch),
        new Date(),
        attribution,
      );
      if (outcome.kind !== "ingested") throw new Error(`ingestion refused: ${outcome.kind}`);
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      orders: orders.length,
      ordersPerSecond: orders.length / seconds,
      rowsWrittenPerOrder: meter.rowsWritten / orders.length,
    };
  };
  const existingCustomers = await run(existing);
  const replay = await run(existing);
  const newCustomers = await run(fresh);
  const crossChannel = await crossChannelSteps(crossChannelOrders, run);
  // What each touched customer cost every batch before totals were folded, and still costs on a merge.
  const ids = [...new Set(existingIndices)].map(customerIdOf);
  meter.rowsWritten = 0;
  for (let i = 0; i < ids.length; i += ingestBatch)
    await runBatch(
      { $client: binding },
      rebuildSummaryStatements(ids.slice(i, i + ingestBatch), now.toISOString(), "bench"),
    );
  const rebuildRowsPerCustomer = meter.rowsWritten / ids.length;
  return { batchSize: ingestBatch, existingCustomers, replay, newCustomers, crossChannel, rebuildRowsPerCustomer };
}

/**
 * benchOrders' cross-channel customers, step by step (web, store, join), each step's figures and the
 * three together: orders/s over the whole stream, and rows written per order where they were counted.
 */
async function crossChannelSteps<F extends { orders: number; ordersPerSecond: number; rowsWrittenPerOrder?: number }>(
  orders: ReturnType<typeof benchOrders>["crossChannel"],
  post: (orders: OrderInput[]) => Promise<F>,
) {
  const web = await post(orders.web);
  const store = await post(orders.store);
  const join = await post(orders.join);
  const steps = [web, store, join];
  const count = steps.reduce((sum, step) => sum + step.orders, 0);
  const seconds = steps.reduce((sum, step) => sum + step.orders / step.ordersPerSecond, 0);
  const rows = steps.every((step) => step.rowsWrittenPerOrder !== undefined)
    ? steps.reduce((sum, step) => sum + (step.rowsWrittenPerOrder as number) * step.orders, 0) / count
    : undefined;
  return { web, store, join, all: { orders: count, ordersPerSecond: count / seconds, rowsWrittenPerOrder: rows } };
}

/**
 * Empties the operating system's page cache (Linux, as root), so the first visits read the database
 * files from disk as a server that has not read them lately does.
 */
async function dropPageCache() {
  await promisify(execFile)("sync");
  // Whether this may be written was checked with the options (canDropPageCache).
  writeFileSync("/proc/sys/vm/drop_caches", "1");
  console.log("dropped the page cache: the first visits read the shoppers' pages from disk");
}

/**
 * Recommendations for many distinct known shoppers against the bare read, alternated in rounds, twice:
 * first visits (each shopper asked for once at the default requests; from disk when the page cache does
 * not hold their pages, and with --drop-caches it does not), then repeat visits (the same shoppers
 * again, their pages now in memory), which is the cost of the path itself. The bare read is the same
 * row of a small table every time, in memory from its first request.
 *
 * `coldRead`, when given, is a third side of the first visits: a bare single-row read of a distinct
 * row of a table with a row per customer, asked for by the shopper's index (so from disk as the
 * shoppers' pages are): the floor any first visit pays, next to which the shelf's own cost shows.
 */
export async function measureRecommendations(
  url: string,
  size: number,
  options: Options,
  coldRead?: (shopper: number) => Promise<Response>,
) {
  const admin = { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` };
  // Shoppers sign in: they are the customers holding an account (baseMix), spread over the whole base.
  const count = Math.min(shoppers, Math.floor(size * accountShare));
  const shopperAt = (k: number) => accountHolderFrom(Math.floor((k * size) / count));
  const tokenOf = (index: number) =>
    signShopperToken(accountOf(index), testSecrets.SHOPPER_TOKEN_SECRET, 3600, new Date());
  const tokens = await Promise.all(Array.from({ length: count }, (_, k) => tokenOf(shopperAt(k))));
  // The warm-up's shoppers sit between the measured ones (the next account holder after one), so none
  // of these is visited before it is measured.
  const warmUpTokens = await Promise.all(
    Array.from({ length: warmUpRequests }, (_, k) => tokenOf(accountHolderFrom((shopperAt(k % count) + 1) % size))),
  );
  const shelf = (token: string) =>
    fetch(`${url}/v1/recommendations?limit=8&categories=4`, { headers: { Authorization: `Bearer ${token}` } });
  const recommendations = (i: number) => shelf(tokens[i % tokens.length]!);
  const bareRead = () => fetch(`${url}/v1/customers/c_missing_${Math.random()}`, { headers: admin });
  if (options.dropCaches) await dropPageCache();
  for (const [k, token] of warmUpTokens.entries()) {
    await (await shelf(token)).arrayBuffer();
    await (await bareRead()).arrayBuffer();
    if (coldRead) await (await coldRead((shopperAt(k) + 1) % size)).arrayBuffer();
  }
  const rounds = alternatedRoundsCount;
  const sides = {
    baseline: { send: bareRead, expectedStatus: 404 },
    recommendations: { send: recommendations, expectedStatus: 200 },
  };
  const serverCounters = () => descendantProcesses("workerd");
  const comparisonOf = (measured: Record<"baseline" | "recommendations", RoundResult>[]) => {
    const median = medianRatioRound(
      measured.map((round) => ({
        baseline: round.baseline,
        candidate: round.recommendations,
        ratio: round.recommendations.requestsPerSecond / round.baseline.requestsPerSecond,
      })),
    );
    return {
      baseline: median.baseline,
      recommendations: median.candidate,
      ratio: median.ratio,
      ratios: measured.map((round) => round.recommendations.requestsPerSecond / round.baseline.requestsPerSecond),
    };
  };
  const first: (Record<keyof typeof sides, RoundResult> & { cold?: RoundResult })[] = coldRead
    ? await interleavedRounds(
        rounds,
        options.requests,
        options.connections,
        blocksPerRound,
        { ...sides, cold: { send: (i: number) => coldRead(shopperAt(i % count)), expectedStatus: 200 } },
        serverCounters,
      )
    : await interleavedRounds(rounds, options.requests, options.connections, blocksPerRound, sides, serverCounters);
  const firstVisits = comparisonOf(first);
  const coldFloor =
    coldRead && comparisonOf(first.map((round) => ({ baseline: round.cold!, recommendations: round.recommendations })));
  // Blocks round the requests up; past `count` requests the first pass repeats shoppers.
  const visits = rounds * blocksPerRound * Math.ceil(options.requests / blocksPerRound);
  if (visits !== count)
    console.log(
      `(the first visits sent ${visits} requests to ${count} shoppers: ${visits < count ? "some shoppers were not visited" : "some were visited again"})`,
    );
  const repeatVisits = comparisonOf(
    await interleavedRounds(
      repeatRoundsCount,
      options.requests,
      options.connections,
      blocksPerRound,
      sides,
      serverCounters,
    ),
  );
  return {
    shoppers: count,
    rounds,
    repeatRounds: repeatRoundsCount,
    blocksPerRound,
    requestsPerRound: options.requests,
    connections: options.connections,
    droppedPageCache: options.dropCaches,
    ...firstVisits,
    ...(coldFloor ? { coldFloor } : {}),
    repeatVisits,
  };
}

/** Reads an in-process page of summaries as the nightly job's fit does (nightly.repo.ts toSummaryRow). */
const summaryRowOf = (row: Record<string, unknown>): SummaryRow => ({
  customerId: String(row.customer_id),
  purchaseDays: Number(row.purchase_days),
  firstOrderAt: String(row.first_order_at),
  lastOrderAt: String(row.last_order_at),
  secondPurchaseAt: row.second_purchase_at === null ? null : String(row.second_purchase_at),
  gapSquareSum: Number(row.gap_square_sum),
  positiveDays: Number(row.positive_days),
  positiveDaySpend: Number(row.positive_day_spend),
  firstDaySpend: Number(row.first_day_spend),
  units: Number(row.units),
  discountedUnits: Number(row.discounted_units),
});

/**
 * The customer models' cost, in-process on the seeded database: the BG/NBD + Gamma-Gamma fit on the
 * nightly job's own sample (fitSampleQuery), and scoring throughput (scoreCustomer, as the job calls
 * it, with each customer's categories and order times) over the first scoredCustomers customers.
 */
async function measureModels(d1: D1Database) {
  const db = drizzle(d1, { schema }) as unknown as Db;
  const now = new Date();
  const sample = (await db.all<Record<string, unknown>>(fitSampleQuery())).map(summaryRowOf);
  const fitStarted = performance.now();
  const models: PopulationModels = fitPopulationModels(sample, now);
  const fitSeconds = (performance.now() - fitStarted) / 1000;
  const page = await db.all<Record<string, unknown>>(sql`
    SELECT * FROM customer_summaries ORDER BY customer_id LIMIT ${scoredCustomers}`);
  const last = String(page[page.length - 1]?.customer_id ?? "");
  const [categories, orders] = await Promise.all([
    db.all<{ customer_id: string } & Record<string, unknown>>(sql`
      SELECT customer_id, category_id, purchase_days, first_purchase_at, last_purchase_at, avg_unit_price
      FROM customer_category_stats WHERE customer_id <= ${last}`),
    db.all<{ customer_id: string; placed_at: string }>(sql`
      SELECT customer_id, placed_at FROM orders WHERE customer_id <= ${last}`),
  ]);
  const byCustomer = <T extends { customer_id: unknown }>(rows: T[]) => {
    const groups = new Map<string, T[]>();
    for (const row of rows) {
      const group = groups.get(String(row.customer_id));
      if (group) group.push(row);
      else groups.set(String(row.customer_id), [row]);
    }
    return groups;
  };
  const categoriesOf = byCustomer(categories);
  const ordersOf = byCustomer(orders);
  const inputs = page.map((row) => ({
    summary: {
      ...summaryRowOf(row),
      webOrders: Number(row.web_orders),
      storeOrders: Number(row.store_orders),
      appOrders: Number(row.app_orders),
      phoneOrders: Number(row.phone_orders),
    },
    categories: (categoriesOf.get(String(row.customer_id)) ?? []).map((c) => ({
      categoryId: String(c.category_id),
      purchaseDays: Number(c.purchase_days),
      firstPurchaseAt: String(c.first_purchase_at),
      lastPurchaseAt: String(c.last_purchase_at),
      avgUnitPrice: Number(c.avg_unit_price),
    })),
    orderTimes: (ordersOf.get(String(row.customer_id)) ?? []).map((o) => o.placed_at),
    models,
    now,
  }));
  const scoreStarted = performance.now();
  let scored = 0;
  for (const input of inputs) if (scoreCustomer(input).ok) scored++;
  const scoreSeconds = (performance.now() - scoreStarted) / 1000;
  return {
    fit: { sampleSize: sample.length, seconds: fitSeconds },
    scoring: { customers: inputs.length, scored, customersPerSecond: inputs.length / scoreSeconds },
  };
}

/**
 * Runs the nightly job and follows it to its end. Its wall time is the run's own record (startedAt to
 * finishedAt in job_runs): under `wrangler dev` a status read of a running Workflow instance can block
 * for minutes, so the time the bench waited overstates it. The worker's resident memory is sampled
 * every second meanwhile, on a timer of its own, and its peak kept.
 */
export async function runNightly(url: string) {
  const headers = { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` };
  let peakRssBytes = descendantProcesses("workerd")?.rssBytes ?? 0;
  const sampler = setInterval(() => {
    peakRssBytes = Math.max(peakRssBytes, descendantProcesses("workerd")?.rssBytes ?? 0);
  }, nightlyPollMs);
  const started = performance.now();
  try {
    // The route waits up to two minutes itself; a longer run is then followed by its id.
    const response = await requestWithoutTimeout("POST", `${url}/v1/admin/jobs/nightly?wait=1`, headers);
    if (response.status !== 200 && response.status !== 202)
      throw new Error(`POST /v1/admin/jobs/nightly answered ${response.status}: ${response.body}`);
    let view = (JSON.parse(response.body) as { data: NightlyView }).data;
    while (!["done", "errored", "terminated"].includes(view.status)) {
      await new Promise((resolve) => setTimeout(resolve, nightlyPollMs));
      const poll = await requestWithoutTimeout("GET", `${url}/v1/admin/jobs/nightly/${view.runId}`, headers);
      if (poll.status === 200) view = (JSON.parse(poll.body) as { data: NightlyView }).data;
    }
    const processes = descendantProcesses("workerd");
    return {
      status: view.status,
      error: view.error ?? null,
      customers: view.processed,
      seconds:
        view.startedAt && view.finishedAt
          ? (Date.parse(view.finishedAt) - Date.parse(view.startedAt)) / 1000
          : (performance.now() - started) / 1000,
      waitedSeconds: (performance.now() - started) / 1000,
      // The sampled peak, and the kernel's high-water mark of the worker's processes since they started.
      peakRssBytes: processes ? Math.max(peakRssBytes, processes.peakRssBytes) : null,
    };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * One request with no client-side time limit (fetch gives up on headers after 300 s, and a status read
 * of a running Workflow under `wrangler dev` can block until the run ends).
 */
function requestWithoutTimeout(method: string, url: string, headers: Record<string, string>) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const request = httpRequest(url, { method, headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end();
  });
}

interface NightlyView {
  runId: string;
  status: string;
  processed: number;
  startedAt: string | null;
  finishedAt: string | null;
  error?: string | null;
}

async function runSize(size: number, options: Options) {
  const { persistDir, proxy } = await freshLocalD1("scale");
  try {
    let seeded: Seeded;
    let ingestion: Awaited<ReturnType<typeof measureIngestion>>;
    let models: Awaited<ReturnType<typeof measureModels>>;
    try {
      console.log(`seeding ${size} customers`);
      seeded = await seedCustomers(proxy.env.DB, size);
      // Each figure is printed as soon as it is measured, so a run that stops part-way still tells.
      console.log(
        `seeded ${seeded.customers} customers (${kindsLine(seeded.kinds)}), ${seeded.orders} orders, ${seeded.lines} lines in ${seeded.seconds.toFixed(0)} s; ${(seeded.databaseBytes / seeded.customers / 1024).toFixed(1)} KiB per customer (${(seeded.databaseBytes / 1e6).toFixed(0)} MB)`,
      );
      const products = generateProducts({ seed });
      ingestion = await measureIngestion(proxy.env.DB, seeded.customers, products);
      console.log(`in-process ingestion: ${JSON.stringify(ingestion)}`);
      models = await measureModels(proxy.env.DB);
      console.log(`models: ${JSON.stringify(models)}`);
    } finally {
      await proxy.dispose();
    }
    const tables = await tableBytes(persistDir);
    const worker = await startDevWorker({ persistDir, vars: { RATE_LIMITS: "off" }, timeoutMs: 180_000 });
    try {
      const nightly = await runNightly(worker.url);
      console.log(`nightly job: ${JSON.stringify(nightly)}`);
      const httpIngestion = await measureHttpIngestion(worker.url, seeded.customers, generateProducts({ seed }));
      console.log(`POST /v1/orders: ${JSON.stringify(httpIngestion)}`);
      const recommendations = await measureRecommendations(worker.url, seeded.customers, options);
      return {
        customers: seeded.customers,
        kinds: seeded.kinds,
        orders: seeded.orders,
        lines: seeded.lines,
        seedSeconds: seeded.seconds,
        storage: {
          databaseBytes: seeded.databaseBytes,
          bytesPerCustomer: seeded.databaseBytes / seeded.customers,
          tables,
        },
        ingestion: { inProcess: ingestion, http: httpIngestion },
        models,
        nightly,
        recommendations,
      };
    } finally {
      await worker.stop();
    }
  } finally {
    rmSync(persistDir, { recursive: true, force: true });
  }
}

/** How many customers of each kind a base holds, in words. */
export const kindsLine = (kinds: Record<SeededKind, number>) =>
  `${kinds.web} web only, ${kinds.store} store only with a loyalty card, ${kinds.both} with both`;

/** A side's figures, with the worker's CPU time per request when /proc can be read. */
export const withCpu = (result: RoundResult) =>
  `${fmt(result)}${result.cpuMsPerRequest === null ? "" : `, worker CPU ${result.cpuMsPerRequest.toFixed(2)} ms/request`}${
    result.diskKiBPerRequest === null ? "" : `, read from disk ${result.diskKiBPerRequest.toFixed(1)} KiB/request`
  }`;

export default async function scaleBench(args: string[]) {
  // With customer data in shards: the same figures from the shard route bench (tests/bench/shard/route.ts).
  if (args.includes("--shards")) {
    const { default: shardBench } = await import("./shard.bench.ts");
    return shardBench(["--route", ...args]);
  }
  const options = parseOptions(args);
  const results = [];
  for (const size of options.sizes) {
    if (!Number.isInteger(size) || size <= 0) throw new Error(`--sizes takes positive customer counts, got ${size}`);
    const result = await runSize(size, options);
    results.push(result);
    const { recommendations: r, storage } = result;
    const { inProcess: i, http: h } = result.ingestion;
    console.log(
      `customers ${result.customers} (${kindsLine(result.kinds)}; ${result.orders} orders, ${result.lines} lines); ${(storage.bytesPerCustomer / 1024).toFixed(1)} KiB per customer (${(storage.databaseBytes / 1e6).toFixed(0)} MB)`,
    );
    console.log(
      `POST /v1/orders, batches of ${h.batchSize}: existing customers ${h.existingCustomers.ordersPerSecond.toFixed(0)} orders/s; replay ${h.replay.ordersPerSecond.toFixed(0)} orders/s; new customers ${h.newCustomers.ordersPerSecond.toFixed(0)} orders/s; ${crossChannelLine(h.crossChannel)}`,
    );
    console.log(
      `rows written per order (in-process ingestOrders): existing customers ${i.existingCustomers.rowsWrittenPerOrder.toFixed(1)}, new customers ${i.newCustomers.rowsWrittenPerOrder.toFixed(1)}, replay ${i.replay.rowsWrittenPerOrder.toFixed(1)}; a full rebuild of one customer's totals ${i.rebuildRowsPerCustomer.toFixed(1)} rows; ${crossChannelLine(i.crossChannel)}`,
    );
    const { models: m, nightly: n } = result;
    console.log(
      `nightly job: ${n.status}, ${n.customers} customers in ${n.seconds.toFixed(1)} s (${(n.customers / n.seconds).toFixed(0)} customers/s), peak memory of the worker's processes ${n.peakRssBytes === null ? "unknown" : `${(n.peakRssBytes / 1e6).toFixed(0)} MB`}`,
    );
    console.log(
      `BG/NBD + Gamma-Gamma fit on ${m.fit.sampleSize} customers: ${m.fit.seconds.toFixed(2)} s; scoring (scoreCustomer, in-process): ${m.scoring.customersPerSecond.toFixed(0)} customers/s`,
    );
    printComparison(r);
  }
  writeResults(options.out, options, results);
}

/** The cross-channel stream in one line: orders/s, and rows written per order where they were counted. */
export function crossChannelLine(figures: Awaited<ReturnType<typeof crossChannelSteps>>) {
  const one = (name: string, step: { ordersPerSecond: number; rowsWrittenPerOrder?: number }) =>
    `${name} ${step.ordersPerSecond.toFixed(0)} orders/s${step.rowsWrittenPerOrder === undefined ? "" : `, ${step.rowsWrittenPerOrder.toFixed(1)} rows/order`}`;
  return `cross-channel customers (web account + email, then a store card alone, then both: a merge): ${[
    one("all", figures.all),
    one("web", figures.web),
    one("store", figures.store),
    one("join", figures.join),
  ].join("; ")}`;
}

type Comparison = Awaited<ReturnType<typeof measureRecommendations>>;

/** One size's comparison of the recommendations route with the bare read, as both benches print it. */
export function printComparison(r: Comparison, indent = "") {
  const rounds = (ratios: readonly number[]) => ratios.map((x) => x.toFixed(2)).join(", ");
  const quartiles = (ratios: readonly number[]) => {
    const sorted = [...ratios].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.floor(q * (sorted.length - 1))] ?? Number.NaN;
    return `${at(0.25).toFixed(2)}–${at(0.75).toFixed(2)}`;
  };
  const cache = r.droppedPageCache ? "page cache dropped before" : "page cache as found";
  console.log(`${indent}first visits (${r.shoppers} distinct shoppers, in order, from the first; ${cache}):`);
  console.log(`${indent}  baseline single-row D1 read: ${withCpu(r.baseline)}`);
  console.log(`${indent}  GET /v1/recommendations:     ${withCpu(r.recommendations)}`);
  console.log(
    `${indent}  ratio recommendations / baseline: ${r.ratio.toFixed(2)} (median of ${r.rounds} rounds: ${rounds(r.ratios)})`,
  );
  if (r.coldFloor) {
    console.log(`${indent}  cold single-row D1 read (each shopper's own row): ${withCpu(r.coldFloor.baseline)}`);
    console.log(
      `${indent}  ratio recommendations / cold read: ${r.coldFloor.ratio.toFixed(2)} (median of ${r.rounds} rounds: ${rounds(r.coldFloor.ratios)})`,
    );
  }
  const repeat = r.repeatVisits;
  console.log(`${indent}repeat visits (the same shoppers again):`);
  console.log(`${indent}  baseline single-row D1 read: ${withCpu(repeat.baseline)}`);
  console.log(`${indent}  GET /v1/recommendations:     ${withCpu(repeat.recommendations)}`);
  console.log(
    `${indent}  ratio recommendations / baseline: ${repeat.ratio.toFixed(2)} (median of ${r.repeatRounds} rounds, quartiles ${quartiles(repeat.ratios)}: ${rounds(repeat.ratios)})`,
  );
}

/** Prints each size's ratio against the smallest size's (the flatness figure) and writes everything as JSON. */
export function writeResults(
  out: string,
  options: object,
  results: readonly { customers: number; recommendations: Comparison }[],
) {
  const first = results[0];
  const summary = results.map(({ customers, recommendations: r }) => ({
    customers,
    ratio: r.ratio,
    ratioOfSmallest: first ? r.ratio / first.recommendations.ratio : 1,
    ...(r.coldFloor ? { coldRatio: r.coldFloor.ratio } : {}),
    repeatRatio: r.repeatVisits.ratio,
    repeatRatioOfSmallest: first ? r.repeatVisits.ratio / first.recommendations.repeatVisits.ratio : 1,
  }));
  const bySize = (
    ratio: (s: (typeof summary)[number]) => number,
    ofSmallest: (s: (typeof summary)[number]) => number,
  ) =>
    summary.map((s) => `${s.customers}: ${ratio(s).toFixed(2)} (${ofSmallest(s).toFixed(2)}x the smallest)`).join("; ");
  console.log(
    `ratios by size, first visits: ${bySize(
      (s) => s.ratio,
      (s) => s.ratioOfSmallest,
    )}`,
  );
  if (summary.every((s) => s.coldRatio !== undefined))
    console.log(
      `ratios by size, first visits to the cold read: ${bySize(
        (s) => s.coldRatio ?? 0,
        (s) => (s.coldRatio ?? 0) / (summary[0]?.coldRatio ?? 1),
      )}`,
    );
  console.log(
    `ratios by size, repeat visits: ${bySize(
      (s) => s.repeatRatio,
      (s) => s.repeatRatioOfSmallest,
    )}`,
  );
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ measuredAt: new Date().toISOString(), options, results, summary }, null, 2)}\n`,
  );
  console.log(`written ${out}`);
}
