// One customer's picture at request time: P(alive), CLV over 12 and 24 months, rhythm (interval,
// regularity, overdue ratio, next expected purchase) and lifecycle stage from one model, value tier,
// discount sensitivity and offer guidance, channel mix, preferred weekday and hour in the retailer's
// time zone, and per-category rhythm, lapse and price band. Computed from the stored summary, the
// current population models and `now`, so it never goes stale between nightly refits. Pure.
import { expectedPurchasesConditional } from "../models/bg-nbd.ts";
import { customerLifetimeValue } from "../models/clv.ts";
import {
  defaultLifecycleOptions,
  type Lifecycle,
  lifecycleStage,
  type ValueTier,
  valueTier,
} from "../models/lifecycle.ts";
import {
  type CategoryPriceBand,
  type ChannelMix,
  channelMixOf,
  type DiscountProfile,
  defaultOfferGuidanceOptions,
  discountSensitivityOf,
  type OfferGuidance,
  offerGuidanceOf,
  type PreferredSlot,
  preferredHourOf,
  preferredWeekdayOf,
  priceBandOf,
} from "../models/preferences.ts";
import { categoryRhythmModel, type Rhythm, rhythmOf, rhythmSummaryOf } from "../models/rhythm.ts";
import { own } from "../records.ts";
import type { Channel } from "../vocabulary.ts";
import {
  defaultModelOptions,
  historyOf,
  type ModelOptions,
  type PopulationModels,
  rhythmModelOf,
  type SummaryProblem,
  type SummaryRow,
  spendOf,
  summaryRowProblem,
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
  /** IANA time zone the weekday and hour are read in (the retailer's, RETAILER_TIME_ZONE); UTC by default. */
  timeZone?: string;
  now: Date;
}

export interface CategoryRhythm extends Rhythm {
  /** Active overall does not mean active here: lapsed when the chance they still buy this category is low. */
  lapsed: boolean;
}

export interface CustomerProfile {
  probabilityAlive: number;
  /** Probability of at least one purchase in the next 90 days: what the console's at-risk lists sort by. */
  probabilityPurchase90d: number;
  expectedPurchases90d: number;
  expectedOrderValue: number;
  clv12: number;
  clv24: number;
  cadence: Rhythm;
  lifecycle: Lifecycle;
  valueTier: ValueTier;
  discount: DiscountProfile;
  offerGuidance: OfferGuidance;
  channelMix: ChannelMix<Channel>;
  preferredWeekday: PreferredSlot | null;
  preferredHour: PreferredSlot | null;
  categories: (ProfileCategory & { cadence: CategoryRhythm; priceBand: CategoryPriceBand | null })[];
}

export function customerProfile(input: ProfileInput, options: ModelOptions = defaultModelOptions): CustomerProfile {
  const { summary, models, now } = input;
  const unit = models.timeUnitDays;
  const rhythmModel = rhythmModelOf(models);
  const history = historyOf(summary);
  const customer = rhythmSummaryOf(history, now, rhythmModel);
  const rhythm = rhythmOf(history, now, rhythmModel);
  const spend = spendOf(summary);
  const clvModels = { bgnbd: models.bgnbd, gammaGamma: models.gammaGamma };
  const clvOptions = { ...options.clv, timeUnitDays: unit };
  const value12 = customerLifetimeValue(clvModels, { ...customer, ...spend }, { ...clvOptions, horizonMonths: 12 });
  const value24 = customerLifetimeValue(clvModels, { ...customer, ...spend }, { ...clvOptions, horizonMonths: 24 });
  const lifecycle = lifecycleStage(
    {
      repeatPurchases: customer.x,
      probabilityAlive: rhythm.probabilityAlive,
      daysSinceFirstPurchase: customer.T * unit,
    },
    models.secondPurchase,
    models.fadingBelowProbabilityAlive === undefined
      ? defaultLifecycleOptions
      : { ...defaultLifecycleOptions, fadingBelowProbabilityAlive: models.fadingBelowProbabilityAlive },
  );
  const discount = discountSensitivityOf(
    { units: summary.units, discountedUnits: summary.discountedUnits },
    models.discountShare,
  );
  const { weekdays, hours } = localSlots(input.orderTimes ?? [], input.timeZone ?? "UTC");

  return {
    probabilityAlive: rhythm.probabilityAlive,
    probabilityPurchase90d: rhythm.probabilityPurchase,
    expectedPurchases90d: expectedPurchasesConditional(models.bgnbd, customer, 90 / unit),
    expectedOrderValue: value12.expectedOrderValue,
    clv12: value12.clv,
    clv24: value24.clv,
    cadence: rhythm,
    lifecycle,
    valueTier: valueTier(value12.clv, models.valueTiers),
    discount,
    offerGuidance: offerGuidanceOf(
      discount.sensitivity,
      rhythm.probabilityAlive,
      defaultOfferGuidanceOptions,
      lifecycle.stage,
    ),
    channelMix: channelMixOf({
      web: summary.webOrders,
      store: summary.storeOrders,
      app: summary.appOrders,
      phone: summary.phoneOrders,
    }),
    preferredWeekday: preferredWeekdayOf(weekdays),
    preferredHour: preferredHourOf(hours),
    categories: input.categories.map((category) => {
      const prices = own(input.categoryPrices, category.categoryId);
      const prior = own(input.categoryIntervalDays, category.categoryId) || models.cadencePriorDays;
      const cadence = rhythmOf(category, now, categoryRhythmModel(rhythmModel, prior));
      return {
        ...category,
        cadence: {
          ...cadence,
          lapsed:
            cadence.observedIntervals > 0 &&
            cadence.probabilityAlive < defaultLifecycleOptions.lapsedBelowProbabilityAlive,
        },
        priceBand: prices?.length
          ? priceBandOf(category.avgUnitPrice, { sortedPrices: Float64Array.from(prices) })
          : null,
      };
    }),
  };
}

