// A customer shard's part of `patron shards rebalance` (docs/scaling.md, rebalancing; driven by
// worker/shards/rebalance.ts). After a reshard, or after merges moved regions, a signed-in shopper's
// region may be held away from the home of their account key, and their shelf costs one forward more.
// A page of this shard's customers at a time, each region whose account keys are all homed elsewhere
// is moved to the home of one of them (balancedHome); a region with no account key by its other
// identity keys, a guest's by its orders, so new shards take their share of store-only customers too.
// By the same recorded, fenced, resumable moves ingestion runs: several regions bound for one shard
// travel together, up to a bound per move.
import { sql } from "drizzle-orm";
import { jsonEach } from "../../db/batch.ts";
import { balancedHome, drainTarget, homeShard } from "../core/shards/placement.ts";
import type { Db } from "../env.ts";
import { type MoveContext, moveRegionOut, type Region, regionEntries, regionOf, sourcesPerMove } from "./moves.ts";

export interface RebalancePage {
  /**
   * Customers visited, each once in a pass: the page's, less those moved to a shard the pass visits
   * later (counted there), and those its moves took from further on to a shard already visited.
   */
  scanned: number;
  /** Customers moved out of here, and the moves that took them. */
  moved: number;
  moves: number;
  /**
   * Customers not moved this time: a move between shards held some of their keys (or their move was
   * recorded and not finished: the shard's alarm finishes it), an order joined their region to one
   * homed here, or the page had spent its calls (pageMoveCalls).
   */
  busy: number;
  /** Customers left because their region is larger than a move takes (a placeholder identifier?). */
  tooLarge: number;
  /** The last customer id of the page, for the next; null when the shard is done. */
  next: string | null;
}

/** Customers held here: a pass's total counts them when it begins. */
export async function customerCount(db: Db): Promise<number> {
  const row = await db.get<{ n: number }>(sql`SELECT count(*) AS n FROM customers`);
  return row?.n ?? 0;
}

/** Customers held here that are customers still, not merged into another: a range of customers_merged_into_idx. */
export async function liveCustomerCount(db: Db): Promise<number> {
  const row = await db.get<{ n: number }>(sql`SELECT count(*) AS n FROM customers WHERE merged_into IS NULL`);
  return row?.n ?? 0;
}

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
 * How a page of customers is placed (a rebalance pass's, or a shrinking reshard's drain): where a
 * region goes, or null to leave it here.
 */
type Placing = (region: { keys: readonly string[]; sources: readonly string[] }) => number | null;

/**
 * The next `limit` customers here after `after` (by id): each region held here that belongs in another
 * shard among `ctx.count` (balancedHome: by its account keys, else its other identity keys, else its
 * orders) is moved there. Customers merged into another are visited with their survivor's region.
 */
export function rebalancePage(ctx: MoveContext, after: string, limit: number): Promise<RebalancePage> {
  return movePage(ctx, after, limit, (region) => balancedHome(region, ctx.index, ctx.count));
}

/**
 * A shrinking reshard's drain (worker/shards/reshard.ts) in a shard it removes: the region of every
 * customer of the next `limit` after `after` moves to a shard that stays (drainTarget), guests too.
 */
export function drainPage(ctx: MoveContext, after: string, limit: number, to: number): Promise<RebalancePage> {
  return movePage(ctx, after, limit, (region) => drainTarget(region, to));
}

async function movePage(ctx: MoveContext, after: string, limit: number, placing: Placing): Promise<RebalancePage> {
  const { db } = ctx;
  const rows = await db.all<{ id: string; merged_into: string | null }>(
    sql`SELECT id, merged_into FROM customers WHERE id > ${after} ORDER BY id LIMIT ${limit}`,
  );
  const last = rows.at(-1)?.id ?? after;
  const live = rows.filter((row) => row.merged_into === null).map((row) => row.id);
  const held = await db.all<{ customer_id: string; key: string }>(
    sql`SELECT customer_id, key FROM identities WHERE customer_id IN (SELECT value FROM ${jsonEach(live)})`,
  );
  const keysOf = new Map<string, string[]>(live.map((id) => [id, []]));
  for (const row of held) keysOf.set(row.customer_id, [...(keysOf.get(row.customer_id) ?? []), row.key]);
  // A guest has no key to ask: its own orders decide first instead (one read for the page's guests).
  const guests = live.filter((id) => keysOf.get(id)?.length === 0);
  const ordersOf = new Map<string, string[]>();
  if (guests.length > 0)
    for (const row of await db.all<{ customer_id: string; source: string }>(
      sql`SELECT customer_id, 'order:' || id AS source FROM orders WHERE customer_id IN (SELECT value FROM ${jsonEach(guests)})`,
    ))
      ordersOf.set(row.customer_id, [...(ordersOf.get(row.customer_id) ?? []), row.source]);

  const page: RebalancePage = {
    scanned: rows.length,
    moved: 0,
    moves: 0,
    busy: 0,
    tooLarge: 0,
    next: rows.length < limit ? null : last,
  };
  const seen = new Set<string>();
  const bound = new Map<number, Region[]>();
  for (const [customer, keys] of keysOf) {
    // A customer's own keys (a guest's own orders) decide first: most regions are one customer, and one
    // they keep here is walked only if another of its customers' keys sends it away.
    const own = { keys, sources: keys.length > 0 ? [] : (ordersOf.get(customer) ?? []) };
    if (seen.has(customer) || (own.keys.length + own.sources.length > 0 && placing(own) === null)) continue;
    const reached = new Set<string>([customer]);
    // A guest (no identity key) is found from the customer itself.
    const region = await regionOf(db, keys, reached, keys.length === 0 ? { customers: [customer] } : {});
    for (const id of reached) seen.add(id);
    if (region === "too_large") {
      page.tooLarge += reached.size;
      continue;
    }
    const target = placing(region);
    if (target !== null) bound.set(target, [...(bound.get(target) ?? []), region]);
  }
  await moveBound(ctx, bound, placing, page, last);
  return page;
}

