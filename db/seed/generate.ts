// Demo data for a multi-channel retailer with known ground truth: customers with their own purchase
// rhythm, category tastes, complementary pairs, price band, discount habit and channel mix, whose
// identities are split across web logins, loyalty cards, e-receipt emails, phones and payment cards
// (some shared by a household, a few junk). Pure and deterministic from the seed: no I/O, no clock
// (`today` is an option). Customers are generated one at a time from their own random stream, so a
// million never sit in memory and customer i is the same at any dataset size.
import {
  type Channel,
  channels,
  type DiscountSensitivity,
  discountSensitivities,
  type IdentifierKind,
} from "../../worker/core/vocabulary.ts";
import { type Catalog, complementaryPairs, generateCatalog, leafCategoryIds } from "./catalog.ts";
import { Random } from "./random.ts";
import { type Identifiers, verified, type WireOrder, type WireOrderLine, type WireProduct } from "./wire.ts";

export type PriceBand = "budget" | "mid" | "premium";
/** The generator places no phone orders. */
export type GeneratedChannel = Exclude<Channel, "phone">;
const generatedChannels = channels.filter((channel): channel is GeneratedChannel => channel !== "phone");
export type ChannelMix = Record<GeneratedChannel, number>;

export interface SeedOptions {
  seed: number;
  /** Generated customers, on top of the fixed demo personas. */
  customers: number;
  /** The last day of history, YYYY-MM-DD (UTC). Orders are placed strictly before it. */
  today: string;
  baseUrl: string;
  historyDays: number;
  includePersonas: boolean;
  productsPerCategory: number;
}

export const defaultSeedOptions: SeedOptions = {
  seed: 42,
  customers: 1000,
  today: "2026-06-01",
  baseUrl: "http://127.0.0.1:8787",
  historyDays: 730,
  includePersonas: true,
  productsPerCategory: 20,
};

/**
 * Population policy: the shares and spreads the generated customers are drawn from. Data, not
 * literals in the simulation, so a test or a benchmark can ask for a different population.
 */
export const populationPolicy = {
  newShare: 0.08,
  newWithinDays: 30,
  churnShare: 0.2,
  meanIntervalDays: 35,
  intervalSpread: 0.6,
  intervalRange: [5, 150] as [number, number],
  /** Log-normal spread of each gap around the customer's own mean: low means a regular rhythm. */
  gapSpreadRange: [0.2, 0.45] as [number, number],
  complementFollowProbability: 0.6,
  dealSeekerSaleShare: 0.88,
  priceBandQuantiles: { budget: [0, 0.35], mid: [0.3, 0.7], premium: [0.65, 1] } as Record<PriceBand, [number, number]>,
  householdBlockSize: 3,
  householdShare: 0.05,
  loyaltyShareOfStoreShoppers: 0.8,
  cardOnlyStoreOrderShare: 0.15,
  receiptEmailShare: 0.25,
  receiptPhoneShare: 0.15,
  junkStoreOrderShare: 0.03,
  stores: 12,
};

export type TrueIdentifiers = Record<IdentifierKind, string | null>;

export interface Household {
  id: string;
  shares: "card" | "phone";
  /** The shared value, exactly as it appears on orders. */
  value: string;
  members: number;
}

export interface CustomerTruth {
  key: string;
  persona: string;
  label: string;
  identifiers: TrueIdentifiers;
  household: Household | null;
  meanIntervalDays: number;
  tastes: Record<string, number>;
  complementaryPairs: [string, string][];
  priceBand: PriceBand;
  discountHabit: DiscountSensitivity;
  channelMix: ChannelMix;
  firstOrderAt: string | null;
  /** The customer stops buying on this date (null: still active). */
  churnedAt: string | null;
  isNew: boolean;
  orders: number;
}

export interface GeneratedCustomer {
  truth: CustomerTruth;
  orders: WireOrder[];
}

export interface DemoShopper {
  id: string;
  /** The storefront login the demo signs shopper tokens for; null for the anonymous visitor. */
  accountId: string | null;
  label: string;
  description: string;
}

