import { describe, expect, it } from "vitest";
import { customerProfile, type ProfileSummary } from "../../../worker/core/profile/customer-profile.ts";
import { fitPopulationModels, spendOf, summaryRowFromOrders } from "../../../worker/core/profile/population-models.ts";

const day = 86_400_000;
const now = new Date("2026-06-01T00:00:00Z");

function customer(
  id: string,
  orders: number,
  intervalDays: number,
  daysSinceLast: number,
  meanValue = 40,
): ProfileSummary {
  const last = now.getTime() - daysSinceLast * day;
  const dated = Array.from({ length: orders }, (_, index) => ({
    placedAt: new Date(last - (orders - 1 - index) * intervalDays * day).toISOString(),
    total: meanValue,
    units: 2,
    discountedUnits: id.endsWith("deal") ? 2 : 0,
  }));
  return {
    ...summaryRowFromOrders(id, dated),
    webOrders: orders,
    storeOrders: 0,
    appOrders: 0,
    phoneOrders: 0,
  };
}

/** A deterministic population with varied rhythms: most still buying, some stopped, some one-time. */
function population(): ProfileSummary[] {
  const rows: ProfileSummary[] = [];
  for (let c = 0; c < 120; c++) {
    const interval = 7 + ((c * 37) % 60);
    const stopped = c % 3 === 0;
    const orders = c % 5 === 4 ? 1 : 2 + ((c * 7) % 9);
    const sinceLast = stopped ? interval * (3 + (c % 4)) : (((c * 13) % 10) / 10) * interval;
    rows.push(customer(`c${c}${c % 4 === 0 ? "-deal" : ""}`, orders, interval, sinceLast, 15 + ((c * 29) % 80)));
  }
  return rows;
}

describe("fitPopulationModels", () => {
  it("fits BG/NBD and Gamma-Gamma on the summaries, with finite tiers and priors", () => {
    const models = fitPopulationModels(population(), now);
    expect(models.source).toBe("fitted");
    expect(models.sampleSize).toBe(120);
    for (const value of [
      models.bgnbd.r,
      models.bgnbd.alpha,
      models.bgnbd.a,
      models.bgnbd.b,
      models.gammaGamma.p,
      models.gammaGamma.q,
      models.gammaGamma.gamma,
    ]) {
      expect(Number.isFinite(value) && value > 0).toBe(true);
    }
    expect(Number.isFinite(models.bgnbd.logLikelihood)).toBe(true);
    expect(models.valueTiers.top).toBeGreaterThanOrEqual(models.valueTiers.high);
    expect(models.cadencePriorDays).toBeGreaterThan(9);
    expect(JSON.parse(JSON.stringify(models))).toEqual(models);
  });

  it("ranks nobody above low in a base that stopped buying years ago, and still splits a live one", () => {
    const tierOf = (models: ReturnType<typeof fitPopulationModels>, at: Date) =>
      population().map((summary) => customerProfile({ summary, categories: [], models, now: at }).valueTier);
    const live = fitPopulationModels(population(), now);
    const liveTiers = tierOf(live, now);
    // A tenth of the base is top; the floor (5.45) is under the medium cut-off of this live base.
    expect(liveTiers.filter((tier) => tier === "top").length).toBe(12);
    expect(live.valueTiers.medium).toBeGreaterThan(live.valueTierFloor ?? 0);
    // A tenth of the median customer's mean purchase-day value (15–94 per order, one order a day).
    const dayValues = population()
      .map((row) => row.positiveDaySpend / row.positiveDays)
      .sort((a, b) => a - b);
    expect(live.valueTierFloor).toBeCloseTo((0.1 * ((dayValues[59] as number) + (dayValues[60] as number))) / 2, 9);

    const later = new Date(now.getTime() + 6 * 365 * day);
    const old = fitPopulationModels(population(), later);
    const oldTiers = tierOf(old, later);
    // Quantiles alone put 72 of these 120 customers above low, the top cut-off at 0.001 USD.
    expect(old.valueTiers.medium).toBe(old.valueTierFloor);
    expect(oldTiers.filter((tier) => tier !== "low")).toEqual([]);
  });

  it("falls back to marked defaults when there is too little history", () => {
    const models = fitPopulationModels([customer("only", 1, 30, 3)], now);
    expect(models.source).toBe("default");
    expect(customerProfile({ summary: customer("only", 1, 30, 3), categories: [], models, now }).lifecycle.stage).toBe(
      "new",
    );
  });
});

