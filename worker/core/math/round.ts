// Rounding for figures shown to people (API answers, exports, sentences): `digits` decimal places,
// halves away from zero as Math.round does for positive values.

/** `value` rounded to `digits` decimal places. */
export function roundTo(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
