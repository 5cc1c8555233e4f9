// A customer's right of access and erasure: everything Patron holds about one unified customer, as
// one export, and a deletion from every table: the database holding the customer (the main D1 database,
// or their customer shard) in one batch (all or nothing), and the customer's widget events and
// conversions in the events database (EVENTS_DB) before and after it. Customers merged into this one go
// with it; identifiers shared with other people (marked shared, owned by nobody) stay. The batch leaves
// keyed hashes on the suppression list so the erased data is not recreated (a shard also puts them on
// the main database's list first: worker/shards/console-shard.ts).
import { type SQL, sql } from "drizzle-orm";
import { batchRows, jsonEach, runBatch } from "../../db/batch.ts";
import type { Db, EventsDb } from "../env.ts";
import { erasedCustomerKey, moveCustomerEvents } from "../events/events.repo.ts";
import { identityLinksOf, isStaleRegion, sourcesOf } from "../identity/identity.repo.ts";
import { resolveAfterErasure, type WriteOptions } from "../orders/ingest.ts";
import { productAggregate } from "../orders/orders.repo.ts";
import { unfinishedMove } from "../shards/moves.ts";

/** The customer and every customer merged into it, at any depth. */
function familyOf(customerId: string) {
  return sql`(
    WITH RECURSIVE family(id) AS (
      SELECT ${customerId} UNION SELECT c.id FROM customers c JOIN family f ON c.merged_into = f.id
    ) SELECT id FROM family)`;
}

/** A customer's widget events and conversions in the events database: the customers' and orders' ids. */
async function exportEvents(eventsDb: EventsDb, customerIds: string[], orderIds: string[]) {
  const [events = [], conversions = []] = await batchRows(eventsDb, [
    sql`SELECT type, recommendation_id AS recommendationId, product_id AS productId, category_id AS categoryId, at
          FROM events WHERE customer_id IN (SELECT value FROM ${jsonEach(customerIds)}) ORDER BY at, id`,
    sql`SELECT order_id AS orderId, recommendation_id AS recommendationId, total, at
          FROM conversions WHERE order_id IN (SELECT value FROM ${jsonEach(orderIds)}) ORDER BY at, order_id`,
  ]);
  return { events, conversions };
}

/**
 * The customer's rows in the customer tables (the customer and every customer merged into it): what a
 * customer shard holds of them, or the main database when it holds the customers.
 */
export async function exportCustomerRows(db: Db, customerId: string) {
  const family = familyOf(customerId);
  const [
    customers = [],
    identities = [],
    orders = [],
    lines = [],
    summary = [],
    categories = [],
    products = [],
    scores = [],
    transitions = [],
    browse = [],
    merges = [],
    links = [],
    lapses = [],
  ] = await batchRows(db, [
    sql`SELECT id, created_at AS createdAt, merged_into AS mergedInto FROM customers WHERE id IN ${family}`,
    sql`SELECT kind, masked, match_key AS matchKey, created_at AS createdAt FROM identities WHERE customer_id IN ${family}`,
    sql`SELECT id, channel, store_id AS storeId, placed_at AS placedAt, currency, total, discount_total AS discountTotal,
            recommendation_id AS recommendationId FROM orders WHERE customer_id IN ${family} ORDER BY placed_at`,
    sql`SELECT l.order_id AS orderId, l.product_id AS productId, l.category_id AS categoryId, l.quantity,
            l.unit_price AS unitPrice, l.list_price AS listPrice
          FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.customer_id IN ${family} ORDER BY l.order_id, l.line_no`,
    sql`SELECT * FROM customer_summaries WHERE customer_id IN ${family}`,
    sql`SELECT * FROM customer_category_stats WHERE customer_id IN ${family}`,
    // What customer_products holds, from the orders: the same once its backfill is done, whole before.
    sql`${productAggregate(sql`o.customer_id IN ${family}`)} ORDER BY customerId, productId`,
    sql`SELECT * FROM customer_scores WHERE customer_id IN ${family}`,
    sql`SELECT from_stage AS "from", to_stage AS "to", at FROM stage_transitions WHERE customer_id IN ${family} ORDER BY id`,
    sql`SELECT day, category_id AS categoryId, views, last_viewed_at AS lastViewedAt FROM customer_browse
          WHERE customer_id IN ${family} ORDER BY day, category_id`,
    sql`SELECT from_customer_id AS "from", into_customer_id AS "into", at FROM identity_merges
          WHERE from_customer_id IN ${family} OR into_customer_id IN ${family} ORDER BY id`,
    identityLinksOf(family),
    sql`SELECT category_id AS categoryId, run_id AS runId FROM customer_category_lapses WHERE customer_id IN ${family}`,
  ]);
  return {
    customers,
    identities,
    orders,
    lines,
    summary,
    categories,
    products,
    scores,
    transitions,
    browse,
    merges,
    links,
    lapses,
  };
}

