// Deterministic holdout assignment: the same customer id always lands in the same arm, with no state
// and no randomness at request time, so lift can be measured against a stable control group.
// It does not record exposures (the events route does).

import { defaultRankingOptions, type HoldoutOptions } from "../ranking/options.ts";

export type Arm = "holdout" | "personalized";

/** 32-bit FNV-1a over the UTF-8 bytes of `text` (encoded by hand: core has no TextEncoder type). */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  const mix = (byte: number) => {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  };
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code < 0x80) mix(code);
    else if (code < 0x800) {
      mix(0xc0 | (code >> 6));
      mix(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      mix(0xe0 | (code >> 12));
      mix(0x80 | ((code >> 6) & 0x3f));
      mix(0x80 | (code & 0x3f));
    } else {
      mix(0xf0 | (code >> 18));
      mix(0x80 | ((code >> 12) & 0x3f));
      mix(0x80 | ((code >> 6) & 0x3f));
      mix(0x80 | (code & 0x3f));
    }
  }
  return hash >>> 0;
}

/** The customer's position in [0, 1): salted so a new experiment reshuffles the arms. */
export function holdoutBucket(customerId: string, salt: string): number {
  return fnv1a32(`${salt}:${customerId}`) / 2 ** 32;
}

export function holdoutArm(customerId: string, options: HoldoutOptions = defaultRankingOptions.holdout): Arm {
  if (!(options.share >= 0 && options.share <= 1)) throw new Error("holdoutArm: share must be within [0, 1]");
  return holdoutBucket(customerId, options.salt) < options.share ? "holdout" : "personalized";
}
