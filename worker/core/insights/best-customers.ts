// What the best customers have in common: per-customer traits (what the nightly job counts), the
// counts summed over pages, and the ranked comparison of one value tier against everyone else. Pure.
import { roundTo } from "../math/round.ts";
import type { CustomerProfile } from "../profile/customer-profile.ts";
import { own } from "../records.ts";
import type { ValueTier } from "../vocabulary.ts";

export const traitDimensions = ["category", "channel", "priceBand", "discountSensitivity", "weekday", "store"] as const;
export type TraitDimension = (typeof traitDimensions)[number];

export interface Trait {
  dimension: TraitDimension;
  value: string;
}

/** A category or store counts as a customer's when at least this share of their purchase days / orders is there. */
export const regularShare = 1 / 3;

export const weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"] as const;

export interface TraitInput {
  profile: CustomerProfile;
  purchaseDays: number;
  /** Spend per category id, for the price band of the customer's main category. */
  categorySpend: Readonly<Record<string, number>>;
  /** The store of each of the customer's orders (null for orders not placed in a store). */
  orderStores: readonly (string | null)[];
}

/** A category is bought "regularly" on at least this many purchase days: one purchase is no habit. */
export const regularDays = 2;

/**
 * The traits one customer has: categories bought on at least two and a third of their purchase days, their
 * primary channel, stores holding at least a third of their orders, the price band of their main
 * category (by spend), their discount sensitivity and their preferred weekday (when they have one).
 */
export function customerTraits(input: TraitInput): Trait[] {
  const { profile } = input;
  const traits: Trait[] = [];
  // A one-time buyer bought every one of their categories on all of their one day: not "regularly".
  for (const category of profile.categories)
    if (
      category.purchaseDays >= regularDays &&
      input.purchaseDays > 0 &&
      category.purchaseDays / input.purchaseDays >= regularShare
    )
      traits.push({ dimension: "category", value: category.categoryId });
  if (profile.channelMix.primary) traits.push({ dimension: "channel", value: profile.channelMix.primary });
  const stores = new Map<string, number>();
  for (const store of input.orderStores) if (store) stores.set(store, (stores.get(store) ?? 0) + 1);
  for (const [store, count] of stores)
    if (count / input.orderStores.length >= regularShare) traits.push({ dimension: "store", value: store });
  let main: { spend: number; band: string } | null = null;
  for (const category of profile.categories) {
    const spend = own(input.categorySpend, category.categoryId) ?? 0;
    if (category.priceBand && (!main || spend > main.spend)) main = { spend, band: category.priceBand.band };
  }
  if (main) traits.push({ dimension: "priceBand", value: main.band });
  traits.push({ dimension: "discountSensitivity", value: profile.discount.sensitivity });
  if (profile.preferredWeekday) {
    const name = weekdayNames[profile.preferredWeekday.slot];
    if (name) traits.push({ dimension: "weekday", value: name });
  }
  return traits;
}

/** Customers per tier, and per tier how many have each trait (key `${dimension}:${value}`). */
export type TraitCounts = Partial<Record<string, { customers: number; traits: Record<string, number> }>>;

export const traitKey = (trait: Trait) => `${trait.dimension}:${trait.value}`;

export function countTrait(counts: TraitCounts, tier: string, traits: readonly Trait[]): void {
  const entry = counts[tier] ?? { customers: 0, traits: {} };
  counts[tier] = entry;
  entry.customers += 1;
  for (const trait of new Set(traits.map(traitKey))) entry.traits[trait] = (entry.traits[trait] ?? 0) + 1;
}

/** Adds `more` into `into` (the nightly job sums its pages). */
export function addCounts(into: TraitCounts, more: TraitCounts): TraitCounts {
  for (const [tier, entry] of Object.entries(more)) {
    if (!entry) continue;
    const target = into[tier] ?? { customers: 0, traits: {} };
    into[tier] = target;
    target.customers += entry.customers;
    for (const [key, n] of Object.entries(entry.traits)) target.traits[key] = (target.traits[key] ?? 0) + n;
  }
  return into;
}

/**
 * Drops traits fewer than `minCustomers` customers have across all tiers: no tier can show them, and
 * the rollup row stays small however many categories and stores there are.
 */
export function pruneCounts(counts: TraitCounts, minCustomers = defaultRankOptions.minCustomers): TraitCounts {
  const totals: Record<string, number> = {};
  for (const entry of Object.values(counts))
    for (const [key, n] of Object.entries(entry?.traits ?? {})) totals[key] = (totals[key] ?? 0) + n;
  const pruned: TraitCounts = {};
  for (const [tier, entry] of Object.entries(counts)) {
    if (!entry) continue;
    pruned[tier] = {
      customers: entry.customers,
      traits: Object.fromEntries(Object.entries(entry.traits).filter(([key]) => (totals[key] ?? 0) >= minCustomers)),
    };
  }
  return pruned;
}

export interface RankOptions {
  /** A trait held by fewer customers of the tier than this is not shown: too few to mean anything. */
  minCustomers: number;
  /** How many traits to return. */
  limit: number;
}

export const defaultRankOptions: RankOptions = { minCustomers: 5, limit: 20 };

