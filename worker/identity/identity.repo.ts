// Loads the region of the identity graph that new evidence touches, and writes a resolution plan.
// Arrays travel as JSON parameters (jsonEach: one json_each, or a few over chunks when the array is
// too big for one D1 value), so a 1,000-order batch stays far below D1's 100-bound-parameters limit
// and costs one statement per table.
import { type SQL, sql } from "drizzle-orm";
import { batchRows, jsonEach } from "../../db/batch.ts";
import type { HoldersPart } from "../core/identity/holders.ts";
import type { IdentityState, Region, ResolutionPlan } from "../core/identity/plan.ts";
import type { IdentityRef, Observation } from "../core/identity/resolve.ts";
import type { IdentifierKind } from "../core/vocabulary.ts";
import type { Db } from "../env.ts";

/** Stop expanding a region past this many observations (a placeholder value that slipped the junk list). */
const maxRegionObservations = 20_000;

const kindOf = (key: string) => key.slice(0, key.indexOf(":")) as IdentifierKind;

interface ObservationRow {
  source: string;
  identity_key: string;
  customer_id: string | null;
  shared: number | null;
}

/** A loaded region, or `too_large` when it grew past `limit` observations and nothing should be written. */
export type RegionLoad = { kind: "loaded"; region: Region } | { kind: "too_large"; limit: number };

/** How many of a key's newest verified observations are compared with a new one's identifiers (repeatsOf). */
const repeatCandidates = 8;
/**
 * How many of a key's newest observations, verified or not, repeatsOf looks among for those: a bound on
 * what one check reads, however many unverified observations a key gathered (a shop's own email typed
 * at the till on every walk-in's order), since the key's index does not hold `verified`.
 */
const repeatScan = 64;

interface Repeat {
  observation: Observation;
  /** The stored state of each of its identifiers: all owned by one customer, none shared. */
  states: Map<string, IdentityState>;
}

/**
 * The new observations that repeat stored evidence: one of their first key's newest verified
 * observations has exactly their verified identifiers, and those all belong to one customer and
 * are not shared. Such an observation adds no link and changes nobody's sharing, and the partition is
 * a function of the distinct identifier sets seen, so resolution decides what it decided before: it
 * needs no region around it, only its identifiers' states. A customer's thousandth order with the
 * account and email of the others reads the same few rows as their second. Two exceptions walk as
 * before: a customer with repeats of different identifier sets in one batch (an order with only the
 * account and one with only the loyalty number: without the observations joining them they would be
 * two customers), and a customer whose orders with the batch's repeats of them are more than a region
 * may hold (the walk refuses it).
 */
