// Models that never fail the store: a degenerate spend fit falls back to the method-of-moments
// estimate and says so, customers whose last order is after `now` are scored, and histories the
// models cannot read are left out of the fit and come back as a reason, never as an exception.
import { describe, expect, it } from "vitest";
import {
  fitGammaGamma,
  gammaGammaProblem,
  momentGammaGamma,
  type SpendSummary,
} from "../../../worker/core/models/gamma-gamma.ts";
import { type ProfileSummary, scoreCustomer } from "../../../worker/core/profile/customer-profile.ts";
import {
  fitPopulationModels,
  type PopulationModels,
  placeholderModels,
  type SummaryRow,
  spendOf,
  summaryRowFromOrders,
  summaryRowProblem,
} from "../../../worker/core/profile/population-models.ts";

const day = 86_400_000;
const now = new Date("2026-06-01T12:00:00Z");

/** A seeded generator (Park–Miller), so the data and the fits are the same on every run. */
function generator(seed: number) {
  let state = seed;
  const uniform = () => {
    state = (state * 16_807) % 2_147_483_647;
    return state / 2_147_483_647;
  };
  /** Gamma(k, 1) for whole k: a sum of k exponentials. */
  const gamma = (k: number) => Array.from({ length: k }, () => -Math.log(uniform())).reduce((a, b) => a + b, 0);
  return { uniform, gamma };
}

const asProfile = (row: SummaryRow): ProfileSummary => ({
  ...row,
  webOrders: row.purchaseDays,
  storeOrders: 0,
  appOrders: 0,
  phoneOrders: 0,
});

/**
 * A base where an eighth of the customers are subscribers repeating one constant value (25.00) every
 * four weeks, and the rest spend as the Gamma-Gamma assumes (p = 6, q = 4, γ = 60).
 */
function subscriptionBase(customers = 800, lastOrderAfterNowDays = 0): SummaryRow[] {
  const { uniform, gamma } = generator(11);
  const rows: SummaryRow[] = [];
  for (let c = 0; c < customers; c++) {
    const subscriber = c < customers / 8;
    const count = subscriber ? 3 + Math.floor(uniform() * 10) : 1 + Math.floor(uniform() * 6);
    const interval = subscriber ? 28 : 10 + Math.floor(uniform() * 40);
    const nu = gamma(4) / 60;
    const last = now.getTime() + lastOrderAfterNowDays * day - Math.floor(uniform() * 30) * day;
    const orders = Array.from({ length: count }, (_, k) => ({
      placedAt: new Date(last - (count - 1 - k) * interval * day).toISOString(),
      total: subscriber ? 25 : Math.round((gamma(6) / nu) * 100) / 100,
      units: 1,
    }));
    rows.push(summaryRowFromOrders(`c${c}`, orders));
  }
  return rows;
}

function expectEveryoneScored(rows: readonly SummaryRow[], models: PopulationModels, at = now) {
  const roundTripped = JSON.parse(JSON.stringify(models)) as PopulationModels; // as stored in model_params
  for (const row of rows) {
    const outcome = scoreCustomer({ summary: asProfile(row), categories: [], models: roundTripped, now: at });
    expect(outcome.ok, `${row.customerId}: ${JSON.stringify(outcome)}`).toBe(true);
  }
}

describe("Gamma-Gamma on subscription-like constant spend", () => {
  it("the maximum-likelihood fit runs off when an eighth of customers repeat one value", () => {
    const spend = subscriptionBase().map(spendOf);
    const fit = fitGammaGamma(spend);
    expect(gammaGammaProblem(fit, spend)).toBe("out_of_range");
    expect(fit.p).toBeGreaterThan(1e5);
  });

  it("falls back to the method-of-moments estimate, reports it, and every customer is scored", () => {
    const rows = subscriptionBase();
    const models = fitPopulationModels(rows, now);
    expect(models.source).toBe("fitted");
    expect(models.fallbacks).toEqual([{ model: "gammaGamma", reason: "out_of_range", estimate: "method_of_moments" }]);
    const spend = rows.map(spendOf).filter((s) => s.count > 0 && s.meanValue > 0);
    expect(models.gammaGamma).toMatchObject({ p: 1, converged: null, ...momentGammaGamma(spend) });
    expect(gammaGammaProblem(models.gammaGamma, spend)).toBeNull();
    expect(Object.values(models.valueTiers).every(Number.isFinite)).toBe(true);
    expectEveryoneScored(rows, models);
  });

  it("keeps the maximum-likelihood fit when the same base has no subscribers", () => {
    const rows = subscriptionBase().slice(100);
    const models = fitPopulationModels(rows, now);
    expect(models.fallbacks).toEqual([]);
    expect(models.gammaGamma.converged).toBe(true);
    expect(models.gammaGamma.p).not.toBe(1);
  });
});

