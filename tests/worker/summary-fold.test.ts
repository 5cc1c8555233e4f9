// Ingestion adds new orders to a customer's stored totals instead of rebuilding them. Whatever arrives,
// in whatever batches, order, replays or concurrency, the stored totals must equal the rebuild from
// every stored order (rebuildSummaryStatements), and an added order must write a bounded number of
// rows however long the customer's history (D1's meta.rows_written). Runs on both customer stores: on
// the sharded one the totals are read, rebuilt and counted inside the customer's shard, where a sharded
// deployment folds them (the shard's SQLite reports the same meta).
import { env, SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runBatch } from "../../db/batch.ts";
import { homeShard } from "../../worker/core/shards/placement.ts";
import { ingestOrders } from "../../worker/orders/ingest.ts";
import { rebuildSummaryStatements } from "../../worker/orders/orders.repo.ts";
import { type OrderInput, orderSchema } from "../../worker/orders/orders.schemas.ts";
import { homedIds } from "../../worker/shards/shard-ingest.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { anOrder, client, uniquePrefix, verified } from "../fixtures/builders.ts";
import { dbOf, inCustomerStore, inStore } from "../fixtures/ingest-store.ts";
import { countingD1 } from "../fixtures/nightly-store.ts";
import { accountKeyOf } from "../fixtures/shard-seed.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);

async function ingest(orders: unknown[]) {
  const response = await api.postOrders(orders);
  expect(response.status, await response.clone().text()).toBe(200);
}

async function customerOfOrder(orderId: string): Promise<string> {
  const [row, ...others] = await storeRows<{ customer_id: string }>(
    "SELECT customer_id FROM orders WHERE id = ?",
    orderId,
  );
  expect(others).toEqual([]);
  return row!.customer_id;
}

/** The customer's summary, category and product rows, without the bookkeeping columns a rebuild rewrites. */
async function storedTotals(customerId: string) {
  const summaries = await storeRows("SELECT * FROM customer_summaries WHERE customer_id = ?", customerId);
  expect(summaries.length).toBeLessThanOrEqual(1);
  const { updated_at: _updated, revision: _revision, ...kept } = summaries[0] ?? {};
  const categories = await storeRows(
    "SELECT * FROM customer_category_stats WHERE customer_id = ? ORDER BY category_id",
    customerId,
  );
  const products = await storeRows(
    "SELECT * FROM customer_products WHERE customer_id = ? ORDER BY product_id",
    customerId,
  );
  return { summary: kept, categories, products };
}

/** Sums of money are added in another order than the SQL's sum(), so they may differ in the last bits. */
function expectSameTotals(actual: Awaited<ReturnType<typeof storedTotals>>, expected: typeof actual) {
  const close = (value: unknown) => (typeof value === "number" ? expect.closeTo(value, 9) : value);
  const approximately = (row: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(row).map(([key, value]) => [key, close(value)]));
  expect(actual.summary).toEqual(approximately(expected.summary));
  expect(actual.categories).toEqual(expected.categories.map(approximately));
  expect(actual.products).toEqual(expected.products);
}

/** The stored totals next to what the rebuild from every stored order writes. */
async function foldedAndRebuilt(customerId: string) {
  const folded = await storedTotals(customerId);
  // The rebuild runs where the customer's rows are: D1, or inside the customer's shard.
  await inCustomerStore(customerId, (d1) =>
    runBatch(dbOf(d1), rebuildSummaryStatements([customerId], new Date().toISOString(), "rebuilt")),
  );
  return { folded, rebuilt: await storedTotals(customerId) };
}

const cents = fc.integer({ min: 0, max: 9_999 }).map((n) => n / 100);

const ordersArbitrary = fc.array(
  fc.record({
    day: fc.integer({ min: 1, max: 12 }),
    hour: fc.constantFrom(0, 9, 9, 23),
    channel: fc.constantFrom("web", "store", "app", "phone"),
    lines: fc.array(
      fc.record({
        productId: fc.constantFrom("sku-1", "sku-2"),
        categoryId: fc.constantFrom("tea", "cups", "kettles"),
        quantity: fc.integer({ min: 1, max: 3 }),
        unitPrice: cents,
        listPrice: cents,
      }),
      { minLength: 1, maxLength: 3 },
    ),
  }),
  { minLength: 1, maxLength: 7 },
);