export type CustomerRows = Awaited<ReturnType<typeof exportCustomerRows>>;

/**
 * What the main database holds of customers beside the customer tables: the saved audiences the nightly
 * job found them in (and whether its webhook was told so), and their events from before they moved to
 * the events database, while the nightly job has not moved them yet.
 */
async function exportMainRows(db: Db, customerIds: readonly string[]) {
  const ids = sql`(SELECT value FROM ${jsonEach(customerIds)})`;
  const [audiences = [], legacyEvents = []] = await batchRows(db, [
    sql`SELECT m.audience_id AS audienceId, a.name, m.delivered FROM audience_members m
          JOIN audiences a ON a.id = m.audience_id WHERE m.customer_id IN ${ids}
          AND NOT EXISTS (SELECT 1 FROM audience_member_purges p WHERE p.audience_id = m.audience_id)
          ORDER BY m.audience_id`,
    sql`SELECT type, recommendation_id AS recommendationId, product_id AS productId, category_id AS categoryId, at
          FROM legacy_events WHERE customer_id IN ${ids} ORDER BY id`,
  ]);
  return { audiences, legacyEvents };
}

/** The export's answer from its parts: the customer tables' rows, the audiences and the events database's rows. */
function exportView(
  rows: CustomerRows,
  main: Awaited<ReturnType<typeof exportMainRows>>,
  stored: Awaited<ReturnType<typeof exportEvents>>,
) {
  const identityLinks = rows.links.map((link) => ({
    ...link,
    shared: link.shared === 1,
    held: link.held === 1,
  }));
  return {
    customers: rows.customers,
    identities: rows.identities,
    identityLinks,
    orders: rows.orders,
    lines: rows.lines,
    summary: rows.summary,
    categories: rows.categories,
    products: rows.products,
    scores: rows.scores,
    lapsedCategories: rows.lapses,
    audiences: main.audiences.map((row) => ({ ...row, delivered: row.delivered === 1 })),
    transitions: rows.transitions,
    events: [...main.legacyEvents, ...stored.events],
    conversions: stored.conversions,
    browse: rows.browse,
    merges: rows.merges,
  };
}

/** The ids of the customers and orders in an export's rows (what the events database is read by). */
const exportedIds = (rows: CustomerRows) => ({
  customerIds: rows.customers.map((row) => String(row.id)),
  orderIds: rows.orders.map((row) => String(row.id)),
});

/**
 * The export of a customer from their customer-table rows (read where the customer is: the main
 * database or their shard): with the main database's audiences and legacy events and the events
 * database's rows.
 */
export async function exportFrom(db: Db, eventsDb: EventsDb, rows: CustomerRows) {
  const { customerIds, orderIds } = exportedIds(rows);
  const [main, stored] = await Promise.all([
    exportMainRows(db, customerIds),
    exportEvents(eventsDb, customerIds, orderIds),
  ]);
  return exportView(rows, main, stored);
}

/**
 * The identifiers seen (unverified) on the family's own orders and calls, held by nobody, and seen here
 * with nobody else: a guest's. `seenElsewhere` leaves out those another database saw with somebody (a
 * customer shard asks the others).
 */
