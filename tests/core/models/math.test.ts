import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { gammaln, logBeta } from "../../../worker/core/math/gammaln.ts";
import { hyp2f1 } from "../../../worker/core/math/hyp2f1.ts";
import { minimizeNelderMead } from "../../../worker/core/math/nelder-mead.ts";
import { percentileRankSorted, quantileSorted } from "../../../worker/core/math/quantile.ts";

describe("gammaln", () => {
  it("matches log factorials and Γ(1/2) = √π", () => {
    let logFactorial = 0;
    for (let n = 1; n <= 170; n++) {
      expect(gammaln(n)).toBeCloseTo(logFactorial, 10);
      logFactorial += Math.log(n);
    }
    expect(gammaln(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 13);
  });

  it("satisfies Γ(x + 1) = x Γ(x) in logs, including small and huge x", () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-6, max: 1e7, noNaN: true }), (x) => {
        const difference = gammaln(x + 1) - gammaln(x);
        expect(Math.abs(difference - Math.log(x))).toBeLessThan(1e-9 * Math.max(1, Math.abs(Math.log(x)) + gammaln(x)));
      }),
    );
  });

  it("gives a finite value where Γ itself overflows, and refuses x <= 0", () => {
    // Stirling: ln Γ(1000) = 999 ln 1000 − 1000 + ½ ln(2π/1000) + 1/12000 − ...
    const stirling = 999.5 * Math.log(1000) - 1000 + 0.5 * Math.log(2 * Math.PI) + 1 / 12000;
    expect(gammaln(1000)).toBeCloseTo(stirling, 8);
    expect(() => gammaln(0)).toThrow(/gammaln/);
    expect(() => gammaln(-1.5)).toThrow(/gammaln/);
  });

  it("logBeta is symmetric and matches B(1, b) = 1/b", () => {
    expect(logBeta(1, 4)).toBeCloseTo(-Math.log(4), 13);
    expect(logBeta(2.5, 0.3)).toBeCloseTo(logBeta(0.3, 2.5), 14);
  });
});

describe("hyp2f1", () => {
  it("matches closed forms", () => {
    for (const z of [0, 0.1, 0.5, 0.9, 0.99]) {
      // 2F1(1, 1; 2; z) = −ln(1 − z) / z
      expect(hyp2f1(1, 1, 2, z)).toBeCloseTo(z === 0 ? 1 : -Math.log1p(-z) / z, 10);
      // 2F1(a, b; b; z) = (1 − z)^(−a)
      expect(hyp2f1(0.7, 3.2, 3.2, z)).toBeCloseTo((1 - z) ** -0.7, 9);
      // 2F1(1/2, 1; 3/2; z²) = artanh(z) / z
      const s = Math.sqrt(z);
      expect(hyp2f1(0.5, 1, 1.5, z)).toBeCloseTo(z === 0 ? 1 : Math.atanh(s) / s, 10);
    }
  });

  it("agrees with Euler's transformation 2F1(a,b;c;z) = (1−z)^(c−a−b) 2F1(c−a, c−b; c; z)", () => {
    fc.assert(
      fc.property(
        // Up to 10: beyond that, c − a is strongly negative and the transformed series' alternating
        // terms cancel (a double keeps ~1e-12 of the largest term), which the models never need.
        fc.double({ min: 0.05, max: 10, noNaN: true }),
        fc.double({ min: 0.05, max: 10, noNaN: true }),
        fc.double({ min: 0.05, max: 20, noNaN: true }),
        fc.double({ min: 0, max: 0.9, noNaN: true }),
        (a, b, c, z) => {
          const direct = hyp2f1(a, b, c, z);
          const euler = (1 - z) ** (c - a - b) * hyp2f1(c - a, c - b, c, z);
          expect(Math.abs(direct - euler)).toBeLessThan(1e-9 * Math.max(1, Math.abs(direct)));
        },
      ),
    );
  });

  it("terminates for a negative integer parameter and refuses z outside [0, 1)", () => {
    // 2F1(−2, b; c; z) = 1 − 2bz/c + b(b+1)z²/(c(c+1))
    expect(hyp2f1(-2, 3, 4, 0.5)).toBeCloseTo(1 - (2 * 3 * 0.5) / 4 + (3 * 4 * 0.25) / (4 * 5), 14);
    expect(() => hyp2f1(1, 1, 2, 1)).toThrow(/hyp2f1/);
    expect(() => hyp2f1(1, 1, 2, -0.1)).toThrow(/hyp2f1/);
  });
});

describe("minimizeNelderMead", () => {
  it("finds the Rosenbrock minimum at (1, 1)", () => {
    const rosenbrock = ([x, y]: number[]) => 100 * (y! - x! * x!) ** 2 + (1 - x!) ** 2;
    const result = minimizeNelderMead(rosenbrock, [-1.2, 1]);
    expect(result.converged).toBe(true);
    expect(result.point[0]).toBeCloseTo(1, 5);
    expect(result.point[1]).toBeCloseTo(1, 5);
    expect(result.value).toBeLessThan(1e-10);
  });

  it("finds the minimum of random shifted quadratics", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 1, maxLength: 5 }), (centre) => {
        const result = minimizeNelderMead(
          (point) => point.reduce((sum, value, index) => sum + (index + 1) * (value - centre[index]!) ** 2, 0),
          centre.map(() => 0),
        );
        for (const [index, value] of result.point.entries()) expect(value).toBeCloseTo(centre[index]!, 4);
      }),
      { numRuns: 30 },
    );
  });

  it("moves away from non-finite values and reports non-convergence when out of iterations", () => {
    const walled = ([x]: number[]) => (x! < 0 ? Number.NaN : (x! - 2) ** 2);
    expect(minimizeNelderMead(walled, [0.5]).point[0]).toBeCloseTo(2, 5);
    const starved = minimizeNelderMead(([x, y]) => (x! - 3) ** 2 + (y! + 1) ** 2, [0, 0], { maxIterations: 3 });
    expect(starved.converged).toBe(false);
  });
});

describe("quantiles", () => {
  it("interpolates like R's type 7 and ranks ties at their middle", () => {
    const sorted = [1, 2, 3, 4];
    expect(quantileSorted(sorted, 0)).toBe(1);
    expect(quantileSorted(sorted, 0.5)).toBe(2.5);
    expect(quantileSorted(sorted, 1)).toBe(4);
    expect(quantileSorted([], 0.5)).toBeNaN();
    expect(percentileRankSorted([1, 2, 2, 2, 5], 2)).toBeCloseTo(0.5, 12);
    expect(percentileRankSorted([1, 2, 3], 10)).toBe(1);
    expect(percentileRankSorted([1, 2, 3], 0)).toBe(0);
  });
});