describe("incremental customer totals", () => {
  it("equal the rebuild whatever the batches, arrival order and replays", async () => {
    await fc.assert(
      fc.asyncProperty(
        ordersArbitrary,
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 7, maxLength: 7 }),
        fc.boolean(),
        async (drafts, batchSizes, replay) => {
          const p = uniquePrefix("fold");
          const orders = drafts.map((draft, index) =>
            anOrder({
              id: `${p}-${index}`,
              channel: draft.channel as "web",
              placedAt: `2026-02-${String(draft.day).padStart(2, "0")}T${String(draft.hour).padStart(2, "0")}:00:00Z`,
              identifiers: { account: `${p}-acct` },
              lines: draft.lines,
            }),
          );
          let sent = 0;
          for (const size of batchSizes) {
            if (sent >= orders.length) break;
            const batch = orders.slice(sent, sent + size);
            await ingest(batch);
            // A retried batch (the client never saw the answer) must add nothing.
            if (replay) await ingest(batch);
            sent += batch.length;
          }
          if (sent < orders.length) await ingest(orders.slice(sent));
          const customerId = await customerOfOrder(`${p}-0`);
          const { folded, rebuilt } = await foldedAndRebuilt(customerId);
          expect(folded.summary.orders).toBe(orders.length);
          expectSameTotals(folded, rebuilt);
        },
      ),
      { numRuns: 25 },
    );
  });

  // The first order on the 1st (every later one folds from the totals) or on the 20th (every later
  // one is older than the last purchase day, so each reads its stored day before the batch).
  it.each([
    ["after", "2026-03-01T10:00:00Z"],
    ["before", "2026-03-20T10:00:00Z"],
  ])(
    "concurrent requests adding orders to one customer through different identifiers lose none (orders %s the first)",
    async (_when, first) => {
      const p = uniquePrefix("race");
      const email = `${p}@example.com`;
      await ingest([
        anOrder({
          id: `${p}-0`,
          placedAt: first,
          identifiers: { account: `${p}-a`, email: verified(email) },
        }),
      ]);
      const requests = Array.from({ length: 8 }, (_, index) =>
        ingest([
          anOrder({
            id: `${p}-${index + 1}`,
            // Two orders a day, so racing requests also add to the same stored day.
            placedAt: `2026-03-${String(2 + Math.floor(index / 2)).padStart(2, "0")}T1${index % 2}:00:00Z`,
            identifiers: index % 2 === 0 ? { account: `${p}-a` } : { email: verified(email) },
            lines: [{ productId: "sku-1", categoryId: `cat-${index % 3}`, quantity: 1, unitPrice: 10 + index }],
          }),
        ]),
      );
      await Promise.all(requests);
      const customerId = await customerOfOrder(`${p}-0`);
      const { folded, rebuilt } = await foldedAndRebuilt(customerId);
      expect(folded.summary).toMatchObject({ orders: 9, purchase_days: 5 });
      expectSameTotals(folded, rebuilt);
    },
  );

  it("an order older than the last purchase day folds, and a merge rebuilds the totals", async () => {
    const p = uniquePrefix("late");
    await ingest([anOrder({ id: `${p}-new`, placedAt: "2026-03-10T10:00:00Z", identifiers: { account: `${p}-a` } })]);
    await ingest([anOrder({ id: `${p}-old`, placedAt: "2026-03-01T10:00:00Z", identifiers: { account: `${p}-a` } })]);
    await ingest([anOrder({ id: `${p}-other`, placedAt: "2026-03-05T10:00:00Z", identifiers: { loyalty: `${p}-L` } })]);
    const merged = await api.identify({ account: `${p}-a`, loyalty: `${p}-L` });
    expect(merged.status).toBe(200);
    const customerId = await customerOfOrder(`${p}-new`);
    expect(await customerOfOrder(`${p}-other`)).toBe(customerId);
    const { folded, rebuilt } = await foldedAndRebuilt(customerId);
    expect(folded.summary).toMatchObject({ orders: 3, purchase_days: 3, gap_square_sum: 4 ** 2 + 5 ** 2 });
    expectSameTotals(folded, rebuilt);
  });
});

/** `database` with every batch's meta.rows_written and meta.rows_read added up. */
function countingDb(database: D1Database) {
  const counter = { rowsWritten: 0, rowsRead: 0 };
  return { db: dbOf(countingD1(database, counter)), counter };
}

