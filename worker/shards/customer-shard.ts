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
import type { Db, Env } from "../env.ts";
import type { BrowseDay } from "../events/events.repo.ts";
import { enabledMatchKeys, matchKinds } from "../identity/match-keys.ts";
import { phoneRegion } from "../identity/phone.ts";
import { ingestOrders } from "../orders/ingest.ts";
import type { OrderInput } from "../orders/orders.schemas.ts";
import { attributionSettings } from "../recommendations/attribution.ts";
import type { ShopperData } from "../recommendations/recommendations.repo.ts";
import { shardStub } from "./shards.ts";
import {
  addBrowseHere,
  ownersFrom,
  ownersHere,
  type PlacedOwner,
  placedElsewhere,
  shopperHere,
} from "./shopper-shard.ts";

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

  // --- shopper ---

  /**
   * What GET /v1/recommendations reads for a signed-in account, called at the account key's home: one
   * local read, or, when the directory places the key's region in another shard, one call to it.
   */
  async shopper(accountKey: string, now: string, usualProducts = false): Promise<ShopperData> {
    const [placed] = placedElsewhere(await this.locate([accountKey]), this.index).keys();
    if (placed !== undefined) return shardStub(this.env, placed).placedShopper(accountKey, now, usualProducts);
    return shopperHere(this.db, accountKey, now, usualProducts);
  }

  /** The same read where the region is placed (forwarded by the key's home): local data only. */
  async placedShopper(accountKey: string, now: string, usualProducts = false): Promise<ShopperData> {
    return shopperHere(this.db, accountKey, now, usualProducts);
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

  /** Adds new views and clicks to the browse rollups of customers held here. */
  async addBrowse(days: BrowseDay[]): Promise<void> {
    await addBrowseHere(this.db, days);
  }
}
