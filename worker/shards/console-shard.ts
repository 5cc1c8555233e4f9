// What a customer shard does for the console and for a customer's rights of access and erasure: the
// same repository functions the one database runs, on the shard's own database. CustomerShard's
// `// --- console and erasure ---` methods call these; worker/shards/console.ts calls those methods.
// The routes call the one-customer reads on the D1 database when there are no shards, so both stores
// answer from the same code.
import { type SQL, sql } from "drizzle-orm";
import { batchRows, jsonEach, runBatch } from "../../db/batch.ts";
import {
  type SegmentCustomerRow,
  type SegmentFilter,
  type SegmentGroupRow,
  segmentCustomersQuery,
  segmentSummaryQuery,
} from "../admin/admin.repo.ts";
import { type ListedRow, type ListFilter, listCustomers, matchKeysOfCustomers } from "../admin/customer-lists.repo.ts";
import { orderSource } from "../core/identity/plan.ts";
import { customerKey } from "../core/shards/placement.ts";
import { storefrontAccountKeyOf, survivingCustomerId, withStorefrontAccount } from "../customers/customers.repo.ts";
import {
  type CustomerRows,
  type Erasure,
  type ErasurePlan,
  eraseCustomer,
  exportCustomerRows,
  suppressionStatements,
} from "../customers/erasure.repo.ts";
import { historyOrdersOf } from "../customers/history.repo.ts";
import type { Db, EventsDb } from "../env.ts";
import { type TransitionSummaryPart, transitionSummary } from "../jobs/nightly.repo.ts";
import { numberOlderTransitions, transitionsFeedPage } from "../jobs/transitions-feed.repo.ts";
import type { WriteOptions } from "../orders/ingest.ts";
import { loadShopper, loadShoppers, type ShopperData } from "../recommendations/recommendations.repo.ts";
import { sampleShoppers } from "../rules/steer.repo.ts";
import { unfinishedMove } from "./moves.ts";

/** GET /v1/customers/:id/history's reads here: the surviving customer and their orders; null: no such customer. */
export async function customerHistoryIn(db: Db, customerId: string) {
  const survivor = await survivingCustomerId(db, customerId);
  if (!survivor) return null;
  return { customerId: survivor, ...(await historyOrdersOf(db, survivor)) };
}

/**
 * GET /v1/customers/:id/shelf's reads here: the surviving customer, their storefront account key and
 * what the recommendation path reads for that account (null without one); null: no such customer.
 */
export async function customerShelfIn(
  db: Db,
  customerId: string,
  now: Date,
): Promise<{ customerId: string; accountKey: string | null; shopper: ShopperData | null } | null> {
  const survivor = await survivingCustomerId(db, customerId);
  if (!survivor) return null;
  const accountKey = await storefrontAccountKeyOf(db, survivor);
  return { customerId: survivor, accountKey, shopper: accountKey ? await loadShopper(db, accountKey, now) : null };
}

/** The export's customer-table rows here: the surviving customer and their family's rows; null: no such customer. */
export async function customerExportIn(
  db: Db,
  customerId: string,
): Promise<{ customerId: string; rows: CustomerRows } | null> {
  const survivor = await survivingCustomerId(db, customerId);
  if (!survivor) return null;
  return { customerId: survivor, rows: await exportCustomerRows(db, survivor) };
}

/**
 * True when a move that has not finished takes any of `customerIds` out of this shard or brings them
 * in: erasing while the region's rows are being copied could leave a copy in the other shard.
 */
export async function regionMoving(db: Db, customerIds: readonly string[]): Promise<boolean> {
  const row = await db.get<{ n: number }>(sql`
    SELECT count(*) AS n FROM shard_moves m, json_each(m.customers) c
    WHERE m.status IN ${unfinishedMove} AND c.value IN (SELECT value FROM ${jsonEach([...customerIds])})`);
  return (row?.n ?? 0) > 0;
}

