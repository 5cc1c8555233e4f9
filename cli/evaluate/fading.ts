// Does the product's lifecycle stage ("fading" or "lapsed": probably stopped buying, judged by the
// customer's own rhythm) find customers who have truly dropped out? Simulated customer bases with KNOWN
// dropout, scored through the product's own code exactly as the nightly job and GET /v1/customers/:id
// use it, next to simple baselines and an oracle that knows each customer's true parameters; plus a
// real holdout on CDNOW. Deterministic by seed: no clock, no Math.random, no file I/O (the CDNOW text
// is passed in). It changes no product policy; it only measures it.
//
// The worlds mix mechanisms on purpose, so the product cannot win only because a simulation matches its
// own model: Pareto/NBD (Schmittlein, Morrison & Colombo 1987, Management Science 33(1)): Poisson
// purchases, exponential lifetimes, Gamma heterogeneity; BG/NBD (Fader, Hardie & Lee 2005, Marketing
// Science 24(2)): Poisson purchases, dropout after a purchase with probability p ~ Beta(a, b); and
// regular buyers with Erlang (integer-shape gamma) gaps, as in Platzer & Reutterer (2016), "Ticking
// Away the Moments: Timing Regularity Helps to Better Predict Customer Activity", Marketing Science 35(5);
// and bursty buyers, whose purchases come a few days apart in bursts with long pauses between them (gaps
// more irregular than random, CV² above 1), which the product's Erlang gaps cannot represent.
// Days throughout; rates are per day.

import { Random } from "../../db/seed/random.ts";
import { gammaln, logBeta } from "../../worker/core/math/gammaln.ts";
import { hyp2f1 } from "../../worker/core/math/hyp2f1.ts";
import { quantileSorted } from "../../worker/core/math/quantile.ts";
import {
  type BgNbdParameters,
  expectedPurchasesConditional,
  fitBgNbd,
  probabilityAlive,
} from "../../worker/core/models/bg-nbd.ts";
import { defaultLifecycleOptions } from "../../worker/core/models/lifecycle.ts";
import { rhythmSummaryOf } from "../../worker/core/models/rhythm.ts";
import { customerProfile } from "../../worker/core/profile/customer-profile.ts";
import {
  defaultModelOptions,
  fitPopulationModels,
  historyOf,
  type PopulationModels,
  rhythmModelOf,
  type SummaryRow,
  summaryRowFromOrders,
} from "../../worker/core/profile/population-models.ts";
import type { LifecycleStage } from "../../worker/core/vocabulary.ts";

const dayMs = 86_400_000;

// ---------------------------------------------------------------------------------------------------
// Scenarios: every parameter of every simulated world, in one table.

/** How a customer's mean gap 1/λ is drawn. */
type PurchaseRate =
  /** λ ~ Gamma(shape, rate) with the rate in days (the r, α of the papers). */
  | { kind: "gamma"; shape: number; rateDays: number }
  /** The mean gap log-uniform between two bounds. */
  | { kind: "log-uniform-gap"; minDays: number; maxDays: number };

type Dropout =
  /** Exponential lifetime from the first purchase, μ ~ Gamma(shape, rate) with the rate in days. */
  | { kind: "lifetime"; shape: number; rateDays: number }
  /** After a purchase the customer drops out with probability p ~ Beta(a, b); BG/NBD only after repeat purchases. */
  | { kind: "after-purchase"; a: number; b: number; fromFirstPurchase: boolean };

export interface ScenarioSpec {
  description: string;
  windowDays: number;
  /** First purchases uniform in [fromDay, toDay) of the window; the evaluation is at windowDays. */
  acquisition: { fromDay: number; toDay: number };
  purchaseRate: PurchaseRate;
  /** Erlang shapes k of the gaps (gamma(k, rate kλ): mean 1/λ, CV 1/√k), one drawn uniformly per customer. */
  gapShapes: readonly number[];
  dropout: Dropout;
  /**
   * Bursty buyers: purchases come in bursts of `sizes` purchases (one size drawn per customer), gaps
   * uniform in [min, max) days within a burst; the purchase rate and gap shapes above then govern the
   * gap from the end of one burst to the start of the next, and after-purchase dropout is decided only
   * when a burst is complete (`fromFirstPurchase`: after the first burst too). Whole-day bounds.
   */
  bursts?: { sizes: readonly number[]; withinDays: { min: number; max: number } };
}

export const fadingScenarios = {
  poisson: {
    description: "Pareto/NBD: exponential gaps, λ ~ Gamma(4, 180 d) (median gap ~49 d), lifetimes μ ~ Gamma(2, 730 d)",
    windowDays: 730,
    acquisition: { fromDay: 0, toDay: 548 },
    purchaseRate: { kind: "gamma", shape: 4, rateDays: 180 },
    gapShapes: [1],
    dropout: { kind: "lifetime", shape: 2, rateDays: 730 },
  },
  regular: {
    description:
      "near-regular: Erlang k 4–12 (CV 0.29–0.5), mean gap 14–90 d, dropout p ~ Beta(1, 10) after each purchase",
    windowDays: 730,
    acquisition: { fromDay: 0, toDay: 548 },
    purchaseRate: { kind: "log-uniform-gap", minDays: 14, maxDays: 90 },
    gapShapes: [4, 5, 6, 7, 8, 9, 10, 11, 12],
    dropout: { kind: "after-purchase", a: 1, b: 10, fromFirstPurchase: true },
  },
  bgnbd: {
    description: "exact BG/NBD at CDNOW's estimates: r 0.243, α 4.414 wk, a 0.793, b 2.426; acquired in 12 weeks",
    windowDays: 546,
    acquisition: { fromDay: 0, toDay: 84 },
    purchaseRate: { kind: "gamma", shape: 0.243, rateDays: 4.414 * 7 },
    gapShapes: [1],
    dropout: { kind: "after-purchase", a: 0.793, b: 2.426, fromFirstPurchase: false },
  },
  slow: {
    description: "slow: mean gap 60–200 d, Erlang k ∈ {1, 2, 4}, lifetimes μ ~ Gamma(2, 1460 d)",
    windowDays: 1095,
    acquisition: { fromDay: 0, toDay: 730 },
    purchaseRate: { kind: "log-uniform-gap", minDays: 60, maxDays: 200 },
    gapShapes: [1, 2, 4],
    dropout: { kind: "lifetime", shape: 2, rateDays: 1460 },
  },
  young: {
    description: "young base: all acquired in the last 6 months, mean gap 10–60 d, k ∈ {1..4}, p ~ Beta(1, 6)",
    windowDays: 182,
    acquisition: { fromDay: 0, toDay: 182 },
    purchaseRate: { kind: "log-uniform-gap", minDays: 10, maxDays: 60 },
    gapShapes: [1, 2, 3, 4],
    dropout: { kind: "after-purchase", a: 1, b: 6, fromFirstPurchase: true },
  },
  bursty: {
    description:
      "bursty: bursts of 2–4 purchases 1–6 d apart, 60–200 d between bursts (Erlang k 2–4), p ~ Beta(1, 6) after each burst",
    windowDays: 1095,
    acquisition: { fromDay: 0, toDay: 730 },
    purchaseRate: { kind: "log-uniform-gap", minDays: 60, maxDays: 200 },
    gapShapes: [2, 3, 4],
    dropout: { kind: "after-purchase", a: 1, b: 6, fromFirstPurchase: true },
    bursts: { sizes: [2, 3, 4], withinDays: { min: 1, max: 6 } },
  },
} as const satisfies Record<string, ScenarioSpec>;

