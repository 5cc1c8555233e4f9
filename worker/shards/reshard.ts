// Changing the customer shards from N to M (`patron shards reshard`, docs/scaling.md, resharding).
// Growing, data stays where it is: the hash decides only each key's home (where its directory entry
// lives), and jump consistent hashing moves a key's home only to one of the new shards. So a reshard
// writes, at its new home, the entry of every key whose home moved: the old shards' directory entries,
// and an entry for each of their customers and orders (at their old home they needed none).
// Shrinking, the shards removed must hold nothing: a drain first moves every region they hold to a
// shard that stays, then the walk copies their directory entries to their homes among M. One step per
// call, a page of one shard at a time, resumable from the cursor recorded in D1:
//
// 0. "draining" (shrinking only), under N: every customer of the shards removed is moved, with its
//    region, by the moves ingestion runs; passes repeat until they hold no customer data.
// 1. "copying", under SHARD_COUNT = N: the walk. At its end every old shard checks it wrote nothing
//    that places keys since the walk began (and has no move unfinished), and is marked prepared: from
//    then on it takes no writes under N (so the copy stays complete) and serves under M as well. A
//    shard that wrote starts the walk over (the marks and the new shards' copied entries go).
// 2. "prepared": the deployment is switched to SHARD_COUNT = M; each old shard takes M as its own
//    count when it first starts under it (the new shards record it on first use).
// 3. "cleaning", under M: growing, each old shard deletes the entries it keeps for keys homed in a new
//    shard now, and drops its mark; shrinking, each shard that stays takes the walk's entries as its
//    own and drops its mark, and each shard removed is emptied; then "done".
import { sql } from "drizzle-orm";
import { allCalls } from "../core/shards/calls.ts";
import type { Db, Env } from "../env.ts";
import type { Placement } from "./directory.ts";
import { type ReshardPart, reshardParts } from "./reshard-shard.ts";
import { shardCount, shardStub } from "./shards.ts";

const reshardId = "reshard";

export type ReshardPhase = "draining" | "copying" | "prepared" | "cleaning" | "done";

export interface ReshardState {
  from: number;
  to: number;
  phase: ReshardPhase;
  /**
   * The shard the walk (or the drain, or the cleaning) is in, the part of it, and the last key or id
   * visited there ("" at the start). Draining, `scanned` and `total` count customers, `written` those
   * moved in this pass and `removed` the moves.
   */
  shard: number;
  part: ReshardPart;
  cursor: string;
  scanned: number;
  total: number;
  written: number;
  removed: number;
  /** A shrink's drain over all its passes: customers moved out of the shards removed, the moves, the passes begun. */
  drained: number;
  drainMoves: number;
  drainPasses: number;
  startedAt: string;
  updatedAt: string;
  preparedAt: string | null;
  finishedAt: string | null;
}

export type ReshardStep =
  | { kind: "stepped"; state: ReshardState }
  | { kind: "not_sharded" }
  /** No reshard under way, and `to` is the `count` the deployment runs with already. */
  | { kind: "same_count"; count: number }
  /** A drain pass moved nothing and the shards to remove still hold customer data (busy or too large regions). */
  | { kind: "not_drained"; held: Record<string, number>; state: ReshardState }
  /** A reshard to another count is under way. */
  | { kind: "other_reshard"; state: ReshardState }
  /** SHARD_COUNT is `count`: neither the reshard's old count nor its new one, or the old one once cleaning began. */
  | { kind: "wrong_count"; state: ReshardState; count: number }
  /** A rebalance pass is not finished: its moves would start the walk over. */
  | { kind: "rebalance_running" }
  /** Moves between shards not finished yet (a retry finds them done). */
  | { kind: "moves_pending"; moves: number }
  /** Old shards wrote what places keys after the walk began: the walk starts over. */
  | { kind: "written"; written: Record<string, number>; state: ReshardState };

