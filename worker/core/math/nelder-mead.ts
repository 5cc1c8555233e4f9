// Derivative-free minimisation by the Nelder–Mead simplex method (Nelder & Mead 1965, with the
// standard coefficients of Lagarias et al. 1998), restarted from the best point until a restart no
// longer improves. The models call it in log-parameter space, so every coordinate is unconstrained.
// It does not compute gradients or standard errors; see tests for numerical-gradient checks.

export interface NelderMeadOptions {
  /** Edge length of the starting simplex, in the units of the search space (log units for the models). */
  initialStep: number;
  /** Converged when the simplex values differ by at most this much (absolute, plus relative to |f|). */
  valueTolerance: number;
  /** ...and every vertex lies within this distance of the best one, per coordinate. */
  pointTolerance: number;
  /** Total iterations across all restarts. */
  maxIterations: number;
  /** Fresh simplices built around the best point after convergence, to escape a collapsed simplex. */
  maxRestarts: number;
}

export const defaultNelderMeadOptions: NelderMeadOptions = {
  initialStep: 0.5,
  valueTolerance: 1e-10,
  pointTolerance: 1e-8,
  maxIterations: 20_000,
  maxRestarts: 5,
};

export interface MinimizeResult {
  point: number[];
  value: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
}

const reflection = 1;
const expansion = 2;
const contraction = 0.5;
const shrinkage = 0.5;

export function minimizeNelderMead(
  objective: (point: number[]) => number,
  start: readonly number[],
  options: Partial<NelderMeadOptions> = {},
): MinimizeResult {
  const settings = { ...defaultNelderMeadOptions, ...options };
  const dimension = start.length;
  if (dimension === 0) throw new Error("minimizeNelderMead: start must have at least one coordinate");
  let evaluations = 0;
  // Non-finite values (overflow at absurd parameters) count as +∞ so the simplex moves away from them.
  const evaluate = (point: number[]): number => {
    evaluations++;
    const value = objective(point);
    return Number.isFinite(value) ? value : Number.POSITIVE_INFINITY;
  };

  let best = { point: [...start], value: evaluate([...start]) };
  let iterations = 0;
  let converged = false;
  for (let restart = 0; restart <= settings.maxRestarts; restart++) {
    const run = simplexRun(evaluate, best.point, best.value, settings, settings.maxIterations - iterations);
    iterations += run.iterations;
    const improvement = best.value - run.value;
    const improved = run.value < best.value;
    if (improved) best = { point: run.point, value: run.value };
    converged = run.converged;
    // A restart that gains nothing beyond the tolerance confirms the optimum.
    if (restart > 0 && converged && !(improvement > settings.valueTolerance * (1 + Math.abs(best.value)))) break;
    if (iterations >= settings.maxIterations) {
      converged = false;
      break;
    }
  }
  return { point: best.point, value: best.value, iterations, evaluations, converged };
}

function simplexRun(
  evaluate: (point: number[]) => number,
  start: number[],
  startValue: number,
  settings: NelderMeadOptions,
  iterationBudget: number,
): { point: number[]; value: number; iterations: number; converged: boolean } {
  const dimension = start.length;
  const vertices: number[][] = [start];
  const values: number[] = [startValue];
  for (let i = 0; i < dimension; i++) {
    const vertex = [...start];
    vertex[i] = vertex[i]! + settings.initialStep;
    vertices.push(vertex);
    values.push(evaluate(vertex));
  }
  const order = vertices.map((_, index) => index);
  let iterations = 0;
  while (iterations < iterationBudget) {
    order.sort((left, right) => values[left]! - values[right]!);
    const bestIndex = order[0]!;
    const worstIndex = order[dimension]!;
    const secondWorstIndex = order[dimension - 1] ?? bestIndex;
    if (hasConverged(vertices, values, bestIndex, settings)) {
      return { point: vertices[bestIndex]!, value: values[bestIndex]!, iterations, converged: true };
    }
    iterations++;
    const centroid = new Array<number>(dimension).fill(0);
    for (const index of order.slice(0, dimension)) {
      for (let j = 0; j < dimension; j++) centroid[j]! += vertices[index]![j]! / dimension;
    }
    const worst = vertices[worstIndex]!;
    const along = (coefficient: number) => centroid.map((c, j) => c + coefficient * (c - worst[j]!));
    const reflected = along(reflection);
    const reflectedValue = evaluate(reflected);
    if (reflectedValue < values[bestIndex]!) {
      const expanded = along(expansion);
      const expandedValue = evaluate(expanded);
      const takeExpanded = expandedValue < reflectedValue;
      vertices[worstIndex] = takeExpanded ? expanded : reflected;
      values[worstIndex] = takeExpanded ? expandedValue : reflectedValue;
      continue;
    }
    if (reflectedValue < values[secondWorstIndex]!) {
      vertices[worstIndex] = reflected;
      values[worstIndex] = reflectedValue;
      continue;
    }
    const outside = reflectedValue < values[worstIndex]!;
    const contracted = along(outside ? contraction : -contraction);
    const contractedValue = evaluate(contracted);
    if (contractedValue < (outside ? reflectedValue : values[worstIndex]!)) {
      vertices[worstIndex] = contracted;
      values[worstIndex] = contractedValue;
      continue;
    }
    const bestPoint = vertices[bestIndex]!;
    for (const index of order.slice(1)) {
      vertices[index] = bestPoint.map((b, j) => b + shrinkage * (vertices[index]![j]! - b));
      values[index] = evaluate(vertices[index]!);
    }
  }
  order.sort((left, right) => values[left]! - values[right]!);
  return { point: vertices[order[0]!]!, value: values[order[0]!]!, iterations, converged: false };
}

function hasConverged(vertices: number[][], values: number[], bestIndex: number, settings: NelderMeadOptions): boolean {
  const bestValue = values[bestIndex]!;
  if (!Number.isFinite(bestValue)) return false;
  const bestPoint = vertices[bestIndex]!;
  for (let index = 0; index < vertices.length; index++) {
    if (Math.abs(values[index]! - bestValue) > settings.valueTolerance * (1 + Math.abs(bestValue))) return false;
    const vertex = vertices[index]!;
    for (let j = 0; j < vertex.length; j++) {
      if (Math.abs(vertex[j]! - bestPoint[j]!) > settings.pointTolerance) return false;
    }
  }
  return true;
}
