// Growing the customer shards from N to M (`patron shards reshard`, docs/scaling.md, resharding). Data
// stays where it is: the hash decides only each key's home (where its directory entry lives), and
// jump consistent hashing moves a key's home only to one of the new shards. So a reshard writes, at
// its new home, the entry of every key whose home moved: the old shards' directory entries, and an
// entry for each of their customers and orders (at their old home they needed none). One step per
// call, a page of one old shard at a time, resumable from the cursor recorded in D1:
//
// 1. "copying", under SHARD_COUNT = N: the walk. At its end every old shard checks it wrote nothing
//    that places keys since the walk began (and has no move unfinished), and is marked prepared: from
//    then on it takes no writes under N (so the copy stays complete) and serves under M as well. A
//    shard that wrote starts the walk over (the marks and the new shards' copied entries go).
// 2. "prepared": the deployment is switched to SHARD_COUNT = M; each old shard takes M as its own
//    count when it first starts under it (the new shards record it on first use).
// 3. "cleaning", under M: each old shard deletes the entries it keeps for keys homed in a new shard
//    now, and drops its mark; then "done".
import { sql } from "drizzle-orm";
import type { Db, Env } from "../env.ts";
import type { Placement } from "./directory.ts";
import { type ReshardPart, reshardParts } from "./reshard-shard.ts";
import { shardCount, shardStub } from "./shards.ts";

const reshardId = "reshard";

export type ReshardPhase = "copying" | "prepared" | "cleaning" | "done";

export interface ReshardState {
  from: number;
  to: number;
  phase: ReshardPhase;
  /** The old shard the walk is in, the part of it, and the last key or id visited there ("" at the start). */
  shard: number;
  part: ReshardPart;
  cursor: string;
  scanned: number;
  total: number;
  written: number;
  removed: number;
  startedAt: string;
  updatedAt: string;
  preparedAt: string | null;
  finishedAt: string | null;
}

export type ReshardStep =
  | { kind: "stepped"; state: ReshardState }
  | { kind: "not_sharded" }
  /** No reshard under way, and `to` does not add shards to the `count` the deployment runs with. */
  | { kind: "not_growing"; count: number }
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
    startedAt: String(row.started_at),
    updatedAt: String(row.updated_at),
    preparedAt: (row.prepared_at as string | null) ?? null,
    finishedAt: (row.finished_at as string | null) ?? null,
  };
}

const indexes = (count: number) => Array.from({ length: count }, (_, index) => index);

/** The rows of `parts` summed over shards' counts: a phase's total. */
const rowsOf = (counts: readonly Record<ReshardPart, number>[], parts: readonly ReshardPart[]) =>
  counts.reduce((sum, shard) => sum + parts.reduce((n, part) => n + shard[part], 0), 0);

/** Rows the old shards hold of `parts`. */
async function oldRows(env: Env, from: number, parts: readonly ReshardPart[]): Promise<number> {
  return rowsOf(await Promise.all(indexes(from).map((index) => shardStub(env, index).reshardTotals())), parts);
}

/**
 * Starts the walk (again): from the first old shard's directory, with `at` as its beginning. The new
 * shards forget what an earlier walk wrote there, which may place keys erased since. False, recording
 * nothing, while a rebalance pass is not finished (its moves would start the walk over): the check and
 * the record are one statement, so a pass and a walk never both start (worker/shards/rebalance.ts).
 */
async function startWalk(env: Env, d1: Db, from: number, to: number, at: string): Promise<boolean> {
  await Promise.all(
    indexes(to)
      .slice(from)
      .map((index) => shardStub(env, index).dropWalkEntries(from)),
  );
  const counts = await Promise.all(indexes(from).map((index) => shardStub(env, index).beginReshardWalk()));
  const total = rowsOf(counts, reshardParts);
  const result = await d1.run(sql`
    INSERT INTO shard_reshard (id, from_count, to_count, phase, shard, part, cursor, scanned, total, written, removed,
      started_at, updated_at)
    SELECT ${reshardId}, ${from}, ${to}, 'copying', 0, 'directory', '', 0, ${total}, 0, 0, ${at}, ${at}
    WHERE NOT EXISTS (SELECT 1 FROM shard_rebalance WHERE finished_at IS NULL)
    ON CONFLICT (id) DO UPDATE SET from_count = excluded.from_count, to_count = excluded.to_count, phase = 'copying',
      shard = 0, part = 'directory', cursor = '', scanned = 0, total = excluded.total, written = 0, removed = 0,
      started_at = excluded.started_at, updated_at = excluded.updated_at, prepared_at = NULL, finished_at = NULL`);
  return result.meta.changes > 0;
}

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
): Promise<void> {
  await d1.run(sql`
    UPDATE shard_reshard SET shard = ${position.shard}, part = ${position.part}, cursor = ${position.cursor},
      scanned = scanned + ${counts.scanned}, written = written + ${counts.written}, removed = removed + ${counts.removed},
      updated_at = ${at}
    WHERE id = ${reshardId}`);
}

