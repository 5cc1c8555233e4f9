// Ingestion with customer data in shards (docs/scaling.md, ingestion across shards): POST /v1/orders,
// POST /v1/identify and the import consumer call these instead of `ingestOrders` / `identify` when
// SHARD_COUNT > 0, and get the same answers.
//
// The router hashes the identifiers, drops what D1's suppression list refuses, splits the batch into
// groups that must be ingested together (core/shards/groups.ts), locates their keys at their home
// shards, moves regions that sit in other shards into each group's target (moves.ts), claims the
// unknown keys for the target, and calls the target once with all its groups. A claim that lost, a
// move under way, or a target that answers `moved` or `busy` sends the group round again (bounded,
// then the same `busy` refusal as D1). Each shard's write is atomic, the batch across shards is not:
// a refusal says which orders earlier rounds stored (StoredBeforeRefusal).

import { orderSource } from "../core/identity/plan.ts";
import { allCalls } from "../core/shards/calls.ts";
import {
  byShard,
  type GroupItem,
  groupItems,
  type ItemGroup,
  sourcesToMove,
  targetShard,
} from "../core/shards/groups.ts";
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
import type { Claimed, Placement } from "./directory.ts";
import type { MoveOutcome } from "./moves.ts";
import { shardCount, shardStub } from "./shards.ts";

/** Rounds of locate → move → claim → ingest before a group that keeps meeting other writers gives up. */
const maxRounds = 6;

/**
 * Rounds one order batch may take in all, while each stores some of it. A batch whose orders' entries
 * name several shards (claimed by requests that stored them nowhere) stores one shard's part of a
 * region a round, as the region follows them; it stops after `maxRounds` in a row that store
 * nothing, and this bounds its calls.
 */
const maxBatchRounds = 16;

/** A short, growing, jittered wait before a round again, so racing routers do not meet again at once. */
const pause = (round: number) => new Promise((resolve) => setTimeout(resolve, 10 * round + Math.random() * 20));

/**
 * What a batch refused part way had stored by then: the groups shards ingested in its earlier rounds,
 * or in its last round in the shards that did not refuse. Each shard's ingestion is atomic, the batch
 * across shards is not; a resend finds these orders stored and answers them as duplicates.
 */
export interface StoredBeforeRefusal {
  /** The orders this request created, by their index in the batch, with their results. */
  created: { index: number; result: IngestResult["results"][number] }[];
  merged: CustomerMerge[];
  /** Stored conversions of the resent orders among them. */
  resent: Conversion[];
}

/** A refusal; with `stored` when some of the batch was stored before it (never on D1, atomic there). */
export type ShardedRefusal = IngestRefusal & { stored?: StoredBeforeRefusal };

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
  | ShardedRefusal;

type Shards = Pick<Env, "CUSTOMER_SHARDS" | "SHARD_COUNT">;

const unverifiedKeys = (identities: readonly HashedIdentity[]) =>
  identities.filter((identity) => identity.trust === "unverified").map(({ key }) => key);

const verifiedRefs = (identities: readonly HashedIdentity[]) =>
  identities.filter((identity) => identity.trust === "verified").map(({ kind, key }) => ({ kind, key }));

const orderKey = (order: OrderInput) => orderSource(order.id);

/** The groups of the items `open` (indexes into `items`), as groupItems gives them, with those indexes. */
function regroup(items: readonly GroupItem[], open: readonly number[]): ItemGroup[] {
  return groupItems(open.map((at) => items[at] as GroupItem)).map((group) => ({
    items: group.items.map((at) => open[at] as number),
    keys: group.keys,
  }));
}

/** Each key's placement, asking every home shard once for all of its keys, in parallel. */
export async function locateAll(env: Shards, keys: readonly string[]): Promise<Map<string, number | null>> {
  const count = shardCount(env);
  const byHome = byShard(new Set(keys), (key) => homeShard(key, count));
  const answers = await Promise.all([...byHome].map(([home, homeKeys]) => shardStub(env, home).locate(homeKeys)));
  return new Map(answers.flatMap((answer) => Object.entries(answer)));
}

