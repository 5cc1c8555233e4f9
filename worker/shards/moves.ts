// Cross-shard region moves (docs/scaling.md, ingestion across shards). When an order links identity
// regions placed in different shards, the other regions are moved into the target shard before the
// order is ingested there, so the unchanged resolver sees all the evidence in one place.
//
// A move is recorded in the SOURCE shard before anything else, with the region it takes (identity
// keys, customer ids, observation sources) and a fence on every key: from then on the source refuses
// ingestion for those keys (fenceGuard in the write batch). Then, each step idempotent and recorded:
//   copying    the region's rows are sent to the target, which upserts them in one transaction and
//              records the move in ("in"): a copy it already holds is not applied twice. A region
//              too big for one call goes in parts the target stages (shard_move_parts) until the
//              last call applies them all in that one transaction (sendRegion);
//   directory  the home entry of every identity key, `customer:<id>` and `order:<id>` moved points at
//              the target;
//   deleting   the rows are deleted in the source (one transaction with the status change);
//   finishing  the target is told the move is over ("in" done): only then may it move them on;
//   done.
// An interrupted move is resumed by the next call that meets its fence, by a call that finds the
// region still arriving in the target, and by the Durable Object alarm set when it is recorded.
//
// A finished move's records (and the source's fences) are read by no step any more: the source's fence
// still sends a router that located the keys before the directory step elsewhere, and the target's "in"
// record refuses a late copy of the same move. They name the region's customers, keys and orders, so an
// erasure scrubs them from every shard (forgetErased), and every record is pruned a week after its move
// finished (pruneFinishedMoves, the shard's alarm).
import { type SQL, sql } from "drizzle-orm";
import { batchRows, jsonEach, runBatch } from "../../db/batch.ts";
import { jsonChunks, maxJsonParamBytes } from "../../db/json-chunks.ts";
import { allCalls } from "../core/shards/calls.ts";
import { customerKey, homeShard } from "../core/shards/placement.ts";
import type { Db } from "../env.ts";
import { rebuildProductStatements } from "../orders/orders.repo.ts";
import { fenceGuard, isFenceAbort, type Placement, setPlacements } from "./directory.ts";

/** The region a move takes: what every step reads and writes by. */
export interface Region {
  keys: string[];
  customers: string[];
  sources: string[];
}

/** A region's rows, by table, as SELECT * gave them. */
export type RegionRows = Record<string, Record<string, unknown>[]>;

export interface RegionCopy extends Region {
  moveId: string;
  source: number;
  rows: RegionRows;
  /**
   * How many parts of this copy were staged in the target before this call (sendRegion): the target
   * applies them with `rows`. 0 or absent: every row travels in this call.
   */
  parts?: number;
}

/** Parts of a region copy for the target to stage: each a JSON array text of one table's rows. */
export interface RegionParts {
  moveId: string;
  /** The number of the first of `texts`; 0 starts the copy over (its earlier parts are dropped). */
  first: number;
  texts: { table: string; rows: string }[];
}

/** What a move needs from the shards it talks to (CustomerShard's RPC methods). */
export interface MovePeer {
  receiveRegion(copy: RegionCopy, placedBy: number): Promise<boolean>;
  receiveRegionParts(parts: RegionParts, placedBy: number): Promise<unknown>;
  finishMoveIn(moveId: string): Promise<unknown>;
  placeKeys(entries: Placement[], placedBy: number): Promise<unknown>;
  resumeMoves(): Promise<unknown>;
}

/** The shard running a move, and how it reaches the others. */
export interface MoveContext {
  db: Db;
  index: number;
  count: number;
  peer: (index: number) => MovePeer;
  /** Asks for a wake-up (the Durable Object alarm) to resume moves nobody else resumes. */
  wakeLater: () => Promise<void>;
  /** The most bytes of rows one call of a copy carries (moveCallBytes unless a test sets fewer). */
  callBytes?: number;
  /** The most calls a page of moves makes (pageMoveCalls in rebalance-shard.ts unless a test sets fewer). */
  pageCalls?: number;
}

/** Where a region is found from besides its identity keys (regionOf). */
export interface RegionStart {
  customers?: readonly string[];
  sources?: readonly string[];
}

/** A region bigger than this is refused, as loadRegion refuses one (a placeholder identifier). */
export const maxRegionSources = 20_000;

export type MoveOutcome =
  /** The region is in the target now (or there was nothing of it here). */
  | { kind: "moved" }
  /** These keys were moved or are moving by another move: the caller locates them again. */
  | { kind: "retry" }
  | { kind: "region_too_large"; limit: number };

const ids = (items: readonly string[]) => sql`(SELECT value FROM ${jsonEach(items)})`;
const texts = (rows: readonly Record<string, unknown>[], column: string) => rows.map((row) => String(row[column]));

/**
 * Everything connected to `startKeys` here, closed over whole customers: the sources (orders,
 * identify calls) with a verified link to a key, the customers holding a key or owning an order, every
 * key and order of those customers, the customers merged into them. Shared keys are followed too: a
 * key's observations all live in the shard its directory entry names.
 */
