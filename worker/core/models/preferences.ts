// Where, when and at what price a customer likes to shop: price band per category against that
// category's own price distribution, discount sensitivity against the population's share of units
// bought below list price, channel mix, preferred weekday and hour, and the offer guidance that
// follows from discount sensitivity and P(alive). Prices in the catalog's currency; weekday 0 =
// Sunday, hours 0–23 in the store's local time (the caller converts). It computes from counts and
// prices handed in; it does not read orders, and it does not decide which items to show.
import { percentileRankSorted, quantileSorted } from "../math/quantile.ts";
import { own } from "../records.ts";
import type { Channel, DiscountSensitivity, LifecycleStage } from "../vocabulary.ts";

// ---- Price band ---------------------------------------------------------------------------------

export type PriceBand = "budget" | "mid" | "premium";

export interface PriceBandOptions {
  /** Below this percentile of the category's prices a customer's typical price is budget... */
  budgetBelowPercentile: number;
  /** ...and above this one premium. */
  premiumAbovePercentile: number;
}

export const defaultPriceBandOptions: PriceBandOptions = {
  budgetBelowPercentile: 1 / 3,
  premiumAbovePercentile: 2 / 3,
};

/** A category's unit prices (paid, one per unit or line), sorted once and reused for every customer. */
export interface PriceDistribution {
  sortedPrices: Float64Array;
}

export function priceDistributionOf(prices: readonly number[]): PriceDistribution {
  return { sortedPrices: Float64Array.from(prices.filter((price) => price > 0)).sort() };
}

export interface CategoryPriceBand {
  band: PriceBand;
  /** Mid-rank percentile of the customer's typical price among the category's prices, 0–1. */
  percentile: number;
  /** The band edges in currency, for explanations ("most heels sell between $40 and $95"). */
  budgetBelow: number;
  premiumAbove: number;
}

/** Null when the category has no prices to compare against. */
export function priceBandOf(
  typicalPrice: number,
  distribution: PriceDistribution,
  options: PriceBandOptions = defaultPriceBandOptions,
): CategoryPriceBand | null {
  const sorted = distribution.sortedPrices;
  if (sorted.length === 0 || !(typicalPrice > 0)) return null;
  const percentile = percentileRankSorted(sorted, typicalPrice);
  const band: PriceBand =
    percentile < options.budgetBelowPercentile
      ? "budget"
      : percentile > options.premiumAbovePercentile
        ? "premium"
        : "mid";
  return {
    band,
    percentile,
    budgetBelow: quantileSorted(sorted, options.budgetBelowPercentile),
    premiumAbove: quantileSorted(sorted, options.premiumAbovePercentile),
  };
}

/** The price band in every category where both the customer's typical price and a distribution exist. */
export function priceBandsByCategory(
  typicalPriceByCategory: Readonly<Record<string, number>>,
  distributions: Readonly<Record<string, PriceDistribution>>,
  options: PriceBandOptions = defaultPriceBandOptions,
): Record<string, CategoryPriceBand> {
  const bands: [string, CategoryPriceBand][] = [];
  for (const [category, price] of Object.entries(typicalPriceByCategory)) {
    const distribution = own(distributions, category);
    const band = distribution ? priceBandOf(price, distribution, options) : null;
    if (band) bands.push([category, band]);
  }
  return Object.fromEntries(bands);
}

// ---- Discount sensitivity -----------------------------------------------------------------------

export interface DiscountCounts {
  units: number;
  /** Units bought below their list price. */
  discountedUnits: number;
}

export interface DiscountSensitivityOptions {
  /** Full-price shopper when the customer's discounted share is below this multiple of the population's... */
  fullPriceBelowRatio: number;
  /** ...deal seeker above this multiple (capped so a population share over 1/ratio still leaves room). */
  dealSeekerAboveRatio: number;
  /** Pseudo-units at the population share added to every customer, so three units do not make a label. */
  priorUnits: number;
}

export const defaultDiscountSensitivityOptions: DiscountSensitivityOptions = {
  fullPriceBelowRatio: 0.5,
  dealSeekerAboveRatio: 1.5,
  priorUnits: 4,
};

/** Units-weighted share of all units bought below list price. */
export function populationDiscountShare(customers: Iterable<DiscountCounts>): number {
  let units = 0;
  let discounted = 0;
  for (const customer of customers) {
    units += customer.units;
    discounted += customer.discountedUnits;
  }
  return units > 0 ? discounted / units : 0;
}

export interface DiscountProfile {
  sensitivity: DiscountSensitivity;
  /** The customer's discounted share after shrinkage toward the population. */
  share: number;
  populationShare: number;
}

