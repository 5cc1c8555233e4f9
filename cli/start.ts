// `npm start`: local D1 with migrations applied, the worker on http://127.0.0.1:8787, demo data seeded
// once (a second start reuses the database), then what to open and the local keys. `npm start --
// --no-demo` starts without the demo (for loading one's own data), `--state <dir>` on another local
// store, `--no-build` with the assets as last built.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { databases } from "../db/databases.ts";
import { generateProducts } from "../db/seed/generate.ts";
import { timeZoneProblem } from "../worker/http/config.ts";
import type { ShardsStatusView } from "./commands/shards.ts";
import { parseDevVars } from "./dev-vars.ts";
import { describeRetry, IngestClient, IngestFailed } from "./import/client.ts";
import { settingsIgnoredFromShell, settingsMissing, shardsLeftBehind } from "./start-checks.ts";

const root = path.resolve(import.meta.dirname, "..");
const bin = (name: string) => path.join(root, "node_modules/.bin", name);
const port = Number(process.env.PORT ?? 8787);
const url = `http://127.0.0.1:${port}`;
const env = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" };
const usage = `Usage: npm start -- [--no-demo] [--state <dir>] [--no-build]
  --no-demo      start without the demo retailer: no demo data seeded, no model fit, no /demo
                 (for loading your own data; the store then stays without the demo, and one
                 that holds the demo already keeps it)
  --state <dir>  keep the local databases in <dir> (default .wrangler/state): a store of its own
  --no-build     serve the widget and console as last built (dist/public), for a quicker restart`;

/**
 * In a store's folder once it is kept for someone's own data (started with --no-demo, or holding data of
 * its own, and no demo catalog): the demo is never seeded there while it is.
 */
const ownDataMarker = "patron-own-data";

/** In a store's folder once npm start has seeded the whole demo there (a seeding stopped part-way leaves none). */
const demoSeededMarker = "patron-demo-seeded";

/** The command line's options; a mistake in it stops the start, with the usage. */
function startOptions(args: readonly string[]): { demo: boolean; stateDir: string; build: boolean } {
  let demo = true;
  let build = true;
  let stateDir = ".wrangler/state";
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--") continue; // npm passes a second "--" through: npm start -- --no-demo -- --state x
    if (arg === "--no-demo") demo = false;
    else if (arg === "--no-build") build = false;
    else if (arg === "--state" || arg.startsWith("--state=")) {
      const value = arg === "--state" ? args[++i] : arg.slice("--state=".length);
      if (!value || value.startsWith("--")) throw new Error(`--state needs a folder.\n${usage}`);
      stateDir = value;
    } else if (arg === "--help" || arg === "-h") {
      console.log(usage);
      process.exit(0);
    } else throw new Error(`unknown option ${JSON.stringify(arg)}.\n${usage}`);
  }
  return { demo, stateDir, build };
}

const plural = (n: number, word: string) => `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;

function step(message: string) {
  console.log(`\x1b[36m›\x1b[0m ${message}`);
}

function localVars(): Record<string, string> {
  const file = path.join(root, ".dev.vars");
  if (!existsSync(file)) {
    copyFileSync(path.join(root, ".dev.vars.example"), file);
    step("Created .dev.vars from .dev.vars.example (local keys only; never use them in production).");
  }
  return parseDevVars(readFileSync(file, "utf8"));
}

async function waitForHealth(child: ChildProcess, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the dev server exited with code ${child.exitCode}`);
    let response: Response | null = null;
    try {
      response = await fetch(`${url}/health`);
    } catch {}
    if (response?.ok) return;
    if (response?.status === 503) {
      // The worker is up but refuses to serve: a setting is missing from .dev.vars.
      const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
      child.removeAllListeners("exit"); // stop it without its exit ending this process first
      child.kill("SIGTERM");
      throw new Error(
        `${body.error?.message ?? "the worker is not configured"} Check .dev.vars (see .dev.vars.example).`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`The worker did not answer ${url}/health within ${timeoutMs / 1000} s`);
}

/**
 * Refuses a port something else holds, before building anything: the dev server would not start there,
 * and if the holder is an earlier `npm start`, its /health would answer as if it were this one's.
 */
async function ensurePortFree() {
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new Error(
      `PORT must be a port number from 1 to 65535, got "${process.env.PORT}": for example PORT=8788 npm start`,
    );
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new Error(
              `port ${port} on 127.0.0.1 is in use (an earlier npm start still running?). Stop what holds it, or start on another port: PORT=${port + 1} npm start`,
            )
          : error,
      ),
    );
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
  });
}