function guestIdentifiers(family: SQL, seenElsewhere: readonly string[] = []) {
  return sql`
    SELECT key, kind FROM identities WHERE +customer_id IS NULL AND shared = 0
      AND key IN (SELECT identity_key FROM identity_observations WHERE source IN ${sourcesOf(family)})
      AND NOT EXISTS (SELECT 1 FROM identity_observations o
        WHERE o.identity_key = identities.key AND o.source NOT IN ${sourcesOf(family)})
      AND key NOT IN (SELECT value FROM ${jsonEach(seenElsewhere)})`;
}

/**
 * The identifiers an erasure suppresses: those the family holds, and those only ever seen (unverified)
 * on its own orders and calls, which a guest's erasure must cover too; never one anybody else holds or
 * was seen with.
 */
function ownIdentifiers(family: SQL, seenElsewhere: readonly string[] = []) {
  return sql`
    SELECT key, kind FROM identities WHERE customer_id IN ${family} AND shared = 0
    UNION
    ${guestIdentifiers(family, seenElsewhere)}`;
}

/** What an erasure removes and suppresses, read before its batch, which checks nothing was added since. */
export interface ErasurePlan {
  /** The customer and those merged into it: for the events database, which cannot join the main one. */
  customerIds: string[];
  orderIds: string[];
  /** The orders' suppression keys. */
  orderKeys: string[];
  /** Its own identifiers (identity keys, already keyed hashes), deleted and suppressed. */
  identifiers: { key: string; kind: string }[];
  /** Its observation sources: `order:<id>` of its orders and the identify calls that vouched for its identifiers. */
  sources: string[];
  /**
   * Shared identifiers its own orders and calls carried verified: they stay, and once its evidence is
   * gone their sharing is decided again from what is left (resolveAfterErasure).
   */
  sharedKeys: string[];
  /**
   * Other customers' identifiers its identify calls carried verified: a call joining two of another
   * customer's identifiers is erased with it, so that customer is resolved again from what is left
   * (it may be two people now), as the next order touching them would resolve it.
   */
  linkedKeys: string[];
}

async function erasurePlan(
  db: Db,
  customerId: string,
  orderKey: (orderId: string) => Promise<string>,
  seenElsewhere: readonly string[],
): Promise<ErasurePlan> {
  const family = familyOf(customerId);
  const [customers = [], orders = [], identifiers = [], sources = [], shared = [], linked = []] = await batchRows(db, [
    sql`SELECT id FROM ${family}`,
    sql`SELECT id FROM orders WHERE customer_id IN ${family}`,
    ownIdentifiers(family, seenElsewhere),
    sql`SELECT * FROM ${sourcesOf(family)}`,
    sql`SELECT DISTINCT o.identity_key AS key FROM identity_observations o JOIN identities i ON i.key = o.identity_key
          WHERE o.source IN ${sourcesOf(family)} AND o.verified = 1 AND i.shared = 1 ORDER BY 1`,
    sql`SELECT DISTINCT o.identity_key AS key FROM identity_observations o JOIN identities i ON i.key = o.identity_key
          WHERE o.source IN ${sourcesOf(family)} AND o.source LIKE 'identify:%' AND o.verified = 1
            AND i.shared = 0 AND i.customer_id NOT IN ${family} ORDER BY 1`,
  ]);
  const orderIds = orders.map((row) => String(row.id));
  return {
    customerIds: customers.map((row) => String(row.id)),
    orderIds,
    orderKeys: await Promise.all(orderIds.map(orderKey)),
    identifiers: identifiers.map((row) => ({ key: String(row.key), kind: String(row.kind) })),
    // One unnamed column (sourcesOf's union).
    sources: sources.map((row) => String(Object.values(row)[0])),
    sharedKeys: shared.map((row) => String(row.key)),
    linkedKeys: linked.map((row) => String(row.key)),
  };
}

/**
 * The statements that put a plan's keys on a database's suppression list (identifiers, then orders);
 * adding a key already there changes nothing, so they can be run again.
 */