export type ScenarioName = keyof typeof fadingScenarios;
export const scenarioNames = Object.keys(fadingScenarios) as ScenarioName[];

/** Order values: Gamma(p, ν) per order with ν ~ Gamma(q, γ) per customer (Gamma-Gamma, near CDNOW's fit). */
const spendParameters = { p: 6, q: 4, gamma: 15 };
/** Day 0 of every simulated window. */
const windowStart = Date.parse("2024-01-01T00:00:00Z");

export interface FadingOptions {
  seed: number;
  customersPerScenario: number;
}

export const defaultFadingOptions: FadingOptions = { seed: 1, customersPerScenario: 5000 };

// ---------------------------------------------------------------------------------------------------
// Simulation.

export interface CustomerTruth {
  /** Continuous day of the first purchase. */
  acquiredAt: number;
  /** 1/λ in days. */
  meanGapDays: number;
  /** Erlang shape of the gaps (between bursts in a bursty world). */
  gapShape: number;
  /** Purchases per burst, in a bursty world only. */
  burstSize?: number;
  dropout: { kind: "lifetime"; rate: number } | { kind: "after-purchase"; p: number; fromFirstPurchase: boolean };
  /** Stopped buying before `now`: dropped out after the last purchase, or lifetime ended. */
  dead: boolean;
}

export interface SimulatedCustomer {
  customerId: string;
  /** Distinct purchase days, ascending (same-day purchases merged). */
  days: number[];
  /** One order per purchase day, at 00:00 UTC, with the day's summed value. */
  orders: { placedAt: string; total: number }[];
  truth: CustomerTruth;
}

export interface SimulatedBase {
  scenario: ScenarioName;
  now: Date;
  nowDay: number;
  customers: SimulatedCustomer[];
}

/** Gamma(shape, rate) by Marsaglia & Tsang (2000); shape < 1 by the boost Gamma(shape + 1) · U^(1/shape). */
export function drawGamma(random: Random, shape: number, rate: number): number {
  if (shape < 1) return drawGamma(random, shape + 1, rate) * (1 - random.next()) ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = random.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - random.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return (d * v) / rate;
  }
}

function drawBeta(random: Random, a: number, b: number): number {
  const x = drawGamma(random, a, 1);
  return x / (x + drawGamma(random, b, 1));
}

function drawMeanGapDays(random: Random, rate: PurchaseRate): number {
  if (rate.kind === "gamma") return 1 / drawGamma(random, rate.shape, rate.rateDays);
  return Math.exp(random.between(Math.log(rate.minDays), Math.log(rate.maxDays)));
}

function dayIso(day: number): string {
  return new Date(windowStart + day * dayMs).toISOString();
}

/** One customer's purchase times (continuous days) and truth, in the renewal-with-dropout world of `spec`. */
function simulatePurchases(spec: ScenarioSpec, random: Random): { times: number[]; truth: CustomerTruth } {
  const acquiredAt = random.between(spec.acquisition.fromDay, spec.acquisition.toDay);
  const meanGapDays = drawMeanGapDays(random, spec.purchaseRate);
  const gapShape = random.pick(spec.gapShapes);
  const dropout: CustomerTruth["dropout"] =
    spec.dropout.kind === "lifetime"
      ? { kind: "lifetime", rate: drawGamma(random, spec.dropout.shape, spec.dropout.rateDays) }
      : {
          kind: "after-purchase",
          p: drawBeta(random, spec.dropout.a, spec.dropout.b),
          fromFirstPurchase: spec.dropout.fromFirstPurchase,
        };
  const diesAt = dropout.kind === "lifetime" ? acquiredAt + drawGamma(random, 1, dropout.rate) : Infinity;
  // Drawn only in a bursty world, so every other world's customers stay what they were.
  const burstSize = spec.bursts ? random.pick(spec.bursts.sizes) : 1;
  const times = [acquiredAt];
  let dead = diesAt < spec.windowDays;
  for (;;) {
    const burstComplete = times.length % burstSize === 0;
    if (
      burstComplete &&
      dropout.kind === "after-purchase" &&
      (dropout.fromFirstPurchase || times.length > burstSize) &&
      random.chance(dropout.p)
    ) {
      dead = true;
      break;
    }
    const gap =
      burstComplete || !spec.bursts
        ? drawGamma(random, gapShape, gapShape / meanGapDays)
        : random.between(spec.bursts.withinDays.min, spec.bursts.withinDays.max);
    const next = (times[times.length - 1] as number) + gap;
    if (next >= diesAt || next >= spec.windowDays) break;
    times.push(next);
  }
  return {
    times,
    truth: { acquiredAt, meanGapDays, gapShape, ...(spec.bursts ? { burstSize } : {}), dropout, dead },
  };
}

