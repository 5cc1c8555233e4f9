// Ingestion of orders and identify calls: hash identifiers, skip what is already stored, resolve the
// touched region of the identity graph, then write orders, identities, merges and rebuilt summaries
// in ONE D1 batch (all or nothing). A batch it refuses comes back as an `IngestRefusal` outcome for
// the route to answer; nothing here speaks HTTP.
import type { SQL } from "drizzle-orm";
import type { CountryCode } from "libphonenumber-js/min";
import { runBatch } from "../../db/batch.ts";
import { orderSource, planResolution, type ResolutionPlan } from "../core/identity/plan.ts";
import type { Observation } from "../core/identity/resolve.ts";
import type { Db } from "../env.ts";
import {
  type HashedIdentity,
  hashIdentifiers,
  type IgnoredIdentifier,
  identifySource,
} from "../identity/identity.keys.ts";
import {
  identityStatements,
  isStaleRegion,
  loadRegion,
  observationExists,
  regionGuard,
} from "../identity/identity.repo.ts";
import {
  existingOrderIds,
  insertOrderStatements,
  reassignOrderStatements,
  rebuildSummaryStatements,
} from "./orders.repo.ts";
import type { IdentifiersInput, OrderInput } from "./orders.schemas.ts";

export interface IngestResult {
  accepted: number;
  duplicates: number;
  results: { id: string; customerId: string | null; status: "created" | "duplicate" }[];
  ignoredIdentifiers: { index: number; kind: string; reason: string }[];
  merges: number;
}

/**
 * Why a batch was not written: its identifiers reach more than `limit` stored orders and calls (one
 * is probably a placeholder), or other requests kept changing the same customers until the retries
 * ran out.
 */
export type IngestRefusal = { kind: "region_too_large"; limit: number } | { kind: "busy" };

/**
 * The observation of one order or call: verified links resolve; unverified ones are only recorded
 * (docs/identity.md), so they cannot join, split or mark anything shared.
 */
function observationOf(source: string, identities: HashedIdentity[]): Observation {
  const refs = (trust: HashedIdentity["trust"]) =>
    identities.filter((identity) => identity.trust === trust).map(({ kind, key }) => ({ kind, key }));
  return { source, identities: refs("verified"), unverified: refs("unverified") };
}