/**
 * Ingests one order a day for one customer, on `days` of January in that arrival order, each alone
 * through ingestOrders on a row-counting database; then rebuilds the customer's totals. Answers the
 * rows each order wrote, the rows its batches read, and the rows the rebuild wrote.
 */
async function rowsPerOrder(label: string, days: readonly number[]) {
  const p = uniquePrefix(label);
  const attribution = { secrets: ["test-shopper-secret"], eventWindowDays: 7, orderWindowDays: 30 };
  const orderOn = (day: number): OrderInput =>
    orderSchema.parse(
      anOrder({
        id: `${p}-${day}`,
        placedAt: `2026-01-${String(day).padStart(2, "0")}T10:00:00Z`,
        identifiers: { account: `${p}-a` },
        lines: [
          { productId: "sku-1", categoryId: "tea", quantity: 1, unitPrice: 10 },
          { productId: "sku-2", categoryId: `cat-${day}`, quantity: 1, unitPrice: 5 },
        ],
      }),
    );
  // Where a new region of this account is ingested: D1, or its account key's home shard, which
  // creates the customer with an id homed there (as the shard's own ingestion does).
  const count = shardCount(env);
  const shard = count > 0 ? homeShard(await accountKeyOf(`${p}-a`), count) : null;
  const options = shard === null ? {} : { newCustomerId: homedIds(shard, count) };
  const { written, read, customerId } = await inStore(shard, async (database) => {
    const { db, counter } = countingDb(database);
    const written: number[] = [];
    const read: number[] = [];
    for (const day of days) {
      counter.rowsWritten = 0;
      counter.rowsRead = 0;
      const outcome = await ingestOrders(
        db,
        "test-identity-secret",
        [orderOn(day)],
        new Date(),
        attribution,
        undefined,
        undefined,
        options,
      );
      expect(outcome.kind).toBe("ingested");
      written.push(counter.rowsWritten);
      read.push(counter.rowsRead);
    }
    const [owner] = await db.all<{ customer_id: string }>(
      sql`SELECT customer_id FROM orders WHERE id = ${`${p}-${days[0]}`}`,
    );
    return { written, read, customerId: owner!.customer_id };
  });
  const totals = await foldedAndRebuilt(customerId);
  const rebuild = await inStore(shard, async (database) => {
    const { db, counter } = countingDb(database);
    await runBatch(db, rebuildSummaryStatements([customerId], new Date().toISOString(), "rebuilt"));
    return counter.rowsWritten;
  });
  return { written, read, rebuild, totals };
}

describe("rows written and read per order", () => {
  it("stay the same however long the customer's history, and below a rebuild's", async () => {
    const { written, rebuild, totals } = await rowsPerOrder(
      "rows",
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    // Every order after the first writes the same rows: the order, its lines, its observation, one
    // summary row, its two category rows and its two product rows; none depends on the history before it.
    expect(written[1]).toBeGreaterThan(0);
    expect(new Set(written.slice(1)).size).toBe(1);
    // A rebuild rewrites every category the customer ever bought in (21 here), twice (delete, insert).
    expect(rebuild).toBeGreaterThan(2 * written[19]!);
    expectSameTotals(totals.folded, totals.rebuilt);
  });

  it("read the same rows however long the history when the order repeats the customer's identifiers", async () => {
    const { read } = await rowsPerOrder(
      "reads",
      Array.from({ length: 31 }, (_, i) => i + 1),
    );
    // The identity reads of a repeat look at a few of the key's newest observations, then stop: past
    // those, every order reads the same rows (before, each order re-read every observation of the customer).
    const last = read.slice(20);
    expect(last).toEqual(last.map(() => read[20]));
    expect(read[30]).toBeLessThan(2 * read[0]!);
  });

  it("are the same for orders older than the customer's last purchase day: a late store file folds too", async () => {
    const inOrder = await rowsPerOrder("rows-in-order", [1, 2, 3]);
    // The 20th first, then the days before it from both ends inwards: each is a new day in a gap, or before the first.
    const late = [20, 1, 19, 2, 18, 3, 17, 4, 16, 5, 15, 6, 14, 7, 13, 8, 12, 9, 11, 10];
    const { written, totals } = await rowsPerOrder("rows-late", late);
    expect(written.slice(1)).toEqual(late.slice(1).map(() => inOrder.written[1]));
    expect(totals.folded.summary).toMatchObject({ orders: 20, purchase_days: 20, gap_square_sum: 19 });
    expectSameTotals(totals.folded, totals.rebuilt);
  });
});