/** The storefront demo's fixed shoppers. Their ids, accounts and histories do not depend on the seed. */
export const demoShoppers = [
  {
    id: "demo-full-price",
    accountId: "demo-full-price",
    label: "Full-price web shopper",
    description: "Buys dresses, heels, jewellery and fragrance online at list price, premium end, every ~3 weeks.",
  },
  {
    id: "demo-store-loyal",
    accountId: "demo-store-loyal",
    label: "Store loyalty-card shopper",
    description:
      "Buys coffee, tea and kitchen things in store with a loyalty card, mostly on promotion; one web order links the login through the e-receipt email.",
  },
  {
    id: "demo-fading",
    accountId: "demo-fading",
    label: "Fading regular",
    description: "Bought skincare and makeup every ~2 weeks for a year; nothing for almost four weeks now.",
  },
  {
    id: "demo-new",
    accountId: "demo-new",
    label: "Brand-new shopper",
    description: "One order of sneakers and denim a few days ago.",
  },
  {
    id: "demo-anonymous",
    accountId: null,
    label: "Anonymous visitor",
    description: "Not logged in: sees the popular shelf.",
  },
] as const satisfies readonly DemoShopper[];

const dayMs = 86_400_000;
const firstNames = [
  "ava",
  "liam",
  "mia",
  "noah",
  "zoe",
  "omar",
  "lena",
  "raj",
  "chloe",
  "diego",
  "ines",
  "kai",
  "nora",
  "sam",
];
const lastNames = [
  "park",
  "silva",
  "khan",
  "meyer",
  "rossi",
  "nguyen",
  "brown",
  "garcia",
  "cohen",
  "okafor",
  "lind",
  "ito",
];
const emailDomains = ["shopmail.com", "inbox.net", "post.org", "mailbox.io"];

/** A catalog that is the same for every seed, so datasets of different seeds can share a database. */
const catalogSeed = 1;

export function demoCatalog(
  options: Pick<SeedOptions, "baseUrl" | "productsPerCategory"> = defaultSeedOptions,
): Catalog {
  return generateCatalog({
    seed: catalogSeed,
    baseUrl: options.baseUrl,
    productsPerCategory: options.productsPerCategory,
    saleShare: 0.35,
    outOfStockShare: 0.06,
  });
}

export function generateProducts(options: Partial<SeedOptions> = {}): WireProduct[] {
  return demoCatalog({ ...defaultSeedOptions, ...options }).products;
}

/** Every customer, personas first, one at a time. */
export function* generateCustomers(partial: Partial<SeedOptions> = {}): Generator<GeneratedCustomer> {
  const options = { ...defaultSeedOptions, ...partial };
  const context = makeContext(options);
  if (options.includePersonas) yield* generatePersonas(context);
  for (let index = 0; index < options.customers; index++) yield generateCustomer(context, index);
}

/** How many customers `generateCustomers` yields. */
export function customerCount(partial: Partial<SeedOptions> = {}): number {
  const options = { ...defaultSeedOptions, ...partial };
  return options.customers + (options.includePersonas ? demoShoppers.length : 0);
}

interface Context {
  options: SeedOptions;
  catalog: Catalog;
  todayDay: number;
}

function makeContext(options: SeedOptions): Context {
  const todayMs = Date.parse(`${options.today}T00:00:00Z`);
  if (Number.isNaN(todayMs)) throw new Error(`generateCustomers: today must be YYYY-MM-DD, got ${options.today}`);
  return { options, catalog: demoCatalog(options), todayDay: Math.floor(todayMs / dayMs) };
}

interface CustomerSpec {
  key: string;
  persona: string;
  label: string;
  orderIdPrefix: string;
  identifiers: TrueIdentifiers;
  household: Household | null;
  meanIntervalDays: number;
  gapSpread: number;
  tastes: Record<string, number>;
  complementaryPairs: [string, string][];
  priceBand: PriceBand;
  discountHabit: DiscountSensitivity;
  channelMix: ChannelMix;
  homeStore: string;
  /** Day numbers (days since the epoch, UTC). */
  firstOrderDay: number;
  churnDay: number | null;
  isNew: boolean;
  /** Store orders carry only the loyalty number (the store-loyal persona). */
  loyaltyOnlyInStore: boolean;
}