async function repeatsOf(db: Db, fresh: Observation[]): Promise<Map<string, Repeat>> {
  const candidates = fresh
    .map((observation, i) => ({ i, keys: [...new Set(observation.identities.map((ref) => ref.key))].sort() }))
    .filter(({ keys }) => keys.length > 0)
    .map(({ i, keys }) => ({ i, first: keys[0], n: keys.length, keys }));
  if (candidates.length === 0) return new Map();
  // Newest first, a few at most: a customer's recent orders carry the identifiers they use now. The
  // window counts verified observations only: an email typed on many guest orders (unverified) would
  // otherwise push its holder's own orders out of it, and send each of theirs on the region walk. It
  // looks among the key's newest `repeatScan` observations only, so a key typed unverified on more
  // orders than that since its holder's last one walks, as before, rather than reading them all.
  const [matches = [], states = []] = (await batchRows(db, [
    sql`
      SELECT j.value ->> 'i' AS i, (
        SELECT o.source FROM identity_observations o
        WHERE o.identity_key = j.value ->> 'first' AND o.verified = 1
          AND o.rowid >= coalesce((
            SELECT r FROM (
              SELECT y.rowid AS r, y.verified AS v FROM identity_observations y
              WHERE y.identity_key = j.value ->> 'first' ORDER BY y.rowid DESC LIMIT ${repeatScan})
            WHERE v = 1 ORDER BY r DESC LIMIT 1 OFFSET ${repeatCandidates - 1}), (
            SELECT min(r) FROM (
              SELECT y.rowid AS r FROM identity_observations y
              WHERE y.identity_key = j.value ->> 'first' ORDER BY y.rowid DESC LIMIT ${repeatScan})))
          AND (SELECT count(*) FROM identity_observations x WHERE x.source = o.source AND x.verified = 1)
            = j.value ->> 'n'
          AND (SELECT count(*) FROM identity_observations x WHERE x.source = o.source AND x.verified = 1
            AND x.identity_key IN (SELECT value FROM json_each(j.value -> 'keys'))) = j.value ->> 'n'
        ORDER BY o.rowid DESC LIMIT 1) AS source
      FROM ${jsonEach(candidates)} j`,
    sql`
      SELECT i.key, i.customer_id, i.shared, s.orders FROM identities i
        LEFT JOIN customer_summaries s ON s.customer_id = i.customer_id
      WHERE i.key IN (SELECT value FROM ${jsonEach([...new Set(candidates.flatMap((c) => c.keys))])})`,
  ])) as [
    { i: number; source: string | null }[],
    { key: string; customer_id: string | null; shared: number; orders: number | null }[],
  ];
  const stateOf = new Map(states.map((row) => [row.key, { customerId: row.customer_id, shared: row.shared === 1 }]));
  const ordersOf = new Map(states.map((row) => [row.customer_id, row.orders ?? 0]));
  const setOf = new Map(candidates.map((candidate) => [candidate.i, candidate.keys.join(" ")]));
  const byOwner = new Map<string, { sets: Set<string>; repeats: Repeat[] }>();
  for (const { i, source } of matches) {
    const observation = fresh[i] as Observation;
    if (source === null) continue;
    const keyStates = new Map(observation.identities.map((ref) => [ref.key, stateOf.get(ref.key)]));
    const owners = new Set([...keyStates.values()].map((state) => (state && !state.shared ? state.customerId : null)));
    const [owner] = owners;
    if (owners.size !== 1 || !owner) continue;
    const group = byOwner.get(owner) ?? { sets: new Set(), repeats: [] };
    byOwner.set(owner, group);
    group.sets.add(setOf.get(i) ?? "");
    group.repeats.push({ observation, states: keyStates as Map<string, IdentityState> });
  }
  const repeats = new Map<string, Repeat>();
  // The bound counts the repeats too: a customer whose orders and this batch's repeats of them would
  // pass it is walked, and the walk refuses the region (region_too_large).
  for (const [owner, { sets, repeats: ofOwner }] of byOwner)
    if (sets.size === 1 && (ordersOf.get(owner) ?? 0) + ofOwner.length <= maxRegionObservations)
      for (const repeat of ofOwner) repeats.set(repeat.observation.source, repeat);
  return repeats;
}

/**
 * Every stored observation reachable from the new observations' identifiers and from `alsoFrom`
 * through verified links to identifiers that are not shared, with the stored state of each identifier
 * met. Unverified links are not evidence for resolution, so they are neither followed nor loaded. One
 * D1 round trip for the repeats, one per hop of the graph (usually two), plus one for the customers
 * involved. A new observation that repeats stored evidence (repeatsOf) starts no walk: its identifiers
 * come with their states alone, unless another start reaches them.
 */