export interface RankedTrait extends Trait {
  topCustomers: number;
  restCustomers: number;
  topShare: number;
  restShare: number;
  lift: number;
  /** Lower end of the 95% interval of the log odds ratio: what the ranking sorts by. */
  score: number;
  sentence: string;
}

export interface Comparison {
  tier: string;
  customers: number;
  comparedWith: number;
  traits: RankedTrait[];
}

/**
 * The tier against everyone else. Each trait's share of the tier's customers vs the rest's, and
 * lift = topShare / restShare, where the rest's share is smoothed ((count + ½) / (total + 1)) so a
 * trait nobody else has gives a finite lift. Ranked by the lower end of the 95% confidence interval
 * of the log odds ratio (Haldane–Anscombe +½ per cell): a large lift on a handful of customers has a
 * wide interval and ranks below a solid one, and traits held by fewer than `minCustomers` of the tier
 * are left out. Only traits more common in the tier than in the rest (score > 0) are returned.
 */
export function compareTier(
  counts: TraitCounts,
  tier: string,
  names: Readonly<Record<string, string>> = {},
  options: RankOptions = defaultRankOptions,
): Comparison {
  const top = counts[tier] ?? { customers: 0, traits: {} };
  let restTotal = 0;
  const rest: Record<string, number> = {};
  for (const [other, entry] of Object.entries(counts)) {
    if (other === tier || !entry) continue;
    restTotal += entry.customers;
    for (const [key, n] of Object.entries(entry.traits)) rest[key] = (rest[key] ?? 0) + n;
  }
  const traits: RankedTrait[] = [];
  if (top.customers > 0 && restTotal > 0) {
    for (const [key, a] of Object.entries(top.traits)) {
      if (a < options.minCustomers) continue;
      const separator = key.indexOf(":");
      const dimension = key.slice(0, separator) as TraitDimension;
      const value = key.slice(separator + 1);
      const c = rest[key] ?? 0;
      const b = top.customers - a;
      const d = restTotal - c;
      const logOdds = Math.log(((a + 0.5) * (d + 0.5)) / ((b + 0.5) * (c + 0.5)));
      const se = Math.sqrt(1 / (a + 0.5) + 1 / (b + 0.5) + 1 / (c + 0.5) + 1 / (d + 0.5));
      const score = logOdds - 1.96 * se;
      if (!(score > 0)) continue;
      const topShare = a / top.customers;
      const restShare = c / restTotal;
      const smoothedRest = (c + 0.5) / (restTotal + 1);
      traits.push({
        dimension,
        value,
        topCustomers: a,
        restCustomers: c,
        topShare: roundTo(topShare, 4),
        restShare: roundTo(restShare, 4),
        lift: roundTo(topShare / smoothedRest, 2),
        score: roundTo(score, 4),
        sentence: sentence(tier, { dimension, value }, topShare, restShare, names),
      });
    }
  }
  traits.sort((x, y) => y.score - x.score || y.lift - x.lift || traitKey(x).localeCompare(traitKey(y)));
  return { tier, customers: top.customers, comparedWith: restTotal, traits: traits.slice(0, options.limit) };
}

const tierWords: Record<ValueTier, string> = {
  top: "top customers",
  high: "high-value customers",
  medium: "medium-value customers",
  low: "low-value customers",
};

const channelWords: Record<string, string> = {
  web: "mostly buy online",
  store: "mostly buy in store",
  app: "mostly buy in the app",
  phone: "mostly buy by phone",
};

const discountWords: Record<string, string> = {
  full_price: "pay full price",
  mixed: "mix full-price and discounted buys",
  deal_seeker: "buy mostly on deals",
};

const percent = (share: number) => `${Math.round(share * 100)}%`;

/** "62% of top customers buy Coffee regularly vs 4% of the rest". */
export function sentence(
  tier: string,
  trait: Trait,
  topShare: number,
  restShare: number,
  names: Readonly<Record<string, string>> = {},
): string {
  const who = tierWords[tier as ValueTier] ?? `${tier} customers`;
  const name = names[traitKey(trait)] ?? trait.value;
  const what = {
    category: `buy ${name} regularly`,
    channel: channelWords[trait.value] ?? `mostly buy via ${name}`,
    // A store id that already says "store" ("store-02") is not preceded by the word again.
    store: `mostly shop at ${/^store\b/i.test(name) ? name : `store ${name}`}`,
    priceBand: `mostly buy ${name}-priced items`,
    discountSensitivity: discountWords[trait.value] ?? name,
    weekday: `mostly buy on ${name}s`,
  }[trait.dimension];
  return `${percent(topShare)} of ${who} ${what} vs ${percent(restShare)} of the rest`;
}

/**
 * The value at stake if the customer has gone: what their own rhythm would bring in 12 months (their
 * expected order value at one order per expected interval) times the chance they have stopped
 * (1 − P(alive)). Near 0 for a customer buying on rhythm, close to a year of their orders for a
 * valuable regular who has gone quiet.
 */
export function clvAtStakeOf(
  profile: Pick<CustomerProfile, "expectedOrderValue" | "probabilityAlive" | "cadence">,
): number {
  const interval = profile.cadence.expectedIntervalDays;
  if (!(interval > 0) || !Number.isFinite(profile.expectedOrderValue)) return 0;
  const promised = profile.expectedOrderValue * (365 / interval);
  return roundTo(Math.max(0, promised * (1 - profile.probabilityAlive)), 2);
}
