// Confidence intervals and a sample-size calculation for comparing two groups, in closed form (no
// bootstrap): Wilson's score interval for a proportion, the normal (CLT) interval for a mean, the
// log-scale delta-method interval for a ratio of two independent means (Katz et al.'s interval for a
// risk ratio), the MOVER interval for a ratio of two proportions from their Wilson intervals, and the
// two-proportion sample size for unequal groups (Fleiss, Levin & Paik); a share whose trials come in
// clusters (a shopper's impressions) is given these on its effective number of trials (Kish's design effect).
//
// References:
// - E. B. Wilson (1927), "Probable inference, the law of succession, and statistical inference",
//   JASA 22(158): 209–212.
// - R. G. Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of
//   seven methods", Statistics in Medicine 17: 857–872 (the worked values the tests check).
// - D. Katz, J. Baptista, S. P. Azen, M. C. Pike (1978), "Obtaining confidence intervals for the risk
//   ratio in cohort studies", Biometrics 34(3): 469–474.
// - J. L. Fleiss, B. Levin, M. C. Paik (2003), Statistical Methods for Rates and Proportions, 3rd ed.,
//   §4.4 (sample sizes for unequal groups).
// - W. G. Cochran (1977), Sampling Techniques, 3rd ed., §6.3 (the variance of a ratio estimate).
// - L. Kish (1965), Survey Sampling, §8.2 (the design effect of cluster samples).
// - G. Y. Zou, A. Donner (2008), "Construction of confidence limits about effect measures: A general
//   approach", Statistics in Medicine 27(10): 1693–1702 (MOVER: an interval for a difference from the
//   intervals of its two parts; here ln p1 − ln p2, for a ratio of proportions).

/** The standard normal quantile at 0.975: a two-sided 95% interval is estimate ± z95 × SE. */
export const z95 = 1.959963984540054;
/** The standard normal quantile at 0.80: the z for 80% power. */
export const z80 = 0.8416212335729143;

export type Interval = [low: number, high: number];

/** An estimate with its standard error, and for a mean the number of values it is from. */
export interface Estimate {
  value: number;
  se: number;
  n?: number;
}

/**
 * The fewest values a mean's normal interval is given from (a rule of thumb, not a derived figure):
 * below it the sample standard deviation is a poor stand-in for σ and a skewed mean (revenue) is far
 * from normal. Values all alike (a standard deviation of 0) give none either: two shoppers with 3
 * impressions each would have an interval of no width, as if the mean were known exactly.
 */
export const minValuesForMeanInterval = 30;

/** Whether an interval may be built on the estimate's standard error (minValuesForMeanInterval). */
const intervalReady = (estimate: Estimate) =>
  estimate.se > 0 && (estimate.n === undefined || estimate.n >= minValuesForMeanInterval);