describe("momentGammaGamma", () => {
  const means = (values: number[]): SpendSummary[] => values.map((meanValue) => ({ count: 3, meanValue }));

  it("puts the population mean at the median customer's mean value, whatever one huge value says", () => {
    const values = [10, 12, 15, 20, 22, 30, 40, 1e300];
    const estimate = momentGammaGamma(means(values));
    expect(estimate).not.toBeNull();
    const { p, q, gamma } = estimate as { p: number; q: number; gamma: number };
    expect(p).toBe(1);
    expect((p * gamma) / (q - 1)).toBeCloseTo(21, 10);
    expect(q).toBeGreaterThanOrEqual(3);
    expect(q).toBeLessThanOrEqual(1000);
  });

  it("shrinks everyone to the common value when all customers spend the same, and is null with nobody", () => {
    const estimate = momentGammaGamma(means([25, 25, 25, 25]));
    expect(estimate).toEqual({ p: 1, q: 1000, gamma: 25 * 999 });
    expect(momentGammaGamma(means([]))).toBeNull();
    expect(momentGammaGamma([{ count: 0, meanValue: 10 }])).toBeNull();
  });

  it("a single customer with a huge spend makes the fit unusable (no finite mean); the fallback values everyone", () => {
    const rows = subscriptionBase().slice(100);
    const huge = summaryRowFromOrders(
      "huge",
      [0, 30, 60].map((d) => ({ placedAt: new Date(now.getTime() - (90 - d) * day).toISOString(), total: 1e300 })),
    );
    const models = fitPopulationModels([...rows, huge], now);
    expect(models.fallbacks?.map((fallback) => fallback.model)).toEqual(["gammaGamma"]);
    expect(models.fallbacks?.[0]?.estimate).toBe("method_of_moments");
    expectEveryoneScored(rows, models);
  });
});

describe("orders dated after the run's now", () => {
  it("fits and scores customers whose last order is up to a day ahead", () => {
    const rows = subscriptionBase(400, 0.9);
    expect(rows.some((row) => Date.parse(row.lastOrderAt) > now.getTime())).toBe(true);
    const models = fitPopulationModels(rows, now);
    expect(models.excluded).toEqual({});
    expect(models.sampleSize).toBe(400);
    expect([models.bgnbd.r, models.bgnbd.alpha, models.bgnbd.a, models.bgnbd.b].every(Number.isFinite)).toBe(true);
    expectEveryoneScored(rows, models);
  });

  it("a run dated in the past leaves out customers who had not bought yet, and counts them", () => {
    const rows = subscriptionBase(400);
    const past = new Date(now.getTime() - 200 * day);
    const models = fitPopulationModels(rows, past);
    const later = rows.filter((row) => Date.parse(row.firstOrderAt.slice(0, 10)) > past.getTime() + day);
    expect(later.length).toBeGreaterThan(0);
    expect(models.excluded).toEqual({ first_order_after_now: later.length });
    expect(models.sampleSize).toBe(rows.length - later.length);
    const outcome = scoreCustomer({ summary: asProfile(later[0] as SummaryRow), categories: [], models, now: past });
    expect(outcome).toEqual({ ok: false, reason: "first_order_after_now" });
    // Everyone who had bought by then is scored, including last orders after that date.
    expectEveryoneScored(
      rows.filter((row) => !later.includes(row)),
      models,
      past,
    );
  });
});

