// A customer shard's part of `patron shards rebalance` (docs/scaling.md, rebalancing; driven by
// worker/shards/rebalance.ts). After a reshard, or after merges moved regions, a signed-in shopper's
// region may be held away from the home of their account key, and their shelf costs one forward more.
// A page of this shard's customers at a time, each region whose account keys are all homed elsewhere
// is moved to the home of one of them (balancedHome), by the same recorded, fenced, resumable moves
// ingestion runs: several regions bound for one shard travel together, up to a bound per move.
import { sql } from "drizzle-orm";
import { jsonEach } from "../../db/batch.ts";
import { balancedHome } from "../core/shards/placement.ts";
import { type MoveContext, moveRegionOut, type Region, regionOf } from "./moves.ts";

export interface RebalancePage {
  /** Customers visited: the page's, and those its moves took from further on (no page will see them here). */
  scanned: number;
  /** Customers moved out of here, and the moves that took them. */
  moved: number;
  moves: number;
  /** Customers left where they are this time: a move between shards held some of their keys. */
  busy: number;
  /** Customers left because their region is larger than a move takes (a placeholder identifier?). */
  tooLarge: number;
  /** The last customer id of the page, for the next; null when the shard is done. */
  next: string | null;
}

/** Orders and identify calls one move takes at most when it carries several regions (a region alone may take more). */
export const sourcesPerMove = 2_000;

/** Regions bound for one shard, in moves of up to `sourcesPerMove` sources (a larger region alone). */
function movesOf(regions: readonly Region[]): Region[][] {
  const moves: Region[][] = [];
  let current: Region[] = [];
  let sources = 0;
  for (const region of regions) {
    if (current.length > 0 && sources + region.sources.length > sourcesPerMove) {
      moves.push(current);
      current = [];
      sources = 0;
    }
    current.push(region);
    sources += region.sources.length;
  }
  if (current.length > 0) moves.push(current);
  return moves;
}

/**
 * The next `limit` customers here after `after` (by id): each region held here whose account keys are
 * all homed in another shard among `ctx.count` is moved there. A region is found from the account keys
 * of a customer of the page; customers merged into another are visited with their survivor's region.
 */
export async function rebalancePage(ctx: MoveContext, after: string, limit: number): Promise<RebalancePage> {
  const { db, index, count } = ctx;
  const rows = await db.all<{ id: string; merged_into: string | null }>(
    sql`SELECT id, merged_into FROM customers WHERE id > ${after} ORDER BY id LIMIT ${limit}`,
  );
  const next = rows.length < limit ? null : (rows.at(-1)?.id ?? null);
  const live = rows.filter((row) => row.merged_into === null).map((row) => row.id);
  const accounts = await db.all<{ customer_id: string; key: string }>(
    sql`SELECT customer_id, key FROM identities
      WHERE customer_id IN (SELECT value FROM ${jsonEach(live)}) AND kind = 'account'`,
  );
  const keysOf = new Map<string, string[]>();
  for (const row of accounts) keysOf.set(row.customer_id, [...(keysOf.get(row.customer_id) ?? []), row.key]);

  const page: RebalancePage = { scanned: rows.length, moved: 0, moves: 0, busy: 0, tooLarge: 0, next };
  const seen = new Set<string>();
  const bound = new Map<number, Region[]>();
  for (const [customer, keys] of keysOf) {
    // A customer's own account keys decide first: most regions are one customer.
    if (seen.has(customer) || balancedHome(keys, index, count) === null) continue;
    const region = await regionOf(db, keys);
    if (region === "too_large") {
      page.tooLarge++;
      continue;
    }
    for (const id of region.customers) seen.add(id);
    const target = balancedHome(region.keys, index, count);
    if (target !== null) bound.set(target, [...(bound.get(target) ?? []), region]);
  }

  for (const [target, regions] of bound)
    for (const move of movesOf(regions)) {
      const customers = move.flatMap((region) => region.customers);
      const outcome = await moveRegionOut(
        ctx,
        move.flatMap((region) => region.keys),
        target,
      );
      if (outcome.kind === "moved") {
        page.moved += customers.length;
        page.moves++;
        // Customers further on went with their regions: counted as visited now.
        page.scanned += customers.filter((id) => next !== null && id > next).length;
      } else if (outcome.kind === "retry") page.busy += customers.length;
      else page.tooLarge += customers.length;
    }
  return page;
}
