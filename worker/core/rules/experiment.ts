// The holdout experiment read with its uncertainty: per arm, impressions and attributed orders per
// shopper, click-through rate, conversion (share of shoppers with an attributed order) and revenue per
// shopper, each with a 95% interval; the personalized ÷ holdout lift of each with its interval; and a
// verdict in plain words on conversion, with the sample size a standard power calculation asks for.
// The unit is the shopper (a customer shown at least one recommendation in the window): per-shopper
// sums and sums of squares come in, so nothing here reads rows. Methods: ../math/intervals.ts.

import {
  anytimeDifference,
  anytimeSampleSize,
  clusterDesignEffect,
  type Estimate,
  type Interval,
  meanEstimate,
  normalInterval,
  proportionRatio,
  ratioEstimate,
  wilsonInterval,
} from "../math/intervals.ts";
import { roundTo } from "../math/round.ts";

/** One arm's per-shopper totals: Σx and Σx² over its shoppers for each per-shopper count. */
export interface ArmTotals {
  shoppers: number;
  impressions: number;
  impressionsSquares: number;
  clicks: number;
  /** Σ clicks² and Σ clicks × impressions over shoppers: how alike the shoppers' click-through is. */
  clicksSquares: number;
  clicksImpressions: number;
  orders: number;
  ordersSquares: number;
  /** Shoppers with at least one attributed order. */
  converted: number;
  revenue: number;
  revenueSquares: number;
}

export interface Measured {
  value: number | null;
  ci95: Interval | null;
}

export const experimentMetrics = [
  "impressionsPerShopper",
  "clickThroughRate",
  "attributedOrdersPerShopper",
  "conversion",
  "revenuePerShopper",
] as const;
export type ExperimentMetric = (typeof experimentMetrics)[number];
export type Intervals = Record<ExperimentMetric, Measured>;

export interface Verdict {
  /** The metric the verdict is about. */
  metric: "conversion";
  /**
   * True once the always-valid interval of the conversion difference (`difference`) excludes 0: it
   * holds however often the results are read, so reading them daily does not make a false verdict likelier.
   */
  decided: boolean;
  /**
   * Personalized minus holdout conversion (a share) with its always-valid 95% interval, the one the
   * verdict waits for; null while an arm is empty.
   */
  difference: Measured | null;
  /** Which arm does better when decided. */
  winner: "personalized" | "holdout" | null;
  /**
   * Shoppers (both arms) the always-valid two-sided 5% test needs to detect the difference seen with
   * 80% power (anytimeSampleSize).
   */
  shoppersNeeded: number | null;
  /** shoppersNeeded minus the shoppers seen so far; null when it cannot be estimated. */
  moreShoppersNeeded: number | null;
  text: string;
}

export interface ExperimentReading {
  arms: { personalized: Intervals; holdout: Intervals };
  lift: Intervals;
  verdict: Verdict;
}

const none: Measured = { value: null, ci95: null };
/** A value and its interval, rounded to `places`. */
export const rounded = (value: number, ci95: Interval | null, places = 4): Measured => ({
  value: roundTo(value, places),
  ci95: ci95 ? [roundTo(ci95[0], places), roundTo(ci95[1], places)] : null,
});

type Share = { share: (arm: ArmTotals) => [successes: number, trials: number] };
type Mean = { mean: (arm: ArmTotals) => Estimate | null; places: number };

/** How each metric is measured in an arm: a share by its counts, or a per-shopper mean by its sums. */
const measures: Record<ExperimentMetric, Share | Mean> = {
  impressionsPerShopper: {
    mean: (arm) => meanEstimate(arm.impressions, arm.impressionsSquares, arm.shoppers),
    places: 3,
  },
  // A shopper's impressions are not independent trials (some click often, most never): the counts are
  // taken down by the arm's design effect, so the interval is as wide as the shoppers make it.
  clickThroughRate: {
    share: (arm) => {
      const effect = clusterDesignEffect(
        arm.shoppers,
        arm.clicks,
        arm.clicksSquares,
        arm.impressions,
        arm.impressionsSquares,
        arm.clicksImpressions,
      );
      return [arm.clicks / effect, arm.impressions / effect];
    },
  },
  attributedOrdersPerShopper: { mean: (arm) => meanEstimate(arm.orders, arm.ordersSquares, arm.shoppers), places: 4 },
  conversion: { share: (arm) => [arm.converted, arm.shoppers] },
  revenuePerShopper: { mean: (arm) => meanEstimate(arm.revenue, arm.revenueSquares, arm.shoppers), places: 2 },
};

