// customer_products for orders stored before it existed (migration 0019): the migration marks a backfill
// pending, the shelf reads products from the orders meanwhile, and the nightly job's scoring pages fill
// the rows as a rebuild would and mark the backfill done. Runs on both customer stores: on shards each
// shard keeps its own backfills row and fills its own customers.
import { SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { runBatch } from "../../db/batch.ts";
import { jobRunResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { scorePageStep } from "../../worker/jobs/nightly.repo.ts";
import { loadShopper } from "../../worker/recommendations/recommendations.repo.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../fixtures/builders.ts";
import { dbOf, inCustomerStore, shardOfCustomer } from "../fixtures/ingest-store.ts";
import { beforeTheWrite, nightlyStore, onEachCustomerDb, scoringPartitions } from "../fixtures/nightly-store.ts";
import { accountKeyOf } from "../fixtures/shard-seed.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);
const now = new Date();
const daysAgo = (days: number) => new Date(now.getTime() - days * 86_400_000).toISOString();

/** Customers with several orders of overlapping products, some recent, some long ago. */
async function ingestHistories(p: string, customers: number) {
  const orders = [];
  for (let c = 0; c < customers; c++)
    for (let k = 0; k < 4; k++)
      orders.push(
        anOrder({
          id: `${p}-${c}-${k}`,
          placedAt: daysAgo(400 - k * 120 + c),
          identifiers: { account: `${p}-${c}` },
          lines: [
            { productId: `sku-${(c + k) % 5}`, categoryId: "tea", quantity: 1, unitPrice: 4 },
            { productId: `sku-${c % 3}`, categoryId: "cups", quantity: 2, unitPrice: 9 },
          ],
        }),
      );
  const response = await api.postOrders(orders);
  expect(response.status, await response.clone().text()).toBe(200);
}

const productRows = (p: string) =>
  storeRows<Record<string, unknown>>(
    `SELECT o.id AS first_order, cp.product_id, cp.orders, cp.last_purchased_at FROM customer_products cp
     JOIN orders o ON o.customer_id = cp.customer_id AND o.id LIKE ? || '-%-0' ORDER BY o.id, cp.product_id`,
    p,
  );

/** What the shelf reads of the shopper's products, recent and usual. */
async function shelfProducts(p: string, c: number) {
  const [{ customer_id: customerId }] = (await storeRows<{ customer_id: string }>(
    "SELECT customer_id FROM orders WHERE id = ?",
    `${p}-${c}-0`,
  )) as [{ customer_id: string }];
  const shopper = await inCustomerStore(customerId, async (d1) =>
    loadShopper(dbOf(d1), await accountKeyOf(`${p}-${c}`), now, { usualProducts: true }),
  );
  const byProduct = <T extends { productId: string }>(rows: T[]) =>
    [...rows].sort((a, b) => a.productId.localeCompare(b.productId));
  return { recent: byProduct(shopper.recentPurchases), usual: byProduct(shopper.usualProducts) };
}

/** Each customer store as a deployment from before customer_products finds it after the migration. */
async function asBeforeTheMigration() {
  await onEachCustomerDb((db) =>
    runBatch(db, [
      sql`DELETE FROM customer_products`,
      sql`INSERT INTO backfills (name) VALUES ('customer_products')
          ON CONFLICT (name) DO UPDATE SET cursor = '', done_at = NULL`,
    ]),
  );
}

/** The backfills rows of every customer store. */
const backfillRows = async () =>
  (
    await onEachCustomerDb((db) =>
      db.all<{ cursor: string; done_at: string | null }>(sql`SELECT cursor, done_at FROM backfills`),
    )
  ).flat();

async function runNightly() {
  const response = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ asOf: now.toISOString(), pageSize: 10 }),
  });
  expect(response.status, await response.clone().text()).toBe(200);
  expect(jobRunResponseSchema.parse(await response.json()).data.status).toBe("done");
}

describe("customer_products", () => {
  it("keeps one customer's rows together: a WITHOUT ROWID table keyed by (customer, product)", async () => {
    // drizzle has no spelling for WITHOUT ROWID, so a regenerated migration could drop it unnoticed.
    for (const [row] of await onEachCustomerDb((db) =>
      db.all<{ sql: string }>(sql`SELECT sql FROM sqlite_master WHERE name = 'customer_products'`),
    )) {
      expect(row?.sql).toMatch(/PRIMARY KEY\(`customer_id`, `product_id`\)\s*\)\s*WITHOUT ROWID$/);
    }
  });
});

