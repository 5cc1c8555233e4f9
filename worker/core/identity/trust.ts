// Trust of an identity link: whether the storefront or till vouches for the identifier it sent with an
// order or identify call. Only verified links join customers (resolve.ts never sees the others); an
// unverified link is recorded and shown, and unlocks nothing. See docs/identity.md.

import type { IdentifierKind } from "../vocabulary.ts";

export const trustLevels = ["verified", "unverified"] as const;
export type Trust = (typeof trustLevels)[number];

/**
 * The trust of an identifier sent as a bare string. A storefront login and a loyalty card presented
 * with its holder are vouched for by whoever sends them; a typed email or phone, a payment card and a
 * device cookie are not unless the sender says so.
 */
export const defaultTrust: Readonly<Record<IdentifierKind, Trust>> = {
  account: "verified",
  loyalty: "verified",
  email: "unverified",
  phone: "unverified",
  card: "unverified",
  device: "unverified",
};

/** Kinds nobody can vouch for: a device id is whatever the browser or app says it is. */
export const neverVerified: readonly IdentifierKind[] = ["device"];

/**
 * The trust of one identifier as sent: the kind's default, or the sender's `verified` flag. Null when
 * the flag asks for something the kind cannot have (a verified device).
 */
export function trustOf(kind: IdentifierKind, verified: boolean | undefined): Trust | null {
  if (verified === undefined) return defaultTrust[kind];
  if (verified && neverVerified.includes(kind)) return null;
  return verified ? "verified" : "unverified";
}
