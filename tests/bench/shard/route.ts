// `npm run bench -- shard --route`: the real GET /v1/recommendations for many distinct known shoppers,
// with customer data in customer shards (SHARD_COUNT, 16 by default), next to a bare single-row D1
// read in the same run, under wrangler's dev server (workerd, local D1, local Durable Objects). For each
// size it loads the scale bench's generated customers (its mixed base: baseMix) directly into their
// shards (each customer with the rows ingestion leaves, in the home shard of its account key, or of its
// loyalty card's for a store-only customer, as design rule 5 places a new region, with each held key's
// directory entry and its orders' entries at their homes; customer ids homed there), the catalog into
// D1, and
// models fitted by the nightly job's own fit steps in shard 0 into D1's model_params (a stand-in for
// the nightly job, which is not run). It then measures exactly as the scale bench does
// (measureRecommendations: five rounds of alternating blocks, fifteen for repeat visits, the round with
// the median ratio, the worker's CPU per request from /proc), with a third side in the first visits,
// the cold floor: a bare single-row read of a D1 table holding a row per customer (filled once per
// base), each shopper's own row, from disk as the shopper's pages are. It reports bytes per customer across the shards. Then, as the
// scale bench does on D1, it posts new orders through POST /v1/orders (the router: existing customers,
// a replay, new customers) and runs the nightly job over the shards (wall time, peak memory).
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { get as httpGet } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { unstable_startWorker } from "wrangler";
import type { ShardsStatusView } from "../../../cli/commands/shards.ts";
import { progressBar } from "../../../cli/import/progress.ts";
import { jsonEach, runBatch } from "../../../db/batch.ts";
import * as schema from "../../../db/schema.ts";
import { generateProducts } from "../../../db/seed/generate.ts";
import { customerIdHomedAt, homeShard } from "../../../worker/core/shards/placement.ts";
import type { Db } from "../../../worker/env.ts";
import { signShopperToken } from "../../../worker/http/shopper-token.ts";
import { type HashedIdentity, hashIdentifiers } from "../../../worker/identity/identity.keys.ts";
import { upsertProducts } from "../../../worker/orders/products.repo.ts";
import { recommendationsResponseSchema } from "../../../worker/recommendations/recommendations.schemas.ts";
import type { RebalanceView } from "../../../worker/shards/rebalance-view.ts";
import { applyMigrations, freePort, testSecrets } from "../../fixtures/wrangler-dev.ts";
import { accountHolderFrom, accountOf, type SeededKind } from "../base-mix.ts";
import {
  customerRowsStatements,
  generatedCustomers,
  identitiesOf,
  kindsLine,
  measureHttpIngestion,
  measureRecommendations,
  type Options,
  runNightly,
  type SeedCustomer,
} from "../scale.bench.ts";

const root = path.resolve(import.meta.dirname, "../../..");
/** Customers written per shard batch while loading. */
const loadBatchCustomers = 250;
/** Shard batches in flight at once while loading, so generating the next rows overlaps writing these. */
const loadConcurrency = 4;
/** How long one shard's size may take to answer before the size is read from its files instead. */
const sizeReadTimeoutMs = 120_000;

/** D1's statement interface (prepare, bind, batch) over the bench worker's loader: into D1 or shard `index`. */
function remoteD1(url: string, into: "d1" | "shard", index = 0): D1Database {
  const statement = (text: string, params: unknown[] = []) => ({
    sql: text,
    params,
    bind: (...values: unknown[]) => statement(text, values),
  });
  return {
    prepare: (text: string) => statement(text),
    batch: async (statements: { sql: string; params: unknown[] }[]) => {
      const response = await fetch(`${url}/bench/load?into=${into}&shard=${index}`, {
        method: "POST",
        body: JSON.stringify(statements.map(({ sql: text, params }) => ({ sql: text, params }))),
      });
      if (!response.ok) throw new Error(`loading into ${into} ${index}: ${response.status} ${await response.text()}`);
      return response.json();
    },
  } as unknown as D1Database;
}

/** Deterministic hex for customer ids (the same run gives the same ids). */
function hexStream(label: string) {
  let n = 0;
  return () => createHash("sha256").update(`${label}:${n++}`).digest("hex");
}

/**
 * Loads `size` generated customers into the home shards of the keys they are placed by (their account's,
 * else their loyalty card's), the catalog into D1 (and shard 0, for the fit).
 */