function generateCustomer(context: Context, index: number): GeneratedCustomer {
  const { options, todayDay } = context;
  const policy = populationPolicy;
  const random = Random.derive(options.seed, "customer", index);
  const household = householdOf(options.seed, index);

  const archetype = random.weightedIndex([0.3, 0.3, 0.4]);
  const channelMix: ChannelMix =
    archetype === 0
      ? { web: 0.85, store: 0, app: 0.15 }
      : archetype === 1
        ? { web: 0, store: 1, app: 0 }
        : normalise({ web: random.between(0.2, 1), store: random.between(0.2, 1), app: random.between(0, 0.4) });
  if (household && channelMix.store === 0) {
    // Household members share a card or phone at the till: they all shop in store.
    channelMix.store = 0.5;
    Object.assign(channelMix, normalise(channelMix));
  }

  const tastes = drawTastes(random);
  const pairs = complementaryPairs.filter(([from]) => from in tastes).slice(0, 2) as [string, string][];
  for (const [, to] of pairs) if (!(to in tastes)) tastes[to] = 0;
  const normalisedTastes = normaliseTastes(tastes, 0.06);

  const meanIntervalDays = round1(
    clamp(random.logNormalWithMean(policy.meanIntervalDays, policy.intervalSpread), ...policy.intervalRange),
  );
  const isNew = random.chance(policy.newShare);
  const firstOrderDay = isNew
    ? todayDay - random.int(1, policy.newWithinDays)
    : todayDay - random.int(policy.newWithinDays + 1, options.historyDays);
  let churnDay: number | null = null;
  if (!isNew && random.chance(policy.churnShare)) {
    const earliest = firstOrderDay + Math.ceil(2 * meanIntervalDays);
    const latest = todayDay - Math.ceil(3 * meanIntervalDays);
    if (earliest < latest) churnDay = random.int(earliest, latest);
  }

  const storeShopper = channelMix.store > 0;
  const onlineShopper = channelMix.web + channelMix.app > 0;
  const hasLoyalty = household !== null || (storeShopper && random.chance(policy.loyaltyShareOfStoreShoppers));
  const name = `${random.pick(firstNames)}.${random.pick(lastNames)}`;
  const identifiers: TrueIdentifiers = {
    account: onlineShopper ? `u-${options.seed}-${index}` : null,
    email: `${name}.${options.seed}.${index}@${random.pick(emailDomains)}`,
    phone: random.chance(0.7) ? formatPhone(random, phoneDigits(options.seed, index * 2)) : null,
    loyalty: hasLoyalty ? `LY-${options.seed}-${String(index).padStart(7, "0")}` : null,
    card: storeShopper ? `tok_${hex(options.seed, "card", index)}${index.toString(36)}` : null,
    device: channelMix.app > 0 ? `dev-${options.seed}-${index}` : null,
  };

  const priceBand = (["budget", "mid", "premium"] as const)[random.weightedIndex([0.35, 0.45, 0.2])] as PriceBand;
  const discountHabit = discountSensitivities[random.weightedIndex([0.3, 0.4, 0.3])] as DiscountSensitivity;

  return simulate(context, random, {
    key: `c-${index}`,
    persona: isNew ? "new" : churnDay !== null ? "churned" : "regular",
    label: `${priceBand} ${discountHabit.replace("_", " ")} ${describeMix(channelMix)} shopper`,
    orderIdPrefix: `${options.seed}-${index}`,
    identifiers,
    household,
    meanIntervalDays,
    gapSpread: random.between(...policy.gapSpreadRange),
    tastes: normalisedTastes,
    complementaryPairs: pairs,
    priceBand,
    discountHabit,
    channelMix,
    homeStore: storeId(random.int(1, policy.stores)),
    firstOrderDay,
    churnDay,
    isNew,
    loyaltyOnlyInStore: false,
  });
}

