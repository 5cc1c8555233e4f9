// Runs drizzle `sql` statements as one atomic D1 batch. drizzle's own db.batch() cannot take raw
// parameterised statements (db.run(sql`...`)), so they are rendered with drizzle's dialect and
// prepared on the D1 binding directly.
import type { SQL } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";

const dialect = new SQLiteAsyncDialect();

export async function runBatch(db: { $client: D1Database }, statements: SQL[]): Promise<D1Result[]> {
  if (statements.length === 0) return [];
  const d1 = db.$client;
  return d1.batch(
    statements.map((statement) => {
      const query = dialect.sqlToQuery(statement);
      return d1.prepare(query.sql).bind(...query.params);
    }),
  );
}

/** Runs read statements in one D1 round trip and returns each statement's rows. */
export async function batchRows(db: { $client: D1Database }, statements: SQL[]): Promise<Record<string, unknown>[][]> {
  const results = await runBatch(db, statements);
  return results.map((result) => (result.results ?? []) as Record<string, unknown>[]);
}
