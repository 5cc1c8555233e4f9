// The sample of known shoppers a rule simulation looks at. Customer ids are random (c_ + random hex),
// so the first n by id, read in order from the primary-key index of customer_summaries, are a uniform,
// repeatable sample: the same shoppers for every simulation until customers are added, and no scan or
// ORDER BY random() over the whole table.
import { sql } from "drizzle-orm";
import type { Db } from "../env.ts";

export async function sampleShoppers(db: Db, size: number): Promise<string[]> {
  const rows = await db.all<{ customerId: string }>(sql`
    SELECT s.customer_id AS customerId FROM customer_summaries s
    WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = s.customer_id AND c.merged_into IS NOT NULL)
    ORDER BY s.customer_id LIMIT ${size}`);
  return rows.map((row) => row.customerId);
}
