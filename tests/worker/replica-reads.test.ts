// Shared state (catalog, fitted models) is read through D1's Sessions API, so read replicas can serve
// it; customer data never is (it must see the request's own writes).
import { env } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { beforeEach, describe, expect, it } from "vitest";
import { replicaReads } from "../../db/replica-reads.ts";
import * as schema from "../../db/schema.ts";
import type { Db } from "../../worker/env.ts";
import { currentModels, forgetModels } from "../../worker/models/models.repo.ts";
import { cachedCatalog, forgetCatalog } from "../../worker/recommendations/recommendations.repo.ts";

/** The real local D1 binding, recording which sessions are opened and which queries each runs. */
function recordingD1() {
  const sessions: { constraint: string; queries: string[] }[] = [];
  const direct: string[] = [];
  const binding = new Proxy(env.DB, {
    get(target, property) {
      if (property === "withSession")
        return (constraint: string) => {
          const record = { constraint, queries: [] as string[] };
          sessions.push(record);
          const session = target.withSession(constraint);
          return new Proxy(session, {
            get(inner, name) {
              if (name === "prepare")
                return (query: string) => {
                  record.queries.push(query);
                  return inner.prepare(query);
                };
              const value = Reflect.get(inner, name);
              return typeof value === "function" ? value.bind(inner) : value;
            },
          });
        };
      if (property === "prepare")
        return (query: string) => {
          direct.push(query);
          return target.prepare(query);
        };
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db: drizzle(binding, { schema }) as Db, sessions, direct };
}

const now = new Date("2026-11-30T12:00:00Z");

beforeEach(async () => {
  forgetCatalog();
  forgetModels();
  await env.DB.prepare(
    "INSERT OR IGNORE INTO categories (id, name, updated_at) VALUES ('rr-tea', 'Tea', '2026-11-30T00:00:00Z')",
  ).run();
});

describe("reads of shared state", () => {
  it("load the catalog through an unconstrained session, with the same rows as the binding", async () => {
    const { db, sessions, direct } = recordingD1();
    const catalog = await cachedCatalog(db, now);
    expect(sessions.map((s) => s.constraint)).toEqual(["first-unconstrained"]);
    expect(sessions[0]?.queries.some((q) => q.includes('"products"'))).toBe(true);
    expect(sessions[0]?.queries.some((q) => q.includes('"categories"'))).toBe(true);
    expect(direct).toEqual([]);
    expect(catalog.categoryNames["rr-tea"]).toBe("Tea");
    // Cached: a second request in the same minute opens no session and runs no query.
    await cachedCatalog(db, new Date(now.getTime() + 1_000));
    expect(sessions).toHaveLength(1);
  });

  it("load the fitted models through an unconstrained session", async () => {
    const { db, sessions, direct } = recordingD1();
    await currentModels(db, now);
    expect(sessions.map((s) => s.constraint)).toEqual(["first-unconstrained"]);
    expect(sessions[0]?.queries.some((q) => q.includes("model_params"))).toBe(true);
    expect(direct).toEqual([]);
  });

  it("fall back to the database itself where there is no Sessions API (a customer shard's storage)", async () => {
    const db = drizzle({ prepare: env.DB.prepare.bind(env.DB), batch: env.DB.batch.bind(env.DB) } as never, {
      schema,
    }) as Db;
    expect(replicaReads(db)).toBe(db);
    expect((await cachedCatalog(db, now)).categoryNames["rr-tea"]).toBe("Tea");
  });
});
