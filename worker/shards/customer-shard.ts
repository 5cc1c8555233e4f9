// A customer shard: a SQLite-backed Durable Object holding whole identity regions of customers, and
// the directory entries of the keys whose home it is (docs/scaling.md, ingestion across shards). It runs the same repositories as the single D1 database, through D1's
// statement interface over its own storage (db/durable-d1.ts), on the same schema (the main
// database's migrations, applied when the object starts). Its methods are called over Durable Object
// RPC; each runs inside the object, so its reads are in-process and its batches are transactions.
import { DurableObject } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { drizzle as durableDrizzle } from "drizzle-orm/durable-sqlite";
import { migrate } from "drizzle-orm/durable-sqlite/migrator";
import { durableD1 } from "../../db/durable-d1.ts";
import * as schema from "../../db/schema.ts";
import { shardMigrations } from "../../db/shard-migrations.ts";
import type { SegmentFilter } from "../admin/admin.repo.ts";
import type { ListedRow, ListFilter } from "../admin/customer-lists.repo.ts";
import type { AudienceFilters } from "../audiences/audiences.schemas.ts";
import type { HoldersPart } from "../core/identity/holders.ts";
import {
  customerKey,
  placedByProblem,
  preparedWriteProblem,
  type ReshardMark,
  shardCountProblem,
} from "../core/shards/placement.ts";
import type { ShardPart } from "../core/shards/status.ts";
import { eventsDatabase, mainDatabase } from "../databases.ts";
import type { Db, Env } from "../env.ts";
import type { BrowseDay } from "../events/events.repo.ts";
import { holdersIn } from "../identity/identity.repo.ts";
import { enabledMatchKeys, type MatchKeyName, matchKinds } from "../identity/match-keys.ts";
import { phoneRegion } from "../identity/phone.ts";
import { type BackfillName, type BackfillState, backfillStates, rerunBackfill } from "../jobs/backfills.repo.ts";
import { ingestOrders } from "../orders/ingest.ts";
import type { IdentifiersInput, OrderInput } from "../orders/orders.schemas.ts";
import { attributionSettings } from "../recommendations/attribution.ts";
import type { ComputedShelf, ShelfRequest } from "../recommendations/shelf.ts";
import { liftSuppression, orderSuppressionKey } from "../suppressions/suppressions.repo.ts";
import {
  customerExportIn,
  customerHistoryIn,
  customerShelfIn,
  customerShopperIn,
  dropDirectoryEntries,
  dropSightingsIn,
  eraseCustomerIn,
  listPageIn,
  matchKeysIn,
  segmentPartIn,
  shopperSampleIn,
  sightedKeysIn,
  transitionSummaryIn,
  transitionsFeedIn,
} from "./console-shard.ts";
import {
  type CustomerRead,
  type CustomerReadRequest,
  customerById,
  customerByKey,
  type ReadContext,
} from "./customer-reads.ts";
import {
  type Claimed,
  claimPlacements,
  fenceGuard,
  locatePlacements,
  type Placement,
  releaseClaims,
  setPlacements,
} from "./directory.ts";
import { runDueScrubs, scrubAgainAfterMs, scrubStatements, scrubsState } from "./erasure-scrubs.ts";
import {
  clearCustomerData,
  customerIdsAfter,
  customerTableCounts,
  d1Source,
  expireMigratedBrowse,
  ownRowsSince,
  type TableCounts,
} from "./migrate.ts";
import {
  dropRegion,
  type ErasedRegion,
  finishedMoveRetentionMs,
  finishMoveIn,
  forgetErased,
  type MoveOutcome,
  type MovePeer,
  moveGroupsOut,
  moveRegionOut,
  pruneFinishedMoves,
  type Region,
  type RegionCopy,
  type RegionParts,
  receiveRegion,
  regionOf,
  resumeMovesOut,
  stageRegionParts,
  unfinishedMoves,
} from "./moves.ts";
import {
  arrivalsCount,
  audienceCount,
  audienceMembers,
  audienceRows,
  copurchaseCounts,
  diagnosticsPart,
  expireShardBrowse,
  fitSamplePage,
  populationPage,
  productSales,
  runTransitionCount,
  runTransitionsPage,
  type ShardPageRequest,
  scoreArrivalsPage,
  scoreShardPage,
} from "./nightly-shard.ts";
import {
  customerCount,
  drainCallsPage,
  drainPage,
  liveCustomerCount,
  type RebalancePage,
  rebalancePage,
} from "./rebalance-shard.ts";
import {
  dropEntriesIntoRemoved,
  dropRehomedEntries,
  dropWalkEntries,
  heldRows,
  keepWalkEntries,
  placeWalkEntries,
  placingWritesSince,
  type ReshardPart,
  reshardPage,
  reshardTotals,
} from "./reshard-shard.ts";
import {
  homedIds,
  identifyHere,
  ingestHere,
  type ShardIdentifyOutcome,
  type ShardIngestContext,
  type ShardOrdersOutcome,
} from "./shard-ingest.ts";
import { type ShardStub, shardCount, shardStub } from "./shards.ts";
import {
  addBrowseHere,
  type BrowseForward,
  ownersFrom,
  ownersHere,
  type PlacedOwner,
  placedElsewhere,
  shelfHere,
} from "./shopper-shard.ts";