async function loadCustomers(url: string, size: number, shards: number) {
  const now = new Date();
  const at = now.toISOString();
  const products = generateProducts({ seed: 11 }).map((product) => ({ ...product, active: true }));
  for (const into of ["d1", "shard"] as const)
    await upsertProducts(drizzle(remoteD1(url, into, 0), { schema }) as unknown as Db, products, now);
  const pending = new Map<number, SeedCustomer[]>();
  const ids = hexStream("route-bench");
  const bar = progressBar(size, "customers");
  const started = performance.now();
  let customers = 0;
  const kinds: Record<SeededKind, number> = { web: 0, store: 0, both: 0 };
  let orders = 0;
  const inFlight = boundedFlight(loadConcurrency);
  const flush = async (shard: number) => {
    const batch = pending.get(shard) ?? [];
    if (batch.length === 0) return;
    pending.set(shard, []);
    // Every key a customer holds (verified: the unverified email is found by nobody) has its directory
    // entry at the key's home, naming this shard; an order stored away from its id's home has its entry
    // there, as the router writes them.
    const held = batch.flatMap((customer) =>
      customer.identities.filter((identity) => identity.trust === "verified").map((identity) => identity.key),
    );
    const heldHere = held.filter((key) => homeShard(key, shards) === shard);
    // One transaction in the shard: after a restart it either holds the batch's first customer or nothing.
    await withRetries(
      () =>
        runBatch({ $client: remoteD1(url, "shard", shard) }, [
          ...customerRowsStatements(batch, at),
          // The placing key's directory entry at its home (this shard): its region is here.
          sql`INSERT INTO shard_directory (key, shard, updated_at) SELECT value, ${shard}, ${at} FROM ${jsonEach(heldHere)}`,
        ]),
      () => hasCustomer(url, shard, (batch[0] as SeedCustomer).customerId),
    );
    const entries = byHome(
      [
        ...held.filter((key) => homeShard(key, shards) !== shard),
        ...batch.flatMap((customer) => customer.orders.map((order) => `order:${order.id}`)),
      ],
      shards,
      shard,
    );
    await Promise.all(
      [...entries].map(([home, keys]) =>
        withRetries(() =>
          runBatch({ $client: remoteD1(url, "shard", home) }, [
            sql`INSERT OR IGNORE INTO shard_directory (key, shard, updated_at) SELECT value, ${shard}, ${at} FROM ${jsonEach(keys)}`,
          ]),
        ),
      ),
    );
    customers += batch.length;
    bar.update(customers);
  };
  for (const { index, kind, orders: customerOrders } of generatedCustomers(size, at.slice(0, 10))) {
    if (customerOrders.length === 0) continue;
    const identities = await identitiesOf(index);
    const shard = homeShard((identities[0] as HashedIdentity).key, shards);
    const customerId = customerIdHomedAt(shard, shards, ids);
    const batch = pending.get(shard) ?? [];
    batch.push({ customerId, identities, orders: customerOrders });
    pending.set(shard, batch);
    kinds[kind]++;
    orders += customerOrders.length;
    if (batch.length >= loadBatchCustomers) await inFlight.add(flush(shard));
  }
  for (const shard of pending.keys()) await inFlight.add(flush(shard));
  await inFlight.drain();
  bar.stop();
  const fitStarted = performance.now();
  const fit = await fetch(`${url}/bench/fit?shard=0`);
  if (!fit.ok) throw new Error(`fitting the models: ${fit.status} ${await fit.text()}`);
  console.log(`models fitted on shard 0's customers in ${((performance.now() - fitStarted) / 1000).toFixed(1)} s`);
  return { customers, kinds, orders, seconds: (performance.now() - started) / 1000 };
}

/** The key of customer `index`'s row in the cold floor's table: random order, as customer ids are. */
const floorKey = (index: number) => createHash("sha256").update(`floor:${index}`).digest("hex").slice(0, 32);

/** Rows per statement while filling the cold floor's table. */
const floorBatch = 10_000;

/**
 * Fills D1's `bench_floor` with a row per customer (`size` rows of about a summary row's size, 200
 * characters of random hex), unless a kept base has them: the table the cold single-row read reads.
 */