export async function regionOf(
  db: Db,
  startKeys: readonly string[],
  /** Gets every customer reached, also when the region is too large (the caller need not walk it again). */
  reached?: Set<string>,
  /**
   * Customers and identify calls to start from besides the keys: a guest's region, or an identify call
   * with no verified identifier, has no identity key to start from.
   */
  start: RegionStart = {},
): Promise<Region | "too_large"> {
  const keys = new Set<string>();
  const sources = new Set<string>();
  const customers = new Set<string>();
  // Only what is held here: a customer or call a move took meanwhile is not this region's.
  const [heldCustomers = [], heldSources = []] =
    (start.customers?.length ?? 0) + (start.sources?.length ?? 0) === 0
      ? []
      : await batchRows(db, [
          sql`SELECT id FROM customers WHERE id IN ${ids(start.customers ?? [])}`,
          sql`SELECT DISTINCT source FROM identity_observations WHERE source IN ${ids(start.sources ?? [])}`,
        ]);
  let frontier = {
    keys: [...new Set(startKeys)],
    sources: texts(heldSources, "source"),
    customers: texts(heldCustomers, "id"),
  };
  for (const key of frontier.keys) keys.add(key);
  for (const source of frontier.sources) sources.add(source);
  for (const customer of frontier.customers) {
    customers.add(customer);
    reached?.add(customer);
  }
  while (frontier.keys.length + frontier.sources.length + frontier.customers.length > 0) {
    // One indexed read per table and direction; orders by id, never by an expression over it.
    const orderIds = frontier.sources.filter((source) => source.startsWith("order:")).map((source) => source.slice(6));
    const [
      keySources = [],
      keyOwners = [],
      sourceKeys = [],
      orderOwners = [],
      customerKeys = [],
      customerOrders = [],
      mergedIn = [],
    ] = await batchRows(db, [
      sql`SELECT DISTINCT source FROM identity_observations WHERE verified = 1 AND identity_key IN ${ids(frontier.keys)}`,
      sql`SELECT DISTINCT customer_id FROM identities WHERE key IN ${ids(frontier.keys)} AND customer_id IS NOT NULL`,
      sql`SELECT DISTINCT identity_key FROM identity_observations WHERE verified = 1 AND source IN ${ids(frontier.sources)}`,
      sql`SELECT DISTINCT customer_id FROM orders WHERE id IN ${ids(orderIds)}`,
      sql`SELECT key FROM identities WHERE customer_id IN ${ids(frontier.customers)}`,
      sql`SELECT 'order:' || id AS source FROM orders WHERE customer_id IN ${ids(frontier.customers)}`,
      sql`SELECT id FROM customers WHERE merged_into IN ${ids(frontier.customers)}`,
    ]);
    const fresh = <T>(seen: Set<T>, found: T[]) => [...new Set(found)].filter((item) => !seen.has(item));
    frontier = {
      keys: fresh(keys, [...texts(sourceKeys, "identity_key"), ...texts(customerKeys, "key")]),
      sources: fresh(sources, [...texts(keySources, "source"), ...texts(customerOrders, "source")]),
      customers: fresh(customers, [
        ...texts(keyOwners, "customer_id"),
        ...texts(orderOwners, "customer_id"),
        ...texts(mergedIn, "id"),
      ]),
    };
    for (const key of frontier.keys) keys.add(key);
    for (const source of frontier.sources) sources.add(source);
    for (const customer of frontier.customers) {
      customers.add(customer);
      reached?.add(customer);
    }
    if (sources.size > maxRegionSources) return "too_large";
  }
  return { keys: [...keys].sort(), customers: [...customers].sort(), sources: [...sources].sort() };
}

/**
 * The rows of a region, table by table: a customer's data is every row of these tables
 * (db/schema.ts; audiences and the suppression list are shared state, in D1). `seen_identities` are
 * identifiers seen only unverified on the region's sources: copied, and deleted from the source only
 * when nothing there still sees them.
 */
function regionTables({ keys, customers, sources }: Region): Record<string, SQL> {
  const c = ids(customers);
  const orderIds = sql`(SELECT id FROM orders WHERE customer_id IN ${c})`;
  return {
    customers: sql`customers WHERE id IN ${c}`,
    identities: sql`identities WHERE key IN ${ids(keys)}`,
    seen_identities: sql`identities WHERE key IN (SELECT identity_key FROM identity_observations
      WHERE source IN ${ids(sources)}) AND key NOT IN ${ids(keys)}`,
    identity_observations: sql`identity_observations WHERE source IN ${ids(sources)}`,
    // A merge's survivor at the time is in the region whenever its merged-away customer is (both follow
    // merged_into to a customer of the region), so the survivor's index finds every merge.
    identity_merges: sql`identity_merges WHERE into_customer_id IN ${c}`,
    order_lines: sql`order_lines WHERE order_id IN ${orderIds}`,
    orders: sql`orders WHERE customer_id IN ${c}`,
    customer_summaries: sql`customer_summaries WHERE customer_id IN ${c}`,
    customer_category_stats: sql`customer_category_stats WHERE customer_id IN ${c}`,
    customer_products: sql`customer_products WHERE customer_id IN ${c}`,
    customer_scores: sql`customer_scores WHERE customer_id IN ${c}`,
    customer_category_lapses: sql`customer_category_lapses WHERE customer_id IN ${c}`,
    stage_transitions: sql`stage_transitions WHERE customer_id IN ${c}`,
    customer_browse: sql`customer_browse WHERE customer_id IN ${c}`,
    legacy_events: sql`legacy_events WHERE customer_id IN ${c}`,
  };
}

