// Where the nightly job reads and writes customer data: the one D1 database (below), or the customer
// shards (worker/shards/nightly.ts), chosen once per run by SHARD_COUNT. The Workflow
// (nightly.workflow.ts) runs the same steps over either; model parameters, job runs, the co-purchase
// table and the rollups are written to D1 in both.

import { type AudienceCustomers, d1AudienceCustomers } from "../audiences/audiences.sync.ts";
import type { TraitCounts } from "../core/insights/best-customers.ts";
import type { ClvHistogram } from "../core/insights/clv-distribution.ts";
import type { ScoreProblem } from "../core/profile/customer-profile.ts";
import type { PopulationModels } from "../core/profile/population-models.ts";
import type { PopulationStats } from "../core/ranking/population.ts";
import type { Db } from "../env.ts";
import { expireBrowseChunks } from "../events/events.upkeep.ts";
import { diagnosticsStep } from "../models/diagnostics.repo.ts";
import {
  copurchaseStep,
  countTransitions,
  fitCustomerModelsStep,
  fitPopulationStep,
  scorePageStep,
  type TransitionRow,
  transitionsOfRun,
} from "./nightly.repo.ts";

/** One scoring page's request: which customers, with this run's parameters. */
export interface PageRequest {
  models: PopulationModels;
  population: PopulationStats | null;
  /** The last customer id of the partition's previous page ("" for its first page). */
  cursor: string;
  pageSize: number;
  runId: string;
  now: Date;
  timeZone: string;
  /** Customers the partition's earlier pages scored. */
  scoredBefore: number;
}

/** A scoring page's result, as persisted by Workflows. */
export interface PageResult {
  nextCursor: string | null;
  scored: number;
  skipped: Partial<Record<ScoreProblem, number>>;
  transitions: number;
  traits: TraitCounts;
  clvHistogram: ClvHistogram;
}

/** A page of a partition's arrivals: how many it read and scored (not in the run's rollups). */
export interface ArrivalsResult {
  nextCursor: string | null;
  arrivals: number;
  scored: number;
  transitions: number;
}

export interface NightlyStore {
  /** Fits the customer models on the store's sample and saves them in D1: the step's result. */
  fitCustomerModels(now: Date): ReturnType<typeof fitCustomerModelsStep>;
  /** Fits the ranking statistics on the store's sample and product sales and saves them in D1. */
  fitPopulation(now: Date): ReturnType<typeof fitPopulationStep>;
  /** Rebuilds D1's product_pairs from the store's newest orders. */
  copurchase(now: Date): Promise<{ pairs: number }>;
  /** How many parts the customers are scored in (1 for D1, the shard count), each page in one part. */
  partitions: number;
  /** The Workflow step name of page `page` of `partition`. */
  pageStepName(partition: number, page: number): string;
  /** Scores one page of `partition`'s customers, writes their changed scores there and the run's progress in D1. */
  scorePage(partition: number, request: PageRequest): Promise<PageResult>;
  /**
   * Customer shards only: once every partition's pages are done, the customers moves brought into
   * `partition` since its first page, scored a page at a time (`cursor` as for scorePage). A move can
   * bring a customer behind the pages; the one database has no moves.
   */
  arrivals?: {
    /** Each partition's count of customers moved in since the run's first page there (one fan-out). */
    count(runId: string): Promise<number[]>;
    stepName(partition: number, page: number): string;
    scorePage(partition: number, request: PageRequest): Promise<ArrivalsResult>;
  };
  /** Model diagnostics of the run's fit (`inForce`) on the store's sample, saved in D1. */
  diagnostics(now: Date, inForce: PopulationModels): ReturnType<typeof diagnosticsStep>;
  /** Stage transitions the run recorded. */
  countTransitions(runId: string): Promise<number>;
  /** A page of the run's transitions held in `partition`, in id order after `afterId` (0: from the first). */
  transitionsPage(runId: string, partition: number, afterId: number, pageSize: number): Promise<TransitionRow[]>;
  /** Deletes up to a step's chunks of browse rollup days before `since`; `done` once none are left. */
  expireBrowse(since: string): Promise<{ deleted: number; done: boolean }>;
  /** Whether the events upkeep moves a pre-events-database deployment's events (D1 only). */
  movesLegacyEvents: boolean;
  /** Where saved audiences' members are read. */
  audienceCustomers: AudienceCustomers;
}

/** The nightly job over the one D1 database: customer data and shared state in `db`. */
export function d1NightlyStore(db: Db): NightlyStore {
  return {
    fitCustomerModels: (now) => fitCustomerModelsStep(db, now),
    fitPopulation: (now) => fitPopulationStep(db, now),
    copurchase: (now) => copurchaseStep(db, now),
    partitions: 1,
    pageStepName: (_partition, page) => `score page ${page}`,
    scorePage: (_partition, request) =>
      scorePageStep(db, request.models, request.cursor, request.pageSize, request.runId, request.now, {
        population: request.population,
        timeZone: request.timeZone,
        scoredBefore: request.scoredBefore,
      }),
    diagnostics: (now, inForce) => diagnosticsStep(db, now, inForce),
    countTransitions: (runId) => countTransitions(db, runId),
    transitionsPage: (runId, _partition, afterId, pageSize) => transitionsOfRun(db, runId, afterId, pageSize),
    expireBrowse: (since) => expireBrowseChunks(db, since),
    movesLegacyEvents: true,
    audienceCustomers: d1AudienceCustomers(db),
  };
}