/**
 * The unchanged erasure run here, with the events database as on D1: before each attempt's batch, the
 * plan's suppression keys go on the main database's list (`mainDb`, which the ingestion router checks)
 * and the customers' legacy events there are deleted;
 * the batch puts them on this shard's own list as well, which this shard's ingestion checks in its own
 * batch. Guest identifiers that another shard saw (`seenElsewhere`) stay unsuppressed. The shared
 * identifiers decided again afterwards are written with `resolveOptions` (this shard's new customer
 * ids, and a fence check). Null: no such customer.
 */
export async function eraseCustomerIn(
  db: Db,
  mainDb: Db,
  eventsDb: EventsDb,
  customerId: string,
  orderKey: (orderId: string) => Promise<string>,
  now: Date,
  seenElsewhere: (keys: string[]) => Promise<string[]>,
  resolveOptions: (keys: readonly string[]) => WriteOptions = () => ({}),
  inBatch?: (plan: ErasurePlan) => SQL[],
): Promise<{ customerId: string; erasure: Erasure } | null> {
  const survivor = await survivingCustomerId(db, customerId);
  if (!survivor) return null;
  // The move finishes by itself (the next order that meets it, or the shard's alarm); the erasure is
  // answered busy meanwhile and its retry finds the customer where the move left it.
  if (await regionMoving(db, [customerId, survivor])) return { customerId: survivor, erasure: { kind: "busy" } };
  const erasure = await eraseCustomer(
    db,
    eventsDb,
    survivor,
    orderKey,
    now,
    async (plan) => {
      const results = await runBatch(mainDb, [
        ...suppressionStatements(plan, now),
        // Events from before the events database, still in the main database until the nightly job moves them.
        sql`DELETE FROM legacy_events WHERE customer_id IN (SELECT value FROM ${jsonEach(plan.customerIds)})`,
      ]);
      return { events: results.at(-1)?.meta.changes ?? 0 };
    },
    seenElsewhere,
    resolveOptions,
    inBatch,
  );
  return { customerId: survivor, erasure };
}

/**
 * Of `keys`, those this shard saw on any order or call: asked by a shard erasing a guest, whose own
 * sources are all in that shard, so a sighting here is somebody else's and the identifier is not the
 * guest's alone.
 */
export async function sightedKeysIn(db: Db, keys: readonly string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const rows = await db.all<{ key: string }>(sql`
    SELECT DISTINCT identity_key AS key FROM identity_observations
    WHERE identity_key IN (SELECT value FROM ${jsonEach([...keys])})`);
  return rows.map((row) => row.key);
}

/**
 * An erasure's part in every shard (the erasing one has none left): its identifiers lose their
 * sightings here, on somebody else's orders and calls, as the erasing shard's own batch took them from
 * its records (a guest here who typed the erased customer's email keeps the order, not the email),
 * with the identity rows those sightings left. The identifiers are the erased customer's own (a guest
 * identifier another shard saw was left out of the erasure), so none is held or shared here: one that
 * is (a placement this code does not expect) is left whole, and logged. Returns the observations deleted.
 */
export async function dropSightingsIn(db: Db, keys: readonly string[]): Promise<number> {
  if (keys.length === 0) return 0;
  const erased = sql`(SELECT value FROM ${jsonEach([...keys])})`;
  const kept = sql`SELECT key FROM identities WHERE key IN ${erased} AND (customer_id IS NOT NULL OR shared = 1)`;
  const [held, observations] = await runBatch(db, [
    kept,
    sql`DELETE FROM identity_observations WHERE identity_key IN ${erased} AND identity_key NOT IN (${kept})`,
    sql`DELETE FROM identities WHERE key IN ${erased} AND customer_id IS NULL AND shared = 0`,
  ]);
  const left = held?.results?.length ?? 0;
  if (left > 0)
    console.warn(JSON.stringify({ warning: "erased identifiers held or shared in another shard: left", keys: left }));
  return observations?.meta.changes ?? 0;
}

/**
 * The directory keys an erasure leaves behind: its identifiers', its customers' and its orders'
 * (an order with no verified identifier is placed by `order:<id>`).
 */
export function erasedDirectoryKeys(plan: {
  customerIds: string[];
  orderIds: string[];
  identifiers: { key: string }[];
}) {
  return [
    ...plan.identifiers.map((identifier) => identifier.key),
    ...plan.customerIds.map(customerKey),
    ...plan.orderIds.map(orderSource),
  ];
}