export function simulateScenario(scenario: ScenarioName, options: FadingOptions = defaultFadingOptions): SimulatedBase {
  const spec: ScenarioSpec = fadingScenarios[scenario];
  const customers = Array.from({ length: options.customersPerScenario }, (_, index) => {
    // One generator per customer: customer i is the same whatever the base size.
    const random = Random.derive(options.seed, `fading/${scenario}`, index);
    const { times, truth } = simulatePurchases(spec, random);
    const spendRate = drawGamma(random, spendParameters.q, spendParameters.gamma);
    const valueByDay = new Map<number, number>();
    for (const time of times) {
      const day = Math.floor(time);
      valueByDay.set(day, (valueByDay.get(day) ?? 0) + drawGamma(random, spendParameters.p, spendRate));
    }
    const days = [...valueByDay.keys()];
    return {
      customerId: `${scenario}-${index}`,
      days,
      orders: days.map((day) => ({
        placedAt: dayIso(day),
        total: Math.max(0.01, Math.round((valueByDay.get(day) as number) * 100) / 100),
      })),
      truth,
    };
  });
  return { scenario, now: new Date(windowStart + spec.windowDays * dayMs), nowDay: spec.windowDays, customers };
}

// ---------------------------------------------------------------------------------------------------
// The oracle: each customer's true posterior P(alive) given their own history and true parameters.

/** P(gap > t) for gaps ~ gamma(k, rate) with integer k (Erlang): e^(−rate·t) Σ_{j<k} (rate·t)^j / j!. */
export function erlangSurvival(shape: number, rate: number, t: number): number {
  if (!Number.isInteger(shape) || shape < 1)
    throw new Error(`erlangSurvival: shape must be an integer >= 1, got ${shape}`);
  return Math.exp(logErlangSurvival(shape, rate, t));
}

/** ln P(gap > t) of erlangSurvival, in logs: for a long-overdue customer e^(−rate·t) underflows while the sum is still large. */
function logErlangSurvival(shape: number, rate: number, t: number): number {
  if (t <= 0) return 0;
  const z = rate * t;
  let term = 1;
  let sum = 1;
  for (let j = 1; j < shape; j++) {
    term *= z / j;
    sum += term;
  }
  return Math.log(sum) - z;
}

/** Composite Simpson on [0, upper]; the integrands here are smooth and bounded. */
function integrate(f: (s: number) => number, upper: number, intervals = 256): number {
  const h = upper / intervals;
  let sum = f(0) + f(upper);
  for (let i = 1; i < intervals; i++) sum += (i % 2 ? 4 : 2) * f(i * h);
  return (sum * h) / 3;
}

/**
 * True P(alive at now) given the customer's history, knowing their parameters. Only the time since the
 * last purchase matters: every earlier gap and stay-decision has the same likelihood alive or dead.
 * After-purchase dropout: odds(dead) = p / ((1 − p) · S_k(u)). Exponential lifetime (alive at the last
 * purchase, memoryless): alive = e^(−μu) S_k(u) / (e^(−μu) S_k(u) + ∫₀ᵘ μ e^(−μs) S_k(s) ds).
 * `daysSinceLast` counts whole days from the last purchase day; the purchase happened somewhere in
 * that day, so u is taken half a day shorter.
 */
export function oracleProbabilityAlive(truth: CustomerTruth, repeatPurchases: number, daysSinceLast: number): number {
  const u = Math.max(0, daysSinceLast - 0.5);
  const rate = truth.gapShape / truth.meanGapDays;
  const survival = (s: number) => erlangSurvival(truth.gapShape, rate, s);
  const burstSize = truth.burstSize ?? 1;
  if (burstSize > 1 && truth.dropout.kind !== "after-purchase")
    throw new Error("oracleProbabilityAlive: bursts are simulated with after-purchase dropout only");
  if (truth.dropout.kind === "after-purchase") {
    const { p, fromFirstPurchase } = truth.dropout;
    // Bursty: nobody stops in the middle of a burst, and the next gap after a whole one is Erlang again.
    const purchases = repeatPurchases + 1;
    if (purchases % burstSize !== 0) return 1;
    if (purchases === burstSize && !fromFirstPurchase) return 1;
    const stayed = (1 - p) * survival(u);
    return stayed / (stayed + p);
  }
  const mu = truth.dropout.rate;
  const alive = Math.exp(-mu * u) * survival(u);
  const died = integrate((s) => mu * Math.exp(-mu * s) * survival(s), u);
  return alive + died > 0 ? alive / (alive + died) : 0;
}

// ---------------------------------------------------------------------------------------------------
// The population oracle: what can be known from the data alone. The oracle above knows each customer's
// own rate and dropout, which no history of a few purchases reveals; this one knows only the world's
// TRUE population parameters and reads each customer's { x, tx, T } (purchase days, as the product sees
// them) through the world's own model: the Bayes posterior P(alive), the best any method that sees only
// purchase histories can do on average. Defined for the two worlds that are a published model with
// closed-form P(alive): bgnbd (BG/NBD, FHL 2005 eq. A8, the core's own function) and poisson (Pareto/NBD).

/**
 * Pareto/NBD P(alive | x, tx, T) with λ ~ Gamma(r, α), μ ~ Gamma(s, β): Fader, Hardie & Lee (2005), "A Note
 * on Implementing the Pareto/NBD Model in MATLAB", eq. (11)–(13):
 * P = 1 / (1 + s/(r+s+x) · (α+T)^(r+x) (β+T)^s · A₀), with, for α ≥ β,
 * A₀ = F(tx) − F(T), F(t) = 2F1(r+s+x, s+1; r+s+x+1; (α−β)/(α+t)) / (α+t)^(r+s+x),
 * and for α < β the same with α and β swapped and s+1 replaced by r+x. Powers kept in logs.
 */
export function paretoNbdProbabilityAlive(
  parameters: { r: number; alpha: number; s: number; beta: number },
  customer: { x: number; tx: number; T: number },
): number {
  const { r, alpha, s, beta } = parameters;
  const { x, tx, T } = customer;
  const high = Math.max(alpha, beta);
  const b = alpha >= beta ? s + 1 : r + x;
  const c = r + s + x;
  // log[(α+T)^(r+x) (β+T)^s · 2F1(c, b; c+1; (high−low)/(high+t)) / (high+t)^c]
  const logTerm = (t: number) =>
    (r + x) * Math.log(alpha + T) +
    s * Math.log(beta + T) +
    Math.log(hyp2f1(c, b, c + 1, Math.abs(alpha - beta) / (high + t))) -
    c * Math.log(high + t);
  const atTx = logTerm(tx);
  const atT = logTerm(T);
  // A₀ scaled = e^atTx − e^atT ≥ 0 (F decreases in t); e^atT is the part that lives through T.
  const scaledA0 = atTx > atT ? Math.exp(atTx) * -Math.expm1(atT - atTx) : 0;
  return 1 / (1 + (s / c) * scaledA0);
}