/** Tables whose rowid is local to a database: copied without it (the target numbers them). */
const localIds: Record<string, string> = { identity_merges: "id", stage_transitions: "id", legacy_events: "id" };
/** How a copied row meets one already in the target: the region's own rows replace; the others yield. */
const yields = new Set(["seen_identities", "stage_transitions", "legacy_events"]);
const tableOf = (name: string) => (name === "seen_identities" ? "identities" : name);

/**
 * Region tables the target builds from the orders it receives (receiveRegion) instead of copying: the
 * source's product rows may predate its backfill (migration 0019).
 */
export const rebuiltAtTarget: ReadonlySet<string> = new Set(["customer_products"]);

/** The copied tables, in the order a copy applies them (regionTables' order). */
const copiedTables = Object.keys(regionTables({ keys: [], customers: [], sources: [] })).filter(
  (name) => !rebuiltAtTarget.has(name),
);

/** Reads `names` of `tables` in one batch. */
async function readTables(db: Db, tables: Record<string, SQL>, names: readonly string[]): Promise<RegionRows> {
  const rows = await batchRows(
    db,
    names.map((name) => sql`SELECT * FROM ${tables[name] as SQL}`),
  );
  return Object.fromEntries(names.map((name, i) => [name, rows[i] ?? []]));
}

/** A region's rows, every copied table, in one batch (the migration's read of D1). */
export function regionRows(db: Db, region: Region): Promise<RegionRows> {
  return readTables(db, regionTables(region), copiedTables);
}

/** The tables read by the region's customers (the rest by its keys, or by its sources). */
const byCustomer = copiedTables.filter(
  (name) => !["identities", "seen_identities", "identity_observations", "order_lines"].includes(name),
);
const slices = <T>(items: readonly T[], size: number) =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

/**
 * A region's rows a slice at a time, for a copy that may not fit in one call: the customers' rows 100
 * customers a read, identities 500 keys a read, observations and order lines 100 sources (orders,
 * identify calls) a read, so one read holds a slice of the region, never all of it. An identifier
 * seen on several slices' sources comes once.
 */
export async function* regionRowSlices(db: Db, region: Region): AsyncGenerator<RegionRows> {
  for (const customers of slices(region.customers, 100))
    yield await readTables(db, regionTables({ ...region, customers }), byCustomer);
  for (const keys of slices(region.keys, 500))
    yield await readTables(db, regionTables({ ...region, keys }), ["identities"]);
  const seen = new Set<string>();
  for (const sources of slices(region.sources, 100)) {
    const orderIds = sources.filter((source) => source.startsWith("order:")).map((source) => source.slice(6));
    const tables = {
      ...regionTables({ ...region, sources }),
      order_lines: sql`order_lines WHERE order_id IN ${ids(orderIds)}`,
    };
    const rows = await readTables(db, tables, ["identity_observations", "seen_identities", "order_lines"]);
    rows.seen_identities = (rows.seen_identities ?? []).filter((row) => !seen.has(String(row.key)));
    for (const row of rows.seen_identities) seen.add(String(row.key));
    yield rows;
  }
}

/**
 * The most bytes of rows (as JSON) one call of a region copy carries: Workers RPC refuses a call over
 * 32 MiB, and a copy's rows cost more than their JSON to send.
 */
export const moveCallBytes = 8_000_000;

/**
 * Sends a region's copy to `target`, its rows read slice by slice from `read`: in one call
 * (receiveRegion) when they fit in `callBytes`, else as parts the target stages (receiveRegionParts,
 * each call under `callBytes`) and a last call that applies them all at once. A copy sent again starts
 * its parts over. Answers receiveRegion's answer (false: refused for now, sent again later).
 */
export async function sendRegion(
  target: MovePeer,
  copy: Omit<RegionCopy, "rows" | "parts">,
  read: AsyncIterable<RegionRows>,
  placedBy: number,
  callBytes = moveCallBytes,
): Promise<boolean> {
  let held: RegionRows = {};
  let heldBytes = 0;
  let parts = 0;
  /** Sends what is held as parts, in calls of at most `callBytes` (one text a call at least). */
  const sendHeld = async () => {
    let call: RegionParts["texts"] = [];
    let callSize = 0;
    const sendCall = async () => {
      if (call.length === 0) return;
      await target.receiveRegionParts({ moveId: copy.moveId, first: parts, texts: call }, placedBy);
      parts += call.length;
      call = [];
      callSize = 0;
    };
    for (const [table, rows] of Object.entries(held))
      for (const text of jsonChunks(rows, Math.min(maxJsonParamBytes, callBytes))) {
        if (callSize + text.length > callBytes) await sendCall();
        call.push({ table, rows: text });
        callSize += text.length;
      }
    await sendCall();
    held = {};
    heldBytes = 0;
  };
  for await (const slice of read) {
    for (const [table, rows] of Object.entries(slice)) {
      if (rows.length === 0) continue;
      const into = held[table] ?? [];
      for (const row of rows) into.push(row);
      held[table] = into;
      heldBytes += JSON.stringify(rows).length;
    }
    if (heldBytes > callBytes) await sendHeld();
  }
  if (parts === 0) {
    const rows = Object.fromEntries(copiedTables.flatMap((name) => (held[name] ? [[name, held[name]]] : [])));
    return target.receiveRegion({ ...copy, rows }, placedBy);
  }
  if (heldBytes > 0) await sendHeld();
  return target.receiveRegion({ ...copy, rows: {}, parts }, placedBy);
}

