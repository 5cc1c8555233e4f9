// The nightly job's ranking statistics read a bounded number of the newest orders: product sales and
// co-purchase pairs. Below the bound they equal the full recompute over every order; above it, the
// recompute over the newest orders only. Runs on either store: on shards each shard reads its own
// newest orders (its share of the bound), so product sales are checked in every shard's database, and
// the co-purchase baskets are placed in one shard, whose share of the bound is the bound checked.
import { env, SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { Db } from "../../worker/env.ts";
import { copurchaseStep, productSalesQuery } from "../../worker/jobs/nightly.repo.ts";
import { nightlyBounds, shardedNightlyStore } from "../../worker/shards/nightly.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, client } from "../fixtures/builders.ts";
import { d1Db, onEachCustomerDb } from "../fixtures/nightly-store.ts";
import { seedRegion } from "../fixtures/shard-seed.ts";

const api = client(SELF);
const day = 86_400_000;

/** A small deterministic generator (mulberry32), so a failure replays. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Sales = Record<string, number>;

const salesOf = (rows: { productId: string; units: number }[]): Sales =>
  Object.fromEntries(
    rows.map((row) => [row.productId, row.units]).sort(([a], [b]) => String(a).localeCompare(String(b))),
  );

/** The full recompute in `db`: units per product over its newest `limit` orders (all of them when undefined). */
async function recomputedSales(db: Db, limit?: number): Promise<Sales> {
  const newest =
    limit === undefined
      ? sql`SELECT id FROM orders`
      : sql`SELECT id FROM orders ORDER BY placed_at DESC, id DESC LIMIT ${limit}`;
  const rows = await db.all<{ productId: string; units: number }>(sql`
    SELECT product_id AS productId, sum(quantity) AS units FROM order_lines
    WHERE order_id IN (${newest}) GROUP BY product_id`);
  return salesOf(rows);
}

describe("product sales over the newest orders", () => {
  it("equal the recompute over every order after random orders, replays and an erasure, and over the newest when bounded", async () => {
    const next = random(13);
    const start = Date.UTC(2026, 0, 1);
    const orders = Array.from({ length: 160 }, (_, i) =>
      anOrder({
        id: `sales-${i}`,
        // Distinct instants in random order: "newest" is unambiguous.
        placedAt: new Date(start + Math.floor(next() * 100_000) * 60_000 + i).toISOString(),
        identifiers: { loyalty: `SALES-${Math.floor(next() * 30)}` },
        lines: Array.from({ length: 1 + Math.floor(next() * 3) }, (_, k) => ({
          productId: `sku-${(i * 7 + k * 3) % 12}`,
          categoryId: `cat-${k}`,
          quantity: 1 + Math.floor(next() * 4),
          unitPrice: 10,
        })),
      }),
    );
    for (let i = 0; i < orders.length; i += 40)
      expect((await api.postOrders(orders.slice(i, i + 40))).status).toBe(200);
    // Replays change nothing.
    expect((await api.postOrders(orders.slice(20, 90))).status).toBe(200);
    // An erasure takes the customer's orders and lines with it.
    const erased = ((await (await api.lookup("loyalty", "SALES-3")).json()) as { data: { customerId: string } }).data;
    expect((await api.call("DELETE", `/v1/customers/${erased.customerId}`, undefined, adminKey)).status).toBe(200);

    // Where the job reads them: the one database, or each shard's own (about a quarter of the orders).
    await onEachCustomerDb(async (db, part) => {
      const all = await recomputedSales(db);
      expect(Object.keys(all).length, `part ${part}`).toBeGreaterThan(5);
      expect(salesOf(await db.all(productSalesQuery()))).toEqual(all);
      const [{ orders } = { orders: 0 }] = await db.all<{ orders: number }>(sql`SELECT count(*) AS orders FROM orders`);
      // Bounds below the orders held: at least two of them in every part.
      const limits = [1, 17, 60].filter((limit) => limit < orders);
      expect(limits.length, `part ${part}: ${orders} orders`).toBeGreaterThan(1);
      for (const limit of limits) {
        const bounded = salesOf(await db.all(productSalesQuery(limit)));
        expect(bounded, `part ${part}, newest ${limit}`).toEqual(await recomputedSales(db, limit));
        expect(bounded).not.toEqual(all);
      }
    });
  });
});

describe("co-purchase over the newest orders", () => {
  const now = new Date(Date.UTC(2026, 6, 1));
  const account = (id: string) => `pairs-account-${id}`;
  const basket = (id: string, daysAgo: number, products: string[]) =>
    anOrder({
      id,
      placedAt: new Date(now.getTime() - daysAgo * day).toISOString(),
      identifiers: { account: account(id) },
      lines: products.map((productId) => ({ productId, categoryId: "cat-pairs", quantity: 1, unitPrice: 5 })),
    });

  /**
   * The baskets where the job reads them: through the API into D1; on shards all into shard 0, as
   * moves could leave them, so that the shard's newest orders are these.
   */
  async function place(orders: ReturnType<typeof basket>[]) {
    if (shardCount(env) === 0) {
      expect((await api.postOrders(orders)).status).toBe(200);
      return;
    }
    for (const order of orders) await seedRegion(account(order.id), [order], { at: 0 });
  }

  /**
   * The co-purchase step as the job runs it, counting at most the newest `limit` orders: of the one
   * database, or of each shard (the bound split in equal shares of `limit`).
   */
  async function copurchase(limit?: number) {
    if (shardCount(env) === 0) return copurchaseStep(d1Db(), now, limit);
    const copurchaseOrders = limit === undefined ? nightlyBounds.copurchaseOrders : limit * shardCount(env);
    return shardedNightlyStore(env, d1Db(), { ...nightlyBounds, copurchaseOrders }).copurchase(now);
  }
  // The pairs of these baskets (the sales test above adds pairs of its own).
  const pairs = async () =>
    (
      await env.DB.prepare(
        "SELECT product_id, other_id, orders FROM product_pairs WHERE product_id LIKE 'pair-%' ORDER BY product_id, other_id",
      ).all<{
        product_id: string;
        other_id: string;
        orders: number;
      }>()
    ).results;

  it("counts only the newest orders of the window when bounded, and every one of them below the bound", async () => {
    const orders = [
      // Older in the window: three orders of A with B.
      ...[100, 101, 102].map((d) => basket(`pairs-old-${d}`, d, ["pair-a", "pair-b"])),
      // The newest: three orders of C with D.
      ...[1, 2, 3].map((d) => basket(`pairs-new-${d}`, d, ["pair-c", "pair-d"])),
      // Outside the year's window: never counted.
      ...[400, 401, 402].map((d) => basket(`pairs-ancient-${d}`, d, ["pair-e", "pair-f"])),
    ];
    await place(orders);

    await copurchase();
    expect(await pairs()).toEqual([
      { product_id: "pair-a", other_id: "pair-b", orders: 3 },
      { product_id: "pair-b", other_id: "pair-a", orders: 3 },
      { product_id: "pair-c", other_id: "pair-d", orders: 3 },
      { product_id: "pair-d", other_id: "pair-c", orders: 3 },
    ]);

    await copurchase(3);
    expect(await pairs()).toEqual([
      { product_id: "pair-c", other_id: "pair-d", orders: 3 },
      { product_id: "pair-d", other_id: "pair-c", orders: 3 },
    ]);
    // One order fewer than a pair needs: nothing left.
    await copurchase(2);
    expect(await pairs()).toEqual([]);
  });
});
