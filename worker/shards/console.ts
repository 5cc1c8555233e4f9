// The console's reads and a customer's export and erasure when customer data is in customer shards
// (SHARD_COUNT > 0, docs/scaling.md): one customer is read at the home shard of `customer:<id>`, which
// forwards once to where its directory places the customer; a list is asked of every shard in parallel
// (each answers its own first rows in the list's order) and merged (worker/core/shards/merge.ts).
import type { SegmentCustomerRow, SegmentFilter, SegmentGroupRow } from "../admin/admin.repo.ts";
import type { ListedRow, ListFilter } from "../admin/customer-lists.repo.ts";
import type { CustomerListSource } from "../admin/customer-lists.routes.ts";
import { matchKeyMap } from "../admin/customer-rows.ts";
import type { AudienceFilters } from "../audiences/audiences.schemas.ts";
import type { HoldersPart } from "../core/identity/holders.ts";
import { allCalls } from "../core/shards/calls.ts";
import { mergeSorted, sqlOrder, sumGroups } from "../core/shards/merge.ts";
import { customerKey } from "../core/shards/placement.ts";
import type { Env } from "../env.ts";
import { matchKeyKind } from "../identity/match-keys.ts";
import type { TransitionRow } from "../jobs/nightly.repo.ts";
import { scrubEverywhere } from "./erasure-scrubs.ts";
import { everyShard, homeStub, shardCount } from "./shards.ts";

type ShardEnv = Pick<Env, "CUSTOMER_SHARDS" | "SHARD_COUNT">;

/** The customer's home shard (where `customer:<id>` is placed, or says where the customer moved). */
const customerHome = (env: ShardEnv, customerId: string) => homeStub(env, customerKey(customerId));

/** GET /v1/customers/:id/history's reads from the shards: the survivor and their orders; null: no such customer. */
export async function shardedCustomerHistory(env: ShardEnv, customerId: string) {
  return customerHome(env, customerId).customerHistory(customerId);
}

/** GET /v1/customers/:id/shelf's customer reads from the shards; null: no such customer. */
export async function shardedCustomerShelf(env: ShardEnv, customerId: string, now: Date) {
  return customerHome(env, customerId).customerShelf(customerId, now.toISOString());
}

/** The export's customer-table rows from the shards; null: no such customer. */
export async function shardedCustomerExport(env: ShardEnv, customerId: string) {
  return customerHome(env, customerId).customerExport(customerId);
}

/** POST /v1/admin/rules/preview's customer read from the shards; null: no such customer. */
export async function shardedCustomerShopper(env: ShardEnv, customerId: string, now: Date) {
  return customerHome(env, customerId).customerShopper(customerId, now.toISOString());
}

/**
 * GET /v1/customers/holders over every shard: each answers its own customers with the identifier (first
 * `limit` by id, along its identity_observations key index). Every shard is asked: the key's home
 * places only its verified region, and an order that carried it unverified can be in any shard.
 */
export async function shardedHolders(env: ShardEnv, key: string, limit: number): Promise<HoldersPart[]> {
  return Promise.all(everyShard(env).map((shard) => shard.holders(key, limit)));
}

/**
 * POST /v1/admin/rules/simulate's sample over every shard: the first `size` known shoppers by id of
 * the whole store (the merge of each shard's first `size`), as the one database samples them.
 */
export async function shardedShopperSample(env: ShardEnv, size: number, now: Date) {
  const samples = await Promise.all(everyShard(env).map((shard) => shard.shopperSample(size, now.toISOString())));
  return mergeSorted(samples, sqlOrder([(row) => row.customerId, "asc"]), size);
}

/**
 * DELETE /v1/customers/:id with customer data in shards. The shard holding the customer runs the
 * erasure (events database first, the main database's suppression list, then its own batch with its
 * own suppression rows, then the events once more) and keeps the rest as a to-do; then the directory
 * entries of everything erased are deleted at their homes, and every shard scrubs it from its records
 * of finished moves and their fences (a region may have passed through any shard) and its identifiers
 * from the sightings on its records (erasure-scrubs.ts). If that fails, the erasure stands and the
 * erasing shard's alarm finishes it; either way the alarm runs it once more later. Null: no such customer.
 */
export async function shardedErasure(env: ShardEnv, customerId: string, now: Date) {
  const erased = await customerHome(env, customerId).eraseCustomer(
    customerId,
    now.toISOString(),
    false,
    shardCount(env),
  );
  if (!erased) return null;
  if (erased.erasure.kind === "erased") {
    const { plan, deleted } = erased.erasure;
    try {
      // Its identifiers' sightings on other shards' records count as those on the erasing shard's do.
      const sightings = await scrubEverywhere(env, { ...plan, shard: erased.shard });
      deleted.identity_observations = (deleted.identity_observations ?? 0) + sightings;
    } catch (error) {
      console.warn(
        JSON.stringify({
          warning: "erasure: a shard's scrub failed; the erasing shard's alarm finishes it",
          shard: erased.shard,
          error: error instanceof Error ? error.message : String(error),
        }),
      );
    }
  }
  return { customerId: erased.customerId, erasure: erased.erasure };
}

