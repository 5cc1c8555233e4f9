// Ingestion inside a customer shard, as the router (ingest-router.ts) calls it: the unchanged
// `ingestOrders` / `identify` on the shard's own database, with new customers created at this shard
// (their ids hash here) and the write batch guarded by the fences of the keys the router placed
// here: a region moved (or moving) out answers `moved`, and the router locates it again.

import { sql } from "drizzle-orm";
import type { CountryCode } from "libphonenumber-js/min";
import { jsonEach } from "../../db/batch.ts";
import { customerIdHomedAt } from "../core/shards/placement.ts";
import type { IdentifierKind } from "../core/vocabulary.ts";
import type { Db } from "../env.ts";
import { type Conversion, storedConversions } from "../events/conversions.repo.ts";
import { ordersWrittenAt } from "../imports/imports.repo.ts";
import {
  type CustomerMerge,
  type IdentifyResult,
  type IngestRefusal,
  type IngestResult,
  identify,
  ingestOrders,
  type WriteOptions,
} from "../orders/ingest.ts";
import type { IdentifiersInput, OrderInput } from "../orders/orders.schemas.ts";
import type { AttributionSettings } from "../recommendations/attribution.ts";
import { fencedKeys, fenceGuard, heldGuard, isFenceAbort, orderEntryGuard } from "./directory.ts";
import { type MoveContext, nudgeMovesOut } from "./moves.ts";

/** How this shard ingests: its place among the shards and the deployment's ingestion settings. */
export interface ShardIngestContext extends MoveContext {
  secret: string;
  attribution: AttributionSettings;
  phoneRegion?: CountryCode;
  matchKinds?: ReadonlySet<IdentifierKind>;
}

/** The region of these keys is not (or no longer) here: locate it again. */
export type Moved = { kind: "moved" };

/**
 * Orders the router sent as stored here (their directory entries name this shard) that are not here:
 * moved on since (the entry names the new shard now), or claimed for this shard by a request that has
 * not stored them yet, or never will (it failed after its claim). Nothing was written.
 */
export type Missing = { kind: "missing"; ids: string[] };

export type ShardOrdersOutcome =
  | {
      kind: "ingested";
      result: IngestResult;
      merged: CustomerMerge[];
      /** Conversions of the resent orders that were stored with an attribution (the route records them). */
      resent: Conversion[];
      /** The orders stored with `now` as their created_at, with their recommendation id (imports read it back). */
      writtenAt: Record<string, string | null>;
    }
  | IngestRefusal
  | Moved
  | Missing;

export type ShardIdentifyOutcome =
  | { kind: "identified"; result: IdentifyResult; merged: CustomerMerge[] }
  | IngestRefusal
  | Moved;

const randomHex = () => crypto.randomUUID().replaceAll("-", "");

/** New customer ids of shard `index` of `count`: ids whose home is that shard (design rule 4). */
export const homedIds = (index: number, count: number) => () => customerIdHomedAt(index, count, randomHex);

function writeOptions(
  ctx: ShardIngestContext,
  keys: readonly string[],
  held: readonly string[] = [],
  fresh: readonly string[] = [],
): WriteOptions {
  return {
    newCustomerId: homedIds(ctx.index, ctx.count),
    guards: [
      ...(keys.length > 0 ? [fenceGuard(keys)] : []),
      ...(held.length > 0 ? [heldGuard(held)] : []),
      ...(fresh.length > 0 ? [orderEntryGuard(fresh, ctx.index)] : []),
    ],
  };
}

/**
 * Runs `write` unless a key is fenced here; a fence met before or during the write resumes the move
 * that set it (so an interrupted move finishes) and answers `moved`.
 */
async function unlessFenced<T>(
  ctx: ShardIngestContext,
  keys: readonly string[],
  write: () => Promise<T>,
): Promise<T | Moved> {
  const resumeFences = async () => {
    const fenced = await fencedKeys(ctx.db, keys);
    await nudgeMovesOut(ctx, new Set(fenced.values()));
    return { kind: "moved" } as const;
  };
  if ((await fencedKeys(ctx.db, keys)).size > 0) return resumeFences();
  try {
    return await write();
  } catch (error) {
    if (isFenceAbort(error)) return resumeFences();
    throw error;
  }
}

/**
 * POST /v1/orders for the groups the router placed here; `keys`: their verified identity keys; `held`:
 * the ids of resent orders the router found stored here (a batch that would store one again answers
 * `moved`).
 */
export async function ingestHere(
  ctx: ShardIngestContext,
  orders: OrderInput[],
  keys: readonly string[],
  now: string,
  held: readonly string[] = [],
): Promise<ShardOrdersOutcome> {
  const missing = await missingHere(ctx.db, held);
  if (missing.length > 0) return { kind: "missing", ids: missing };
  return unlessFenced(ctx, keys, async () => {
    const outcome = await ingestOrders(
      ctx.db,
      ctx.secret,
      orders,
      new Date(now),
      ctx.attribution,
      ctx.phoneRegion,
      ctx.matchKinds,
      writeOptions(
        ctx,
        keys,
        held,
        orders.map((order) => order.id).filter((id) => !held.includes(id)),
      ),
    );
    if (outcome.kind !== "ingested") return outcome;
    const ids = orders.map((order) => order.id);
    const [resent, written] = await Promise.all([
      storedConversions(ctx.db, orders, outcome.result.results),
      ordersWrittenAt(ctx.db, ids, now),
    ]);
    return { ...outcome, resent, writtenAt: Object.fromEntries(written) };
  });
}

/** Of `orderIds`, those not stored here. */
async function missingHere(db: Db, orderIds: readonly string[]): Promise<string[]> {
  if (orderIds.length === 0) return [];
  const rows = await db.all<{ id: string }>(
    sql`SELECT id FROM orders WHERE id IN (SELECT value FROM ${jsonEach(orderIds)})`,
  );
  const here = new Set(rows.map((row) => row.id));
  return orderIds.filter((id) => !here.has(id));
}

/** POST /v1/identify for a call the router placed here. */
export async function identifyHere(
  ctx: ShardIngestContext,
  identifiers: IdentifiersInput,
  keys: readonly string[],
  now: string,
): Promise<ShardIdentifyOutcome> {
  return unlessFenced(ctx, keys, () =>
    identify(ctx.db, ctx.secret, identifiers, new Date(now), ctx.phoneRegion, ctx.matchKinds, writeOptions(ctx, keys)),
  );
}
