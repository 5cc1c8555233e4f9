// D1 reads and writes of saved audiences: the audience rows (CRUD), and the nightly sync of the members
// of audiences with a webhook. A sync bumps the audience's sync_seq, marks every current member
// (walking the customer list's own index, a keyset page at a time) with it, then reads who joined
// (marked now, not yet delivered) and who left (delivered, not marked now) as ranges of
// audience_members_sync_idx. Members change state only once their receiver accepted the page naming
// them, so a failed delivery is sent again, with whatever else changed, by the next run.
import { type SQL, sql } from "drizzle-orm";
import { jsonEach, runBatch } from "../../db/batch.ts";
import type { audiences } from "../../db/schema.ts";
import {
  type ListedRow,
  type ListFilter,
  listCustomers,
  listedColumns,
  listQuery,
} from "../admin/customer-lists.repo.ts";
import type { Db } from "../env.ts";
import type { MatchKeyName } from "../identity/match-keys.ts";
import type { AudienceFilters } from "./audiences.schemas.ts";

export type AudienceRow = typeof audiences.$inferSelect;

export async function listAudiences(db: Db): Promise<AudienceRow[]> {
  return db.query.audiences.findMany({ orderBy: (a, { asc }) => [asc(a.createdAt), asc(a.id)] });
}

export async function findAudience(db: Db, id: string): Promise<AudienceRow | undefined> {
  return db.query.audiences.findFirst({ where: (a, { eq }) => eq(a.id, id) });
}

export async function countAudiences(db: Db): Promise<number> {
  const row = await db.get<{ n: number }>(sql`SELECT count(*) AS n FROM audiences`);
  return row?.n ?? 0;
}

/**
 * Saves a new audience unless `limit` are saved already or another one has its name (letter case aside),
 * both checked in the same statement, so two concurrent creations cannot both pass them.
 */
export async function insertAudience(
  db: Db,
  row: typeof audiences.$inferInsert,
  limit: number,
): Promise<"saved" | "limit" | "name_taken"> {
  const result = await db.run(sql`
    INSERT INTO audiences (id, name, filters, webhook_url, match_keys, secret, created_at, updated_at)
    SELECT ${row.id}, ${row.name}, ${JSON.stringify(row.filters)}, ${row.webhookUrl ?? null},
      ${JSON.stringify(row.matchKeys)}, ${row.secret}, ${row.createdAt}, ${row.updatedAt}
    WHERE (SELECT count(*) FROM audiences) < ${limit}
      AND NOT EXISTS (SELECT 1 FROM audiences WHERE name = ${row.name} COLLATE NOCASE)`);
  if (result.meta.changes > 0) return "saved";
  return (await nameTaken(db, row.name)) ? "name_taken" : "limit";
}

/** Whether an audience has this name, letter case aside. */
async function nameTaken(db: Db, name: string): Promise<boolean> {
  const found = await db.get<{ id: string }>(sql`SELECT id FROM audiences WHERE name = ${name} COLLATE NOCASE LIMIT 1`);
  return found !== undefined;
}

export interface AudienceChange {
  name?: string;
  filters?: AudienceFilters;
  webhookUrl?: string | null;
  matchKeys?: MatchKeyName[];
  secret?: string;
}

/**
 * Applies `change` (absent fields stay). A new or removed webhook URL forgets what the old receiver
 * was told, so the new one gets every member as joined at the next run. "name_taken" when it renames
 * the audience to another one's name (letter case aside), checked in the same statements as the
 * write, so two renames at once cannot both take a name; undefined when there is no such audience.
 */
