// Backfills of derived tables (the `backfills` table, migration 0019): where each part of the customer
// store stands, and starting a pass again. The nightly job's scoring pages do the filling
// (scorePageStep); while a backfill is pending the readers use the source rows instead (loadShopper).
import { sql } from "drizzle-orm";
import { runBatch } from "../../db/batch.ts";
import type { Db } from "../env.ts";

/** The derived tables a backfill can fill: customer_products, from the orders and their lines. */
export const backfillNames = ["customer_products"] as const;
export type BackfillName = (typeof backfillNames)[number];
/** The backfill of customer_products (migration 0019), filled by the nightly job's scoring pages. */
export const productsBackfill: BackfillName = "customer_products";

/** One backfill in one database: the last customer id its pass reached, and when a pass finished. */
export interface BackfillState {
  name: string;
  cursor: string;
  doneAt: string | null;
}

export async function backfillStates(db: Db): Promise<BackfillState[]> {
  const rows = await db.all<{ name: string; cursor: string; done_at: string | null }>(
    sql`SELECT name, cursor, done_at FROM backfills ORDER BY name`,
  );
  return rows.map((row) => ({ name: row.name, cursor: row.cursor, doneAt: row.done_at }));
}

/**
 * Marks `name` pending from the first customer: readers switch to the source rows at once, and the
 * next nightly run rebuilds the table page by page (for a table left behind by a rollback to a version
 * that did not write it). Idempotent: asking twice before a run changes nothing more.
 */
export async function rerunBackfill(db: Db, name: BackfillName): Promise<void> {
  await runBatch(db, [
    sql`INSERT INTO backfills (name) VALUES (${name}) ON CONFLICT (name) DO UPDATE SET cursor = '', done_at = NULL`,
  ]);
}
