// Gauss hypergeometric function 2F1(a, b; c; z) for 0 ≤ z < 1 by its power series
// (Abramowitz & Stegun 15.1.1), as needed by BG/NBD's expected purchase counts (Fader, Hardie &
// Lee 2005, eq. 9 and 10). It does not do analytic continuation (z ≥ 1 or z < 0); callers in
// models/ apply Euler's transformation first so the series they hand in converges quickly.

export interface Hyp2f1Options {
  /** Stop when a term is below this fraction of the running sum. */
  relativeTolerance: number;
  /** Hard cap on terms; reaching it throws, because a silent partial sum would be a wrong number. */
  maxTerms: number;
}

export const defaultHyp2f1Options: Hyp2f1Options = { relativeTolerance: 1e-15, maxTerms: 1_000_000 };

export function hyp2f1(a: number, b: number, c: number, z: number, options = defaultHyp2f1Options): number {
  if (!(z >= 0 && z < 1)) throw new Error(`hyp2f1: z must be in [0, 1), got ${z}`);
  if (c <= 0 && Number.isInteger(c)) throw new Error(`hyp2f1: c must not be zero or a negative integer, got ${c}`);
  let term = 1;
  let sum = 1;
  for (let k = 0; k < options.maxTerms; k++) {
    term *= (((a + k) * (b + k)) / ((c + k) * (k + 1))) * z;
    sum += term;
    // Once a + k and b + k are past zero every later term keeps the sign and shrinks geometrically
    // (ratio → z), so a small term with k beyond both means the tail is negligible too.
    if (Math.abs(term) <= options.relativeTolerance * Math.abs(sum) && k + 1 > -a && k + 1 > -b) return sum;
    if (term === 0) return sum;
  }
  throw new Error(`hyp2f1: series did not converge in ${options.maxTerms} terms (a=${a}, b=${b}, c=${c}, z=${z})`);
}

/** Past this, the running sum and term are scaled down (by it) and the scale kept as a logarithm. */
const rescaleAbove = 1e280;

/**
 * log 2F1(a, b; c; z) and its sign, by the same series with the running sum kept scaled: for a series
 * whose sum overflows a double (large a and b near z = 1, where BG/NBD multiplies it by a power of
 * 1 − z that underflows), so the product can be taken in logs.
 */
export function logHyp2f1(
  a: number,
  b: number,
  c: number,
  z: number,
  options = defaultHyp2f1Options,
): { log: number; sign: number } {
  if (!(z >= 0 && z < 1)) throw new Error(`hyp2f1: z must be in [0, 1), got ${z}`);
  if (c <= 0 && Number.isInteger(c)) throw new Error(`hyp2f1: c must not be zero or a negative integer, got ${c}`);
  let term = 1;
  let sum = 1;
  let scale = 0;
  const result = () => ({ log: Math.log(Math.abs(sum)) + scale, sign: Math.sign(sum) });
  for (let k = 0; k < options.maxTerms; k++) {
    term *= (((a + k) * (b + k)) / ((c + k) * (k + 1))) * z;
    sum += term;
    if (Math.abs(sum) > rescaleAbove || Math.abs(term) > rescaleAbove) {
      sum /= rescaleAbove;
      term /= rescaleAbove;
      scale += Math.log(rescaleAbove);
    }
    if (Math.abs(term) <= options.relativeTolerance * Math.abs(sum) && k + 1 > -a && k + 1 > -b) return result();
    if (term === 0) return result();
  }
  throw new Error(`hyp2f1: series did not converge in ${options.maxTerms} terms (a=${a}, b=${b}, c=${c}, z=${z})`);
}