/** How long an interrupted move waits for the alarm that resumes it, when no call meets it first. */
const moveAlarmDelayMs = 30_000;

/** The index in a shard's name (`shard-<index>`), or null for another object of the class. */
function shardIndex(name: string | undefined): number | null {
  const match = /^shard-(\d+)$/.exec(name ?? "");
  return match ? Number(match[1]) : null;
}
/** How long after a finished move's record expires its prune runs (so the record is past the cut-off). */
const pruneMarginMs = 60_000;

export class CustomerShard extends DurableObject<Env> {
  private readonly db: Db;
  /** Set while a reshard has prepared this shard for another count (reshard-shard.ts). */
  private reshardMark: ReshardMark | undefined;
  /**
   * This shard's index, from its name (`shard-<index>`), else from its storage: an object its alarm
   * wakes may not know its name (a local dev server restarted), and the calls that follow reuse it.
   */
  private numbered: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.db = drizzle(durableD1(ctx.storage), { schema }) as Db;
    // Before any call: a new or older shard is brought to the current schema, in one transaction; and
    // a shard refuses every call when SHARD_COUNT is not the count it was first used with, nor one a
    // reshard prepared it for (the exception resets the object, so each call meets the check again
    // until the setting is put back). A shard a reshard adds records nothing before the switch.
    ctx.blockConcurrencyWhile(async () => {
      await migrate(durableDrizzle(ctx.storage), shardMigrations);
      const count = shardCount(env);
      const named = shardIndex(ctx.id.name);
      const stored = await ctx.storage.get<number>("shardIndex");
      if (named !== null && stored !== named) await ctx.storage.put("shardIndex", named);
      const index = named ?? stored ?? null;
      this.numbered = index;
      // A shard past the count is not in use: only a reshard's walk writes there, whatever it recorded.
      if (index !== null && index >= count) return;
      const recorded = await ctx.storage.get<number>("shardCount");
      this.reshardMark = await ctx.storage.get<ReshardMark>("reshardTo");
      // The switch: a prepared shard started under its new count takes it as its own, and from then on
      // refuses the old one (it may take writes the old count would not find).
      const switched = this.reshardMark?.count === count && recorded !== count;
      const problem = switched ? null : shardCountProblem(recorded, count);
      if (problem) throw new Error(problem);
      // A shard serving for the first time takes the count only if shard 0 serves under it too (its
      // start makes the same check): else a count raised without a reshard would be served by the
      // shards it adds, for the keys homed there, while the old ones refuse. One call, once per shard.
      if (recorded === undefined && count > 0 && index !== null && index > 0) await shardStub(env, 0).servingCount();
      if ((recorded === undefined || switched) && count > 0) await ctx.storage.put("shardCount", count);
    });
  }

  /** The count this shard serves under: it answers only if its start's check passed (a new shard asks shard 0). */
  servingCount(): number {
    return shardCount(this.env);
  }

  /**
   * Refuses a write while a reshard has prepared this shard and the deployment still runs the old count,
   * and one whose keys the caller placed by `placedBy` shards when this shard serves another count (a
   * Worker or shard still on the old version while a new count rolls out). `filling`: directory entries
   * or a copied region, which a shard not in use yet takes from a reshard's walk or a migration.
   */
  private writable(placedBy: number | undefined, filling = false): void {
    const count = shardCount(this.env);
    // The count first: a prepared shard still on the old count, called by a Worker already on the new
    // one, answers the skew (seconds, while the new version rolls out), not the reshard (minutes). An
    // object of the class that is not a numbered shard (a test's) places nothing by the count.
    const index = this.numbered;
    const skew = index === null ? null : placedByProblem(placedBy, count, index, filling);
    const problem = skew ?? preparedWriteProblem(this.reshardMark, count);
    if (problem) throw new Error(problem);
  }

  /** This shard's index, from its name (`shard-<index>`, worker/shards/shards.ts). */
  get index(): number {
    const index = this.numbered;
    if (index === null) throw new Error(`not a customer shard: ${this.ctx.id.name}`);
    return index;
  }

  /**
   * The placements of `keys` homed here: the shard holding each key's data (an order at its home is
   * found in this shard's orders), or null (an unknown identity key, a customer at its home).
   */
  async locate(keys: string[]): Promise<Record<string, number | null>> {
    const placed = await locatePlacements(this.db, keys, this.index);
    return Object.fromEntries(keys.map((key) => [key, placed.get(key) ?? null]));
  }

  /**
   * The plain ingestion of orders already validated, in this shard, with no placement (the router
   * calls ingestGroups). A numbered shard of a sharded deployment still creates its customers at
   * itself (their ids hash here), so they are found by id.
   */
  async ingest(orders: OrderInput[], now: string) {
    const count = shardCount(this.env);
    this.writable(count);
    const numbered = count > 0 && this.numbered !== null;
    return ingestOrders(
      this.db,
      this.env.IDENTITY_HASH_SECRET,
      orders,
      new Date(now),
      attributionSettings(this.env),
      phoneRegion(this.env.PHONE_DEFAULT_REGION),
      matchKinds(enabledMatchKeys(this.env.EXPORT_MATCH_KEYS)),
      numbered ? { newCustomerId: homedIds(this.index, count) } : {},
    );
  }

  // --- directory and ingestion ---

  /** This shard's place among the shards and what its ingestion and moves need (shard-ingest.ts). */
  private get placement(): ShardIngestContext {
    return {
      db: this.db,
      index: this.index,
      count: shardCount(this.env),
      peer: (index) => shardStub(this.env, index) as unknown as MovePeer,
      wakeLater: () => this.wakeLater(),
      secret: this.env.IDENTITY_HASH_SECRET,
      attribution: attributionSettings(this.env),
      phoneRegion: phoneRegion(this.env.PHONE_DEFAULT_REGION),
      matchKinds: matchKinds(enabledMatchKeys(this.env.EXPORT_MATCH_KEYS)),
    };
  }

  /**
   * Records each key's placement unless it has one (this shard is their home); answers the winners.
   * `token`: the claiming request's, on the order entries it records (claimPlacements).
   */
  async claim(entries: Placement[], placedBy: number, token: string | null = null): Promise<Claimed[]> {
    this.writable(placedBy);
    return claimPlacements(this.db, entries, new Date().toISOString(), this.index, token);
  }

  /** Drops the order entries of `keys` (homed here) that request `token` claimed and stored nowhere. */
  async releaseClaims(keys: string[], token: string, placedBy: number): Promise<number> {
    this.writable(placedBy);
    return releaseClaims(this.db, keys, token);
  }

  /** A move's directory step: these keys (homed here) are in `shard` now. */
  async placeKeys(entries: Placement[], placedBy: number): Promise<void> {
    this.writable(placedBy, true);
    await setPlacements(this.db, entries, new Date().toISOString());
  }

  /** Moves the region of `keys` from here into shard `target` (recorded, fenced, resumable). */
  async moveOut(keys: string[], target: number, placedBy: number): Promise<MoveOutcome> {
    this.writable(placedBy);
    return moveRegionOut(this.placement, keys, target);
  }

  /**
   * Moves the regions of several groups of keys from here into shard `target`, as one move when it can
   * (moveGroupsOut); answers each group's outcome.
   */
  async moveGroupsOut(groups: string[][], target: number, placedBy: number): Promise<MoveOutcome[]> {
    this.writable(placedBy);
    return moveGroupsOut(this.placement, groups, target);
  }

  /** A move's copy step, in the target: false while the region cannot be taken yet. */
  async receiveRegion(copy: RegionCopy, placedBy: number): Promise<boolean> {
    this.writable(placedBy, true);
    return receiveRegion(this.db, copy, new Date().toISOString());
  }

  /** Parts of a move's copy too big for one call, staged here until its last call (receiveRegion). */
  async receiveRegionParts(parts: RegionParts, placedBy: number): Promise<void> {
    this.writable(placedBy, true);
    await stageRegionParts(this.db, parts, new Date().toISOString());
  }

  /** A move's last step, in the target (its record is pruned by the alarm once past retention). */
  async finishMoveIn(moveId: string): Promise<void> {
    await finishMoveIn(this.db, moveId, new Date().toISOString());
    await this.wakeAt(Date.now() + finishedMoveRetentionMs + pruneMarginMs);
  }

  /** Finishes every move out of here that was interrupted. */
  async resumeMoves(): Promise<number> {
    return resumeMovesOut(this.placement);
  }

  /**
   * An erasure's part here: scrubs the erased customer from the records and fences of finished moves,
   * and its identifiers from the sightings here on other customers' records.
   */
  async forgetErased(erased: ErasedRegion): Promise<{ moves: number; fences: number; sightings: number }> {
    const forgotten = await forgetErased(this.db, erased, new Date().toISOString());
    const sightings = await dropSightingsIn(
      this.db,
      erased.identifiers.map((identifier) => identifier.key),
    );
    return { ...forgotten, sightings };
  }

  /**
   * Runs the erasures' scrubs that are due (erasure-scrubs.ts) and wakes for the next; resumes
   * interrupted moves (a move that fails again throws, and the runtime retries the alarm), then prunes
   * the records of moves finished more than the retention ago and wakes again for the next.
   */
  override async alarm(): Promise<void> {
    // Erasures' scrubs first (a failed one is due again later, never a reason to skip the moves); the
    // alarm for the next is set after the moves, since one set before a move that throws would replace
    // the runtime's quick retry of the alarm.
    const nextScrub = await runDueScrubs(this.db, this.env, new Date());
    try {
      await resumeMovesOut(this.placement);
    } catch (error) {
      // The runtime's retries of the alarm give up after a few: the moves' own retry is set here, no
      // later than the next scrub, so neither is left without an alarm.
      const retry = Date.now() + moveAlarmDelayMs;
      await this.wakeAt(nextScrub === null ? retry : Math.min(retry, Date.parse(nextScrub)));
      throw error;
    }
    if (nextScrub !== null) await this.wakeAt(Date.parse(nextScrub));
    const oldest = await pruneFinishedMoves(this.db, new Date(Date.now() - finishedMoveRetentionMs).toISOString());
    if (oldest !== null) await this.wakeAt(Date.parse(oldest) + finishedMoveRetentionMs + pruneMarginMs);
  }

  private wakeLater(): Promise<void> {
    return this.wakeAt(Date.now() + moveAlarmDelayMs);
  }

  /** Sets the alarm for `at` unless it is set for sooner. */
  private async wakeAt(at: number): Promise<void> {
    const set = await this.ctx.storage.getAlarm();
    if (set === null || set > at) await this.ctx.storage.setAlarm(at);
  }

  /** POST /v1/orders for the groups the router placed here. */
  async ingestGroups(
    orders: OrderInput[],
    keys: string[],
    now: string,
    held: string[],
    placedBy: number,
  ): Promise<ShardOrdersOutcome> {
    this.writable(placedBy);
    return ingestHere(this.placement, orders, keys, now, held);
  }

  /** POST /v1/identify for a call the router placed here. */
  async identifyGroup(
    identifiers: IdentifiersInput,
    keys: string[],
    now: string,
    placedBy: number,
  ): Promise<ShardIdentifyOutcome> {
    this.writable(placedBy);
    return identifyHere(this.placement, identifiers, keys, now);
  }

  private reads(forward: (stub: ShardStub) => Promise<CustomerRead>): ReadContext {
    return {
      db: this.db,
      index: this.index,
      count: shardCount(this.env),
      placementOf: async (key) => (await this.locate([key]))[key] ?? null,
      forward: (shard) => forward(shardStub(this.env, shard)),
    };
  }

  /** GET /v1/customers/:id, asked of the home shard of `customer:<id>` (forwards once when it moved). */
  async customerById(customerId: string, request: CustomerReadRequest, forwarded = false): Promise<CustomerRead> {
    const ctx = this.reads((stub) => stub.customerById(customerId, request, true));
    return customerById(ctx, customerId, request, forwarded);
  }

  /** GET /v1/customers/lookup, asked of the key's home shard (forwards once to where its region is). */
  async customerByKey(key: string, request: CustomerReadRequest, forwarded = false): Promise<CustomerRead> {
    const ctx = this.reads((stub) => stub.customerByKey(key, request, true));
    return customerByKey(ctx, key, request, forwarded);
  }

  // --- end directory and ingestion ---

  // --- migration ---

  /** Empties this shard before a migration pass copies D1 into it (only while the deployment runs on D1). */
  async clearCustomerData(): Promise<void> {
    await clearCustomerData(this.db);
  }

  /** Rows this shard stored itself after `since` (or at all, before a first pass): migrateStep's guard. */
  async ownRowsSince(since: string | null): Promise<Record<string, number>> {
    return ownRowsSince(this.db, since);
  }

  /**
   * A catch-up pass (migrate.ts): deletes a region's old copy here, with its directory entries, and
   * every sighting of the identifiers D1 erased.
   */
  async dropMigratedRegion(region: Region, erasedKeys: string[] = []): Promise<void> {
    await dropRegion(this.db, region, d1Source, erasedKeys);
  }

  /** A catch-up pass's prune: the next `limit` customer ids here after `after` (merged-away ones too). */
  async customerIdsAfter(after: string, limit: number): Promise<string[]> {
    return customerIdsAfter(this.db, after, limit);
  }

  /** A catch-up pass's prune: everything connected here to these customers (regionOf). */
  async localRegion(customers: string[]): Promise<Region | "too_large"> {
    return regionOf(this.db, [], undefined, { customers });
  }

  /** A catch-up pass: drops the browse days before `oldest`, D1's oldest (every one when D1 has none). */
  async expireMigratedBrowse(oldest: string | null): Promise<void> {
    await expireMigratedBrowse(this.db, oldest);
  }

  /** Rows in each customer table here: `patron shards migrate` compares them with D1's. */
  async tableCounts(): Promise<TableCounts> {
    return customerTableCounts(this.db);
  }

  // --- end migration ---

  // --- nightly --- (worker/shards/nightly-shard.ts; called by worker/shards/nightly.ts)

  nightlyFitSample(after: string, limit: number) {
    return fitSamplePage(this.db, after, limit);
  }

  nightlyPopulation(after: string, limit: number) {
    return populationPage(this.db, after, limit);
  }

  nightlyProductSales(orders: number) {
    return productSales(this.db, orders);
  }

  nightlyCopurchase(since: string, until: string, orders: number) {
    return copurchaseCounts(this.db, since, until, orders);
  }

  nightlyDiagnostics(now: string, customers: number) {
    return diagnosticsPart(this.db, now, customers);
  }

  nightlyScorePage(request: ShardPageRequest) {
    return scoreShardPage(this.db, request, new Date());
  }

  /** How many customers moved here since the run's first page here. */
  nightlyArrivals(runId: string) {
    return arrivalsCount(this.db, runId);
  }

  /** The next page of the run's arrivals: customers moved here since its first page here. */
  nightlyScoreArrivals(request: ShardPageRequest) {
    return scoreArrivalsPage(this.db, request);
  }

  nightlyTransitionCount(runId: string) {
    return runTransitionCount(this.db, runId);
  }

  nightlyTransitions(runId: string, afterId: number, limit: number) {
    return runTransitionsPage(this.db, runId, afterId, limit);
  }

  nightlyExpireBrowse(since: string) {
    return expireShardBrowse(this.db, since);
  }

  nightlyAudienceCount(filters: AudienceFilters) {
    return audienceCount(this.db, filters);
  }

  nightlyAudienceMembers(filter: ListFilter) {
    return audienceMembers(this.db, filter);
  }

  nightlyAudienceRows(customerIds: string[], matchKeys: MatchKeyName[]) {
    return audienceRows(this.db, customerIds, matchKeys);
  }

  // --- console and erasure ---
  // A method given a customer id is called on the id's home shard, which forwards once to the shard
  // its directory places the customer in (`forwarded`: this is that shard; answer from here).

  /** Runs `here` in the shard holding the customer, forwarding once (`there`) when that is not this one. */
  private async atCustomer<T>(
    customerId: string,
    forwarded: boolean,
    here: () => Promise<T>,
    there: (stub: ShardStub) => Promise<T>,
  ): Promise<T> {
    // The home's directory entry of `customer:<id>`, when a move left one; else the customer is here.
    const key = customerKey(customerId);
    const placed = forwarded ? this.index : ((await this.locate([key]))[key] ?? this.index);
    return placed === this.index ? here() : there(shardStub(this.env, placed));
  }

  async customerHistory(customerId: string, forwarded = false): Promise<ReturnType<typeof customerHistoryIn>> {
    return this.atCustomer(
      customerId,
      forwarded,
      () => customerHistoryIn(this.db, customerId),
      (stub) => stub.customerHistory(customerId, true),
    );
  }

  async customerShelf(customerId: string, now: string, forwarded = false): Promise<ReturnType<typeof customerShelfIn>> {
    return this.atCustomer(
      customerId,
      forwarded,
      () => customerShelfIn(this.db, customerId, new Date(now)),
      (stub) => stub.customerShelf(customerId, now, true),
    );
  }

  async customerExport(customerId: string, forwarded = false): Promise<ReturnType<typeof customerExportIn>> {
    return this.atCustomer(
      customerId,
      forwarded,
      () => customerExportIn(this.db, customerId),
      (stub) => stub.customerExport(customerId, true),
    );
  }

  async customerShopper(
    customerId: string,
    now: string,
    forwarded = false,
  ): Promise<ReturnType<typeof customerShopperIn>> {
    return this.atCustomer(
      customerId,
      forwarded,
      () => customerShopperIn(this.db, customerId, new Date(now)),
      (stub) => stub.customerShopper(customerId, now, true),
    );
  }

  async shopperSample(size: number, now: string) {
    return shopperSampleIn(this.db, size, new Date(now));
  }

  /** The erasure where the customer is; `shard` says which shard that was (its directory entries point there). */
  async eraseCustomer(
    customerId: string,
    now: string,
    forwarded: boolean,
    placedBy: number,
  ): Promise<(NonNullable<Awaited<ReturnType<typeof eraseCustomerIn>>> & { shard: number }) | null> {
    this.writable(placedBy);
    return this.atCustomer(
      customerId,
      forwarded,
      async () => {
        // Set before the erasure: a step failing after its batch (the to-do then written) still finds it
        // run. An alarm with nothing due does only its usual work.
        const scrubDue = new Date(Date.now() + scrubAgainAfterMs);
        await this.wakeAt(scrubDue.getTime());
        const erased = await eraseCustomerIn(
          this.db,
          mainDatabase(this.env.DB),
          eventsDatabase(this.env.EVENTS_DB),
          customerId,
          (orderId) => orderSuppressionKey(orderId, this.env.IDENTITY_HASH_SECRET),
          new Date(now),
          (keys) => this.sightedInOtherShards(keys),
          // Shared identifiers decided again after the erasure: new customers homed here, and no write
          // while a move has fenced them (they stay shared then).
          (keys) => ({ newCustomerId: homedIds(this.index, shardCount(this.env)), guards: [fenceGuard(keys)] }),
          // The erasure's part in the other shards and the directory, kept here until a pass of it succeeds.
          (plan) => scrubStatements({ ...plan, shard: this.index }, new Date(), scrubDue),
        );
        return erased && { ...erased, shard: this.index };
      },
      (stub) => stub.eraseCustomer(customerId, now, true, placedBy),
    );
  }

  /** This shard's customers that hold `key` or were seen with it (GET /v1/customers/holders). */
  async holders(key: string, limit: number): Promise<HoldersPart> {
    return holdersIn(this.db, key, limit);
  }

  /** Of `keys`, those this shard saw on any order or call (an erasing shard asks: sightedInOtherShards). */
  async sightedKeys(keys: string[]): Promise<string[]> {
    return sightedKeysIn(this.db, keys);
  }

  /** Of `keys`, those any other shard saw: a guest's identifier seen there is not the guest's alone. */
  private async sightedInOtherShards(keys: string[]): Promise<string[]> {
    if (keys.length === 0) return [];
    const others = Array.from({ length: shardCount(this.env) }, (_, index) => index).filter(
      (index) => index !== this.index,
    );
    const answers = await Promise.all(others.map((index) => shardStub(this.env, index).sightedKeys(keys)));
    return [...new Set(answers.flat())];
  }

  /** Deletes the directory entries of `keys` held here that place them in shard `placed`. */
  async dropDirectoryEntries(keys: string[], placed: number, placedBy: number): Promise<number> {
    this.writable(placedBy);
    return dropDirectoryEntries(this.db, keys, placed);
  }

  /** Lifts a suppression from this shard's own list; false when it was not there. */
  async liftSuppression(key: string, placedBy: number): Promise<boolean> {
    this.writable(placedBy);
    return liftSuppression(this.db, key);
  }

  async listPage(filter: ListFilter): Promise<ListedRow[]> {
    return listPageIn(this.db, filter);
  }

  async matchKeys(customerIds: string[], kinds: string[]) {
    return matchKeysIn(this.db, customerIds, kinds);
  }

  async segmentPart(filter: SegmentFilter) {
    return segmentPartIn(this.db, filter);
  }

  async transitionsFeed(since: string, after: number, below: number, limit: number) {
    return transitionsFeedIn(this.db, { index: this.index, count: shardCount(this.env) }, since, after, below, limit);
  }

  async transitionSummary(since: string, below: number, recent: number) {
    return transitionSummaryIn(this.db, { index: this.index, count: shardCount(this.env) }, since, below, recent);
  }

  // --- reshard --- (worker/shards/reshard-shard.ts; called by worker/shards/reshard.ts)

  reshardTotals() {
    return reshardTotals(this.db);
  }

  /** The walk begins: this shard's rows are counted (prepareReshard compares them) and answered. */
  async beginReshardWalk() {
    const counts = await reshardTotals(this.db);
    await this.ctx.storage.put("reshardWalkCounts", counts);
    return counts;
  }

  reshardPage(part: ReshardPart, after: string, limit: number, counts: { from: number; to: number }) {
    return reshardPage(this.db, this.index, part, after, limit, counts);
  }

  /** Finishes the moves out of here that were interrupted; answers the moves still unfinished (out or in). */
  async reshardMovesPending(): Promise<number> {
    await resumeMovesOut(this.placement);
    return unfinishedMoves(this.db);
  }

  /**
   * Marks this shard prepared for `to` shards unless it wrote anything that places keys since the
   * walk began (`since`): then it answers those writes and stays as it was. From the mark on it takes
   * no writes under the count it serves now, and serves under `to` as well. Shrinking, a shard the
   * reshard removes must also hold no customer data (its drain moved it all to the shards that stay).
   * A shard that stays, which the walk does not visit, is prepared once those are: it drops its entries
   * placing keys in a removed shard, which place nothing now (dropEntriesIntoRemoved), and is marked.
   */
  async prepareReshard(to: number, since: string): Promise<Record<string, number>> {
    const shrinking = to < shardCount(this.env);
    let written: Record<string, number> = {};
    if (shrinking && this.index < to) await dropEntriesIntoRemoved(this.db, to);
    else {
      const countsAtStart = await this.ctx.storage.get<Record<ReshardPart, number>>("reshardWalkCounts");
      written = await placingWritesSince(this.db, since, countsAtStart);
      if (shrinking) written = { ...written, ...(await heldRows(this.db)) };
    }
    if (Object.values(written).some((n) => n > 0)) return written;
    const mark: ReshardMark = { count: to, since };
    await this.ctx.storage.put("reshardTo", mark);
    this.reshardMark = mark;
    return written;
  }

  /**
   * Before the switch, a shard that takes the walk's entries (growing, one the reshard adds; shrinking,
   * one that stays): forgets the entries an earlier walk wrote here.
   */
  async dropWalkEntries(from: number, to: number = shardCount(this.env)): Promise<void> {
    const takes = from > to ? this.index < to && shardCount(this.env) === from : this.index >= shardCount(this.env);
    if (!takes)
      throw new Error(`dropWalkEntries in shard ${this.index}, which takes no entries of a walk from ${from} to ${to}`);
    await dropWalkEntries(this.db, from, to);
  }

  /** A shrinking walk's page of entries for keys homed here once the deployment runs `to` shards. */
  async placeWalkEntries(entries: Placement[], from: number, to: number): Promise<void> {
    if (!(from > to && this.index < to && shardCount(this.env) === from))
      throw new Error(
        `placeWalkEntries in shard ${this.index} for a reshard from ${from} to ${to} under SHARD_COUNT ${shardCount(this.env)}`,
      );
    await placeWalkEntries(this.db, entries, new Date().toISOString());
  }

  /**
   * A page of a shrinking reshard's drain in a shard it removes: its customers' regions (`customers`),
   * then the identify calls no customer's region took (`identify`), move to the shards that stay.
   */
  async drainPage(part: "customers" | "identify", after: string, limit: number, to: number): Promise<RebalancePage> {
    const count = shardCount(this.env);
    if (!(this.index >= to && count > to))
      throw new Error(`drainPage in shard ${this.index}, which a reshard from ${count} to ${to} keeps`);
    this.writable(count);
    return (part === "customers" ? drainPage : drainCallsPage)(this.placement, after, limit, to);
  }

  /** A walk started over: this shard takes writes under its count again until it is marked anew. */
  async unprepareReshard(): Promise<void> {
    if (this.reshardMark?.count === shardCount(this.env)) return;
    await this.ctx.storage.delete("reshardTo");
    this.reshardMark = undefined;
  }

  /** Customer rows held here (a shard a shrink removes holds none once drained). */
  heldRows(): Promise<Record<string, number>> {
    return heldRows(this.db);
  }

  /**
   * After the switch (this shard recorded the new count when it started under it): deletes the next
   * page of entries kept here for keys homed in a new shard now.
   */
  async dropRehomedEntries(after: string, limit: number, counts: { from: number; to: number }) {
    this.servesCount(counts.to);
    return dropRehomedEntries(this.db, after, limit, counts);
  }

  /** The reshard's last step here: the mark goes. */
  async finishReshard(to: number): Promise<void> {
    this.servesCount(to);
    await this.ctx.storage.delete(["reshardTo", "reshardWalkCounts"]);
    this.reshardMark = undefined;
  }

  /** A shrink's last step in a shard that stays: the walk's entries become its own, and the mark goes. */
  async keepWalkEntries(to: number): Promise<void> {
    this.servesCount(to);
    await keepWalkEntries(this.db);
    await this.finishReshard(to);
  }

  /**
   * A shrink's last step in a shard it removed (the deployment runs `to` shards, fewer than this
   * index): refused while it holds customer data, or an erasure's scrub it could not finish now; else everything it stored goes (directory entries,
   * move records naming keys, its own suppression list) with its alarm, and the object is empty.
   * Answers the directory entries it dropped (none when run again).
   */
  async retire(to: number): Promise<number> {
    this.servesCount(to);
    if (this.index < to) throw new Error(`retire in shard ${this.index}, which ${to} shards keep`);
    const held = await heldRows(this.db);
    if (Object.values(held).some((n) => n > 0))
      throw new Error(`shard ${this.index} still holds customer data (${JSON.stringify(held)}): not retired`);
    // An erasure this shard ran keeps its scrub of the others here until done: they run now, due or not,
    // pass after pass while each leaves fewer.
    const dayAhead = new Date(Date.now() + 86_400_000);
    const pending = async () => (await scrubsState(this.db)).pending;
    for (let left = await pending(), before = left + 1; left > 0 && left < before; ) {
      await runDueScrubs(this.db, this.env, new Date(), dayAhead);
      [before, left] = [left, await pending()];
    }
    const unfinished = await pending();
    if (unfinished > 0)
      throw new Error(
        `shard ${this.index} has ${unfinished} erasure scrub(s) of the other shards that fail (the shard's logs say why): not retired`,
      );
    const entries = (await reshardTotals(this.db)).directory;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    // An empty shard of the current schema, as a new one starts: a rerun of this step (its record in D1
    // failed) finds nothing held, and a later grow that adds this index back starts from nothing.
    await migrate(durableDrizzle(this.ctx.storage), shardMigrations);
    this.reshardMark = undefined;
    return entries;
  }

  private servesCount(count: number): void {
    if (shardCount(this.env) !== count)
      throw new Error(`a reshard step for ${count} shards under SHARD_COUNT ${shardCount(this.env)}`);
  }

  // --- rebalance --- (worker/shards/rebalance-shard.ts; called by worker/shards/rebalance.ts)

  /** Customers held here (merged-away ones included): a rebalance pass's total. */
  customerCount(): Promise<number> {
    return customerCount(this.db);
  }

  // --- status --- (GET /v1/admin/shards: worker/core/shards/status.ts)

  /**
   * This shard's customers (not those merged into another), stored bytes, unfinished moves, reshard
   * mark and the erasures' scrubs of the other shards it keeps.
   */
  async status(): Promise<ShardPart> {
    return {
      shard: this.index,
      customers: await liveCustomerCount(this.db),
      bytes: this.ctx.storage.sql.databaseSize,
      unfinishedMoves: await unfinishedMoves(this.db),
      preparedFor: this.reshardMark?.count ?? null,
      serves: shardCount(this.env),
      erasureScrubs: await scrubsState(this.db),
    };
  }

  /** A page of a rebalance pass placing regions by `count` shards: those held away from their home (balancedHome) move there. */
  async rebalancePage(after: string, limit: number, count: number): Promise<RebalancePage> {
    this.writable(count);
    return rebalancePage(this.placement, after, limit);
  }

  // --- backfills ---

  /** This shard's backfills of derived tables (GET /v1/admin/backfills). */
  async backfills(): Promise<BackfillState[]> {
    return backfillStates(this.db);
  }

  /** Starts a backfill's pass again in this shard (POST /v1/admin/backfills/:name/rerun). */
  async rerunBackfill(name: BackfillName): Promise<void> {
    await rerunBackfill(this.db, name);
  }

  // --- shopper ---

  /**
   * The shelf GET /v1/recommendations answers a signed-in account, called at the account key's home:
   * read and ranked here, or, when the directory places the key's region in another shard, in that one.
   */
  async shelf(
    accountKey: string,
    now: string,
    request: ShelfRequest,
    holdoutShare: number | undefined,
  ): Promise<ComputedShelf> {
    const [placed] = placedElsewhere(await this.locate([accountKey]), this.index).keys();
    if (placed !== undefined) return shardStub(this.env, placed).placedShelf(accountKey, now, request, holdoutShare);
    return this.placedShelf(accountKey, now, request, holdoutShare);
  }

  /** The same shelf where the region is placed (forwarded by the key's home): this shard's data only. */
  async placedShelf(
    accountKey: string,
    now: string,
    request: ShelfRequest,
    holdoutShare: number | undefined,
  ): Promise<ComputedShelf> {
    return shelfHere(this.db, mainDatabase(this.env.DB), accountKey, now, request, holdoutShare);
  }

  /** The owners of identity keys homed here (POST /v1/events), each with the shard holding it. */
  async owners(keys: string[]): Promise<Map<string, PlacedOwner>> {
    return ownersFrom(this.db, this.index, await this.locate(keys), (shard, placed) =>
      shardStub(this.env, shard).placedOwners(placed),
    );
  }

  /** The owners of keys whose regions are here (forwarded by their home): local data only. */
  async placedOwners(keys: string[]): Promise<Map<string, PlacedOwner>> {
    return ownersHere(this.db, this.index, keys);
  }

  /**
   * Adds new views and clicks to the browse rollups of customers held here; answers the days of
   * customers a move took elsewhere, with where they went (addBrowseHere).
   */
  async addBrowse(days: BrowseDay[]): Promise<BrowseForward[]> {
    return addBrowseHere(this.placement, days);
  }
}
