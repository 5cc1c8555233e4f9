// GET /v1/admin/models/diagnostics (admin): the calibration/holdout diagnostics of the model in force
// (BG/NBD or MBG/NBD, named in `model`) the nightly job stored (worker/models/diagnostics.repo.ts);
// mounted inside adminRoutes, behind its admin check.
import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { notFound } from "../http/errors.ts";
import { latestDiagnostics } from "../models/diagnostics.repo.ts";

const reasons: Record<string, string> = {
  not_enough_history: "the order history is too short to split into a calibration and a holdout period",
  not_enough_customers: "too few customers bought before the holdout period to fit the model",
  fit_failed: "the calibration-period fit failed",
  error: "the diagnostics step failed",
};

export const diagnosticsRoutes = new Hono<AppEnv>().get("/", async (c) => {
  const stored = await latestDiagnostics(c.var.db);
  if (!stored) throw notFound("No model diagnostics yet: POST /v1/admin/jobs/nightly to compute them.");
  const { computedAt, sampledCustomers } = stored;
  if (!stored.ok) {
    return c.json({
      data: {
        status: "unavailable",
        reason: stored.reason,
        message: `No diagnostics from the last run: ${reasons[stored.reason] ?? stored.reason}.`,
        computedAt,
        sampledCustomers,
      },
    });
  }
  // Diagnostics stored before they named their model checked a plain BG/NBD with memoryless gaps.
  const checked = { model: "bgnbd", regularity: false };
  return c.json({ data: { status: "ready", computedAt, sampledCustomers, ...checked, ...stored.diagnostics } });
});