/** One page of the walk: the entries whose home moved, written at their new homes. */
async function copyPage(env: Env, d1: Db, state: ReshardState, limit: number, at: string): Promise<ReshardStep> {
  const counts = { from: state.from, to: state.to };
  const page = await shardStub(env, state.shard).reshardPage(state.part, state.cursor, limit, counts);
  const byHome = new Map<number, Placement[]>();
  for (const { home, key, shard } of page.entries) byHome.set(home, [...(byHome.get(home) ?? []), { key, shard }]);
  await Promise.all([...byHome].map(([home, entries]) => shardStub(env, home).placeKeys(entries, state.to)));
  const position = advance(state, page.next, reshardParts);
  if (position) {
    await recordPage(d1, at, position, { scanned: page.scanned, written: page.entries.length, removed: 0 });
    return { kind: "stepped", state: (await reshardState(d1)) as ReshardState };
  }
  await recordPage(
    d1,
    at,
    { shard: state.shard, part: state.part, cursor: state.cursor },
    { scanned: page.scanned, written: page.entries.length, removed: 0 },
  );
  // The walk is done: each old shard is marked unless it wrote since the walk began.
  const answers = await Promise.all(
    indexes(state.from).map((index) => shardStub(env, index).prepareReshard(state.to, state.startedAt)),
  );
  const written: Record<string, number> = {};
  for (const answer of answers)
    for (const [what, n] of Object.entries(answer)) written[what] = (written[what] ?? 0) + n;
  if (Object.values(written).some((n) => n > 0)) {
    // Every old shard takes writes again until the next walk's end marks it.
    await Promise.all(indexes(state.from).map((index) => shardStub(env, index).unprepareReshard()));
    await startWalk(env, d1, state.from, state.to, at);
    return { kind: "written", written, state: (await reshardState(d1)) as ReshardState };
  }
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
  await recordPage(d1, at, position ?? { shard: state.shard, part: "directory", cursor: state.cursor }, {
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
 * The next step of growing the shards to `to`, `limit` rows of one old shard at most. The phase
 * follows from the recorded state and the count the deployment runs with: the walk and the marks
 * under the old count, nothing more to do once prepared until the switch, the cleaning under the new.
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
    if (to <= count) return { kind: "not_growing", count };
    const moves = (
      await Promise.all(indexes(count).map((index) => shardStub(env, index).reshardMovesPending()))
    ).reduce((sum, n) => sum + n, 0);
    if (moves > 0) return { kind: "moves_pending", moves };
    if (!(await startWalk(env, d1, count, to, at))) return { kind: "rebalance_running" };
    state = (await reshardState(d1)) as ReshardState;
  }
  if (count === state.from && state.phase === "copying") return copyPage(env, d1, state, limit, at);
  if (count === state.from && state.phase === "prepared") return { kind: "stepped", state };
  if (count === state.to && state.phase === "prepared") {
    const total = await oldRows(env, state.from, ["directory"]);
    await d1.run(sql`
      UPDATE shard_reshard SET phase = 'cleaning', shard = 0, part = 'directory', cursor = '', scanned = 0,
        total = ${total}, updated_at = ${at}
      WHERE id = ${reshardId}`);
    state = (await reshardState(d1)) as ReshardState;
  }
  if (count === state.to && state.phase === "cleaning") return cleanPage(env, d1, state, limit, at);
  return { kind: "wrong_count", state, count };
}