/**
 * Deletes this shard's directory entries of `keys` that place them in shard `placed` (an entry that
 * places a key elsewhere was written since, for another region, and stays). Returns how many went.
 */
export async function dropDirectoryEntries(db: Db, keys: readonly string[], placed: number): Promise<number> {
  if (keys.length === 0) return 0;
  const [result] = await runBatch(db, [
    sql`DELETE FROM shard_directory WHERE shard = ${placed} AND key IN (SELECT value FROM ${jsonEach(keys)})`,
  ]);
  return result?.meta.changes ?? 0;
}

/** This shard's first rows of a console list page (the same query as the one database's). */
export async function listPageIn(db: Db, filter: ListFilter): Promise<ListedRow[]> {
  return listCustomers(db, filter);
}

/** The match keys this shard holds of `customerIds` (those it does not hold are simply absent). */
export async function matchKeysIn(db: Db, customerIds: readonly string[], kinds: readonly string[]) {
  return matchKeysOfCustomers(db, customerIds, kinds);
}

/**
 * This shard's part of a segment: its first `offset + limit` customers in the segment's order (the
 * merged page can take any of them) and its stage × tier counts with unrounded CLV sums.
 */
export async function segmentPartIn(
  db: Db,
  filter: SegmentFilter,
): Promise<{ customers: SegmentCustomerRow[]; summary: SegmentGroupRow[] }> {
  const [customers = [], summary = []] = await batchRows(db, [
    segmentCustomersQuery({ ...filter, limit: filter.offset + filter.limit, offset: 0 }),
    segmentSummaryQuery(filter, false),
  ]);
  return {
    customers: customers as unknown as SegmentCustomerRow[],
    summary: summary as unknown as SegmentGroupRow[],
  };
}

/**
 * POST /v1/admin/rules/preview's customer read here: the surviving customer and what the shelf reads of
 * them (null when they have no summary); null: no such customer.
 */
export async function customerShopperIn(
  db: Db,
  customerId: string,
  now: Date,
): Promise<{ customerId: string; shopper: ShopperData | null; storefrontAccount: boolean } | null> {
  const survivor = await survivingCustomerId(db, customerId);
  if (!survivor) return null;
  const [shoppers, accountKey] = await Promise.all([
    loadShoppers(db, [survivor], now),
    storefrontAccountKeyOf(db, survivor),
  ]);
  return { customerId: survivor, shopper: shoppers.get(survivor) ?? null, storefrontAccount: accountKey !== null };
}

/**
 * POST /v1/admin/rules/simulate's sample here: the first `size` known shoppers by id (sampleShoppers)
 * with what the shelf reads of each, in id order.
 */
export async function shopperSampleIn(
  db: Db,
  size: number,
  now: Date,
): Promise<{ customerId: string; shopper: ShopperData | null; storefrontAccount: boolean }[]> {
  const ids = await sampleShoppers(db, size);
  const [shoppers, online] = await Promise.all([loadShoppers(db, ids, now), withStorefrontAccount(db, ids)]);
  return ids.map((customerId) => ({
    customerId,
    shopper: shoppers.get(customerId) ?? null,
    storefrontAccount: online.has(customerId),
  }));
}

/**
 * This shard's part of a transitions feed page: its rows since `since` with feed ids after `after` and
 * below `below`, in feed-id order. Rows from before feed ids are numbered first, as the feed showed them.
 */
export async function transitionsFeedIn(
  db: Db,
  shard: { index: number; count: number },
  since: string,
  after: number,
  below: number,
  limit: number,
) {
  await numberOlderTransitions(db, shard.index, shard.count);
  return transitionsFeedPage(db, since, after, below, limit);
}

/** This shard's part of the transitions summary: its changes since `since` by kind, and its newest, below `below`. */
export async function transitionSummaryIn(
  db: Db,
  shard: { index: number; count: number },
  since: string,
  below: number,
  recent: number,
): Promise<TransitionSummaryPart> {
  await numberOlderTransitions(db, shard.index, shard.count);
  return transitionSummary(db, since, recent, { column: "feed_id", below });
}