export async function loadRegion(db: Db, fresh: Observation[], alsoFrom: readonly string[] = []): Promise<RegionLoad> {
  const repeats = await repeatsOf(db, fresh);
  const walked = fresh.filter((observation) => !repeats.has(observation.source));
  const observations = new Map<string, IdentityRef[]>();
  for (const observation of walked) observations.set(observation.source, [...observation.identities]);
  const identities = new Map<string, IdentityState>();
  const expanded = new Set<string>();
  let frontier = [
    ...new Set([...walked.flatMap((observation) => observation.identities.map((ref) => ref.key)), ...alsoFrom]),
  ];

  while (frontier.length > 0) {
    for (const key of frontier) expanded.add(key);
    const [rows = [], known = []] = (await batchRows(db, [
      sql`
        SELECT o.source, o.identity_key, i.customer_id, i.shared
        FROM identity_observations o LEFT JOIN identities i ON i.key = o.identity_key
        WHERE o.verified = 1 AND o.source IN (
          SELECT source FROM identity_observations
          WHERE verified = 1 AND identity_key IN (SELECT value FROM ${jsonEach(frontier)})
        )`,
      sql`SELECT key, customer_id, shared FROM identities WHERE key IN (SELECT value FROM ${jsonEach(frontier)})`,
    ])) as [ObservationRow[], { key: string; customer_id: string | null; shared: number }[]];
    for (const row of known) identities.set(row.key, { customerId: row.customer_id, shared: row.shared === 1 });
    for (const row of rows) {
      const refs = observations.get(row.source) ?? [];
      if (!observations.has(row.source)) observations.set(row.source, refs);
      if (!refs.some((ref) => ref.key === row.identity_key))
        refs.push({ kind: kindOf(row.identity_key), key: row.identity_key });
      if (row.shared !== null)
        identities.set(row.identity_key, { customerId: row.customer_id, shared: row.shared === 1 });
    }
    if (observations.size > maxRegionObservations) {
      // Deciding from part of the evidence could split customers; refuse and write nothing.
      return { kind: "too_large", limit: maxRegionObservations };
    }
    const next = new Set<string>();
    for (const refs of observations.values()) {
      for (const ref of refs) {
        if (expanded.has(ref.key) || identities.get(ref.key)?.shared) continue;
        next.add(ref.key);
      }
    }
    frontier = [...next];
  }

  // A batch's repeats of a customer the walk reached join that region too, and the walk saw none of
  // them: the bound counts them (an order with a new identifier beside a repeat, at 19,999, makes 20,001).
  const reached = new Set([...identities.values()].map((state) => state.customerId));
  const joining = [...repeats.values()].filter(({ states }) =>
    reached.has([...states.values()][0]?.customerId ?? null),
  ).length;
  if (observations.size + joining > maxRegionObservations) return { kind: "too_large", limit: maxRegionObservations };

  for (const { observation, states } of repeats.values()) {
    const refs = observations.get(observation.source) ?? [];
    observations.set(observation.source, refs);
    for (const ref of observation.identities) if (!refs.some((known) => known.key === ref.key)) refs.push(ref);
    for (const [key, state] of states) if (!identities.has(key)) identities.set(key, state);
  }

  const orderSources = [...observations.keys()].filter((source) => source.startsWith("order:"));
  const [orderRows = []] = (await batchRows(db, [
    sql`
      SELECT 'order:' || id AS source, customer_id FROM orders
      WHERE id IN (SELECT substr(value, 7) FROM ${jsonEach(orderSources)})`,
  ])) as [{ source: string; customer_id: string }[]];
  const orderCustomers = new Map(orderRows.map((row) => [row.source, row.customer_id]));
  const owners = [
    ...new Set([...identities.values()].map((s) => s.customerId).concat([...orderCustomers.values()])),
  ].filter((id): id is string => !!id);
  const [weightRows = [], ownerRows = []] = (await batchRows(db, [
    sql`SELECT customer_id, orders FROM customer_summaries WHERE customer_id IN (SELECT value FROM ${jsonEach(owners)})`,
    sql`SELECT DISTINCT customer_id FROM identities WHERE customer_id IN (SELECT value FROM ${jsonEach(owners)})`,
  ])) as [{ customer_id: string; orders: number }[], { customer_id: string }[]];

  return {
    kind: "loaded",
    region: {
      observations: [...observations].map(([source, refs]) => ({ source, identities: refs })),
      identities,
      orderCustomers,
      customerWeight: new Map(weightRows.map((row) => [row.customer_id, row.orders])),
      identityOwners: new Set(ownerRows.map((row) => row.customer_id)),
    },
  };
}

/**
 * The first and last statements of a write batch: the first aborts the batch (NOT NULL on
 * ingest_checks.ok) when anything the plan was computed from changed since it was read: a known
 * identity's owner or shared flag, an identity believed new, or an order believed new.
 */
