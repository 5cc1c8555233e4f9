// The nightly job over the customer shards (SHARD_COUNT > 0; docs/scaling.md). Every bounded read of
// the single database is split into one share per shard: each shard sends its first customers by id
// (the fit samples, in pages small enough for one RPC answer, and the diagnostics' sample) and its
// newest orders' rollups (product sales, pair counts), every shard called at once; the parts are
// merged by the pure functions of core/shards/nightly-merge.ts and the models fitted once, in D1 as
// before. Each shard scores its own customers, a page per Workflow step; the run's progress is kept
// in D1 per shard (job_run_shards) and summed into job_runs. Transitions, audience members and browse
// days are read or expired in every shard.
import type { SummaryRow } from "../core/profile/population-models.ts";
import { createPopulationBuilder } from "../core/ranking/population.ts";
import { allCalls } from "../core/shards/calls.ts";
import {
  firstById,
  membersByShard,
  mergeDaySamples,
  rankPairs,
  shareOf,
  sumSales,
} from "../core/shards/nightly-merge.ts";
import { customerKey, homeShard } from "../core/shards/placement.ts";
import type { Db, Env } from "../env.ts";
import {
  catalogProducts,
  copurchaseOrders,
  copurchaseSince,
  maxFitCustomers,
  maxPairsPerProduct,
  minShoppersPerPair,
  populationPageSize,
  productSalesOrders,
  recordShardProgressStep,
  saveCustomerModels,
  savePairs,
  savePopulation,
} from "../jobs/nightly.repo.ts";
import type { NightlyStore } from "../jobs/nightly.store.ts";
import { takeFeedIds } from "../jobs/transitions-feed.repo.ts";
import { maxDiagnosticsCustomers, saveDiagnostics } from "../models/diagnostics.repo.ts";
import { shardedAudienceCount } from "./console.ts";
import { locateAll } from "./ingest-router.ts";
import { type ShardStub, shardCount, shardStub } from "./shards.ts";

/** The single database's bounds, split over the shards, and the pages each shard answers in. */
export interface NightlyBounds {
  fitCustomers: number;
  /** Summaries per RPC answer (about 300 bytes each): well under what one call should carry. */
  fitPageSize: number;
  populationPageSize: number;
  productSalesOrders: number;
  copurchaseOrders: number;
  diagnosticsCustomers: number;
}

export const nightlyBounds: NightlyBounds = {
  fitCustomers: maxFitCustomers,
  fitPageSize: 5_000,
  populationPageSize,
  productSalesOrders,
  copurchaseOrders,
  diagnosticsCustomers: maxDiagnosticsCustomers,
};

/** Runs `work` on every shard at once; the answers in shard order. */
function onEveryShard<Answer>(env: Env, work: (shard: ShardStub, index: number) => Promise<Answer>) {
  const count = shardCount(env);
  return allCalls(Array.from({ length: count }, (_, index) => work(shardStub(env, index), index)));
}

/**
 * Walks a shard's first `share` customers in pages of at most `pageSize`, handing each page's items to
 * `take` as it arrives: `page(after, limit)` answers the page's items and the last id it read (null
 * when none were left).
 */
async function walkFirstCustomers<Item>(
  share: number,
  pageSize: number,
  page: (after: string, limit: number) => Promise<{ items: Item[]; last: string | null }>,
  take: (items: Item[]) => void,
): Promise<void> {
  let after = "";
  for (let seen = 0; seen < share; seen += pageSize) {
    const answer = await page(after, Math.min(pageSize, share - seen));
    take(answer.items);
    if (answer.last === null) return;
    after = answer.last;
  }
}

