// Ingestion of orders and identify calls: hash identifiers, skip what is already stored, resolve the
// touched region of the identity graph, then write orders, identities, merges and the customers'
// totals (new orders added, merged or moved customers rebuilt) in ONE D1 batch (all or nothing). A
// batch it refuses comes back as an `IngestRefusal` outcome for the route to answer; nothing here
// speaks HTTP.
import type { SQL } from "drizzle-orm";
import type { CountryCode } from "libphonenumber-js/min";
import { runBatch } from "../../db/batch.ts";
import { orderSource, planResolution, type ResolutionPlan } from "../core/identity/plan.ts";
import type { Observation } from "../core/identity/resolve.ts";
import { changedFields, type FingerprintField, orderFingerprint } from "../core/orders/fingerprint.ts";
import { addOrders, storedDaysNeeded, type TotalsOrder } from "../core/profile/customer-totals.ts";
import type { IdentifierKind } from "../core/vocabulary.ts";
import type { Db } from "../env.ts";
import {
  type HashedIdentity,
  hashIdentifiers,
  type IgnoredIdentifier,
  identifySource,
  suppressionKeysOf,
} from "../identity/identity.keys.ts";
import {
  identityStatements,
  isStaleRegion,
  loadRegion,
  observationExists,
  regionGuard,
} from "../identity/identity.repo.ts";
import { matchKeyStatement } from "../identity/match-keys.ts";
import type { AttributionSettings, IgnoredReason } from "../recommendations/attribution.ts";
import { orderSuppressionKey, suppressedKeys, suppressionGuard } from "../suppressions/suppressions.repo.ts";
import { ignoredAttributions } from "./order-attribution.ts";
import {
  addProductsStatements,
  insertOrderStatements,
  loadDays,
  loadTotals,
  reassignOrderStatements,
  rebuildSummaryStatements,
  storedFingerprints,
  type TotalsWrite,
  totalsGuard,
  totalsOrderOf,
  writeTotalsStatements,
} from "./orders.repo.ts";
import type { IdentifiersInput, OrderInput } from "./orders.schemas.ts";

/** The indexes of the orders whose id or any identifier is on the suppression list. */
async function suppressedOrders(
  db: Db,
  orders: readonly { index: number; suppressionKeys: readonly string[] }[],
): Promise<Set<number>> {
  const suppressed = await suppressedKeys(
    db,
    orders.flatMap((order) => order.suppressionKeys),
  );
  return new Set(orders.filter((o) => o.suppressionKeys.some((key) => suppressed.has(key))).map((o) => o.index));
}

export interface IngestResult {
  accepted: number;
  duplicates: number;
  /** Of the duplicates, those stored earlier with other content: nothing of theirs was written either. */
  changed: number;
  /** Orders not stored because an erasure suppressed their id or one of their identifiers. */
  suppressed: number;
  /** Stored orders whose recommendationId did not count (see order-attribution.ts); stored without it. */
  ignored: number;
  results: {
    id: string;
    customerId: string | null;
    status: "created" | "duplicate" | "suppressed";
    /** For a created order that carried a recommendationId: whether it is attributed. */
    attribution?: "counted" | "ignored";
    /** For an ignored attribution: why (attribution.ts, ignoredReasons). */
    attributionIgnored?: IgnoredReason;
    /**
     * For a duplicate: whether the stored order was stored with other content than this (false for a
     * repeat within the batch, identical to its first copy); null when unknown (stored before orders
     * kept a fingerprint).
     */
    changed?: boolean | null;
    /** For a changed duplicate: the fields whose content differs from the stored order's. */
    changedFields?: FingerprintField[];
  }[];
  ignoredIdentifiers: { index: number; kind: string; reason: string }[];
  merges: number;
}

/**
 * Why a batch was not written: its identifiers reach more than `limit` stored orders and calls (one
 * is probably a placeholder), or other requests kept changing the same customers until the retries
 * ran out.
 */
/** A customer merged into another by a write: what stores outside the batch (events) must follow. */
export interface CustomerMerge {
  from: string;
  into: string;
}

export type IngestRefusal = { kind: "region_too_large"; limit: number } | { kind: "busy" };

/** The answer for a duplicate: `fields` that differ from the stored order ([]: none; null: unknown). */
export function duplicateResult(
  id: string,
  fields: readonly FingerprintField[] | null,
): IngestResult["results"][number] {
  if (fields === null) return { id, customerId: null, status: "duplicate", changed: null };
  if (fields.length === 0) return { id, customerId: null, status: "duplicate", changed: false };
  return { id, customerId: null, status: "duplicate", changed: true, changedFields: [...fields] };
}