export function regionGuard(region: Region, freshOrderIds: string[]): { check: SQL; clear: SQL } {
  const known = [...region.identities].map(([key, state]) => ({
    key,
    customerId: state.customerId,
    shared: state.shared ? 1 : 0,
  }));
  const believedNew = [
    ...new Set(
      region.observations
        .flatMap((o) => o.identities.map((ref) => ref.key))
        .filter((key) => !region.identities.has(key)),
    ),
  ];
  return {
    check: sql`
      INSERT INTO ingest_checks (ok) SELECT CASE WHEN
        NOT EXISTS (
          SELECT 1 FROM ${jsonEach(known)} j LEFT JOIN identities i ON i.key = j.value ->> 'key'
          WHERE i.key IS NULL OR i.customer_id IS NOT (j.value ->> 'customerId') OR i.shared != (j.value ->> 'shared'))
        AND NOT EXISTS (SELECT 1 FROM identities WHERE key IN (SELECT value FROM ${jsonEach(believedNew)}))
        AND NOT EXISTS (SELECT 1 FROM orders WHERE id IN (SELECT value FROM ${jsonEach(freshOrderIds)}))
      THEN 1 END`,
    clear: sql`DELETE FROM ingest_checks`,
  };
}

/** True when a batch was aborted by regionGuard: the caller re-plans from a fresh read. */
export function isStaleRegion(error: unknown): boolean {
  return String((error as Error)?.message ?? error).includes("ingest_checks.ok");
}

/** Statements that write a plan; the caller puts them in the same D1 batch as the orders. */
export function identityStatements(
  plan: ResolutionPlan,
  fresh: Observation[],
  masks: ReadonlyMap<string, string>,
  now: string,
) {
  const identityRows = plan.identityChanges.map((change) => ({
    key: change.key,
    kind: change.kind,
    customerId: change.customerId,
    shared: change.shared ? 1 : 0,
    masked: masks.get(change.key) ?? "",
  }));
  const observationRows = fresh.flatMap((o) => [
    ...o.identities.map((ref) => ({ source: o.source, key: ref.key, verified: 1 })),
    ...(o.unverified ?? []).map((ref) => ({ source: o.source, key: ref.key, verified: 0 })),
  ]);
  // An identifier seen only unverified is kept (masked, for the console) but held by nobody; one that
  // already exists keeps its owner: an unverified sighting changes nothing.
  const planned = new Set(identityRows.map((row) => row.key));
  const unverifiedRows = [
    ...new Map(
      fresh
        .flatMap((o) => o.unverified ?? [])
        .filter((ref) => !planned.has(ref.key))
        .map((ref) => [ref.key, { key: ref.key, kind: ref.kind, masked: masks.get(ref.key) ?? "" }]),
    ).values(),
  ];
  // The customers holding the identifiers an identify call saw are marked updated: its sighting carries
  // no time of its own, and a migration's catch-up pass (worker/shards/migrate.ts) finds changes by time.
  // Before the identities are written, so a holder the call replaces is marked too.
  const identified = observationRows.filter((row) => row.source.startsWith("identify:")).map((row) => row.key);
  const statements = [
    ...(identified.length > 0
      ? [
          sql`
            UPDATE customers SET updated_at = ${now}
            WHERE id IN (SELECT customer_id FROM identities WHERE key IN (SELECT value FROM ${jsonEach(identified)}))`,
        ]
      : []),
    sql`
      INSERT INTO customers (id, created_at, updated_at, merged_into)
      SELECT value, ${now}, ${now}, NULL FROM ${jsonEach(plan.created)}`,
    sql`
      INSERT INTO identities (key, kind, customer_id, masked, shared, created_at)
      SELECT value ->> 'key', value ->> 'kind', value ->> 'customerId', value ->> 'masked', value ->> 'shared', ${now}
      FROM ${jsonEach(identityRows)} WHERE true
      ON CONFLICT (key) DO UPDATE SET customer_id = excluded.customer_id, shared = excluded.shared`,
    sql`
      INSERT OR IGNORE INTO identities (key, kind, customer_id, masked, shared, created_at)
      SELECT value ->> 'key', value ->> 'kind', NULL, value ->> 'masked', 0, ${now} FROM ${jsonEach(unverifiedRows)}`,
    sql`
      INSERT OR IGNORE INTO identity_observations (source, identity_key, verified)
      SELECT value ->> 'source', value ->> 'key', value ->> 'verified' FROM ${jsonEach(observationRows)}`,
  ];
  if (plan.merges.length > 0) {
    const merges = jsonEach(plan.merges);
    statements.push(
      sql`
        UPDATE customers SET merged_into = m.value ->> 'into', updated_at = ${now}
        FROM ${merges} AS m WHERE customers.id = m.value ->> 'from'`,
      // Anyone who pointed at a merged-away customer now points at the survivor.
      sql`
        UPDATE customers SET merged_into = m.value ->> 'into'
        FROM ${merges} AS m WHERE customers.merged_into = m.value ->> 'from'`,
      // Everything the merged-away customer had moves with it, including what the region did not load.
      sql`
        UPDATE orders SET customer_id = m.value ->> 'into'
        FROM ${merges} AS m WHERE orders.customer_id = m.value ->> 'from'`,
      // Widget events not yet moved to the events database (whose rows moveCustomerEvents updates
      // after this batch), and the browse rollups, added into the survivor's days.
      sql`
        UPDATE legacy_events SET customer_id = m.value ->> 'into'
        FROM ${merges} AS m WHERE legacy_events.customer_id = m.value ->> 'from'`,
      sql`
        INSERT INTO customer_browse (customer_id, day, category_id, views, last_viewed_at)
        SELECT m.value ->> 'into', b.day, b.category_id, b.views, b.last_viewed_at
        FROM ${merges} AS m JOIN customer_browse b ON b.customer_id = m.value ->> 'from' WHERE true
        ON CONFLICT (customer_id, day, category_id) DO UPDATE SET
          views = views + excluded.views, last_viewed_at = max(last_viewed_at, excluded.last_viewed_at)`,
      sql`DELETE FROM customer_browse WHERE customer_id IN (SELECT value ->> 'from' FROM ${merges})`,
      sql`DELETE FROM customer_scores WHERE customer_id IN (SELECT value ->> 'from' FROM ${merges})`,
      sql`DELETE FROM customer_category_lapses WHERE customer_id IN (SELECT value ->> 'from' FROM ${merges})`,
      sql`
        INSERT INTO identity_merges (from_customer_id, into_customer_id, source, at)
        SELECT value ->> 'from', value ->> 'into', value ->> 'source', ${now} FROM ${merges}`,
    );
  }
  return statements;
}