/** Wilson's score interval for `successes` out of `trials`; null without trials. */
export function wilsonInterval(successes: number, trials: number, z = z95): Interval | null {
  if (!(trials > 0) || successes < 0 || successes > trials) return null;
  const p = successes / trials;
  const z2 = z * z;
  const centre = (p + z2 / (2 * trials)) / (1 + z2 / trials);
  const half = (z / (1 + z2 / trials)) * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/**
 * The mean of n values from their sum and sum of squares, with the standard error s/√n (s the sample
 * standard deviation); null below two values.
 */
export function meanEstimate(sum: number, sumOfSquares: number, n: number): Estimate | null {
  if (!(n >= 2)) return null;
  const mean = sum / n;
  const variance = Math.max(0, (sumOfSquares - n * mean * mean) / (n - 1));
  return { value: mean, se: Math.sqrt(variance / n), n };
}

/**
 * estimate ± z × SE, clipped below at `floor` (counts and rates cannot be negative); null from too few
 * values or values all alike (minValuesForMeanInterval).
 */
export function normalInterval(estimate: Estimate, z = z95, floor = 0): Interval | null {
  if (!intervalReady(estimate)) return null;
  return [Math.max(floor, estimate.value - z * estimate.se), estimate.value + z * estimate.se];
}

/**
 * The ratio a ÷ b of two independent estimates with its interval on the log scale (delta method), for
 * means (proportions have proportionRatio):
 * log(a/b) ± z × √((SEa/a)² + (SEb/b)²), back-transformed. Null when either estimate is not positive;
 * the ratio without an interval when either has none (normalInterval).
 */
export function ratioEstimate(a: Estimate, b: Estimate, z = z95): { value: number; ci95: Interval | null } | null {
  if (!(a.value > 0 && b.value > 0)) return null;
  const ratio = a.value / b.value;
  if (!intervalReady(a) || !intervalReady(b)) return { value: ratio, ci95: null };
  const seLog = Math.sqrt((a.se / a.value) ** 2 + (b.se / b.value) ** 2);
  return { value: ratio, ci95: [ratio * Math.exp(-z * seLog), ratio * Math.exp(z * seLog)] };
}

/**
 * The design effect of a share whose trials come in clusters: Σy successes of Σx trials over n clusters
 * (shoppers), from the clusters' sums Σy², Σx² and Σxy. The variance of the ratio estimate R = Σy ÷ Σx
 * (Cochran 1977, §6.3), n·Σ(yᵢ − R xᵢ)² ÷ ((n − 1)(Σx)²), over the variance R(1 − R) ÷ Σx it would have
 * if every trial were independent (Kish 1965, §8.2): how many times fewer independent trials the
 * clusters are worth. A shopper who clicks on everything and one who clicks on nothing make impressions
 * far from independent. Never below 1, so the interval built on it is never narrower than one that
 * treats the trials as independent; 1 where it cannot be estimated (under two clusters, or a share of 0
 * or 1, which has no binomial variance to compare with).
 */
export function clusterDesignEffect(
  clusters: number,
  successes: number,
  successSquares: number,
  trials: number,
  trialSquares: number,
  successTrials: number,
): number {
  if (!(clusters >= 2 && trials > 0)) return 1;
  const share = successes / trials;
  const binomial = (share * (1 - share)) / trials;
  if (!(binomial > 0)) return 1;
  const residualSquares = Math.max(0, successSquares - 2 * share * successTrials + share * share * trialSquares);
  const clustered = (clusters * residualSquares) / ((clusters - 1) * trials * trials);
  return Math.max(1, clustered / binomial);
}

/**
 * The ratio p1 ÷ p2 of two independent proportions (s1 of n1, s2 of n2) with its interval by MOVER
 * (Zou & Donner 2008) on the log scale: ln p1 − ln p2 with the logs of each proportion's Wilson limits,
 *   low  = ln r − √((ln p1 − ln l1)² + (ln u2 − ln p2)²),
 *   high = ln r + √((ln u1 − ln p1)² + (ln p2 − ln l2)²),
 * back-transformed. Unlike the delta method's √(p(1 − p)/n), it keeps the uncertainty of an arm that
 * converted all (or nearly all) of a few shoppers: 1 of 1 has a Wilson interval of 0.21 to 1, not a
 * standard error of 0. Null unless both proportions are positive.
 */
export function proportionRatio(
  s1: number,
  n1: number,
  s2: number,
  n2: number,
  z = z95,
): { value: number; ci95: Interval } | null {
  const first = wilsonInterval(s1, n1, z);
  const second = wilsonInterval(s2, n2, z);
  if (!first || !second || !(s1 > 0 && s2 > 0)) return null;
  const [p1, p2] = [s1 / n1, s2 / n2];
  const [[l1, u1], [l2, u2]] = [first, second];
  const ratio = p1 / p2;
  const below = Math.hypot(Math.log(p1 / l1), Math.log(u2 / p2));
  const above = Math.hypot(Math.log(u1 / p1), Math.log(p2 / l2));
  return { value: ratio, ci95: [ratio * Math.exp(-below), ratio * Math.exp(above)] };
}

/**
 * Shoppers needed in group 2 to tell proportions p1 and p2 apart with a two-sided test at level
 * α (zAlpha) and the given power (zBeta), when group 1 is `ratio` times the size of group 2 (Fleiss,
 * Levin & Paik 2003, eq. 4.19 without continuity correction):
 * n2 = (zα √(p̄q̄ (1 + 1/r)) + zβ √(p1q1/r + p2q2))² / (p1 − p2)², p̄ = (r p1 + p2)/(r + 1).
 * Null when the proportions are equal (no sample size tells a zero difference from none).
 */
export function twoProportionSampleSize(
  p1: number,
  p2: number,
  ratio: number,
  zAlpha = z95,
  zBeta = z80,
): number | null {
  const difference = p1 - p2;
  if (difference === 0 || !(ratio > 0) || !Number.isFinite(ratio)) return null;
  const pooled = (ratio * p1 + p2) / (ratio + 1);
  const a = zAlpha * Math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio));
  const b = zBeta * Math.sqrt((p1 * (1 - p1)) / ratio + p2 * (1 - p2));
  return Math.ceil((a + b) ** 2 / difference ** 2);
}