// The worlds that are no published model (Erlang gaps, a log-uniform mean gap, dropout from the first
// purchase) have no closed form, so their population oracle integrates the same Bayes posterior
// numerically. Given the world's laws, a customer's history weighs each (λ, k) by the likelihood of
// their gaps, ∏ Erlang(g | k, kλ), and then by how the silence since the last purchase ends:
// - alive: still buying, the next gap longer than the silence u: S_k(u);
// - dead: dropped out. After-purchase dropout with p ~ Beta(a, b) and m decisions to stay before the
//   last purchase integrates in closed form: alive E[(1−p)^(m+1)] = B(a, b+m+1)/B(a, b), dead
//   E[(1−p)^m p] = B(a+1, b+m)/B(a, b). A lifetime τ ~ Exp(μ) from the first purchase with
//   μ ~ Gamma(s, β): alive (β/(β+T))^s, dead ∫ s β^s (β+τ)^−(s+1) S_k(τ − t_last) dτ over (t_last, T).
// The rate λ runs over a grid in log λ and k over the world's shapes, all in logs (log-sum-exp).

/** A purchase history in continuous days, as the numerical population oracle reads it. */
export interface RenewalHistory {
  /** Gaps between consecutive purchases, each > 0. */
  gaps: readonly number[];
  /** From the last purchase to now. */
  sinceLast: number;
}

type RenewalWorld = Pick<ScenarioSpec, "purchaseRate" | "gapShapes" | "dropout">;

/** Log-λ grid nodes with the log prior weight of each (the common step cancels in the posterior ratio). */
function rateGrid(rate: PurchaseRate): { logRate: Float64Array; logWeight: Float64Array } {
  if (rate.kind === "gamma") {
    // p(ln λ) = α^r λ^r e^(−αλ) / Γ(r); 1e-7..5 per day holds every rate that can buy twice in a window.
    const nodes = 800;
    const low = Math.log(1e-7);
    const step = (Math.log(5) - low) / (nodes - 1);
    const logRate = Float64Array.from({ length: nodes }, (_, i) => low + i * step);
    const logWeight = logRate.map(
      (lnRate) => rate.shape * lnRate - rate.rateDays * Math.exp(lnRate) + rate.shape * Math.log(rate.rateDays),
    );
    return { logRate, logWeight };
  }
  // The mean gap log-uniform, so ln λ uniform: midpoints of equal steps, equal weights.
  const nodes = 200;
  const low = -Math.log(rate.maxDays);
  const step = (Math.log(rate.maxDays) - Math.log(rate.minDays)) / nodes;
  return {
    logRate: Float64Array.from({ length: nodes }, (_, i) => low + (i + 0.5) * step),
    logWeight: new Float64Array(nodes),
  };
}

function logSumExp(values: readonly number[]): number {
  const top = Math.max(...values);
  if (top === Number.NEGATIVE_INFINITY) return top;
  let sum = 0;
  for (const value of values) sum += Math.exp(value - top);
  return top + Math.log(sum);
}

/** The Bayes posterior P(alive | history) in a world with these laws, integrated numerically (see above). */
export function renewalPopulationOracle(world: RenewalWorld): (history: RenewalHistory) => number {
  const grid = rateGrid(world.purchaseRate);
  const { dropout } = world;
  return ({ gaps, sinceLast }) => {
    const x = gaps.length;
    const sumGaps = gaps.reduce((sum, gap) => sum + gap, 0);
    const sumLogGaps = gaps.reduce((sum, gap) => sum + Math.log(gap), 0);
    let aliveDropout = 0;
    let deadDropout = 0;
    if (dropout.kind === "after-purchase") {
      if (x === 0 && !dropout.fromFirstPurchase) return 1;
      const stays = dropout.fromFirstPurchase ? x : x - 1;
      aliveDropout = logBeta(dropout.a, dropout.b + stays + 1);
      deadDropout = logBeta(dropout.a + 1, dropout.b + stays);
    } else {
      aliveDropout = dropout.shape * Math.log(dropout.rateDays / (dropout.rateDays + sumGaps + sinceLast));
    }
    // Lifetime dropout: Simpson's weights on the silence times the death density there, common to every node.
    const deathIntervals = 64;
    const step = sinceLast / deathIntervals;
    const deathWeights =
      dropout.kind === "lifetime"
        ? Float64Array.from({ length: deathIntervals + 1 }, (_, j) => {
            const { shape: s, rateDays: beta } = dropout;
            const simpson = j === 0 || j === deathIntervals ? 1 : j % 2 ? 4 : 2;
            const density = s * Math.exp(s * Math.log(beta) - (s + 1) * Math.log(beta + sumGaps + j * step));
            return (simpson * step * density) / 3;
          })
        : null;
    const alive: number[] = [];
    const dead: number[] = [];
    for (const shape of world.gapShapes) {
      const logShapeFactorial = gammaln(shape);
      for (let i = 0; i < grid.logRate.length; i++) {
        const rate = shape * Math.exp(grid.logRate[i] as number);
        const logPrior = grid.logWeight[i] as number;
        const logGaps = x * (shape * Math.log(rate) - logShapeFactorial) + (shape - 1) * sumLogGaps - rate * sumGaps;
        alive.push(logPrior + logGaps + aliveDropout + logErlangSurvival(shape, rate, sinceLast));
        if (!deathWeights) {
          dead.push(logPrior + logGaps + deadDropout);
          continue;
        }
        // Σ_j w_j S_k(v_j) with e^(−rate·v_j) carried as a running product.
        const decay = Math.exp(-rate * step);
        let exponential = 1;
        let died = 0;
        for (let j = 0; j <= deathIntervals; j++) {
          const z = rate * j * step;
          let term = 1;
          let poisson = 1;
          for (let n = 1; n < shape; n++) {
            term *= z / n;
            poisson += term;
          }
          died += (deathWeights[j] as number) * exponential * poisson;
          exponential *= decay;
        }
        dead.push(logPrior + logGaps + (died > 0 ? Math.log(died) : Number.NEGATIVE_INFINITY));
      }
    }
    return 1 / (1 + Math.exp(logSumExp(dead) - logSumExp(alive)));
  };
}