export async function reshardState(d1: Db): Promise<ReshardState | null> {
  const row = await d1.get<Record<string, unknown>>(sql`SELECT * FROM shard_reshard WHERE id = ${reshardId}`);
  if (!row) return null;
  return {
    from: Number(row.from_count),
    to: Number(row.to_count),
    phase: row.phase as ReshardPhase,
    shard: Number(row.shard),
    part: row.part as ReshardPart,
    cursor: String(row.cursor),
    scanned: Number(row.scanned),
    total: Number(row.total),
    written: Number(row.written),
    removed: Number(row.removed),
    drained: Number(row.drained),
    drainMoves: Number(row.drain_moves),
    drainPasses: Number(row.drain_passes),
    startedAt: String(row.started_at),
    updatedAt: String(row.updated_at),
    preparedAt: (row.prepared_at as string | null) ?? null,
    finishedAt: (row.finished_at as string | null) ?? null,
  };
}

const indexes = (count: number) => Array.from({ length: count }, (_, index) => index);
const range = (start: number, end: number) => indexes(end).slice(start);

/** The shards a walk visits: growing, every old shard; shrinking, those it removes. */
const walked = (from: number, to: number) => (from > to ? range(to, from) : indexes(from));

/** The shards that take the walk's entries: growing, those it adds; shrinking, those that stay. */
const taking = (from: number, to: number) => (from > to ? indexes(to) : range(from, to));

/** The rows of `parts` summed over shards' counts: a phase's total. */
const rowsOf = (counts: readonly Record<ReshardPart, number>[], parts: readonly ReshardPart[]) =>
  counts.reduce((sum, shard) => sum + parts.reduce((n, part) => n + shard[part], 0), 0);

/** Rows the old shards hold of `parts`. */
async function oldRows(env: Env, from: number, parts: readonly ReshardPart[]): Promise<number> {
  return rowsOf(await allCalls(indexes(from).map((index) => shardStub(env, index).reshardTotals())), parts);
}

/** What the shards a shrink removes still hold of customer data, summed by kind. */
async function heldInRemoved(env: Env, from: number, to: number): Promise<Record<string, number>> {
  const held: Record<string, number> = {};
  for (const answer of await allCalls(range(to, from).map((index) => shardStub(env, index).heldRows())))
    for (const [what, n] of Object.entries(answer)) held[what] = (held[what] ?? 0) + n;
  return held;
}

/**
 * Records the reshard's next pass, or its start: growing, the walk; shrinking, a drain pass over the
 * shards it removes (from the first), with `total` their customers now. False, recording nothing,
 * while a rebalance pass is not finished (its moves would start the walk over): the check and the
 * record are one statement, so a pass and a reshard never both start (worker/shards/rebalance.ts).
 */
async function record(
  d1: Db,
  position: { from: number; to: number; phase: "draining" | "copying"; shard: number; part: ReshardPart },
  total: number,
  at: string,
  /** The reshard's first pass: a finished reshard's drain counts go. */
  fresh = false,
): Promise<boolean> {
  const { from, to, phase, shard, part } = position;
  const kept = (column: string) => (fresh ? sql`0` : sql.raw(`shard_reshard.${column}`));
  const passes = phase === "draining" ? sql`${kept("drain_passes")} + 1` : kept("drain_passes");
  const result = await d1.run(sql`
    INSERT INTO shard_reshard (id, from_count, to_count, phase, shard, part, cursor, scanned, total, written, removed,
      drain_passes, started_at, updated_at)
    SELECT ${reshardId}, ${from}, ${to}, ${phase}, ${shard}, ${part}, '', 0, ${total}, 0, 0,
      ${phase === "draining" ? 1 : 0}, ${at}, ${at}
    WHERE NOT EXISTS (SELECT 1 FROM shard_rebalance WHERE finished_at IS NULL)
    ON CONFLICT (id) DO UPDATE SET from_count = excluded.from_count, to_count = excluded.to_count,
      phase = excluded.phase, shard = excluded.shard, part = excluded.part, cursor = '', scanned = 0,
      total = excluded.total, written = 0, removed = 0, drained = ${kept("drained")},
      drain_moves = ${kept("drain_moves")}, drain_passes = ${passes}, started_at = excluded.started_at,
      updated_at = excluded.updated_at, prepared_at = NULL, finished_at = NULL`);
  return result.meta.changes > 0;
}