/**
 * The information (1 / variance of the difference) at which `anytimeDifference`'s interval is tuned to
 * be narrowest: two arms of 1,000 shoppers converting 10%. Any fixed value keeps the interval valid;
 * this one only decides where it is tightest (Howard et al. 2021, §3.5: ρ = I* / (2 ln(1/α) + ln(1 + 2 ln(1/α)))).
 */
const tunedInformation = 1 / (2 * ((0.1 * 0.9) / 1000));

/**
 * An always-valid (anytime) 95% interval for p₁ − p₂ from s₁ of n₁ and s₂ of n₂: it holds at every
 * sample size at once, so reading it every day and stopping the first time it excludes 0 keeps the
 * chance of a false verdict at 5%, where a fixed-sample interval read that way calls far more. The
 * normal-mixture boundary (Robbins 1970; Howard, Ramdas, McAuliffe & Sekhon 2021) on the difference's
 * estimate with variance v (each arm's Agresti–Caffo share (s + 1) / (n + 2), so 0 of n and n of n keep
 * a variance): d̂ ± √(v (1 + ρv) ln((1 + ρv) / (ρv α²))). Asymptotic, as the fixed intervals are: the
 * variance is estimated. Null while an arm is empty.
 */
export function anytimeDifference(
  s1: number,
  n1: number,
  s2: number,
  n2: number,
  alpha = 0.05,
): { value: number; ci95: Interval } | null {
  if (!(n1 > 0 && n2 > 0)) return null;
  const share = (s: number, n: number) => (s + 1) / (n + 2);
  const [a, b] = [share(s1, n1), share(s2, n2)];
  const variance = (a * (1 - a)) / n1 + (b * (1 - b)) / n2;
  const half = anytimeHalfWidth(variance, alpha);
  const value = s1 / n1 - s2 / n2;
  // A difference of two shares is never beyond ±1.
  return { value, ci95: [Math.max(-1, value - half), Math.min(1, value + half)] };
}

/** The normal-mixture boundary's half-width for an estimate of variance `variance` (see anytimeDifference). */
function anytimeHalfWidth(variance: number, alpha: number): number {
  const logAlpha = 2 * Math.log(1 / alpha);
  const rv = (tunedInformation / (logAlpha + Math.log(1 + logAlpha))) * variance;
  return Math.sqrt(variance * (1 + rv) * Math.log((1 + rv) / (rv * alpha ** 2)));
}

/**
 * Shoppers needed in group 2 (group 1 `ratio` times as many) for `anytimeDifference`'s interval to
 * exclude 0 with the given power (zBeta) when the true shares are p1 and p2: the smallest n₂ with
 * |p₁ − p₂| ≥ half-width + zβ·√v, v the difference's variance at n₁ = r n₂ and n₂ as anytimeDifference
 * estimates it (found by bisection; the right side falls as n₂ grows). More than a fixed-sample test's (twoProportionSampleSize) needs:
 * the price of an interval that may be read every day. Null when the shares are equal.
 */
export function anytimeSampleSize(p1: number, p2: number, ratio: number, alpha = 0.05, zBeta = z80): number | null {
  const difference = Math.abs(p1 - p2);
  if (difference === 0 || !(ratio > 0) || !Number.isFinite(ratio)) return null;
  // As anytimeDifference estimates it: each share drawn a little toward ½, so 0 of n keeps a variance.
  const variance = (n2: number) => {
    const [a, b] = [(p1 * ratio * n2 + 1) / (ratio * n2 + 2), (p2 * n2 + 1) / (n2 + 2)];
    return (a * (1 - a)) / (ratio * n2) + (b * (1 - b)) / n2;
  };
  const enough = (n2: number) => {
    const v = variance(n2);
    return v === 0 || anytimeHalfWidth(v, alpha) + zBeta * Math.sqrt(v) <= difference;
  };
  let [low, high] = [1, 2];
  while (!enough(high)) {
    if (high > 1e13) return null;
    [low, high] = [high, high * 2];
  }
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (enough(middle)) high = middle;
    else low = middle;
  }
  return enough(low) ? low : high;
}
