// Model diagnostics (core/models/diagnostics.ts) in the nightly job: a bounded, uniform sample of
// customers' purchase days is loaded, the diagnostics of the run's own fit (its variant, fitted as it
// was fitted) computed and stored as a model_params row named "diagnostics";
// GET /v1/admin/models/diagnostics reads the newest one (one indexed read). Nothing is computed at
// request time.
import { sql } from "drizzle-orm";
import { type DiagnosticsOutcome, diagnosticsOptionsFor, modelDiagnostics } from "../core/models/diagnostics.ts";
import type { PopulationModels } from "../core/profile/population-models.ts";
import type { Db } from "../env.ts";
import { saveModels } from "./models.repo.ts";

export const diagnosticsModelName = "diagnostics";
/** Customers whose purchase days the diagnostics read: bounds the step's memory and time. */
export const maxDiagnosticsCustomers = 2_000;

export type StoredDiagnostics = DiagnosticsOutcome & { computedAt: string; sampledCustomers: number };

const dayMs = 86_400_000;

/** Customers' distinct purchase days (UTC dates), the diagnostics' input. */
export interface DiagnosticsSample {
  /** The sampled customers, in id order. */
  customerIds: string[];
  /** In customer id then day order: the fit then sums over them in an order that does not depend on the store. */
  days: { customerId: string; day: string }[];
}

/**
 * Customer ids are random, so the first `limit` by id (read in order from the primary key of
 * customer_summaries) are a uniform sample; their orders are read through the orders index.
 */
export async function diagnosticsSample(
  db: Db,
  now: Date,
  limit = maxDiagnosticsCustomers,
): Promise<DiagnosticsSample> {
  const ids = await db.all<{ customerId: string }>(sql`
    SELECT customer_id AS customerId FROM customer_summaries ORDER BY customer_id LIMIT ${limit}`);
  const customerIds = ids.map((row) => row.customerId);
  const days = await db.all<{ customerId: string; day: string }>(sql`
    SELECT DISTINCT customer_id AS customerId, substr(placed_at, 1, 10) AS day FROM orders
    WHERE customer_id IN (SELECT value FROM json_each(${JSON.stringify(customerIds)})) AND placed_at <= ${now.toISOString()}
    ORDER BY customer_id, day`);
  return { customerIds, days };
}

export async function diagnosticsStep(
  db: Db,
  now: Date,
  inForce: PopulationModels,
): Promise<{ id: number; ok: boolean; reason?: string }> {
  return saveDiagnostics(db, await diagnosticsSample(db, now), now, inForce);
}

/** Computes the diagnostics of `inForce`, the run's fit, on `sample` and stores them in `db` (the shared database). */
export async function saveDiagnostics(
  db: Db,
  sample: DiagnosticsSample,
  now: Date,
  inForce: PopulationModels,
): Promise<{ id: number; ok: boolean; reason?: string }> {
  const events = sample.days.map((row) => ({ customer: row.customerId, day: Math.floor(Date.parse(row.day) / dayMs) }));
  const outcome = modelDiagnostics(events, Math.floor(now.getTime() / dayMs), diagnosticsOptionsFor(inForce.bgnbd));
  const stored: StoredDiagnostics = {
    ...outcome,
    computedAt: now.toISOString(),
    sampledCustomers: sample.customerIds.length,
  };
  // Checked after the run put its fit in force: they describe the model in force from now on.
  const id = await saveModels(db, {
    model: diagnosticsModelName,
    params: stored,
    fittedAt: now.toISOString(),
    sampleSize: outcome.ok ? outcome.diagnostics.customers : 0,
    logLikelihood: outcome.ok ? outcome.diagnostics.fit.logLikelihood : null,
    inForceAt: new Date().toISOString(),
  });
  return outcome.ok ? { id, ok: true } : { id, ok: false, reason: outcome.reason };
}

/** The last stored diagnostics (by id: the last run's, whatever its asOf), or null before the first run that computed them. */
export async function latestDiagnostics(db: Db): Promise<StoredDiagnostics | null> {
  const row = await db.get<{ params: string }>(sql`
    SELECT params FROM model_params WHERE model = ${diagnosticsModelName} ORDER BY id DESC LIMIT 1`);
  return row ? (JSON.parse(row.params) as StoredDiagnostics) : null;
}
