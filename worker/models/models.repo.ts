// The current population models and ranking statistics, read from model_params and cached in isolate
// memory: a request costs no D1 read for them. A refit is picked up within `ttlMs` (plus the lag of
// the read replica the refresh may read from: db/replica-reads.ts).
import { sql } from "drizzle-orm";
import { replicaReads } from "../../db/replica-reads.ts";
import type { PopulationModels } from "../core/profile/population-models.ts";
import type { PopulationStats } from "../core/ranking/population.ts";
import type { Db } from "../env.ts";

export const modelNames = { customer: "customer_models", population: "population" } as const;

export interface CurrentModels {
  customer: PopulationModels | null;
  population: PopulationStats | null;
  loadedAt: number;
}

const ttlMs = 60_000;
let cached: CurrentModels | null = null;

export async function currentModels(db: Db, now: Date): Promise<CurrentModels> {
  if (cached && now.getTime() - cached.loadedAt < ttlMs) return cached;
  const rows = await replicaReads(db).all<{ model: string; params: string }>(sql`
    SELECT model, params FROM model_params p
    WHERE id = (SELECT max(id) FROM model_params WHERE model = p.model)`);
  const byName = new Map(rows.map((row) => [row.model, JSON.parse(row.params)]));
  cached = {
    customer: (byName.get(modelNames.customer) as PopulationModels | undefined) ?? null,
    population: (byName.get(modelNames.population) as PopulationStats | undefined) ?? null,
    loadedAt: now.getTime(),
  };
  return cached;
}

/** Drop this isolate's copy (after a refit it ran itself). */
export function forgetModels() {
  cached = null;
}

export async function saveModels(
  db: Db,
  model: string,
  params: unknown,
  fittedAt: string,
  sampleSize: number,
  logLikelihood: number | null,
): Promise<number> {
  const row = await db.get<{ id: number }>(sql`
    INSERT INTO model_params (model, params, fitted_at, sample_size, log_likelihood)
    VALUES (${model}, ${JSON.stringify(params)}, ${fittedAt}, ${sampleSize}, ${logLikelihood}) RETURNING id`);
  forgetModels();
  return row?.id ?? 0;
}

/** One stored fit by id (a run scores with its own fit, not whatever is newest). */
export async function modelsById<T>(db: Db, id: number): Promise<T> {
  const row = await db.get<{ params: string }>(sql`SELECT params FROM model_params WHERE id = ${id}`);
  if (!row) throw new Error(`modelsById: no model_params row ${id}`);
  return JSON.parse(row.params) as T;
}