describe("the customer_products backfill", () => {
  it("reads products from the orders while pending, and the nightly job fills the rows a rebuild would", async () => {
    const p = uniquePrefix("fill");
    // More customers than a scoring page holds, so the pass goes on over several pages.
    await ingestHistories(p, 24);
    const kept = await productRows(p);
    expect(kept.length).toBeGreaterThan(24);
    const shelves = await Promise.all([0, 11, 23].map((c) => shelfProducts(p, c)));
    expect(shelves[0]!.recent.length).toBeGreaterThan(0);
    expect(shelves[0]!.usual.length).toBeGreaterThan(shelves[0]!.recent.length);

    await asBeforeTheMigration();
    expect(await productRows(p)).toEqual([]);
    // Pending: the same products, read from the orders.
    expect(await Promise.all([0, 11, 23].map((c) => shelfProducts(p, c)))).toEqual(shelves);

    await runNightly();
    expect(await productRows(p)).toEqual(kept);
    for (const row of await backfillRows()) expect(row.done_at).not.toBeNull();
    expect(await Promise.all([0, 11, 23].map((c) => shelfProducts(p, c)))).toEqual(shelves);
  });

  it("a pass cut short mid-way starts again from the first customer on the next run", async () => {
    const p = uniquePrefix("again");
    await ingestHistories(p, 6);
    const kept = await productRows(p);
    await asBeforeTheMigration();
    // A run stopped after some pages: the cursor is somewhere in the middle, the pass not done.
    await onEachCustomerDb((db) =>
      runBatch(db, [
        sql`UPDATE backfills SET cursor = coalesce((SELECT customer_id FROM customer_summaries ORDER BY customer_id
              LIMIT 1 OFFSET (SELECT count(*) / 2 FROM customer_summaries)), 'c_') WHERE name = 'customer_products'`,
      ]),
    );
    await runNightly();
    expect(await productRows(p)).toEqual(kept);
    for (const row of await backfillRows()) expect(row.done_at).not.toBeNull();
  });

  it("a scoring page that does not continue the pass leaves it to a run from the first page", async () => {
    const p = uniquePrefix("resume");
    await ingestHistories(p, 4);
    const kept = await productRows(p);
    await asBeforeTheMigration();
    // A run deployed mid-way: its next page, in the part holding this history's first customer, starts
    // at a cursor the pass never reached (below every customer id, so the page holds them all).
    const [first] = await storeRows<{ customer_id: string }>("SELECT customer_id FROM orders WHERE id = ?", `${p}-0-0`);
    const partition = (await shardOfCustomer(first!.customer_id)) ?? 0;
    const models = { bgnbd: null, gammaGamma: null } as never;
    await nightlyStore().scorePage(partition, {
      models,
      population: null,
      cursor: " ",
      pageSize: 1_000,
      runId: `${p}-run`,
      now,
      timeZone: "UTC",
      scoredBefore: 0,
    });
    expect(await productRows(p)).toEqual([]);
    expect((await backfillRows()).every((row) => row.done_at === null)).toBe(true);

    await runNightly();
    expect(await productRows(p)).toEqual(kept);
  });

  it("two runs scoring the same first page at once fill the rows once and finish the pass once", async () => {
    const p = uniquePrefix("twice");
    await ingestHistories(p, 5);
    const kept = await productRows(p);
    await asBeforeTheMigration();
    const models = { bgnbd: null, gammaGamma: null } as never;
    // In every part, two runs' first pages read the pass at its start; whichever writes second finds it
    // moved on.
    const page = (partition: number, runId: string) =>
      nightlyStore().scorePage(partition, {
        models,
        population: null,
        cursor: "",
        pageSize: 1_000,
        runId,
        now,
        timeZone: "UTC",
        scoredBefore: 0,
      });
    const parts = Array.from({ length: scoringPartitions() }, (_, part) => part);
    const pages = await Promise.all(parts.flatMap((part) => [page(part, `${p}-a`), page(part, `${p}-b`)]));
    for (const result of pages) expect(result.nextCursor).toBeNull();
    expect(await productRows(p)).toEqual(kept);
    for (const row of await backfillRows()) {
      expect(row.done_at).not.toBeNull();
      expect(row.cursor).not.toBe("");
    }
  });

  it("a rerun between a page's read and its write restarts the pass instead of being undone", async () => {
    const p = uniquePrefix("between");
    await ingestHistories(p, 6);
    const kept = await productRows(p);
    await asBeforeTheMigration();
    const restart = sql`UPDATE backfills SET cursor = '', done_at = NULL WHERE name = 'customer_products'`;
    const models = { bgnbd: null, gammaGamma: null } as never;
    await onEachCustomerDb(async (db) => {
      // The pass stopped part-way (at the first customer), and a page goes on from there...
      const [start] = await db.all<{ id: string }>(
        sql`SELECT customer_id AS id FROM customer_summaries ORDER BY customer_id LIMIT 1`,
      );
      if (!start) return;
      await runBatch(db, [sql`UPDATE backfills SET cursor = ${start.id} WHERE name = 'customer_products'`]);
      // ...and `patron backfill rerun` lands after the page read the pass and before it writes.
      await scorePageStep(beforeTheWrite(db, restart), models, start.id, 1_000, `${p}-run`, now);
    });
    // The page wrote no step over the rerun: every pass starts again from the first customer...
    for (const row of await backfillRows()) expect(row).toEqual({ cursor: "", done_at: null });
    // ...which the next run does, rows before the page's start included.
    await runNightly();
    expect(await productRows(p)).toEqual(kept);
  });
});