function* generatePersonas(context: Context): Generator<GeneratedCustomer> {
  const { todayDay } = context;
  const none: TrueIdentifiers = { account: null, email: null, phone: null, loyalty: null, card: null, device: null };
  const base = {
    household: null,
    gapSpread: 0.15,
    homeStore: storeId(1),
    isNew: false,
    churnDay: null,
    loyaltyOnlyInStore: false,
  };
  const [fullPrice, storeLoyal, fading, brandNew, anonymous] = demoShoppers;

  yield simulate(context, Random.derive(0, "persona", 1), {
    ...base,
    key: fullPrice.id,
    persona: fullPrice.id,
    label: fullPrice.label,
    orderIdPrefix: fullPrice.id,
    identifiers: { ...none, account: fullPrice.accountId, email: "avery.lind@shopmail.com" },
    meanIntervalDays: 24,
    tastes: { dresses: 0.35, heels: 0.3, jewellery: 0.2, fragrance: 0.15 },
    complementaryPairs: [
      ["dresses", "heels"],
      ["heels", "jewellery"],
    ],
    priceBand: "premium",
    discountHabit: "full_price",
    channelMix: { web: 1, store: 0, app: 0 },
    firstOrderDay: todayDay - 540,
  });

  const loyal = simulate(context, Random.derive(0, "persona", 2), {
    ...base,
    key: storeLoyal.id,
    persona: storeLoyal.id,
    label: storeLoyal.label,
    orderIdPrefix: storeLoyal.id,
    identifiers: { ...none, account: storeLoyal.accountId, email: "sam.okafor@inbox.net", loyalty: "LY-DEMO-0002" },
    meanIntervalDays: 12,
    tastes: { coffee: 0.4, tea: 0.25, kitchen: 0.2, candles: 0.15 },
    complementaryPairs: [
      ["coffee", "kitchen"],
      ["tea", "candles"],
    ],
    priceBand: "mid",
    discountHabit: "deal_seeker",
    channelMix: { web: 0, store: 1, app: 0 },
    homeStore: storeId(3),
    firstOrderDay: todayDay - 400,
    loyaltyOnlyInStore: true,
  });
  linkStoreLoyalLogin(context, loyal);
  yield loyal;

  yield simulate(context, Random.derive(0, "persona", 3), {
    ...base,
    key: fading.id,
    persona: fading.id,
    label: fading.label,
    orderIdPrefix: fading.id,
    identifiers: { ...none, account: fading.accountId, email: "nora.meyer@post.org", loyalty: "LY-DEMO-0003" },
    meanIntervalDays: 14,
    tastes: { skincare: 0.5, makeup: 0.35, fragrance: 0.15 },
    complementaryPairs: [["skincare", "makeup"]],
    priceBand: "mid",
    discountHabit: "mixed",
    channelMix: { web: 0.6, store: 0.4, app: 0 },
    firstOrderDay: todayDay - 430,
    churnDay: todayDay - 21,
  });

  yield simulate(context, Random.derive(0, "persona", 4), {
    ...base,
    key: brandNew.id,
    persona: brandNew.id,
    label: brandNew.label,
    orderIdPrefix: brandNew.id,
    identifiers: { ...none, account: brandNew.accountId, email: "kai.ito@mailbox.io" },
    meanIntervalDays: 30,
    tastes: { sneakers: 0.5, denim: 0.3, tops: 0.2 },
    complementaryPairs: [["sneakers", "denim"]],
    priceBand: "budget",
    discountHabit: "mixed",
    channelMix: { web: 1, store: 0, app: 0 },
    firstOrderDay: todayDay - 4,
    isNew: true,
  });

  yield {
    truth: {
      key: anonymous.id,
      persona: anonymous.id,
      label: anonymous.label,
      identifiers: { ...none, device: "demo-anonymous-device" },
      household: null,
      meanIntervalDays: 0,
      tastes: {},
      complementaryPairs: [],
      priceBand: "mid",
      discountHabit: "mixed",
      channelMix: { web: 0, store: 0, app: 0 },
      firstOrderAt: null,
      churnedAt: null,
      isNew: false,
      orders: 0,
    },
    orders: [],
  };
}

/**
 * The store-loyal persona's login is tied to the loyalty card only through the e-receipt email: the
 * latest store order carries loyalty + email, and one web order carries account + email.
 */
