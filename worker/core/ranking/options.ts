// Every weight, half-life and threshold the ranking and rules core uses, in one typed object with
// defaults. Formulas read from here; they hold no tuning literals of their own. It does not validate
// merchandiser input (the rules routes do) and holds no per-request state.

import { type DiscountSensitivityOptions, defaultDiscountSensitivityOptions } from "../models/preferences.ts";

export interface PopulationOptions {
  /** A category bought by a customer within this many days of the fit counts as "recent" for trend. */
  trendWindowDays: number;
  /** Pseudo-buyers at the base recent ratio added to every category's trend, so two buyers are not a trend. */
  trendPseudoBuyers: number;
  /** Customers with at least this many purchase days in a category contribute to its repurchase interval. */
  minIntervalPurchaseDays: number;
  /** Below this many contributing customers a category uses the population-wide interval. */
  minIntervalSamples: number;
  /** Used when no customer in the population has bought anything twice. */
  fallbackIntervalDays: number;
  /** Co-purchase pairs seen by fewer customers than this are dropped as noise. */
  minPairSupport: number;
  /** Pairs with lift below this are not complementary enough to keep. */
  minLift: number;
  /** Keep at most this many complements per category (highest lift first). */
  maxComplementsPerCategory: number;
  /** Per customer, only the most-ordered categories form pairs: bounds the O(m²) pair count. */
  maxCategoriesPerCustomerForPairs: number;
  /** Probabilities at which price quantiles are stored. */
  priceQuantiles: number[];
  /** Bounds on the fitted taste concentration (the popularity prior's strength), in pseudo-purchases. */
  minTasteConcentration: number;
  maxTasteConcentration: number;
}

export interface CategoryOptions {
  /** Half-life of a purchase's weight, in days (recency-weighted purchase counts). */
  purchaseHalfLifeDays: number;
  /** Half-life of a product view's weight, in days. */
  browseHalfLifeDays: number;
  /** One view counts as this many purchases. */
  viewWeight: number;
  /**
   * Weight of the popularity prior, in pseudo-purchases: with this much own history, own and prior
   * count equally. "fitted" uses the population's taste concentration (population.ts).
   */
  priorStrength: number | "fitted";
  /** Used when priorStrength is "fitted" but the population could not estimate it. */
  fallbackPriorStrength: number;
  /** How strongly the recent trend tilts popularity: prior ∝ penetration × trend^trendWeight. */
  trendWeight: number;
  /** Cadence shrinkage weight (pseudo-intervals) towards the category's population interval. */
  cadencePriorWeight: number;
  /** A category whose overdue ratio is within [dueFrom, dueUntil] is due now. */
  dueFrom: number;
  dueUntil: number;
  /** Multiplier on a due category's own score. */
  dueBoost: number;
  /** Bought this recently (as a share of the interval) means "just bought". */
  justBoughtUntil: number;
  /** "Just bought" only holds a category down when its interval is at least this long, in days. */
  longCycleDays: number;
  /** Multiplier on a just-bought long-cycle category's score. */
  justBoughtFactor: number;
  /** How much complementary lift raises a category's prior: prior × (1 + liftWeight × Σ share × (lift − 1)). */
  liftWeight: number;
  /** Lift above this is capped, so one rare pair cannot swamp the list. */
  maxLift: number;
  /** How many categories to return. */
  maxCategories: number;
  /**
   * Bought in this many orders or more, a category is the shopper's habit: its sentence speaks of their
   * own purchases before what other shoppers buy next or what they viewed.
   */
  habitOrders: number;
}

export type DiscountPolicy = "auto" | "allow" | "hide" | "favour";

export interface ItemOptions {
  /** How many items to return. */
  maxItems: number;
  /** At most this many items from one category (diversity), until the other categories run out. */
  maxPerCategory: number;
  /** Categories supply items this many at a time: the next ones only once these run out (shelfOrder). */
  categoriesForItems: number;
  /** Price fit: weight falls as exp(−(Δpercentile / priceBandWidth)²). */
  priceBandWidth: number;
  /** Without a price history in a category, assume this percentile (0–1) of its price distribution. */
  defaultPricePercentile: number;
  /** Multiplier on a discounted item's score for deal seekers. */
  dealSeekerDiscountBoost: number;
  /** "auto": hide discounts from full-price shoppers, favour them for deal seekers; the rest force a policy. */
  discountPolicy: DiscountPolicy;
  /** Share of a category's typical interval in which a product just bought is left out. */
  recentProductWindowShare: number;
  /** Tie-break towards products that sell: score × (1 + weight × log(1 + units sold)). */
  productPopularityWeight: number;
}