export async function updateAudience(
  db: Db,
  id: string,
  change: AudienceChange,
  now: Date,
): Promise<AudienceRow | "name_taken" | undefined> {
  const current = await findAudience(db, id);
  if (!current) return undefined;
  const receiverChanged = change.webhookUrl !== undefined && change.webhookUrl !== current.webhookUrl;
  const filtersChanged =
    change.filters !== undefined && JSON.stringify(change.filters) !== JSON.stringify(current.filters);
  const next = { ...current, ...definedFields(change), updatedAt: now.toISOString() };
  // Every statement of the batch writes only when the new name is free (or not new).
  const nameFree =
    next.name === current.name
      ? sql`1`
      : sql`NOT EXISTS (SELECT 1 FROM audiences WHERE name = ${next.name} COLLATE NOCASE AND id <> ${id})`;
  const [updated] = await runBatch(db, [
    // A page held for the old receiver is not sent to the new one (its sync starts over).
    sql`
      UPDATE audiences SET name = ${next.name}, filters = ${JSON.stringify(next.filters)},
        webhook_url = ${next.webhookUrl}, match_keys = ${JSON.stringify(next.matchKeys)}, secret = ${next.secret},
        updated_at = ${next.updatedAt}${receiverChanged ? sql`, sync_pending_page = NULL` : sql``}
        ${filtersChanged ? sql`, size = NULL, sized_at = NULL` : sql``}
      WHERE id = ${id} AND ${nameFree}`,
    ...(receiverChanged ? [purgeMembersLater(id, now, nameFree)] : []),
  ]);
  // New filters: the old size counted another list (the caller sizes it again).
  if ((updated?.meta.changes ?? 0) > 0) return filtersChanged ? { ...next, size: null, sizedAt: null } : next;
  // Nothing written: the audience is gone, or (it is still there) the new name was taken.
  return next.name !== current.name && (await findAudience(db, id)) ? "name_taken" : undefined;
}

const definedFields = <T extends object>(value: T) =>
  Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;

/** Deletes the audience, its members left to the nightly job's purge; false when there was none. */
export async function deleteAudience(db: Db, id: string, now: Date): Promise<boolean> {
  const [, deleted] = await runBatch(db, [purgeMembersLater(id, now), sql`DELETE FROM audiences WHERE id = ${id}`]);
  return (deleted?.meta.changes ?? 0) > 0;
}

/**
 * An erasure reaches the pages held for delivery (audiences.sync_pending_page holds whole rows): a held
 * joined page naming an erased customer is let go and its number skipped, so its id is never sent
 * with other content; its other members come in a later page, and the erased ones count as told
 * joined, so the next run tells the receiver (which may have taken the page) that they left. Answers
 * how many pages were let go.
 */
export async function dropHeldPagesNaming(db: Db, customerIds: readonly string[]): Promise<number> {
  if (customerIds.length === 0) return 0;
  const erased = new Set(customerIds);
  const held = await db.all<{ id: string; pending: string }>(sql`
    SELECT id, sync_pending_page AS pending FROM audiences WHERE sync_pending_page IS NOT NULL`);
  let dropped = 0;
  for (const { id, pending } of held) {
    const page = JSON.parse(pending) as PendingPage;
    const named = page.customerIds.filter((customerId) => erased.has(customerId));
    if (page.kind !== "joined" || named.length === 0) continue;
    const [, letGo] = await runBatch(db, [
      sql`UPDATE audience_members SET delivered = 1
          WHERE audience_id = ${id} AND customer_id IN (SELECT value FROM ${jsonEach(named)})
          AND EXISTS (SELECT 1 FROM audiences WHERE id = ${id} AND sync_pending_page = ${pending})`,
      sql`UPDATE audiences SET sync_pending_page = NULL, sync_pages_sent = sync_pages_sent + 1
          WHERE id = ${id} AND sync_pending_page = ${pending}`,
    ]);
    dropped += letGo?.meta.changes ?? 0;
  }
  return dropped;
}

/**
 * Records that the audience's members are to be forgotten (purgeMembers deletes them), when there is
 * such an audience (a request for none writes nothing). Until then its sync does not start (startSync)
 * and exports leave them out.
 */
const purgeMembersLater = (id: string, now: Date, also: SQL = sql`1`) => sql`
  INSERT INTO audience_member_purges (audience_id, requested_at)
  SELECT id, ${now.toISOString()} FROM audiences WHERE id = ${id} AND ${also}
  ON CONFLICT (audience_id) DO UPDATE SET requested_at = excluded.requested_at`;

/**
 * Deletes up to `pages` pages of `pageSize` members of the audiences to forget, oldest request first,
 * letting a request go once its audience has no members left (unless it was made again meanwhile).
 * Answers the members deleted and whether requests are left.
 */