/** The worker's dev server, once started: stopped again if the start fails after it. */
let devServer: ChildProcess | undefined;

async function main() {
  const options = startOptions(process.argv.slice(2));
  const persistDir = path.resolve(root, options.stateDir);
  await ensurePortFree();
  const localSettings = localVars();
  const example = parseDevVars(readFileSync(path.join(root, ".dev.vars.example"), "utf8"));
  const missing = settingsMissing(localSettings, example);
  const fromShell = settingsIgnoredFromShell(process.env, localSettings, example);
  if (fromShell.length > 0)
    step(
      `${fromShell.join(", ")} ${fromShell.length === 1 ? "is" : "are"} set in this shell to another value than .dev.vars': ` +
        `npm start reads its settings from .dev.vars only (PORT aside), so this run goes by .dev.vars. Change ${fromShell.length === 1 ? "it" : "them"} there.`,
    );
  const timeZone = timeZoneProblem(localSettings.RETAILER_TIME_ZONE);
  if (timeZone) step(`${timeZone} (.dev.vars)`);
  if (missing.length > 0)
    step(
      `.dev.vars lacks ${missing.join(", ")}, which .dev.vars.example sets (a .dev.vars made before they were added): ` +
        `this run goes without ${missing.length === 1 ? "it" : "them"}. Copy the lines from .dev.vars.example to take them up.`,
    );
  if (options.build) {
    step("Building the widget, demo storefront and console…");
    execFileSync(process.execPath, ["--import", "tsx", "widget/build.ts"], { cwd: root, stdio: "inherit" });
    execFileSync(process.execPath, ["--import", "tsx", "console/build.ts"], { cwd: root, stdio: "inherit" });
  } else if (!existsSync(path.join(root, "dist/public/widget/v1.js")))
    throw new Error("--no-build: nothing is built yet (dist/public): run npm start without it once");

  step(`Applying migrations to the local D1 databases, main and events (${path.relative(root, persistDir) || "."})…`);
  for (const { binding } of databases)
    execFileSync(bin("wrangler"), ["d1", "migrations", "apply", binding, "--local", "--persist-to", persistDir], {
      cwd: root,
      env,
      stdio: "pipe",
    });

  // A store kept for someone's own data never gets the demo: one marked so (its first start was
  // --no-demo, or it held data of its own), or one holding products or imports and no demo catalog.
  const ownData = path.join(persistDir, ownDataMarker);
  const demoSeeded = path.join(persistDir, demoSeededMarker);
  const held = localStoreHolds(persistDir);
  const settingsProblem = shardsLeftBehind(held.shardsHoldingAll, localSettings.SHARD_COUNT, options.stateDir);
  if (settingsProblem) throw new Error(settingsProblem);
  if (options.demo && existsSync(ownData)) {
    options.demo = false;
    step(
      `This local store (${options.stateDir}) is kept for your own data: starting it without the demo again. ` +
        `For the demo, start on a store of its own (npm start -- --state .wrangler/demo), or delete ${path.relative(root, ownData)}.`,
    );
  } else if (options.demo && held.demoProducts === 0 && (held.products > 0 || held.imports > 0)) {
    options.demo = false;
    step(
      `This local store (${options.stateDir}) holds data of its own (${plural(held.products, "product")}, ${plural(held.imports, "import")}) and no demo: ` +
        "the demo is not seeded into it. For the demo, start on a store of its own: npm start -- --state .wrangler/demo",
    );
  }
  if (!options.demo && held.demoProducts === 0)
    writeFileSync(ownData, "Kept for your own data by npm start: the demo is never seeded into this store.\n");
  // Without the demo, /demo is off for this run too: its storefront would show a catalog that is not there.
  // With it, /demo is on unless .dev.vars switches it off: a .dev.vars without the line is an old one.
  const vars: Record<string, string> = {
    ...localSettings,
    PATRON_DEMO: options.demo ? (localSettings.PATRON_DEMO ?? "on") : "off",
  };
  const demoServed = vars.PATRON_DEMO === "on";

  step(`Starting the worker on ${url}…`);
  // Wrangler's dev server without its inspector, which now and then crashed workerd during the model fit
  // (cli/dev-server.ts says why), on the local D1 the migrations were just applied to. Every setting in
  // .dev.vars (the local keys and PATRON_DEMO=on, HOLDOUT_SHARE=0...) is a variable of this local run.
  const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "cli/dev-server.ts")], {
    cwd: root,
    env: {
      ...env,
      PATRON_DEV_SERVER: JSON.stringify({ port, persistDir, vars }),
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  devServer = child;
  const stop = () => child.kill("SIGTERM");
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  child.on("exit", (code) => process.exit(code ?? 0));
  await waitForHealth(child, 90_000);

  const adminKey = vars.PATRON_ADMIN_KEY ?? "dev-admin-key";
  const apiKey = vars.PATRON_API_KEY ?? "dev-api-key";
  const { demoShoppers, seedDemo } = await import("./seed-demo.ts");
  // The demo shopper's lookup tells a stored demo from an empty database. A transient answer (429,
  // 5xx) is asked again a few times, at most 2 s apart and said, as the importer does, before it counts
  // as a refusal: a refusal that stays (a SHARD_COUNT changed on existing data answers 503) stops
  // within about 6 s.
  const lookup = new IngestClient({
    url,
    apiKey: adminKey,
    keyFrom: "PATRON_ADMIN_KEY in .dev.vars",
    retry: { maxAttempts: 4, maxDelayMs: 2_000 },
    onRetry: (info) => step(describeRetry(info)),
  });
  const account = demoShoppers[0]?.accountId ?? "demo-full-price";
  const stored = await lookup.get(`/v1/customers/lookup?kind=account&value=${account}`).then(
    () => true,
    (error: unknown) => {
      if (error instanceof IngestFailed && error.status === 404) return false;
      // Not "no such shopper", and not gone on asking again: the worker refuses (a SHARD_COUNT changed
      // on existing data, a wrong admin key in .dev.vars). Seeding would only meet the same refusal.
      throw new Error(`the worker refused the demo lookup: ${error instanceof Error ? error.message : String(error)}`);
    },
  );
  if (!options.demo) {
    if (stored || held.demoProducts > 0)
      step(
        `This local store (${options.stateDir}) holds the demo retailer already: its customers will be counted, ranked and ` +
          "fitted with yours. For your data alone, start on a store of its own: npm start -- --no-demo --state .wrangler/own",
      );
    else if (held.products > 0 || held.imports > 0)
      step(
        `Your data is kept here (${plural(held.products, "product")}, ${plural(held.imports, "import")}): nothing to load again.`,
      );
    else step("No demo data: load your own (npx patron import …, docs/import.md), then run the nightly job.");
  } else if (stored && existsSync(demoSeeded)) {
    step("Demo data already stored locally: reusing it.");
  } else {
    // A seeding stopped part-way (Ctrl-C) left the demo's first shoppers and no mark: seeded again,
    // which stores only what is missing (orders already stored come back as duplicates).
    step(
      stored
        ? "Demo data found without the mark of a finished seeding (one stopped part-way, or made by an earlier version): seeding it again, which stores only what is missing…"
        : "Seeding the demo retailer (catalog, customers, web and store orders)…",
    );
    const counts = await seedDemo({
      url,
      apiKey,
      onProgress: (message: string) => process.stdout.write(`\r  ${message}   `),
    });
    process.stdout.write("\n");
    writeFileSync(demoSeeded, "The demo retailer was seeded here in full by npm start.\n");
    step(
      `Seeded ${counts.products} products and ${counts.orders} web and store orders of ${counts.customers} generated shoppers ` +
        `in ${Math.round(counts.elapsedMs / 1000)} s. A shopper whose web and store identifiers never meet stays two customers until they do.`,
    );
  }
  if (options.demo) await fitModels(adminKey);
  const shards = Number(vars.SHARD_COUNT ?? 0);
  const store = shards > 0 ? `local D1 and ${shards} customer shards (local Durable Objects)` : "local D1";
  // A reshard or rebalance left half done (the switch restarts npm start) is said after the banner.
  const pending = shards > 0 ? await shardsUnderWay(url, adminKey) : [];
  const where = options.stateDir === ".wrangler/state" ? "" : ` (kept in ${options.stateDir})`;
  console.log(
    options.demo
      ? `
  Patron is running on ${store}${where}.

    Demo storefront   ${demoServed ? `${url}/demo` : `off (PATRON_DEMO=${vars.PATRON_DEMO} in .dev.vars)`}
    Console           ${url}/console   (sign in with the admin key)
    Health            ${url}/health
    API key           ${apiKey}        (POST /v1/orders, /v1/identify, /v1/products)
    Admin key         ${adminKey}      (GET /v1/customers/..., /v1/admin/...)
    Shopper token     npx patron token --sub demo-full-price
    Your own page     add its origin to ALLOWED_ORIGINS in .dev.vars and restart (docs/embedding.md)

  Try:
    curl -s -H "Authorization: Bearer ${adminKey}" "${url}/v1/customers/lookup?kind=account&value=demo-full-price"

  Press Ctrl-C to stop.
`
      : `
  Patron is running on ${store}${where}, without the demo.

    Console           ${url}/console   (sign in with the admin key)
    Health            ${url}/health
    API key           ${apiKey}        (POST /v1/orders, /v1/identify, /v1/products)
    Admin key         ${adminKey}      (GET /v1/customers/..., /v1/admin/...)

  ${held.products > 0 || held.imports > 0 ? "More data to load, or the models to fit again" : "Load your data, then fit the models"} (docs/import.md):
    npx patron import products <file> --url ${url}
    npx patron import orders <file> --url ${url}
    curl -s -X POST -H "Authorization: Bearer ${adminKey}" "${url}/v1/admin/jobs/nightly?wait=1"
  A history that ended long ago is scored as of its last day, before any run at the present; for the
  Complete Journey sample, whose last orders are at 2018-01-01T03:32Z, the day after (docs/import.md):
    curl -s -X POST -H "Authorization: Bearer ${adminKey}" -H "Content-Type: application/json" \
      -d '{"asOf":"2018-01-02T00:00:00Z"}' "${url}/v1/admin/jobs/nightly?wait=1"

  Press Ctrl-C to stop.
`,
  );
  for (const line of pending) console.log(`  ${line}\n`);
}

/**
 * What the local main database holds that tells a store of one's own from the demo's: imports
 * (patron import orders through the queue), products, and products of the demo catalog.
 */
function localStoreHolds(persistDir: string): {
  imports: number;
  products: number;
  demoProducts: number;
  shardsHoldingAll: number | null;
} {
  const demoIds = generateProducts()
    .slice(0, 20)
    .map((product) => `'${product.id.replaceAll("'", "''")}'`)
    .join(", ");
  const output = execFileSync(
    bin("wrangler"),
    [
      "d1",
      "execute",
      "DB",
      "--local",
      "--persist-to",
      persistDir,
      "--json",
      "--command",
      `SELECT (SELECT count(*) FROM imports) AS imports, (SELECT count(*) FROM products) AS products, (SELECT count(*) FROM products WHERE id IN (${demoIds})) AS demoProducts, ` +
        "EXISTS (SELECT 1 FROM customer_summaries) AS d1Customers, " +
        "(SELECT shards FROM shard_migration WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1) AS onShards",
    ],
    { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] },
  ).toString();
  const [answer] = JSON.parse(output) as {
    results: {
      imports: number;
      products: number;
      demoProducts: number;
      d1Customers: number;
      onShards: number | null;
    }[];
  }[];
  const row = answer?.results[0];
  if (!row) throw new Error(`could not read the local store in ${persistDir}: ${output.slice(0, 200)}`);
  return {
    imports: Number(row.imports),
    products: Number(row.products),
    demoProducts: Number(row.demoProducts),
    // The shard count the store's customers were last placed in (it started on shards, or a migration
    // into them finished) while D1 holds none of its own: null when D1 is where they are.
    shardsHoldingAll: row.onShards !== null && !row.d1Customers ? Number(row.onShards) : null,
  };
}

