// The CLV histogram the nightly job counts page by page and the Overview charts.
import { describe, expect, it } from "vitest";
import {
  addClvHistograms,
  clvBucketEdges,
  clvBucketOf,
  clvBuckets,
  countClv,
  emptyClvHistogram,
} from "../../worker/core/insights/clv-distribution.ts";

describe("CLV buckets", () => {
  it("are log-spaced, 1-2-5 in every decade, from 0 to an open bucket above a million", () => {
    expect(clvBucketEdges.slice(0, 8)).toEqual([0, 1, 2, 5, 10, 20, 50, 100]);
    for (let bucket = 2; bucket < clvBucketEdges.length; bucket++) {
      const ratio = clvBucketEdges[bucket]! / clvBucketEdges[bucket - 1]!;
      expect([2, 2.5]).toContain(ratio);
    }
    expect(clvBucketEdges.at(-1)).toBe(1_000_000);
  });

  it("put a CLV in the bucket whose lower edge it reaches, and nothing negative or non-finite anywhere", () => {
    expect(clvBucketOf(0)).toBe(0);
    expect(clvBucketOf(0.99)).toBe(0);
    expect(clvBucketOf(1)).toBe(1);
    expect(clvBucketOf(4.99)).toBe(2);
    expect(clvBucketOf(5)).toBe(3);
    expect(clvBucketOf(149)).toBe(7);
    expect(clvBucketOf(5e7)).toBe(clvBucketEdges.length - 1);
    for (const odd of [-1, Number.NaN, Number.POSITIVE_INFINITY]) expect(clvBucketOf(odd)).toBe(-1);
  });
});

describe("CLV histogram", () => {
  it("counts customers and sums their CLV per bucket, and adds pages up to the whole", () => {
    const pages = [
      [3, 7, 8, 120],
      [150, 0.5, 9999, Number.NaN],
    ];
    const whole = emptyClvHistogram();
    for (const clv of pages.flat()) countClv(whole, clv);
    const summed = emptyClvHistogram();
    for (const page of pages) {
      const histogram = emptyClvHistogram();
      for (const clv of page) countClv(histogram, clv);
      addClvHistograms(summed, histogram);
    }
    expect(summed).toEqual(whole);
    expect(whole.customers.reduce((a, b) => a + b, 0)).toBe(7);
    expect(whole.customers[clvBucketOf(7)]).toBe(2);
    expect(whole.clv12[clvBucketOf(7)]).toBe(15);
    expect(addClvHistograms(emptyClvHistogram(), undefined)).toEqual(emptyClvHistogram());
  });

  it("shows the buckets from the lowest to the highest held, keeping the empty ones between", () => {
    const histogram = emptyClvHistogram();
    for (const clv of [12, 15, 480, 55]) countClv(histogram, clv);
    expect(clvBuckets(histogram)).toEqual([
      { from: 10, to: 20, customers: 2, clv12: 27 },
      { from: 20, to: 50, customers: 0, clv12: 0 },
      { from: 50, to: 100, customers: 1, clv12: 55 },
      { from: 100, to: 200, customers: 0, clv12: 0 },
      { from: 200, to: 500, customers: 1, clv12: 480 },
    ]);
    countClv(histogram, 2e6);
    expect(clvBuckets(histogram).at(-1)).toEqual({ from: 1_000_000, to: null, customers: 1, clv12: 2e6 });
    expect(clvBuckets(emptyClvHistogram())).toEqual([]);
  });
});