export async function purgeMembers(
  db: Db,
  pageSize: number,
  pages: number,
): Promise<{ purged: number; left: boolean }> {
  let purged = 0;
  for (let page = 0; page < pages; page++) {
    const request = await db.get<{ audienceId: string; requestedAt: string }>(sql`
      SELECT audience_id AS audienceId, requested_at AS requestedAt FROM audience_member_purges
      ORDER BY requested_at, audience_id LIMIT 1`);
    if (!request) return { purged, left: false };
    const deleted = await db.run(sql`
      DELETE FROM audience_members WHERE audience_id = ${request.audienceId} AND customer_id IN (
        SELECT customer_id FROM audience_members WHERE audience_id = ${request.audienceId} LIMIT ${pageSize})`);
    purged += deleted.meta.changes;
    if (deleted.meta.changes < pageSize)
      await db.run(sql`
        DELETE FROM audience_member_purges
        WHERE audience_id = ${request.audienceId} AND requested_at = ${request.requestedAt}`);
  }
  const left = await db.get(sql`SELECT 1 AS one FROM audience_member_purges LIMIT 1`);
  return { purged, left: left !== undefined };
}

// ---- The nightly sync ----------------------------------------------------------------------------

/** The customer-list filter of an audience, walked on the list's default index (CLV at stake, descending). */
export function audienceListFilter(filters: AudienceFilters, limit: number, after?: ListFilter["after"]): ListFilter {
  return { ...filters, column: "clv_at_stake", descending: true, after, limit };
}

/**
 * Starts a sync: the audience's next sync_seq. Undefined when the audience was deleted meanwhile, or
 * its members are still to be forgotten (a new receiver since this run's purge): the next run syncs it.
 */
export async function startSync(db: Db, id: string): Promise<number | undefined> {
  const row = await db.get<{ seq: number }>(sql`
    UPDATE audiences SET sync_seq = sync_seq + 1, sync_pages_sent = 0, sync_pending_page = NULL, sync_status_code = NULL
    WHERE id = ${id} AND NOT EXISTS (SELECT 1 FROM audience_member_purges WHERE audience_id = ${id})
    RETURNING sync_seq AS seq`);
  return row?.seq;
}

/**
 * Marks one keyset page of the audience's current members with `seq` (new members are inserted as not
 * delivered; none once the audience is deleted mid-run). The page is read by `list`: from `db` itself,
 * or from a customer shard. A mark never goes back: a run that started
 * earlier cannot make a later run take current members for leavers. Returns how many were marked and where the next page starts (null after the last).
 */
export async function markMembersPage(
  db: Db,
  id: string,
  seq: number,
  filters: AudienceFilters,
  after: ListFilter["after"],
  limit: number,
  list: (filter: ListFilter) => Promise<ListedRow[]> = (filter) => listCustomers(db, filter),
  shard = 0,
) {
  const rows = await list(audienceListFilter(filters, limit, after));
  if (rows.length > 0)
    await db.run(sql`
      INSERT INTO audience_members (audience_id, customer_id, seen_seq, delivered, shard)
      SELECT ${id}, value, ${seq}, 0, ${shard} FROM ${jsonEach(rows.map((row) => row.customerId))}
      WHERE EXISTS (SELECT 1 FROM audiences WHERE id = ${id})
      ON CONFLICT (audience_id, customer_id) DO UPDATE
        SET seen_seq = max(seen_seq, excluded.seen_seq), shard = excluded.shard`);
  const last = rows[rows.length - 1];
  return {
    marked: rows.length,
    after: rows.length === limit && last ? { value: last.sortValue, customerId: last.customerId } : null,
  };
}

/** Members of an audience without a webhook, counted on the list's index (nothing is stored for them). */
export async function countMembers(db: Db, filters: AudienceFilters): Promise<number> {
  const row = await db.get<{ n: number }>(sql`
    SELECT count(*) AS n FROM (${listQuery(audienceListFilter(filters, -1))})`);
  return row?.n ?? 0;
}