/**
 * In the target: stages parts of a region copy too big for one call, until its last call
 * (receiveRegion) applies them. A part of a copy already applied is not staged; part 0 drops the parts
 * an earlier attempt of the same copy staged.
 */
export async function stageRegionParts(db: Db, parts: RegionParts, now: string): Promise<void> {
  const applied = sql`EXISTS (SELECT 1 FROM shard_moves WHERE id = ${parts.moveId} AND direction = 'in')`;
  await runBatch(db, [
    ...(parts.first === 0 ? [sql`DELETE FROM shard_move_parts WHERE move_id = ${parts.moveId}`] : []),
    ...parts.texts.map(
      (text, i) => sql`
        INSERT OR REPLACE INTO shard_move_parts (move_id, part, table_name, rows, created_at)
        SELECT ${parts.moveId}, ${parts.first + i}, ${text.table}, ${text.rows}, ${now} WHERE NOT ${applied}`,
    ),
  ]);
}

/** INSERT … SELECT of JSON rows (`value`s of `from`) into a table, `columns` but a local rowid. */
function insertFrom(name: string, columns: readonly string[], from: SQL): SQL {
  const kept = columns.filter((column) => column !== localIds[name]);
  const values = sql.raw(kept.map((column) => `value ->> '${column}'`).join(", "));
  const verb = sql.raw(yields.has(name) ? "INSERT OR IGNORE" : "INSERT OR REPLACE");
  const target = sql.raw(`${tableOf(name)} (${kept.join(", ")})`);
  return sql`${verb} INTO ${target} SELECT ${values} FROM ${from}`;
}

/** INSERT … SELECT of JSON rows into a table, every column the rows have (but a local rowid). */
function insertRows(name: string, rows: readonly Record<string, unknown>[]): SQL | null {
  if (rows.length === 0) return null;
  return insertFrom(name, Object.keys(rows[0] as object), jsonEach(rows));
}

/**
 * The inserts of a copy's staged parts, table by table in the order a copy applies them, with the
 * delete of the parts. Null when fewer than `parts` are staged (a part lost: the copy is sent again).
 */
async function stagedInserts(db: Db, moveId: string, parts: number): Promise<SQL[] | null> {
  const staged = await db.all<{ table_name: string; n: number; part: number }>(sql`
    SELECT table_name, count(*) AS n, min(part) AS part FROM shard_move_parts
    WHERE move_id = ${moveId} GROUP BY table_name`);
  if (staged.reduce((sum, table) => sum + table.n, 0) !== parts) return null;
  // A table's columns, from its first staged row (every row of a table has them all: SELECT *).
  const firstRows = await batchRows(
    db,
    staged.map(
      ({ part }) =>
        sql`SELECT json_extract(rows, '$[0]') AS row FROM shard_move_parts WHERE move_id = ${moveId} AND part = ${part}`,
    ),
  );
  const columns = new Map(
    staged.map((table, i) => [table.table_name, Object.keys(JSON.parse(String(firstRows[i]?.[0]?.row)))]),
  );
  const from = (name: string) =>
    sql`shard_move_parts p, json_each(p.rows) WHERE p.move_id = ${moveId} AND p.table_name = ${name}`;
  return [
    ...copiedTables.flatMap((name) => {
      const kept = columns.get(name);
      return kept ? [insertFrom(name, kept, from(name))] : [];
    }),
    sql`DELETE FROM shard_move_parts WHERE move_id = ${moveId}`,
  ];
}

/**
 * In the target: applies a region's copy once. The "in" record is inserted in the same transaction,
 * so a copy sent again (a resumed move) fails on its primary key and changes nothing; the keys'
 * fences are lifted (a region that comes back is writable here again). Refused (false) while one of
 * its keys is still fenced by an unfinished move out of here: the region is not whole until that one
 * finished, and the sender retries later.
 */
