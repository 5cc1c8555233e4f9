// Sanity of the fading benchmark's simulator (cli/evaluate/fading.ts), not of the product: the BG/NBD
// world reproduces the paper's E[X(t)], the oracle's P(alive) is calibrated and beats a coin, the
// closed forms agree, seeds reproduce. Simulation only (no model fit), so it stays fast.
import { describe, expect, it } from "vitest";
import {
  burstPopulationOracle,
  type CustomerTruth,
  detectionScore,
  erlangSurvival,
  fadingScenarios,
  oracleProbabilityAlive,
  paretoNbdProbabilityAlive,
  populationOracleOf,
  renewalPopulationOracle,
  rocAuc,
  type ScenarioName,
  scenarioNames,
  simulateScenario,
} from "../../cli/evaluate/fading.ts";
import { expectedPurchasesUnconditional, probabilityAlive } from "../../worker/core/models/bg-nbd.ts";

const options = { seed: 3, customersPerScenario: 5000 };
const bases = new Map(scenarioNames.map((scenario) => [scenario, simulateScenario(scenario, options)]));
const baseOf = (scenario: ScenarioName) => bases.get(scenario)!;

const mean = (values: readonly number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

function oracleOf(scenario: ScenarioName) {
  const base = baseOf(scenario);
  return base.customers.map((customer) => ({
    repeat: customer.days.length > 1,
    dead: customer.truth.dead,
    alive: oracleProbabilityAlive(
      customer.truth,
      customer.days.length - 1,
      base.nowDay - customer.days[customer.days.length - 1]!,
    ),
  }));
}

describe("fading simulator", () => {
  it("reproduces a seed exactly, and another seed differs", () => {
    const again = simulateScenario("regular", options);
    expect(again).toEqual(baseOf("regular"));
    const other = simulateScenario("regular", { ...options, seed: options.seed + 1 });
    expect(other.customers[0]).not.toEqual(again.customers[0]);
  });

  it("keeps each customer the same whatever the base size", () => {
    const small = simulateScenario("poisson", { ...options, customersPerScenario: 10 });
    expect(small.customers).toEqual(baseOf("poisson").customers.slice(0, 10));
  });

  it.each(scenarioNames)("%s: one order per purchase day, all inside the window, every value positive", (scenario) => {
    const base = baseOf(scenario);
    const broken = base.customers.filter(
      (customer) =>
        customer.orders.length !== customer.days.length ||
        customer.days.some((day, i) => day < 0 || day >= base.nowDay || (i > 0 && day <= customer.days[i - 1]!)) ||
        customer.orders.some((order) => !(order.total > 0)),
    );
    expect(broken.map((customer) => customer.customerId)).toEqual([]);
  });

  it("in the BG/NBD world, the mean number of repeat purchase days matches E[X(t)] (FHL 2005 eq. 9)", () => {
    // With 40,000 customers the sampling error is about 1.3 %, and merging same-day purchases loses about
    // 1 % (heavy buyers); a wrong rate unit or dropout rule would be off by tens of percent.
    const base = simulateScenario("bgnbd", { ...options, customersPerScenario: 40_000 });
    const { purchaseRate, dropout } = fadingScenarios.bgnbd;
    const parameters = { r: purchaseRate.shape, alpha: purchaseRate.rateDays, a: dropout.a, b: dropout.b };
    const simulated = mean(base.customers.map((customer) => customer.days.length - 1));
    const expected = mean(
      base.customers.map((customer) =>
        expectedPurchasesUnconditional(parameters, base.nowDay - customer.truth.acquiredAt),
      ),
    );
    expect(expected).toBeGreaterThan(1);
    expect(Math.abs(simulated / expected - 1)).toBeLessThan(0.05);
  });

  it("in the bursty world, purchases come in bursts of each customer's size, 1–6 days apart within one", () => {
    const base = baseOf("bursty");
    const misplaced = base.customers.filter(({ days, truth }) =>
      days.slice(1).some((day, i) => {
        const gap = day - days[i]!;
        const withinBurst = (i + 1) % truth.burstSize! !== 0;
        return withinBurst ? gap < 1 || gap > 6 : false;
      }),
    );
    expect(misplaced.map((customer) => customer.customerId)).toEqual([]);
    const sizes = new Set(base.customers.map((customer) => customer.truth.burstSize));
    expect([...sizes].sort()).toEqual([2, 3, 4]);
    // Between bursts the mean gap is 60–200 days (Erlang k 2–4): almost never within a week.
    const between = base.customers.flatMap(({ days, truth }) =>
      days.slice(1).flatMap((day, i) => ((i + 1) % truth.burstSize! === 0 ? [day - days[i]!] : [])),
    );
    expect(between.filter((gap) => gap <= 6).length / between.length).toBeLessThan(0.01);
  });

  it("in the BG/NBD world, only customers with a repeat purchase can be dead (same-day merges aside)", () => {
    const oneTime = baseOf("bgnbd").customers.filter((customer) => customer.days.length === 1);
    expect(oneTime.filter((customer) => customer.truth.dead).length / oneTime.length).toBeLessThan(0.005);
  });

  it.each(scenarioNames)("%s: the oracle's mean P(alive) matches the share alive", (scenario) => {
    const oracle = oracleOf(scenario);
    const aliveShare = oracle.filter((customer) => !customer.dead).length / oracle.length;
    expect(Math.abs(mean(oracle.map((customer) => customer.alive)) - aliveShare)).toBeLessThan(0.02);
  });

  it.each(scenarioNames)("%s: the oracle beats a coin on repeat buyers", (scenario) => {
    const repeat = oracleOf(scenario).filter((customer) => customer.repeat);
    const dead = repeat.map((customer) => customer.dead);
    const deadShare = dead.filter(Boolean).length / dead.length;
    // A fair coin flags half: precision = the dead share, recall = 1/2.
    const coinF1 = (2 * deadShare * 0.5) / (deadShare + 0.5);
    const oracle = detectionScore(
      repeat.map((customer) => customer.alive < 0.5),
      dead,
    );
    expect(oracle.f1).toBeGreaterThan(coinF1 + 0.1);
    expect(
      rocAuc(
        repeat.map((customer) => 1 - customer.alive),
        dead,
      ),
    ).toBeGreaterThan(0.75);
  });
});

describe("oracle P(alive)", () => {
  const truth = (dropout: CustomerTruth["dropout"], gapShape = 1): CustomerTruth => ({
    acquiredAt: 0,
    meanGapDays: 30,
    gapShape,
    dropout,
    dead: false,
  });

  it("with exponential gaps and lifetime, the numerical integral matches the Pareto/NBD closed form", () => {
    const lambda = 1 / 30;
    const mu = 1 / 400;
    for (const days of [1, 10, 45, 120, 365]) {
      const u = days - 0.5;
      const closedForm = 1 / (1 + (mu / (lambda + mu)) * (Math.exp((lambda + mu) * u) - 1));
      expect(oracleProbabilityAlive(truth({ kind: "lifetime", rate: mu }), 3, days)).toBeCloseTo(closedForm, 8);
    }
  });

  it("after-purchase dropout: odds(dead) = p / ((1 − p) S_k(u)); no dropout before a repeat purchase in BG/NBD", () => {
    const dropout = { kind: "after-purchase", p: 0.2, fromFirstPurchase: false } as const;
    const survival = erlangSurvival(4, 4 / 30, 59.5);
    expect(oracleProbabilityAlive(truth(dropout, 4), 2, 60)).toBeCloseTo((0.8 * survival) / (0.8 * survival + 0.2), 12);
    expect(oracleProbabilityAlive(truth(dropout, 4), 0, 600)).toBe(1);
    expect(oracleProbabilityAlive(truth({ ...dropout, fromFirstPurchase: true }, 4), 0, 600)).toBeLessThan(1e-6);
  });

  it("falls with time since the last purchase, faster for regular buyers", () => {
    const lifetime = { kind: "lifetime", rate: 1 / 400 } as const;
    const at = (days: number, k: number) => oracleProbabilityAlive(truth(lifetime, k), 3, days);
    expect(at(20, 1)).toBeGreaterThan(at(60, 1));
    expect(at(60, 1)).toBeGreaterThan(at(120, 1));
    expect(at(90, 8)).toBeLessThan(at(90, 1));
  });

  it("Erlang survival: k = 1 is exponential, k = 2 adds one Poisson term", () => {
    expect(erlangSurvival(1, 0.1, 7)).toBeCloseTo(Math.exp(-0.7), 14);
    expect(erlangSurvival(2, 0.1, 7)).toBeCloseTo(Math.exp(-0.7) * 1.7, 14);
    expect(erlangSurvival(12, 1, 1e4)).toBe(0);
  });
});

describe("population oracle P(alive)", () => {
  /** Simpson's rule on [lower, upper]. */
  const integrate = (f: (t: number) => number, lower: number, upper: number, intervals = 2000) => {
    const h = (upper - lower) / intervals;
    let sum = f(lower) + f(upper);
    for (let i = 1; i < intervals; i++) sum += (i % 2 ? 4 : 2) * f(lower + i * h);
    return (sum * h) / 3;
  };
  /**
   * Pareto/NBD P(alive) derived independently: with λ and μ integrated out, the customer who lived
   * through T weighs (α+T)^−(r+x) (β/(β+T))^s, and the one who died at τ ∈ (tx, T] weighs
   * ∫ s β^s (β+τ)^−(s+1) (α+τ)^−(r+x) dτ (common factors cancel).
   */
  const byIntegral = (
    { r, alpha, s, beta }: { r: number; alpha: number; s: number; beta: number },
    { x, tx, T }: { x: number; tx: number; T: number },
  ) => {
    const alive = (alpha + T) ** -(r + x) * (beta / (beta + T)) ** s;
    const died = integrate((tau) => s * beta ** s * (beta + tau) ** -(s + 1) * (alpha + tau) ** -(r + x), tx, T);
    return alive / (alive + died);
  };

  it.each([
    { parameters: { r: 4, alpha: 180, s: 2, beta: 730 }, label: "α < β" },
    { parameters: { r: 0.55, alpha: 10.58, s: 0.61, beta: 11.67 }, label: "α < β, CDNOW-like" },
    { parameters: { r: 2, alpha: 900, s: 1.5, beta: 300 }, label: "α > β" },
  ])("Pareto/NBD closed form ($label) matches the direct integral", ({ parameters }) => {
    for (const customer of [
      { x: 0, tx: 0, T: 200 },
      { x: 1, tx: 30, T: 400 },
      { x: 4, tx: 150, T: 160 },
      { x: 6, tx: 200, T: 500 },
      { x: 20, tx: 600, T: 700 },
    ]) {
      expect(paretoNbdProbabilityAlive(parameters, customer)).toBeCloseTo(byIntegral(parameters, customer), 6);
    }
  });

  it("is 1 right after a purchase and falls with the silence", () => {
    const parameters = { r: 4, alpha: 180, s: 2, beta: 730 };
    expect(paretoNbdProbabilityAlive(parameters, { x: 3, tx: 300, T: 300 })).toBe(1);
    const at = (T: number) => paretoNbdProbabilityAlive(parameters, { x: 3, tx: 300, T });
    expect(at(330)).toBeGreaterThan(at(400));
    expect(at(400)).toBeGreaterThan(at(600));
  });

  it("numerically, in the two published worlds, equals their closed forms", () => {
    const bgnbd = fadingScenarios.bgnbd;
    const poisson = fadingScenarios.poisson;
    const numericBgNbd = renewalPopulationOracle(bgnbd);
    const numericParetoNbd = renewalPopulationOracle(poisson);
    for (const customer of [
      { x: 1, tx: 30, T: 400 },
      { x: 2, tx: 10, T: 300 },
      { x: 4, tx: 150, T: 160 },
      { x: 6, tx: 200, T: 500 },
      { x: 20, tx: 450, T: 540 },
    ]) {
      // With exponential gaps only their count and sum matter, so any split of tx will do.
      const gaps = Array.from(
        { length: customer.x },
        (_, i) => (customer.tx * (i + 1)) / ((customer.x * (customer.x + 1)) / 2),
      );
      const history = { gaps, sinceLast: customer.T - customer.tx };
      const bgnbdParameters = {
        r: bgnbd.purchaseRate.shape,
        alpha: bgnbd.purchaseRate.rateDays,
        a: bgnbd.dropout.a,
        b: bgnbd.dropout.b,
      };
      expect(numericBgNbd(history)).toBeCloseTo(probabilityAlive(bgnbdParameters, customer), 5);
      const paretoParameters = {
        r: poisson.purchaseRate.shape,
        alpha: poisson.purchaseRate.rateDays,
        s: poisson.dropout.shape,
        beta: poisson.dropout.rateDays,
      };
      expect(numericParetoNbd(history)).toBeCloseTo(paretoNbdProbabilityAlive(paretoParameters, customer), 5);
    }
    expect(numericBgNbd({ gaps: [], sinceLast: 400 })).toBe(1);
  });

  it("numerically, with the population all one customer, equals the oracle that knows that customer", () => {
    // A mean gap of 30 days to within 1e-6, k = 4, and p ≈ 0.1 (Beta(1e4, 9e4), sd 0.001) or μ ≈ 1/400
    // (Gamma(1e5, 4e7), sd 0.3 %): the posterior must then be the oracle's for those true values.
    const narrowGap = { kind: "log-uniform-gap", minDays: 30, maxDays: 30 * (1 + 1e-6) } as const;
    const gaps = [22, 41, 30];
    const known = { acquiredAt: 0, meanGapDays: 30, gapShape: 4, dead: false } as const;
    const worlds = [
      {
        population: { kind: "after-purchase", a: 1e4, b: 9e4, fromFirstPurchase: true },
        customer: { kind: "after-purchase", p: 0.1, fromFirstPurchase: true },
      },
      { population: { kind: "lifetime", shape: 1e5, rateDays: 4e7 }, customer: { kind: "lifetime", rate: 1 / 400 } },
    ] as const;
    for (const { population, customer } of worlds) {
      const oracle = renewalPopulationOracle({ purchaseRate: narrowGap, gapShapes: [4], dropout: population });
      for (const daysSinceLast of [10, 45, 90]) {
        expect(oracle({ gaps, sinceLast: daysSinceLast - 0.5 })).toBeCloseTo(
          oracleProbabilityAlive({ ...known, dropout: customer }, 3, daysSinceLast),
          3,
        );
      }
    }
  });

  it("bursty, with the population all one customer, equals the oracle that knows that customer", () => {
    // Bursts of 3, a mean gap of 30 days between bursts to within 1e-6, k = 4, p ≈ 0.1.
    const oracle = burstPopulationOracle({
      purchaseRate: { kind: "log-uniform-gap", minDays: 30, maxDays: 30 * (1 + 1e-6) },
      gapShapes: [4],
      dropout: { kind: "after-purchase", a: 1e4, b: 9e4, fromFirstPurchase: true },
      bursts: { sizes: [3], withinDays: { min: 1, max: 6 } },
    });
    const known: CustomerTruth = {
      acquiredAt: 0,
      meanGapDays: 30,
      gapShape: 4,
      burstSize: 3,
      dropout: { kind: "after-purchase", p: 0.1, fromFirstPurchase: true },
      dead: false,
    };
    const whole = [2, 5, 28, 1, 3];
    for (const daysSinceLast of [10, 45, 90]) {
      expect(oracle({ gaps: whole, sinceLast: daysSinceLast - 0.5 })).toBeCloseTo(
        oracleProbabilityAlive(known, whole.length, daysSinceLast),
        3,
      );
    }
    // In the middle of a burst nobody has stopped.
    expect(oracle({ gaps: [2, 5, 28, 1], sinceLast: 2.5 })).toBe(1);
    expect(oracleProbabilityAlive(known, 4, 3)).toBe(1);
  });

  it("bursty: reads the burst size from the gaps, so a long pause after a whole burst is the usual one", () => {
    const oracle = populationOracleOf("bursty");
    // Bursts of 3 every ~120 days, 100 days since the last one ended: not yet due again.
    const onRhythm = oracle({ days: [0, 3, 5, 125, 127, 130], nowDay: 230 });
    // (Beta(1, 6) dropout after each of two bursts caps it near 0.8.)
    expect(onRhythm).toBeGreaterThan(0.7);
    // Twice the usual pause is evidence of having stopped.
    expect(oracle({ days: [0, 3, 5, 125, 127, 130], nowDay: 400 })).toBeLessThan(onRhythm - 0.3);
  });

  it("numerically, reads regularity: the same silence is likelier death after regular gaps than after ragged ones", () => {
    const oracle = renewalPopulationOracle(fadingScenarios.regular);
    const regular = oracle({ gaps: [30, 31, 29, 30], sinceLast: 75 });
    const ragged = oracle({ gaps: [5, 70, 12, 33], sinceLast: 75 });
    expect(regular).toBeLessThan(ragged);
  });

  it.each(scenarioNames)(
    "%s: calibrated on repeat buyers, and ranks no better than the oracle that knows each customer",
    (scenario) => {
      const base = baseOf(scenario);
      const populationOracle = populationOracleOf(scenario);
      const oracle = oracleOf(scenario);
      const repeat = base.customers.flatMap((customer, i) => {
        if (customer.days.length < 2) return [];
        const population = populationOracle({ days: customer.days, nowDay: base.nowDay });
        return [{ dead: customer.truth.dead, population, oracle: oracle[i]!.alive }];
      });
      const dead = repeat.map((customer) => customer.dead);
      const aliveShare = dead.filter((isDead) => !isDead).length / dead.length;
      expect(Math.abs(mean(repeat.map((customer) => customer.population)) - aliveShare)).toBeLessThan(0.02);
      const aucOf = (alive: (customer: (typeof repeat)[number]) => number) =>
        rocAuc(
          repeat.map((customer) => 1 - alive(customer)),
          dead,
        );
      expect(aucOf((customer) => customer.population)).toBeGreaterThan(0.75);
      expect(aucOf((customer) => customer.population)).toBeLessThan(aucOf((customer) => customer.oracle));
    },
  );
});

describe("rocAuc", () => {
  it.each([
    { scores: [1, 2, 3, 4], positive: [false, false, true, true], auc: 1 },
    { scores: [4, 3, 2, 1], positive: [false, false, true, true], auc: 0 },
    { scores: [1, 1, 1, 1], positive: [false, true, false, true], auc: 0.5 },
    // Pairs (positive, negative): (2,1) win, (2,2) tie, (2,3) loss, (3,1) win, (3,2) win, (3,3) tie.
    { scores: [1, 2, 3, 2, 3], positive: [false, false, false, true, true], auc: 4 / 6 },
  ])("$scores / $positive → $auc", ({ scores, positive, auc }) => {
    expect(rocAuc(scores, positive)).toBeCloseTo(auc, 12);
  });

  it("is NaN without both classes", () => {
    expect(rocAuc([1, 2], [true, true])).toBeNaN();
  });
});
