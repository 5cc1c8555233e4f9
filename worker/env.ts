// Bindings and per-request variables shared by every route.
import type { DrizzleD1Database } from "drizzle-orm/d1";
import type * as schema from "../db/schema.ts";

export interface Env {
  DB: D1Database;
  PATRON_API_KEY: string;
  PATRON_ADMIN_KEY: string;
  SHOPPER_TOKEN_SECRET: string;
  IDENTITY_HASH_SECRET: string;
  ALLOWED_ORIGINS?: string;
  /** Where stage transitions are POSTed after each nightly run (optional). */
  TRANSITIONS_WEBHOOK_URL?: string;
  /** Share of known shoppers held out from personalisation (0..1), stable per customer. */
  HOLDOUT_SHARE?: string;
  /** "on" serves the demo storefront's helpers (/demo/token, images, product pages); never in production. */
  PATRON_DEMO?: string;
  /** IANA time zone of the retailer (e.g. "Europe/Paris"): preferred weekday and hour are read on its clock. UTC when unset. */
  RETAILER_TIME_ZONE?: string;
  /** "off" switches every rate limit off (local benchmarks only); limits are on otherwise. */
  RATE_LIMITS?: string;
  /** Requests per shopper (verified token) and route family, per window (wrangler.toml [[ratelimits]]). */
  RATE_LIMIT_SHOPPER?: RateLimit;
  /** Requests per client address and route family, per window. */
  RATE_LIMIT_ADDRESS?: RateLimit;
  /** Failed API/admin key checks per client address, per window. */
  RATE_LIMIT_KEY_FAILURES?: RateLimit;
  NIGHTLY: Workflow<import("./jobs/nightly.workflow.ts").NightlyParams>;
}

export type Db = DrizzleD1Database<typeof schema> & { $client: D1Database };

export interface Variables {
  db: Db;
  requestId: string;
  /** The clock, read once per request. Everything below the routes takes it as an argument. */
  now: Date;
}

export type AppEnv = { Bindings: Env; Variables: Variables };