/** A drain pass (again) over the shards a shrink from `from` to `to` removes. */
async function startDrain(env: Env, d1: Db, from: number, to: number, at: string, fresh = false): Promise<boolean> {
  const total = (await heldInRemoved(env, from, to))["customers still held"] ?? 0;
  return record(d1, { from, to, phase: "draining", shard: to, part: "customers" }, total, at, fresh);
}

/**
 * Starts the walk (again): from the first walked shard's directory, with `at` as its beginning. The
 * shards taking its entries forget what an earlier walk wrote there, which may place keys erased since.
 */
async function startWalk(env: Env, d1: Db, from: number, to: number, at: string, fresh = false): Promise<boolean> {
  await allCalls(taking(from, to).map((index) => shardStub(env, index).dropWalkEntries(from, to)));
  const visited = walked(from, to);
  const counts = await allCalls(visited.map((index) => shardStub(env, index).beginReshardWalk()));
  return record(
    d1,
    { from, to, phase: "copying", shard: visited[0] as number, part: "directory" },
    rowsOf(counts, reshardParts),
    at,
    fresh,
  );
}

/** The reshard from the beginning (`fresh`: its first start), or again after a write: growing, its walk; shrinking, its drain. */
const startReshard = (env: Env, d1: Db, from: number, to: number, at: string, fresh = false) =>
  from > to ? startDrain(env, d1, from, to, at, fresh) : startWalk(env, d1, from, to, at, fresh);

/** Where the walk goes after `state`'s page: the same place with `next`, else the next part or shard; null past the end. */
function advance(state: ReshardState, next: string | null, parts: readonly ReshardPart[]) {
  if (next !== null) return { shard: state.shard, part: state.part, cursor: next };
  const part = parts[parts.indexOf(state.part) + 1];
  if (part) return { shard: state.shard, part, cursor: "" };
  if (state.shard + 1 < state.from) return { shard: state.shard + 1, part: parts[0] as ReshardPart, cursor: "" };
  return null;
}

async function recordPage(
  d1: Db,
  at: string,
  position: { shard: number; part: ReshardPart; cursor: string },
  counts: { scanned: number; written: number; removed: number },
  drained: { customers: number; moves: number } = { customers: 0, moves: 0 },
): Promise<void> {
  await d1.run(sql`
    UPDATE shard_reshard SET shard = ${position.shard}, part = ${position.part}, cursor = ${position.cursor},
      scanned = scanned + ${counts.scanned}, written = written + ${counts.written}, removed = removed + ${counts.removed},
      drained = drained + ${drained.customers}, drain_moves = drain_moves + ${drained.moves}, updated_at = ${at}
    WHERE id = ${reshardId}`);
}

