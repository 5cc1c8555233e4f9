// A customer shard (a SQLite-backed Durable Object) runs the same repositories as the D1 database,
// through D1's statement interface over its own storage. Whatever the product does to customer data
// in D1 it must do identically in a shard: the same schema, the same ingestion outcome, the same rows,
// the same shopper read; a batch is still all or nothing; concurrent writers still lose nothing.
import { env, runInDurableObject } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { batchRows, runBatch } from "../../db/batch.ts";
import { durableD1 } from "../../db/durable-d1.ts";
import * as schema from "../../db/schema.ts";
import type { Db } from "../../worker/env.ts";
import { identityKey } from "../../worker/identity/identity.keys.ts";
import { ingestOrders } from "../../worker/orders/ingest.ts";
import { rebuildSummaryStatements } from "../../worker/orders/orders.repo.ts";
import { type OrderInput, orderSchema } from "../../worker/orders/orders.schemas.ts";
import { attributionSettings } from "../../worker/recommendations/attribution.ts";
import { loadShopper } from "../../worker/recommendations/recommendations.repo.ts";
import { anOrder, uniquePrefix, verified } from "../fixtures/builders.ts";
import { historyOrders, lineOf as line } from "../fixtures/history-orders.ts";

const d1 = drizzle(env.DB, { schema }) as Db;
const secret = "test-identity-secret";

function shard(name = uniquePrefix("shard")) {
  return env.CUSTOMER_SHARDS.get(env.CUSTOMER_SHARDS.idFromName(name));
}
type Shard = ReturnType<typeof shard>;

/** Runs `work` inside the shard with a drizzle database over its storage, as the shard's own code does. */
function inShard<T>(stub: Shard, work: (db: Db) => Promise<T>): Promise<T> {
  return runInDurableObject(stub, (_instance, state) => work(drizzle(durableD1(state.storage), { schema }) as Db));
}

const parse = (order: unknown): OrderInput => orderSchema.parse(order);

/** The history of a few shoppers across web and store: identity links, a merge, a late order, replays. */
function history(p: string): OrderInput[][] {
  const at = (day: number) => `2026-0${day < 29 ? 2 : 3}-${String(((day - 1) % 28) + 1).padStart(2, "0")}T10:00:00Z`;
  const o = historyOrders(p, at);
  const batches = [
    [o(1, 1, { account: `${p}-ann` }), o(2, 2, { account: `${p}-bo` }, [line("cups", 30, 2)])],
    // Ann at the till with her loyalty card and verified email: links to her web account.
    [o(3, 5, { loyalty: `${p}-card`, email: verified(`${p}-ann@example.com`) }, [line("kettles", 55)], "store")],
    [o(4, 9, { account: `${p}-ann`, email: verified(`${p}-ann@example.com`) }, [line("tea", 14), line("cups", 9)])],
    // Bo and a second account share one verified phone: one customer.
    [
      o(5, 12, { account: `${p}-bo2`, phone: verified("+14155550101") }),
      o(6, 13, { account: `${p}-bo`, phone: verified("+14155550101") }),
    ],
    // A late order, older than Ann's last purchase day (folded with her stored day), and a replay.
    [o(7, 3, { account: `${p}-ann` }, [line("tea", 11, 3)]), o(2, 2, { account: `${p}-bo` }, [line("cups", 30, 2)])],
    [o(8, 30, { loyalty: `${p}-card` }, [line("kettles", 0.1), line("tea", 0.2)], "store")],
  ];
  return batches;
}

/** Customers keyed by their first order id (ids are random per store), with totals and identities. */
async function canonical(db: Db, p: string) {
  const [orders = [], summaries = [], categories = [], identities = [], products = []] = await batchRows(db, [
    sql`SELECT id, customer_id, total, channel FROM orders WHERE id LIKE ${`${p}-%`} ORDER BY id`,
    sql`SELECT * FROM customer_summaries WHERE customer_id IN (SELECT customer_id FROM orders WHERE id LIKE ${`${p}-%`})`,
    sql`SELECT * FROM customer_category_stats WHERE customer_id IN (SELECT customer_id FROM orders WHERE id LIKE ${`${p}-%`}) ORDER BY category_id`,
    sql`SELECT key, kind, customer_id, shared FROM identities WHERE customer_id IN (SELECT customer_id FROM orders WHERE id LIKE ${`${p}-%`}) ORDER BY key`,
    sql`SELECT * FROM customer_products WHERE customer_id IN (SELECT customer_id FROM orders WHERE id LIKE ${`${p}-%`}) ORDER BY product_id`,
  ]);
  const label = new Map<string, string>();
  for (const order of orders)
    if (!label.has(String(order.customer_id))) label.set(String(order.customer_id), String(order.id));
  const strip = ({
    customer_id,
    updated_at: _u,
    revision: _r,
    ...rest
  }: Record<string, unknown>): Record<string, unknown> => ({
    customer: label.get(String(customer_id)),
    ...rest,
  });
  return {
    orders: orders.map(strip),
    summaries: summaries.map(strip).sort((a, b) => String(a.customer).localeCompare(String(b.customer))),
    categories: categories
      .map(strip)
      .sort((a, b) => `${a.customer}${a.category_id}`.localeCompare(`${b.customer}${b.category_id}`)),
    identities: identities.map(strip),
    products: products
      .map(strip)
      .sort((a, b) => `${a.customer}${a.product_id}`.localeCompare(`${b.customer}${b.product_id}`)),
  };
}

const settings = attributionSettings({ SHOPPER_TOKEN_SECRET: "test-shopper-secret" });