function linkStoreLoyalLogin(context: Context, customer: GeneratedCustomer): void {
  const { identifiers } = customer.truth;
  const lastStoreOrder = customer.orders.at(-1);
  if (!lastStoreOrder || !identifiers.email || !identifiers.account) return;
  // The email on file for the loyalty account: the till looks it up, so the retailer vouches for it.
  lastStoreOrder.identifiers = { loyalty: identifiers.loyalty ?? "", email: verified(identifiers.email) };
  const product = context.catalog.productsByCategory.get("kitchen")?.[8];
  if (!product) return;
  const placedDay = Math.min(context.todayDay - 1, Date.parse(lastStoreOrder.placedAt) / dayMs + 1);
  customer.orders.push({
    id: `web-${customer.truth.key}-login`,
    channel: "web",
    storeId: null,
    placedAt: isoAt(Math.floor(placedDay), 20 * 60 + 15),
    currency: "USD",
    identifiers: { account: identifiers.account, email: verified(identifiers.email) },
    lines: [line(product, 1, product.salePrice ?? product.listPrice)],
    recommendationId: null,
  });
  customer.truth.orders = customer.orders.length;
  customer.truth.channelMix = {
    web: round3(1 / customer.orders.length),
    store: round3(1 - 1 / customer.orders.length),
    app: 0,
  };
}

function simulate(context: Context, random: Random, spec: CustomerSpec): GeneratedCustomer {
  const policy = populationPolicy;
  const orders: WireOrder[] = [];
  const tasteIds = Object.keys(spec.tastes);
  const tasteWeights = tasteIds.map((id) => spec.tastes[id] as number);
  const lastDay = Math.min(context.todayDay - 1, spec.churnDay === null ? Number.POSITIVE_INFINITY : spec.churnDay - 1);
  let previousCategories: string[] = [];
  let day = spec.firstOrderDay;
  while (day <= lastDay) {
    const channel = pickChannel(random, spec.channelMix);
    const lineCount = 1 + (random.chance(0.45) ? 1 : 0) + (random.chance(0.15) ? 1 : 0);
    const categories: string[] = [];
    const follow = spec.complementaryPairs.filter(([from]) => previousCategories.includes(from));
    if (follow.length > 0 && random.chance(policy.complementFollowProbability)) categories.push(random.pick(follow)[1]);
    for (let attempt = 0; categories.length < lineCount && attempt < 6; attempt++) {
      const category = tasteIds[random.weightedIndex(tasteWeights)] as string;
      if (!categories.includes(category)) categories.push(category);
    }
    const lines = categories.map((category) => buyIn(context, random, spec, category));
    const minuteOfDay = orderMinute(random, channel);
    const prefix = channel === "store" ? "pos" : channel;
    orders.push({
      id: `${prefix}-${spec.orderIdPrefix}-${orders.length + 1}`,
      channel,
      storeId:
        channel === "store" ? (random.chance(0.85) ? spec.homeStore : storeId(random.int(1, policy.stores))) : null,
      placedAt: isoAt(day, minuteOfDay),
      currency: "USD",
      identifiers: identifiersFor(random, spec, channel),
      lines,
      recommendationId: null,
    });
    previousCategories = categories;
    day += Math.max(1, Math.round(random.logNormalWithMean(spec.meanIntervalDays, spec.gapSpread)));
  }
  return {
    truth: {
      key: spec.key,
      persona: spec.persona,
      label: spec.label,
      identifiers: spec.identifiers,
      household: spec.household,
      meanIntervalDays: spec.meanIntervalDays,
      tastes: spec.tastes,
      complementaryPairs: spec.complementaryPairs,
      priceBand: spec.priceBand,
      discountHabit: spec.discountHabit,
      channelMix: spec.channelMix,
      firstOrderAt: orders[0]?.placedAt ?? null,
      churnedAt: spec.churnDay === null ? null : isoDate(spec.churnDay),
      isNew: spec.isNew,
      orders: orders.length,
    },
    orders,
  };
}

