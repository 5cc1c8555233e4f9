// `patron seed`: generate the demo retailer's data (catalog, customers' orders and their ground
// truth) into NDJSON files, or post it straight to a worker through the importer's client.
import { once } from "node:events";
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import {
  customerCount,
  defaultSeedOptions,
  generateCustomers,
  generateProducts,
  type SeedOptions,
} from "../../db/seed/generate.ts";
import { defaultWorkerUrl } from "../dev-vars.ts";
import { describeRetry, IngestFailed } from "../import/client.ts";
import { formatDuration, progressBar } from "../import/progress.ts";
import { ImportStopped } from "../import/run.ts";
import { wholeNumber, workerUrl } from "../options.ts";
import { postSeedData, todayUtc } from "../seed-demo.ts";

interface SeedCommandOptions {
  customers: number;
  seed: number;
  out: string;
  url?: string;
  key?: string;
  today?: string;
  baseUrl?: string;
  batchSize: number;
  concurrency: number;
  personas: boolean;
}

export interface WrittenCounts {
  products: number;
  customers: number;
  orders: number;
  elapsedMs: number;
}

async function write(stream: WriteStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, "drain");
}

async function close(stream: WriteStream): Promise<void> {
  stream.end();
  await once(stream, "finish");
}

/** Writes products.ndjson, orders.ndjson and truth.ndjson (one customer per line) into `directory`. */
export async function writeSeedFiles(
  directory: string,
  options: Partial<SeedOptions>,
  onCustomer?: (done: number) => void,
): Promise<WrittenCounts> {
  const started = Date.now();
  mkdirSync(directory, { recursive: true });
  const productsFile = createWriteStream(path.join(directory, "products.ndjson"));
  const products = generateProducts(options);
  for (const product of products) await write(productsFile, `${JSON.stringify(product)}\n`);
  await close(productsFile);
  const ordersFile = createWriteStream(path.join(directory, "orders.ndjson"));
  const truthFile = createWriteStream(path.join(directory, "truth.ndjson"));
  let customers = 0;
  let orders = 0;
  for (const customer of generateCustomers(options)) {
    let chunk = "";
    for (const order of customer.orders) chunk += `${JSON.stringify(order)}\n`;
    await write(ordersFile, chunk);
    await write(truthFile, `${JSON.stringify(customer.truth)}\n`);
    customers++;
    orders += customer.orders.length;
    if (customers % 500 === 0) onCustomer?.(customers);
  }
  onCustomer?.(customers);
  await Promise.all([close(ordersFile), close(truthFile)]);
  return { products: products.length, customers, orders, elapsedMs: Date.now() - started };
}

export function register(program: Command): void {
  program
    .command("seed")
    .description("Generate the demo retailer (catalog, customers with known ground truth, web and store orders).")
    .requiredOption("--customers <n>", "generated customers, besides the demo shoppers", wholeNumber(0))
    .option("--seed <n>", "random seed", wholeNumber(0), defaultSeedOptions.seed)
    .option("--out <dir>", "write products.ndjson, orders.ndjson and truth.ndjson here", "demo-data")
    .option("--url <url>", "post to this worker instead of writing files", workerUrl)
    .option("--key <key>", "API key for --url (or PATRON_API_KEY)", process.env.PATRON_API_KEY)
    .option("--today <date>", "last day of history, YYYY-MM-DD (default: today, UTC)")
    .option(
      "--base-url <url>",
      "base of product and image urls (default: --url, else $PATRON_URL, else the local worker on $PORT or 8787)",
    )
    .option("--batch-size <n>", "orders per request when posting (1–1000)", wholeNumber(1, 1000), 500)
    .option("--concurrency <n>", "requests in flight when posting", wholeNumber(1), 2)
    .option("--no-personas", "leave out the fixed demo shoppers")
    .action(async (options: SeedCommandOptions, command: Command) => {
      const today = options.today ?? todayUtc();
      if (!/^\d{4}-\d{2}-\d{2}$/.test(today) || Number.isNaN(Date.parse(today)))
        command.error("--today must be YYYY-MM-DD");
      const seedOptions: Partial<SeedOptions> = {
        seed: options.seed,
        customers: options.customers,
        today,
        includePersonas: options.personas,
        baseUrl: options.baseUrl ?? options.url ?? defaultWorkerUrl(),
      };
      const total = customerCount(seedOptions);
      const bar = progressBar(total, "customers");
      try {
        if (options.url) {
          if (!options.key) command.error("--key (or PATRON_API_KEY) is required with --url");
          const counts = await postSeedData({
            url: options.url,
            apiKey: options.key as string,
            ...seedOptions,
            batchSize: options.batchSize,
            concurrency: options.concurrency,
            onCustomers: (done, _total, totals) => bar.update(done, { note: `${totals.accepted} new orders` }),
            onRetry: (info) => {
              const note = describeRetry(info);
              if (bar.enabled) bar.note(note);
              else console.error(note);
            },
          });
          bar.update(total);
          bar.stop();
          console.log(
            `posted ${counts.products} products and ${counts.orders} orders of ${counts.customers} customers to ${options.url}: ` +
              `${counts.accepted} accepted, ${counts.duplicates} duplicates, ${counts.retries} retries, ${formatDuration(counts.elapsedMs)}`,
          );
        } else {
          const counts = await writeSeedFiles(options.out, seedOptions, (done) => bar.update(done));
          bar.stop();
          console.log(
            `wrote ${counts.products} products, ${counts.orders} orders and ${counts.customers} customers' ground truth to ${options.out}/ in ${formatDuration(counts.elapsedMs)}`,
          );
        }
      } catch (error) {
        bar.stop();
        if (error instanceof ImportStopped) {
          console.error(error.message);
          for (const issue of error.issues.slice(0, 20))
            console.error(`  ${issue.recordId ?? "?"} ${issue.path.join(".")}: ${issue.message}`);
        } else if (error instanceof IngestFailed) console.error(error.message);
        else throw error;
        process.exitCode = 1;
      }
    });
}
