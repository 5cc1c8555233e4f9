// One drizzle instance per D1 binding, made on its first use: building one walks the whole schema for
// its relational queries, CPU a request would otherwise pay each time. The Worker's requests and the
// customer shards' shelf reads (shared state in D1) both take theirs from here.
import { drizzle } from "drizzle-orm/d1";
import * as eventsSchema from "../db/events-schema.ts";
import * as schema from "../db/schema.ts";
import type { Db, EventsDb } from "./env.ts";

const databases = new WeakMap<D1Database, unknown>();

function databaseOf<Schema extends Record<string, unknown>>(d1: D1Database, ofSchema: Schema) {
  const made = () => drizzle(d1, { schema: ofSchema });
  // A deployment without the binding still answers (its queries fail, as they always did).
  if (typeof d1 !== "object" || d1 === null) return made();
  let db = databases.get(d1) as ReturnType<typeof made> | undefined;
  if (!db) {
    db = made();
    databases.set(d1, db);
  }
  return db;
}

/** The main database (DB): shared state, and customer data when there are no shards. */
export const mainDatabase = (d1: D1Database) => databaseOf(d1, schema) as Db;

/** The events database (EVENTS_DB). */
export const eventsDatabase = (d1: D1Database) => databaseOf(d1, eventsSchema) as EventsDb;
