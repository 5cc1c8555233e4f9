// The migration of a single-database deployment's customer data into customer shards (docs/scaling.md,
// from one database to shards). Each step visits the next customers of the D1 database in id order;
// a customer whose identity region (moves.ts: everything its identifiers connect, closed over whole
// customers) has a smaller customer id was copied with that customer already, so every region is
// copied once, by its smallest customer. A region is copied into the shard a new region would be
// placed in (core/shards/groups.ts's rule for a new region) as a move from D1 is: the target applies
// the rows in one transaction, once per region (its move id), then the home directory entries of its
// keys, and of its customers and orders away from their homes, point at it. D1 is only read, so a step that fails is
// simply run again; the cursor moves only after a step's regions are placed. After a finished pass, the
// next one catches up: it copies again only the regions of customers D1 changed since that pass
// started, and drops from the shards the customers D1 erased meanwhile, so the copy can be taken while
// the deployment keeps writing and the last, short pass run with customer writes paused (write-pause.ts).
import { type SQL, sql } from "drizzle-orm";
import { batchRows, jsonEach, runBatch } from "../../db/batch.ts";
import { allCalls } from "../core/shards/calls.ts";
import { type ChangeScanTable, changeScans } from "../core/shards/catch-up.ts";
import { customerKey, homeShard } from "../core/shards/placement.ts";
import type { Db, Env } from "../env.ts";
import { hmacHex } from "../identity/identity.keys.ts";
import type { Placement } from "./directory.ts";
import {
  type MovePeer,
  type Region,
  type RegionRows,
  rebuiltAtTarget,
  regionOf,
  regionRows,
  regionRowTables,
  sendRegion,
} from "./moves.ts";
import { type ShardStub, shardStub } from "./shards.ts";

export const migrationId = "d1-to-shards";
/** Customers of a step handled at once. */
const concurrency = 8;
/** Customer ids of one shard a catch-up pass's prune checks against D1 per step (ids only: cheap). */
const prunePage = 1000;
/** The `source` a copy from the D1 database carries (shards are numbered from 0). */
export const d1Source = -1;

/**
 * How far earlier than the pass it catches up a catch-up pass looks for D1's changes: a write's rows
 * carry the time its request (or queue batch, up to 15 minutes) started, which may be before a pass
 * that read D1 while it ran. Copying a few regions again costs little.
 */
export const catchUpMarginMs = 15 * 60_000;

export type MigrationMode = "full" | "catch_up";
export type CatchUpPhase = "collect" | "prune" | "copy";