describe("histories the models cannot read", () => {
  const good = summaryRowFromOrders("good", [
    { placedAt: "2026-03-01T10:00:00Z", total: 30 },
    { placedAt: "2026-04-01T10:00:00Z", total: 32 },
    { placedAt: "2026-05-01T10:00:00Z", total: 28 },
  ]);
  const odd: [SummaryRow, string][] = [
    [{ ...good, customerId: "nan-spend", positiveDaySpend: Number.NaN }, "invalid_number"],
    [{ ...good, customerId: "infinite-gaps", gapSquareSum: Number.POSITIVE_INFINITY }, "invalid_number"],
    [{ ...good, customerId: "negative-units", units: -3 }, "invalid_number"],
    [{ ...good, customerId: "no-days", purchaseDays: 0 }, "invalid_number"],
    [{ ...good, customerId: "null-spend", firstDaySpend: null as unknown as number }, "invalid_number"],
    [{ ...good, customerId: "bad-date", firstOrderAt: "not a date" }, "invalid_date"],
    [{ ...good, customerId: "bad-second", secondPurchaseAt: "2026-13-45" }, "invalid_date"],
    [{ ...good, customerId: "year-0", firstOrderAt: "0000-01-01T00:00:00Z" }, "date_before_1970"],
    [{ ...good, customerId: "backwards", lastOrderAt: "2026-01-01T00:00:00Z" }, "dates_out_of_order"],
    [
      { ...good, customerId: "next-month", firstOrderAt: "2026-07-01T00:00:00Z", lastOrderAt: "2026-07-01T00:00:00Z" },
      "first_order_after_now",
    ],
  ];

  it("names what is wrong with each, and nothing for ordinary, zero-value and one-day histories", () => {
    for (const [row, reason] of odd) expect(summaryRowProblem(row, now), row.customerId).toBe(reason);
    const zero = summaryRowFromOrders("zero", [
      { placedAt: "2026-03-01T10:00:00Z", total: 0 },
      { placedAt: "2026-04-01T10:00:00Z", total: 0 },
    ]);
    const oneBusyDay = summaryRowFromOrders(
      "one-day",
      Array.from({ length: 200 }, (_, k) => ({
        placedAt: `2026-05-20T10:${String(k % 60).padStart(2, "0")}:00Z`,
        total: 5,
      })),
    );
    for (const row of [good, zero, oneBusyDay]) expect(summaryRowProblem(row, now), row.customerId).toBeNull();
  });

  it("leaves them out of the fit, counted by reason, and scores everyone else", () => {
    const rows = subscriptionBase(400);
    const zero = summaryRowFromOrders("zero", [
      { placedAt: "2026-03-01T10:00:00Z", total: 0 },
      { placedAt: "2026-04-01T10:00:00Z", total: 0 },
    ]);
    const oneBusyDay = summaryRowFromOrders(
      "one-day",
      Array.from({ length: 200 }, (_, k) => ({
        placedAt: `2026-05-20T10:${String(k % 60).padStart(2, "0")}:00Z`,
        total: 5,
      })),
    );
    const clean = fitPopulationModels([...rows, zero, oneBusyDay], now);
    const models = fitPopulationModels([...rows, zero, oneBusyDay, ...odd.map(([row]) => row)], now);
    expect(models.excluded).toEqual({
      invalid_number: 5,
      invalid_date: 2,
      date_before_1970: 1,
      dates_out_of_order: 1,
      first_order_after_now: 1,
    });
    // The odd rows change nothing: the year-0 customer does not stretch the population's rhythm.
    expect(models.bgnbd).toEqual(clean.bgnbd);
    expect(models.cadencePriorDays).toBe(clean.cadencePriorDays);
    expectEveryoneScored([...rows, zero, oneBusyDay], models);
    for (const [row, reason] of odd) {
      expect(scoreCustomer({ summary: asProfile(row), categories: [], models, now })).toEqual({ ok: false, reason });
    }
  });

  it("a stored fit that cannot value anyone (parameters lost to JSON null) gives a reason, not an exception", () => {
    const models = fitPopulationModels(subscriptionBase(200), now);
    const broken = { ...models, gammaGamma: { ...models.gammaGamma, q: null as unknown as number } };
    expect(scoreCustomer({ summary: asProfile(good), categories: [], models: broken, now })).toEqual({
      ok: false,
      reason: "model_error",
    });
  });
});

describe("placeholderModels", () => {
  it("says the purchase model in force is placeholders when there was too little history or its fit fell back", () => {
    expect(placeholderModels({ source: "fitted", fallbacks: [] })).toBe(false);
    expect(placeholderModels({ source: "default", fallbacks: [] })).toBe(true);
    const bgnbd = { model: "bgnbd", reason: "fit_error", estimate: "default_parameters" } as const;
    expect(placeholderModels({ source: "fitted", fallbacks: [bgnbd] })).toBe(true);
    // Gamma-Gamma's method of moments is still an estimate from the data: the purchase model is fitted.
    const moments = { model: "gammaGamma", reason: "non_finite", estimate: "method_of_moments" } as const;
    expect(placeholderModels({ source: "fitted", fallbacks: [moments] })).toBe(false);
  });
});
