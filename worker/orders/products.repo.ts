// Catalog upserts: categories and products, one statement each for a whole batch.
import { sql } from "drizzle-orm";
import { jsonEach, runBatch } from "../../db/batch.ts";
import type { Db } from "../env.ts";
import type { ProductInput } from "./orders.schemas.ts";

export async function upsertProducts(db: Db, products: ProductInput[], now: Date) {
  const at = now.toISOString();
  const categories = new Map<string, { id: string; name: string | null; parentId: string | null }>();
  for (const product of products) {
    categories.set(product.categoryId, {
      id: product.categoryId,
      name: product.categoryName ?? categories.get(product.categoryId)?.name ?? null,
      parentId: product.parentCategoryId ?? null,
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