// A bursty world's population oracle is the same posterior with one more unknown, the burst size m, which
// fixes which gaps are within a burst: with m known, purchases 1..m are the first burst, m+1..2m the
// next, and so on. Within-burst gaps are U[min, max) days, so in whole days d their mass is 1/(max − min)
// for min < d < max and half that at either end (the purchase falls anywhere in its day); a day gap
// outside [min, max] rules that m out. Gaps between bursts are Erlang(k, kλ) as above. Dropout is
// decided after each whole burst: with c decisions taken, still buying weighs B(a, b + c) and the
// chance the current gap outlasts the silence (S_k after a whole burst, the uniform's survival in the
// middle of one, where nobody stops); stopped, after a whole burst only, B(a + 1, b + c − 1).

/** The Bayes posterior P(alive | history) in a bursty world with these laws, integrated numerically. */
export function burstPopulationOracle(world: RenewalWorld & Required<Pick<ScenarioSpec, "bursts">>) {
  const grid = rateGrid(world.purchaseRate);
  const { dropout, bursts } = world;
  if (dropout.kind !== "after-purchase")
    throw new Error("burstPopulationOracle: bursts are simulated with after-purchase dropout only");
  const { min, max } = bursts.withinDays;
  if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 1 && max > min))
    throw new Error("burstPopulationOracle: within-burst bounds must be whole days, 1 <= min < max");
  const logWithin = (gap: number) => {
    const day = Math.round(gap);
    if (day < min || day > max) return Number.NEGATIVE_INFINITY;
    return Math.log((day === min || day === max ? 0.5 : 1) / (max - min));
  };
  return ({ gaps, sinceLast }: RenewalHistory): number => {
    const purchases = gaps.length + 1;
    const alive: number[] = [];
    const dead: number[] = [];
    for (const size of bursts.sizes) {
      let logWithinGaps = 0;
      const between: number[] = [];
      gaps.forEach((gap, i) => {
        if ((i + 1) % size === 0) between.push(gap);
        else logWithinGaps += logWithin(gap);
      });
      if (logWithinGaps === Number.NEGATIVE_INFINITY) continue;
      const complete = purchases % size === 0;
      const wholeBursts = Math.floor(purchases / size);
      const decisions = dropout.fromFirstPurchase ? wholeBursts : Math.max(0, wholeBursts - 1);
      const logStay = logBeta(dropout.a, dropout.b + decisions);
      const logStop = complete && decisions > 0 ? logBeta(dropout.a + 1, dropout.b + decisions - 1) : null;
      const logSize = -Math.log(bursts.sizes.length);
      if (!complete) {
        // Mid-burst: alive for sure, whatever the rate; the next purchase of the burst is simply not due yet.
        const withinSurvival = Math.min(1, Math.max(0, (max - sinceLast) / (max - min)));
        alive.push(logSize + logWithinGaps + logStay + Math.log(withinSurvival) + logRatesOf(between, grid, world));
        continue;
      }
      const sumGaps = between.reduce((sum, gap) => sum + gap, 0);
      const sumLogGaps = between.reduce((sum, gap) => sum + Math.log(gap), 0);
      for (const shape of world.gapShapes) {
        const logShapeFactorial = gammaln(shape);
        for (let i = 0; i < grid.logRate.length; i++) {
          const rate = shape * Math.exp(grid.logRate[i] as number);
          const logGaps =
            (grid.logWeight[i] as number) +
            between.length * (shape * Math.log(rate) - logShapeFactorial) +
            (shape - 1) * sumLogGaps -
            rate * sumGaps -
            Math.log(world.gapShapes.length);
          const common = logSize + logWithinGaps + logGaps;
          alive.push(common + logStay + logErlangSurvival(shape, rate, sinceLast));
          if (logStop !== null) dead.push(common + logStop);
        }
      }
    }
    if (alive.length === 0) return 1;
    if (dead.length === 0) return 1;
    return 1 / (1 + Math.exp(logSumExp(dead) - logSumExp(alive)));
  };
}

/** ln Σ over the rate grid and gap shapes of prior × Erlang likelihood of these gaps (the mid-burst weight). */
function logRatesOf(gaps: readonly number[], grid: ReturnType<typeof rateGrid>, world: RenewalWorld): number {
  const sumGaps = gaps.reduce((sum, gap) => sum + gap, 0);
  const sumLogGaps = gaps.reduce((sum, gap) => sum + Math.log(gap), 0);
  const terms: number[] = [];
  for (const shape of world.gapShapes) {
    const logShapeFactorial = gammaln(shape);
    for (let i = 0; i < grid.logRate.length; i++) {
      const rate = shape * Math.exp(grid.logRate[i] as number);
      terms.push(
        (grid.logWeight[i] as number) +
          gaps.length * (shape * Math.log(rate) - logShapeFactorial) +
          (shape - 1) * sumLogGaps -
          rate * sumGaps -
          Math.log(world.gapShapes.length),
      );
    }
  }
  return logSumExp(terms);
}

/** A customer's purchase days as a population oracle reads them. */
export interface DaysHistory {
  /** Distinct purchase days, ascending. */
  days: readonly number[];
  nowDay: number;
}

export type PopulationOracle = (customer: DaysHistory) => number;

/**
 * The world's own P(alive) with its true population parameters, in days: the published closed form where
 * the world is a published model (read from { x, tx, T } as the product reads them), the numerical
 * posterior elsewhere (read from every gap, as regularity needs; the silence taken half a day shorter, as
 * the oracle takes it, since a purchase falls somewhere in its day).
 */
