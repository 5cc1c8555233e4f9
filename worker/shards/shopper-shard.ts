// The shopper's side of a customer shard (docs/scaling.md, "Customer shards"): what GET /v1/recommendations
// and POST /v1/events read and write for a signed-in shopper, run on the shard's own database with the
// product's repositories; the shelf is ranked here too, with the shared state read from D1. A call
// arrives at the home shard of the shopper's account key; when the directory there places the key's
// region in another shard, the call is forwarded ONCE to that shard, which answers from its own data
// (or as "not found") and never forwards again.
import { sql } from "drizzle-orm";
import { jsonEach } from "../../db/batch.ts";
import type { Db } from "../env.ts";
import { addBrowse, type BrowseDay } from "../events/events.repo.ts";
import { classifyDatabaseError } from "../http/database-errors.ts";
import { type KeyOwner, ownersOf } from "../recommendations/attribution.repo.ts";
import { loadShopper } from "../recommendations/recommendations.repo.ts";
import { accountShelf, type ComputedShelf, type ShelfRequest, type ShopperReader } from "../recommendations/shelf.ts";
import { type MoveContext, nudgeMovesOut, unfinishedMove } from "./moves.ts";

/** The owner of an identity key and the shard that holds the owner's region. */
export interface PlacedOwner extends KeyOwner {
  shard: number;
}

/**
 * Where a home shard finds the regions of the keys it located (CustomerShard.locate): the keys whose
 * directory entry names another shard, grouped by that shard. A key whose entry names this shard, or
 * that has none (an unknown key: no region holds it, so the local read finds nothing), is read here.
 */
export function placedElsewhere(located: Record<string, number | null>, here: number): Map<number, string[]> {
  const placed = new Map<number, string[]>();
  for (const [key, at] of Object.entries(located)) {
    if (at === null || at === here) continue;
    placed.set(at, [...(placed.get(at) ?? []), key]);
  }
  return placed;
}

/**
 * The shelf GET /v1/recommendations answers a signed-in account, read and ranked here: the shopper from
 * this shard's data alone, the catalog, models and rules from `shared` (D1 behind the isolate caches).
 * A D1 failure leaves as an Error carrying D1's own message, since that is what crosses the call back to
 * the Worker (Cloudflare documents that an error's cause does not), so the route still knows it and
 * serves the degraded shelf.
 */
export async function shelfHere(
  db: Db,
  shared: Db,
  accountKey: string,
  now: string,
  request: ShelfRequest,
  holdoutShare: number | undefined,
): Promise<ComputedShelf> {
  try {
    const readHere: ShopperReader = (key, at, read) => loadShopper(db, key, at, read);
    return await accountShelf(shared, readHere, accountKey, new Date(now), request, holdoutShare);
  } catch (error) {
    const failure = classifyDatabaseError(error);
    throw failure ? new Error(failure.message) : error;
  }
}

/** The owners of the keys whose regions are in this shard (with their merged-away family, local too). */
export async function ownersHere(db: Db, index: number, keys: string[]): Promise<Map<string, PlacedOwner>> {
  const owners = await ownersOf(db, keys);
  return new Map([...owners].map(([key, owner]) => [key, { ...owner, shard: index }]));
}

/**
 * The owners of keys located at their home shard `here`: those placed here read locally, the others
 * by one call per placed shard (`forward`, which reads there and forwards no further), in parallel.
 */
export async function ownersFrom(
  db: Db,
  here: number,
  located: Record<string, number | null>,
  forward: (shard: number, keys: string[]) => Promise<Map<string, PlacedOwner>>,
): Promise<Map<string, PlacedOwner>> {
  const away = placedElsewhere(located, here);
  const forwarded = new Set([...away.values()].flat());
  const local = Object.keys(located).filter((key) => !forwarded.has(key));
  const [owners, ...placed] = await Promise.all([
    ownersHere(db, here, local),
    ...[...away].map(([shard, keys]) => forward(shard, keys)),
  ]);
  for (const found of placed) for (const [key, owner] of found) owners.set(key, owner);
  return owners;
}

/** Browse days of customers a move took from here to `shard`: the caller adds them there. */
export interface BrowseForward {
  shard: number;
  days: BrowseDay[];
}

/**
 * Adds browse days to customers held here. A customer a move is taking out of here is moved first: a
 * rollup written between the move's copy and its delete would go with the delete. A customer a move
 * took elsewhere (this call located it before the move) is answered with the shard it went to, for the
 * caller to add its days there. A customer stored nowhere here (erased) gets nothing, as on D1: browsing
 * is at worst undercounted, never counted twice. A move that cannot finish now (its target refuses the
 * copy for the moment) leaves its customers' days written here, where its copy may already have been
 * read.
 */
export async function addBrowseHere(ctx: MoveContext, days: readonly BrowseDay[]): Promise<BrowseForward[]> {
  if (days.length === 0) return [];
  const customers = sql`(SELECT value FROM ${jsonEach([...new Set(days.map((day) => day.customerId))])})`;
  const movesOut = (unfinished: boolean) =>
    ctx.db.all<{ id: string; peer: number; customer: string }>(sql`
      SELECT m.id, m.peer, c.value AS customer FROM shard_moves m, json_each(m.customers) c
      WHERE m.direction = 'out' AND m.status IN ${unfinished ? unfinishedMove : sql`('done')`} AND c.value IN ${customers}
      ORDER BY m.updated_at`);
  const moving = await movesOut(true);
  if (moving.length > 0) await nudgeMovesOut(ctx, new Set(moving.map((move) => move.id)));
  const held = new Set(
    (await ctx.db.all<{ id: string }>(sql`SELECT id FROM customers WHERE id IN ${customers}`)).map((row) => row.id),
  );
  const here = days.filter((day) => held.has(day.customerId));
  // Where the latest finished move out of here took each customer not held here.
  const wentTo = new Map<string, number>();
  if (here.length < days.length) for (const move of await movesOut(false)) wentTo.set(move.customer, move.peer);
  await addBrowse(ctx.db, here);
  // One forward per day: the caller groups them by shard with the rest of its batch.
  return days.flatMap((day) => {
    const shard = held.has(day.customerId) ? undefined : wentTo.get(day.customerId);
    return shard === undefined ? [] : [{ shard, days: [day] }];
  });
}