/**
 * Claims entries at their homes (one call per home shard), order entries with the request's `token`;
 * answers each key's placement now recorded, and whether it is the request's own (claimPlacements).
 */
async function claimAll(
  env: Shards,
  entries: readonly Placement[],
  token: string | null,
): Promise<Map<string, Claimed>> {
  const count = shardCount(env);
  const byHome = byShard(entries, (entry) => homeShard(entry.key, count));
  const answers = await allCalls(
    [...byHome].map(([home, homeEntries]) => shardStub(env, home).claim(homeEntries, count, token)),
  );
  return new Map(answers.flat().map((claimed) => [claimed.key, claimed]));
}

/**
 * Drops, at their homes, the entries of `keys` still claimed with `token` (releaseClaims). A failure is
 * logged and left: an entry kept names a shard where the next request sending the order stores it.
 */
async function releaseAll(env: Shards, keys: readonly string[], token: string): Promise<void> {
  const count = shardCount(env);
  try {
    await allCalls(
      [...byShard(keys, (key) => homeShard(key, count))].map(([home, homeKeys]) =>
        shardStub(env, home).releaseClaims(homeKeys, token, count),
      ),
    );
  } catch (error) {
    console.error(JSON.stringify({ error: "shard_claims_release", keys: keys.length, cause: String(error) }));
  }
}

/**
 * True for an exception a shard's own code threw (Cloudflare marks it `remote`): the call ended inside
 * the shard. A lost connection is not, and the call may still be writing there.
 */
const thrownInShard = (error: unknown) => (error as { remote?: unknown } | null)?.remote === true;

/** What a planned group needs before its target can ingest it. */
interface Plan {
  group: ItemGroup;
  target: number;
}

/**
 * Placed groups, and where each order reserved in this round is placed now (its claim's winner), with
 * whether the entry is this request's own.
 */
interface Placed {
  ready: Plan[];
  claimed: boolean;
  reserved: Map<number, { target: number; shard: number; own: boolean }>;
  /** Some region was moved in this round: placements read before it may be out of date. */
  moved: boolean;
}

/**
 * Moves the regions of every plan's group that sit in other shards into the plan's target: one call per
 * source and target shard, with the keys of every group moved between them (moveGroupsOut makes them
 * one move when it can). Answers each plan's outcomes, one per source shard of its group.
 */
async function moveAll(
  env: Shards,
  plans: readonly Plan[],
  placements: ReadonlyMap<string, number | null>,
): Promise<MoveOutcome[][]> {
  const calls = new Map<string, { source: number; target: number; groups: { plan: number; keys: string[] }[] }>();
  plans.forEach((plan, at) => {
    for (const [source, keys] of sourcesToMove(plan.group, placements, plan.target)) {
      const pair = `${source}>${plan.target}`;
      const call = calls.get(pair) ?? { source, target: plan.target, groups: [] };
      call.groups.push({ plan: at, keys });
      calls.set(pair, call);
    }
  });
  const outcomes: MoveOutcome[][] = plans.map(() => []);
  await allCalls(
    [...calls.values()].map(async ({ source, target, groups }) => {
      const answers = await shardStub(env, source).moveGroupsOut(
        groups.map((group) => group.keys),
        target,
        shardCount(env),
      );
      for (const [at, group] of groups.entries()) outcomes[group.plan]?.push(answers[at] as MoveOutcome);
    }),
  );
  return outcomes;
}