/**
 * A drain's second part in a shard a shrink removes: the identify calls still held here once its
 * customers are gone, those with no verified identifier (no customer's region takes them), each moved
 * to the home of its source among the `to` shards that stay. The next `limit` sources after `after`;
 * they count as moves, not as customers visited.
 */
export async function drainCallsPage(
  ctx: MoveContext,
  after: string,
  limit: number,
  to: number,
): Promise<RebalancePage> {
  const rows = await ctx.db.all<{ source: string }>(
    sql`SELECT DISTINCT source FROM identity_observations
      WHERE source > ${after || "identify:"} AND source < 'identify;' ORDER BY source LIMIT ${limit}`,
  );
  const page: RebalancePage = {
    scanned: 0,
    moved: 0,
    moves: 0,
    busy: 0,
    tooLarge: 0,
    next: rows.length < limit ? null : (rows.at(-1)?.source ?? null),
  };
  const placing: Placing = (region) => drainTarget(region, to);
  const bound = new Map<number, Region[]>();
  for (const { source } of rows) {
    // One call's observations: never more than a move takes.
    const region = await regionOf(ctx.db, [], undefined, { sources: [source] });
    if (region === "too_large") continue;
    const target = placing(region);
    if (target !== null) bound.set(target, [...(bound.get(target) ?? []), region]);
  }
  await moveBound(ctx, bound, placing, page, null);
  return page;
}

/**
 * The calls a page's moves may make, as moveCalls estimates them, of the 10,000 subrequests Workers
 * Paid allows the shard's invocation; the rest is headroom for what the estimate leaves out (a copy
 * sent in parts, a region that grew since the page found it, moves resumed on the way). At a few
 * shards a page makes a few dozen calls, but at hundreds of shards a page of 1,000 customers bound
 * for as many targets would make one move each, about 2 + 16 calls for a customer of 13 orders. Moves
 * past the budget wait for the next pass (a shrink's drain runs passes until its shards are empty; a
 * rebalance counts them busy, for the next run).
 */
export const pageMoveCalls = 7_000;

/**
 * What a move of `regions` calls, estimated: its copy, its finish, and a directory call per shard
 * homing one of the entries it rewrites (regionEntries, as pointAt places them).
 */
export function moveCalls(regions: readonly Region[], count: number): number {
  return 3 + new Set(regions.flatMap(regionEntries).map((key) => homeShard(key, count))).size;
}

/** Moves the regions `bound` for each target, several to a move, counting what happened in `page`. */
async function moveBound(
  ctx: MoveContext,
  bound: ReadonlyMap<number, Region[]>,
  placing: Placing,
  page: RebalancePage,
  /** The page's last customer id, which the count of customers visited is kept by; null for a page of calls. */
  last: string | null,
): Promise<void> {
  const { index } = ctx;
  const budget = ctx.pageCalls ?? pageMoveCalls;
  let spent = 0;
  const move = async (regions: readonly Region[], target: number): Promise<void> => {
    const customers = regions.flatMap((region) => region.customers);
    // Past the budget, the move waits for the next pass, counted busy (a move of several that fell
    // back to one region at a time included).
    const cost = moveCalls(regions, ctx.count);
    if (spent > 0 && spent + cost > budget) {
      page.busy += customers.length;
      return;
    }
    spent += cost;
    // Found again when the move is recorded: an order may have joined a region homed here meanwhile.
    const stillAway = (found: Region) => placing(found) === target;
    const outcome = await moveRegionOut(
      ctx,
      regions.flatMap((region) => region.keys),
      target,
      stillAway,
      { customers, sources: regions.flatMap((region) => region.sources) },
    );
    if (outcome.kind !== "moved" && regions.length > 1) {
      // One region held (or grown) spoils a move of several: each goes on its own.
      for (const region of regions) await move([region], target);
      return;
    }
    if (outcome.kind === "retry") page.busy += customers.length;
    else if (outcome.kind === "region_too_large") page.tooLarge += customers.length;
    else {
      page.moved += customers.length;
      page.moves++;
      // Visited once each: a customer moved to a shard the pass visits later is counted there, not
      // here; one moved from further on to a shard already visited is counted now.
      if (last !== null)
        page.scanned +=
          target > index ? -customers.filter((id) => id <= last).length : customers.filter((id) => id > last).length;
    }
  };
  for (const [target, regions] of bound) for (const batch of movesOf(regions)) await move(batch, target);
}
