// Stores widget events. Deduplication rides on the unique `dedupe_key` index, so a repeated beacon or
// a retried batch is a no-op in the database rather than a read-then-write race.
import { events } from "../../db/schema.ts";
import type { Db } from "../env.ts";
import type { EventType } from "./events.schemas.ts";

export interface EventRow {
  type: EventType;
  recommendationId: string | null;
  arm: string | null;
  customerId: string | null;
  productId: string | null;
  categoryId: string | null;
  placement: string | null;
  position: number | null;
  at: string;
  dedupeKey: string;
}

/** D1 binds at most 100 parameters per statement; an event row binds 10. */
const rowsPerStatement = 9;

/** Inserts the rows, skipping any whose dedupe key is already stored. Returns how many were new. */
export async function insertEvents(db: Db, rows: EventRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const statements = [];
  for (let start = 0; start < rows.length; start += rowsPerStatement) {
    statements.push(
      db
        .insert(events)
        .values(rows.slice(start, start + rowsPerStatement))
        .onConflictDoNothing({ target: events.dedupeKey })
        .returning({ id: events.id }),
    );
  }
  const [first, ...rest] = statements;
  const results = await db.batch([first!, ...rest]);
  return results.reduce((sum, inserted) => sum + inserted.length, 0);
}
