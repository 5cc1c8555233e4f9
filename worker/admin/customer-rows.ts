// One listed customer as every export shows it: the JSON list, the CSV export (its columns) and the
// rows audience webhooks POST, with the match keys an export may carry.
import { roundTo } from "../core/math/round.ts";
import { type OfferGuidance, offerMessages } from "../core/models/preferences.ts";
import type { Db } from "../env.ts";
import { type MatchKeyName, matchKeyKind } from "../identity/match-keys.ts";
import { type ListedRow, matchKeysOfCustomers } from "./customer-lists.repo.ts";

export const csvHeader = [
  "customerId",
  "stage",
  "valueTier",
  "discountSensitivity",
  "overdueRatio",
  "probabilityAlive",
  "clv12",
  "clv24",
  "clvAtStake",
  "expectedNextOrderAt",
  "offer",
  "offerGuidance",
  "purchaseDays",
] as const;

/**
 * One listed customer as the list, the CSV export and audience webhooks show it, its figures rounded as
 * GET /v1/customers/:id rounds them (money to cents, P(alive) to 4 places, the overdue ratio to 2).
 */
export const listedCustomerView = (row: ListedRow) => ({
  customerId: row.customerId,
  stage: row.stage,
  valueTier: row.valueTier,
  discountSensitivity: row.discountSensitivity,
  clv12: roundTo(row.clv12, 2),
  clv24: roundTo(row.clv24, 2),
  clvAtStake: roundTo(row.clvAtStake, 2),
  probabilityAlive: roundTo(row.probabilityAlive, 4),
  overdueRatio: roundTo(row.overdueRatio, 2),
  // The model's date assumes the customer still buys; a lapsed one probably does not.
  expectedNextOrderAt: (row.stage !== "lapsed" && row.expectedNextOrderAt) || null,
  offer: row.offer,
  offerGuidance: (row.offer && offerMessages[row.offer as OfferGuidance]) ?? "",
  scoredAt: row.scoredAt,
  // 1: a one-time buyer, whose overdue ratio and next order date are against all customers' interval.
  // null in rows scored before it was kept, until the next nightly run.
  purchaseDays: row.purchaseDays || null,
});

/** Customer id → match key name → value (the newest of each kind the customer holds alone). */
export async function matchKeysByCustomer(db: Db, rows: readonly ListedRow[], names: readonly MatchKeyName[]) {
  const found = await matchKeysOfCustomers(
    db,
    rows.map((row) => row.customerId),
    names.map((name) => matchKeyKind[name]),
  );
  return matchKeyMap(found, names);
}

/**
 * Match key rows (each customer's oldest first, as matchKeysOfCustomers reads them) as customer id →
 * match key name → value: the last of a kind, the newest, wins.
 */
export function matchKeyMap(
  found: readonly { customerId: string; kind: string; matchKey: string }[],
  names: readonly MatchKeyName[],
) {
  const byCustomer = new Map<string, Record<string, string>>();
  for (const row of found) {
    const entry = byCustomer.get(row.customerId) ?? {};
    for (const name of names) if (matchKeyKind[name] === row.kind) entry[name] = row.matchKey;
    byCustomer.set(row.customerId, entry);
  }
  return byCustomer;
}

export type CustomerRowView = ReturnType<typeof listedCustomerView>;