/** Each metric of one arm with its 95% interval: Wilson's for a share, the normal one for a mean. */
function intervalsOf(arm: ArmTotals): Intervals {
  const measured = (measure: Share | Mean): Measured => {
    if ("share" in measure) {
      const [successes, trials] = measure.share(arm);
      return trials > 0 ? rounded(successes / trials, wilsonInterval(successes, trials)) : none;
    }
    const estimate = measure.mean(arm);
    return estimate ? rounded(estimate.value, normalInterval(estimate), measure.places) : none;
  };
  return Object.fromEntries(experimentMetrics.map((metric) => [metric, measured(measures[metric])])) as Intervals;
}

/** personalized ÷ holdout for one metric with its interval: MOVER for shares, the delta method for means. */
function ratioOf(metric: ExperimentMetric, personalized: ArmTotals, holdout: ArmTotals) {
  const measure = measures[metric];
  if ("share" in measure) return proportionRatio(...measure.share(personalized), ...measure.share(holdout));
  const [a, b] = [measure.mean(personalized), measure.mean(holdout)];
  return a && b ? ratioEstimate(a, b) : null;
}

/** A lift in the verdict's text: to 3 places, as the response's lifts are. */
const times = (ratio: number) => `${ratio.toFixed(3)}×`;

/** A rounded lift with a value and an interval, or null. */
const shownLift = ({ value, ci95 }: Measured): { value: number; ci95: Interval } | null =>
  value !== null && ci95 !== null ? { value, ci95 } : null;
const count = (n: number) => n.toLocaleString("en-US");
/** A difference of shares in percentage points, signed: "+2.1", "−0.4". */
export const points = (share: number) => {
  const value = (share * 100).toFixed(1);
  return share > 0 ? `+${value}` : value.replace("-", "−");
};

