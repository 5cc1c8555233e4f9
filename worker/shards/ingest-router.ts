// Ingestion with customer data in shards (docs/scaling.md, ingestion across shards): POST /v1/orders,
// POST /v1/identify and the import consumer call these instead of `ingestOrders` / `identify` when
// SHARD_COUNT > 0, and get the same answers.
//
// The router hashes the identifiers, drops what D1's suppression list refuses, splits the batch into
// groups that must be ingested together (core/shards/groups.ts), locates their keys at their home
// shards, moves regions that sit in other shards into each group's target (moves.ts), claims the
// unknown keys for the target, and calls the target once with all its groups. A claim that lost, a
// move under way, or a target that answers `moved` sends the group round again (bounded, then the
// same `busy` refusal as D1).

import { orderSource } from "../core/identity/plan.ts";
import { type GroupItem, groupItems, type ItemGroup, sourcesToMove, targetShard } from "../core/shards/groups.ts";
import { homeShard } from "../core/shards/placement.ts";
import type { Db, Env } from "../env.ts";
import type { Conversion } from "../events/conversions.repo.ts";
import { type HashedIdentity, hashIdentifiers, identifySource, suppressionKeysOf } from "../identity/identity.keys.ts";
import { enabledMatchKeys, matchKinds } from "../identity/match-keys.ts";
import { phoneRegion } from "../identity/phone.ts";
import {
  type CustomerMerge,
  changedCount,
  duplicateResult,
  type IdentifyResult,
  type IngestRefusal,
  type IngestResult,
} from "../orders/ingest.ts";
import type { IdentifiersInput, OrderInput } from "../orders/orders.schemas.ts";
import { orderSuppressionKey, suppressedKeys } from "../suppressions/suppressions.repo.ts";
import type { Placement } from "./directory.ts";
import { shardCount, shardStub } from "./shards.ts";

/** Rounds of locate → move → claim → ingest before a group that keeps meeting other writers gives up. */
const maxRounds = 6;

/** A short, growing, jittered wait before a round again, so racing routers do not meet again at once. */
const pause = (round: number) => new Promise((resolve) => setTimeout(resolve, 10 * round + Math.random() * 20));

export type ShardedIngestOutcome =
  | {
      kind: "ingested";
      result: IngestResult;
      merged: CustomerMerge[];
      /** Stored conversions of resent orders, from the shards that hold them. */
      resent: Conversion[];
      /** Orders stored with `now` as their created_at (the import consumer's read-back). */
      writtenAt: Map<string, string | null>;
    }
  | IngestRefusal;

type Shards = Pick<Env, "CUSTOMER_SHARDS" | "SHARD_COUNT">;

const unverifiedKeys = (identities: readonly HashedIdentity[]) =>
  identities.filter((identity) => identity.trust === "unverified").map(({ key }) => key);

const verifiedRefs = (identities: readonly HashedIdentity[]) =>
  identities.filter((identity) => identity.trust === "verified").map(({ kind, key }) => ({ kind, key }));

/** Items grouped by a number (a shard), in first-seen order. */
function byShard<T>(items: Iterable<T>, shardOf: (item: T) => number): Map<number, T[]> {
  const grouped = new Map<number, T[]>();
  for (const item of items) {
    const shard = shardOf(item);
    const list = grouped.get(shard);
    if (list) list.push(item);
    else grouped.set(shard, [item]);
  }
  return grouped;
}

const orderKey = (order: OrderInput) => orderSource(order.id);

/**
 * The directory entries of orders `target` holds away from their home (at home, the home finds them):
 * those it just stored, and those it answered as duplicates although no entry had found them (stored
 * when writing the entry failed, or before entries were kept), so they are found from now on.
 */
function entriesOfStored(results: IngestResult["results"], target: number, count: number): Placement[] {
  return results
    .filter((entry) => entry.status === "created" || entry.status === "duplicate")
    .map((entry) => ({ key: orderSource(entry.id), shard: target }))
    .filter((entry) => homeShard(entry.key, count) !== target);
}

/** Each key's placement, asking every home shard once for all of its keys, in parallel. */
async function locateAll(env: Shards, keys: readonly string[]): Promise<Map<string, number | null>> {
  const count = shardCount(env);
  const byHome = byShard(new Set(keys), (key) => homeShard(key, count));
  const answers = await Promise.all([...byHome].map(([home, homeKeys]) => shardStub(env, home).locate(homeKeys)));
  return new Map(answers.flatMap((answer) => Object.entries(answer)));
}

