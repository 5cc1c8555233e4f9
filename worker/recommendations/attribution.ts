// Whether an impression, click or order may be attributed to a recommendation id: the id must be one
// Patron signed for that shopper (or a customer since merged into them), list the item, and still be
// within its attribution window. Anything else is ignored and counted as such by the routes.
import {
  accountSubject,
  anonymousSubject,
  customerSubject,
  parseRecommendationId,
  type ServedArm,
  signerOf,
  wasServed,
} from "./recommendation-id.ts";

export interface AttributionSettings {
  /** Secrets a recommendation id may be signed with: the current shopper token secret, then the previous one. */
  secrets: string[];
  /** Days after issue an impression or click still counts (EVENT_ATTRIBUTION_DAYS, default 7). */
  eventWindowDays: number;
  /** Days after issue an order placed still counts (ORDER_ATTRIBUTION_DAYS, default 30). */
  orderWindowDays: number;
}

export const defaultEventWindowDays = 7;
export const defaultOrderWindowDays = 30;
/** Clock difference tolerated between the isolate that issued an id and the one checking it. */
const clockSkewMs = 60_000;

function days(setting: string | undefined, fallback: number, name: string): number {
  if (setting === undefined || setting.trim() === "") return fallback;
  const value = Number(setting);
  if (Number.isFinite(value) && value > 0 && value <= 366) return value;
  console.warn(
    JSON.stringify({ warning: `${name} must be a number of days above 0 and at most 366; using the default`, setting }),
  );
  return fallback;
}

export function attributionSettings(env: {
  SHOPPER_TOKEN_SECRET: string;
  SHOPPER_TOKEN_SECRET_PREVIOUS?: string;
  EVENT_ATTRIBUTION_DAYS?: string;
  ORDER_ATTRIBUTION_DAYS?: string;
}): AttributionSettings {
  return {
    secrets: [
      env.SHOPPER_TOKEN_SECRET,
      ...(env.SHOPPER_TOKEN_SECRET_PREVIOUS ? [env.SHOPPER_TOKEN_SECRET_PREVIOUS] : []),
    ],
    eventWindowDays: days(env.EVENT_ATTRIBUTION_DAYS, defaultEventWindowDays, "EVENT_ATTRIBUTION_DAYS"),
    orderWindowDays: days(env.ORDER_ATTRIBUTION_DAYS, defaultOrderWindowDays, "ORDER_ATTRIBUTION_DAYS"),
  };
}

/** Who may claim an id: a shopper's customer and the customers merged into it, and their account keys. */
export interface Claimant {
  customerIds: readonly string[];
  accountKeys: readonly string[];
}

/** The subjects an id served to this claimant may have been signed for (an anonymous shelf binds nobody). */
export function subjectsOf(claimant: Claimant): string[] {
  return [...claimant.customerIds.map(customerSubject), ...claimant.accountKeys.map(accountSubject), anonymousSubject];
}

/**
 * The arm to count `itemIds` (any one of them) under, or null when the attribution is ignored: an id
 * in no current format, not signed for this claimant, issued after `at` or more than `windowDays`
 * before it, or listing none of the items.
 */
export async function attributedArm(
  recommendationId: string,
  claim: AttributionClaim,
  secrets: readonly string[],
): Promise<ServedArm | null> {
  const outcome = await attributionOutcome(recommendationId, claim, secrets);
  return "arm" in outcome ? outcome.arm : null;
}

interface AttributionClaim {
  claimant: Claimant;
  itemIds: readonly string[];
  at: Date;
  windowDays: number;
}

/**
 * Why an attribution does not count, checked in this order: `unknown_id` (not in the current format: a typo,
 * or an id from elsewhere), `before_issue` (the order or event is more than a minute older than the
 * id: a time in the wrong zone, usually), `past_window`, `not_this_shopper` (its signature matches
 * none of the order's or event's shoppers: signed for another, or altered, which an HMAC cannot tell apart), `no_listed_product` (none of its items was on the shelf).
 */
export const ignoredReasons = [
  "unknown_id",
  "before_issue",
  "past_window",
  "not_this_shopper",
  "no_listed_product",
] as const;
export type IgnoredReason = (typeof ignoredReasons)[number];

/** The arm `claim` counts under, or why it is ignored (attributedArm's rules). */
export async function attributionOutcome(
  recommendationId: string,
  claim: AttributionClaim,
  secrets: readonly string[],
): Promise<{ arm: ServedArm } | { ignored: IgnoredReason }> {
  const parsed = parseRecommendationId(recommendationId);
  if (!parsed) return { ignored: "unknown_id" };
  const age = claim.at.getTime() - parsed.issuedAt.getTime();
  if (age < -clockSkewMs) return { ignored: "before_issue" };
  if (age > claim.windowDays * 86_400_000) return { ignored: "past_window" };
  const secret = await signerOf(parsed, subjectsOf(claim.claimant), secrets);
  if (!secret) return { ignored: "not_this_shopper" };
  for (const itemId of new Set(claim.itemIds)) {
    if (await wasServed(parsed, secret, itemId)) return { arm: parsed.arm };
  }
  return { ignored: "no_listed_product" };
}
