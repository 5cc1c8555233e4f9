// Runs drizzle `sql` statements as one atomic D1 batch. drizzle's own db.batch() cannot take raw
// parameterised statements (db.run(sql`...`)), so they are rendered with drizzle's dialect and
// prepared on the D1 binding directly.
import { type SQL, sql } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { jsonChunks } from "./json-chunks.ts";

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

/** Runs statements in one D1 round trip (one transaction) and returns each statement's rows (a write's RETURNING rows). */
export async function batchRows(db: { $client: D1Database }, statements: SQL[]): Promise<Record<string, unknown>[][]> {
  const results = await runBatch(db, statements);
  return results.map((result) => (result.results ?? []) as Record<string, unknown>[]);
}

/**
 * `json_each(?)` over `items`, as a table expression to use wherever `json_each(...)` would go
 * (`FROM ${jsonEach(rows)} AS m`, `IN (SELECT value FROM ${jsonEach(ids)})`); only its `value` column
 * is meant to be read. An array too big for one D1 value is bound as several chunks, each well under
 * D1's 2 MB value limit, and read as `json_each` over each row of a VALUES list (VALUES is exempt from
 * D1's five-term limit on compound SELECTs, which a UNION ALL would hit), so one statement still
 * covers the whole array and the batch stays atomic.
 */
export function jsonEach(items: readonly unknown[]): SQL {
  const chunks = jsonChunks(items);
  if (chunks.length === 1) return sql`json_each(${chunks[0]})`;
  const rows = sql.join(
    chunks.map((chunk) => sql`(${chunk})`),
    sql`, `,
  );
  return sql`(SELECT j.value AS value FROM (VALUES ${rows}) AS chunk, json_each(chunk.column1) AS j)`;
}
