// The segment a known shopper's rules are matched against (stage, value tier, discount sensitivity,
// channel preference), from their summary and the current models: shared by the recommendations route
// and the console's rule preview and simulation, so both see the segment the shelf is built with.
import { discountSensitivityOf } from "../core/models/preferences.ts";
import { type ProfileSummary, scoreCustomer } from "../core/profile/customer-profile.ts";
import { type PopulationModels, summaryRowProblem } from "../core/profile/population-models.ts";
import type { Rule, ShopperSegment } from "../core/rules/types.ts";

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

/**
 * The segment a shopper's shelf is ranked with. Only a rule limited to a segment reads the stage, value
 * tier or channel preference; with none among `rules`, the shelf needs only the discount sensitivity its
 * items are chosen by, which is the profile's own (the same `discountSensitivityOf` against the models'
 * population share), so the rest of the profile (rhythm, lifecycle, CLV) is not computed. A customer
 * whose summary cannot be read gets no segment either way; one the models cannot score (a model error)
 * keeps the discount sensitivity here, which needs no model.
 */
export function shelfSegmentOf(
  summary: ProfileSummary,
  models: PopulationModels,
  now: Date,
  rules: readonly Pick<Rule, "segment">[],
): ShopperSegment | undefined {
  if (rules.some((rule) => rule.segment)) return shopperSegmentOf(summary, models, now);
  if (summaryRowProblem(summary, now)) return undefined;
  const counts = { units: summary.units, discountedUnits: summary.discountedUnits };
  return { discountSensitivity: discountSensitivityOf(counts, models.discountShare).sensitivity };
}