export async function receiveRegion(db: Db, copy: RegionCopy, now: string): Promise<boolean> {
  let staged: SQL[] = [];
  if (copy.parts) {
    const applied = await db.get(sql`SELECT 1 FROM shard_moves WHERE id = ${copy.moveId} AND direction = 'in'`);
    if (applied) return true;
    const inserts = await stagedInserts(db, copy.moveId, copy.parts);
    if (!inserts) throw new Error(`region copy ${copy.moveId}: a part is missing here; the copy is sent again`);
    staged = inserts;
  }
  const statements = [
    sql`
      INSERT INTO shard_fences (key, move_id, created_at)
      SELECT NULL, '', '' WHERE EXISTS (
        SELECT 1 FROM shard_fences f JOIN shard_moves m ON m.id = f.move_id AND m.direction = 'out'
        WHERE m.status IN ${unfinishedMove} AND f.key IN ${ids(copy.keys)})`,
    sql`
      INSERT INTO shard_moves (id, direction, peer, keys, customers, sources, status, created_at, updated_at)
      VALUES (${copy.moveId}, 'in', ${copy.source}, ${JSON.stringify(copy.keys)}, ${JSON.stringify(copy.customers)},
        ${JSON.stringify(copy.sources)}, 'copying', ${now}, ${now})`,
    ...Object.entries(copy.rows).flatMap(([name, rows]) => insertRows(name, rows) ?? []),
    ...staged,
    // Built here from the orders that came (rebuiltAtTarget): this shard's own backfill pass may be past
    // these customers' ids.
    ...rebuildProductStatements(copy.customers),
    sql`DELETE FROM shard_fences WHERE key IN ${ids(copy.keys)}`,
  ];
  try {
    await runBatch(db, statements);
    return true;
  } catch (error) {
    if (isFenceAbort(error)) return false;
    if (!String((error as Error)?.message ?? error).includes("UNIQUE constraint failed: shard_moves")) throw error;
    return true;
  }
}

/** In the target: the source has finished; the region may be moved on from here. */
export async function finishMoveIn(db: Db, moveId: string, now: string): Promise<void> {
  await runBatch(db, [
    sql`UPDATE shard_moves SET status = 'done', updated_at = ${now} WHERE id = ${moveId} AND direction = 'in'`,
  ]);
}

/** How long a finished move's records and fences are kept (a router's plan is stale for seconds, not days). */
export const finishedMoveRetentionMs = 7 * 86_400_000;

/** Moves in or out of here not done yet. */
export async function unfinishedMoves(db: Db): Promise<number> {
  const row = await db.get<{ n: number }>(sql`SELECT count(*) AS n FROM shard_moves WHERE status IN ${unfinishedMove}`);
  return row?.n ?? 0;
}

/** Moves out of here whose region may still be here, whole or in part: their records and fences are needed. */
const unfinishedOut = sql`(SELECT id FROM shard_moves WHERE direction = 'out' AND status IN ('copying', 'directory', 'deleting'))`;

/** What an erasure removed, as the move records name it: its customers, identifiers and sources. */
export interface ErasedRegion {
  customers: string[];
  identifiers: { key: string; kind: string }[];
  sources: string[];
}

/**
 * An erasure's part here: scrubs its customers, keys and sources from the records of finished moves
 * (out of here once the region's rows are deleted here; into here once done), and deletes the fences of
 * its keys that such moves left, putting those keys on this shard's own suppression list in their stead
 * (the keyed hashes every list of the erasure holds): a router that located them here before the move
 * is still refused. Records and fences of a move still under way are left (an erasure is refused while
 * one takes the customer: eraseCustomerIn). Answers how many records and fences it changed.
 */
export async function forgetErased(
  db: Db,
  erased: ErasedRegion,
  now: string,
): Promise<{ moves: number; fences: number }> {
  const keys = erased.identifiers.map((identifier) => identifier.key);
  const fenced = sql`key IN ${ids(keys)} AND move_id NOT IN ${unfinishedOut}`;
  const without = (column: string, items: readonly string[]) =>
    sql`(SELECT json_group_array(value) FROM json_each(${sql.raw(`shard_moves.${column}`)}) WHERE value NOT IN ${ids(items)})`;
  const names = (column: string, items: readonly string[]) =>
    sql`EXISTS (SELECT 1 FROM json_each(${sql.raw(`shard_moves.${column}`)}) WHERE value IN ${ids(items)})`;
  const [, fences, moves] = await runBatch(db, [
    sql`
      INSERT OR IGNORE INTO suppressions (key, kind, created_at)
      SELECT value ->> 'key', value ->> 'kind', ${now} FROM ${jsonEach(erased.identifiers)}
      WHERE value ->> 'key' IN (SELECT key FROM shard_fences WHERE ${fenced})`,
    sql`DELETE FROM shard_fences WHERE ${fenced}`,
    sql`
      UPDATE shard_moves SET keys = ${without("keys", keys)}, customers = ${without("customers", erased.customers)},
        sources = ${without("sources", erased.sources)}
      WHERE ((direction = 'in' AND status = 'done') OR (direction = 'out' AND id NOT IN ${unfinishedOut}))
        AND (${names("keys", keys)} OR ${names("customers", erased.customers)} OR ${names("sources", erased.sources)})`,
  ]);
  return { moves: moves?.meta.changes ?? 0, fences: fences?.meta.changes ?? 0 };
}

/**
 * Deletes the records of moves done before `before`, the fences of those out of here, and copy parts
 * staged before it. Answers when
 * the oldest record of a done move left was last updated (null: none), for the next prune.
 */
