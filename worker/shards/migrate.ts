// The migration of a single-database deployment's customer data into customer shards (docs/scaling.md,
// from one database to shards). Each step visits the next customers of the D1 database in id order;
// a customer whose identity region (moves.ts: everything its identifiers connect, closed over whole
// customers) has a smaller customer id was copied with that customer already, so every region is
// copied once, by its smallest customer. A region is copied into the shard a new region would be
// placed in (core/shards/groups.ts's rule for a new region) as a move from D1 is: the target applies
// the rows in one transaction, once per region (its move id), then the home directory entries of its
// keys, and of its customers and orders away from their homes, point at it. D1 is only read, so a step that fails is
// simply run again; the cursor moves only after a step's regions are placed.
import { sql } from "drizzle-orm";
import { batchRows, runBatch } from "../../db/batch.ts";
import { customerKey, homeShard } from "../core/shards/placement.ts";
import type { Db, Env } from "../env.ts";
import type { Placement } from "./directory.ts";
import { type Region, rebuiltAtTarget, regionOf, regionRows, regionRowTables } from "./moves.ts";
import { shardStub } from "./shards.ts";

const migrationId = "d1-to-shards";
/** Customers of a step handled at once. */
const concurrency = 8;
/** The `source` a copy from the D1 database carries (shards are numbered from 0). */
export const d1Source = -1;