/** The sync's member reads, each a range of audience_members_sync_idx (the tests check the plans). */
export const memberQueries = {
  pending: (id: string, seq: number) => sql`
    SELECT
      (SELECT count(*) FROM audience_members WHERE audience_id = ${id} AND delivered = 0 AND seen_seq = ${seq}) AS joined,
      (SELECT count(*) FROM audience_members WHERE audience_id = ${id} AND delivered = 1 AND seen_seq < ${seq}) AS left`,
  joined: (id: string, seq: number, limit: number) => sql`
    SELECT customer_id AS customerId, shard FROM audience_members
    WHERE audience_id = ${id} AND delivered = 0 AND seen_seq = ${seq} ORDER BY shard, customer_id LIMIT ${limit}`,
  left: (id: string, seq: number, limit: number) => sql`
    SELECT customer_id AS customerId FROM audience_members
    WHERE audience_id = ${id} AND delivered = 1 AND seen_seq < ${seq}
    ORDER BY seen_seq, shard, customer_id LIMIT ${limit}`,
  undelivered: (id: string, seq: number) => sql`
    DELETE FROM audience_members WHERE audience_id = ${id} AND delivered = 0 AND seen_seq < ${seq}`,
};

/** How many joined and left this sync will send. */
export async function pendingChanges(db: Db, id: string, seq: number) {
  const row = await db.get<{ joined: number; left: number }>(memberQueries.pending(id, seq));
  return { joined: row?.joined ?? 0, left: row?.left ?? 0 };
}

/** A member as the sync found them: the customer, and the shard they were listed in. */
export interface Member {
  customerId: string;
  shard: number;
}

/** These members of the audience, with the shard each was found in (a held page's, to look them up again). */
export async function membersNamed(db: Db, id: string, customerIds: readonly string[]): Promise<Member[]> {
  const rows = await db.all<Member>(sql`
    SELECT customer_id AS customerId, shard FROM audience_members
    WHERE audience_id = ${id} AND customer_id IN (SELECT value FROM ${jsonEach(customerIds)})
    ORDER BY shard, customer_id`);
  return rows.map((row) => ({ customerId: String(row.customerId), shard: Number(row.shard) }));
}

/** The first `limit` members who joined and have not been delivered yet, by shard and customer id. */
export async function joinedPage(db: Db, id: string, seq: number, limit: number): Promise<Member[]> {
  const rows = await db.all<Member>(memberQueries.joined(id, seq, limit));
  return rows.map((row) => ({ customerId: String(row.customerId), shard: Number(row.shard) }));
}

/** The first `limit` delivered members this sync no longer found in the audience. */
export async function leftPage(db: Db, id: string, seq: number, limit: number): Promise<string[]> {
  const rows = await db.all<{ customerId: string }>(memberQueries.left(id, seq, limit));
  return rows.map((row) => row.customerId);
}

/** A page of webhook changes as it is sent: kept before its POST, so every try sends it unchanged. */
export interface PendingPage {
  seq: number;
  page: number;
  kind: "joined" | "left";
  customerIds: string[];
  body: string;
}

/** The page sync `seq` of the audience is delivering, if any (written by `holdPage`). */
export function pendingPage(audience: AudienceRow, seq: number): PendingPage | null {
  if (!audience.syncPendingPage) return null;
  const pending = JSON.parse(audience.syncPendingPage) as PendingPage;
  return pending.seq === seq && pending.page === audience.syncPagesSent + 1 ? pending : null;
}

/**
 * Keeps the page about to be POSTed to `url`: false (nothing kept, nothing to send) when a later sync
 * started meanwhile, the audience was given another receiver, the page's number is no longer the next,
 * or another try of the delivery holds a page of its own under that number (one delivery id, one body).
 */
export async function holdPage(db: Db, id: string, pending: PendingPage, url: string): Promise<boolean> {
  const page = JSON.stringify(pending);
  const held = await db.run(sql`
    UPDATE audiences SET sync_pending_page = ${page}
    WHERE id = ${id} AND sync_seq = ${pending.seq} AND sync_pages_sent = ${pending.page - 1}
      AND webhook_url = ${url}
      AND NOT coalesce(sync_pending_page ->> 'seq' = ${pending.seq} AND sync_pending_page ->> 'page' = ${pending.page}
        AND sync_pending_page != ${page}, false)`);
  return held.meta.changes > 0;
}

/**
 * Their receiver accepted a page of sync `seq` naming these members as `kind`, answering `statusCode`:
 * joined members are marked delivered, leavers forgotten, the sync's count of pages sent goes up, the
 * status code is kept and the held page is let go, in one batch, so the next page's number always
 * follows the members already told.
 */
