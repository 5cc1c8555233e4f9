// Individual purchase cadence: how often this customer buys (overall or in one category), judged
// against their own rhythm rather than a fixed 60/120-day rule. Times in days; dates as ISO strings.
// Short histories are shrunk toward a population interval (a Gamma-Poisson style pseudo-count), so a
// customer with two orders ten days apart is not assumed to buy every ten days forever.
// It does not say whether a customer is still alive; that is BG/NBD's P(alive) (bg-nbd.ts).

export interface PurchaseHistory {
  /** Distinct days with a purchase. */
  purchaseDays: number;
  firstPurchaseAt: string;
  lastPurchaseAt: string;
}

export interface CadenceOptions {
  /** The population's typical interval between purchases, in days. */
  priorIntervalDays: number;
  /** Weight of the prior, in pseudo-intervals: with this many observed intervals, own and prior count equally. */
  priorWeight: number;
  /**
   * Once overdue, the expected wait from today as a share of the interval for a perfectly regular
   * customer (an irregular one waits a full interval, as with memoryless exponential gaps). Default 0.5.
   */
  overdueWaitShare?: number;
}

export const defaultCadenceOptions: CadenceOptions = { priorIntervalDays: 45, priorWeight: 2, overdueWaitShare: 0.5 };

export interface Cadence {
  /** Expected days between purchases, shrunk toward the prior when the history is short. */
  expectedIntervalDays: number;
  /** Intervals actually observed (purchase days − 1). */
  observedIntervals: number;
  daysSinceLast: number;
  /** Days since the last purchase ÷ expected interval: 1 means due now, 2 means twice as late as usual. */
  overdueRatio: number;
  /**
   * When the next purchase is expected. Before it is due: last purchase + interval. Once overdue it
   * moves with today (now + the part of an interval still expected), so it is never a date in the past.
   */
  nextExpectedAt: string;
}

const dayMs = 86_400_000;

export function daysBetween(fromIso: string, to: Date): number {
  return (to.getTime() - Date.parse(fromIso)) / dayMs;
}

export function cadenceOf(
  history: PurchaseHistory,
  now: Date,
  options: CadenceOptions = defaultCadenceOptions,
): Cadence {
  const overdueWaitShare = options.overdueWaitShare ?? 0.5;
  if (
    !(options.priorIntervalDays > 0) ||
    !(options.priorWeight >= 0) ||
    !(overdueWaitShare >= 0 && overdueWaitShare <= 1)
  ) {
    throw new Error("cadenceOf: priorIntervalDays must be > 0, priorWeight >= 0 and overdueWaitShare in [0, 1]");
  }
  const firstMs = Date.parse(history.firstPurchaseAt);
  const lastMs = Date.parse(history.lastPurchaseAt);
  if (Number.isNaN(firstMs) || Number.isNaN(lastMs)) throw new Error("cadenceOf: purchase dates must be ISO strings");
  const observedIntervals = Math.max(0, history.purchaseDays - 1);
  const span = Math.max(0, (lastMs - firstMs) / dayMs);
  const pooledWeight = observedIntervals + options.priorWeight;
  const pooled = pooledWeight > 0 ? (span + options.priorWeight * options.priorIntervalDays) / pooledWeight : 0;
  // No prior weight and no usable span (one purchase, or all on one day) says nothing: use the prior
  // rather than an interval of zero, which would make everyone infinitely overdue.
  const expectedIntervalDays = pooled > 0 ? pooled : options.priorIntervalDays;
  const daysSinceLast = Math.max(0, daysBetween(history.lastPurchaseAt, now));
  const overdueRatio = daysSinceLast / expectedIntervalDays;
  const dueAt = lastMs + expectedIntervalDays * dayMs;
  // Once overdue, an exponential waiting time with the same mean is memoryless: the expected wait
  // from today is still about one interval's worth, scaled down by how regular the customer has been.
  const regularity = pooledWeight > 0 ? observedIntervals / pooledWeight : 1;
  const remaining = expectedIntervalDays * (1 - (1 - overdueWaitShare) * regularity);
  const next = dueAt > now.getTime() ? dueAt : now.getTime() + remaining * dayMs;
  return {
    expectedIntervalDays,
    observedIntervals,
    daysSinceLast,
    overdueRatio,
    nextExpectedAt: new Date(next).toISOString(),
  };
}