export function suppressionStatements(
  plan: Pick<ErasurePlan, "identifiers" | "orderKeys" | "orderIds">,
  now: Date,
): [identifiers: SQL, orders: SQL, importedIds: SQL] {
  const at = now.toISOString();
  return [
    sql`INSERT OR IGNORE INTO suppressions (key, kind, created_at)
        SELECT value ->> 'key', value ->> 'kind', ${at} FROM ${jsonEach(plan.identifiers)}`,
    sql`INSERT OR IGNORE INTO suppressions (key, kind, created_at)
        SELECT value, 'order', ${at} FROM ${jsonEach(plan.orderKeys)}`,
    // Import batches name the changed duplicates they met and the orders they set aside (their raw ids;
    // one set aside may be stored later, from a fixed export): the erased orders' go.
    sql`UPDATE import_batches SET
          changed_ids = (
            SELECT json_group_array(value) FROM json_each(import_batches.changed_ids)
            WHERE value NOT IN (SELECT value FROM ${jsonEach(plan.orderIds)})),
          set_aside_ids = (
            SELECT json_group_array(value) FROM json_each(import_batches.set_aside_ids)
            WHERE value NOT IN (SELECT value FROM ${jsonEach(plan.orderIds)}))
        WHERE (changed > 0 AND EXISTS (SELECT 1 FROM json_each(import_batches.changed_ids)
            WHERE value IN (SELECT value FROM ${jsonEach(plan.orderIds)})))
          OR (set_aside > 0 AND EXISTS (SELECT 1 FROM json_each(import_batches.set_aside_ids)
            WHERE value IN (SELECT value FROM ${jsonEach(plan.orderIds)})))`,
  ];
}

/** How long the events database lists what erasures took out (erased_keys): far longer than a request. */
const erasedKeysKeptMs = 7 * 86_400_000;

/**
 * Deletes the customers' widget events and the orders' conversions from the events database. Run
 * before the main batch (so a failure leaves the customer in place and a retry finds everything
 * again) and once more after it (`list`), when it also lists them there as erased in the same batch: a
 * request that read the customer (a beacon) or stored the order (its conversion) before the erasure
 * and writes after that second pass writes nothing (insertEvents, recordConversions), and what it wrote
 * before it, the second pass deletes. Listed only once the customer is gone: an erasure that fails
 * lists nothing, and the customer's beacons are stored as before. What the list holds from more than a
 * week ago goes with it.
 */
async function eraseEvents(
  eventsDb: EventsDb,
  plan: Pick<ErasurePlan, "customerIds" | "orderIds" | "orderKeys">,
  now: Date,
  list = false,
) {
  const at = now.toISOString();
  const keys = [...plan.customerIds.map(erasedCustomerKey), ...plan.orderKeys];
  const [events, conversions] = await runBatch(eventsDb, [
    sql`DELETE FROM events WHERE customer_id IN (SELECT value FROM ${jsonEach(plan.customerIds)})`,
    sql`DELETE FROM conversions WHERE order_id IN (SELECT value FROM ${jsonEach(plan.orderIds)})`,
    ...(list
      ? [
          // Listed again by a later erasure (an order key suppressed anew): kept a week from then.
          sql`INSERT INTO erased_keys (key, at) SELECT value, ${at} FROM ${jsonEach(keys)} WHERE true
              ON CONFLICT (key) DO UPDATE SET at = excluded.at`,
          sql`DELETE FROM erased_keys WHERE at < ${new Date(now.getTime() - erasedKeysKeptMs).toISOString()}`,
        ]
      : []),
  ]);
  return { events: events?.meta.changes ?? 0, conversions: conversions?.meta.changes ?? 0 };
}

/**
 * Takes a lifted suppression's key off the events database's list of what erasures took out: an order
 * sent again once its id is lifted has its conversion recorded, within the week the list keeps too.
 */
export async function unlistErasedKey(eventsDb: EventsDb, key: string): Promise<void> {
  await eventsDb.run(sql`DELETE FROM erased_keys WHERE key = ${key}`);
}