async function fitModels(adminKey: string) {
  step("Fitting the customer models (the nightly job)…");
  const fit = await fetch(`${url}/v1/admin/jobs/nightly?wait=1`, {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}` },
  });
  const run = (await fit.json().catch(() => ({}))) as {
    data?: { status?: string; error?: string | null; detail?: { scored?: number } };
    error?: { message?: string };
  };
  if (run.data?.status === "done")
    step(`Models fitted; ${run.data.detail?.scored ?? 0} customers (unified records) scored.`);
  else {
    const why = run.data?.error ?? run.error?.message ?? run.data?.status ?? String(fit.status);
    step(`The model job did not finish (${why}); recommendations still work from live data.`);
  }
}

/** What `patron shards status` says is under way (a reshard, a rebalance pass, moves); nothing when it cannot say. */
async function shardsUnderWay(url: string, adminKey: string): Promise<string[]> {
  const { underWay } = await import("./commands/shards.ts");
  try {
    const response = await fetch(`${url}/v1/admin/shards`, {
      headers: { Authorization: `Bearer ${adminKey}` },
      signal: AbortSignal.timeout(5_000),
    });
    if (!response.ok) return [];
    return underWay(((await response.json()) as { data: ShardsStatusView }).data);
  } catch {
    return [];
  }
}

main().catch((error) => {
  console.error(`\nnpm start failed: ${error instanceof Error ? error.message : error}`);
  // Never leave the worker holding the port after a failed start (a seeding error, a health timeout).
  devServer?.removeAllListeners("exit");
  devServer?.kill("SIGTERM");
  process.exit(1);
});
