// The intervals, verdict and chart series GET /v1/admin/holdout adds to its per-arm counts: loads the
// per-shopper totals (experiments.repo.ts) and reads them with core/rules/experiment.ts.
import { roundTo } from "../core/math/round.ts";
import { defaultRankingOptions } from "../core/ranking/options.ts";
import { emptyArm, type Intervals, readExperiment } from "../core/rules/experiment.ts";
import type { EventsDb } from "../env.ts";
import { experimentTotals, type PeriodRow } from "./experiments.repo.ts";

/** Personalised shoppers per held-out one that HOLDOUT_SHARE plans for (the default share when unset). */
function plannedRatio(setting: string | undefined): number {
  const share = setting === undefined || setting.trim() === "" ? Number.NaN : Number(setting);
  const planned = share > 0 && share < 1 ? share : defaultRankingOptions.holdout.share;
  return (1 - planned) / planned;
}

function periodArm(row: PeriodRow | undefined) {
  if (!row) return null;
  return {
    shoppers: row.shoppers,
    impressions: row.impressions,
    clicks: row.clicks,
    clickThroughRate: row.impressions > 0 ? roundTo(row.clicks / row.impressions, 4) : null,
    attributedOrders: row.attributedOrders,
    conversion: row.shoppers > 0 ? roundTo(row.converted / row.shoppers, 4) : null,
    revenuePerShopper: row.shoppers > 0 ? roundTo(row.revenue / row.shoppers, 2) : null,
  };
}

export async function experimentView(
  eventsDb: EventsDb,
  since: string,
  by: "day" | "week",
  holdoutShare: string | undefined,
  placement?: string,
  until: string | null = null,
) {
  const { arms, periods } = await experimentTotals(eventsDb, since, by, placement, until);
  const personalized = arms.get("personalized") ?? emptyArm;
  const holdout = arms.get("holdout") ?? emptyArm;
  const reading = readExperiment(personalized, holdout, plannedRatio(holdoutShare));
  const byArm: Record<string, { shoppers: number; intervals: Intervals }> = {
    personalized: { shoppers: personalized.shoppers, intervals: reading.arms.personalized },
    holdout: { shoppers: holdout.shoppers, intervals: reading.arms.holdout },
  };
  const starts = [...new Set(periods.map((row) => row.period))];
  return {
    /** Shoppers and intervals for an arm row (the anonymous arm has no shoppers to count). */
    arms: (arm: string) => byArm[arm] ?? {},
    lift: reading.lift,
    verdict: reading.verdict,
    overTime: {
      by,
      periods: starts.map((period) => ({
        period,
        personalized: periodArm(periods.find((row) => row.period === period && row.arm === "personalized")),
        holdout: periodArm(periods.find((row) => row.period === period && row.arm === "holdout")),
      })),
    },
  };
}
