// The nightly job's upkeep of events and browse rollups, each its own Workflow step (or steps), after
// the models and audiences: retention in the events database, the browse window in the main one, and
// the move of a pre-events-database deployment's events. Every delete is a bounded chunk along an
// index, and a step does a bounded number of chunks, so no step outgrows Workflows' limits however
// much has piled up; what is left is picked up by the next step, or the next night.
import type { WorkflowStep, WorkflowStepConfig } from "cloudflare:workers";
import { type SQL, sql } from "drizzle-orm";
import type { Db, Env, EventsDb } from "../env.ts";
import { attributionSettings } from "../recommendations/attribution.ts";
import { browseWindowStart } from "../recommendations/recommendations.repo.ts";
import { legacyPageSize, moveLegacyEventsPage } from "./legacy-events.ts";
import { eventRetentionDays } from "./retention.ts";

/** Rows per delete statement. */
export const deleteChunk = 5_000;
/** Chunks (or legacy pages) per step. */
const chunksPerStep = 20;
/** Steps per kind of upkeep per night: at most 2 million rows deleted, 400,000 legacy rows moved. */
const maxSteps = 20;

export interface EventsUpkeep {
  retentionDays: number;
  /** Events and conversions placed before this instant were deleted. */
  retainSince: string;
  expiredEvents: number;
  expiredConversions: number;
  /** Browse rollup days before this day were deleted. */
  browseSince: string;
  expiredBrowseDays: number;
  movedLegacyEvents: number;
  /** False when a step limit stopped a kind of upkeep before it ran out of rows (it goes on next night). */
  complete: boolean;
}

/** Runs `statement` (a delete of at most `deleteChunk` rows) until it deletes fewer, or `chunksPerStep` times. */
async function deleteInChunks(database: Db | EventsDb, statement: SQL) {
  let deleted = 0;
  for (let chunk = 0; chunk < chunksPerStep; chunk++) {
    const { meta } = await database.run(statement);
    deleted += meta.changes;
    if (meta.changes < deleteChunk) return { deleted, done: true };
  }
  return { deleted, done: false };
}

export function expireEventsChunks(eventsDb: EventsDb, retainSince: string) {
  return deleteInChunks(
    eventsDb,
    sql`DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ${retainSince} LIMIT ${deleteChunk})`,
  );
}

export function expireConversionsChunks(eventsDb: EventsDb, retainSince: string) {
  return deleteInChunks(
    eventsDb,
    sql`DELETE FROM conversions WHERE order_id IN
      (SELECT order_id FROM conversions WHERE at < ${retainSince} LIMIT ${deleteChunk})`,
  );
}

export function expireBrowseChunks(db: Db, browseSince: string) {
  return deleteInChunks(
    db,
    sql`DELETE FROM customer_browse WHERE rowid IN
      (SELECT rowid FROM customer_browse WHERE day < ${browseSince} LIMIT ${deleteChunk})`,
  );
}

/** Moves up to `chunksPerStep` pages of legacy events. */
export async function moveLegacyEventsChunks(db: Db, eventsDb: EventsDb, now: Date, retainSince: string) {
  let moved = 0;
  for (let page = 0; page < chunksPerStep; page++) {
    const count = await moveLegacyEventsPage(db, eventsDb, now, retainSince);
    moved += count;
    if (count < legacyPageSize) return { deleted: moved, done: true };
  }
  return { deleted: moved, done: false };
}

/** Repeats one kind of upkeep as numbered steps until it is done or the step limit is reached. */
async function repeatSteps(
  step: WorkflowStep,
  name: string,
  config: WorkflowStepConfig,
  run: () => Promise<{ deleted: number; done: boolean }>,
) {
  let total = 0;
  for (let n = 0; n < maxSteps; n++) {
    const { deleted, done } = await step.do(`${name} ${n}`, config, run);
    total += deleted;
    if (done) return { total, done: true };
  }
  return { total, done: false };
}

/** Where the browse rollups are kept: the main database (the default) or the customer shards. */
export interface BrowseStore {
  /** Deletes up to a step's chunks of rollup days before `since`; `done` once none are left. */
  expireBrowse(since: string): Promise<{ deleted: number; done: boolean }>;
  /**
   * Whether legacy events are moved: their rollup is written to the main database, so only where the
   * main database holds the customers.
   */
  movesLegacyEvents: boolean;
}

export async function eventsUpkeepSteps(
  step: WorkflowStep,
  db: Db,
  eventsDb: EventsDb,
  env: Env,
  now: Date,
  config: WorkflowStepConfig,
  browseStore: BrowseStore = {
    expireBrowse: (since) => expireBrowseChunks(db, since),
    movesLegacyEvents: true,
  },
): Promise<EventsUpkeep> {
  const retentionDays = eventRetentionDays(env.EVENT_RETENTION_DAYS, attributionSettings(env));
  const retainSince = new Date(now.getTime() - retentionDays * 86_400_000).toISOString();
  const browseSince = browseWindowStart(now);
  // The legacy move first: rows it moves are then subject to the same retention.
  const legacy = browseStore.movesLegacyEvents
    ? await repeatSteps(step, "move legacy events", config, () =>
        moveLegacyEventsChunks(db, eventsDb, now, retainSince),
      )
    : { total: 0, done: true };
  const events = await repeatSteps(step, "expire events", config, () => expireEventsChunks(eventsDb, retainSince));
  const conversions = await repeatSteps(step, "expire conversions", config, () =>
    expireConversionsChunks(eventsDb, retainSince),
  );
  const browse = await repeatSteps(step, "expire browse days", config, () => browseStore.expireBrowse(browseSince));
  return {
    retentionDays,
    retainSince,
    expiredEvents: events.total,
    expiredConversions: conversions.total,
    browseSince,
    expiredBrowseDays: browse.total,
    movedLegacyEvents: legacy.total,
    complete: legacy.done && events.done && conversions.done && browse.done,
  };
}
