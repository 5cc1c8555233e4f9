// How 12-month CLV is spread over the scored customers: a histogram on fixed, log-spaced buckets
// (1-2-5 in every decade), counted page by page by the nightly job and summed, so the console's chart
// never needs a scan of the scores. Fixed edges make any two histograms addable and the chart
// comparable from run to run. Pure.

/**
 * Lower edges of the buckets: [0, 1) holds the customers expected to spend next to nothing, then
 * 1-2-5 steps up to a million, the last bucket open above.
 */
export const clvBucketEdges: readonly number[] = [
  0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
  1_000_000,
];

/** Customers and their summed 12-month CLV, per bucket of clvBucketEdges. */
export interface ClvHistogram {
  customers: number[];
  clv12: number[];
}

export function emptyClvHistogram(): ClvHistogram {
  return { customers: clvBucketEdges.map(() => 0), clv12: clvBucketEdges.map(() => 0) };
}

/** The bucket a CLV falls in; a negative or non-finite value is counted in none (-1). */
export function clvBucketOf(clv: number): number {
  if (!(clv >= 0 && Number.isFinite(clv))) return -1;
  let bucket = 0;
  while (bucket + 1 < clvBucketEdges.length && clv >= clvBucketEdges[bucket + 1]!) bucket++;
  return bucket;
}

export function countClv(histogram: ClvHistogram, clv: number): void {
  const bucket = clvBucketOf(clv);
  if (bucket < 0) return;
  histogram.customers[bucket]! += 1;
  histogram.clv12[bucket]! += clv;
}

/** Adds `more` into `into` (the nightly job sums its pages); a missing or shorter array adds zeros. */
export function addClvHistograms(into: ClvHistogram, more: Partial<ClvHistogram> | undefined): ClvHistogram {
  clvBucketEdges.forEach((_, bucket) => {
    into.customers[bucket]! += more?.customers?.[bucket] ?? 0;
    into.clv12[bucket]! += more?.clv12?.[bucket] ?? 0;
  });
  return into;
}

export interface ClvBucket {
  from: number;
  /** Exclusive upper edge; null for the last, open bucket. */
  to: number | null;
  customers: number;
  clv12: number;
}

/** The buckets from the lowest to the highest one holding anyone (empty ones between kept, so the axis stays even). */
export function clvBuckets(histogram: ClvHistogram): ClvBucket[] {
  const held = clvBucketEdges.map((_, bucket) => histogram.customers[bucket] ?? 0);
  const first = held.findIndex((count) => count > 0);
  if (first < 0) return [];
  const last = held.length - 1 - [...held].reverse().findIndex((count) => count > 0);
  return clvBucketEdges.slice(first, last + 1).map((from, offset) => {
    const bucket = first + offset;
    return {
      from,
      to: clvBucketEdges[bucket + 1] ?? null,
      customers: held[bucket]!,
      clv12: histogram.clv12[bucket] ?? 0,
    };
  });
}