/** Why a customer could not be scored: their summary cannot be read, the models threw, or gave a non-number. */
export type ScoreProblem = SummaryProblem | "model_error" | "non_finite_score";

export type ScoreOutcome = { ok: true; profile: CustomerProfile } | { ok: false; reason: ScoreProblem };

/**
 * customerProfile for one customer whose history may be odd, as an outcome that never throws: the
 * nightly job skips and counts a customer it cannot score, and the routes answer without a profile
 * (or a segment) rather than fail.
 */
export function scoreCustomer(input: ProfileInput, options: ModelOptions = defaultModelOptions): ScoreOutcome {
  const problem = summaryRowProblem(input.summary, input.now);
  if (problem) return { ok: false, reason: problem };
  let profile: CustomerProfile;
  try {
    profile = customerProfile(input, options);
  } catch {
    return { ok: false, reason: "model_error" };
  }
  const figures = [
    profile.probabilityAlive,
    profile.probabilityPurchase90d,
    profile.expectedPurchases90d,
    profile.expectedOrderValue,
    profile.clv12,
    profile.clv24,
    profile.cadence.expectedIntervalDays,
    profile.cadence.overdueRatio,
  ];
  if (!figures.every(Number.isFinite) || Number.isNaN(Date.parse(profile.cadence.nextExpectedAt)))
    return { ok: false, reason: "non_finite_score" };
  return { ok: true, profile };
}

/**
 * One weekday-and-hour formatter per time zone, made once: building an Intl.DateTimeFormat was the
 * largest single cost of a known shopper's recommendation request (docs/scaling.md), and was paid for
 * every customer the nightly job scores. An unknown zone throws, as before, and is not kept.
 */
const slotFormats = new Map<string, Intl.DateTimeFormat>();
/** Far more zones than a deployment uses (one): only a caller passing arbitrary zones could reach it. */
const maxSlotFormats = 64;

function slotFormat(timeZone: string): Intl.DateTimeFormat {
  let format = slotFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", { timeZone, weekday: "short", hour: "numeric", hourCycle: "h23" });
    if (slotFormats.size >= maxSlotFormats) slotFormats.clear();
    slotFormats.set(timeZone, format);
  }
  return format;
}

/** Orders per weekday (0 = Sunday) and hour, read on the clock of `timeZone`. */
function localSlots(orderTimes: readonly string[], timeZone: string) {
  const weekdays = new Array<number>(7).fill(0);
  const hours = new Array<number>(24).fill(0);
  const format = slotFormat(timeZone);
  for (const at of orderTimes) {
    const date = new Date(at);
    if (Number.isNaN(date.getTime())) continue;
    let weekday = 0;
    let hour = 0;
    for (const part of format.formatToParts(date)) {
      if (part.type === "weekday") weekday = weekdayIndex[part.value] ?? 0;
      if (part.type === "hour") hour = Number(part.value) % 24;
    }
    weekdays[weekday]! += 1;
    hours[hour]! += 1;
  }
  return { weekdays, hours };
}

const weekdayIndex: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