async function fillFloor(url: string, size: number) {
  const rowsNow = async () => ((await getJson(`${url}/bench/floor-rows`)) as { rows: number }).rows;
  if ((await rowsNow()) >= size) return;
  const d1 = remoteD1(url, "d1");
  await d1.batch([d1.prepare("CREATE TABLE IF NOT EXISTS bench_floor (id TEXT PRIMARY KEY, body TEXT NOT NULL)")]);
  const bar = progressBar(size, "floor rows");
  for (let from = 0; from < size; from += floorBatch) {
    const keys = Array.from({ length: Math.min(floorBatch, size - from) }, (_, k) => floorKey(from + k));
    await withRetries(() =>
      d1.batch([
        d1
          .prepare("INSERT OR IGNORE INTO bench_floor (id, body) SELECT value, hex(randomblob(100)) FROM json_each(?)")
          .bind(JSON.stringify(keys)),
      ]),
    );
    bar.update(from + keys.length);
  }
  bar.stop();
  const rows = await rowsNow();
  if (rows < size) throw new Error(`the cold floor's table holds ${rows} rows, not ${size}`);
}

/**
 * Runs a load request again when the dev server restarted under it (workerd's local runtime can drop
 * a connection over a load of this length): unless `done` says the write landed before the restart.
 */
async function withRetries(write: () => Promise<unknown>, done: () => Promise<boolean> = async () => false) {
  for (let attempt = 1; ; attempt++) {
    try {
      await write();
      return;
    } catch (error) {
      if (attempt >= 5 || !/\b503\b/.test(String((error as Error).message))) throw error;
      console.log(`\nthe dev server restarted under a load request; again (${attempt})`);
      await new Promise((resolve) => setTimeout(resolve, 2000 * attempt));
      if (await done()) return;
    }
  }
}

/** True when shard `shard` holds customer `id`. */
async function hasCustomer(url: string, shard: number, id: string): Promise<boolean> {
  const response = await fetch(`${url}/bench/has?shard=${shard}&customer=${encodeURIComponent(id)}`);
  if (!response.ok) throw new Error(`asking shard ${shard} for a customer: ${response.status}`);
  return ((await response.json()) as { found: boolean }).found;
}

/**
 * Fills customer_products in the shards where a backfill is pending, page by page as the nightly job
 * does, one shard at a time: every shard runs on the dev server's one thread, so shards filled side by
 * side would each wait for all the others. Over a base the page cache does not hold, a page reads its
 * customers' orders from disk and takes seconds; `getJson` has no client timeout.
 */
async function fillBackfills(url: string, pending: readonly number[]) {
  const started = performance.now();
  let pages = 0;
  for (const shard of pending) {
    for (let cursor: string | null = ""; cursor !== null; pages++) {
      const answer = (await getJson(
        `${url}/bench/fill-products?shard=${shard}&cursor=${encodeURIComponent(cursor)}`,
      )) as {
        next: string | null;
      };
      cursor = answer.next;
    }
    process.stdout.write(`\rfilling customer_products: shard ${shard} done (${pages} pages so far)`);
  }
  console.log(
    `\nfilled customer_products in ${pending.length} shards, ${pages} pages of 5,000 customers, in ${((performance.now() - started) / 1000).toFixed(1)} s, as the nightly job would`,
  );
}

/** GET of a JSON answer without the global fetch's five-minute wait for headers. */
function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    httpGet(url, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () =>
        response.statusCode === 200
          ? resolve(JSON.parse(body))
          : reject(new Error(`${url}: ${response.statusCode} ${body}`)),
      );
    }).on("error", reject);
  });
}

/** `keys` grouped by their home shard, leaving out those at home in `except`. */
function byHome(keys: readonly string[], shards: number, except: number): Map<number, string[]> {
  const grouped = new Map<number, string[]>();
  for (const key of keys) {
    const home = homeShard(key, shards);
    if (home !== except) grouped.set(home, [...(grouped.get(home) ?? []), key]);
  }
  return grouped;
}

/** At most `limit` promises pending: `add` waits for a free place (and rethrows the first failure). */
function boundedFlight(limit: number) {
  const pending = new Set<Promise<void>>();
  return {
    async add(work: Promise<void>) {
      const tracked: Promise<void> = work.finally(() => pending.delete(tracked));
      pending.add(tracked);
      if (pending.size >= limit) await Promise.race(pending);
    },
    async drain() {
      await Promise.all(pending);
    },
  };
}

