// Console insights (admin key): what the best customers have in common, and how 12-month CLV is spread
// over the scored customers, both from the nightly rollup (one indexed read, never a scan of the scores).
import { sql } from "drizzle-orm";
import { Hono } from "hono";
import { compareTier, type TraitCounts } from "../core/insights/best-customers.ts";
import {
  addClvHistograms,
  type ClvHistogram,
  clvBuckets,
  emptyClvHistogram,
} from "../core/insights/clv-distribution.ts";
import type { AppEnv } from "../env.ts";
import { requireAdminKey } from "../http/auth.ts";
import { queryParams } from "../http/validate.ts";
import { latestInsightRollup } from "../jobs/nightly.repo.ts";
import { bestCustomersQuerySchema } from "./insights.schemas.ts";

export const insightsRoutes = new Hono<AppEnv>()
  .use("*", requireAdminKey)
  .get("/clv-distribution", async (c) => {
    const rollup = await latestInsightRollup(c.var.db);
    if (!rollup?.clv_histogram) {
      return c.json({
        data: {
          customers: 0,
          clv12: 0,
          buckets: [],
          modelRunAt: rollup?.computed_at ?? null,
          runId: rollup?.run_id ?? null,
          message: rollup
            ? "The last nightly run stored no CLV distribution: run the nightly job (POST /v1/admin/jobs/nightly) again."
            : "No nightly run yet: run the nightly job (POST /v1/admin/jobs/nightly) to compute this.",
        },
      });
    }
    const histogram = addClvHistograms(emptyClvHistogram(), JSON.parse(rollup.clv_histogram) as ClvHistogram);
    const buckets = clvBuckets(histogram).map((bucket) => ({ ...bucket, clv12: Math.round(bucket.clv12 * 100) / 100 }));
    return c.json({
      data: {
        customers: buckets.reduce((sum, bucket) => sum + bucket.customers, 0),
        clv12: Math.round(histogram.clv12.reduce((sum, value) => sum + value, 0) * 100) / 100,
        buckets,
        modelRunAt: rollup.computed_at,
        runId: rollup.run_id,
      },
    });
  })
  .get("/best-customers", async (c) => {
    const { tier } = queryParams(c, bestCustomersQuerySchema);
    const rollup = await latestInsightRollup(c.var.db);
    if (!rollup) {
      // Before the first nightly run: an empty answer the console can show, with what to do next.
      return c.json({
        data: {
          tier,
          customers: 0,
          comparedWith: 0,
          traits: [],
          modelRunAt: null,
          runId: null,
          message: "No nightly run yet: run the nightly job (POST /v1/admin/jobs/nightly) to compute this.",
        },
      });
    }
    const counts = JSON.parse(rollup.counts) as TraitCounts;
    const compared = compareTier(counts, tier);
    // Category traits read better by name: one primary-key lookup for the few shown.
    const categoryIds = compared.traits.filter((t) => t.dimension === "category").map((t) => t.value);
    const names = categoryIds.length
      ? await c.var.db.all<{ id: string; name: string }>(
          sql`SELECT id, name FROM categories WHERE id IN (SELECT value FROM json_each(${JSON.stringify(categoryIds)}))`,
        )
      : [];
    const labels = Object.fromEntries(names.map((row) => [`category:${row.id}`, row.name]));
    const named = Object.keys(labels).length ? compareTier(counts, tier, labels) : compared;
    return c.json({
      data: {
        tier,
        customers: named.customers,
        comparedWith: named.comparedWith,
        traits: named.traits.map(({ dimension, value, ...rest }) => ({
          dimension,
          value,
          label: labels[`${dimension}:${value}`] ?? value,
          ...rest,
        })),
        modelRunAt: rollup.computed_at,
        runId: rollup.run_id,
      },
    });
  });