export async function observationExists(db: Db, source: string): Promise<boolean> {
  const row = await db.get<{ n: number }>(
    sql`SELECT count(*) AS n FROM identity_observations WHERE source = ${source}`,
  );
  return (row?.n ?? 0) > 0;
}

/** The customer holding an identity key, or null when nobody (unknown, or shared by several). */
export async function customerIdByKey(
  db: Db,
  key: string,
): Promise<{ customerId: string | null; shared: boolean } | null> {
  const row = await db.get<{ customer_id: string | null; shared: number }>(
    sql`SELECT customer_id, shared FROM identities WHERE key = ${key}`,
  );
  return row ? { customerId: row.customer_id, shared: row.shared === 1 } : null;
}

/**
 * The customers here that hold `key` or were seen with it, whatever its trust, first `limit` by id
 * (a privacy request reaches every record of an identifier): the holder, the customers of the orders
 * that carried it, and those holding a verified identifier of an identify call that carried it. Read
 * along identity_observations' key index, then by primary keys: no scan, whatever the store's size.
 */
export async function holdersIn(db: Db, key: string, limit: number): Promise<HoldersPart> {
  const [identity = [], rows = []] = (await batchRows(db, [
    sql`SELECT shared FROM identities WHERE key = ${key}`,
    sql`
      WITH seen AS (SELECT source, verified FROM identity_observations WHERE identity_key = ${key}),
      sightings AS (
        SELECT customer_id, 1 AS held, 1 AS verified, 0 AS orders, NULL AS placed_at
        FROM identities WHERE key = ${key} AND customer_id IS NOT NULL
        UNION ALL
        SELECT o.customer_id, 0, s.verified, 1, o.placed_at
        FROM seen s JOIN orders o ON o.id = substr(s.source, 7) WHERE substr(s.source, 1, 6) = 'order:'
        UNION ALL
        SELECT DISTINCT i.customer_id, 0, s.verified, 0, NULL
        FROM seen s JOIN identity_observations v ON v.source = s.source AND v.verified = 1
          JOIN identities i ON i.key = v.identity_key
        WHERE substr(s.source, 1, 9) = 'identify:' AND i.customer_id IS NOT NULL
      )
      SELECT customer_id AS customerId, max(held) AS held, max(verified) AS verified, sum(orders) AS orders,
        min(placed_at) AS firstSeenAt, max(placed_at) AS lastSeenAt
      FROM sightings GROUP BY customer_id ORDER BY customer_id LIMIT ${limit}`,
  ])) as [{ shared: number }[], HolderRowSql[]];
  return {
    known: identity.length > 0,
    shared: identity[0]?.shared === 1,
    holders: rows.map((row) => ({ ...row, held: row.held === 1, verified: row.verified === 1 })),
  };
}