/**
 * Bytes stored across the shards: each shard's own SQLite size, or, when a shard does not answer in
 * time, the size of the shards' SQLite files in the dev server's persistence directory (said so).
 */
async function shardBytes(url: string, shards: number, persistDir: string) {
  let bytes = 0;
  try {
    for (let shard = 0; shard < shards; shard++) {
      const response = await fetch(`${url}/bench/size?shard=${shard}`, {
        signal: AbortSignal.timeout(sizeReadTimeoutMs),
      });
      bytes += ((await response.json()) as { bytes: number }).bytes;
    }
    return { bytes, source: "databaseSize" as const };
  } catch (error) {
    console.log(`a shard's size did not arrive (${(error as Error).message}); summing its SQLite files instead`);
    return { bytes: sqliteFileBytes(persistDir), source: "files" as const };
  }
}

/** The size of every customer shard's SQLite files (database and write-ahead log) under `dir`. */
function sqliteFileBytes(dir: string, inShards = false): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) bytes += sqliteFileBytes(full, inShards || entry.name.includes("CustomerShard"));
    else if (inShards && /\.sqlite(-wal)?$/.test(entry.name)) bytes += statSync(full).size;
  }
  return bytes;
}

/** A known shopper's shelf must be personal: a shelf that found nobody would flatter the figures. */
async function probe(url: string) {
  const token = await signShopperToken(
    accountOf(accountHolderFrom(0)),
    testSecrets.SHOPPER_TOKEN_SECRET,
    3600,
    new Date(),
  );
  const response = await fetch(`${url}/v1/recommendations?limit=8&categories=4`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const body = recommendationsResponseSchema.parse(await response.json());
  if (!body.data.customerKnown || body.data.items.length === 0)
    throw new Error(`the shelf of a seeded shopper is not personal: ${JSON.stringify(body.data)}`);
}

/** What loading left in a kept directory, so a later run measures the same base without loading again. */
interface Loaded {
  customers: number;
  orders: number;
  seconds: number;
  shardBytes: number;
  bytesSource: "databaseSize" | "files";
  /** Customers of each kind (baseMix); absent in a base kept from before the mix, where each held one account. */
  kinds?: Record<SeededKind, number>;
  /** Set once a run has posted orders and run the nightly job on this base. */
  measuredAt?: string;
}

export interface RouteOptions extends Options {
  /** Keeps each loaded base in `<keep>/<size>-<shards>` and reuses it when a run finds it there. */
  keep?: string;
  /** Stops after loading (with `keep`, to measure later on a quieter machine). */
  loadOnly?: boolean;
  /** Measures the shelf and stops: no orders posted, no nightly run, so a kept base stays as loaded. */
  shelfOnly?: boolean;
  /** Does a backfill pending in a kept base at once, before measuring, in the nightly job's stead. */
  fillBackfills?: boolean;
  /** With `--reshard-to`: after the finish, a rebalance pass (timed), and the shelf measured again. */
  rebalance?: boolean;
}

/**
 * The product's worker with the bench's additions (route-worker.ts) under wrangler's dev server, on the
 * base in `persistDir` with `shards` customer shards; with `inspectorPort`, its inspector listens there.
 */
export async function startRouteWorker(persistDir: string, shards: number, inspectorPort?: number) {
  const port = await freePort();
  const vars = { HOLDOUT_SHARE: "0", RATE_LIMITS: "off", SHARD_COUNT: String(shards), ...testSecrets };
  const worker = await unstable_startWorker({
    config: path.join(root, "wrangler.toml"),
    entrypoint: path.join(root, "tests/bench/shard/route-worker.ts"),
    bindings: Object.fromEntries(
      Object.entries(vars).map(([name, value]) => [name, { type: "plain_text" as const, value }]),
    ),
    dev: {
      server: { hostname: "127.0.0.1", port },
      persist: persistDir,
      inspector: inspectorPort === undefined ? false : { port: inspectorPort },
      watch: false,
      logLevel: "warn",
    },
  });
  await worker.ready;
  return { worker, url: `http://127.0.0.1:${port}` };
}

export async function routeSize(size: number, shards: number, options: RouteOptions) {
  const persistDir = options.keep
    ? path.join(path.resolve(options.keep), `${size}-${shards}`)
    : mkdtempSync(path.join(tmpdir(), "patron-shard-route-"));
  const loadedFile = path.join(persistDir, "loaded.json");
  const kept: Loaded | undefined = existsSync(loadedFile) ? JSON.parse(readFileSync(loadedFile, "utf8")) : undefined;
  if (options.keep && !kept) rmSync(persistDir, { recursive: true, force: true });
  try {
    // A kept base gets the migrations added since it was loaded (the shards apply theirs when they start).
    mkdirSync(persistDir, { recursive: true });
    await applyMigrations(persistDir);
    const { worker, url } = await startRouteWorker(persistDir, shards);
    try {
      let loaded: Loaded;
      if (kept) {
        loaded = kept;
        console.log(`reusing the ${loaded.customers} customers loaded in ${persistDir}`);
        if (loaded.measuredAt)
          console.log(
            `  (measured before, at ${loaded.measuredAt}: the base also holds that run's posted orders and nightly scores)`,
          );
      } else {
        console.log(`loading ${size} customers into ${shards} shards`);
        const load = await loadCustomers(url, size, shards);
        const stored = await shardBytes(url, shards, persistDir);
        loaded = { ...load, shardBytes: stored.bytes, bytesSource: stored.source };
        if (options.keep) writeFileSync(loadedFile, JSON.stringify(loaded));
      }
      console.log(
        `${loaded.customers} customers (${loaded.kinds ? kindsLine(loaded.kinds) : "each with one account: kept from before the mixed base"}; ${loaded.orders} orders) loaded in ${loaded.seconds.toFixed(0)} s; ${(loaded.shardBytes / loaded.customers / 1024).toFixed(1)} KiB per customer across the shards (${loaded.bytesSource})`,
      );
      if (options.loadOnly) return undefined;
      // Every shard started (and any migration added since the base was kept applied) before measuring;
      // a backfill such a migration left pending is said, and with --fill-backfills done first.
      const pending: number[] = [];
      for (let shard = 0; shard < shards; shard++) {
        const response = await fetch(`${url}/bench/backfill?shard=${shard}`);
        if (!response.ok) throw new Error(`starting shard ${shard}: ${response.status} ${await response.text()}`);
        if (((await response.json()) as { pending: boolean }).pending) pending.push(shard);
      }
      if (pending.length > 0 && options.fillBackfills) await fillBackfills(url, pending);
      else if (pending.length > 0)
        console.log(
          `a backfill is pending in ${pending.length} shards: the shelf reads products from the orders, as before customer_products (--fill-backfills fills it first)`,
        );
      await probe(url);
      await fillFloor(url, loaded.customers);
      const recommendations = await measureRecommendations(url, loaded.customers, options, (shopper) =>
        fetch(`${url}/bench/floor?id=${floorKey(shopper)}`),
      );
      // After the shelf: its count reads every shard's customers index, which would warm first visits.
      const status = await shardsStatus(url);
      if (options.shelfOnly)
        return {
          customers: loaded.customers,
          kinds: loaded.kinds ?? null,
          orders: loaded.orders,
          shards,
          reusedBase: Boolean(kept),
          recommendations,
          status,
        };
      // After the shelf, so its figures are of the loaded base alone: the router's ingestion, then the
      // nightly job over the shards (which replaces the stand-in models with its own fit).
      const ingestion = await measureHttpIngestion(url, loaded.customers, generateProducts({ seed: 11 }));
      console.log(`POST /v1/orders through the shards: ${JSON.stringify(ingestion)}`);
      const nightly = await runNightly(url);
      console.log(`nightly job over the shards: ${JSON.stringify(nightly)}`);
      if (options.keep) writeFileSync(loadedFile, JSON.stringify({ ...loaded, measuredAt: new Date().toISOString() }));
      return {
        customers: loaded.customers,
        kinds: loaded.kinds ?? null,
        orders: loaded.orders,
        shards,
        loadSeconds: loaded.seconds,
        reusedBase: Boolean(kept),
        storage: {
          shardBytes: loaded.shardBytes,
          bytesPerCustomer: loaded.shardBytes / loaded.customers,
          source: loaded.bytesSource,
        },
        recommendations,
        status,
        ingestion,
        nightly,
      };
    } finally {
      await worker.dispose();
    }
  } finally {
    if (!options.keep) rmSync(persistDir, { recursive: true, force: true });
  }
}

interface ReshardView {
  phase: string;
  scanned: number;
  total: number;
  written: number;
  removed: number;
  drained: number;
  drainMoves: number;
  drainPasses: number;
}

/** Steps `POST /v1/admin/shards/reshard` until `until` (a phase); its wall time, steps and the last answer. */
async function reshardUntil(url: string, to: number, until: string, label: string) {
  const started = performance.now();
  let bar: ReturnType<typeof progressBar> | null = null;
  let view: ReshardView;
  let steps = 0;
  do {
    // A step is run again when the dev server restarted under it (see withRetries): the walk's
    // position moves only once a page is written, so a step run twice redoes one page's upserts.
    let response: Response;
    for (let attempt = 1; ; attempt++) {
      response = await fetch(`${url}/v1/admin/shards/reshard`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
        body: JSON.stringify({ to, limit: 2000 }),
      });
      if (response.ok || attempt >= 5 || !/restarted mid-request/.test(await response.clone().text())) break;
      console.log(`the dev server restarted during a reshard step: running it again (attempt ${attempt + 1})`);
    }
    if (!response.ok) throw new Error(`reshard step: ${response.status} ${await response.text()}`);
    ({ data: view } = (await response.json()) as { data: ReshardView });
    steps++;
    bar ??= progressBar(view.total, label);
    bar.update(Math.min(view.scanned, view.total));
  } while (view.phase !== until);
  bar?.stop();
  return { seconds: (performance.now() - started) / 1000, steps, view };
}

