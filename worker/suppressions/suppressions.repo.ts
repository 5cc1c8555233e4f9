// The suppression list an erasure leaves: keyed hashes of the erased orders' ids and of the erased
// customer's own identifiers, so replays and new data carrying them are not stored again. Identifier
// keys are the identity keys themselves (identityKey()); order keys are made the same way.
import { type SQL, sql } from "drizzle-orm";
import { batchRows, jsonEach } from "../../db/batch.ts";
import type { Db } from "../env.ts";
import { foldedEraPrefix, hmacHex } from "../identity/identity.keys.ts";

/** The suppression key of an order id: `order:` and the first 160 bits of HMAC("order:" + id). */
export async function orderSuppressionKey(orderId: string, secret: string): Promise<string> {
  return `order:${(await hmacHex(`order:${orderId}`, secret)).slice(0, 40)}`;
}

/**
 * Whether the list holds the asked key `asked` (a json_each value): a key as it is, or a folded key
 * (foldedEraKey) on a row listed while ids were keyed folded. One primary-key probe per asked key.
 */
const listed = (asked: SQL) => sql`EXISTS (
  SELECT 1 FROM suppressions s
  WHERE s.key = CASE WHEN substr(${asked}, 1, ${foldedEraPrefix.length}) = ${foldedEraPrefix}
      THEN substr(${asked}, ${foldedEraPrefix.length + 1}) ELSE ${asked} END
    AND (substr(${asked}, 1, ${foldedEraPrefix.length}) <> ${foldedEraPrefix} OR s.folded_era = 1))`;

/** The keys among `keys` that are suppressed (a folded key, foldedEraKey, as it was asked). */
export async function suppressedKeys(db: Db, keys: readonly string[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const [rows = []] = await batchRows(db, [
    sql`SELECT k.value AS key FROM ${jsonEach([...new Set(keys)])} AS k WHERE ${listed(sql`k.value`)}`,
  ]);
  return new Set(rows.map((row) => String(row.key)));
}

/** Lifts one suppression; false when the key was not suppressed. */
export async function liftSuppression(db: Db, key: string): Promise<boolean> {
  const [rows = []] = await batchRows(db, [sql`DELETE FROM suppressions WHERE key = ${key} RETURNING key`]);
  return rows.length > 0;
}

export async function isSuppressed(db: Db, key: string): Promise<boolean> {
  return (await suppressedKeys(db, [key])).has(key);
}

/** How many keys are suppressed, by kind. */
export async function suppressionCounts(db: Db): Promise<Record<string, number>> {
  const [rows = []] = await batchRows(db, [
    sql`SELECT kind, count(*) AS n FROM suppressions GROUP BY kind ORDER BY kind`,
  ]);
  return Object.fromEntries(rows.map((row) => [String(row.kind), Number(row.n)]));
}

/**
 * A statement for an ingestion's write batch that aborts it (NOT NULL on ingest_checks.ok, the region
 * guard's mechanism, whose closing statement clears the row) when any of `keys` was suppressed after
 * the request checked: an erasure committing mid-request cannot let its data back in.
 */
export function suppressionGuard(keys: readonly string[]): SQL {
  return sql`
    INSERT INTO ingest_checks (ok) SELECT CASE WHEN NOT EXISTS (
      SELECT 1 FROM ${jsonEach([...new Set(keys)])} AS k WHERE ${listed(sql`k.value`)}
    ) THEN 1 END`;
}
