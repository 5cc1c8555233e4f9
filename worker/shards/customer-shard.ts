// A customer shard: a SQLite-backed Durable Object holding the data of the customers whose ids hash to
// it (docs/scaling.md). It runs the same repositories as the single D1 database, through D1's
// statement interface over its own storage (db/durable-d1.ts), on the same schema (the main
// database's migrations, applied when the object starts). Its methods are called over Durable Object
// RPC; each runs inside the object, so its reads are in-process and its batches are transactions.
import { DurableObject } from "cloudflare:workers";
import { inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { drizzle as durableDrizzle } from "drizzle-orm/durable-sqlite";
import { migrate } from "drizzle-orm/durable-sqlite/migrator";
import { durableD1 } from "../../db/durable-d1.ts";
import * as schema from "../../db/schema.ts";
import { shardMigrations } from "../../db/shard-migrations.ts";
import type { ListFilter } from "../admin/customer-lists.repo.ts";
import type { AudienceFilters } from "../audiences/audiences.schemas.ts";
import type { Db, Env } from "../env.ts";
import { enabledMatchKeys, type MatchKeyName, matchKinds } from "../identity/match-keys.ts";
import { phoneRegion } from "../identity/phone.ts";
import { ingestOrders } from "../orders/ingest.ts";
import type { OrderInput } from "../orders/orders.schemas.ts";
import { attributionSettings } from "../recommendations/attribution.ts";
import { loadShopper, type ShopperData } from "../recommendations/recommendations.repo.ts";
import {
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
  scoreShardPage,
} from "./nightly-shard.ts";

export class CustomerShard extends DurableObject<Env> {
  private readonly db: Db;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.db = drizzle(durableD1(ctx.storage), { schema }) as Db;
    // Before any call: a new or older shard is brought to the current schema, in one transaction.
    ctx.blockConcurrencyWhile(async () => {
      await migrate(durableDrizzle(ctx.storage), shardMigrations);
    });
  }

  /** This shard's index, from its name (`shard-<index>`, worker/shards/shards.ts). */
  get index(): number {
    const name = this.ctx.id.name ?? "";
    const index = Number(name.slice("shard-".length));
    if (!name.startsWith("shard-") || !Number.isInteger(index)) throw new Error(`not a customer shard: ${name}`);
    return index;
  }

  /**
   * The directory entries of `keys` held here (this shard must be their home): the shard holding each
   * key's data, or null when no entry says (an unknown identity key; a customer or order at its home).
   */
  async locate(keys: string[]): Promise<Record<string, number | null>> {
    const placed = new Map<string, number>();
    for (let i = 0; i < keys.length; i += 500) {
      const rows = await this.db
        .select({ key: schema.shardDirectory.key, shard: schema.shardDirectory.shard })
        .from(schema.shardDirectory)
        .where(inArray(schema.shardDirectory.key, keys.slice(i, i + 500)));
      for (const row of rows) placed.set(row.key, row.shard);
    }
    return Object.fromEntries(keys.map((key) => [key, placed.get(key) ?? null]));
  }

  /** POST /v1/orders for orders already validated by the route: the same ingestion, in this shard. */
  async ingest(orders: OrderInput[], now: string) {
    return ingestOrders(
      this.db,
      this.env.IDENTITY_HASH_SECRET,
      orders,
      new Date(now),
      attributionSettings(this.env),
      phoneRegion(this.env.PHONE_DEFAULT_REGION),
      matchKinds(enabledMatchKeys(this.env.EXPORT_MATCH_KEYS)),
    );
  }

  /** What GET /v1/recommendations reads for a signed-in account (one local read). */
  async shopper(accountKey: string, now: string, usualProducts = false): Promise<ShopperData> {
    return loadShopper(this.db, accountKey, new Date(now), { usualProducts });
  }

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
    return scoreShardPage(this.db, request);
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
}