/** How many results are duplicates stored earlier with other content. */
export const changedCount = (results: IngestResult["results"]) =>
  results.filter((result) => result.changed === true).length;

/**
 * For each stored order resent, the fields whose content differs from what it was stored with (null:
 * stored without a fingerprint). Reads nothing: the fingerprints came with the stored ids. The
 * identifiers are compared as keyed hashes, so their spelling (case, spaces, a phone's format) is not a
 * change.
 */
async function storedChanges(
  orders: readonly OrderInput[],
  stored: ReadonlyMap<string, string | null>,
  secret: string,
  phoneRegion?: CountryCode,
): Promise<Map<string, FingerprintField[] | null>> {
  const changes = new Map<string, FingerprintField[] | null>();
  for (const order of orders) {
    if (!stored.has(order.id) || changes.has(order.id)) continue;
    const fingerprint = stored.get(order.id) ?? null;
    if (fingerprint === null) {
      changes.set(order.id, null);
      continue;
    }
    const { identities } = await hashIdentifiers(order.identifiers, secret, phoneRegion);
    changes.set(order.id, changedFields(fingerprint, orderFingerprint(order, identities)));
  }
  return changes;
}

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

/**
 * What a customer shard adds to an ingestion (worker/shards/ingest-router.ts); D1 passes nothing.
 * `newCustomerId` creates the ids of new customers (a shard's hash to itself); `guards` are
 * statements put first in the write batch, which abort it when the shard may no longer write these
 * customers (their region is being moved out).
 */
export interface WriteOptions {
  newCustomerId?: () => string;
  guards?: readonly SQL[];
  /** Stored-shared keys to decide again from all their observations (after an erasure: resolveAfterErasure). */
  recheckShared?: readonly string[];
}

/** Attempts before a request that keeps meeting concurrent writers gives up with 409. */
const maxAttempts = 5;

/**
 * The statements that bring the plan's customers' totals up to date. A customer who only gains new
 * orders has them added to the totals read now (one summary row and the touched category rows
 * written, and its product rows added to), guarded by totalsGuard; an order older than the customer's
 * last purchase day adds with what is stored about its day (loadDays). The rest (merges, moved orders,
 * and an order addOrders cannot fold: one at the very instant of the customer's first) are rebuilt
 * from all their orders.
 */
async function totalsStatements(
  db: Db,
  plan: ResolutionPlan,
  customerOf: ReadonlyMap<string, string>,
  freshOrders: readonly TotalsOrder[],
  now: string,
): Promise<SQL[]> {
  const recompute = new Set(plan.recomputeCustomers);
  const gained = new Map<string, TotalsOrder[]>();
  for (const order of freshOrders) {
    const customerId = customerOf.get(orderSource(order.id));
    if (!customerId || recompute.has(customerId)) continue;
    gained.set(customerId, [...(gained.get(customerId) ?? []), order]);
  }
  const categoriesOf = (orders: readonly TotalsOrder[]) =>
    orders.flatMap((order) => order.lines.map((line) => line.categoryId));
  const stored = await loadTotals(
    db,
    [...gained].map(([customerId, orders]) => ({ customerId, categories: categoriesOf(orders) })),
  );
  // Orders placed before their customer's last purchase day fold with what is stored about their day.
  const earlier = [...gained].flatMap(([customerId, orders]) =>
    storedDaysNeeded(stored.get(customerId)?.totals ?? null, orders).map((day) => ({ customerId, day })),
  );
  const storedDays = await loadDays(db, earlier);
  const folded: TotalsWrite[] = [];
  const foldedOrderIds: string[] = [];
  for (const [customerId, orders] of gained) {
    const totals = addOrders(stored.get(customerId)?.totals ?? null, orders, storedDays.get(customerId));
    if (!totals) {
      recompute.add(customerId);
      continue;
    }
    const touched = new Set(categoriesOf(orders));
    const categories = totals.categories.filter((category) => touched.has(category.categoryId));
    folded.push({ customerId, summary: totals.summary, categories });
    foldedOrderIds.push(...orders.map((order) => order.id));
  }
  const revision = crypto.randomUUID();
  const guard = folded.map(({ customerId }) => ({ customerId, revision: stored.get(customerId)?.revision ?? null }));
  return [
    ...(guard.length > 0 ? [totalsGuard(guard)] : []),
    ...writeTotalsStatements(folded, now, revision),
    ...addProductsStatements(foldedOrderIds),
    ...rebuildSummaryStatements([...recompute].sort(), now, revision),
  ];
}

/**
 * Plans from a fresh read of the touched region and writes everything in one batch guarded by
 * regionGuard (and totalsGuard): if another request changed the region or the totals in between, the
 * batch aborts whole and the plan is made again from the new state, so concurrent writers never split
 * or double-count anyone.
 */