export async function pruneFinishedMoves(db: Db, before: string): Promise<string | null> {
  const [, , oldest = []] = await batchRows(db, [
    sql`DELETE FROM shard_fences WHERE move_id IN (SELECT id FROM shard_moves
      WHERE direction = 'out' AND status = 'done' AND updated_at < ${before})`,
    sql`DELETE FROM shard_moves WHERE status = 'done' AND updated_at < ${before}`,
    sql`SELECT min(updated_at) AS at FROM shard_moves WHERE status = 'done'`,
    // Parts a copy staged that no last call applied (its source sends them again when it resumes).
    sql`DELETE FROM shard_move_parts WHERE created_at < ${before}`,
  ]);
  const at = oldest[0]?.at;
  return typeof at === "string" ? at : null;
}

/**
 * The tables holding a region's rows besides `identities` (whose rows need more care, below), children
 * before parents: the order they are deleted in.
 */
export const regionRowTables = [
  "order_lines",
  "orders",
  "identity_observations",
  "identity_merges",
  "customer_summaries",
  "customer_category_stats",
  "customer_products",
  "customer_scores",
  "customer_category_lapses",
  "stage_transitions",
  "customer_browse",
  "legacy_events",
  "customers",
] as const;

/** In the source: deletes the region's rows (children first) with the status change, in one transaction. */
function deleteStatements(region: Region): SQL[] {
  const tables = regionTables(region);
  const observedHere = sql`EXISTS (SELECT 1 FROM identity_observations o
    WHERE o.identity_key = identities.key AND o.source NOT IN ${ids(region.sources)})`;
  return [
    // An identifier of the region that sources left here still saw (unverified) stays for them, held
    // by nobody here: its holder and its directory entry are in the target now.
    sql`UPDATE identities SET customer_id = NULL WHERE key IN ${ids(region.keys)} AND ${observedHere}`,
    sql`DELETE FROM identities WHERE key IN ${ids(region.keys)} AND NOT ${observedHere}`,
    // An identifier only ever seen unverified stays while a source outside the region still sees it.
    sql`DELETE FROM identities WHERE customer_id IS NULL AND key IN (SELECT identity_key FROM identity_observations
      WHERE source IN ${ids(region.sources)}) AND key NOT IN ${ids(region.keys)} AND NOT ${observedHere}`,
    ...regionRowTables.map((name) => sql`DELETE FROM ${tables[name] as SQL}`),
  ];
}

/**
 * Deletes a region's rows here, the directory entries this shard keeps for its keys, customers and
 * orders, and the records of migration copies that named its customers: a migration's catch-up pass
 * (migrate.ts), before it copies the region from D1 again or after D1 erased it. `erasedKeys`, the
 * region's identifiers D1 erased, go from every source here as D1's erasure took them (a sighting on
 * somebody else's order included). Only while the deployment runs on D1, when no shard serves.
 */
export async function dropRegion(
  db: Db,
  region: Region,
  d1Source: number,
  erasedKeys: readonly string[] = [],
): Promise<void> {
  const entries = [
    ...region.keys,
    ...region.customers.map(customerKey),
    ...region.sources.filter((source) => source.startsWith("order:")),
  ];
  await runBatch(db, [
    ...deleteStatements(region),
    sql`DELETE FROM identity_observations WHERE identity_key IN ${ids(erasedKeys)}`,
    sql`DELETE FROM identities WHERE key IN ${ids(erasedKeys)}`,
    sql`DELETE FROM shard_directory WHERE key IN ${ids([...entries, ...erasedKeys])}`,
    sql`DELETE FROM shard_moves WHERE direction = 'in' AND peer = ${d1Source} AND EXISTS (
      SELECT 1 FROM json_each(shard_moves.customers) WHERE value IN ${ids(region.customers)})`,
  ]);
}

interface MoveRow extends Region {
  id: string;
  peer: number;
  status: Status;
}

const statuses = ["copying", "directory", "deleting", "finishing", "done"] as const;
/**
 * The statuses of a move not done yet, as an SQL list: `status IN ${unfinishedMove}` finds unfinished
 * moves along shard_moves_status_idx, where `status != 'done'` reads every move kept (a week of them).
 */
export const unfinishedMove = sql.raw(
  `(${statuses
    .filter((status) => status !== "done")
    .map((status) => `'${status}'`)
    .join(", ")})`,
);
type Status = (typeof statuses)[number];

function moveRowOf(row: Record<string, unknown>): MoveRow {
  return {
    id: String(row.id),
    peer: Number(row.peer),
    status: row.status as Status,
    keys: JSON.parse(String(row.keys)),
    customers: JSON.parse(String(row.customers)),
    sources: JSON.parse(String(row.sources)),
  };
}

/** Advances a move's status, never backwards (two resumptions of one move may overlap). */
function advance(id: string, status: Status, now: string): SQL {
  const later = statuses.slice(statuses.indexOf(status));
  return sql`UPDATE shard_moves SET status = ${status}, updated_at = ${now}
    WHERE id = ${id} AND direction = 'out' AND status NOT IN ${ids(later)}`;
}