function buyIn(context: Context, random: Random, spec: CustomerSpec, categoryId: string): WireOrderLine {
  const policy = populationPolicy;
  const sorted = context.catalog.productsByCategory.get(categoryId);
  if (!sorted || sorted.length === 0) throw new Error(`buyIn: unknown category ${categoryId}`);
  const [low, high] = policy.priceBandQuantiles[spec.priceBand];
  const band = sorted.slice(
    Math.floor(low * sorted.length),
    Math.max(Math.floor(low * sorted.length) + 1, Math.ceil(high * sorted.length)),
  );
  const onSale = (products: WireProduct[]) => products.filter((product) => product.salePrice !== null);
  const atList = (products: WireProduct[]) => products.filter((product) => product.salePrice === null);
  const quantity = categoryId === "coffee" || categoryId === "tea" ? random.int(1, 3) : random.chance(0.08) ? 2 : 1;

  if (spec.discountHabit === "deal_seeker" && random.chance(policy.dealSeekerSaleShare)) {
    const candidates = onSale(band).length > 0 ? onSale(band) : onSale(sorted);
    if (candidates.length > 0) {
      const product = random.pick(candidates);
      return line(product, quantity, product.salePrice as number);
    }
  }
  if (spec.discountHabit === "full_price") {
    const candidates = atList(band).length > 0 ? atList(band) : band;
    return line(random.pick(candidates), quantity, null);
  }
  const product = random.pick(band);
  return line(product, quantity, spec.discountHabit === "mixed" ? product.salePrice : null);
}

function line(product: WireProduct, quantity: number, paid: number | null): WireOrderLine {
  return {
    productId: product.id,
    categoryId: product.categoryId,
    quantity,
    unitPrice: paid ?? product.listPrice,
    listPrice: product.listPrice,
  };
}

/**
 * The identifiers a web, app or till system sends with one order, with the trust a real one would
 * give them (docs/identity.md): the storefront login and its verified email, the loyalty card and
 * the email or phone on file for it, and a payment card presented at the till are vouched for; a
 * device cookie and an email or phone typed at the till without a loyalty card are not.
 */
function identifiersFor(random: Random, spec: CustomerSpec, channel: Channel): Identifiers {
  const policy = populationPolicy;
  const own = spec.identifiers;
  const result: Identifiers = {};
  if (channel === "web" || channel === "app") {
    if (own.account) result.account = own.account;
    if (own.email && random.chance(0.85)) result.email = verified(randomCase(random, own.email));
    if (channel === "app" && own.device) result.device = own.device;
    return result;
  }
  if (spec.loyaltyOnlyInStore && own.loyalty) return { loyalty: own.loyalty };
  const sharedCard = spec.household?.shares === "card" ? spec.household.value : null;
  const sharedPhone = spec.household?.shares === "phone" ? spec.household.value : null;
  const card = sharedCard ?? own.card;
  const phone = sharedPhone ?? own.phone;
  if (own.loyalty && !random.chance(policy.cardOnlyStoreOrderShare)) {
    result.loyalty = own.loyalty;
    if (own.email && random.chance(policy.receiptEmailShare)) result.email = verified(own.email);
    else if (phone && random.chance(policy.receiptPhoneShare / (1 - policy.receiptEmailShare)))
      result.phone = verified(phone);
    if (sharedCard && random.chance(0.5)) result.card = verified(sharedCard);
  } else if (sharedPhone && random.chance(0.5)) {
    result.phone = sharedPhone;
  } else {
    if (card) result.card = verified(card);
    if (own.email && random.chance(policy.receiptEmailShare)) result.email = own.email;
  }
  if (Object.keys(result).length === 0 && own.email) result.email = own.email;
  if (random.chance(policy.junkStoreOrderShare)) {
    const junk: [keyof Identifiers, string][] = [
      ["loyalty", "0000"],
      ["email", "n/a"],
      ["phone", "n/a"],
      ["phone", "0000"],
    ];
    const [kind, value] = random.pick(junk.filter(([kind]) => !(kind in result)).concat([["email", "N/A"]]));
    if (!(kind in result)) result[kind] = value;
  }
  return result;
}

