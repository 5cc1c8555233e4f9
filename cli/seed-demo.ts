// Seeds a running worker with the demo retailer: the catalog, the fixed demo shoppers and a few
// hundred generated customers, posted through the bulk importer's batching and retry code. Used by
// `npm start` and `patron seed --url`. The clock is read here, at the edge, when `today` is omitted.

import {
  customerCount,
  demoShoppers,
  generateCustomers,
  generateProducts,
  type SeedOptions,
} from "../db/seed/generate.ts";
import type { WireOrder } from "../db/seed/wire.ts";
import { IngestClient, type RetryInfo } from "./import/client.ts";
import { type ImportResult, runImport, type SourceRecord } from "./import/run.ts";

export { demoShoppers };

export interface PostSeedOptions {
  url: string;
  apiKey: string;
  /** Where the key came from, named if the worker refuses it (default "--key"). */
  keyFrom?: string;
  customers?: number;
  seed?: number;
  /** YYYY-MM-DD; orders are placed strictly before it. Default: today (UTC). */
  today?: string;
  /** Base of product and image urls. Default: the worker url (it serves /demo). */
  baseUrl?: string;
  batchSize?: number;
  concurrency?: number;
  /** Called with customers generated so far whenever a batch of orders is confirmed. */
  onCustomers?: (done: number, total: number, result: { accepted: number; duplicates: number }) => void;
  onRetry?: (info: RetryInfo) => void;
}

export interface SeedCounts {
  products: number;
  customers: number;
  orders: number;
  accepted: number;
  duplicates: number;
  retries: number;
  elapsedMs: number;
}

export function todayUtc(now: Date = new Date()): string {
  return now.toISOString().slice(0, 10);
}

/** Posts the catalog, then every generated customer's orders, streaming: memory stays flat at any size. */
export async function postSeedData(options: PostSeedOptions): Promise<SeedCounts> {
  const started = Date.now();
  const seedOptions: Partial<SeedOptions> = {
    seed: options.seed ?? 42,
    customers: options.customers ?? 300,
    today: options.today ?? todayUtc(),
    baseUrl: (options.baseUrl ?? options.url).replace(/\/+$/, ""),
  };
  const client = new IngestClient({
    url: options.url,
    apiKey: options.apiKey,
    keyFrom: options.keyFrom,
    onRetry: options.onRetry,
  });
  const products = generateProducts(seedOptions);
  const catalog = await runImport({
    kind: "products",
    records: products.map((value, index) => ({ value, lines: [index + 1] })),
    client,
    batchSize: 500,
  });

  const total = customerCount(seedOptions);
  let customersDone = 0;
  let ordersGenerated = 0;
  async function* orderRecords(): AsyncGenerator<SourceRecord<WireOrder>> {
    for (const customer of generateCustomers(seedOptions)) {
      customersDone++;
      for (const order of customer.orders) {
        ordersGenerated++;
        yield { value: order, lines: [ordersGenerated] };
      }
    }
  }
  const orders: ImportResult = await runImport({
    kind: "orders",
    records: orderRecords(),
    client,
    batchSize: options.batchSize ?? 500,
    concurrency: options.concurrency ?? 2,
    onProgress: (progress) => options.onCustomers?.(customersDone, total, progress.totals),
  });
  return {
    products: catalog.totals.upserted,
    customers: total,
    orders: orders.totals.records,
    accepted: orders.totals.accepted,
    duplicates: orders.totals.duplicates,
    retries: catalog.retries + orders.retries,
    elapsedMs: Date.now() - started,
  };
}

export interface SeedDemoOptions {
  url: string;
  apiKey: string;
  /** Generated customers besides the demo shoppers (default 300). */
  customers?: number;
  today?: string;
  onProgress?: (message: string) => void;
}

/** The `npm start` demo: a few hundred customers plus the demo shoppers, with one-line progress messages. */
export async function seedDemo(options: SeedDemoOptions): Promise<SeedCounts> {
  return postSeedData({
    url: options.url,
    apiKey: options.apiKey,
    keyFrom: "PATRON_API_KEY in .dev.vars",
    customers: options.customers ?? 300,
    today: options.today,
    onCustomers: (done, total, totals) =>
      options.onProgress?.(`customers ${done}/${total}, orders stored ${totals.accepted + totals.duplicates}`),
    onRetry: ({ reason, delayMs }) => options.onProgress?.(`retrying in ${delayMs} ms (${reason})`),
  });
}