/** One page of the walk: the entries whose home moved, written at their new homes. */
async function copyPage(env: Env, d1: Db, state: ReshardState, limit: number, at: string): Promise<ReshardStep> {
  const counts = { from: state.from, to: state.to };
  const page = await shardStub(env, state.shard).reshardPage(state.part, state.cursor, limit, counts);
  const byHome = new Map<number, Placement[]>();
  for (const { home, key, shard } of page.entries) byHome.set(home, [...(byHome.get(home) ?? []), { key, shard }]);
  await allCalls(
    [...byHome].map(([home, entries]) =>
      state.from > state.to
        ? shardStub(env, home).placeWalkEntries(entries, state.from, state.to)
        : shardStub(env, home).placeKeys(entries, state.to),
    ),
  );
  const position = advance(state, page.next, reshardParts);
  if (position) {
    await recordPage(d1, at, position, { scanned: page.scanned, written: page.entries.length, removed: 0 });
    return { kind: "stepped", state: (await reshardState(d1)) as ReshardState };
  }
  // The walk's end keeps no cursor: the last page's start is a key (an identifier's, a customer's or an
  // order's) an erasure would otherwise leave named here.
  await recordPage(
    d1,
    at,
    { shard: state.shard, part: state.part, cursor: "" },
    { scanned: page.scanned, written: page.entries.length, removed: 0 },
  );
  // The walk is done: each shard it visited is marked unless it wrote since the walk began; then,
  // shrinking, the shards that stay (only once the shards removed are found empty).
  const answers = await allCalls(
    walked(state.from, state.to).map((index) => shardStub(env, index).prepareReshard(state.to, state.startedAt)),
  );
  const written: Record<string, number> = {};
  for (const answer of answers)
    for (const [what, n] of Object.entries(answer)) written[what] = (written[what] ?? 0) + n;
  if (Object.values(written).some((n) => n > 0)) {
    // Every old shard takes writes again until the next walk's end marks it.
    await allCalls(indexes(state.from).map((index) => shardStub(env, index).unprepareReshard()));
    await startReshard(env, d1, state.from, state.to, at);
    return { kind: "written", written, state: (await reshardState(d1)) as ReshardState };
  }
  if (state.from > state.to)
    await allCalls(
      taking(state.from, state.to).map((index) => shardStub(env, index).prepareReshard(state.to, state.startedAt)),
    );
  await d1.run(
    sql`UPDATE shard_reshard SET phase = 'prepared', prepared_at = ${at}, updated_at = ${at} WHERE id = ${reshardId}`,
  );
  return { kind: "stepped", state: (await reshardState(d1)) as ReshardState };
}

/** One page of the cleaning: the old shard's entries for keys homed in a new shard, deleted. */
async function cleanPage(env: Env, d1: Db, state: ReshardState, limit: number, at: string): Promise<ReshardStep> {
  const stub = shardStub(env, state.shard);
  const page = await stub.dropRehomedEntries(state.cursor, limit, { from: state.from, to: state.to });
  if (page.next === null) await stub.finishReshard(state.to);
  const position = advance(state, page.next, ["directory"]);
  // The last page's start (a key) is not kept once the cleaning is done, as at the walk's end.
  await recordPage(d1, at, position ?? { shard: state.shard, part: "directory", cursor: "" }, {
    scanned: page.scanned,
    written: 0,
    removed: page.removed,
  });
  if (!position)
    await d1.run(
      sql`UPDATE shard_reshard SET phase = 'done', finished_at = ${at}, updated_at = ${at} WHERE id = ${reshardId}`,
    );
  return { kind: "stepped", state: (await reshardState(d1)) as ReshardState };
}

/**
 * One step of a drain pass: the next page of customers of a shard a shrink removes, whose regions move
 * to the shards that stay. At the pass's end the walk starts once those shards hold no customer data;
 * else another pass starts, and a pass that moved nothing answers what is still held.
 */
async function drainStep(env: Env, d1: Db, state: ReshardState, limit: number, at: string): Promise<ReshardStep> {
  const part = state.part === "identify" ? "identify" : "customers";
  const stub = shardStub(env, state.shard);
  const page = await stub.drainPage(part, state.cursor, Math.min(limit, drainLimit), state.to);
  const position = advance(state, page.next, drainParts);
  await recordPage(
    d1,
    at,
    position ?? { shard: state.shard, part, cursor: "" },
    { scanned: page.scanned, written: page.moved, removed: page.moves },
    { customers: page.moved, moves: page.moves },
  );
  if (position) return { kind: "stepped", state: (await reshardState(d1)) as ReshardState };
  const held = await heldInRemoved(env, state.from, state.to);
  // The walk begins after this step's moves wrote their directory entries (the step's own start is before them).
  if (Object.values(held).every((n) => n === 0))
    await startWalk(env, d1, state.from, state.to, new Date().toISOString());
  else {
    await startDrain(env, d1, state.from, state.to, at);
    if (state.removed + page.moves === 0)
      return { kind: "not_drained", held, state: (await reshardState(d1)) as ReshardState };
  }
  return { kind: "stepped", state: (await reshardState(d1)) as ReshardState };
}