export async function pageAccepted(
  db: Db,
  id: string,
  pending: Pick<PendingPage, "seq" | "page" | "kind" | "customerIds">,
  statusCode: number,
) {
  const { seq, page, kind, customerIds } = pending;
  // Whether this page is still the sync's next one. A page accepted after a later run started (or a
  // second time, by an overlapping try) still records what its receiver now knows, without forgetting
  // a member the later run may have found: joined members are told; leavers become untold, so the later
  // run tells them joined if they are members again, and drops them otherwise.
  const current = sql`EXISTS (SELECT 1 FROM audiences
    WHERE id = ${id} AND sync_seq = ${seq} AND sync_pages_sent = ${page - 1})`;
  const members = sql`audience_id = ${id} AND customer_id IN (SELECT value FROM ${jsonEach(customerIds)})`;
  await runBatch(db, [
    ...(kind === "joined"
      ? [sql`UPDATE audience_members SET delivered = 1 WHERE ${members}`]
      : [
          sql`DELETE FROM audience_members WHERE ${members} AND ${current}`,
          sql`UPDATE audience_members SET delivered = 0 WHERE ${members} AND NOT ${current}`,
        ]),
    sql`
      UPDATE audiences
      SET sync_pages_sent = sync_pages_sent + 1, sync_pending_page = NULL, sync_status_code = ${statusCode}
      WHERE id = ${id} AND sync_seq = ${seq} AND sync_pages_sent = ${page - 1}`,
  ]);
}

const removeQuery = (id: string, customerIds: readonly string[]) => sql`
  DELETE FROM audience_members
  WHERE audience_id = ${id} AND customer_id IN (SELECT value FROM ${jsonEach(customerIds)})`;

/** There is nothing to tell about these members (joined, then erased before they were sent). */
export async function removeMembers(db: Db, id: string, customerIds: readonly string[]) {
  if (customerIds.length === 0) return;
  await db.run(removeQuery(id, customerIds));
}

/** Forgets members who left before their receiver was ever told they joined: there is nothing to undo. */
export async function dropUndelivered(db: Db, id: string, seq: number) {
  await db.run(memberQueries.undelivered(id, seq));
}

/** The scored rows of these customers (those still scored), in the list's shape. */
export async function scoredCustomers(db: Db, customerIds: readonly string[]): Promise<ListedRow[]> {
  if (customerIds.length === 0) return [];
  return db.all<ListedRow>(sql`
    SELECT ${listedColumns}, 0 AS sortValue
    FROM customer_scores s WHERE s.customer_id IN (SELECT value FROM ${jsonEach(customerIds)})
    ORDER BY s.customer_id`);
}

/** Members of the audiences with a webhook as last counted: the rows their sync keeps in D1, near enough. */
export async function webhookAudienceMembers(db: Db): Promise<number> {
  const row = await db.get<{ n: number }>(
    sql`SELECT coalesce(sum(size), 0) AS n FROM audiences WHERE webhook_url IS NOT NULL`,
  );
  return row?.n ?? 0;
}

/**
 * Records an audience's size, counted with `filters`: not when its filters changed since (a PATCH
 * during the count), whose own count, or the next run's, is the one to keep.
 */
export async function recordSize(db: Db, id: string, size: number, at: Date, filters: AudienceFilters) {
  await db.run(sql`UPDATE audiences SET size = ${size}, sized_at = ${at.toISOString()}
    WHERE id = ${id} AND filters = ${JSON.stringify(filters)}`);
}

export interface DeliveryRecord {
  at: Date;
  runId: string;
  outcome: "delivered" | "failed" | "no_changes";
  statusCode: number | null;
  error: string | null;
  joined: number;
  left: number;
}

export async function recordDelivery(db: Db, id: string, delivery: DeliveryRecord) {
  await db.run(sql`
    UPDATE audiences SET last_delivery_at = ${delivery.at.toISOString()}, last_delivery_run_id = ${delivery.runId},
      last_delivery_outcome = ${delivery.outcome}, last_delivery_status_code = ${delivery.statusCode},
      last_delivery_error = ${delivery.error}, last_delivery_joined = ${delivery.joined},
      last_delivery_left = ${delivery.left}
    WHERE id = ${id}`);
}