/** Claims entries at their homes (one call per home shard); answers each key's placement now recorded. */
async function claimAll(env: Shards, entries: readonly Placement[]): Promise<Map<string, number>> {
  const count = shardCount(env);
  const byHome = byShard(entries, (entry) => homeShard(entry.key, count));
  const answers = await Promise.all(
    [...byHome].map(([home, homeEntries]) => shardStub(env, home).claim(homeEntries, count)),
  );
  return new Map(answers.flat().map(({ key, shard }) => [key, shard]));
}

/** What a planned group needs before its target can ingest it. */
interface Plan {
  group: ItemGroup;
  target: number;
}

/**
 * Places groups: for every group, its target with its regions moved there and its unknown keys
 * claimed for it. Answers the groups ready to ingest (the others go round again) or a refusal.
 * `seen[i]`: the unverified keys of item i. They place nothing, but one never placed is claimed for
 * the shard that records it first, so a lookup finds the identifier (and says it identifies nobody).
 * `located`: the placements read already for this round (the first round reuses the batch's lookup).
 */
async function place(
  env: Shards,
  groups: readonly ItemGroup[],
  items: readonly GroupItem[],
  seen: readonly (readonly string[])[],
  located?: ReadonlyMap<string, number | null>,
): Promise<{ ready: Plan[]; claimed: boolean } | IngestRefusal> {
  const count = shardCount(env);
  const placements =
    located ??
    (await locateAll(
      env,
      groups.flatMap((group) =>
        group.keys.length > 0 ? group.keys : [(items[group.items[0] as number] as GroupItem).ownKey],
      ),
    ));
  const plans = groups.map((group) => ({ group, target: targetShard(group, items, placements, count) }));
  // Regions in other shards move into the target first: one call per (group, source shard).
  const moves = await Promise.all(
    plans.map((plan) =>
      Promise.all(
        [...sourcesToMove(plan.group, placements, plan.target)].map(([source, keys]) =>
          shardStub(env, source).moveOut(keys, plan.target, count),
        ),
      ),
    ),
  );
  for (const outcomes of moves) {
    const tooLarge = outcomes.find((outcome) => outcome.kind === "region_too_large");
    if (tooLarge) return tooLarge;
  }
  const moved = plans.filter((_, i) => (moves[i] ?? []).every((outcome) => outcome.kind === "moved"));
  // Unknown keys are claimed for the target; a claim that lost sends its group round again. Seen
  // (unverified) keys come after, so a verified claim of the same key wins.
  const claims = await claimAll(env, [
    ...moved.flatMap(({ group, target }) =>
      group.keys.filter((key) => placements.get(key) == null).map((key) => ({ key, shard: target })),
    ),
    ...moved.flatMap(({ group, target }) =>
      [...new Set(group.items.flatMap((index) => seen[index] ?? []))]
        .filter((key) => !group.keys.includes(key))
        .map((key) => ({ key, shard: target })),
    ),
  ]);
  return {
    ready: moved.filter(({ group, target }) =>
      group.keys.every((key) => placements.get(key) != null || claims.get(key) === target),
    ),
    claimed: moved.some(({ group }) => group.keys.some((key) => placements.get(key) == null)),
  };
}

/**
 * True when any of `keys` went on D1's suppression list since it was read at the start. An erasure
 * writes the list before it deletes its directory entries, so an identifier erased while this request
 * located it can come back unknown and be claimed for a shard whose own list never had it: read the
 * list again once new keys are claimed, and answer busy (the retry finds the key suppressed).
 */
async function erasedMeanwhile(d1: Db, keys: readonly string[], known: ReadonlySet<string>): Promise<boolean> {
  const fresh = [...new Set(keys)].filter((key) => !known.has(key));
  if (fresh.length === 0) return false;
  return (await suppressedKeys(d1, fresh)).size > 0;
}

/** Sorts ignored identifiers by the index of their order, keeping each order's own order (as D1 lists them). */
const byIndex = (list: IngestResult["ignoredIdentifiers"]) =>
  list
    .map((item, at) => ({ item, at }))
    .sort((a, b) => a.item.index - b.item.index || a.at - b.at)
    .map(({ item }) => item);

