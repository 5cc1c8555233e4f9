// The segment a known shopper's rules are matched against (stage, value tier, discount sensitivity,
// channel preference), from their summary and the current models: shared by the recommendations route
// and the console's rule preview and simulation, so both see the segment the shelf is built with.
import { type ProfileSummary, scoreCustomer } from "../core/profile/customer-profile.ts";
import type { PopulationModels } from "../core/profile/population-models.ts";
import type { ShopperSegment } from "../core/rules/types.ts";

/**
 * Only the segment is needed, so the per-category part of the profile is skipped. A customer the models
 * cannot score gets no segment (segment rules pass them by) rather than an error.
 */
export function shopperSegmentOf(
  summary: ProfileSummary,
  models: PopulationModels,
  now: Date,
): ShopperSegment | undefined {
  const scored = scoreCustomer({ summary, categories: [], models, now });
  if (!scored.ok) return undefined;
  const { profile } = scored;
  const primary = profile.channelMix.primary;
  return {
    stage: profile.lifecycle.stage,
    valueTier: profile.valueTier,
    discountSensitivity: profile.discount.sensitivity,
    ...(primary && primary !== "phone" ? { channelPreference: primary } : {}),
  };
}