interface HolderRowSql {
  customerId: string;
  held: number;
  verified: number;
  orders: number;
  firstSeenAt: string | null;
  lastSeenAt: string | null;
}

/**
 * The sources (orders and identify calls) that belong to a customer: its orders, and the identify
 * calls that vouched for an identifier it holds.
 */
export function sourcesOf(customerIds: SQL) {
  return sql`(
    SELECT 'order:' || id FROM orders WHERE customer_id IN ${customerIds}
    UNION
    SELECT o.source FROM identity_observations o JOIN identities i ON i.key = o.identity_key
    WHERE i.customer_id IN ${customerIds} AND o.verified = 1 AND o.source LIKE 'identify:%')`;
}

export interface IdentityLinkRow {
  kind: string;
  masked: string;
  trust: "verified" | "unverified";
  shared: number;
}

/**
 * Every identifier linked to a customer, with its trust: the ones it holds (verified: that is how
 * they joined) and the ones seen on its orders and identify calls without joining it: unverified,
 * shared, or vouched for here but held by someone else (a refused link).
 */
export async function identitiesOf(db: Db, customerId: string): Promise<IdentityLinkRow[]> {
  const ids = sql`(${customerId})`;
  // Two indexed reads (held by the customer; seen on its sources) rather than one OR over every identity.
  return db.all<IdentityLinkRow>(sql`
    WITH links AS (
      SELECT identity_key AS key, max(verified) AS verified FROM identity_observations
      WHERE source IN ${sourcesOf(ids)} GROUP BY identity_key
    )
    SELECT kind, masked, shared, trust FROM (
      SELECT i.kind, i.masked, i.shared, 'verified' AS trust, i.created_at, i.key
      FROM identities i WHERE i.customer_id = ${customerId}
      UNION ALL
      SELECT i.kind, i.masked, i.shared, CASE l.verified WHEN 1 THEN 'verified' ELSE 'unverified' END, i.created_at, i.key
      FROM links l JOIN identities i ON i.key = l.key WHERE i.customer_id IS NOT ${customerId}
    ) ORDER BY kind, created_at, key`);
}

/** Every identifier link of a set of customers, one row per (order or identify call, identifier), with its trust. */
export function identityLinksOf(customerIds: SQL) {
  return sql`
    SELECT CASE WHEN o.source LIKE 'order:%' THEN substr(o.source, 7) END AS orderId,
      CASE WHEN o.source LIKE 'identify:%' THEN o.source END AS identifyCall,
      i.kind, i.masked, CASE o.verified WHEN 1 THEN 'verified' ELSE 'unverified' END AS trust,
      i.shared = 1 AS shared, i.customer_id IS NOT NULL AND i.customer_id IN ${customerIds} AS held
    FROM identity_observations o JOIN identities i ON i.key = o.identity_key
    WHERE o.source IN ${sourcesOf(customerIds)}
    ORDER BY o.source, i.kind, i.key`;
}