export function populationOracleOf(scenario: ScenarioName): PopulationOracle {
  if (scenario === "bgnbd") {
    const { purchaseRate, dropout } = fadingScenarios.bgnbd;
    const parameters = { r: purchaseRate.shape, alpha: purchaseRate.rateDays, a: dropout.a, b: dropout.b };
    return (customer) => probabilityAlive(parameters, daysSummaryOf(customer));
  }
  if (scenario === "poisson") {
    const { purchaseRate, dropout } = fadingScenarios.poisson;
    const parameters = {
      r: purchaseRate.shape,
      alpha: purchaseRate.rateDays,
      s: dropout.shape,
      beta: dropout.rateDays,
    };
    return (customer) => paretoNbdProbabilityAlive(parameters, daysSummaryOf(customer));
  }
  const spec: ScenarioSpec = fadingScenarios[scenario];
  const oracle = spec.bursts ? burstPopulationOracle({ ...spec, bursts: spec.bursts }) : renewalPopulationOracle(spec);
  return ({ days, nowDay }) =>
    oracle({
      gaps: days.slice(1).map((day, i) => day - (days[i] as number)),
      sinceLast: Math.max(0, nowDay - (days[days.length - 1] as number) - 0.5),
    });
}

/** A customer's { x, tx, T } in days from their purchase days, as the product reads them. */
function daysSummaryOf({ days, nowDay }: DaysHistory) {
  const first = days[0] as number;
  const last = days[days.length - 1] as number;
  return { x: days.length - 1, tx: last - first, T: nowDay - first };
}

// ---------------------------------------------------------------------------------------------------
// Scoring through the product's own functions.

/** The product's P(alive) line for "fading"; the oracle flags customers below the same line. */
export const fadingThreshold = defaultLifecycleOptions.fadingBelowProbabilityAlive;

/**
 * The classic BG/NBD baseline: every customer memoryless (k = 1), fitted by the core's fitBgNbd on the
 * product's own { x, tx, T } (weeks), with the same soft bound as the product's fit.
 */
function fitClassicBgNbd(rows: readonly SummaryRow[], models: PopulationModels, now: Date) {
  const rhythmModel = rhythmModelOf(models);
  const customers = rows.map((row) => {
    const { x, tx, T } = rhythmSummaryOf(historyOf(row), now, rhythmModel);
    return { x, tx, T };
  });
  const fit = fitBgNbd(customers, { optimizer: {}, logParameterBound: defaultModelOptions.logParameterBound });
  return { parameters: { r: fit.r, alpha: fit.alpha, a: fit.a, b: fit.b }, customers };
}

const isFlagged = (stage: LifecycleStage) => stage === "fading" || stage === "lapsed";

export interface ScoredCustomer {
  customerId: string;
  repeatPurchases: number;
  daysSinceLast: number;
  dead: boolean;
  trueMeanGapDays: number;
  stage: LifecycleStage;
  flaggedByProduct: boolean;
  profileProbabilityAlive: number;
  /** The classic BG/NBD's (k = 1) P(alive), from its own fit on the same customers. */
  bgnbdProbabilityAlive: number;
  oracleProbabilityAlive: number;
  /** The population oracle's P(alive): what the world's true population laws say of this history. */
  populationOracleProbabilityAlive: number;
  expectedIntervalDays: number;
  overdueRatio: number;
  regularity: number;
  expectedPurchases90d: number;
  probabilityPurchase90d: number;
}

const asProfileSummary = (row: SummaryRow, orders: number) => ({
  ...row,
  webOrders: orders,
  storeOrders: 0,
  appOrders: 0,
  phoneOrders: 0,
});

export interface ScoredBase {
  models: PopulationModels;
  classicBgNbd: BgNbdParameters;
  scored: ScoredCustomer[];
}

/** Fits the population models on every customer (as the nightly job) and profiles each (as the API). */
export function scoreBase(base: SimulatedBase): ScoredBase {
  const rows = base.customers.map((customer) => summaryRowFromOrders(customer.customerId, customer.orders));
  const models = fitPopulationModels(rows, base.now);
  const classic = fitClassicBgNbd(rows, models, base.now);
  const populationOracle = populationOracleOf(base.scenario);
  const scored = base.customers.map((customer, i): ScoredCustomer => {
    const row = rows[i] as SummaryRow;
    const profile = customerProfile({
      summary: asProfileSummary(row, customer.orders.length),
      categories: [],
      models,
      now: base.now,
    });
    const repeatPurchases = customer.days.length - 1;
    const daysSinceLast = base.nowDay - (customer.days[customer.days.length - 1] as number);
    return {
      customerId: customer.customerId,
      repeatPurchases,
      daysSinceLast,
      dead: customer.truth.dead,
      trueMeanGapDays: customer.truth.meanGapDays,
      stage: profile.lifecycle.stage,
      flaggedByProduct: isFlagged(profile.lifecycle.stage),
      profileProbabilityAlive: profile.probabilityAlive,
      bgnbdProbabilityAlive: probabilityAlive(classic.parameters, classic.customers[i]!),
      oracleProbabilityAlive: oracleProbabilityAlive(customer.truth, repeatPurchases, daysSinceLast),
      populationOracleProbabilityAlive: populationOracle({ days: customer.days, nowDay: base.nowDay }),
      expectedIntervalDays: profile.cadence.expectedIntervalDays,
      overdueRatio: profile.cadence.overdueRatio,
      regularity: profile.cadence.regularity,
      expectedPurchases90d: profile.expectedPurchases90d,
      probabilityPurchase90d: profile.probabilityPurchase90d,
    };
  });
  return { models, classicBgNbd: classic.parameters, scored };
}

// ---------------------------------------------------------------------------------------------------
// Metrics.

/** Detection of dead customers: precision, recall and F1 (NaN where undefined, e.g. nothing flagged). */
export interface DetectionScore {
  flaggedShare: number;
  precision: number;
  recall: number;
  f1: number;
}

export function detectionScore(flags: readonly boolean[], dead: readonly boolean[]): DetectionScore {
  let flagged = 0;
  let truePositives = 0;
  let positives = 0;
  flags.forEach((flag, i) => {
    if (flag) flagged++;
    if (dead[i]) positives++;
    if (flag && dead[i]) truePositives++;
  });
  const precision = flagged > 0 ? truePositives / flagged : Number.NaN;
  const recall = positives > 0 ? truePositives / positives : Number.NaN;
  const f1 = flagged + positives > 0 ? (2 * truePositives) / (flagged + positives) : Number.NaN;
  return { flaggedShare: flags.length > 0 ? flagged / flags.length : Number.NaN, precision, recall, f1 };
}

