// Reads of shared, read-mostly state (the catalog, the fitted models) through D1's Sessions API, so a
// deployment with read replication enabled serves them from the replica nearest the Worker instead
// of the primary (docs/scaling.md, shared state). "first-unconstrained": the first query may go to
// any replica, however far behind; that is fine only for state the caller already accepts as up to a
// minute old (both are cached per isolate for a minute). Without replication enabled every query
// still goes to the primary, as before.
import { drizzle } from "drizzle-orm/d1";
import type { Db } from "../worker/env.ts";
import * as schema from "./schema.ts";

/** A drizzle over a new replica-readable session of `db`'s D1 binding; `db` itself where there is none. */
export function replicaReads(db: Db): Db {
  const client = db.$client as D1Database & { withSession?: D1Database["withSession"] };
  // A customer shard's database (db/durable-d1.ts) is in-process and has no replicas.
  if (typeof client.withSession !== "function") return db;
  return drizzle(client.withSession("first-unconstrained") as unknown as D1Database, { schema }) as Db;
}
