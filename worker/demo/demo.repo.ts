// The catalog reads the demo pages need: one product with its category name.
import { eq } from "drizzle-orm";
import { categories, products } from "../../db/schema.ts";
import type { Db } from "../env.ts";

export interface DemoProduct {
  id: string;
  title: string;
  categoryId: string;
  categoryName: string | null;
  listPrice: number;
  salePrice: number | null;
  inStock: boolean;
}

export async function findDemoProduct(db: Db, productId: string): Promise<DemoProduct | null> {
  const [row] = await db
    .select({
      id: products.id,
      title: products.title,
      categoryId: products.categoryId,
      categoryName: categories.name,
      listPrice: products.listPrice,
      salePrice: products.salePrice,
      inStock: products.inStock,
    })
    .from(products)
    .leftJoin(categories, eq(categories.id, products.categoryId))
    .where(eq(products.id, productId))
    .limit(1);
  return row ?? null;
}