export function discountSensitivityOf(
  counts: DiscountCounts,
  populationShare: number,
  options: DiscountSensitivityOptions = defaultDiscountSensitivityOptions,
): DiscountProfile {
  if (!(counts.units >= 0 && counts.discountedUnits >= 0 && counts.discountedUnits <= counts.units)) {
    throw new Error("discountSensitivityOf: need 0 <= discountedUnits <= units");
  }
  const share =
    (counts.discountedUnits + options.priorUnits * populationShare) / (counts.units + options.priorUnits || 1);
  const fullPriceBelow = options.fullPriceBelowRatio * populationShare;
  // When most units are discounted anyway, 1.5 × share can exceed 1; go halfway to 1 instead.
  const dealSeekerAbove = Math.min(options.dealSeekerAboveRatio * populationShare, (1 + populationShare) / 2);
  // A shop that never discounts (or whose feed sends no list prices) gives a population share of 0:
  // its customers bought at full price, which is all there is to say of them.
  const neverDiscounted = populationShare === 0 && counts.discountedUnits === 0;
  const sensitivity: DiscountSensitivity =
    share < fullPriceBelow || neverDiscounted ? "full_price" : share > dealSeekerAbove ? "deal_seeker" : "mixed";
  return { sensitivity, share, populationShare };
}

// ---- Offer guidance -----------------------------------------------------------------------------

export type OfferGuidance = "no_incentive" | "modest" | "deal_driven";

/** Each offer guidance as the message plan lists, exports and the console's customer page word it. */
export const offerMessages: Record<OfferGuidance, string> = {
  no_incentive: "no incentive, right message at the right time",
  modest: "a modest incentive (free delivery or a small discount)",
  deal_driven: "lead with an offer",
};

export interface OfferGuidanceOptions {
  /** At or above this P(alive) a customer counts as still active. */
  activeMinProbabilityAlive: number;
}

export const defaultOfferGuidanceOptions: OfferGuidanceOptions = { activeMinProbabilityAlive: 0.5 };

/**
 * A full-price shopper who is still active buys anyway: no incentive. One who is slipping gets a
 * modest one; so does a mixed shopper. Deal seekers respond to deals, so lead with them. Still active:
 * P(alive) at least the threshold and, when the stage is given, not fading or lapsed (a one-time
 * buyer's P(alive) is 1 under the BG/NBD however long ago they bought: their stage says they slipped).
 */
export function offerGuidanceOf(
  sensitivity: DiscountSensitivity,
  probabilityAlive: number,
  options: OfferGuidanceOptions = defaultOfferGuidanceOptions,
  stage?: LifecycleStage,
): OfferGuidance {
  if (sensitivity === "deal_seeker") return "deal_driven";
  const slipping = stage === "fading" || stage === "lapsed";
  if (sensitivity === "full_price" && probabilityAlive >= options.activeMinProbabilityAlive && !slipping)
    return "no_incentive";
  return "modest";
}

// ---- Channel mix --------------------------------------------------------------------------------

export interface ChannelMixOptions {
  /** A channel is the customer's primary one when it has at least this share of orders. */
  primaryMinShare: number;
}

export const defaultChannelMixOptions: ChannelMixOptions = { primaryMinShare: 0.6 };

export interface ChannelMix<Key extends string = Channel> {
  shares: Partial<Record<Key, number>>;
  /** The dominant channel, or null for a customer who splits orders (omnichannel) or has none. */
  primary: Key | null;
}

export function channelMixOf<Key extends string = Channel>(
  orderCounts: Readonly<Partial<Record<Key, number>>>,
  options: ChannelMixOptions = defaultChannelMixOptions,
): ChannelMix<Key> {
  const entries = Object.entries(orderCounts) as Array<[Key, number]>;
  const total = entries.reduce((sum, [, count]) => sum + count, 0);
  const shares: Partial<Record<Key, number>> = {};
  let primary: Key | null = null;
  if (total <= 0) return { shares, primary };
  for (const [channel, count] of entries) {
    const share = count / total;
    shares[channel] = share;
    if (share >= options.primaryMinShare) primary = channel;
  }
  return { shares, primary };
}

// ---- Preferred time -----------------------------------------------------------------------------

export interface PreferredTimeOptions {
  /** Fewer orders than this say nothing about timing. */
  minOrders: number;
  /** The busiest slot must hold at least this multiple of an even share (1/7 or 1/24) to count. */
  minLiftOverUniform: number;
}

export const defaultPreferredTimeOptions: PreferredTimeOptions = { minOrders: 3, minLiftOverUniform: 1.5 };

export interface PreferredSlot {
  slot: number;
  share: number;
}

/** From 7 weekday counts (Sunday first); null when the history is too thin or too even. */
export function preferredWeekdayOf(
  weekdayCounts: readonly number[],
  options: PreferredTimeOptions = defaultPreferredTimeOptions,
): PreferredSlot | null {
  if (weekdayCounts.length !== 7) throw new Error("preferredWeekdayOf: need 7 counts, Sunday first");
  return preferredSlot(weekdayCounts, options);
}

/** From 24 hourly counts; null when the history is too thin or too even. */
export function preferredHourOf(
  hourCounts: readonly number[],
  options: PreferredTimeOptions = defaultPreferredTimeOptions,
): PreferredSlot | null {
  if (hourCounts.length !== 24) throw new Error("preferredHourOf: need 24 counts, hour 0 first");
  return preferredSlot(hourCounts, options);
}

function preferredSlot(counts: readonly number[], options: PreferredTimeOptions): PreferredSlot | null {
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total < options.minOrders || total <= 0) return null;
  let slot = 0;
  for (let index = 1; index < counts.length; index++) if (counts[index]! > counts[slot]!) slot = index;
  const share = counts[slot]! / total;
  if (share < options.minLiftOverUniform / counts.length) return null;
  return { slot, share };
}