const newCustomerId = () => `c_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;

/** Attempts before a request that keeps meeting concurrent writers gives up with 409. */
const maxAttempts = 5;

/**
 * Plans from a fresh read of the touched region and writes everything in one batch guarded by
 * regionGuard: if another request changed the region in between, the batch aborts whole and the
 * plan is made again from the new state, so concurrent writers never split or double-count anyone.
 */
async function resolveAndWrite(
  db: Db,
  fresh: Observation[],
  masks: Map<string, string>,
  now: Date,
  freshOrderIds: string[],
  extra: (customerOf: Map<string, string>) => SQL[],
): Promise<{ kind: "written"; plan: ResolutionPlan; customerOf: Map<string, string> } | IngestRefusal> {
  const startKeys = fresh.flatMap((o) => o.identities.map((ref) => ref.key));
  const nowIso = now.toISOString();
  for (let attempt = 1; ; attempt++) {
    const load = await loadRegion(db, startKeys, fresh);
    if (load.kind === "too_large") return { kind: "region_too_large", limit: load.limit };
    const { region } = load;
    const plan = planResolution(region, newCustomerId);
    const customerOf = new Map(plan.orderChanges.map((change) => [change.source, change.customerId]));
    const guard = regionGuard(region, freshOrderIds);
    const statements = [
      guard.check,
      ...identityStatements(plan, fresh, masks, nowIso),
      ...extra(customerOf),
      ...reassignOrderStatements(
        plan.orderChanges
          .filter((change) => region.orderCustomers.has(change.source))
          .map((change) => ({ orderId: change.source.slice("order:".length), customerId: change.customerId })),
      ),
      ...rebuildSummaryStatements(plan.affectedCustomers, nowIso),
      guard.clear,
    ];
    try {
      await runBatch(db, statements);
      return { kind: "written", plan, customerOf };
    } catch (error) {
      if (!isStaleRegion(error)) throw error;
      if (attempt >= maxAttempts) return { kind: "busy" };
      await new Promise((resolve) => setTimeout(resolve, 10 * attempt + Math.random() * 20));
    }
  }
}

export async function ingestOrders(
  db: Db,
  secret: string,
  orders: OrderInput[],
  now: Date,
  phoneRegion?: CountryCode,
): Promise<{ kind: "ingested"; result: IngestResult } | IngestRefusal> {
  const ignoredIdentifiers: IngestResult["ignoredIdentifiers"] = [];
  const masks = new Map<string, string>();
  const seen = new Set<string>();
  const stored = await existingOrderIds(
    db,
    orders.map((order) => order.id),
  );
  const fresh: { index: number; order: OrderInput; observation: Observation }[] = [];
  for (const [index, order] of orders.entries()) {
    if (stored.has(order.id) || seen.has(order.id)) continue;
    seen.add(order.id);
    const { identities, ignored } = await hashIdentifiers(order.identifiers, secret, phoneRegion);
    for (const item of ignored) ignoredIdentifiers.push({ index, ...item });
    for (const identity of identities) masks.set(identity.key, identity.masked);
    fresh.push({ index, order, observation: observationOf(orderSource(order.id), identities) });
  }

  let customerOf = new Map<string, string>();
  let merges = 0;
  if (fresh.length > 0) {
    const written = await resolveAndWrite(
      db,
      fresh.map((f) => f.observation),
      masks,
      now,
      fresh.map((f) => f.order.id),
      (owners) =>
        insertOrderStatements(
          fresh.map(({ order }) => ({ order, customerId: owners.get(orderSource(order.id)) as string })),
          now.toISOString(),
        ),
    );
    if (written.kind !== "written") return written;
    customerOf = written.customerOf;
    merges = written.plan.merges.length;
  }
  const created = new Set(fresh.map((f) => f.index));
  const results = orders.map((order, index) =>
    created.has(index)
      ? { id: order.id, customerId: customerOf.get(orderSource(order.id)) ?? null, status: "created" as const }
      : { id: order.id, customerId: null, status: "duplicate" as const },
  );
  return {
    kind: "ingested",
    result: { accepted: fresh.length, duplicates: orders.length - fresh.length, results, ignoredIdentifiers, merges },
  };
}

export interface IdentifyResult {
  linked: number;
  /** Of the linked identifiers, those recorded without trust: they join nobody. */
  unverified: number;
  merges: number;
  ignoredIdentifiers: IgnoredIdentifier[];
  keys: string[];
}

export async function identify(
  db: Db,
  secret: string,
  identifiers: IdentifiersInput,
  now: Date,
  phoneRegion?: CountryCode,
): Promise<{ kind: "identified"; result: IdentifyResult } | IngestRefusal> {
  const { identities, ignored } = await hashIdentifiers(identifiers, secret, phoneRegion);
  const keys = identities.map((identity) => identity.key);
  const unverified = identities.filter((identity) => identity.trust === "unverified").length;
  const identified = (linked: number, merges: number) =>
    ({ kind: "identified", result: { linked, unverified, merges, ignoredIdentifiers: ignored, keys } }) as const;
  if (keys.length === 0) return identified(0, 0);
  const source = await identifySource(identities);
  if (await observationExists(db, source)) return identified(keys.length, 0);
  const masks = new Map(identities.map((identity) => [identity.key, identity.masked]));
  const fresh = [observationOf(source, identities)];
  const written = await resolveAndWrite(db, fresh, masks, now, [], () => []);
  if (written.kind !== "written") return written;
  return identified(keys.length, written.plan.merges.length);
}