async function resolveAndWrite(
  db: Db,
  fresh: Observation[],
  masks: Map<string, string>,
  now: Date,
  freshOrders: readonly TotalsOrder[],
  extra: (customerOf: Map<string, string>) => SQL[],
  options: WriteOptions = {},
): Promise<{ kind: "written"; plan: ResolutionPlan; customerOf: Map<string, string> } | IngestRefusal> {
  const freshOrderIds = freshOrders.map((order) => order.id);
  const recheck = options.recheckShared ?? [];
  const nowIso = now.toISOString();
  for (let attempt = 1; ; attempt++) {
    const load = await loadRegion(db, fresh, recheck);
    if (load.kind === "too_large") return { kind: "region_too_large", limit: load.limit };
    // A start key's every verified observation is in the region, so its sharing can be decided again.
    const region = recheck.length > 0 ? { ...load.region, recheckShared: new Set(recheck) } : load.region;
    const plan = planResolution(region, options.newCustomerId ?? newCustomerId);
    const customerOf = new Map(plan.orderChanges.map((change) => [change.source, change.customerId]));
    const guard = regionGuard(region, freshOrderIds);
    const statements = [
      ...(options.guards ?? []),
      guard.check,
      ...identityStatements(plan, fresh, masks, nowIso),
      ...extra(customerOf),
      ...reassignOrderStatements(
        plan.orderChanges
          .filter((change) => region.orderCustomers.has(change.source))
          .map((change) => ({ orderId: change.source.slice("order:".length), customerId: change.customerId })),
      ),
      ...(await totalsStatements(db, plan, customerOf, freshOrders, nowIso)),
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
  attribution: AttributionSettings,
  phoneRegion?: CountryCode,
  matchKinds?: ReadonlySet<IdentifierKind>,
  options: WriteOptions = {},
): Promise<{ kind: "ingested"; result: IngestResult; merged: CustomerMerge[] } | IngestRefusal> {
  const ignoredIdentifiers: IngestResult["ignoredIdentifiers"] = [];
  const masks = new Map<string, string>();
  const seen = new Set<string>();
  const stored = await storedFingerprints(
    db,
    orders.map((order) => order.id),
  );
  const unseen: {
    index: number;
    order: OrderInput;
    identities: HashedIdentity[];
    suppressionKeys: string[];
    fingerprint: string;
  }[] = [];
  for (const [index, order] of orders.entries()) {
    if (stored.has(order.id) || seen.has(order.id)) continue;
    seen.add(order.id);
    const { identities, ignored } = await hashIdentifiers(order.identifiers, secret, phoneRegion, matchKinds);
    for (const item of ignored) ignoredIdentifiers.push({ index, ...item });
    const suppressionKeys = [await orderSuppressionKey(order.id, secret), ...suppressionKeysOf(identities)];
    unseen.push({ index, order, identities, suppressionKeys, fingerprint: orderFingerprint(order, identities) });
  }
  const changes = await storedChanges(orders, stored, secret, phoneRegion);

  // Erasure sticks: an erased order, or one carrying an erased customer's identifier, is not stored
  // and creates no customer (the write batch re-checks, in case an erasure commits meanwhile).
  const suppressedIndexes = await suppressedOrders(db, unseen);
  const kept = unseen.filter(({ index }) => !suppressedIndexes.has(index));
  // Attributions that do not count are dropped from the order before it is stored.
  const ignoredIds = await ignoredAttributions(db, kept, attribution);
  const fresh = kept.map(({ index, order, identities, fingerprint }) => {
    for (const identity of identities) masks.set(identity.key, identity.masked);
    return {
      index,
      // The fingerprint is of the order as sent, so a resend of it compares equal whatever was stored.
      fingerprint,
      order: ignoredIds.has(order.id) ? { ...order, recommendationId: null } : order,
      attribution: order.recommendationId ? (ignoredIds.has(order.id) ? "ignored" : "counted") : undefined,
      attributionIgnored: ignoredIds.get(order.id),
      observation: observationOf(orderSource(order.id), identities),
    } as const;
  });

  let customerOf = new Map<string, string>();
  let merged: CustomerMerge[] = [];
  if (fresh.length > 0) {
    const written = await resolveAndWrite(
      db,
      fresh.map((f) => f.observation),
      masks,
      now,
      fresh.map((f) => totalsOrderOf(f.order)),
      (owners) => [
        suppressionGuard(kept.flatMap((order) => order.suppressionKeys)),
        ...insertOrderStatements(
          fresh.map(({ order, fingerprint }) => ({
            order,
            customerId: owners.get(orderSource(order.id)) as string,
            fingerprint,
          })),
          now.toISOString(),
        ),
        ...matchKeyStatement(kept.flatMap((order) => order.identities)),
      ],
      options,
    );
    if (written.kind !== "written") return written;
    customerOf = written.customerOf;
    merged = written.plan.merges.map(({ from, into }) => ({ from, into }));
  }
  const created = new Map(fresh.map((f) => [f.index, f]));
  const results = orders.map((order, index): IngestResult["results"][number] => {
    const written = created.get(index);
    if (written) {
      const customerId = customerOf.get(orderSource(order.id)) ?? null;
      return {
        id: order.id,
        customerId,
        status: "created",
        ...(written.attribution ? { attribution: written.attribution } : {}),
        ...(written.attributionIgnored ? { attributionIgnored: written.attributionIgnored } : {}),
      };
    }
    if (suppressedIndexes.has(index)) return { id: order.id, customerId: null, status: "suppressed" };
    // Stored earlier (compared with what was stored), or a repeat within the batch (identical, or 400).
    const fields = changes.get(order.id);
    return duplicateResult(order.id, fields === undefined ? [] : fields);
  });
  return {
    kind: "ingested",
    result: {
      accepted: fresh.length,
      duplicates: orders.length - fresh.length - suppressedIndexes.size,
      changed: changedCount(results),
      suppressed: suppressedIndexes.size,
      ignored: ignoredIds.size,
      results,
      ignoredIdentifiers,
      merges: merged.length,
    },
    merged,
  };
}

/**
 * After an erasure removed the erased customer's evidence: resolves `keys` again from all their
 * remaining verified observations, and writes what follows as ingestion writes a plan. For a shared
 * identifier the erased customer was seen with, whether it is still shared is decided again: one no
 * longer shared belongs to the customer it now links to (the orders it owns move there, totals are
 * rebuilt) and customers it links are merged. Another customer's identifier the erased customer's
 * identify calls carried is placed as the evidence left says (a customer those calls alone held
 * together becomes two). Exactly as the same evidence without the erased customer's would have
 * resolved. Answers the merges (the caller moves their events).
 */
export async function resolveAfterErasure(
  db: Db,
  keys: readonly string[],
  now: Date,
  options: WriteOptions = {},
): Promise<{ kind: "resolved"; merged: CustomerMerge[] } | IngestRefusal> {
  if (keys.length === 0) return { kind: "resolved", merged: [] };
  const written = await resolveAndWrite(db, [], new Map(), now, [], () => [], { ...options, recheckShared: keys });
  if (written.kind !== "written") return written;
  return { kind: "resolved", merged: written.plan.merges.map(({ from, into }) => ({ from, into })) };
}

export interface IdentifyResult {
  linked: number;
  /** Of the linked identifiers, those recorded without trust: they join nobody. */
  unverified: number;
  merges: number;
  /** True when an identifier was erased and is suppressed: nothing was written. */
  suppressed: boolean;
  ignoredIdentifiers: IgnoredIdentifier[];
  keys: string[];
}

export async function identify(
  db: Db,
  secret: string,
  identifiers: IdentifiersInput,
  now: Date,
  phoneRegion?: CountryCode,
  matchKinds?: ReadonlySet<IdentifierKind>,
  options: WriteOptions = {},
): Promise<{ kind: "identified"; result: IdentifyResult; merged: CustomerMerge[] } | IngestRefusal> {
  const { identities, ignored } = await hashIdentifiers(identifiers, secret, phoneRegion, matchKinds);
  const keys = identities.map((identity) => identity.key);
  const unverified = identities.filter((identity) => identity.trust === "unverified").length;
  const identified = (linked: number, merged: CustomerMerge[], suppressed = false) =>
    ({
      kind: "identified",
      result: {
        linked,
        unverified: linked > 0 ? unverified : 0,
        merges: merged.length,
        suppressed,
        ignoredIdentifiers: ignored,
        keys,
      },
      merged,
    }) as const;
  if (keys.length === 0) return identified(0, []);
  // Erasure sticks: a call carrying an erased customer's identifier links nothing.
  const suppressionKeys = suppressionKeysOf(identities);
  if ((await suppressedKeys(db, suppressionKeys)).size > 0) return identified(0, [], true);
  const source = await identifySource(identities);
  if (await observationExists(db, source)) return identified(keys.length, []);
  const masks = new Map(identities.map((identity) => [identity.key, identity.masked]));
  const fresh = [observationOf(source, identities)];
  const written = await resolveAndWrite(
    db,
    fresh,
    masks,
    now,
    [],
    () => [suppressionGuard(suppressionKeys), ...matchKeyStatement(identities)],
    options,
  );
  if (written.kind !== "written") return written;
  return identified(
    keys.length,
    written.plan.merges.map(({ from, into }) => ({ from, into })),
  );
}
