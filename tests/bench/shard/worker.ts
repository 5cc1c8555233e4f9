// The shard benchmark's worker: loads generated rows into D1 or into one customer shard, and answers
// the reads the benchmark compares. The shard is the product's CustomerShard, with methods added for
// the benchmark (load rows, read one row, read one shopper with the product's own loadShopper).
import { drizzle } from "drizzle-orm/d1";
import { durableD1 } from "../../../db/durable-d1.ts";
import * as schema from "../../../db/schema.ts";
import type { Db } from "../../../worker/env.ts";
import { ingestOrders } from "../../../worker/orders/ingest.ts";
import type { OrderInput } from "../../../worker/orders/orders.schemas.ts";
import { loadShopper } from "../../../worker/recommendations/recommendations.repo.ts";
import { CustomerShard } from "../../../worker/shards/customer-shard.ts";
import { meteredD1 } from "../metered-d1.ts";

interface Statement {
  sql: string;
  params: unknown[];
}

interface BenchEnv {
  DB: D1Database;
  SHARDS: DurableObjectNamespace<BenchShard>;
}

const prepared = (d1: D1Database, statements: Statement[]) =>
  statements.map((statement) => d1.prepare(statement.sql).bind(...statement.params));

const secret = "test-identity-secret";
const attribution = { secrets: ["test-shopper-secret"], eventWindowDays: 7, orderWindowDays: 30 };

/**
 * `ingestOrders`, the code POST /v1/orders runs, on `d1` (D1 itself, or D1's interface over a shard's
 * storage), counting the rows its batches write (D1's meta.rows_written, index entries included).
 */
async function meteredIngest(d1: D1Database, orders: OrderInput[]) {
  const { binding, meter } = meteredD1(d1);
  const db = drizzle(binding, { schema }) as Db;
  const outcome = await ingestOrders(db, secret, orders, new Date(), attribution);
  if (outcome.kind !== "ingested") throw new Error(`ingestion refused: ${outcome.kind}`);
  return { rowsWritten: meter.rowsWritten, accepted: outcome.result.accepted, duplicates: outcome.result.duplicates };
}

export class BenchShard extends CustomerShard {
  /** The shard's own database, as the product's repositories see it. */
  private readonly local = drizzle(durableD1(this.ctx.storage), { schema }) as Db;

  /** The shopper read the shelf makes in a shard (loadShopper, on this shard's data), without the ranking. */
  async shopper(key: string, now: string) {
    return loadShopper(this.local, key, new Date(now));
  }

  async load(statements: Statement[]) {
    const d1 = durableD1(this.ctx.storage);
    return (await d1.batch(prepared(d1, statements))).map((result) => ({ meta: result.meta, results: result.results }));
  }

  /** Orders ingested in the shard, with the rows written (the bench's ingestion figures). */
  async ingestMetered(orders: OrderInput[]) {
    return meteredIngest(durableD1(this.ctx.storage), orders);
  }

  /** The bare read: one row by primary key, as the D1 baseline. */
  async customer(id: string) {
    return this.ctx.storage.sql.exec("SELECT id FROM customers WHERE id = ?", id).toArray()[0] ?? null;
  }
}

export default {
  async fetch(request: Request, env: BenchEnv): Promise<Response> {
    const url = new URL(request.url);
    const now = new Date();
    const shard = () => env.SHARDS.get(env.SHARDS.idFromName(url.searchParams.get("shard") ?? "shard-0"));
    switch (url.pathname) {
      case "/health":
        return new Response("ok");
      case "/load": {
        const statements = (await request.json()) as Statement[];
        if (url.searchParams.get("into") === "shard") return Response.json(await shard().load(statements));
        const results = await env.DB.batch(prepared(env.DB, statements));
        return Response.json(results.map((result) => ({ meta: result.meta, results: result.results })));
      }
      case "/ingest": {
        const { orders } = (await request.json()) as { orders: OrderInput[] };
        if (url.searchParams.get("into") === "shard") return Response.json(await shard().ingestMetered(orders));
        return Response.json(await meteredIngest(env.DB, orders));
      }
      case "/d1/bare": {
        const row = await env.DB.prepare("SELECT id FROM customers WHERE id = ?")
          .bind(url.searchParams.get("id"))
          .first();
        return Response.json({ row });
      }
      case "/d1/shopper":
        return Response.json(
          await loadShopper(drizzle(env.DB, { schema }) as Db, url.searchParams.get("key") ?? "", now),
        );
      case "/shard/bare":
        return Response.json({ row: await shard().customer(url.searchParams.get("id") ?? "") });
      case "/shard/shopper":
        return Response.json(await shard().shopper(url.searchParams.get("key") ?? "", now.toISOString()));
      default:
        return new Response("not found", { status: 404 });
    }
  },
};