/**
 * Places groups: for every group, its target with its regions moved there and its unknown keys
 * claimed for it. Answers the groups ready to ingest (the others go round again) or a refusal.
 * `seen[i]`: the unverified keys of item i. They place nothing, but one never placed is claimed for
 * the shard that records it first, so a lookup finds the identifier (and says it identifies nobody).
 * `located`: the placements read already for this round (the first round reuses the batch's lookup).
 * `forced`: items that must be stored in a given shard (an entry of their order names it, claimed by
 * another request, or adopted), so their group's target is that shard. `reserves(i)`: item i is a new
 * order whose `order:<id>` entry is claimed for its group's target (with `token`) before anything
 * stores it, so of two requests storing one order id with different identifiers one wins and the other
 * sends it where the winner stores it. A group is ready only when its orders' entries name its target.
 * A group whose orders are pinned to several shards is placed in part: the orders pinned to one of
 * them, with those pinned nowhere.
 */
async function place(
  env: Shards,
  groups: readonly ItemGroup[],
  items: readonly GroupItem[],
  seen: readonly (readonly string[])[],
  located?: ReadonlyMap<string, number | null>,
  forced: ReadonlyMap<number, number> = new Map(),
  reserves: (item: number) => boolean = () => false,
  token: string | null = null,
): Promise<Placed | IngestRefusal> {
  const count = shardCount(env);
  const placements =
    located ??
    (await locateAll(
      env,
      groups.flatMap((group) =>
        group.keys.length > 0 ? group.keys : [(items[group.items[0] as number] as GroupItem).ownKey],
      ),
    ));
  const plans: Plan[] = [];
  for (const group of groups) {
    // A group goes where an entry of one of its orders names that this request cannot point elsewhere
    // (another request's claim, or one adopted): a request that found the entry may be storing the
    // order there, and whichever comes first stores it. This request's own claims follow the group.
    const pinOf = (at: number) => forced.get(at);
    const pinned = [...new Set(group.items.flatMap((at) => pinOf(at) ?? []))];
    const natural = targetShard(group, items, placements, count);
    if (pinned.length <= 1) {
      plans.push({ group, target: pinned[0] ?? natural });
      continue;
    }
    // Orders of one group whose entries name two shards (claimed by requests storing them at once, or
    // left by a request that failed after its claims): they cannot be stored in one shard at once. Those
    // pinned to one shard (the group's own target if it is one of them) go now with the orders pinned
    // nowhere; the others wait for the next round, where the region, stored now, follows them into the
    // shard their entries name. Refusing the group instead refused it on every retry while a
    // claim left behind still named another shard.
    const first = pinned.includes(natural) ? natural : Math.min(...pinned);
    const together = group.items.filter((at) => (pinOf(at) ?? first) === first);
    const keys = [...new Set(together.flatMap((at) => (items[at] as GroupItem).keys.map(({ key }) => key)))];
    plans.push({ group: { items: together, keys }, target: first });
  }
  // Regions in other shards move into the target first: one call per source and target shard.
  const moves = await moveAll(env, plans, placements);
  for (const outcomes of moves) {
    const tooLarge = outcomes.find((outcome) => outcome.kind === "region_too_large");
    if (tooLarge) return tooLarge;
  }
  const moved = plans.filter((_, i) => (moves[i] ?? []).every((outcome) => outcome.kind === "moved"));
  // Unknown keys are claimed for the target; a claim that lost sends its group round again. Seen
  // (unverified) keys come after, so a verified claim of the same key wins. New orders are reserved
  // for the target in the same calls (an entry this request claimed earlier is pointed there).
  const reservations = moved.flatMap(({ group, target }) =>
    group.items.filter(reserves).map((at) => ({ at, key: (items[at] as GroupItem).ownKey, target })),
  );
  const claims = await claimAll(
    env,
    [
      ...moved.flatMap(({ group, target }) =>
        group.keys.filter((key) => placements.get(key) == null).map((key) => ({ key, shard: target })),
      ),
      ...moved.flatMap(({ group, target }) =>
        [...new Set(group.items.flatMap((index) => seen[index] ?? []))]
          .filter((key) => !group.keys.includes(key))
          .map((key) => ({ key, shard: target })),
      ),
      ...reservations.map(({ key, target }) => ({ key, shard: target })),
    ],
    token,
  );
  const reserved = new Map(
    reservations.map(({ at, key, target }) => {
      const { shard, own } = claims.get(key) as Claimed;
      return [at, { target, shard, own }] as const;
    }),
  );
  return {
    ready: moved.filter(
      ({ group, target }) =>
        group.keys.every((key) => placements.get(key) != null || claims.get(key)?.shard === target) &&
        group.items.every((at) => (reserved.get(at)?.shard ?? target) === target),
    ),
    claimed: moved.some(({ group }) => group.keys.some((key) => placements.get(key) == null)),
    reserved,
    moved: moves.some((outcomes) => outcomes.length > 0),
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
  const orderAt = (at: number) => orders[kept[at] as number] as OrderInput;
  // Per item (an index into `kept`): the shard holding its order, where it goes alone and its
  // identifiers are ignored, as D1 ignores a duplicate's; or the shard its order's entry names for
  // storing it (claimed by another request that has not stored it yet, or adopted by this one's
  // claim), where it goes with its identifiers and is stored, or found stored.
  const heldAt = new Map<number, number>();
  const forcedAt = new Map<number, number>();
  /**
   * On the order entries this request claims, so that it alone points them at another shard when its
   * group goes elsewhere, and drops those of the orders it stored nowhere when it gives up.
   */
  const token = crypto.randomUUID();
  /** Items whose order's entry this request claimed (and may still hold). */
  const claimedBy = new Set<number>();
  kept.forEach((index, at) => {
    if (isStored(index)) heldAt.set(at, located.get(orderKey(orders[index] as OrderInput)) as number);
  });
  const itemOf = (at: number): GroupItem => ({
    ownKey: orderKey(orderAt(at)),
    keys: heldAt.has(at) ? [] : verifiedRefs(hashed[kept[at] as number]?.identities ?? []),
  });
  const seenOf = (at: number) => (heldAt.has(at) ? [] : unverifiedKeys(hashed[kept[at] as number]?.identities ?? []));
  const items = kept.map((_, at) => itemOf(at));
  const seen = kept.map((_, at) => seenOf(at));
  const results = new Map<number, IngestResult["results"][number]>();
  const ignoredIdentifiers: IngestResult["ignoredIdentifiers"] = [];
  for (const [id, index] of firstIndex)
    if (suppressedIds.has(id))
      for (const ignored of hashed[index]?.ignored ?? []) ignoredIdentifiers.push({ index, ...ignored });
  const totals = { accepted: 0, suppressed: 0, ignored: 0, merges: 0 };
  const merged: CustomerMerge[] = [];
  const resent: Conversion[] = [];
  const writtenAt = new Map<string, string | null>();

  /**
   * The refusal the batch gets, with what it stored before (groups ingested in earlier rounds, or by
   * shards that did not refuse in this one), so the route still records their conversions and merges
   * and the answer names them.
   */
  const refuse = async (refusal: IngestRefusal): Promise<ShardedRefusal> => {
    // The claims of the orders it stored nowhere are dropped, so they pin nothing for the resend
    // (each would send its order's group to the shard it names, moving the region there).
    await releaseAll(
      env,
      [...claimedBy].filter((at) => !done.has(at)).map((at) => (items[at] as GroupItem).ownKey),
      token,
    );
    const created = [...results]
      .filter(([, result]) => result.status === "created")
      .sort(([a], [b]) => a - b)
      .map(([index, result]) => ({ index, result }));
    if (created.length === 0 && merged.length === 0) return refusal;
    return { ...refusal, stored: { created, merged, resent } };
  };

  const done = new Set<number>();
  /** Items sent as held where their entry named, and not there: the shard their entry named. */
  let missing = new Map<number, number>();
  let pending = regroup(
    items,
    kept.map((_, at) => at),
  );
  /** Rounds in a row that stored nothing. */
  let stalled = 0;
  /** Items sent to a shard to be stored whose answer has not been read, with that shard. */
  const sent = new Map<number, number>();
  /** Shards whose ingestion call this round failed inside the shard: the call has ended there. */
  const failedIn = new Set<number>();

  /**
   * A request failing with an exception (not a refusal) drops the claims of the orders it stored
   * nowhere, as a refusal does (left, each would pin its order's group to the shard it names for the
   * next request sending the order). An order whose call got no answer may be stored where it was sent: its
   * claim is dropped only when the call failed inside that shard, so it has ended there, and the shard
   * holds no such order now; else it stays, since a claim naming the shard holding its order must.
   * Every other order's key is released, claimed in the failed round or not: an entry without this
   * request's token is left as it is.
   */
  const releaseAfterFailure = async () => {
    const unsure = byShard(
      [...sent].filter(([, target]) => failedIn.has(target)),
      ([, target]) => target,
    );
    const absent = new Set<number>();
    await Promise.all(
      [...unsure].map(async ([target, sentThere]) => {
        const keys = sentThere.map(([at]) => (items[at] as GroupItem).ownKey);
        const there = await shardStub(env, target)
          .locate(keys)
          .catch(() => null);
        if (there) for (const [at] of sentThere) if (there[(items[at] as GroupItem).ownKey] == null) absent.add(at);
      }),
    );
    const keep = new Set(
      [...done, ...[...sent.keys()].filter((at) => !absent.has(at))].map((at) => (items[at] as GroupItem).ownKey),
    );
    await releaseAll(
      env,
      [...new Set(items.map(({ ownKey }) => ownKey))].filter((key) => !keep.has(key)),
      token,
    );
  };

  try {
    for (let round = 1; pending.length > 0; round++) {
      if (stalled >= maxRounds || round > maxBatchRounds) return refuse({ kind: "busy" });
      if (round > 1) await pause(stalled + 1);
      if (missing.size > 0) {
        // Moved on since (its entry names the new shard), or claimed there by a request that has not
        // stored it (still under way, or failed after its claim): then it is stored there, by whichever
        // request comes first. No entry any more (erased meanwhile): a new order.
        const placedNow = await locateAll(
          env,
          [...missing.keys()].map((at) => (items[at] as GroupItem).ownKey),
        );
        for (const [at, shard] of missing) {
          const entry = placedNow.get((items[at] as GroupItem).ownKey);
          heldAt.delete(at);
          if (entry != null && entry !== shard) heldAt.set(at, entry);
          else if (entry === shard) forcedAt.set(at, shard);
          items[at] = itemOf(at);
          seen[at] = seenOf(at);
        }
        // Sent with its identifiers now, as a new order: one of them erased suppresses it (D1's list).
        const unheld = [...missing.keys()].filter((at) => !heldAt.has(at));
        const keysOf = (at: number) => suppressionKeysOf(hashed[kept[at] as number]?.identities ?? []);
        const listed = await suppressedKeys(d1, [...new Set(unheld.flatMap(keysOf))]);
        for (const at of unheld) {
          const index = kept[at] as number;
          suppressionKeys[index] = [...new Set([...(suppressionKeys[index] ?? []), ...keysOf(at)])];
          if (!keysOf(at).some((key) => listed.has(key))) continue;
          suppressedIds.add(orderAt(at).id);
          done.add(at);
          for (const ignored of hashed[index]?.ignored ?? []) ignoredIdentifiers.push({ index, ...ignored });
        }
        missing = new Map();
        pending = regroup(
          items,
          pending.flatMap((group) => group.items).filter((at) => !done.has(at)),
        );
        if (pending.length === 0) break;
      }
      const placed = await place(
        env,
        pending,
        items,
        seen,
        round === 1 ? located : undefined,
        forcedAt,
        (at) => !heldAt.has(at),
        token,
      );
      if ("kind" in placed) return refuse(placed);
      // An order whose entry names its group's target is stored there. Its own entry follows its group
      // (claimed again for the next round's target); another request's, adopted by this claim, pins the
      // group there from the next round on, since that request may be storing the order there. One whose
      // entry names another shard (stored there, or claimed by another request) goes there alone, as a
      // resend.
      for (const [at, { target, shard, own }] of placed.reserved) {
        if (own) claimedBy.add(at);
        if (shard === target) {
          if (own) forcedAt.delete(at);
          else forcedAt.set(at, shard);
          continue;
        }
        forcedAt.delete(at);
        heldAt.set(at, shard);
        items[at] = itemOf(at);
        seen[at] = seenOf(at);
      }
      // Stored orders sent on their own to where their entry named may be in a region this round's moves
      // just took elsewhere: located again, they go where it is now rather than answer `missing` and go
      // a round later (a batch whose orders' entries name several shards moves its region each round).
      let ready = placed.ready;
      if (placed.moved) {
        const resends = new Set(ready.filter(({ group }) => group.items.every((at) => heldAt.has(at))));
        const ownKeyOf = (plan: Plan) => (items[plan.group.items[0] as number] as GroupItem).ownKey;
        const whereNow = await locateAll(env, [...resends].map(ownKeyOf));
        ready = ready.map((plan) => {
          if (!resends.has(plan)) return plan;
          const shard = whereNow.get(ownKeyOf(plan));
          if (shard == null || shard === plan.target) return plan;
          for (const at of plan.group.items) heldAt.set(at, shard);
          return { ...plan, target: shard };
        });
      }
      if (
        placed.claimed &&
        (await erasedMeanwhile(
          d1,
          ready.flatMap(({ group }) => group.items.flatMap((at) => suppressionKeys[kept[at] as number] ?? [])),
          onList,
        ))
      )
        return refuse({ kind: "busy" });
      // One call per target shard, with all the groups placed there (one ingestion, as D1 ingests a batch).
      const byTarget = byShard(ready, (plan) => plan.target);
      const answers = await allCalls(
        [...byTarget].map(async ([target, plans]) => {
          const groups = plans.map((plan) => plan.group);
          const indexes = groups.flatMap((group) => group.items).sort((a, b) => a - b);
          const batchIndexes = indexes.map((at) => kept[at] as number);
          for (const at of indexes) sent.set(at, target);
          const outcome = await shardStub(env, target)
            .ingestGroups(
              indexes.map(orderAt),
              groups.flatMap((group) => group.keys),
              now.toISOString(),
              [...new Set(indexes.filter((at) => heldAt.has(at)).map((at) => orderAt(at).id))],
              shardCount(env),
            )
            .catch((error: unknown) => {
              if (thrownInShard(error)) failedIn.add(target);
              throw error;
            });
          return { groups, indexes, batchIndexes, outcome };
        }),
      );
      let refusal: IngestRefusal | undefined;
      for (const { groups, indexes, batchIndexes, outcome } of answers) {
        // Answered: stored (done below) or not written at all.
        for (const at of indexes) sent.delete(at);
        // Moved meanwhile, or busy (the shard's own writes kept meeting other requests' on these
        // customers, as D1's do): the groups go round again, while the other shards' groups are stored
        // (a busy shard used to refuse the whole batch at once, leaving those unsaid).
        if (outcome.kind === "moved" || outcome.kind === "busy") continue;
        if (outcome.kind === "missing") {
          const ids = new Set(outcome.ids);
          for (const at of indexes) if (ids.has(orderAt(at).id)) missing.set(at, heldAt.get(at) as number);
          continue;
        }
        if (outcome.kind !== "ingested") {
          refusal ??= outcome;
          continue;
        }
        for (const group of groups) for (const at of group.items) done.add(at);
        const { result } = outcome;
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
      if (refusal) return refuse(refusal);
      stalled = answers.some(({ outcome }) => outcome.kind === "ingested") ? 0 : stalled + 1;
      pending = regroup(
        items,
        pending.flatMap((group) => group.items).filter((at) => !done.has(at)),
      );
    }
  } catch (error) {
    await releaseAfterFailure();
    throw error;
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