/** Customers (or identify calls) of one shard a drain visits per step at most: its moves run within the step. */
export const drainLimit = 1000;

/** A drain visits each shard's customers, then the identify calls no customer's region took. */
const drainParts: readonly ReshardPart[] = ["customers", "identify"];

/**
 * One step of a shrink's cleaning, one shard each: a shard that stays takes the walk's entries as its
 * own; a shard removed is emptied.
 */
async function cleanShrinkStep(env: Env, d1: Db, state: ReshardState, at: string): Promise<ReshardStep> {
  const stub = shardStub(env, state.shard);
  let removed = 0;
  if (state.shard < state.to) await stub.keepWalkEntries(state.to);
  else removed = await stub.retire(state.to);
  const done = state.shard + 1 >= state.from;
  await recordPage(
    d1,
    at,
    { shard: done ? state.shard : state.shard + 1, part: "directory", cursor: "" },
    { scanned: 1, written: 0, removed },
  );
  if (done)
    await d1.run(
      sql`UPDATE shard_reshard SET phase = 'done', finished_at = ${at}, updated_at = ${at} WHERE id = ${reshardId}`,
    );
  return { kind: "stepped", state: (await reshardState(d1)) as ReshardState };
}

/**
 * The next step of changing the shard count to `to`, `limit` rows of one shard at most. The phase
 * follows from the recorded state and the count the deployment runs with: the drain (shrinking), the
 * walk and the marks under the old count, nothing more to do once prepared until the switch, the
 * cleaning under the new.
 */
export async function reshardStep(env: Env, d1: Db, to: number, limit: number, now: Date): Promise<ReshardStep> {
  const at = now.toISOString();
  const count = shardCount(env);
  if (count === 0) return { kind: "not_sharded" };
  let state = await reshardState(d1);
  if (state && state.phase !== "done" && state.to !== to) return { kind: "other_reshard", state };
  // Run again once finished: nothing to do, the same answer.
  if (state?.phase === "done" && state.to === to && count === to) return { kind: "stepped", state };
  if (!state || state.phase === "done") {
    if (to === count) return { kind: "same_count", count };
    const moves = (await allCalls(indexes(count).map((index) => shardStub(env, index).reshardMovesPending()))).reduce(
      (sum, n) => sum + n,
      0,
    );
    if (moves > 0) return { kind: "moves_pending", moves };
    if (!(await startReshard(env, d1, count, to, at, true))) return { kind: "rebalance_running" };
    state = (await reshardState(d1)) as ReshardState;
  }
  if (count === state.from && state.phase === "draining") return drainStep(env, d1, state, limit, at);
  if (count === state.from && state.phase === "copying") return copyPage(env, d1, state, limit, at);
  if (count === state.from && state.phase === "prepared") return { kind: "stepped", state };
  if (count === state.to && state.phase === "prepared") {
    // Shrinking, the cleaning visits each shard once; growing, the old shards' directories.
    const total = state.from > state.to ? state.from : await oldRows(env, state.from, ["directory"]);
    await d1.run(sql`
      UPDATE shard_reshard SET phase = 'cleaning', shard = 0, part = 'directory', cursor = '', scanned = 0,
        total = ${total}, updated_at = ${at}
      WHERE id = ${reshardId}`);
    state = (await reshardState(d1)) as ReshardState;
  }
  if (count === state.to && state.phase === "cleaning")
    return state.from > state.to ? cleanShrinkStep(env, d1, state, at) : cleanPage(env, d1, state, limit, at);
  return { kind: "wrong_count", state, count };
}