export function shardedNightlyStore(env: Env, db: Db, bounds: NightlyBounds = nightlyBounds): NightlyStore {
  const count = shardCount(env);
  return {
    async fitCustomerModels(now) {
      const parts = await onEveryShard(env, async (shard, index) => {
        const rows: SummaryRow[] = [];
        await walkFirstCustomers(
          shareOf(bounds.fitCustomers, count, index),
          bounds.fitPageSize,
          async (after, limit) => {
            const items = await shard.nightlyFitSample(after, limit);
            // A short page is the shard's last.
            return { items, last: items.length < limit ? null : (items[items.length - 1]?.customerId ?? null) };
          },
          (items) => rows.push(...items),
        );
        return rows;
      });
      // In id order, as the single database reads its sample: the fit's sums run in the same order.
      return saveCustomerModels(
        db,
        firstById(parts, (row) => row.customerId, bounds.fitCustomers),
        now,
      );
    },

    async fitPopulation(now) {
      const builder = createPopulationBuilder(now, await catalogProducts(db));
      // Added page by page as they arrive (the statistics are counts, sums of whole units and sorted
      // lists, whatever the order), so the step holds a page per shard, not the whole sample.
      const [, sales] = await Promise.all([
        onEveryShard(env, (shard, index) =>
          walkFirstCustomers(
            shareOf(bounds.fitCustomers, count, index),
            bounds.populationPageSize,
            async (after, limit) => {
              const page = await shard.nightlyPopulation(after, limit);
              return { items: page.customers, last: page.last };
            },
            (customers) => {
              for (const customer of customers) builder.add(customer);
            },
          ),
        ),
        onEveryShard(env, (shard, index) =>
          shard.nightlyProductSales(shareOf(bounds.productSalesOrders, count, index)),
        ),
      ]);
      builder.addProductSales(sumSales(sales));
      return savePopulation(db, builder.build());
    },

    async copurchase(now) {
      const until = now.toISOString();
      const parts = await onEveryShard(env, (shard, index) =>
        shard.nightlyCopurchase(copurchaseSince(now), until, shareOf(bounds.copurchaseOrders, count, index)),
      );
      return savePairs(db, rankPairs(parts, minShoppersPerPair, maxPairsPerProduct), until);
    },

    partitions: count,
    pageStepName: (partition, page) => `score shard ${partition} page ${page}`,

    async scorePage(partition, request) {
      const { scoredBefore, now, ...rest } = request;
      // The page's transitions get feed ids from a range taken before it writes (transitions-feed.repo.ts);
      // a retried step takes another, and the rows its first attempt wrote keep theirs.
      const feedFrom = await takeFeedIds(db, request.pageSize);
      const result = await shardStub(env, partition).nightlyScorePage({ ...rest, now: now.toISOString(), feedFrom });
      await recordShardProgressStep(
        db,
        request.runId,
        partition,
        scoredBefore + result.scored,
        result.nextCursor ?? "",
      );
      return result;
    },

    arrivals: {
      count: (runId) => onEveryShard(env, (shard) => shard.nightlyArrivals(runId)),
      stepName: (partition, page) => `score shard ${partition} arrivals ${page}`,
      async scorePage(partition, request) {
        const { scoredBefore: _scoredBefore, now, ...rest } = request;
        const feedFrom = await takeFeedIds(db, request.pageSize);
        const result = await shardStub(env, partition).nightlyScoreArrivals({
          ...rest,
          now: now.toISOString(),
          feedFrom,
        });
        return {
          nextCursor: result.nextCursor,
          arrivals: result.arrivals,
          scored: result.scored,
          transitions: result.transitions,
        };
      },
    },

    async diagnostics(now, inForce) {
      const parts = await onEveryShard(env, (shard, index) =>
        shard.nightlyDiagnostics(now.toISOString(), shareOf(bounds.diagnosticsCustomers, count, index)),
      );
      return saveDiagnostics(db, mergeDaySamples(parts, bounds.diagnosticsCustomers), now, inForce);
    },

    async countTransitions(runId) {
      const counts = await onEveryShard(env, (shard) => shard.nightlyTransitionCount(runId));
      return counts.reduce((sum, n) => sum + n, 0);
    },

    transitionsPage: (runId, partition, afterId, pageSize) =>
      shardStub(env, partition).nightlyTransitions(runId, afterId, pageSize),

    async expireBrowse(since) {
      const parts = await onEveryShard(env, (shard) => shard.nightlyExpireBrowse(since));
      return {
        deleted: parts.reduce((sum, part) => sum + part.deleted, 0),
        done: parts.every((part) => part.done),
      };
    },

    audienceCustomers: {
      partitions: count,
      count: (filters) => shardedAudienceCount(env, filters),
      list: (partition, filter) => shardStub(env, partition).nightlyAudienceMembers(filter),
      async scored(members, matchKeys) {
        // A page of members, read in shard order, asks the one or two shards the sync found them in.
        // Those not there now (moved since, or marked before members had a shard) are looked up in the
        // directory (the home of `customer:<id>` names the shard a moved customer is in; no entry: at
        // its home) and asked there; one found in neither place was erased or left unscored since.
        const keys = [...matchKeys];
        const ask = (byShard: Map<number, string[]>) =>
          allCalls([...byShard].map(([index, ids]) => shardStub(env, index).nightlyAudienceRows(ids, keys)));
        const asked = await ask(membersByShard(members, count));
        const found = new Set(asked.flatMap((part) => part.rows.map((row) => row.customerId)));
        const missing = members.filter((member) => !found.has(member.customerId));
        const placed =
          missing.length > 0
            ? await locateAll(
                env,
                missing.map((member) => customerKey(member.customerId)),
              )
            : new Map();
        const elsewhere = missing.flatMap(({ customerId, shard }) => {
          const key = customerKey(customerId);
          const now = placed.get(key) ?? homeShard(key, count);
          return now === shard ? [] : [{ customerId, shard: now }];
        });
        const parts = elsewhere.length > 0 ? [...asked, ...(await ask(membersByShard(elsewhere, count)))] : asked;
        return {
          rows: firstById(
            parts.map((part) => part.rows),
            (row) => row.customerId,
            members.length,
          ),
          keys: Object.assign({}, ...parts.map((part) => part.keys)),
        };
      },
    },

    // Legacy events roll up into the main database's customer_browse, which no request reads once the
    // customers are in shards: a deployment's legacy events are moved before it moves to shards.
    movesLegacyEvents: false,
  };
}
