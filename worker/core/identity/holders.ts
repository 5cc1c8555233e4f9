// Who holds or was seen with one identifier, for a privacy request (GET /v1/customers/holders): the
// answers of each database that may have seen it (the one D1 database, or every customer shard) as one
// list. Pure: the worker reads each part along identity_observations' key index.

import type { Trust } from "./trust.ts";

/** A customer that holds an identifier or was seen with it, as one database answers. */
export interface HolderRow {
  customerId: string;
  /** The customer holds the identifier: a lookup by it finds them. */
  held: boolean;
  /** A sighting with this customer was vouched for (held ones always were). */
  verified: boolean;
  /** Their orders that carried the identifier. */
  orders: number;
  /** When the first and last of those orders were placed; null when it was seen only on identify calls. */
  firstSeenAt: string | null;
  lastSeenAt: string | null;
}

/** One database's answer: its customers with the identifier (first `limit` by id), and whether it marks it shared. */
export interface HoldersPart {
  known: boolean;
  shared: boolean;
  holders: HolderRow[];
}

export interface Holder {
  customerId: string;
  held: boolean;
  trust: Trust;
  orders: number;
  firstSeenAt: string | null;
  lastSeenAt: string | null;
}

/**
 * The parts as one answer: the first `limit` holders by customer id (a customer is in one database, so
 * no one is in two parts), `truncated` when there were more; shared when any database marks it so.
 */
export function mergeHolders(
  parts: readonly HoldersPart[],
  limit: number,
): { known: boolean; shared: boolean; holders: Holder[]; truncated: boolean } {
  const all = parts
    .flatMap((part) => part.holders)
    .sort((a, b) => (a.customerId < b.customerId ? -1 : a.customerId > b.customerId ? 1 : 0));
  return {
    known: parts.some((part) => part.known),
    shared: parts.some((part) => part.shared),
    holders: all.slice(0, limit).map(({ verified, ...row }) => ({
      ...row,
      trust: row.held || verified ? "verified" : "unverified",
    })),
    truncated: all.length > limit,
  };
}