/** POST /v1/orders (and an import batch) into the customer shards: the outcome `ingestOrders` gives on D1. */
export async function ingestSharded(env: Env, d1: Db, orders: OrderInput[], now: Date): Promise<ShardedIngestOutcome> {
  const hashed = await Promise.all(
    orders.map((order) =>
      hashIdentifiers(
        order.identifiers,
        env.IDENTITY_HASH_SECRET,
        phoneRegion(env.PHONE_DEFAULT_REGION),
        matchKinds(enabledMatchKeys(env.EXPORT_MATCH_KEYS)),
      ),
    ),
  );
  const firstIndex = new Map<string, number>();
  orders.forEach((order, index) => {
    if (!firstIndex.has(order.id)) firstIndex.set(order.id, index);
  });
  // Every order's `order:<id>` and every verified key, in one round of calls to their homes (the first
  // round of placement reuses it). A stored order is found by its id wherever its identifiers would
  // place it now: resent, it goes alone to the shard holding it, which answers it as a duplicate and
  // ignores its identifiers, as D1 does.
  const located = await locateAll(env, [
    ...orders.map(orderKey),
    ...hashed.flatMap((hash) => verifiedRefs(hash.identities).map(({ key }) => key)),
  ]);
  const isStored = (index: number) => located.get(orderKey(orders[index] as OrderInput)) != null;
  // Erasure sticks: the suppression list is in D1, read after the directory, so an erasure that had
  // dropped an order's entry has its suppression there already. An order on it goes to no shard (the
  // shards check their own list again); a second copy of it in the batch is a duplicate, as on D1; a
  // stored order is judged by its id alone, as D1 finds it stored before it looks at its identifiers.
  const suppressionKeys = await Promise.all(
    orders.map(async (order, index) => [
      await orderSuppressionKey(order.id, env.IDENTITY_HASH_SECRET),
      ...(isStored(index) ? [] : suppressionKeysOf(hashed[index]?.identities ?? [])),
    ]),
  );
  const onList = await suppressedKeys(d1, [...new Set(suppressionKeys.flat())]);
  const suppressedIds = new Set(
    [...firstIndex].filter(([, index]) => suppressionKeys[index]?.some((key) => onList.has(key))).map(([id]) => id),
  );

  const kept = orders.flatMap((order, index) => (suppressedIds.has(order.id) ? [] : [index]));
  const items: GroupItem[] = kept.map((index) => ({
    ownKey: orderKey(orders[index] as OrderInput),
    keys: isStored(index) ? [] : verifiedRefs(hashed[index]?.identities ?? []),
  }));
  const seen = kept.map((index) => (isStored(index) ? [] : unverifiedKeys(hashed[index]?.identities ?? [])));
  const results = new Map<number, IngestResult["results"][number]>();
  const ignoredIdentifiers: IngestResult["ignoredIdentifiers"] = [];
  for (const [id, index] of firstIndex)
    if (suppressedIds.has(id))
      for (const ignored of hashed[index]?.ignored ?? []) ignoredIdentifiers.push({ index, ...ignored });
  const totals = { accepted: 0, suppressed: 0, ignored: 0, merges: 0 };
  const merged: CustomerMerge[] = [];
  const resent: Conversion[] = [];
  const writtenAt = new Map<string, string | null>();

  let pending = groupItems(items);
  for (let round = 1; pending.length > 0; round++) {
    if (round > maxRounds) return { kind: "busy" };
    if (round > 1) await pause(round);
    const placed = await place(env, pending, items, seen, round === 1 ? located : undefined);
    if ("kind" in placed) return placed;
    if (
      placed.claimed &&
      (await erasedMeanwhile(
        d1,
        placed.ready.flatMap(({ group }) => group.items.flatMap((at) => suppressionKeys[kept[at] as number] ?? [])),
        onList,
      ))
    )
      return { kind: "busy" };
    // One call per target shard, with all the groups placed there (one ingestion, as D1 ingests a batch).
    const byTarget = byShard(placed.ready, (plan) => plan.target);
    const answers = await Promise.all(
      [...byTarget].map(async ([target, plans]) => {
        const groups = plans.map((plan) => plan.group);
        const indexes = groups.flatMap((group) => group.items).sort((a, b) => a - b);
        const batchIndexes = indexes.map((at) => kept[at] as number);
        const outcome = await shardStub(env, target).ingestGroups(
          batchIndexes.map((index) => orders[index] as OrderInput),
          groups.flatMap((group) => group.keys),
          now.toISOString(),
          [...new Set(batchIndexes.filter(isStored).map((index) => (orders[index] as OrderInput).id))],
          shardCount(env),
        );
        return { target, groups, batchIndexes, outcome };
      }),
    );
    const done = new Set<ItemGroup>();
    const storedAway: Placement[] = [];
    let refusal: IngestRefusal | undefined;
    for (const { target, groups, batchIndexes, outcome } of answers) {
      if (outcome.kind === "moved") continue;
      if (outcome.kind !== "ingested") {
        refusal ??= outcome;
        continue;
      }
      for (const group of groups) done.add(group);
      const { result } = outcome;
      storedAway.push(
        ...entriesOfStored(
          result.results.filter((_, at) => !isStored(batchIndexes[at] as number)),
          target,
          shardCount(env),
        ),
      );
      for (const [at, entry] of result.results.entries()) results.set(batchIndexes[at] as number, entry);
      for (const ignored of result.ignoredIdentifiers)
        ignoredIdentifiers.push({ ...ignored, index: batchIndexes[ignored.index] as number });
      totals.accepted += result.accepted;
      totals.suppressed += result.suppressed;
      totals.ignored += result.ignored;
      totals.merges += result.merges;
      merged.push(...outcome.merged);
      resent.push(...outcome.resent);
      for (const [id, recommendationId] of Object.entries(outcome.writtenAt)) writtenAt.set(id, recommendationId);
    }
    // The new orders' entries at their homes, so a resend with other identifiers finds them (also
    // when another target refused its groups: these orders are stored).
    await claimAll(env, storedAway);
    if (refusal) return refusal;
    pending = pending.filter((group) => !done.has(group));
  }

  const suppressed = totals.suppressed + suppressedIds.size;
  // Orders no shard saw: suppressed here, and their repeats in the batch (identical to the first copy).
  const answers = orders.map(
    (order, index): IngestResult["results"][number] =>
      results.get(index) ??
      (firstIndex.get(order.id) === index
        ? { id: order.id, customerId: null, status: "suppressed" }
        : duplicateResult(order.id, [])),
  );
  return {
    kind: "ingested",
    result: {
      accepted: totals.accepted,
      duplicates: orders.length - totals.accepted - suppressed,
      changed: changedCount(answers),
      suppressed,
      ignored: totals.ignored,
      results: answers,
      ignoredIdentifiers: byIndex(ignoredIdentifiers),
      merges: totals.merges,
    },
    merged,
    resent,
    writtenAt,
  };
}