/** Households: blocks of consecutive customers, a few of which share one card or phone. */
export function householdOf(seed: number, index: number): Household | null {
  const policy = populationPolicy;
  const block = Math.floor(index / policy.householdBlockSize);
  const random = Random.derive(seed, "household", block);
  if (!random.chance(policy.householdShare)) return null;
  const members = random.int(2, policy.householdBlockSize);
  if (index % policy.householdBlockSize >= members) return null;
  const shares = random.chance(0.5) ? "card" : "phone";
  return {
    id: `hh-${seed}-${block}`,
    shares,
    value:
      shares === "card"
        ? `tok_hh${hex(seed, "household-card", block)}`
        : formatPhone(random, phoneDigits(seed, block * 2 + 1)),
    members,
  };
}

function drawTastes(random: Random): Record<string, number> {
  const count = random.int(2, 4);
  const chosen = random.shuffled(leafCategoryIds).slice(0, count);
  const tastes: Record<string, number> = {};
  for (const id of chosen) tastes[id] = -Math.log(1 - random.next()) + 0.2;
  return tastes;
}

function normaliseTastes(tastes: Record<string, number>, floor: number): Record<string, number> {
  const total = Object.values(tastes).reduce((sum, weight) => sum + Math.max(weight, 0), 0) || 1;
  const result: Record<string, number> = {};
  for (const [id, weight] of Object.entries(tastes)) result[id] = Math.max(floor, weight / total);
  const renormalised = Object.values(result).reduce((sum, weight) => sum + weight, 0);
  for (const id of Object.keys(result)) result[id] = round3((result[id] as number) / renormalised);
  return result;
}

function normalise(mix: ChannelMix): ChannelMix {
  const total = mix.web + mix.store + mix.app;
  return { web: round3(mix.web / total), store: round3(mix.store / total), app: round3(mix.app / total) };
}

function pickChannel(random: Random, mix: ChannelMix): Channel {
  return generatedChannels[random.weightedIndex(generatedChannels.map((channel) => mix[channel]))] as Channel;
}

function describeMix(mix: ChannelMix): string {
  if (mix.store === 0) return "online";
  if (mix.web + mix.app === 0) return "store";
  return "omnichannel";
}

/** Minute of the day in UTC: web in the evening, stores in opening hours, the app all day. */
function orderMinute(random: Random, channel: Channel): number {
  const hour = channel === "store" ? random.int(14, 23) : channel === "web" ? random.int(0, 23) : random.int(11, 23);
  return hour * 60 + random.int(0, 59);
}

function storeId(n: number): string {
  return `store-${String(n).padStart(2, "0")}`;
}

/** Ten NANP digits, unique per (seed, n); `n` is 2·customer for people and 2·block+1 for households. */
function phoneDigits(seed: number, n: number): string {
  return String(2_000_000_000 + (((((seed % 997) + 997) % 997) * 2_000_003 + n) % 7_000_000_000));
}

/** The same number written the ways tills and forms write it, so normalisation has work to do. */
function formatPhone(random: Random, digits: string): string {
  const [area, exchange, line] = [digits.slice(0, 3), digits.slice(3, 6), digits.slice(6)];
  switch (random.int(0, 2)) {
    case 0:
      return `(${area}) ${exchange}-${line}`;
    case 1:
      return `${area}-${exchange}-${line}`;
    default:
      return `+1 ${area} ${exchange} ${line}`;
  }
}

function randomCase(random: Random, email: string): string {
  return random.chance(0.1) ? email.replace(/^./, (first) => first.toUpperCase()) : email;
}

function hex(seed: number, stream: string, index: number): string {
  return Math.floor(Random.derive(seed, stream, index).next() * 0x100000000)
    .toString(16)
    .padStart(8, "0")
    .slice(0, 8);
}

/** `YYYY-MM-DDTHH:MMZ`-style instants; the date part is memoised (a few hundred distinct days, millions of orders). */
function isoAt(day: number, minuteOfDay: number): string {
  const hours = Math.floor(minuteOfDay / 60);
  const minutes = minuteOfDay % 60;
  return `${isoDate(day)}T${hours < 10 ? "0" : ""}${hours}:${minutes < 10 ? "0" : ""}${minutes}:00Z`;
}

const isoDates = new Map<number, string>();
function isoDate(day: number): string {
  let date = isoDates.get(day);
  if (date === undefined) {
    date = new Date(day * dayMs).toISOString().slice(0, 10);
    if (isoDates.size < 100_000) isoDates.set(day, date);
  }
  return date;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
