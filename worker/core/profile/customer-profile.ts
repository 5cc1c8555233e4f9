// One customer's picture at request time: P(alive), CLV over 12 and 24 months, cadence and overdue
// ratio, lifecycle stage, value tier, discount sensitivity and offer guidance, channel mix, preferred
// weekday and hour, and per-category cadence and price band. Computed from the stored summary, the
// current population models and `now`, so it never goes stale between nightly refits. Pure.
import { expectedPurchasesConditional, probabilityAlive } from "../models/bg-nbd.ts";
import { type Cadence, cadenceOf } from "../models/cadence.ts";
import { customerLifetimeValue } from "../models/clv.ts";
import { type Lifecycle, lifecycleStage, type ValueTier, valueTier } from "../models/lifecycle.ts";
import {
  type CategoryPriceBand,
  type ChannelMix,
  channelMixOf,
  type DiscountProfile,
  discountSensitivityOf,
  type OfferGuidance,
  offerGuidanceOf,
  type PreferredSlot,
  preferredHourOf,
  preferredWeekdayOf,
  priceBandOf,
} from "../models/preferences.ts";
import {
  defaultModelOptions,
  type ModelOptions,
  type PopulationModels,
  rfmOf,
  type SummaryRow,
  spendOf,
} from "./population-models.ts";

export interface ProfileSummary extends SummaryRow {
  webOrders: number;
  storeOrders: number;
  appOrders: number;
  phoneOrders: number;
}

export interface ProfileCategory {
  categoryId: string;
  purchaseDays: number;
  firstPurchaseAt: string;
  lastPurchaseAt: string;
  avgUnitPrice: number;
}

export interface ProfileInput {
  summary: ProfileSummary;
  categories: readonly ProfileCategory[];
  models: PopulationModels;
  /** Category → ascending price quantiles (from the ranking population), for price bands. */
  categoryPrices?: Readonly<Record<string, readonly number[]>>;
  /** Category → the population's typical days between purchases there: the prior for short histories. */
  categoryIntervalDays?: Readonly<Record<string, number>>;
  /** Order timestamps (ISO) for preferred weekday and hour; optional. */
  orderTimes?: readonly string[];
  now: Date;
}

export interface CustomerProfile {
  probabilityAlive: number;
  expectedPurchases90d: number;
  expectedOrderValue: number;
  clv12: number;
  clv24: number;
  cadence: Cadence;
  lifecycle: Lifecycle;
  valueTier: ValueTier;
  discount: DiscountProfile;
  offerGuidance: OfferGuidance;
  channelMix: ChannelMix<"web" | "store" | "app" | "phone">;
  preferredWeekday: PreferredSlot | null;
  preferredHour: PreferredSlot | null;
  categories: (ProfileCategory & { cadence: Cadence; priceBand: CategoryPriceBand | null })[];
}

export function customerProfile(input: ProfileInput, options: ModelOptions = defaultModelOptions): CustomerProfile {
  const { summary, models, now } = input;
  const unit = models.timeUnitDays;
  const rfm = rfmOf(summary, now, unit);
  const spend = spendOf(summary);
  const clvModels = { bgnbd: models.bgnbd, gammaGamma: models.gammaGamma };
  const clvOptions = { ...options.clv, timeUnitDays: unit };
  const value12 = customerLifetimeValue(clvModels, { ...rfm, ...spend }, { ...clvOptions, horizonMonths: 12 });
  const value24 = customerLifetimeValue(clvModels, { ...rfm, ...spend }, { ...clvOptions, horizonMonths: 24 });
  const alive = probabilityAlive(models.bgnbd, rfm);
  const cadencePrior = { priorIntervalDays: models.cadencePriorDays, priorWeight: 2 };
  const cadence = cadenceOf(
    { purchaseDays: summary.purchaseDays, firstPurchaseAt: summary.firstOrderAt, lastPurchaseAt: summary.lastOrderAt },
    now,
    cadencePrior,
  );
  const lifecycle = lifecycleStage(
    {
      repeatPurchases: rfm.x,
      probabilityAlive: alive,
      overdueRatio: cadence.overdueRatio,
      daysSinceFirstPurchase: rfm.T * unit,
    },
    models.secondPurchase,
  );
  const discount = discountSensitivityOf(
    { units: summary.units, discountedUnits: summary.discountedUnits },
    models.discountShare,
  );

  const weekdays = new Array(7).fill(0);
  const hours = new Array(24).fill(0);
  for (const at of input.orderTimes ?? []) {
    const date = new Date(at);
    weekdays[date.getUTCDay()] += 1;
    hours[date.getUTCHours()] += 1;
  }

  return {
    probabilityAlive: alive,
    expectedPurchases90d: expectedPurchasesConditional(models.bgnbd, rfm, 90 / unit),
    expectedOrderValue: value12.expectedOrderValue,
    clv12: value12.clv,
    clv24: value24.clv,
    cadence,
    lifecycle,
    valueTier: valueTier(value12.clv, models.valueTiers),
    discount,
    offerGuidance: offerGuidanceOf(discount.sensitivity, alive),
    channelMix: channelMixOf({
      web: summary.webOrders,
      store: summary.storeOrders,
      app: summary.appOrders,
      phone: summary.phoneOrders,
    }),
    preferredWeekday: preferredWeekdayOf(weekdays),
    preferredHour: preferredHourOf(hours),
    categories: input.categories.map((category) => {
      const prices = input.categoryPrices?.[category.categoryId];
      return {
        ...category,
        cadence: cadenceOf(category, now, {
          ...cadencePrior,
          priorIntervalDays: input.categoryIntervalDays?.[category.categoryId] || cadencePrior.priorIntervalDays,
        }),
        priceBand: prices?.length
          ? priceBandOf(category.avgUnitPrice, { sortedPrices: Float64Array.from(prices) })
          : null,
      };
    }),
  };
}