export type Erasure =
  | {
      kind: "erased";
      deleted: Record<string, number>;
      suppressed: { orders: number; identifiers: number };
      /** What was erased (the last attempt's plan). */
      plan: ErasurePlan;
    }
  | { kind: "busy" };

/** Attempts before an erasure that keeps meeting new orders for the customer gives up. */
const maxAttempts = 5;

/**
 * Deletes the customer (and those merged into it) from every table, and in the same batch puts on
 * the suppression list the keyed hashes (`orderKey`) of the erased orders' ids and the identity keys
 * (already keyed hashes) of the identifiers that were theirs alone. The batch aborts and is redone
 * when an order or an identifier reached the customer after the plan was read, so every erased order
 * and identifier is suppressed. `beforeBatch`, given the plan, runs after the events database's
 * deletes and before the batch, and answers how many events it deleted (a customer shard puts the
 * plan's keys on the main database's list there and deletes the main database's legacy events).
 * `seenElsewhere`, given the guest identifiers seen here with nobody else, answers those another
 * database saw with somebody (a customer shard asks the other shards): they are not suppressed.
 * Then the shared identifiers it was seen with, and the other customers its identify calls carried, are
 * resolved again without its evidence (`resolveAfterErasure`;
 * `resolveOptions` gives that write's options for those keys: a shard's new customer ids and fences).
 * `inBatch`, given the plan, adds statements to the erasure's batch (a customer shard's to-do of the
 * erasure's part in the other shards, written with it or not at all).
 * Returns rows removed per table and keys suppressed, or `busy` when the retries ran out.
 */
export async function eraseCustomer(
  db: Db,
  eventsDb: EventsDb,
  customerId: string,
  orderKey: (orderId: string) => Promise<string>,
  now: Date,
  beforeBatch?: (plan: ErasurePlan) => Promise<{ events: number }>,
  seenElsewhere?: (keys: string[]) => Promise<string[]>,
  resolveOptions: (keys: readonly string[]) => WriteOptions = () => ({}),
  inBatch: (plan: ErasurePlan) => SQL[] = () => [],
): Promise<Erasure> {
  // What the events database's deletes removed, over every attempt.
  const removed = { events: 0, conversions: 0 };
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const elsewhere = seenElsewhere ? await seenElsewhere(await guestKeys(db, customerId)) : [];
    const plan = await erasurePlan(db, customerId, orderKey, elsewhere);
    const before = await eraseEvents(eventsDb, plan, now);
    removed.events += before.events;
    removed.conversions += before.conversions;
    removed.events += (await beforeBatch?.(plan))?.events ?? 0;
    try {
      const { deleted, suppressed } = await eraseWith(db, customerId, plan, now, elsewhere, inBatch(plan));
      const after = await eraseEvents(eventsDb, plan, now, true);
      deleted.events = (deleted.events ?? 0) + removed.events + after.events;
      deleted.conversions = removed.conversions + after.conversions;
      const again = [...plan.sharedKeys, ...plan.linkedKeys];
      await resolveAgain(db, eventsDb, again, now, resolveOptions(again));
      return { kind: "erased", deleted, suppressed, plan };
    } catch (error) {
      if (!isStaleRegion(error)) throw error;
      // Gone from this database (a shard's move took the customer): only the caller's retry finds them.
      if (!(await db.get(sql`SELECT 1 AS here FROM customers WHERE id = ${customerId}`))) return { kind: "busy" };
    }
  }
  return { kind: "busy" };
}

/**
 * After the erasure's batch: the shared identifiers it was seen with, decided again from the evidence
 * left (one shared only with the erased customer and one other becomes that other's again), and the
 * other customers its identify calls carried, resolved again without those calls. The erasure is done
 * whatever this answers: a refusal (busy, a region too large, a move's fence) leaves those identifiers
 * as they were, and is logged.
 */