async function loadMove(db: Db, id: string): Promise<MoveRow | null> {
  const row = await db.get<Record<string, unknown>>(
    sql`SELECT * FROM shard_moves WHERE id = ${id} AND direction = 'out'`,
  );
  return row ? moveRowOf(row) : null;
}

/** Runs the next step of a recorded move; answers the status it left the move in (null: no such move). */
export async function runStep(ctx: MoveContext, id: string): Promise<Status | null> {
  const { db } = ctx;
  const move = await loadMove(db, id);
  if (!move || move.status === "done") return move?.status ?? null;
  const now = new Date().toISOString();
  const target = ctx.peer(move.peer);
  switch (move.status) {
    case "copying": {
      const copy = { ...move, moveId: id, source: ctx.index };
      if (!(await sendRegion(target, copy, regionRowSlices(db, move), ctx.count, ctx.callBytes))) return "copying";
      await runBatch(db, [advance(id, "directory", now)]);
      return "directory";
    }
    case "directory":
      await pointAt(ctx, move, move.peer, now);
      await runBatch(db, [advance(id, "deleting", now)]);
      return "deleting";
    case "deleting":
      await runBatch(db, [...deleteStatements(move), advance(id, "finishing", now)]);
      return "finishing";
    case "finishing":
      await target.finishMoveIn(id);
      await runBatch(db, [advance(id, "done", now)]);
      return "done";
  }
}

/** Runs a recorded move to done, or until a step cannot advance (the target refused the copy for now). */
async function runSteps(ctx: MoveContext, id: string): Promise<void> {
  let status = (await loadMove(ctx.db, id))?.status ?? null;
  while (status !== null && status !== "done") {
    const next = await runStep(ctx, id);
    if (next === status) return;
    status = next;
  }
}

/**
 * The directory entries a region's move rewrites at their homes: its identity keys, customers and
 * orders, and, for a region with no key, its identify calls (such a call is found by its source alone).
 */
export function regionEntries(region: Region): string[] {
  const orders = region.sources.filter((source) => source.startsWith("order:"));
  const calls = region.keys.length === 0 ? region.sources.filter((source) => source.startsWith("identify:")) : [];
  return [...region.keys, ...region.customers.map(customerKey), ...orders, ...calls];
}

/** Rewrites the home entries of the region's keys, customers and orders: they are in `shard` now. */
async function pointAt(ctx: MoveContext, region: Region, shard: number, now: string): Promise<void> {
  const byHome = new Map<number, Placement[]>();
  for (const key of regionEntries(region)) {
    const home = homeShard(key, ctx.count);
    byHome.set(home, [...(byHome.get(home) ?? []), { key, shard }]);
  }
  await allCalls(
    [...byHome].map(([home, entries]) =>
      home === ctx.index ? setPlacements(ctx.db, entries, now) : ctx.peer(home).placeKeys(entries, ctx.count),
    ),
  );
}

/** Moves in progress in this isolate, by shard and move: a move resumed twice at once runs once. */
const running = new Map<string, Promise<void>>();

/** Runs a move to done, or joins its run already under way here. */
export function resumeMove(ctx: MoveContext, id: string): Promise<void> {
  const slot = `${ctx.index}:${id}`;
  let run = running.get(slot);
  if (!run) {
    run = runSteps(ctx, id).finally(() => running.delete(slot));
    running.set(slot, run);
  }
  return run;
}

/** Resumes every unfinished move out of this shard (the alarm, and callers that met a fence). */
export async function resumeMovesOut(ctx: MoveContext, only?: ReadonlySet<string>): Promise<number> {
  const rows = await ctx.db.all<{ id: string }>(
    sql`SELECT id FROM shard_moves WHERE direction = 'out' AND status IN ${unfinishedMove} ORDER BY created_at`,
  );
  const pending = rows.map((row) => row.id).filter((id) => !only || only.has(id));
  await allCalls(pending.map((id) => resumeMove(ctx, id)));
  return pending.length;
}

/**
 * Resumes moves for a caller that only needs them out of the way: a step that fails (a shard
 * unreachable, a copy too big for one call) is logged, and the move stays recorded and fenced for the
 * next call or the alarm; the caller goes round again.
 */
export async function nudgeMovesOut(ctx: MoveContext, only: ReadonlySet<string>): Promise<void> {
  try {
    await resumeMovesOut(ctx, only);
  } catch (error) {
    console.error(
      JSON.stringify({ error: "shard_move_step", shard: ctx.index, moves: [...only], cause: String(error) }),
    );
  }
}

/** Of `keys`, those arriving here by a move whose source has not finished, with that source. */
async function arriving(db: Db, keys: readonly string[]): Promise<Set<number>> {
  if (keys.length === 0) return new Set();
  const rows = await db.all<{ peer: number }>(sql`
    SELECT DISTINCT m.peer FROM shard_moves m, json_each(m.keys) k
    WHERE m.direction = 'in' AND m.status IN ${unfinishedMove} AND k.value IN ${ids(keys)}`);
  return new Set(rows.map((row) => row.peer));
}