describe("POST /v1/admin/backfills/:name/rerun", () => {
  const admin = (path: string, method = "GET", key = adminKey) =>
    SELF.fetch(`http://patron.test/v1/admin/backfills${path}`, { method, headers: { Authorization: `Bearer ${key}` } });
  const view = async (response: Response) => {
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as {
      data: { backfills: { name: string; store: string; cursor: string; doneAt: string | null }[]; pending: number };
    };
  };

  it("after product rows went stale, reads the orders at once and has the next run rebuild them", async () => {
    const p = uniquePrefix("rerun");
    await ingestHistories(p, 3);
    await runNightly();
    const kept = await productRows(p);
    const shelves = await Promise.all([0, 1, 2].map((c) => shelfProducts(p, c)));
    // What a rollback to a version without the table leaves: orders whose product rows were not written.
    await onEachCustomerDb((db) =>
      runBatch(db, [
        sql`UPDATE customer_products SET orders = 1, last_purchased_at = '2000-01-01T00:00:00.000Z'
            WHERE customer_id IN (SELECT customer_id FROM orders WHERE id LIKE ${p} || '-%')`,
      ]),
    );
    expect(await productRows(p)).not.toEqual(kept);
    expect(await Promise.all([0, 1, 2].map((c) => shelfProducts(p, c)))).not.toEqual(shelves);

    const rerun = (await view(await admin("/customer_products/rerun", "POST"))).data;
    const parts = scoringPartitions();
    expect(rerun.pending).toBe(parts);
    expect(new Set(rerun.backfills.map((backfill) => backfill.store)).size).toBe(parts);
    expect(rerun.backfills.every((backfill) => backfill.name === "customer_products" && backfill.cursor === "")).toBe(
      true,
    );
    // Until the rows are rebuilt, the shelf reads the shopper's products from the orders.
    expect(await Promise.all([0, 1, 2].map((c) => shelfProducts(p, c)))).toEqual(shelves);

    await runNightly();
    expect(await productRows(p)).toEqual(kept);
    const after = (await view(await admin(""))).data;
    expect(after.pending).toBe(0);
    expect(after.backfills.every((backfill) => backfill.doneAt !== null)).toBe(true);
  });

  it("answers 404 for a name that is no backfill and 401 without the admin key (both routes), marking nothing", async () => {
    const before = await backfillRows();
    const unknown = await admin("/orders/rerun", "POST");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "not_found" } });
    expect((await admin("/customer_products/rerun", "POST", "not-the-key")).status).toBe(401);
    expect((await admin("", "GET", "not-the-key")).status).toBe(401);
    expect(await backfillRows()).toEqual(before);
  });
});
