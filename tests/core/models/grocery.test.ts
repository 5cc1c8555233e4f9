// The BG/NBD fit on a second real dataset with no published parameters (the online grocer from
// BTYDplus): the Nelder–Mead optimum must agree with an independent maximum-likelihood search (BFGS
// on a numerical gradient, written here and sharing nothing with the optimiser under test but the
// likelihood), from other starting points, and the numerical gradient must vanish there.
import { describe, expect, it } from "vitest";
import {
  type BgNbdParameters,
  bgnbdLogLikelihood,
  fitBgNbd,
  prepareCustomers,
} from "../../../worker/core/models/bg-nbd.ts";
import { parseDay, summarizeEvents } from "../../../worker/core/models/summary.ts";
import { groceryEvents } from "./reference-data.ts";

const customers = summarizeEvents(groceryEvents(), { cutoffDay: parseDay("2007-12-31")!, unit: "week" });
const prepared = prepareCustomers(customers);
const toParameters = ([r, alpha, a, b]: number[]): BgNbdParameters => ({
  r: Math.exp(r!),
  alpha: Math.exp(alpha!),
  a: Math.exp(a!),
  b: Math.exp(b!),
});
const logLikelihoodAt = (point: number[]) => bgnbdLogLikelihood(toParameters(point), prepared);

function numericalGradient(f: (point: number[]) => number, point: number[], step = 1e-5): number[] {
  return point.map((_, index) => {
    const up = [...point];
    const down = [...point];
    up[index]! += step;
    down[index]! -= step;
    return (f(up) - f(down)) / (2 * step);
  });
}

/** Maximises f by BFGS with a backtracking (Armijo) line search on central-difference gradients. */
function maximiseByBfgs(f: (point: number[]) => number, start: number[]): { point: number[]; value: number } {
  const n = start.length;
  let point = [...start];
  let value = f(point);
  let gradient = numericalGradient(f, point);
  // Inverse Hessian approximation of −f, starting at the identity.
  let inverse: number[][] = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  for (let iteration = 0; iteration < 500; iteration++) {
    const direction = inverse.map((row) => row.reduce((sum, h, j) => sum + h * gradient[j]!, 0));
    const slope = direction.reduce((sum, d, i) => sum + d * gradient[i]!, 0);
    let step = 1;
    let candidate = point.map((p, i) => p + step * direction[i]!);
    let candidateValue = f(candidate);
    while (!(candidateValue >= value + 1e-4 * step * slope) && step > 1e-12) {
      step /= 2;
      candidate = point.map((p, i) => p + step * direction[i]!);
      candidateValue = f(candidate);
    }
    if (!(candidateValue >= value)) break;
    const improvement = candidateValue - value;
    const candidateGradient = numericalGradient(f, candidate);
    const s = candidate.map((c, i) => c - point[i]!);
    const y = candidateGradient.map((g, i) => -(g - gradient[i]!));
    const sy = s.reduce((sum, si, i) => sum + si * y[i]!, 0);
    point = candidate;
    value = candidateValue;
    gradient = candidateGradient;
    // Central differences are only good to ~1e-9 here, so also stop once steps stop paying.
    if (Math.max(...gradient.map(Math.abs)) < 1e-7 || improvement < 1e-13) break;
    if (sy > 1e-12) {
      const hy = inverse.map((row) => row.reduce((sum, h, j) => sum + h * y[j]!, 0));
      const yhy = y.reduce((sum, yi, i) => sum + yi * hy[i]!, 0);
      inverse = inverse.map((row, i) =>
        row.map((h, j) => h + ((sy + yhy) * s[i]! * s[j]!) / (sy * sy) - (hy[i]! * s[j]! + s[i]! * hy[j]!) / sy),
      );
    }
  }
  return { point, value };
}

describe("BG/NBD on the online grocer (no published parameters)", () => {
  const fit = fitBgNbd(customers);
  const optimum = [fit.r, fit.alpha, fit.a, fit.b].map(Math.log);

  it("converges to an interior optimum", () => {
    expect(customers).toHaveLength(1525);
    expect(fit.converged).toBe(true);
    for (const value of [fit.r, fit.alpha, fit.a, fit.b]) expect(Number.isFinite(value) && value > 0).toBe(true);
    console.info(
      `grocery (weeks, to 2007-12-31): r ${fit.r.toFixed(4)}, alpha ${fit.alpha.toFixed(4)}, a ${fit.a.toFixed(4)}, b ${fit.b.toFixed(4)}, LL ${fit.logLikelihood.toFixed(3)}`,
    );
  });

  it("has a numerical gradient of about zero and curves down in every direction at the optimum", () => {
    const gradient = numericalGradient(logLikelihoodAt, optimum);
    for (const component of gradient) expect(Math.abs(component)).toBeLessThan(1e-2);
    for (let index = 0; index < optimum.length; index++) {
      for (const delta of [-0.01, 0.01]) {
        const moved = [...optimum];
        moved[index]! += delta;
        expect(logLikelihoodAt(moved)).toBeLessThan(fit.logLikelihood);
      }
    }
  });

  it.each([
    ["near the default start", [0, Math.log(10), 0, 0]],
    ["from a far corner", [Math.log(3), Math.log(0.5), Math.log(0.2), Math.log(8)]],
  ])("agrees with an independent BFGS search started %s", (_label, start) => {
    // Per-customer scale keeps the first quasi-Newton steps (identity Hessian) of sensible length.
    const independent = maximiseByBfgs((point) => logLikelihoodAt(point) / customers.length, start);
    expect(independent.value * customers.length).toBeCloseTo(fit.logLikelihood, 3);
    const fromBfgs = toParameters(independent.point);
    for (const key of ["r", "alpha", "a", "b"] as const) {
      expect(Math.abs(fromBfgs[key] / fit[key] - 1)).toBeLessThan(1e-3);
    }
  });
});
