// Moving regions to their home shards (`patron shards rebalance`, docs/scaling.md, rebalancing). A
// reshard moves no customer data: a shopper whose account key's home moved to a new shard is served by
// a forward from there to the old shard holding the region, and the new shards hold no customers. A
// pass visits every shard, a page of its customers per step, and moves each region whose account keys
// are all homed elsewhere to the home of one of them; a region without an account key by its other
// identity keys, a guest's by its orders (worker/shards/rebalance-shard.ts), with the moves ingestion
// runs. The deployment serves and takes writes throughout; the position is kept in D1, so a stopped
// pass resumes, and a pass run again moves only what is still away.
import { sql } from "drizzle-orm";
import { allCalls } from "../core/shards/calls.ts";
import type { Db, Env } from "../env.ts";
import type { RebalanceState } from "./rebalance-view.ts";
import { type ReshardState, reshardState } from "./reshard.ts";
import { everyShard, shardCount, shardStub } from "./shards.ts";

const rebalanceId = "rebalance";

export type RebalanceStep =
  | { kind: "stepped"; state: RebalanceState }
  | { kind: "not_sharded" }
  /** A reshard is under way: its walk must see no moves, and a prepared shard takes none. */
  | { kind: "reshard_running"; state: ReshardState };

export async function rebalanceState(d1: Db): Promise<RebalanceState | null> {
  const row = await d1.get<Record<string, unknown>>(sql`SELECT * FROM shard_rebalance WHERE id = ${rebalanceId}`);
  if (!row) return null;
  return {
    count: Number(row.shard_count),
    shard: Number(row.shard),
    cursor: String(row.cursor),
    scanned: Number(row.scanned),
    total: Number(row.total),
    moved: Number(row.moved),
    moves: Number(row.moves),
    busy: Number(row.busy),
    tooLarge: Number(row.too_large),
    startedAt: String(row.started_at),
    updatedAt: String(row.updated_at),
    finishedAt: (row.finished_at as string | null) ?? null,
  };
}

/**
 * A pass (again) from the first shard's first customer, its total the customers the shards hold now.
 * False, recording nothing, while a reshard is under way: the check and the record are one statement,
 * so a pass and a reshard's walk never both start (worker/shards/reshard.ts, startWalk).
 */
async function startPass(env: Env, d1: Db, count: number, at: string): Promise<boolean> {
  const totals = await allCalls(everyShard(env).map((shard) => shard.customerCount()));
  const total = totals.reduce((sum, n) => sum + n, 0);
  const result = await d1.run(sql`
    INSERT INTO shard_rebalance (id, shard_count, shard, cursor, scanned, total, moved, moves, busy, too_large,
      started_at, updated_at)
    SELECT ${rebalanceId}, ${count}, 0, '', 0, ${total}, 0, 0, 0, 0, ${at}, ${at}
    WHERE NOT EXISTS (SELECT 1 FROM shard_reshard WHERE phase != 'done')
    ON CONFLICT (id) DO UPDATE SET shard_count = excluded.shard_count, shard = 0, cursor = '', scanned = 0,
      total = excluded.total, moved = 0, moves = 0, busy = 0, too_large = 0, started_at = excluded.started_at,
      updated_at = excluded.updated_at, finished_at = NULL`);
  return result.meta.changes > 0;
}

/**
 * The next step of a rebalance pass: `limit` customers of one shard. A pass finished (or none yet), or
 * one begun under another shard count, starts a new pass; refused while a reshard is under way.
 */
export async function rebalanceStep(env: Env, d1: Db, limit: number, now: Date): Promise<RebalanceStep> {
  const at = now.toISOString();
  const count = shardCount(env);
  if (count === 0) return { kind: "not_sharded" };
  const reshard = await reshardState(d1);
  if (reshard && reshard.phase !== "done") return { kind: "reshard_running", state: reshard };
  let state = await rebalanceState(d1);
  if (!state || state.finishedAt !== null || state.count !== count) {
    if (!(await startPass(env, d1, count, at))) {
      const running = await reshardState(d1);
      if (!running) throw new Error("a rebalance pass was not recorded, and no reshard is under way");
      return { kind: "reshard_running", state: running };
    }
    state = (await rebalanceState(d1)) as RebalanceState;
  }
  const page = await shardStub(env, state.shard).rebalancePage(state.cursor, limit, count);
  // Where the next step begins: further on in this shard, the next shard, or nowhere (the pass is done,
  // and keeps no cursor: the last page's start is a customer id an erasure would leave named here).
  const next =
    page.next !== null
      ? { shard: state.shard, cursor: page.next }
      : state.shard + 1 < count
        ? { shard: state.shard + 1, cursor: "" }
        : null;
  await d1.run(sql`
    UPDATE shard_rebalance SET shard = ${next?.shard ?? state.shard}, cursor = ${next?.cursor ?? ""},
      scanned = scanned + ${page.scanned}, moved = moved + ${page.moved}, moves = moves + ${page.moves},
      busy = busy + ${page.busy}, too_large = too_large + ${page.tooLarge}, updated_at = ${at},
      finished_at = ${next ? null : at}
    WHERE id = ${rebalanceId}`);
  return { kind: "stepped", state: (await rebalanceState(d1)) as RebalanceState };
}
