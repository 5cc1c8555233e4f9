// Catalog upserts (categories and products, one statement each for a whole batch) and reading a
// product back as stored.
import { type SQL, sql } from "drizzle-orm";
import { batchRows, jsonEach, runBatch } from "../../db/batch.ts";
import type { Db } from "../env.ts";
import type { ProductInput, ProductView } from "./orders.schemas.ts";

const productColumns = sql`p.id, p.title, p.category_id, c.name AS category_name, c.parent_id, p.url, p.image_url,
  p.list_price, p.sale_price, p.in_stock, p.active, p.updated_at`;

function productOf(row: Record<string, unknown>): ProductView {
  const text = (value: unknown) => (value === null || value === undefined ? null : String(value));
  return {
    id: String(row.id),
    title: String(row.title),
    categoryId: String(row.category_id),
    categoryName: text(row.category_name),
    parentCategoryId: text(row.parent_id),
    url: text(row.url),
    imageUrl: text(row.image_url),
    listPrice: Number(row.list_price),
    salePrice: row.sale_price === null ? null : Number(row.sale_price),
    inStock: Number(row.in_stock) === 1,
    active: Number(row.active) === 1,
    updatedAt: String(row.updated_at),
  };
}

async function readProducts(db: Db, where: SQL, limit: number): Promise<ProductView[]> {
  const [rows = []] = await batchRows(db, [
    sql`SELECT ${productColumns} FROM products p LEFT JOIN categories c ON c.id = p.category_id
        WHERE ${where} ORDER BY p.id LIMIT ${limit}`,
  ]);
  return rows.map(productOf);
}

/** One product as stored (active or not), or null. */
export async function loadProduct(db: Db, id: string): Promise<ProductView | null> {
  return (await readProducts(db, sql`p.id = ${id}`, 1))[0] ?? null;
}

/** A page of the catalog in id order, after id `after`. */
export function productsPage(db: Db, after: string | null, limit: number): Promise<ProductView[]> {
  return readProducts(db, after === null ? sql`true` : sql`p.id > ${after}`, limit);
}

export async function upsertProducts(db: Db, products: ProductInput[], now: Date) {
  const at = now.toISOString();
  const categories = new Map<string, { id: string; name: string | null; parentId: string | null }>();
  for (const product of products) {
    categories.set(product.categoryId, {
      id: product.categoryId,
      name: product.categoryName ?? categories.get(product.categoryId)?.name ?? null,
      // As across batches, a product that leaves them out keeps what another product of the batch gave.
      parentId: product.parentCategoryId ?? categories.get(product.categoryId)?.parentId ?? null,
    });
  }
  const categoryRows = jsonEach([...categories.values()]);
  const rows = products.map((p) => ({ ...p, inStock: p.inStock ? 1 : 0, active: p.active ? 1 : 0 }));
  await runBatch(db, [
    sql`
      INSERT OR IGNORE INTO categories (id, name, parent_id, updated_at)
      SELECT value ->> 'id', coalesce(value ->> 'name', value ->> 'id'), value ->> 'parentId', ${at}
      FROM ${categoryRows}`,
    // A name or parent given now replaces the stored one; an omitted one keeps it.
    sql`
      UPDATE categories SET name = coalesce(c.value ->> 'name', categories.name),
        parent_id = coalesce(c.value ->> 'parentId', categories.parent_id), updated_at = ${at}
      FROM ${categoryRows} AS c WHERE categories.id = c.value ->> 'id'`,
    sql`
      INSERT INTO products (id, title, category_id, url, image_url, list_price, sale_price, in_stock, active, updated_at)
      SELECT value ->> 'id', value ->> 'title', value ->> 'categoryId', value ->> 'url', value ->> 'imageUrl',
        value ->> 'listPrice', value ->> 'salePrice', value ->> 'inStock', value ->> 'active', ${at}
      FROM ${jsonEach(rows)} WHERE true
      ON CONFLICT (id) DO UPDATE SET title = excluded.title, category_id = excluded.category_id, url = excluded.url,
        image_url = excluded.image_url, list_price = excluded.list_price, sale_price = excluded.sale_price,
        in_stock = excluded.in_stock, active = excluded.active, updated_at = excluded.updated_at`,
  ]);
}