async function resolveAgain(db: Db, eventsDb: EventsDb, keys: readonly string[], now: Date, options: WriteOptions) {
  if (keys.length === 0) return;
  const warning = "identifiers left as they were after an erasure";
  try {
    const outcome = await resolveAfterErasure(db, keys, now, options);
    if (outcome.kind === "resolved") await moveCustomerEvents(eventsDb, outcome.merged);
    else console.warn(JSON.stringify({ warning, reason: outcome.kind }));
  } catch (error) {
    console.warn(JSON.stringify({ warning, reason: String(error) }));
  }
}

/** The keys of the family's guest identifiers as this database sees them. */
async function guestKeys(db: Db, customerId: string): Promise<string[]> {
  const rows = await db.all<{ key: string }>(guestIdentifiers(familyOf(customerId)));
  return rows.map((row) => row.key);
}

/**
 * The migration's cursor (`patron shards migrate`, D1's shard_migration) when it names an erased
 * customer: the last customer a step visited, or in a catch-up's prune the last of a shard's page D1
 * held. A finished pass needs it no more (the next one starts from none); an unfinished one goes on
 * from the customer before it still there (all before it were visited), or its prune from the shard's
 * first page (what it dropped is not found again). A step under way records no customer this erasure
 * took either (migrate.ts, stillHeldUpTo).
 */
function migrationCursorWithout(customerIds: readonly string[]): SQL {
  const erased = sql`(SELECT value FROM ${jsonEach(customerIds)})`;
  const pruned = sql`substr(cursor, instr(cursor, ':') + 1)`;
  return sql`UPDATE shard_migration SET cursor = CASE
      WHEN finished_at IS NOT NULL THEN NULL
      WHEN mode = 'full' THEN (SELECT max(id) FROM customers WHERE id < shard_migration.cursor AND id NOT IN ${erased})
      WHEN phase = 'copy' THEN (SELECT max(customer_id) FROM shard_migration_changes
        WHERE customer_id < shard_migration.cursor AND customer_id NOT IN ${erased})
      WHEN phase = 'prune' THEN substr(cursor, 1, instr(cursor, ':'))
      ELSE cursor END
    WHERE cursor IN ${erased} OR (phase = 'prune' AND ${pruned} IN ${erased})`;
}