/**
 * `GET /v1/admin/shards` (`patron shards status`), three times: each call asks every shard to count its
 * customers (an index walk) and size its database. Its wall times, and what the last call answered.
 */
async function shardsStatus(url: string) {
  const seconds: number[] = [];
  let view: ShardsStatusView | undefined;
  for (let call = 0; call < 3; call++) {
    const started = performance.now();
    const response = await fetch(`${url}/v1/admin/shards`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    if (!response.ok) throw new Error(`shards status: ${response.status} ${await response.text()}`);
    ({ data: view } = (await response.json()) as { data: ShardsStatusView });
    seconds.push((performance.now() - started) / 1000);
  }
  const status = {
    seconds,
    shards: view!.count,
    customers: view!.totals.customers,
    bytes: view!.totals.bytes,
    spread: view!.spread,
    unanswered: view!.unanswered.length,
  };
  console.log(
    `patron shards status (GET /v1/admin/shards): ${seconds.map((s) => `${s.toFixed(2)} s`).join(", ")} for ${status.customers} customers in ${status.shards} shards (spread ${status.spread?.toFixed(2)}, ${status.unanswered} unanswered)`,
  );
  return status;
}

/** Steps `POST /v1/admin/shards/rebalance` to the end of a pass; its wall time, steps and the last answer. */
async function rebalancePass(url: string) {
  const started = performance.now();
  let bar: ReturnType<typeof progressBar> | null = null;
  let view: RebalanceView;
  let steps = 0;
  do {
    const response = await fetch(`${url}/v1/admin/shards/rebalance`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
      body: JSON.stringify({ limit: 1000 }),
    });
    if (!response.ok) throw new Error(`rebalance step: ${response.status} ${await response.text()}`);
    ({ data: view } = (await response.json()) as { data: RebalanceView });
    steps++;
    bar ??= progressBar(view.total, "customers visited");
    bar.update(Math.min(view.scanned, view.total), { note: `${view.moved} moved` });
  } while (!view.done);
  bar?.stop();
  return { seconds: (performance.now() - started) / 1000, steps, view };
}

