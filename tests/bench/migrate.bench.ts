// The move of a single-database deployment into customer shards (docs/scaling.md, from one database to
// shards), on D1 bases seeded directly as the scale bench seeds them (each generated customer one
// Patron customer, known by a web account, a store loyalty card or both: its baseMix). For each size, under `wrangler dev` with SHARD_COUNT=0:
// - a full pass (`POST /v1/admin/shards/migrate` until done, what `npx patron shards migrate` repeats)
//   and its check (`GET /v1/admin/shards/migrate?verify=true`: every customer table's rows in D1 and
//   the shards);
// - then, with every time D1 keeps moved back two days and the pass's start one (the worker stopped),
//   as a pass a day old over older data: new orders of `--changes` existing customers and of as many
//   new ones, `--erasures` erasures, and a catch-up pass, each phase timed, and the check again.
// The baseline is the full pass of the same run: the catch-up's time is printed against it.
// Usage: npm run bench -- migrate [--sizes 10000,100000] [--shards 16] [--limit 100] [--changes 1000]
//   [--erasures 10] [--out file.json]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { getPlatformProxy } from "wrangler";
import { countMismatches, type MigrationView, type StatusView } from "../../cli/commands/shards.ts";
import { generateProducts } from "../../db/seed/generate.ts";
import { customerTimesAged, d1TimesAged } from "../fixtures/aged-times.ts";
import { applyMigrations, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import { accountHolderFrom, accountOf } from "./base-mix.ts";
import { benchOrders, seedCustomers } from "./scale.bench.ts";

const root = path.resolve(import.meta.dirname, "../..");
const seed = 11;

interface Options {
  sizes: number[];
  shards: number;
  limit: number;
  changes: number;
  erasures: number;
  out: string;
}

function parseOptions(args: string[]): Options {
  const value = (name: string, fallback: string) => {
    const index = args.indexOf(`--${name}`);
    return index >= 0 ? (args[index + 1] ?? fallback) : fallback;
  };
  const whole = (name: string, fallback: string, min: number) => {
    const n = Number(value(name, fallback));
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} takes a whole number from ${min}, got ${n}`);
    return n;
  };
  const sizes = value("sizes", "10000").split(",").map(Number);
  if (sizes.some((size) => !Number.isInteger(size) || size < 100))
    throw new Error(`--sizes takes customer counts of 100 or more, got ${sizes.join(",")}`);
  return {
    sizes,
    shards: whole("shards", "16", 1),
    limit: whole("limit", "100", 1),
    changes: whole("changes", "1000", 0),
    erasures: whole("erasures", "10", 0),
    out: path.resolve(value("out", path.join(root, ".wrangler/bench/migrate.json"))),
  };
}

/** One admin or API call; a 503 (busy, or the local worker restarted) is tried again, as the CLI's client does. */
async function call(url: string, method: string, route: string, key: string, body?: unknown) {
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${url}${route}`, {
      method,
      headers: {
        Authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status === 503 && attempt < 5) {
      console.log(`${method} ${route} answered 503, trying again: ${text.slice(0, 200)}`);
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
      continue;
    }
    if (!response.ok) throw new Error(`${method} ${route} answered ${response.status}: ${text.slice(0, 500)}`);
    return JSON.parse(text) as { data: unknown };
  }
}

/** Steps a pass to its end; its time, and each phase's (a step counts under the phase it ran in). */
async function migrateToEnd(url: string, options: Options) {
  const started = performance.now();
  const phases: Record<string, number> = {};
  let running: string | null = null;
  let steps = 0;
  let view: MigrationView;
  do {
    const stepStarted = performance.now();
    ({ data: view } = (await call(url, "POST", "/v1/admin/shards/migrate", testSecrets.PATRON_ADMIN_KEY, {
      shards: options.shards,
      limit: options.limit,
    })) as { data: MigrationView });
    steps++;
    // The first step of a pass starts it (a full pass's copy, a catch-up's collect).
    const phase: string = running ?? (view.mode === "full" ? "copy" : "collect");
    phases[phase] = (phases[phase] ?? 0) + (performance.now() - stepStarted) / 1000;
    running = view.phase ?? "copy";
  } while (!view.done);
  return { seconds: (performance.now() - started) / 1000, steps, phases, view };
}

/** The check: the tables whose rows differ between D1 and the shards' sum (what `patron shards migrate` prints). */
async function verify(url: string) {
  const { data } = (await call(url, "GET", "/v1/admin/shards/migrate?verify=true", testSecrets.PATRON_ADMIN_KEY)) as {
    data: StatusView;
  };
  const differing = countMismatches(data.counts);
  return { equal: differing.length === 0, differing, d1: data.counts.d1, changedSince: data.changedSince };
}

/** Every time D1 keeps moved back two days, and the last pass's start one: a pass a day old over older data. */
async function ageDatabase(persistDir: string) {
  const proxy = await getPlatformProxy<{ DB: D1Database }>({
    configPath: path.join(root, "wrangler.toml"),
    persist: { path: path.join(persistDir, "v3") },
  });
  try {
    const dayAgo = new Date(Date.now() - 86_400_000).toISOString();
    await proxy.env.DB.batch([
      ...[...customerTimesAged, ...d1TimesAged].map((query) => proxy.env.DB.prepare(query)),
      proxy.env.DB.prepare("UPDATE shard_migration SET started_at = ?").bind(dayAgo),
    ]);
  } finally {
    await proxy.dispose();
  }
}

/** New orders of `changes` existing customers and of as many new ones, then `erasures` other customers erased. */
async function writeChanges(url: string, size: number, options: Options) {
  const { existing, existingIndices, fresh } = benchOrders(size, generateProducts({ seed }), "catch-up");
  const orders = [...existing.slice(0, options.changes), ...fresh.slice(0, options.changes)];
  for (let i = 0; i < orders.length; i += 100)
    await call(url, "POST", "/v1/orders", testSecrets.PATRON_API_KEY, { orders: orders.slice(i, i + 100) });
  // Customers holding an account (looked up by it) whom benchOrders gave no order.
  const ordered = new Set(existingIndices.slice(0, options.changes));
  for (let k = 0; k < options.erasures; k++) {
    let index = accountHolderFrom(Math.floor(((k + 0.5) * size) / options.erasures) + 1);
    while (ordered.has(index)) index = accountHolderFrom(index + 1);
    const account = accountOf(index);
    const { data } = (await call(
      url,
      "GET",
      `/v1/customers/lookup?kind=account&value=${account}`,
      testSecrets.PATRON_ADMIN_KEY,
    )) as { data: { customerId: string } };
    await call(url, "DELETE", `/v1/customers/${data.customerId}`, testSecrets.PATRON_ADMIN_KEY);
  }
  return { orders: orders.length, erasures: options.erasures };
}

async function runSize(size: number, options: Options) {
  const persistDir = mkdtempSync(path.join(tmpdir(), "patron-migrate-"));
  const vars = { RATE_LIMITS: "off", SHARD_COUNT: "0" };
  try {
    await applyMigrations(persistDir);
    const proxy = await getPlatformProxy<{ DB: D1Database }>({
      configPath: path.join(root, "wrangler.toml"),
      persist: { path: path.join(persistDir, "v3") },
    });
    let seeded: Awaited<ReturnType<typeof seedCustomers>>;
    try {
      console.log(`seeding ${size} customers into D1`);
      seeded = await seedCustomers(proxy.env.DB, size);
    } finally {
      await proxy.dispose();
    }
    console.log(`seeded ${seeded.customers} customers, ${seeded.orders} orders in ${seeded.seconds.toFixed(0)} s`);
    let worker = await startDevWorker({ persistDir, vars, timeoutMs: 180_000 });
    let full: Awaited<ReturnType<typeof migrateToEnd>>;
    let fullCheck: Awaited<ReturnType<typeof verify>>;
    try {
      full = await migrateToEnd(worker.url, options);
      fullCheck = await verify(worker.url);
    } finally {
      await worker.stop();
    }
    console.log(
      `full pass: ${full.view.visited} customers, ${full.view.regions} regions into ${options.shards} shards in ${full.seconds.toFixed(1)} s (${(full.view.visited / full.seconds).toFixed(0)} customers/s, ${full.steps} steps); check: ${fullCheck.equal ? "every table equal" : `differs: ${fullCheck.differing.join("; ")}`}`,
    );
    await ageDatabase(persistDir);
    worker = await startDevWorker({ persistDir, vars, timeoutMs: 180_000 });
    try {
      const changes = await writeChanges(worker.url, seeded.customers, options);
      const catchUp = await migrateToEnd(worker.url, options);
      const check = await verify(worker.url);
      const phases = Object.entries(catchUp.phases)
        .map(([phase, seconds]) => `${phase} ${seconds.toFixed(1)} s`)
        .join(", ");
      console.log(
        `catch-up after ${changes.orders} orders and ${changes.erasures} erasures: ${catchUp.view.changed} changed customers, ${catchUp.view.regions} regions copied again, ${catchUp.view.pruned} erased customers dropped, in ${catchUp.seconds.toFixed(1)} s (${phases}; ${catchUp.steps} steps) = ${(catchUp.seconds / full.seconds).toFixed(3)} of the full pass; check: ${check.equal ? "every table equal" : `differs: ${check.differing.join("; ")}`}`,
      );
      return {
        customers: seeded.customers,
        orders: seeded.orders,
        seedSeconds: seeded.seconds,
        full: { ...full, check: fullCheck },
        changes,
        catchUp: { ...catchUp, check },
        catchUpOverFull: catchUp.seconds / full.seconds,
      };
    } finally {
      await worker.stop();
    }
  } finally {
    rmSync(persistDir, { recursive: true, force: true });
  }
}

export default async function migrateBench(args: string[]) {
  const options = parseOptions(args);
  const results = [];
  for (const size of options.sizes) results.push(await runSize(size, options));
  mkdirSync(path.dirname(options.out), { recursive: true });
  writeFileSync(options.out, `${JSON.stringify({ options, results }, null, 2)}\n`);
  console.log(`wrote ${options.out}`);
}
