// The worker `npm run bench -- shard --route` runs: the product's worker, unchanged for every request
// it serves, with two additions for the benchmark.
// - `/bench/*` loads generated rows into D1 or into a customer shard, fits the models in one shard (a
//   stand-in for the nightly job), reports a shard's size and whether it holds a customer (a load
//   retried after a restart), reports a backfill pending in a base kept from before its migration (and
//   does it, page by page as the nightly job would), and serves the cold floor (`/bench/floor`: one row
//   by primary key from a D1 table the benchmark fills with a row per customer).
// - GET /v1/customers/:id, the bare single-row read the benchmark compares with, always runs on the
//   one D1 database (SHARD_COUNT=0), so the floor stays a D1 read whatever that route does with shards.
// Started with the main wrangler.toml and this file as its entry point. Not deployed.
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { runBatch } from "../../../db/batch.ts";
import { durableD1 } from "../../../db/durable-d1.ts";
import * as schema from "../../../db/schema.ts";
import type { Db, Env } from "../../../worker/env.ts";
import product, { CustomerShard as ProductShard } from "../../../worker/index.ts";
import { fitCustomerModelsStep, fitPopulationStep } from "../../../worker/jobs/nightly.repo.ts";
import { rebuildProductRangeStatements } from "../../../worker/orders/orders.repo.ts";
import { shardName } from "../../../worker/shards/shards.ts";

export { NightlyModelWorkflow } from "../../../worker/index.ts";

interface Statement {
  sql: string;
  params: unknown[];
}

const prepared = (d1: D1Database, statements: Statement[]) =>
  statements.map((statement) => d1.prepare(statement.sql).bind(...statement.params));

/** The product's shard, with the benchmark's loading, model fit and size. */
export class CustomerShard extends ProductShard {
  async load(statements: Statement[]) {
    const d1 = durableD1(this.ctx.storage);
    return (await d1.batch(prepared(d1, statements))).map((result) => ({ meta: result.meta, results: [] }));
  }

  /** The nightly job's two fit steps on this shard's customers; the model rows they wrote. */
  async fitModels(now: string) {
    const db = drizzle(durableD1(this.ctx.storage), { schema }) as Db;
    await fitCustomerModelsStep(db, new Date(now));
    await fitPopulationStep(db, new Date(now));
    return this.ctx.storage.sql
      .exec("SELECT model, params, fitted_at, sample_size, log_likelihood FROM model_params ORDER BY id")
      .toArray();
  }

  /** Whether a backfill is pending here (a base kept from before its migration). */
  backfillPending() {
    return this.ctx.storage.sql.exec("SELECT name FROM backfills WHERE done_at IS NULL").toArray().length > 0;
  }

  /**
   * One page of the customer_products backfill as the nightly job's scoring page does it (the rebuild of
   * the page's customers' rows, the cursor moved on, done after the last): the next cursor, or null.
   */
  async fillProductsPage(cursor: string, pageSize: number) {
    const ids = this.ctx.storage.sql
      .exec<{ customer_id: string }>(
        "SELECT customer_id FROM customer_summaries WHERE customer_id > ? ORDER BY customer_id LIMIT ?",
        cursor,
        pageSize,
      )
      .toArray()
      .map((row) => row.customer_id);
    const db = drizzle(durableD1(this.ctx.storage), { schema }) as Db;
    const last = ids[ids.length - 1];
    const done = ids.length < pageSize;
    await runBatch(db, [
      ...(last === undefined ? [] : rebuildProductRangeStatements(ids[0]!, last)),
      sql`UPDATE backfills SET cursor = ${last ?? cursor}, done_at = ${done ? new Date().toISOString() : null}
          WHERE name = 'customer_products'`,
    ]);
    return done ? null : (last ?? null);
  }

  databaseBytes() {
    return this.ctx.storage.sql.databaseSize;
  }

  hasCustomer(id: string) {
    return this.ctx.storage.sql.exec("SELECT 1 FROM customers WHERE id = ?", id).toArray().length > 0;
  }
}

type BenchEnv = Env & { CUSTOMER_SHARDS: DurableObjectNamespace<CustomerShard> };

const shard = (env: BenchEnv, index: number) =>
  env.CUSTOMER_SHARDS.get(env.CUSTOMER_SHARDS.idFromName(shardName(index)));

async function bench(request: Request, env: BenchEnv, url: URL): Promise<Response> {
  const index = Number(url.searchParams.get("shard") ?? 0);
  switch (url.pathname) {
    case "/bench/load": {
      const statements = (await request.json()) as Statement[];
      if (url.searchParams.get("into") === "shard") return Response.json(await shard(env, index).load(statements));
      const results = await env.DB.batch(prepared(env.DB, statements));
      return Response.json(results.map((result) => ({ meta: result.meta, results: [] })));
    }
    case "/bench/fit": {
      const rows = await shard(env, index).fitModels(new Date().toISOString());
      await env.DB.batch(
        rows.map((row) =>
          env.DB.prepare(
            "INSERT INTO model_params (model, params, fitted_at, sample_size, log_likelihood, in_force_at) VALUES (?, ?, ?, ?, ?, ?)",
          ).bind(row.model, row.params, row.fitted_at, row.sample_size, row.log_likelihood, row.fitted_at),
        ),
      );
      return Response.json({ models: rows.map((row) => row.model) });
    }
    case "/bench/has":
      return Response.json({ found: await shard(env, index).hasCustomer(url.searchParams.get("customer") ?? "") });
    case "/bench/backfill":
      return Response.json({ pending: await shard(env, index).backfillPending() });
    case "/bench/fill-products":
      return Response.json({
        next: await shard(env, index).fillProductsPage(url.searchParams.get("cursor") ?? "", 5_000),
      });
    case "/bench/floor": {
      // The cold floor of a first visit: one row by primary key from D1's table with a row per customer.
      const row = await env.DB.prepare("SELECT id, body FROM bench_floor WHERE id = ?")
        .bind(url.searchParams.get("id") ?? "")
        .first();
      return row ? Response.json(row) : new Response("not found", { status: 404 });
    }
    case "/bench/floor-rows": {
      const table = await env.DB.prepare("SELECT 1 FROM sqlite_master WHERE name = 'bench_floor'").first();
      const rows = table ? await env.DB.prepare("SELECT count(*) AS n FROM bench_floor").first<number>("n") : 0;
      return Response.json({ rows });
    }
    case "/bench/size":
      return Response.json({ bytes: await shard(env, index).databaseBytes() });
    default:
      return new Response("not found", { status: 404 });
  }
}

export default {
  ...product,
  fetch(request: Request, env: BenchEnv, ctx: ExecutionContext) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/bench/")) return bench(request, env, url);
    // Both sides get a copy of env, so the override costs the floor nothing the shelf does not pay too.
    const store = url.pathname.startsWith("/v1/customers/") ? { SHARD_COUNT: "0" } : {};
    return product.fetch(request, { ...env, ...store }, ctx);
  },
} satisfies ExportedHandler<BenchEnv>;