/**
 * `--reshard-to M`: grows (or shrinks) a copy of the kept base of `size` customers in `from` shards to
 * `to` shards as `npx patron shards reshard` does (shrinking, the drain; walk, switch, finish), timing
 * each phase, and measures the
 * shelf against the bare read before the reshard and after the switch, in the same run: a shopper
 * whose account key's home moved to a new shard costs one forward more. With `rebalance`, a rebalance
 * pass then moves those shoppers' regions to their homes, and the shelf is measured again. The kept
 * base is not changed.
 */
export async function reshardSize(size: number, from: number, to: number, options: RouteOptions) {
  if (!options.keep) throw new Error("--reshard-to needs --keep DIR holding a base loaded with --shards");
  const base = path.join(path.resolve(options.keep), `${size}-${from}`);
  const loadedFile = path.join(base, "loaded.json");
  if (!existsSync(loadedFile))
    throw new Error(`no base of ${size} customers in ${from} shards in ${base}: load one with --keep first`);
  const loaded: Loaded = JSON.parse(readFileSync(loadedFile, "utf8"));
  const persistDir = mkdtempSync(path.join(path.dirname(base), `reshard-${size}-${from}-${to}-`));
  try {
    console.log(`copying the base of ${loaded.customers} customers (${base})`);
    cpSync(base, persistDir, { recursive: true });
    await applyMigrations(persistDir);
    let { worker, url } = await startRouteWorker(persistDir, from);
    let before: Awaited<ReturnType<typeof measureRecommendations>>;
    let walk: Awaited<ReturnType<typeof reshardUntil>>;
    let drain: Awaited<ReturnType<typeof reshardUntil>> | null = null;
    try {
      await probe(url);
      await fillFloor(url, loaded.customers);
      before = await measureRecommendations(url, loaded.customers, options, (shopper) =>
        fetch(`${url}/bench/floor?id=${floorKey(shopper)}`),
      );
      // Shrinking, the drain first: every customer of the shards removed moves to one that stays.
      if (to < from) drain = await reshardUntil(url, to, "copying", "customers visited (drain)");
      walk = await reshardUntil(url, to, "prepared", "rows walked");
    } finally {
      await worker.dispose();
    }
    ({ worker, url } = await startRouteWorker(persistDir, to));
    try {
      await probe(url);
      const after = await measureRecommendations(url, loaded.customers, options, (shopper) =>
        fetch(`${url}/bench/floor?id=${floorKey(shopper)}`),
      );
      const finish = await reshardUntil(url, to, "done", to < from ? "shards finished" : "entries checked");
      await probe(url);
      const keys = await Promise.all(
        Array.from({ length: 2000 }, async (_, k) => {
          // The shoppers: customers holding an account.
          const index = accountHolderFrom(Math.floor((k * loaded.customers) / 2000));
          return (await hashIdentifiers({ account: accountOf(index) }, testSecrets.IDENTITY_HASH_SECRET)).identities[0]!
            .key;
        }),
      );
      const forwarded = keys.filter((key) => homeShard(key, to) >= from).length / keys.length;
      let rebalanced: { pass: Awaited<ReturnType<typeof rebalancePass>>; recommendations: typeof after } | null = null;
      if (options.rebalance) {
        const pass = await rebalancePass(url);
        await probe(url);
        const recommendations = await measureRecommendations(url, loaded.customers, options, (shopper) =>
          fetch(`${url}/bench/floor?id=${floorKey(shopper)}`),
        );
        rebalanced = { pass, recommendations };
      }
      const status = await shardsStatus(url);
      return {
        customers: loaded.customers,
        orders: loaded.orders,
        from,
        to,
        /** Shrinking: moving every customer out of the shards removed, under the old count. */
        drain: drain && {
          seconds: drain.seconds,
          steps: drain.steps,
          customersMoved: walk.view.drained,
          moves: walk.view.drainMoves,
          passes: walk.view.drainPasses,
          customersPerSecond: walk.view.drained / drain.seconds,
        },
        walk: {
          seconds: walk.seconds,
          steps: walk.steps,
          rows: walk.view.scanned,
          rowsPerSecond: walk.view.scanned / walk.seconds,
          entriesWritten: walk.view.written,
        },
        finish: { seconds: finish.seconds, steps: finish.steps, entriesRemoved: finish.view.removed },
        shoppersForwarded: forwarded,
        before,
        /** After the switch. */
        recommendations: after,
        rebalance: rebalanced && {
          seconds: rebalanced.pass.seconds,
          steps: rebalanced.pass.steps,
          customersVisited: rebalanced.pass.view.scanned,
          customersMoved: rebalanced.pass.view.moved,
          moves: rebalanced.pass.view.moves,
          busy: rebalanced.pass.view.busy,
          tooLarge: rebalanced.pass.view.tooLarge,
          customersPerSecond: rebalanced.pass.view.scanned / rebalanced.pass.seconds,
          /** The shelf after the pass. */
          recommendations: rebalanced.recommendations,
        },
        /** After the finish (and the pass), under the new count. */
        status,
      };
    } finally {
      await worker.dispose();
    }
  } finally {
    rmSync(persistDir, { recursive: true, force: true });
  }
}