export interface MigrationState {
  shards: number;
  /** "full": every customer of D1, into emptied shards; "catch_up": only what D1 changed after `since`. */
  mode: MigrationMode;
  /** A catch-up pass's phase (null for a full pass). */
  phase: CatchUpPhase | null;
  since: string | null;
  cursor: string | null;
  visited: number;
  regions: number;
  customers: number;
  /** A catch-up pass: the customers it copies again (D1's changes, and those its prune found). */
  changed: number;
  /** A catch-up pass: customers the shards held that D1 no longer does (erased), dropped. */
  pruned: number;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** When customer writes on D1 were paused for the last pass (write-pause.ts); null: open. */
  writesPausedAt: string | null;
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
    mode: row.mode === "catch_up" ? "catch_up" : "full",
    phase: (row.phase as CatchUpPhase | null) ?? null,
    since: (row.since as string | null) ?? null,
    cursor: (row.cursor as string | null) ?? null,
    visited: Number(row.visited),
    regions: Number(row.regions),
    customers: Number(row.customers),
    changed: Number(row.changed),
    pruned: Number(row.pruned),
    startedAt: String(row.started_at),
    updatedAt: String(row.updated_at),
    finishedAt: (row.finished_at as string | null) ?? null,
    writesPausedAt: (row.writes_paused_at as string | null) ?? null,
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

/**
 * The directory entries a region placed in `target` needs, grouped by the home shard that keeps them.
 * `everyEntry` (a catch-up pass) writes one for a customer or order at its home too, over whatever an
 * earlier pass recorded for it.
 */
function entriesByHome(region: Region, target: number, count: number, everyEntry: boolean) {
  const byHome = new Map<number, Placement[]>();
  const add = (key: string, always: boolean) => {
    const home = homeShard(key, count);
    // A customer or an order at its home needs no entry; an identity key is unknown without one.
    if (!always && !everyEntry && home === target) return;
    byHome.set(home, [...(byHome.get(home) ?? []), { key, shard: target }]);
  };
  for (const key of region.keys) add(key, true);
  for (const customer of region.customers) add(customerKey(customer), false);
  for (const source of region.sources) if (source.startsWith("order:")) add(source, false);
  return byHome;
}

/**
 * The shards holding an earlier copy of a region: where the directory places its identifiers and
 * customers (a customer without an entry is at its home). One call per home shard of those keys.
 */
async function holdersOf(env: Env, region: Region, count: number): Promise<Set<number>> {
  const byHome = new Map<number, string[]>();
  for (const key of [...region.keys, ...region.customers.map(customerKey)]) {
    const home = homeShard(key, count);
    byHome.set(home, [...(byHome.get(home) ?? []), key]);
  }
  const holders = new Set<number>();
  await allCalls(
    [...byHome].map(async ([home, keys]) => {
      const placed = await shardStub(env, home).locate(keys);
      for (const key of keys) {
        const shard = placed[key];
        if (shard !== null && shard !== undefined) holders.add(shard);
        else if (key.startsWith("customer:")) holders.add(home);
      }
    }),
  );
  return holders;
}

/** Rows already read, as the one slice sendRegion reads. */
async function* oneSlice(rows: RegionRows): AsyncGenerator<RegionRows> {
  yield rows;
}

/** Copies one region into its shard and points the directory at it. Idempotent (per `moveId`). */
async function copyRegion(
  env: Env,
  d1: Db,
  region: Region,
  count: number,
  moveId: string,
  everyEntry: boolean,
): Promise<void> {
  const target = migrationTarget(region, count);
  // Widget events not yet moved to the events database stay in D1, where export and erasure read
  // them on a sharded deployment too; a shard has no use for them.
  const { legacy_events: _stayInD1, stage_transitions, ...rest } = await regionRows(d1, region);
  // A transition's D1 id is its id in the feed (D1's feed shows it): kept as its sharded feed id, so a
  // client paging GET /v1/admin/transitions goes on across the migration with the cursor it has.
  const rows = { ...rest, stage_transitions: (stage_transitions ?? []).map((row) => ({ ...row, feed_id: row.id })) };
  const shard = shardStub(env, target);
  await sendRegion(shard as unknown as MovePeer, { ...region, moveId, source: d1Source }, oneSlice(rows), count);
  await shard.finishMoveIn(moveId);
  await allCalls(
    [...entriesByHome(region, target, count, everyEntry)].map(([home, entries]) =>
      shardStub(env, home).placeKeys(entries, count),
    ),
  );
}

/**
 * Every row a copy writes in a shard, so a pass starts from empty shards: customer tables, the
 * directory, the moves and erasures' scrubs (the shards serve nothing while the deployment runs on D1).
 */
export const clearedTables = [
  "identities",
  ...regionRowTables,
  "shard_directory",
  "shard_moves",
  "shard_fences",
  "shard_move_parts",
  "erasure_scrubs",
];

/**
 * The most customers a step copies, whatever its `limit`: each costs about 5 D1 queries (its region
 * found, read and recorded; 507 for 100 in tests/worker/shards/subrequests.test.ts, whether a customer
 * has one order or thirteen), and D1 lists 1,000 queries per Worker invocation. 100 keeps a step at
 * half that, with room for regions of several customers, which take more.
 */
export const migrateCustomersPerStep = 100;

/**
 * One step of a migration pass. A pass starts with no migration recorded, after a finished one, or with
 * `full`: a full pass empties the shards and copies D1 from its first customer, `limit` customers a
 * step (at most migrateCustomersPerStep). After a finished pass into the same count a new pass catches
 * up instead (catchUpStep): only what D1 wrote after the last pass started is copied again, so running
 * the command again after D1 changed (orders arrived, a customer was erased) leaves the shards equal to
 * D1 again. Another shard
 * count than an unfinished pass's is refused, and so is a new pass over shards that stored rows of their
 * own since the last pass finished (a deployment switched to them and back), unless `discardShardData`
 * (which starts a full pass).
 */
export async function migrateStep(
  env: Env,
  d1: Db,
  shards: number,
  limit: number,
  now: Date,
  { discardShardData = false, full = false }: { discardShardData?: boolean; full?: boolean } = {},
): Promise<MigrationStep> {
  const at = now.toISOString();
  const recorded = await migrationState(d1);
  if (recorded && recorded.finishedAt === null && recorded.shards !== shards)
    return { kind: "other_count", shards: recorded.shards };
  // `full` also replaces a catch-up under way (the shards hold D1's copy, being brought up to date).
  const restarted = full && recorded !== null && recorded.finishedAt === null && recorded.mode === "catch_up";
  if (!recorded || recorded.finishedAt !== null || restarted) {
    const emptied = Math.max(shards, recorded?.shards ?? 0);
    const stubs = Array.from({ length: emptied }, (_, index) => shardStub(env, index));
    if (!discardShardData && !restarted) {
      // A first pass expects empty shards; a new one, none written since the last pass finished.
      const since = recorded?.finishedAt ?? null;
      const written: Record<string, number> = {};
      for (const counts of await allCalls(stubs.map((stub) => stub.ownRowsSince(since))))
        for (const [table, n] of Object.entries(counts)) written[table] = (written[table] ?? 0) + n;
      if (Object.values(written).some((n) => n > 0)) return { kind: "shards_written", since, written };
    }
    if (recorded && recorded.shards === shards && !full && !discardShardData) {
      const since = new Date(Date.parse(recorded.startedAt) - catchUpMarginMs).toISOString();
      await runBatch(d1, [
        sql`DELETE FROM shard_migration_changes`,
        sql`UPDATE shard_migration SET mode = 'catch_up', phase = 'collect', since = ${since}, cursor = NULL,
          visited = 0, regions = 0, customers = 0, changed = 0, pruned = 0, started_at = ${at}, updated_at = ${at},
          finished_at = NULL
        WHERE id = ${migrationId}`,
      ]);
    } else {
      await allCalls(stubs.map((stub) => stub.clearCustomerData()));
      await runBatch(d1, [
        sql`DELETE FROM shard_migration_changes`,
        sql`
          INSERT INTO shard_migration (id, shards, cursor, visited, regions, customers, started_at, updated_at)
          VALUES (${migrationId}, ${shards}, NULL, 0, 0, 0, ${at}, ${at})
          ON CONFLICT (id) DO UPDATE SET shards = excluded.shards, mode = 'full', phase = NULL, since = NULL,
            cursor = NULL, visited = 0, regions = 0, customers = 0, changed = 0, pruned = 0,
            started_at = excluded.started_at, updated_at = excluded.updated_at, finished_at = NULL`,
      ]);
    }
  }
  const state = (await migrationState(d1)) as MigrationState;
  const take = Math.min(limit, migrateCustomersPerStep);
  if (state.mode === "catch_up") return catchUpStep(env, d1, state, take, now);
  const next = await d1.all<{ id: string }>(sql`
    SELECT id FROM customers WHERE ${state.cursor === null ? sql`true` : sql`id > ${state.cursor}`}
    ORDER BY id LIMIT ${take}`);
  const copied = await copyRegionsOf(env, d1, next, state, (region) => region.customers[0] === region.visited);
  if (copied.kind === "region_too_large") return copied;
  const finished = next.length < take;
  await recordStep(d1, now, {
    cursor: stillHeldUpTo(next.at(-1)?.id ?? state.cursor, "customers"),
    visited: next.length,
    ...copied,
    finished,
  });
  const total = await d1.get<{ n: number }>(sql`SELECT count(*) AS n FROM customers`);
  return { kind: "migrated", state: (await migrationState(d1)) as MigrationState, total: total?.n ?? 0 };
}

/** A customer's region, with the customer it was found from. */
type VisitedRegion = Region & { visited: string };

/**
 * Copies the regions of `customers` that `copies` picks (each region once: by its smallest customer,
 * or its smallest changed one), eight customers at a time; before each copy, `before` runs (a catch-up
 * pass drops the shards' old copy). Answers what it copied, or the first customer whose region is too
 * large (then the step records nothing past it).
 */
async function copyRegionsOf(
  env: Env,
  d1: Db,
  customers: readonly { id: string }[],
  state: MigrationState,
  copies: (region: VisitedRegion) => boolean | Promise<boolean>,
  before: (region: Region) => Promise<void> = async () => undefined,
): Promise<{ kind: "copied"; regions: number; customers: number } | { kind: "region_too_large"; customerId: string }> {
  let regions = 0;
  let copiedCustomers = 0;
  let tooLarge: string | null = null;
  // A pass's copies of one region are told apart from an earlier pass's (a shard applies a move id once).
  const prefix = state.mode === "full" ? "migrate:" : `migrate:${state.startedAt}:`;
  // The record outlives an erasure of the region's customers (forgetErased empties its lists, the
  // prune drops it a week on), so its id names none of them: a keyed hash of the pass and the
  // region's first customer, the same each time a step is run again.
  const moveId = async (region: Region) =>
    `${prefix}${(await hmacHex(`migrate:${state.startedAt}:${region.customers[0]}`, env.IDENTITY_HASH_SECRET)).slice(0, 32)}`;
  // A few customers at a time: each costs several sequential round trips to D1 and the shards. Two of
  // one region in flight at once are harmless: only one of its customers copies it.
  const pending = [...customers];
  const worker = async () => {
    for (let item = pending.shift(); item && !tooLarge; item = pending.shift()) {
      const region = await regionOfCustomer(d1, item.id);
      if (region === "too_large") tooLarge ??= item.id;
      else if (await copies({ ...region, visited: item.id })) {
        await before(region);
        await copyRegion(env, d1, region, state.shards, await moveId(region), state.mode === "catch_up");
        regions++;
        copiedCustomers += region.customers.length;
      }
    }
  };
  await allCalls(Array.from({ length: concurrency }, worker));
  // Nothing is recorded past a region that cannot be copied: the step is run again once it is fixed.
  if (tooLarge) return { kind: "region_too_large", customerId: tooLarge };
  return { kind: "copied", regions, customers: copiedCustomers };
}

/**
 * A step's cursor, decided in the statement that records it: the greatest id D1 still holds (in
 * `customers`, or a catch-up's list of `changes`) at or before the last customer the step visited.
 * An erasure that ran after the step read its page may have taken that customer; it moved the recorded
 * cursor only if that named it (erasure.repo.ts, migrationCursorWithout), so the step goes on from the
 * one before, as the erasure would, and never stores the erased id again.
 */
function stillHeldUpTo(last: string | null, held: "customers" | "changes"): SQL | null {
  if (last === null) return null;
  return held === "customers"
    ? sql`(SELECT max(id) FROM customers WHERE id <= ${last})`
    : sql`(SELECT max(customer_id) FROM shard_migration_changes WHERE customer_id <= ${last})`;
}

/** Records a step's progress; a finished pass is marked with the time its last step ended. */
async function recordStep(
  d1: Db,
  now: Date,
  step: { cursor: string | SQL | null; visited: number; regions: number; customers: number; finished: boolean },
  phase?: CatchUpPhase,
): Promise<void> {
  // A pass finishes when its last step has copied: rows that step copied keep D1's times, all before
  // this one, so the next pass's guard (ownRowsSince) counts none of them.
  const ended = new Date(Math.max(now.getTime(), Date.now())).toISOString();
  await d1.run(sql`
    UPDATE shard_migration SET cursor = ${step.cursor}, visited = visited + ${step.visited},
      regions = regions + ${step.regions}, customers = customers + ${step.customers}, updated_at = ${ended},
      ${phase ? sql`phase = ${phase},` : sql``}
      finished_at = ${step.finished ? sql`${ended}` : sql`NULL`}
    WHERE id = ${migrationId}`);
}

/**
 * Where D1 records a change to a customer after `since`, by table (core/shards/catch-up.ts lists them
 * in the order scanned): customers created or merged, their orders, identifiers, merges (both sides),
 * summaries, the scores, lapses and stage transitions of a nightly run that was still writing, and
 * browse rollups. None of these times is indexed, so each table is scanned by rowid ranges (scanChunk
 * rows a step). Erasures leave nothing to find here (the prune phase finds them in the shards). An
 * identify call marks the customers holding its identifiers updated (identityStatements): its
 * sightings carry no time.
 */
const changedAfter: Record<ChangeScanTable, (since: string) => SQL> = {
  customers: (since) => sql`(created_at > ${since} OR updated_at > ${since})`,
  orders: (since) => sql`created_at > ${since}`,
  identities: (since) => sql`created_at > ${since} AND customer_id IS NOT NULL`,
  identity_merges: (since) => sql`at > ${since}`,
  customer_summaries: (since) => sql`updated_at > ${since}`,
  // A nightly run dates what it writes by its as-of time (its start, or earlier when back-dated), so
  // these go by the runs that were still writing after `since`.
  customer_scores: (since) => sql`run_id IN ${runsWritingAfter(since)}`,
  customer_category_lapses: (since) => sql`run_id IN ${runsWritingAfter(since)}`,
  stage_transitions: (since) => sql`(at > ${since} OR run_id IN ${runsWritingAfter(since)})`,
  customer_browse: (since) => sql`last_viewed_at > ${since}`,
};

/** The job runs that had not finished by `since` (or never did). */
const runsWritingAfter = (since: string) =>
  sql`(SELECT id FROM job_runs WHERE finished_at IS NULL OR finished_at > ${since})`;

/** Rows of one table a collect step reads (by rowid range: one bounded read per step, whatever the table's size). */
const scanChunk = 100_000;

/**
 * One step of a catch-up pass, by phase:
 * - collect: a chunk of one of changeScans' tables into shard_migration_changes per step; after the
 *   last, the shards drop the browse days D1 expired meanwhile;
 * - prune (only when D1 suppressed keys since, i.e. erased a customer): a page of one shard's customer
 *   ids per step (prunePage); those D1 no longer holds are dropped from every shard with their region
 *   there, and the region's customers D1 still holds are copied again;
 * - copy: the next `limit` changed customers (migrateStep caps it at migrateCustomersPerStep); each
 *   region's old copy is dropped where the directory places it (holdersOf) and the region copied again
 *   from D1, with a directory entry for each of its identifiers, customers and orders (one at its home
 *   too, over an earlier pass's).
 */
async function catchUpStep(env: Env, d1: Db, state: MigrationState, limit: number, now: Date): Promise<MigrationStep> {
  const since = state.since as string;
  const changedTotal = async () =>
    Number((await d1.get<{ n: number }>(sql`SELECT count(*) AS n FROM shard_migration_changes`))?.n ?? 0);
  const stubs = Array.from({ length: state.shards }, (_, index) => shardStub(env, index));
  // A catch-up's total is its changed customers, counted when collect and prune add to them.
  const migrated = async (): Promise<MigrationStep> => {
    const updated = (await migrationState(d1)) as MigrationState;
    return { kind: "migrated", state: updated, total: updated.changed };
  };
  if (state.phase === "collect") {
    const [index = 0, after = 0] = (state.cursor ?? "0:0").split(":").map(Number);
    const scan = changeScans[index];
    if (scan) {
      const table = sql.raw(scan.table);
      const [, following = []] = await batchRows(d1, [
        sql`INSERT OR IGNORE INTO shard_migration_changes (customer_id)
          SELECT ${sql.raw(scan.customer)} FROM ${table}
          WHERE rowid > ${after} AND rowid <= ${after + scanChunk} AND ${changedAfter[scan.table](since)}`,
        sql`SELECT rowid AS next FROM ${table} WHERE rowid > ${after + scanChunk} ORDER BY rowid LIMIT 1`,
      ]);
      const next = following[0]?.next;
      // The next chunk starts at the next row there is (rowids may have gaps), else the next table.
      const cursor = next === undefined ? `${index + 1}:0` : `${index}:${Number(next) - 1}`;
      if (next !== undefined || index + 1 < changeScans.length) {
        await recordStep(d1, now, { cursor, visited: 0, regions: 0, customers: 0, finished: false });
        return migrated();
      }
    }
    // D1's nightly job expires old browse days: the shards' copies of them go too.
    const oldest = await d1.get<{ day: string | null }>(sql`SELECT min(day) AS day FROM customer_browse`);
    await allCalls(stubs.map((stub) => stub.expireMigratedBrowse(oldest?.day ?? null)));
    const erased = await d1.get<{ n: number }>(sql`SELECT count(*) AS n FROM suppressions WHERE created_at > ${since}`);
    const phase = (erased?.n ?? 0) > 0 ? "prune" : "copy";
    await d1.run(sql`UPDATE shard_migration SET changed = ${await changedTotal()} WHERE id = ${migrationId}`);
    await recordStep(
      d1,
      now,
      { cursor: phase === "prune" ? "0:" : null, visited: 0, regions: 0, customers: 0, finished: false },
      phase,
    );
    return migrated();
  }
  if (state.phase === "prune") {
    const [shardText = "0", ...rest] = (state.cursor ?? "0:").split(":");
    const shard = Number(shardText);
    const after = rest.join(":");
    const page = await (stubs[shard] as ShardStub).customerIdsAfter(after, prunePage);
    const missing = (
      await d1.all<{ id: string }>(sql`SELECT value AS id FROM ${jsonEach(page)}
        WHERE value NOT IN (SELECT id FROM customers)`)
    ).map((row) => row.id);
    if (missing.length > 0) {
      const region = await (stubs[shard] as ShardStub).localRegion(missing);
      if (region === "too_large") return { kind: "region_too_large", customerId: missing[0] as string };
      // Its identifiers D1 no longer holds were erased with the customer: D1's erasure took their
      // sightings from every order, somebody else's too, and so does the drop. Those seen on the region's
      // orders unverified only go with the orders.
      const erasedKeys = (
        await d1.all<{ key: string }>(sql`SELECT value AS key FROM ${jsonEach(region.keys)}
          WHERE value NOT IN (SELECT key FROM identities)`)
      ).map((row) => row.key);
      await allCalls(stubs.map((stub) => stub.dropMigratedRegion(region, erasedKeys)));
      // The region's customers D1 still holds (joined to an erased one in the shard's copy) are copied again.
      await d1.run(sql`INSERT OR IGNORE INTO shard_migration_changes (customer_id)
        SELECT value FROM ${jsonEach(region.customers)} WHERE value IN (SELECT id FROM customers)`);
      await d1.run(sql`UPDATE shard_migration SET pruned = pruned + ${missing.length},
        changed = (SELECT count(*) FROM shard_migration_changes) WHERE id = ${migrationId}`);
    }
    const last = page.at(-1) ?? null;
    const nextShard = page.length < prunePage ? shard + 1 : shard;
    const phase = nextShard >= state.shards ? "copy" : "prune";
    // Within a shard, after the page's last customer D1 still holds: those after it in the page were
    // dropped (or an erasure meanwhile took them: the next page finds them and drops them).
    const cursor =
      phase === "copy"
        ? null
        : nextShard === shard
          ? sql`${`${shard}:`} || coalesce(${stillHeldUpTo(last, "customers")}, '')`
          : `${nextShard}:`;
    await recordStep(d1, now, { cursor, visited: 0, regions: 0, customers: 0, finished: false }, phase);
    return migrated();
  }
  const next = await d1.all<{ id: string }>(sql`
    SELECT customer_id AS id FROM shard_migration_changes
    WHERE ${state.cursor === null ? sql`true` : sql`customer_id > ${state.cursor}`}
    ORDER BY customer_id LIMIT ${limit}`);
  // A region is copied once a pass, by its smallest changed customer.
  const firstChanged = async (region: VisitedRegion) => {
    const row = await d1.get<{ first: string | null }>(sql`SELECT min(customer_id) AS first
      FROM shard_migration_changes WHERE customer_id IN (SELECT value FROM ${jsonEach(region.customers)})`);
    return (row?.first ?? region.visited) === region.visited;
  };
  // The old copy is dropped where the directory places it (the copy then writes every entry anew).
  const copied = await copyRegionsOf(env, d1, next, state, firstChanged, async (region) => {
    const holders = await holdersOf(env, region, state.shards);
    await allCalls([...holders].map((index) => (stubs[index] as ShardStub).dropMigratedRegion(region)));
  });
  if (copied.kind === "region_too_large") return copied;
  await recordStep(d1, now, {
    cursor: stillHeldUpTo(next.at(-1)?.id ?? state.cursor, "changes"),
    visited: next.length,
    regions: copied.regions,
    customers: copied.customers,
    finished: next.length < limit,
  });
  return migrated();
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

/** A catch-up pass's prune, in a shard: its next customer ids after `after`. */
export async function customerIdsAfter(db: Db, after: string, limit: number): Promise<string[]> {
  const rows = await db.all<{ id: string }>(
    sql`SELECT id FROM customers WHERE id > ${after} ORDER BY id LIMIT ${limit}`,
  );
  return rows.map((row) => row.id);
}

/** A catch-up pass, in a shard: the browse days D1's nightly job expired (before D1's oldest; all when D1 has none). */
export async function expireMigratedBrowse(db: Db, oldest: string | null): Promise<void> {
  await db.run(sql`DELETE FROM customer_browse WHERE ${oldest === null ? sql`true` : sql`day < ${oldest}`}`);
}

/**
 * The rows a shard stored itself, which D1 does not hold: with a finished pass's end (`since`),
 * orders, customers created or merged, identifiers and browse rollups dated after it (a copy keeps
 * D1's times, all before the pass finished); before a first pass (`since` null), any customer, order,
 * identity observation or browse rollup at all. Erasures are not counted (they reach D1 too), nor
 * scores (the nightly job writes them again). An identify call marks the customers holding its
 * identifiers updated, so it is counted under customers.
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
