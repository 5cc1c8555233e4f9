// Sample quantiles and percentile ranks over sorted numbers, shared by the tiering and price-band
// models. Quantiles use linear interpolation between order statistics (Hyndman & Fan 1996, type 7,
// the default of R and NumPy). Inputs must already be sorted ascending; only medianOf sorts (a copy).
// The one quantile and the one median of the project: other modules import these.

/** The q-quantile (0 ≤ q ≤ 1) of ascending `sorted`; NaN when it is empty. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (!(q >= 0 && q <= 1)) throw new Error(`quantileSorted: q must be in [0, 1], got ${q}`);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const position = (n - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.min(n - 1, lower + 1);
  const weight = position - lower;
  return sorted[lower]! + weight * (sorted[upper]! - sorted[lower]!);
}

/** The median of `values` in any order (a sorted copy; the input is left alone); NaN when empty. */
export function medianOf(values: ArrayLike<number>): number {
  return quantileSorted(Float64Array.from(values).sort(), 0.5);
}

/**
 * Mid-rank percentile of `value` within ascending `sorted`, in [0, 1]: the share of values below it
 * plus half the share equal to it, so ties do not all land at the top.
 */
export function percentileRankSorted(sorted: ArrayLike<number>, value: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const below = lowerBound(sorted, value);
  let above = below;
  while (above < n && sorted[above]! === value) above++;
  return (below + 0.5 * (above - below)) / n;
}

function lowerBound(sorted: ArrayLike<number>, value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]! < value) low = middle + 1;
    else high = middle;
  }
  return low;
}