/** How many customers an audience's filters select now: each shard's count of its own, summed. */
export async function shardedAudienceCount(env: ShardEnv, filters: AudienceFilters): Promise<number> {
  const counts = await allCalls(everyShard(env).map((shard) => shard.nightlyAudienceCount(filters)));
  return counts.reduce((sum, n) => sum + n, 0);
}

/**
 * Lifts a suppression from every shard's own list (an erasure put its keys in the shard that held the
 * customer, which one is not recorded once the customer is gone).
 */
export async function liftSuppressionInShards(env: ShardEnv, key: string) {
  await allCalls(everyShard(env).map((shard) => shard.liftSuppression(key, shardCount(env))));
}

/** The list's order: its sort column, then customer id, both in the asked direction. */
const listOrder = (filter: ListFilter) => {
  const direction = filter.descending ? "desc" : "asc";
  return sqlOrder<ListedRow>([(row) => row.sortValue, direction], [(row) => row.customerId, direction]);
};

/**
 * The console's customer lists over every shard: each shard answers its first `limit` rows after the
 * cursor, and the page is the first `limit` of their merge, so the cursor (the last row's sort value
 * and id) is valid in every shard.
 */
export function shardedList(env: ShardEnv): CustomerListSource {
  return {
    async list(filter) {
      const pages = await Promise.all(everyShard(env).map((shard) => shard.listPage(filter)));
      return mergeSorted(pages, listOrder(filter), filter.limit);
    },
    async matchKeys(rows, names) {
      const ids = rows.map((row) => row.customerId);
      const kinds = names.map((name) => matchKeyKind[name]);
      // A customer is in one shard, so each customer's keys come from one answer, in its order.
      const found = await Promise.all(everyShard(env).map((shard) => shard.matchKeys(ids, kinds)));
      return matchKeyMap(found.flat(), names);
    },
  };
}

const segmentOrder = sqlOrder<SegmentCustomerRow>([(row) => row.clv12, "desc"], [(row) => row.customerId, "asc"]);
const groupOrder = sqlOrder<SegmentGroupRow>([(row) => row.stage, "asc"], [(row) => row.valueTier, "asc"]);

/**
 * GET /v1/admin/segments over every shard: the page (`offset`, `limit`) of the merge of every shard's
 * first `offset + limit` customers, and the stage × tier counts and CLV sums added up, then rounded.
 */
export async function shardedSegment(env: ShardEnv, filter: SegmentFilter) {
  const parts = await Promise.all(everyShard(env).map((shard) => shard.segmentPart(filter)));
  const customers = mergeSorted(
    parts.map((part) => part.customers),
    segmentOrder,
    filter.offset + filter.limit,
  ).slice(filter.offset);
  const groups = sumGroups(
    parts.map((part) => part.summary),
    (row) => JSON.stringify([row.stage, row.valueTier]),
    (total, row) => ({ ...total, customers: total.customers + row.customers, clv12: total.clv12 + row.clv12 }),
  );
  const summary = groups.sort(groupOrder).map((group) => ({ ...group, clv12: Math.round(group.clv12 * 100) / 100 }));
  return { customers, summary };
}

/**
 * GET /v1/admin/transitions over every shard: each shard's first `limit` transitions since `since` with
 * feed ids after `after` and below `below` (worker/jobs/transitions-feed.repo.ts), merged in feed-id order.
 */
export async function shardedTransitions(env: ShardEnv, since: string, after: number, below: number, limit: number) {
  const pages = await Promise.all(
    everyShard(env).map((shard): Promise<TransitionRow[]> => shard.transitionsFeed(since, after, below, limit)),
  );
  return mergeSorted(pages, sqlOrder<TransitionRow>([(row) => row.id, "asc"]), limit);
}

/**
 * GET /v1/admin/transitions/summary over every shard: the changes by kind added up, and the newest
 * `recent` of all shards' newest, by feed id.
 */
export async function shardedTransitionSummary(env: ShardEnv, since: string, below: number, recent: number) {
  const parts = await Promise.all(everyShard(env).map((shard) => shard.transitionSummary(since, below, recent)));
  const kinds = sumGroups(
    parts.map((part) => part.kinds),
    (row) => JSON.stringify([row.from_stage, row.to_stage]),
    (total, row) => ({ ...total, changes: total.changes + row.changes }),
  );
  const newest = mergeSorted(
    parts.map((part) => part.recent),
    sqlOrder<TransitionRow>([(row) => row.id, "desc"]),
    recent,
  );
  return { kinds, recent: newest };
}
