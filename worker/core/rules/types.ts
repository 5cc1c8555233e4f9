// Merchandiser rule shapes as the core sees them (mirroring the `rules` table), and the shopper
// segment a rule can be limited to. Types only; matching and applying live in apply.ts.

import {
  type Channel,
  channels,
  type DiscountSensitivity,
  type LifecycleStage,
  type ValueTier,
} from "../vocabulary.ts";

export const ruleActions = ["boost", "bury", "pin", "exclude", "allow_discounts", "hide_discounts"] as const;
export type RuleAction = (typeof ruleActions)[number];
export const ruleTargetTypes = ["category", "product"] as const;
export type RuleTargetType = (typeof ruleTargetTypes)[number];

/**
 * The channels a segment may name as a shopper's preference: every channel but phone (a shopper whose
 * orders are mostly by phone has no channel preference).
 */
export type ChannelPreference = Exclude<Channel, "phone">;
export const channelPreferences = channels.filter((channel): channel is ChannelPreference => channel !== "phone");

/** Each field, when present, limits the rule to shoppers with one of the listed values. */
export interface RuleSegment {
  stage?: LifecycleStage | LifecycleStage[];
  valueTier?: ValueTier | ValueTier[];
  channelPreference?: ChannelPreference | ChannelPreference[];
  discountSensitivity?: DiscountSensitivity | DiscountSensitivity[];
}

export interface Rule {
  id: string;
  name: string;
  action: RuleAction;
  targetType: RuleTargetType;
  /** A category or product id; "*" with allow_discounts / hide_discounts means every item. */
  targetId: string;
  /** boost: score × (1 + strength); bury: score ÷ (1 + strength). */
  strength?: number | null;
  /** pin: 1-based position. */
  slot?: number | null;
  segment?: RuleSegment | null;
  /** ISO instants; the rule is live on [startsAt, endsAt). */
  startsAt?: string | null;
  endsAt?: string | null;
  enabled: boolean;
}

/** What is known about the shopper; an unknown field never matches a segment that names it. */
export interface ShopperSegment {
  stage?: LifecycleStage;
  valueTier?: ValueTier;
  channelPreference?: ChannelPreference;
  discountSensitivity?: DiscountSensitivity;
}