describe("a customer shard", () => {
  it("has the main database's schema", async () => {
    const schemaOf = (db: Db) =>
      db.all<{ type: string; name: string; sql: string }>(sql`
        SELECT type, name, sql FROM sqlite_master
        WHERE sql IS NOT NULL AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'd1_%' AND name NOT LIKE 'sqlite_%'
        ORDER BY type, name`);
    const inD1 = await schemaOf(d1);
    expect(inD1.length).toBeGreaterThan(20);
    expect(await inShard(shard(), schemaOf)).toEqual(inD1);
  });

  it("ingests and reads a shopper exactly as the database does", async () => {
    const p = uniquePrefix("same");
    const stub = shard();
    const now = "2026-03-10T12:00:00Z";
    for (const batch of history(p)) {
      const inD1 = await ingestOrders(d1, secret, batch, new Date(now), settings);
      const inShardResult = await stub.ingest(batch, now);
      expect(inD1.kind).toBe("ingested");
      // Customer ids are random: the same orders, statuses and counts, whoever the ids are.
      const counts = (outcome: typeof inD1) =>
        outcome.kind === "ingested"
          ? { ...outcome.result, results: outcome.result.results.map(({ customerId: _id, ...rest }) => rest) }
          : outcome;
      expect(counts(inShardResult as typeof inD1)).toEqual(counts(inD1));
    }
    const fromD1 = await canonical(d1, p);
    expect(fromD1.summaries.length).toBeGreaterThan(1);
    expect(await inShard(stub, (db) => canonical(db, p))).toEqual(fromD1);

    for (const account of [`${p}-ann`, `${p}-bo`, `${p}-bo2`, `${p}-nobody`]) {
      const key = await identityKey("account", account, secret);
      const withoutIds = ({ customerId: _id, summary, ...rest }: Awaited<ReturnType<typeof loadShopper>>) => ({
        ...rest,
        summary: summary && { ...summary, customerId: undefined },
      });
      const read = withoutIds(await loadShopper(d1, key, new Date(now), { usualProducts: true }));
      expect(read.categoryStats.length + (account.endsWith("nobody") ? 1 : 0)).toBeGreaterThan(0);
      expect(
        withoutIds(await inShard(stub, (db) => loadShopper(db, key, new Date(now), { usualProducts: true }))),
      ).toEqual(read);
    }
  });

  it("keeps a batch all or nothing, with D1's result metadata", async () => {
    const stub = shard();
    const p = uniquePrefix("atomic");
    await inShard(stub, async (db) => {
      const written = await runBatch(db, [
        sql`INSERT INTO categories (id, name, updated_at) VALUES (${`${p}-a`}, 'A', 'now')`,
      ]);
      expect(written[0]?.meta.changes).toBe(1);
      expect(written[0]?.meta.rows_written).toBeGreaterThan(0);
      // The size is read when asked for (a getter), on reads as on writes: the file holds the row.
      const [read] = await runBatch(db, [sql`SELECT id FROM categories WHERE id = ${`${p}-a`}`]);
      expect(read?.meta.rows_read).toBe(1);
      expect(read?.meta.size_after).toBeGreaterThan(0);
      expect(read?.meta.size_after).toBe(written[0]?.meta.size_after);
      await expect(
        runBatch(db, [
          sql`INSERT INTO categories (id, name, updated_at) VALUES (${`${p}-b`}, 'B', 'now')`,
          sql`INSERT INTO categories (id, name, updated_at) VALUES (${`${p}-a`}, 'again', 'now')`,
        ]),
      ).rejects.toThrow(/UNIQUE constraint failed/);
      const ids = await db.all<{ id: string }>(sql`SELECT id FROM categories WHERE id LIKE ${`${p}-%`} ORDER BY id`);
      expect(ids.map((row) => row.id)).toEqual([`${p}-a`]);
    });
  });

  it("loses no order when requests add to one customer at once", async () => {
    const stub = shard();
    const p = uniquePrefix("race");
    const now = "2026-03-20T12:00:00Z";
    const email = `${p}@example.com`;
    await stub.ingest(
      [
        parse(
          anOrder({
            id: `${p}-0`,
            placedAt: "2026-03-01T10:00:00Z",
            identifiers: { account: `${p}-a`, email: verified(email) },
          }),
        ),
      ],
      now,
    );
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        stub.ingest(
          [
            parse(
              anOrder({
                id: `${p}-${index + 1}`,
                placedAt: `2026-03-${String(2 + index).padStart(2, "0")}T10:00:00Z`,
                identifiers: index % 2 === 0 ? { account: `${p}-a` } : { email: verified(email) },
                lines: [{ productId: "sku-1", categoryId: `cat-${index % 3}`, quantity: 1, unitPrice: 10 + index }],
              }),
            ),
          ],
          now,
        ),
      ),
    );
    expect(outcomes.every((outcome) => outcome.kind === "ingested")).toBe(true);
    await inShard(stub, async (db) => {
      const [owner] = await db.all<{ customer_id: string }>(sql`SELECT customer_id FROM orders WHERE id = ${`${p}-0`}`);
      const customerId = owner!.customer_id;
      const read = async () =>
        (
          await db.all<Record<string, unknown>>(sql`SELECT * FROM customer_summaries WHERE customer_id = ${customerId}`)
        ).map(({ updated_at: _u, revision: _r, ...rest }) => rest);
      const folded = await read();
      expect(folded[0]?.orders).toBe(9);
      await runBatch(db, rebuildSummaryStatements([customerId], now, "rebuilt"));
      expect(await read()).toEqual(folded);
    });
  });
});