/** Aborts a move's record batch (as fenceGuard) when one of `keys` arrived here meanwhile by an unfinished move. */
function arrivingGuard(keys: readonly string[]): SQL {
  return sql`
    INSERT INTO shard_fences (key, move_id, created_at)
    SELECT NULL, '', '' WHERE EXISTS (
      SELECT 1 FROM shard_moves m, json_each(m.keys) k
      WHERE m.direction = 'in' AND m.status IN ${unfinishedMove} AND k.value IN ${ids(keys)})`;
}

/**
 * Moves the region of `keys` out of this shard into `target`: a move out of here that holds these
 * keys is resumed first (they are elsewhere now: the caller locates them again); otherwise the move is
 * recorded (recordMoveOut, which waits for a region still arriving here) and run. `moved` only when
 * it is done.
 */
export async function moveRegionOut(
  ctx: MoveContext,
  keys: readonly string[],
  target: number,
  /** Checked against the region found when the move is recorded: false leaves it (`retry`). */
  accept?: (region: Region) => boolean,
  /** Where the region is found from besides `keys` (regionOf's start): a guest has no key to find it by. */
  start: RegionStart = {},
): Promise<MoveOutcome> {
  const { db } = ctx;
  const fenced = await db.all<{ move_id: string }>(
    sql`SELECT DISTINCT move_id FROM shard_fences WHERE key IN ${ids(keys)}`,
  );
  if (fenced.length > 0) {
    await nudgeMovesOut(ctx, new Set(fenced.map((row) => row.move_id)));
    return { kind: "retry" };
  }
  const recorded = await recordMoveOut(ctx, keys, target, accept, start);
  if (recorded.kind !== "recorded") return recorded;
  await nudgeMovesOut(ctx, new Set([recorded.id]));
  return (await loadMove(db, recorded.id))?.status === "done" ? { kind: "moved" } : { kind: "retry" };
}

/** Orders and identify calls one move takes at most when it carries several regions (a region alone may take more). */
export const sourcesPerMove = 2_000;

/**
 * Moves the regions of several groups of keys out of this shard into `target`, as one move when it
 * can: a batch of orders joining many customers across two shards makes one move per source and
 * target, not one per customer (a move costs a copy, a directory call per home shard and a finish,
 * whatever it carries). The one move is recorded, fenced and run as any other; its region is the
 * union of the groups' regions. When it cannot be made as one (a key of some group fenced by another
 * move, a region still arriving here, more than `sourcesPerMove` sources in all, a step that failed),
 * each group is moved on its own, as moveRegionOut moves one, so a group held up holds up no other.
 * Answers each group's outcome.
 */
export async function moveGroupsOut(
  ctx: MoveContext,
  groups: readonly (readonly string[])[],
  target: number,
): Promise<MoveOutcome[]> {
  if (groups.length > 1) {
    const together = await moveRegionOut(
      ctx,
      [...new Set(groups.flat())],
      target,
      (region) => region.sources.length <= sourcesPerMove,
    );
    if (together.kind === "moved") return groups.map(() => together);
  }
  return allCalls(groups.map((keys) => moveRegionOut(ctx, keys, target)));
}

/**
 * Records a move of the region of `keys` out of this shard and fences it, in one batch (which aborts
 * if another move fenced one of its keys, or a move into here brought one, meanwhile), and asks for the alarm that resumes it if
 * nothing else does. Nothing is copied yet: resumeMove runs it.
 */
export async function recordMoveOut(
  ctx: MoveContext,
  keys: readonly string[],
  target: number,
  accept?: (region: Region) => boolean,
  start: RegionStart = {},
): Promise<{ kind: "recorded"; id: string } | Exclude<MoveOutcome, { kind: "moved" }>> {
  const region = await regionOf(ctx.db, keys, undefined, start);
  if (region === "too_large") return { kind: "region_too_large", limit: maxRegionSources };
  if (accept && !accept(region)) return { kind: "retry" };
  // A region still arriving here is not whole yet: its source is asked to finish first.
  const sources = await arriving(ctx.db, region.keys);
  if (sources.size > 0) {
    const finish = (source: number) =>
      ctx
        .peer(source)
        .resumeMoves()
        .catch((error) => {
          console.error(JSON.stringify({ error: "shard_move_step", shard: source, cause: String(error) }));
        });
    await allCalls([...sources].map(finish));
    return { kind: "retry" };
  }
  const id = crypto.randomUUID();
  const now = new Date().toISOString();
  try {
    await runBatch(ctx.db, [
      fenceGuard(region.keys),
      arrivingGuard(region.keys),
      sql`
        INSERT INTO shard_moves (id, direction, peer, keys, customers, sources, status, created_at, updated_at)
        VALUES (${id}, 'out', ${target}, ${JSON.stringify(region.keys)}, ${JSON.stringify(region.customers)},
          ${JSON.stringify(region.sources)}, 'copying', ${now}, ${now})`,
      sql`
        INSERT INTO shard_fences (key, move_id, created_at)
        SELECT value, ${id}, ${now} FROM ${jsonEach(region.keys)}`,
    ]);
  } catch (error) {
    if (isFenceAbort(error)) return { kind: "retry" };
    throw error;
  }
  await ctx.wakeLater();
  return { kind: "recorded", id };
}