/** ROC AUC by Mann–Whitney with average ranks, so tied scores count one half. NaN without both classes. */
export function rocAuc(scores: readonly number[], positive: readonly boolean[]): number {
  const order = scores.map((_, i) => i).sort((left, right) => (scores[left] as number) - (scores[right] as number));
  let positiveRankSum = 0;
  let positives = 0;
  let start = 0;
  while (start < order.length) {
    let end = start;
    while (end + 1 < order.length && scores[order[end + 1] as number] === scores[order[start] as number]) end++;
    const averageRank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) {
      if (positive[order[k] as number]) {
        positiveRankSum += averageRank;
        positives++;
      }
    }
    start = end + 1;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export interface Spread {
  count: number;
  p10: number;
  median: number;
  p90: number;
}

function spreadOf(values: readonly number[]): Spread {
  const sorted = Float64Array.from(values).sort();
  return {
    count: sorted.length,
    p10: quantileSorted(sorted, 0.1),
    median: quantileSorted(sorted, 0.5),
    p90: quantileSorted(sorted, 0.9),
  };
}

const shareOf = <T>(items: readonly T[], test: (item: T) => boolean) =>
  items.length > 0 ? items.filter(test).length / items.length : Number.NaN;

// ---------------------------------------------------------------------------------------------------
// One scenario's report.

export const repeatRules = ["product", "days90", "bgnbd", "oracle", "population"] as const;
export type RepeatRule = (typeof repeatRules)[number];
export const ruleLabels: Record<RepeatRule, string> = {
  product: "product stage fading/lapsed",
  days90: "> 90 days since last",
  bgnbd: "classic BG/NBD P(alive) < 0.5",
  oracle: `oracle P(alive) < ${fadingThreshold}`,
  population: `population oracle P(alive) < ${fadingThreshold}`,
};

const flagOf: Record<RepeatRule, (customer: ScoredCustomer) => boolean> = {
  product: (customer) => customer.flaggedByProduct,
  days90: (customer) => customer.daysSinceLast > 90,
  bgnbd: (customer) => customer.bgnbdProbabilityAlive < 0.5,
  oracle: (customer) => customer.oracleProbabilityAlive < fadingThreshold,
  population: (customer) => customer.populationOracleProbabilityAlive < fadingThreshold,
};

export interface ScenarioReport {
  scenario: ScenarioName;
  description: string;
  customers: number;
  windowDays: number;
  now: string;
  /** The product's fit (BG/NBD with each customer's regularity) and the classic BG/NBD baseline's; α in days. */
  models: {
    source: string;
    product: { r: number; alphaDays: number; a: number; b: number };
    /** The likelier dropout story: MBG/NBD (dropout after the first purchase too) or BG/NBD. */
    productDropout: "MBG/NBD" | "BG/NBD";
    /** The product's fading line: P(alive) below which a repeat buyer is fading or lapsed. */
    fadingLine: number;
    regularityCv2: number;
    cadencePriorDays: number;
    classic: { r: number; alphaDays: number; a: number; b: number };
  };
  repeat: {
    customers: number;
    deadShare: number;
    rules: Record<RepeatRule, DetectionScore>;
    bestBaseline: RepeatRule;
    productMinusBestBaselineF1: number;
    oracleMinusProductF1: number;
    /** Population oracle F1 − product F1. */
    populationOracleMinusProductF1: number;
    /**
     * ROC AUC of 1 − P(alive) for dead vs alive: the ranking each probability gives, whatever the
     * threshold.
     */
    auc: { product: number; bgnbd: number; oracle: number; population: number };
    /** Customers by product stage and truth. */
    stages: Record<string, { alive: number; dead: number }>;
  };
  oneTime: {
    customers: number;
    deadShare: number;
    rules: { product: DetectionScore; days90: DetectionScore; oracle: DetectionScore };
    stages: Record<string, { alive: number; dead: number }>;
  };
  cadence: {
    /** expectedIntervalDays ÷ true mean gap, alive repeat customers with exactly one repeat purchase. */
    oneRepeat: Spread;
    /** The same with five or more repeat purchases. */
    fiveOrMoreRepeats: Spread;
    aliveRepeatOverdue3Share: number;
    aliveOverdue3Share: number;
  };
}

const inDays = ({ r, alpha, a, b }: BgNbdParameters, unitDays: number) => ({ r, alphaDays: alpha * unitDays, a, b });

function stagesByTruth(customers: readonly ScoredCustomer[]) {
  const stages: Record<string, { alive: number; dead: number }> = {};
  for (const customer of customers) {
    const entry = stages[customer.stage] ?? { alive: 0, dead: 0 };
    stages[customer.stage] = entry;
    if (customer.dead) entry.dead++;
    else entry.alive++;
  }
  return stages;
}

function scoreRules<R extends RepeatRule>(customers: readonly ScoredCustomer[], rules: readonly R[]) {
  const dead = customers.map((customer) => customer.dead);
  return Object.fromEntries(rules.map((rule) => [rule, detectionScore(customers.map(flagOf[rule]), dead)])) as Record<
    R,
    DetectionScore
  >;
}

export function evaluateScenario(base: SimulatedBase): ScenarioReport {
  const spec = fadingScenarios[base.scenario];
  const { models, classicBgNbd, scored } = scoreBase(base);
  const repeat = scored.filter((customer) => customer.repeatPurchases >= 1);
  const oneTime = scored.filter((customer) => customer.repeatPurchases === 0);
  const rules = scoreRules(repeat, repeatRules);
  const repeatDead = repeat.map((customer) => customer.dead);
  const aucOfAlive = (alive: (customer: ScoredCustomer) => number) =>
    rocAuc(
      repeat.map((customer) => 1 - alive(customer)),
      repeatDead,
    );
  const baselines = (["days90", "bgnbd"] as const).filter((rule) => !Number.isNaN(rules[rule].f1));
  const bestBaseline = baselines.reduce<RepeatRule>(
    (best, rule) => (rules[rule].f1 > rules[best].f1 ? rule : best),
    baselines[0] ?? "days90",
  );
  const aliveRepeat = repeat.filter((customer) => !customer.dead);
  const intervalBias = (customers: ScoredCustomer[]) =>
    spreadOf(customers.map((customer) => customer.expectedIntervalDays / customer.trueMeanGapDays));
  return {
    scenario: base.scenario,
    description: spec.description,
    customers: scored.length,
    windowDays: spec.windowDays,
    now: base.now.toISOString(),
    models: {
      source: models.source,
      product: inDays(models.bgnbd, models.timeUnitDays),
      productDropout: models.bgnbd.dropoutAtFirstPurchase ? "MBG/NBD" : "BG/NBD",
      fadingLine: models.fadingBelowProbabilityAlive ?? defaultLifecycleOptions.fadingBelowProbabilityAlive,
      regularityCv2: models.regularity.cv2,
      cadencePriorDays: models.cadencePriorDays,
      classic: inDays(classicBgNbd, models.timeUnitDays),
    },
    repeat: {
      customers: repeat.length,
      deadShare: shareOf(repeat, (customer) => customer.dead),
      rules,
      bestBaseline,
      productMinusBestBaselineF1: rules.product.f1 - rules[bestBaseline].f1,
      oracleMinusProductF1: rules.oracle.f1 - rules.product.f1,
      populationOracleMinusProductF1: rules.population.f1 - rules.product.f1,
      auc: {
        product: aucOfAlive((customer) => customer.profileProbabilityAlive),
        bgnbd: aucOfAlive((customer) => customer.bgnbdProbabilityAlive),
        oracle: aucOfAlive((customer) => customer.oracleProbabilityAlive),
        population: aucOfAlive((customer) => customer.populationOracleProbabilityAlive),
      },
      stages: stagesByTruth(repeat),
    },
    oneTime: {
      customers: oneTime.length,
      deadShare: shareOf(oneTime, (customer) => customer.dead),
      rules: scoreRules(oneTime, ["product", "days90", "oracle"] as const),
      stages: stagesByTruth(oneTime),
    },
    cadence: {
      oneRepeat: intervalBias(aliveRepeat.filter((customer) => customer.repeatPurchases === 1)),
      fiveOrMoreRepeats: intervalBias(aliveRepeat.filter((customer) => customer.repeatPurchases >= 5)),
      aliveRepeatOverdue3Share: shareOf(aliveRepeat, (customer) => customer.overdueRatio >= 3),
      aliveOverdue3Share: shareOf(
        scored.filter((customer) => !customer.dead),
        (customer) => customer.overdueRatio >= 3,
      ),
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// CDNOW: calibrate to 1997-09-30, truth = no purchase in weeks 40–78 (1997-10-01..1998-06-30).

export const cdnowCalibrationEnd = "19970930";
export const cdnowHoldoutEnd = "19980630";

export interface CdnowScoreAuc {
  score: string;
  allCustomers: number;
  repeatBuyers: number;
}

export interface CdnowReport {
  customers: number;
  repeatBuyers: number;
  noPurchaseShare: number;
  noPurchaseShareRepeat: number;
  aucs: CdnowScoreAuc[];
}

/** cdnowElog.csv text (masterid, sampleid, date YYYYMMDD, cds, sales) → orders per customer. */
function cdnowOrdersByCustomer(csv: string) {
  const byCustomer = new Map<string, { date: string; total: number }[]>();
  for (const line of csv.trim().split(/\r?\n/).slice(1)) {
    const [customer, , date, , sales] = line.split(",");
    if (!customer || !date || !/^\d{8}$/.test(date)) throw new Error(`cdnowOrdersByCustomer: bad line "${line}"`);
    const orders = byCustomer.get(customer) ?? [];
    orders.push({ date, total: Number(sales) });
    byCustomer.set(customer, orders);
  }
  return byCustomer;
}

const isoOfYyyymmdd = (date: string) => `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T00:00:00.000Z`;

export function evaluateCdnowHoldout(csv: string): CdnowReport {
  const now = new Date(isoOfYyyymmdd(cdnowCalibrationEnd));
  const customers = [...cdnowOrdersByCustomer(csv)].map(([customerId, orders]) => {
    const calibration = orders.filter((order) => order.date <= cdnowCalibrationEnd);
    const boughtLater = orders.some((order) => order.date > cdnowCalibrationEnd && order.date <= cdnowHoldoutEnd);
    const row = summaryRowFromOrders(
      customerId,
      calibration.map((order) => ({ placedAt: isoOfYyyymmdd(order.date), total: order.total })),
    );
    return { row, orders: calibration.length, noPurchase: !boughtLater };
  });
  const rows = customers.map((customer) => customer.row);
  const models = fitPopulationModels(rows, now);
  const classic = fitClassicBgNbd(rows, models, now);
  const horizon = 90 / models.timeUnitDays;
  const scored = customers.map(({ row, orders, noPurchase }, i) => {
    const profile = customerProfile({ summary: asProfileSummary(row, orders), categories: [], models, now });
    const rfm = classic.customers[i]!;
    return {
      noPurchase,
      repeat: rfm.x >= 1,
      // Every score is oriented so that higher means "more likely no purchase".
      scores: {
        "days since last purchase": (now.getTime() - Date.parse(row.lastOrderAt)) / dayMs,
        "−classic BG/NBD E[purchases in 90 d]": -expectedPurchasesConditional(classic.parameters, rfm, horizon),
        "1 − classic BG/NBD P(alive)": 1 - probabilityAlive(classic.parameters, rfm),
        "product: −expectedPurchases90d": -profile.expectedPurchases90d,
        "product: cadence.overdueRatio": profile.cadence.overdueRatio,
        "product: 1 − probabilityAlive": 1 - profile.probabilityAlive,
        "product: 1 − probabilityPurchase90d": 1 - profile.probabilityPurchase90d,
        "product: stage fading/lapsed (0/1)": isFlagged(profile.lifecycle.stage) ? 1 : 0,
      } as Record<string, number>,
    };
  });
  const repeat = scored.filter((customer) => customer.repeat);
  const aucOf = (group: typeof scored, score: string) =>
    rocAuc(
      group.map((customer) => customer.scores[score] as number),
      group.map((customer) => customer.noPurchase),
    );
  return {
    customers: scored.length,
    repeatBuyers: repeat.length,
    noPurchaseShare: shareOf(scored, (customer) => customer.noPurchase),
    noPurchaseShareRepeat: shareOf(repeat, (customer) => customer.noPurchase),
    aucs: Object.keys(scored[0]?.scores ?? {}).map((score) => ({
      score,
      allCustomers: aucOf(scored, score),
      repeatBuyers: aucOf(repeat, score),
    })),
  };
}