export interface PopularOptions {
  /** Popularity = penetration × trend^trendWeight for the default shelf. */
  trendWeight: number;
  /** A category whose trend exceeds this is called "trending" rather than "popular" in reasons. */
  trendingAbove: number;
  maxCategories: number;
  maxItems: number;
  maxPerCategory: number;
}

export interface RuleOptions {
  /** A boost without a strength multiplies the score by (1 + this). */
  defaultBoostStrength: number;
  /** A bury without a strength divides the score by (1 + this). */
  defaultBuryStrength: number;
  /**
   * The most items chosen before a product's boost, bury or pin reorders them and the shelf is cut
   * (itemDepthFor in rules/apply.ts): the longest shelf the API serves.
   */
  itemDepth: number;
}

export interface HoldoutOptions {
  /** Share of customers (0–1) who get the non-personalized shelf so lift can be measured. */
  share: number;
  /** Changing the salt reshuffles who is held out (a new experiment). */
  salt: string;
}

export interface RankingOptions {
  population: PopulationOptions;
  categories: CategoryOptions;
  items: ItemOptions;
  /** Full-price vs deal seeker, shared with the profile (models/preferences.ts). */
  discount: DiscountSensitivityOptions;
  popular: PopularOptions;
  rules: RuleOptions;
  holdout: HoldoutOptions;
}

// Category defaults were chosen on The Complete Journey with a validation split inside the training
// period (train < 2017-07-01, score 2017-07-01..2017-10-01), then frozen before the 2017-10-01 test.
// The prior's strength is not a constant: it is fitted per population (tasteConcentration in
// population.ts); on that validation split the fit gives κ ≈ 107, where a grid search had found 100.
// docs/recommendations.md has the figures.
export const defaultRankingOptions: RankingOptions = {
  population: {
    trendWindowDays: 30,
    trendPseudoBuyers: 1,
    minIntervalPurchaseDays: 2,
    minIntervalSamples: 5,
    fallbackIntervalDays: 45,
    minPairSupport: 5,
    minLift: 1.2,
    maxComplementsPerCategory: 20,
    maxCategoriesPerCustomerForPairs: 60,
    priceQuantiles: [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1],
    minTasteConcentration: 0.5,
    maxTasteConcentration: 1000,
  },
  categories: {
    purchaseHalfLifeDays: 120,
    browseHalfLifeDays: 14,
    viewWeight: 0.25,
    priorStrength: "fitted",
    fallbackPriorStrength: 20,
    trendWeight: 0,
    cadencePriorWeight: 2,
    dueFrom: 0.8,
    dueUntil: 2,
    dueBoost: 1.1,
    justBoughtUntil: 0.35,
    longCycleDays: 60,
    justBoughtFactor: 0.8,
    liftWeight: 0.5,
    maxLift: 5,
    maxCategories: 10,
    habitOrders: 3,
  },
  items: {
    maxItems: 12,
    maxPerCategory: 3,
    categoriesForItems: 6,
    priceBandWidth: 0.35,
    defaultPricePercentile: 0.5,
    dealSeekerDiscountBoost: 1.5,
    discountPolicy: "auto",
    recentProductWindowShare: 1,
    productPopularityWeight: 0.05,
  },
  discount: defaultDiscountSensitivityOptions,
  popular: { trendWeight: 0.5, trendingAbove: 1.2, maxCategories: 10, maxItems: 12, maxPerCategory: 3 },
  rules: { defaultBoostStrength: 1, defaultBuryStrength: 1, itemDepth: 48 },
  holdout: { share: 0.1, salt: "patron-holdout-v1" },
};

/** Deep-ish merge of a partial override onto the defaults (one level per section). */
export type RankingOptionsOverride = { [K in keyof RankingOptions]?: Partial<RankingOptions[K]> };

export function rankingOptionsWith(override: RankingOptionsOverride = {}): RankingOptions {
  const base = defaultRankingOptions;
  return {
    population: { ...base.population, ...override.population },
    categories: { ...base.categories, ...override.categories },
    items: { ...base.items, ...override.items },
    discount: { ...base.discount, ...override.discount },
    popular: { ...base.popular, ...override.popular },
    rules: { ...base.rules, ...override.rules },
    holdout: { ...base.holdout, ...override.holdout },
  };
}