async function eraseWith(
  db: Db,
  customerId: string,
  plan: ErasurePlan,
  now: Date,
  seenElsewhere: readonly string[],
  extra: SQL[],
) {
  const family = familyOf(customerId);
  const [suppressIdentifiers, suppressOrders, forgetImportedIds] = suppressionStatements(plan, now);
  const suppress = [
    // NOT NULL on ingest_checks.ok aborts the batch when the customer has an order not read above,
    sql`INSERT INTO ingest_checks (ok) SELECT CASE WHEN NOT EXISTS (
          SELECT 1 FROM orders WHERE customer_id IN ${family}
            AND id NOT IN (SELECT value FROM ${jsonEach(plan.orderIds)})) THEN 1 END`,
    // or an identifier of its own not read above (the plan's identifiers are suppressed as they were read),
    sql`INSERT INTO ingest_checks (ok) SELECT CASE WHEN NOT EXISTS (
          SELECT 1 FROM (${ownIdentifiers(family, seenElsewhere)})
          WHERE key NOT IN (SELECT value ->> 'key' FROM ${jsonEach(plan.identifiers)})) THEN 1 END`,
    // or, in a customer shard, the customer's region left this shard since it was read (a move finished:
    // erasing here would leave its copy in the target), or a move that takes it began (its copy may be
    // in the target already). The retries then find it busy, and the caller's retry finds it where the
    // move left it. On D1 the customer stays and shard_moves is empty.
    sql`INSERT INTO ingest_checks (ok) SELECT CASE WHEN EXISTS (SELECT 1 FROM customers WHERE id = ${customerId})
          AND NOT EXISTS (SELECT 1 FROM shard_moves m, json_each(m.customers) c
            WHERE m.status IN ${unfinishedMove} AND c.value IN (SELECT value FROM ${jsonEach(plan.customerIds)})) THEN 1 END`,
    suppressIdentifiers,
    suppressOrders,
    // Identifiers that stay (shared with other people) lose any export match key they carried.
    sql`UPDATE identities SET match_key = NULL WHERE match_key IS NOT NULL
        AND key IN (SELECT identity_key FROM identity_observations WHERE source IN ${sourcesOf(family)})`,
    forgetImportedIds,
    // The customers a catch-up pass of `patron shards migrate` listed to copy again, by id: the list
    // stays in D1 once the deployment runs on the shards, where nothing else names them.
    sql`DELETE FROM shard_migration_changes WHERE customer_id IN (SELECT value FROM ${jsonEach(plan.customerIds)})`,
    migrationCursorWithout(plan.customerIds),
  ];
  const keys = sql`(SELECT key FROM identities WHERE customer_id IN ${family})`;
  // Its orders and the identify calls that vouched for its identifiers (read before anything is deleted).
  const sources = sourcesOf(family);
  const steps: [string, ReturnType<typeof sql>][] = [
    [
      // Identifiers seen only unverified, and only with this customer, are held by nobody: they go too.
      "identities",
      // (`+customer_id`: look the keys up from the customer's sources, not every identity held by nobody.)
      // One another database saw with somebody stays, as it stays on D1, where that sighting is.
      sql`DELETE FROM identities WHERE +customer_id IS NULL AND shared = 0
        AND key IN (SELECT identity_key FROM identity_observations WHERE source IN ${sources})
        AND NOT EXISTS (SELECT 1 FROM identity_observations o
          WHERE o.identity_key = identities.key AND o.source NOT IN ${sources})
        AND key NOT IN (SELECT value FROM ${jsonEach(seenElsewhere)})`,
    ],
    [
      "identity_observations",
      sql`DELETE FROM identity_observations WHERE source IN ${sources} OR identity_key IN ${keys}`,
    ],
    [
      "order_lines",
      sql`DELETE FROM order_lines WHERE order_id IN (SELECT id FROM orders WHERE customer_id IN ${family})`,
    ],
    ["customer_category_stats", sql`DELETE FROM customer_category_stats WHERE customer_id IN ${family}`],
    ["customer_products", sql`DELETE FROM customer_products WHERE customer_id IN ${family}`],
    ["customer_summaries", sql`DELETE FROM customer_summaries WHERE customer_id IN ${family}`],
    ["customer_scores", sql`DELETE FROM customer_scores WHERE customer_id IN ${family}`],
    ["customer_category_lapses", sql`DELETE FROM customer_category_lapses WHERE customer_id IN ${family}`],
    ["stage_transitions", sql`DELETE FROM stage_transitions WHERE customer_id IN ${family}`],
    ["customer_browse", sql`DELETE FROM customer_browse WHERE customer_id IN ${family}`],
    // Counted with the events database's under "events".
    ["events", sql`DELETE FROM legacy_events WHERE customer_id IN ${family}`],
    ["identities", sql`DELETE FROM identities WHERE customer_id IN ${family}`],
    ["orders", sql`DELETE FROM orders WHERE customer_id IN ${family}`],
    [
      "identity_merges",
      sql`DELETE FROM identity_merges WHERE from_customer_id IN ${family} OR into_customer_id IN ${family}`,
    ],
    // Last: the family is defined through this table.
    ["customers", sql`DELETE FROM customers WHERE id IN ${family}`],
  ];
  const results = await runBatch(db, [
    ...suppress,
    ...steps.map(([, statement]) => statement),
    ...extra,
    sql`DELETE FROM ingest_checks`,
  ]);
  const deleted: Record<string, number> = {};
  steps.forEach(([table], i) => {
    deleted[table] = (deleted[table] ?? 0) + (results[i + suppress.length]?.meta.changes ?? 0);
  });
  return {
    deleted,
    suppressed: {
      identifiers: results[suppress.indexOf(suppressIdentifiers)]?.meta.changes ?? 0,
      orders: results[suppress.indexOf(suppressOrders)]?.meta.changes ?? 0,
    },
  };
}