export interface MigrationState {
  shards: number;
  cursor: string | null;
  visited: number;
  regions: number;
  customers: number;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export type MigrationStep =
  | { kind: "migrated"; state: MigrationState; total: number }
  /** A migration for another shard count is recorded: finish it, or start over on a fresh database. */
  | { kind: "other_count"; shards: number }
  /**
   * The shards stored rows after the last pass finished (`since`), or hold any before a first pass
   * (`since` null): a deployment ran on them, so they hold orders, customers, identifiers or browsing
   * D1 does not. A new pass would empty them: refused unless the caller discards them knowingly.
   */
  | { kind: "shards_written"; since: string | null; written: Record<string, number> }
  | { kind: "region_too_large"; customerId: string };

export async function migrationState(d1: Db): Promise<MigrationState | null> {
  const row = await d1.get<Record<string, unknown>>(sql`SELECT * FROM shard_migration WHERE id = ${migrationId}`);
  if (!row) return null;
  return {
    shards: Number(row.shards),
    cursor: (row.cursor as string | null) ?? null,
    visited: Number(row.visited),
    regions: Number(row.regions),
    customers: Number(row.customers),
    startedAt: String(row.started_at),
    updatedAt: String(row.updated_at),
    finishedAt: (row.finished_at as string | null) ?? null,
  };
}

/** The customer a merged-away customer now belongs to (merges can chain). */
async function survivorOf(d1: Db, customerId: string): Promise<string> {
  let id = customerId;
  for (let hop = 0; hop < 64; hop++) {
    const row = await d1.get<{ merged_into: string | null }>(sql`SELECT merged_into FROM customers WHERE id = ${id}`);
    if (!row?.merged_into) return id;
    id = row.merged_into;
  }
  return id;
}

/**
 * The region of a customer: reached from the identifiers it holds and those verified on its orders;
 * a customer with neither (its orders carried no verified identifier) is a region of its own.
 */
async function regionOfCustomer(d1: Db, customerId: string): Promise<Region | "too_large"> {
  const survivor = await survivorOf(d1, customerId);
  const [held = [], seen = [], orders = []] = await batchRows(d1, [
    sql`SELECT key FROM identities WHERE customer_id = ${survivor}`,
    sql`SELECT DISTINCT o.identity_key AS key FROM identity_observations o JOIN orders ON 'order:' || orders.id = o.source
      WHERE orders.customer_id = ${survivor} AND o.verified = 1`,
    sql`SELECT 'order:' || id AS source FROM orders WHERE customer_id = ${survivor}`,
  ]);
  const keys = [...new Set([...held, ...seen].map((row) => String(row.key)))];
  if (keys.length > 0) return regionOf(d1, keys);
  const merged = await d1.all<{ id: string }>(sql`SELECT id FROM customers WHERE merged_into = ${survivor}`);
  return {
    keys: [],
    customers: [survivor, ...merged.map((row) => row.id)].sort(),
    sources: orders.map((row) => String(row.source)).sort(),
  };
}

/** Where a new region with these keys and orders is placed: the first account key's home, else the first key's, else its first order's. */
export function migrationTarget(region: Region, count: number): number {
  const account = region.keys.find((key) => key.startsWith("account:"));
  const first = account ?? region.keys[0] ?? region.sources.find((source) => source.startsWith("order:"));
  return homeShard(first ?? customerKey(region.customers[0] as string), count);
}

/** The directory entries a region placed in `target` needs, grouped by the home shard that keeps them. */
function entriesByHome(region: Region, target: number, count: number) {
  const byHome = new Map<number, Placement[]>();
  const add = (key: string, always: boolean) => {
    const home = homeShard(key, count);
    // A customer or an order at its home needs no entry; an identity key is unknown without one.
    if (!always && home === target) return;
    byHome.set(home, [...(byHome.get(home) ?? []), { key, shard: target }]);
  };
  for (const key of region.keys) add(key, true);
  for (const customer of region.customers) add(customerKey(customer), false);
  for (const source of region.sources) if (source.startsWith("order:")) add(source, false);
  return byHome;
}

/** Copies one region into its shard and points the directory at it. Idempotent. */
async function copyRegion(env: Env, d1: Db, region: Region, count: number): Promise<void> {
  const target = migrationTarget(region, count);
  // Widget events not yet moved to the events database stay in D1, where export and erasure read
  // them on a sharded deployment too; a shard has no use for them.
  const { legacy_events: _stayInD1, stage_transitions, ...rest } = await regionRows(d1, region);
  // A transition's D1 id is its id in the feed (D1's feed shows it): kept as its sharded feed id, so a
  // client paging GET /v1/admin/transitions goes on across the migration with the cursor it has.
  const rows = { ...rest, stage_transitions: (stage_transitions ?? []).map((row) => ({ ...row, feed_id: row.id })) };
  const moveId = `migrate:${region.customers[0]}`;
  const shard = shardStub(env, target);
  await shard.receiveRegion({ ...region, moveId, source: d1Source, rows }, count);
  await shard.finishMoveIn(moveId);
  await Promise.all(
    [...entriesByHome(region, target, count)].map(([home, entries]) => shardStub(env, home).placeKeys(entries, count)),
  );
}

/**
 * Every row a copy writes in a shard, so a pass starts from empty shards: customer tables, the
 * directory and the moves (the shards serve nothing while the deployment runs on D1).
 */
export const clearedTables = ["identities", ...regionRowTables, "shard_directory", "shard_moves", "shard_fences"];

/**
 * Visits the next `limit` customers after the cursor and copies the regions they are the smallest
 * customer of. A pass starts with no migration recorded, or after a finished one: it empties the
 * shards and copies D1 again from its first customer, so a run after D1 changed (orders arrived, a
 * customer was erased) leaves the shards equal to D1 again. Another shard count than an unfinished
 * pass's is refused, and so is a new pass over shards that stored rows of their own since the last
 * pass finished (a deployment switched to them and back), unless `discardShardData`.
 */
export async function migrateStep(
  env: Env,
  d1: Db,
  shards: number,
  limit: number,
  now: Date,
  { discardShardData = false }: { discardShardData?: boolean } = {},
): Promise<MigrationStep> {
  const at = now.toISOString();
  const recorded = await migrationState(d1);
  if (recorded && recorded.finishedAt === null && recorded.shards !== shards)
    return { kind: "other_count", shards: recorded.shards };
  if (!recorded || recorded.finishedAt !== null) {
    const emptied = Math.max(shards, recorded?.shards ?? 0);
    const stubs = Array.from({ length: emptied }, (_, index) => shardStub(env, index));
    if (!discardShardData) {
      // A first pass expects empty shards; a new one, none written since the last pass finished.
      const since = recorded?.finishedAt ?? null;
      const written: Record<string, number> = {};
      for (const counts of await Promise.all(stubs.map((stub) => stub.ownRowsSince(since))))
        for (const [table, n] of Object.entries(counts)) written[table] = (written[table] ?? 0) + n;
      if (Object.values(written).some((n) => n > 0)) return { kind: "shards_written", since, written };
    }
    await Promise.all(stubs.map((stub) => stub.clearCustomerData()));
    await d1.run(sql`
      INSERT INTO shard_migration (id, shards, cursor, visited, regions, customers, started_at, updated_at)
      VALUES (${migrationId}, ${shards}, NULL, 0, 0, 0, ${at}, ${at})
      ON CONFLICT (id) DO UPDATE SET shards = excluded.shards, cursor = NULL, visited = 0, regions = 0,
        customers = 0, started_at = excluded.started_at, updated_at = excluded.updated_at, finished_at = NULL`);
  }
  const state = (await migrationState(d1)) as MigrationState;
  const next = await d1.all<{ id: string }>(sql`
    SELECT id FROM customers WHERE ${state.cursor === null ? sql`true` : sql`id > ${state.cursor}`}
    ORDER BY id LIMIT ${limit}`);
  let regions = 0;
  let customers = 0;
  let tooLarge: string | null = null;
  // A few customers at a time: each costs several sequential round trips to D1 and the shards. Two of
  // one region in flight at once are harmless: only its smallest customer copies it.
  const pending = [...next];
  const worker = async () => {
    for (let item = pending.shift(); item && !tooLarge; item = pending.shift()) {
      const region = await regionOfCustomer(d1, item.id);
      if (region === "too_large") tooLarge ??= item.id;
      else if (region.customers[0] === item.id) {
        await copyRegion(env, d1, region, shards);
        regions++;
        customers += region.customers.length;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  // Nothing is recorded past a region that cannot be copied: the step is run again once it is fixed.
  if (tooLarge) return { kind: "region_too_large", customerId: tooLarge };
  const cursor = next.at(-1)?.id ?? state.cursor;
  const finished = next.length < limit;
  // A pass finishes when its last step has copied: rows that step copied keep D1's times, all before
  // this one, so the next pass's guard (ownRowsSince) counts none of them.
  const ended = new Date(Math.max(now.getTime(), Date.now())).toISOString();
  await d1.run(sql`
    UPDATE shard_migration SET cursor = ${cursor}, visited = visited + ${next.length}, regions = regions + ${regions},
      customers = customers + ${customers}, updated_at = ${ended},
      finished_at = ${finished ? sql`${ended}` : sql`NULL`}
    WHERE id = ${migrationId}`);
  const total = await d1.get<{ n: number }>(sql`SELECT count(*) AS n FROM customers`);
  return { kind: "migrated", state: (await migrationState(d1)) as MigrationState, total: total?.n ?? 0 };
}

/**
 * The customer tables a migration copies, as counted to check it. Legacy events stay in D1; a table a
 * shard builds from the orders it receives (rebuiltAtTarget) is not compared, as D1 may still be
 * waiting for its backfill.
 */
const countedTables = [
  "identities",
  ...regionRowTables.filter((table) => table !== "legacy_events" && !rebuiltAtTarget.has(table)),
] as const;

export type TableCounts = Record<(typeof countedTables)[number], number>;

/**
 * Rows in each customer table of `db` (D1, or a shard's own database). A full count: for checks, not
 * requests. Of `identities`, those with a verified sighting: each belongs to one identity region and
 * moves with it, where one seen only unverified on a region's orders is kept in every shard that saw it.
 */
export async function customerTableCounts(db: Db): Promise<TableCounts> {
  const rows = await batchRows(
    db,
    countedTables.map((table) =>
      table === "identities"
        ? sql`SELECT count(*) AS n FROM identities WHERE key IN (SELECT identity_key FROM identity_observations WHERE verified = 1)`
        : sql`SELECT count(*) AS n FROM ${sql.raw(table)}`,
    ),
  );
  return Object.fromEntries(countedTables.map((table, i) => [table, Number(rows[i]?.[0]?.n ?? 0)])) as TableCounts;
}

/** Empties a shard of everything a migration copies (see clearedTables). */
export async function clearCustomerData(db: Db): Promise<void> {
  await runBatch(
    db,
    clearedTables.map((table) => sql`DELETE FROM ${sql.raw(table)}`),
  );
}

/**
 * The rows a shard stored itself, which D1 does not hold: with a finished pass's end (`since`),
 * orders, customers created or merged, identifiers and browse rollups dated after it (a copy keeps
 * D1's times, all before the pass finished); before a first pass (`since` null), any customer, order,
 * identity observation or browse rollup at all. Erasures are not counted (they reach D1 too), nor
 * scores (the nightly job writes them again); an identify call that only adds an observation to
 * identifiers already held carries no time and is not seen.
 */
export function ownRowsSince(db: Db, since: string | null): Promise<Record<string, number>> {
  return rowsAfter(db, since, {
    orders: ["orders", "created_at"],
    customers: ["customers", "updated_at"],
    identifiers: ["identities", "created_at"],
    "browse rollups": ["customer_browse", "last_viewed_at"],
    "identity observations": ["identity_observations", null],
  });
}

/**
 * Rows D1 wrote after `since` (a pass's start) that a pass may have missed: new orders, customers
 * created or merged, identifiers, erasures. Counts alone cannot tell an erased customer from a new one.
 */
export function changesSince(d1: Db, since: string): Promise<Record<string, number>> {
  return rowsAfter(d1, since, {
    orders: ["orders", "created_at"],
    customers: ["customers", "updated_at"],
    identities: ["identities", "created_at"],
    suppressions: ["suppressions", "created_at"],
  });
}

/**
 * Per label, the rows of its table whose time column is after `since`, in one batch; with `since`
 * null, every row. A table without a time column (null) is counted only then.
 */
export async function rowsAfter(
  db: Db,
  since: string | null,
  tables: Record<string, [table: string, column: string | null]>,
): Promise<Record<string, number>> {
  const counted = Object.entries(tables).filter(([, [, column]]) => since === null || column !== null);
  const rows = await batchRows(
    db,
    counted.map(([, [table, column]]) =>
      since === null || column === null
        ? sql`SELECT count(*) AS n FROM ${sql.raw(table)}`
        : sql`SELECT count(*) AS n FROM ${sql.raw(table)} WHERE ${sql.raw(column)} > ${since}`,
    ),
  );
  return Object.fromEntries(counted.map(([label], i) => [label, Number(rows[i]?.[0]?.n ?? 0)]));
}
