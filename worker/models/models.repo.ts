// The current population models and ranking statistics, read from model_params and cached in isolate
// memory: a request costs no D1 read for them. A fit is in force once its nightly run has scored every
// customer with it (`putInForce`); it is picked up within `ttlMs` (plus the lag of the read replica
// the refresh may read from: db/replica-reads.ts).
import { sql } from "drizzle-orm";
import { replicaReads } from "../../db/replica-reads.ts";
import type { PopulationModels } from "../core/profile/population-models.ts";
import type { PopulationStats } from "../core/ranking/population.ts";
import type { Db } from "../env.ts";

export const modelNames = { customer: "customer_models", population: "population" } as const;

export interface CurrentModels {
  customer: PopulationModels | null;
  population: PopulationStats | null;
  /** When the customer models' fit came into force (its run's end), for the store's clock. */
  customerInForceAt: string | null;
  loadedAt: number;
}

const ttlMs = 60_000;
let cached: CurrentModels | null = null;

export async function currentModels(db: Db, now: Date): Promise<CurrentModels> {
  if (cached && now.getTime() - cached.loadedAt < ttlMs) return cached;
  const rows = await replicaReads(db).all<{ model: string; params: string; in_force_at: string | null }>(
    inForceModelsQuery(),
  );
  const byName = new Map(rows.map((row) => [row.model, JSON.parse(row.params)]));
  cached = {
    customer: (byName.get(modelNames.customer) as PopulationModels | undefined) ?? null,
    population: (byName.get(modelNames.population) as PopulationStats | undefined) ?? null,
    customerInForceAt: rows.find((row) => row.model === modelNames.customer)?.in_force_at ?? null,
    loadedAt: now.getTime(),
  };
  return cached;
}

/**
 * The newest fit in force of each model: per model one seek on model_params_in_force_idx for its
 * newest id, then its row by id. No scan, however many nights of fits are kept.
 */
export const inForceModelsQuery = () => sql`
  SELECT model, params, in_force_at FROM model_params WHERE id IN (
    SELECT (SELECT id FROM model_params WHERE model = m.value AND in_force_at IS NOT NULL ORDER BY id DESC LIMIT 1)
    FROM json_each(${JSON.stringify(Object.values(modelNames))}) AS m)`;

/** The customer models' fit as the store's clock reads it (core/models/store-clock.ts). */
export const fitClock = (models: CurrentModels) =>
  models.customer && { fittedAt: models.customer.fittedAt, inForceAt: models.customerInForceAt };

/** Drop this isolate's copy (after a refit it ran itself). */
export function forgetModels() {
  cached = null;
}

export interface StoredModels {
  model: string;
  params: unknown;
  fittedAt: string;
  sampleSize: number;
  logLikelihood: number | null;
  /** When it comes into force: null for a nightly fit, put in force by `putInForce` after the scoring. */
  inForceAt: string | null;
}

export async function saveModels(db: Db, stored: StoredModels): Promise<number> {
  const row = await db.get<{ id: number }>(sql`
    INSERT INTO model_params (model, params, fitted_at, sample_size, log_likelihood, in_force_at)
    VALUES (${stored.model}, ${JSON.stringify(stored.params)}, ${stored.fittedAt}, ${stored.sampleSize},
      ${stored.logLikelihood}, ${stored.inForceAt}) RETURNING id`);
  forgetModels();
  return row?.id ?? 0;
}

/** Puts stored fits in force (a retried step changes nothing): request paths read them from then on. */
export async function putInForce(db: Db, ids: readonly number[], now: Date) {
  await db.run(sql`
    UPDATE model_params SET in_force_at = ${now.toISOString()}
    WHERE id IN (SELECT value FROM json_each(${JSON.stringify(ids)})) AND in_force_at IS NULL`);
  forgetModels();
}

/** One stored fit by id (a run scores with its own fit, not whatever is newest). */
export async function modelsById<T>(db: Db, id: number): Promise<T> {
  const row = await db.get<{ params: string }>(sql`SELECT params FROM model_params WHERE id = ${id}`);
  if (!row) throw new Error(`modelsById: no model_params row ${id}`);
  return JSON.parse(row.params) as T;
}