export type ShardedIdentifyOutcome =
  | { kind: "identified"; result: IdentifyResult; merged: CustomerMerge[] }
  | IngestRefusal;

/** POST /v1/identify into the customer shards: the outcome `identify` gives on D1. */
export async function identifySharded(
  env: Env,
  d1: Db,
  identifiers: IdentifiersInput,
  now: Date,
): Promise<ShardedIdentifyOutcome> {
  const { identities, ignored } = await hashIdentifiers(
    identifiers,
    env.IDENTITY_HASH_SECRET,
    phoneRegion(env.PHONE_DEFAULT_REGION),
    matchKinds(enabledMatchKeys(env.EXPORT_MATCH_KEYS)),
  );
  const keys = identities.map((identity) => identity.key);
  const answer = (suppressed: boolean): ShardedIdentifyOutcome => ({
    kind: "identified",
    result: { linked: 0, unverified: 0, merges: 0, suppressed, ignoredIdentifiers: ignored, keys },
    merged: [],
  });
  if (keys.length === 0) return answer(false);
  // Erasure sticks: a call carrying an erased customer's identifier links nothing.
  if ((await suppressedKeys(d1, suppressionKeysOf(identities))).size > 0) return answer(true);
  const items: GroupItem[] = [{ ownKey: await identifySource(identities), keys: verifiedRefs(identities) }];
  const groups = groupItems(items);
  for (let round = 1; round <= maxRounds; round++) {
    if (round > 1) await pause(round);
    const placed = await place(env, groups, items, [unverifiedKeys(identities)]);
    if ("kind" in placed) return placed;
    if (placed.claimed && (await erasedMeanwhile(d1, keys, new Set()))) return { kind: "busy" };
    const [plan] = placed.ready;
    if (!plan) continue;
    const outcome = await shardStub(env, plan.target).identifyGroup(
      identifiers,
      plan.group.keys,
      now.toISOString(),
      shardCount(env),
    );
    if (outcome.kind !== "moved") return outcome;
  }
  return { kind: "busy" };
}