describe("customerProfile", () => {
  const models = fitPopulationModels(population(), now);
  const profileOf = (summary: ProfileSummary) => customerProfile({ summary, categories: [], models, now });

  it("ranks a regular above one who stopped, by their own cadence", () => {
    const regular = profileOf(customer("regular", 8, 14, 5));
    const stopped = profileOf(customer("stopped", 8, 14, 80));
    expect(regular.lifecycle.stage).toBe("active");
    expect(["fading", "lapsed"]).toContain(stopped.lifecycle.stage);
    expect(regular.probabilityAlive).toBeGreaterThan(stopped.probabilityAlive);
    expect(regular.clv12).toBeGreaterThan(stopped.clv12);
    expect(regular.clv24).toBeGreaterThan(regular.clv12);
    expect(stopped.cadence.overdueRatio).toBeGreaterThan(4);
  });

  it("judges a slow buyer by their own rhythm, not a fixed 60-day rule", () => {
    // 70 days since the last order is on time for someone who buys every 90 days.
    expect(profileOf(customer("slow", 6, 90, 70)).lifecycle.stage).toBe("active");
    // 30 days is late for someone who buys every 7 days.
    expect(profileOf(customer("fast", 10, 7, 30)).lifecycle.stage).not.toBe("active");
  });

  it("does not offer an incentive to an active full-price shopper, and calls a deal seeker deal-driven", () => {
    expect(profileOf(customer("full", 6, 14, 3)).offerGuidance).toBe("no_incentive");
    expect(profileOf(customer("x-deal", 6, 14, 3)).offerGuidance).toBe("deal_driven");
  });
});

describe("spendOf", () => {
  it("averages repeat purchase days only, leaving the first day out (Fader, Hardie & Lee 2005)", () => {
    expect(spendOf({ positiveDays: 3, positiveDaySpend: 100, firstDaySpend: 40 })).toEqual({
      count: 2,
      meanValue: 30,
    });
    expect(spendOf({ positiveDays: 1, positiveDaySpend: 25, firstDaySpend: 25 })).toEqual({ count: 0, meanValue: 0 });
    // A first day that was free (total 0) is not among the positive days to begin with.
    expect(spendOf({ positiveDays: 2, positiveDaySpend: 50, firstDaySpend: 0 })).toEqual({ count: 2, meanValue: 25 });
  });

  it("counts purchase occasions as days, as the frequency model does: two orders on one day are one", () => {
    const row = summaryRowFromOrders("c", [
      { placedAt: "2026-01-01T09:00:00Z", total: 30 },
      { placedAt: "2026-01-05T09:00:00Z", total: 20 },
      { placedAt: "2026-01-05T18:00:00Z", total: 40 },
      { placedAt: "2026-01-12T10:00:00Z", total: 0 },
    ]);
    expect(row).toMatchObject({ purchaseDays: 3, positiveDays: 2, firstDaySpend: 30, secondPurchaseAt: "2026-01-05" });
    expect(row.gapSquareSum).toBe(4 * 4 + 7 * 7);
    expect(spendOf(row)).toEqual({ count: 1, meanValue: 60 });
  });
});

describe("per-category cadence", () => {
  it("shrinks a short category history toward that category's population interval, and flags a lapsing category", () => {
    const models = fitPopulationModels(population(), now);
    const summary = customer("omni", 10, 14, 3);
    const coffee = {
      categoryId: "coffee",
      purchaseDays: 2,
      firstPurchaseAt: new Date(now.getTime() - 60 * day).toISOString(),
      lastPurchaseAt: new Date(now.getTime() - 53 * day).toISOString(),
      avgUnitPrice: 9,
    };
    const withPrior = customerProfile({
      summary,
      categories: [coffee],
      models,
      now,
      categoryIntervalDays: { coffee: 28 },
    });
    const category = withPrior.categories[0]!;
    // One observed 7-day interval is read through the category's 28-day prior and 53 quiet days:
    // the estimate lies between the one gap seen and the prior, nearer the prior than 7.
    expect(category.cadence.expectedIntervalDays).toBeGreaterThan(10);
    expect(category.cadence.expectedIntervalDays).toBeLessThan(40);
    expect(category.cadence.overdueRatio).toBeGreaterThan(1.3);
    expect(category.cadence.probabilityAlive).toBeLessThan(withPrior.probabilityAlive);
    // A longer prior interval makes the same silence less alarming.
    const slowPrior = customerProfile({
      summary,
      categories: [coffee],
      models,
      now,
      categoryIntervalDays: { coffee: 90 },
    });
    expect(slowPrior.categories[0]!.cadence.probabilityAlive).toBeGreaterThan(category.cadence.probabilityAlive);
    expect(withPrior.lifecycle.stage).toBe("active");
  });
});
