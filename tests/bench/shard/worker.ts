// The shard benchmark's worker: loads generated rows into D1 or into one customer shard, and answers
// the reads the benchmark compares. The shard is the product's CustomerShard, with two methods added
// for the benchmark (load rows, read one row); its shopper read is the product's own.
import { drizzle } from "drizzle-orm/d1";
import { durableD1 } from "../../../db/durable-d1.ts";
import * as schema from "../../../db/schema.ts";
import type { Db } from "../../../worker/env.ts";
import { loadShopper } from "../../../worker/recommendations/recommendations.repo.ts";
import { CustomerShard } from "../../../worker/shards/customer-shard.ts";

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

export class BenchShard extends CustomerShard {
  async load(statements: Statement[]) {
    const d1 = durableD1(this.ctx.storage);
    return (await d1.batch(prepared(d1, statements))).map((result) => ({ meta: result.meta, results: result.results }));
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