function verdictOf(
  personalized: ArmTotals,
  holdout: ArmTotals,
  lift: { value: number; ci95: Interval } | null,
  plannedRatio: number,
): Verdict {
  const anytime = anytimeDifference(personalized.converted, personalized.shoppers, holdout.converted, holdout.shoppers);
  const difference = anytime ? rounded(anytime.value, anytime.ci95, 4) : null;
  const base = { metric: "conversion" as const, difference };
  const seen = personalized.shoppers + holdout.shoppers;
  const p1 = personalized.shoppers > 0 ? personalized.converted / personalized.shoppers : null;
  const p2 = holdout.shoppers > 0 ? holdout.converted / holdout.shoppers : null;
  const ratio =
    personalized.shoppers > 0 && holdout.shoppers > 0 ? personalized.shoppers / holdout.shoppers : plannedRatio;
  // Sized for the always-valid interval the verdict waits for, not a single look's.
  const perHoldout = p1 !== null && p2 !== null ? anytimeSampleSize(p1, p2, ratio) : null;
  const shoppersNeeded = perHoldout === null ? null : Math.ceil(perHoldout * (1 + ratio));
  const moreShoppersNeeded = shoppersNeeded === null ? null : Math.max(0, shoppersNeeded - seen);

  const excludesOne = lift !== null && (lift.ci95[0] > 1 || lift.ci95[1] < 1);
  const always = difference?.ci95 ?? null;
  const decided = (winner: "personalized" | "holdout", text: string): Verdict => ({
    ...base,
    decided: true,
    winner,
    shoppersNeeded,
    moreShoppersNeeded: 0,
    text,
  });
  // The headline quotes the interval that decided, the always-valid one: the lift's own interval is a
  // single look's, narrower, and would claim a certainty the verdict does not rest on.
  const decidedBy = (value: number, [low, high]: Interval) =>
    `a difference of ${points(value)} points (always-valid 95% CI ${points(low)} to ${points(high)}), over ${count(seen)} shoppers`;
  if (lift && excludesOne && difference && always && (always[0] > 0 || always[1] < 0)) {
    const by = decidedBy(difference.value ?? 0, always);
    return lift.ci95[0] > 1
      ? decided("personalized", `personalized shelves convert ${times(lift.value)} as often as the holdout: ${by}`)
      : decided(
          "holdout",
          `personalized shelves convert less often than the holdout, ${times(lift.value)} as often: ${by}`,
        );
  }
  // An arm with no attributed order has no lift (a ratio to 0), but the difference can still be decided.
  if (lift === null && difference && always && (always[0] > 0 || always[1] < 0)) {
    const better = always[0] > 0;
    return decided(
      better ? "personalized" : "holdout",
      `${better ? "personalized shelves convert, the holdout does not" : "the holdout converts, personalized shelves do not"}: ${decidedBy(difference.value ?? 0, always)}`,
    );
  }
  const undecided = (why: string): Verdict => ({
    ...base,
    decided: false,
    winner: null,
    shoppersNeeded,
    moreShoppersNeeded,
    text: `not enough data yet: ${why}`,
  });
  let why: string;
  if (personalized.shoppers === 0 || holdout.shoppers === 0) {
    why = `no shoppers in the ${personalized.shoppers === 0 ? "personalized" : "holdout"} arm yet`;
  } else if (lift === null) {
    why = `no attributed orders in ${personalized.converted === 0 ? "the personalized arm" : "the holdout"} yet, over ${count(seen)} shoppers`;
  } else if (excludesOne && difference && always) {
    // One look's interval excludes no difference; the verdict waits for the one that holds at every look.
    return undecided(
      `conversion lift ${times(lift.value)}, 95% CI ${times(lift.ci95[0])} to ${times(lift.ci95[1])}, excludes no difference on this one look, but the verdict waits for the always-valid interval, which holds however often the results are read: the difference in conversion is ${points(difference.value ?? 0)} points, always-valid 95% CI ${points(always[0])} to ${points(always[1])}, over ${count(seen)} shoppers`,
    );
  } else {
    why = `conversion lift ${times(lift.value)}, 95% CI ${times(lift.ci95[0])} to ${times(lift.ci95[1])}, still includes no difference`;
  }
  // Rates from a handful of shoppers swing widely: 1 order of 3 shoppers makes a 33-point gap.
  const rough =
    Math.min(personalized.shoppers, holdout.shoppers) < 30
      ? "; a rough guess while an arm has under 30 shoppers: it moves as the rates settle"
      : "";
  const more =
    moreShoppersNeeded === null
      ? p1 !== null && p2 !== null && p1 === p2 && seen > 0
        ? "; both arms convert at the same rate so far, so no sample size can be estimated"
        : ""
      : moreShoppersNeeded > 0
        ? `; about ${count(moreShoppersNeeded)} more shoppers are needed to detect a difference this size (the always-valid 5% two-sided test, 80% power${rough})`
        : lift === null
          ? "" // An arm without an order: too little to say what the true difference is like.
          : `; the sample is already as large as a difference this size needs, so the true difference is likely smaller${rough ? ` (${rough.slice(2)})` : ""}`;
  return undecided(`${why}${more}`);
}

/**
 * Reads the experiment. `plannedRatio` (personalized shoppers per held-out shopper, e.g. 9 for a 10%
 * holdout) sizes the power calculation while an arm is still empty.
 */
export function readExperiment(personalized: ArmTotals, holdout: ArmTotals, plannedRatio: number): ExperimentReading {
  const liftOf = (metric: ExperimentMetric): Measured => {
    const ratio = ratioOf(metric, personalized, holdout);
    return ratio ? rounded(ratio.value, ratio.ci95, 3) : none;
  };
  const lift = Object.fromEntries(experimentMetrics.map((metric) => [metric, liftOf(metric)])) as Intervals;
  return {
    arms: { personalized: intervalsOf(personalized), holdout: intervalsOf(holdout) },
    lift,
    // Judged on the conversion lift as the response shows it (3 places), so the verdict, its text and
    // the lift's own interval never disagree about whether it excludes 1.
    verdict: verdictOf(personalized, holdout, shownLift(lift.conversion), plannedRatio),
  };
}

export const emptyArm: ArmTotals = {
  shoppers: 0,
  impressions: 0,
  impressionsSquares: 0,
  clicks: 0,
  clicksSquares: 0,
  clicksImpressions: 0,
  orders: 0,
  ordersSquares: 0,
  converted: 0,
  revenue: 0,
  revenueSquares: 0,
};
