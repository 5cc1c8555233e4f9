// A customer's stored totals (customer_summaries and customer_category_stats) kept up to date one order
// at a time: addOrder folds a new order into the totals instead of rebuilding them from every order,
// so an ingested order writes one summary row and one row per category it touches. An order on or after
// the customer's last purchase day folds from the totals alone; an earlier one (a store file loaded after
// the web one) also needs what is stored about its own day: that day's total and categories and the
// purchase days either side (StoredDay, a few indexed reads). totalsOfOrders is the full recompute, the
// same maths as the ingestion SQL (orders.repo.ts rebuildSummaryStatements), used where folding cannot
// work: a merge, an erasure, an order moved between customers, or an order at the very instant of the
// first one. Pure.
import type { Channel } from "../vocabulary.ts";

export interface SummaryTotals {
  orders: number;
  /** Distinct UTC days with an order: the purchase occasions. */
  purchaseDays: number;
  firstOrderAt: string;
  lastOrderAt: string;
  spend: number;
  positiveOrders: number;
  positiveSpend: number;
  /** Total of the first order (by time, then id) when positive, else 0. */
  firstOrderSpend: number;
  /** The second purchase day (YYYY-MM-DD), null before a repeat. */
  secondPurchaseAt: string | null;
  /** Σ (days between consecutive purchase days)². */
  gapSquareSum: number;
  positiveDays: number;
  positiveDaySpend: number;
  /** The first purchase day's total when positive, else 0. */
  firstDaySpend: number;
  /** The last purchase day's total: what a later order the same day adds to. */
  lastDaySpend: number;
  webOrders: number;
  storeOrders: number;
  appOrders: number;
  phoneOrders: number;
  units: number;
  discountedUnits: number;
}

export interface CategoryTotals {
  categoryId: string;
  orders: number;
  purchaseDays: number;
  units: number;
  spend: number;
  firstPurchaseAt: string;
  lastPurchaseAt: string;
  /** Unit-weighted mean price paid: spend / units. */
  avgUnitPrice: number;
  discountedUnits: number;
  webUnits: number;
  storeUnits: number;
}

export interface CustomerTotals {
  summary: SummaryTotals;
  categories: CategoryTotals[];
}

export interface TotalsLine {
  categoryId: string;
  quantity: number;
  unitPrice: number;
  listPrice: number;
}

/** An order as stored: `placedAt` in the one ISO spelling orders.placed_at holds, totals as orderTotals gives them. */
export interface TotalsOrder {
  id: string;
  placedAt: string;
  channel: Channel;
  total: number;
  units: number;
  discountedUnits: number;
  lines: readonly TotalsLine[];
}

/**
 * What the stored orders say about one UTC day before the customer's last purchase day: what folding
 * an order placed that day needs, since the totals themselves keep only the first and the last day.
 * Read along orders_customer_placed_idx (orders.repo.ts loadDays).
 */
export interface StoredDay {
  /** The total of the orders placed that day; null when none was (not yet a purchase day). */
  total: number | null;
  /** The nearest purchase days before and after it (YYYY-MM-DD); null when there is none. */
  previousDay: string | null;
  nextDay: string | null;
  /** The categories of the lines bought that day. */
  categories: readonly string[];
}

/** Why addOrder cannot fold an order: the caller recomputes the customer from all their orders. */
export type RecomputeReason =
  /** The order's day is before the last purchase day and what is stored about that day was not given. */
  | "before_last_day"
  /** Same instant as the first order: which one is first goes by order id, which the totals do not keep. */
  | "ties_first_order";

export type AddOutcome = { kind: "added"; totals: CustomerTotals } | { kind: "recompute"; reason: RecomputeReason };

/** A line counts as discounted when it was paid at least half a cent under list price (as in orders.repo.ts). */
const discountEpsilon = 0.005;
const dayMs = 86_400_000;

const dayOf = (at: string) => at.slice(0, 10);
const daysBetween = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / dayMs;
const channelCounts = (channel: Channel) => ({
  webOrders: channel === "web" ? 1 : 0,
  storeOrders: channel === "store" ? 1 : 0,
  appOrders: channel === "app" ? 1 : 0,
  phoneOrders: channel === "phone" ? 1 : 0,
});

/** The order's lines summed per category, in first-seen order. */
function categoryLines(order: TotalsOrder) {
  const perCategory = new Map<string, { units: number; spend: number; discountedUnits: number }>();
  for (const line of order.lines) {
    const sums = perCategory.get(line.categoryId) ?? { units: 0, spend: 0, discountedUnits: 0 };
    sums.units += line.quantity;
    sums.spend += line.quantity * line.unitPrice;
    if (line.unitPrice < line.listPrice - discountEpsilon) sums.discountedUnits += line.quantity;
    perCategory.set(line.categoryId, sums);
  }
  return perCategory;
}

function firstSummary(order: TotalsOrder): SummaryTotals {
  const positive = order.total > 0;
  return {
    orders: 1,
    purchaseDays: 1,
    firstOrderAt: order.placedAt,
    lastOrderAt: order.placedAt,
    spend: order.total,
    positiveOrders: positive ? 1 : 0,
    positiveSpend: positive ? order.total : 0,
    firstOrderSpend: Math.max(0, order.total),
    secondPurchaseAt: null,
    gapSquareSum: 0,
    positiveDays: positive ? 1 : 0,
    positiveDaySpend: Math.max(0, order.total),
    firstDaySpend: Math.max(0, order.total),
    lastDaySpend: order.total,
    ...channelCounts(order.channel),
    units: order.units,
    discountedUnits: order.discountedUnits,
  };
}

/**
 * A purchase day's total, rounded to a millionth: a day whose orders net to nothing (0.1 + 0.2 - 0.3,
 * a purchase and its refund) is 0, not 5.6e-17, so it never counts as a positive day.
 */
const dayTotal = (amount: number) => Math.round(amount * 1e6) / 1e6;

/** Σ gap² over consecutive purchase days: the term of one gap (0 when either end is missing). */
const gapSquare = (from: string | null, to: string | null) => (from && to ? daysBetween(from, to) ** 2 : 0);

/**
 * The order's day as the totals alone know it, when it is the last purchase day or a later one: the
 * last day's total and the categories whose last purchase was that day, or a new day after the last.
 */
function dayFromTotals(current: CustomerTotals, day: string): StoredDay {
  const lastDay = dayOf(current.summary.lastOrderAt);
  return {
    total: day === lastDay ? current.summary.lastDaySpend : null,
    previousDay: day === lastDay ? null : lastDay,
    nextDay: null,
    categories: current.categories.filter((c) => dayOf(c.lastPurchaseAt) === day).map((c) => c.categoryId),
  };
}

/** `order` added to `current`, given what is stored about the order's day. */
function addToSummary(current: SummaryTotals, order: TotalsOrder, stored: StoredDay): SummaryTotals {
  const day = dayOf(order.placedAt);
  const firstDay = dayOf(current.firstOrderAt);
  const newDay = stored.total === null;
  // The order's day total: the stored day's grown by this order, or a new day of its own.
  const dayBefore = stored.total === null ? 0 : dayTotal(stored.total);
  const dayAfter = dayTotal(dayBefore + order.total);
  // A new day splits the gap between its neighbours in two (or adds one at either end).
  const gapSquareSum = newDay
    ? current.gapSquareSum +
      gapSquare(stored.previousDay, day) +
      gapSquare(day, stored.nextDay) -
      gapSquare(stored.previousDay, stored.nextDay)
    : current.gapSquareSum;
  const secondPurchaseAt = !newDay
    ? current.secondPurchaseAt
    : day < firstDay
      ? firstDay
      : current.secondPurchaseAt === null || day < current.secondPurchaseAt
        ? day
        : current.secondPurchaseAt;
  const first = order.placedAt < current.firstOrderAt;
  const channels = channelCounts(order.channel);
  const positive = order.total > 0;
  return {
    orders: current.orders + 1,
    purchaseDays: current.purchaseDays + (newDay ? 1 : 0),
    firstOrderAt: first ? order.placedAt : current.firstOrderAt,
    lastOrderAt: order.placedAt > current.lastOrderAt ? order.placedAt : current.lastOrderAt,
    spend: current.spend + order.total,
    positiveOrders: current.positiveOrders + (positive ? 1 : 0),
    positiveSpend: current.positiveSpend + (positive ? order.total : 0),
    firstOrderSpend: first ? Math.max(0, order.total) : current.firstOrderSpend,
    secondPurchaseAt,
    gapSquareSum,
    positiveDays: current.positiveDays - (dayBefore > 0 ? 1 : 0) + (dayAfter > 0 ? 1 : 0),
    positiveDaySpend: current.positiveDaySpend - Math.max(0, dayBefore) + Math.max(0, dayAfter),
    firstDaySpend: day <= firstDay ? Math.max(0, dayAfter) : current.firstDaySpend,
    lastDaySpend: day >= dayOf(current.lastOrderAt) ? dayAfter : current.lastDaySpend,
    webOrders: current.webOrders + channels.webOrders,
    storeOrders: current.storeOrders + channels.storeOrders,
    appOrders: current.appOrders + channels.appOrders,
    phoneOrders: current.phoneOrders + channels.phoneOrders,
    units: current.units + order.units,
    discountedUnits: current.discountedUnits + order.discountedUnits,
  };
}

/** `order` added to the category rows; `boughtThatDay`: the categories already bought on the order's day. */
function addToCategories(
  current: readonly CategoryTotals[],
  order: TotalsOrder,
  boughtThatDay: ReadonlySet<string>,
): CategoryTotals[] {
  const byId = new Map(current.map((category) => [category.categoryId, category]));
  const online = order.channel === "web" || order.channel === "app";
  for (const [categoryId, sums] of categoryLines(order)) {
    const before = byId.get(categoryId);
    const units = (before?.units ?? 0) + sums.units;
    const spend = (before?.spend ?? 0) + sums.spend;
    byId.set(categoryId, {
      categoryId,
      orders: (before?.orders ?? 0) + 1,
      purchaseDays: (before?.purchaseDays ?? 0) + (boughtThatDay.has(categoryId) ? 0 : 1),
      units,
      spend,
      firstPurchaseAt: before && before.firstPurchaseAt < order.placedAt ? before.firstPurchaseAt : order.placedAt,
      lastPurchaseAt: before && before.lastPurchaseAt > order.placedAt ? before.lastPurchaseAt : order.placedAt,
      avgUnitPrice: units === 0 ? 0 : spend / units,
      discountedUnits: (before?.discountedUnits ?? 0) + sums.discountedUnits,
      webUnits: (before?.webUnits ?? 0) + (online ? sums.units : 0),
      storeUnits: (before?.storeUnits ?? 0) + (order.channel === "store" ? sums.units : 0),
    });
  }
  return [...byId.values()];
}

/**
 * `current` (null for a customer with no orders yet) with `order` added, equal to totalsOfOrders over
 * all the orders; or why it cannot be folded. An order on or after the customer's last purchase day
 * folds from the totals alone; an earlier one needs `stored`, what the stored orders say about its day.
 * Of `current.categories` only the order's own are read: given just those, the rows it answers for
 * them are the same (the others pass through as given).
 */
export function addOrder(current: CustomerTotals | null, order: TotalsOrder, stored?: StoredDay): AddOutcome {
  if (!current)
    return {
      kind: "added",
      totals: { summary: firstSummary(order), categories: addToCategories([], order, new Set()) },
    };
  const day = dayOf(order.placedAt);
  const later = day >= dayOf(current.summary.lastOrderAt);
  const known = later ? dayFromTotals(current, day) : stored;
  // An earlier day always has a purchase day after it (the last); a stored day without one is not this customer's.
  if (!known || (!later && known.total === null && known.nextDay === null))
    return { kind: "recompute", reason: "before_last_day" };
  if (order.placedAt === current.summary.firstOrderAt) return { kind: "recompute", reason: "ties_first_order" };
  return {
    kind: "added",
    totals: {
      summary: addToSummary(current.summary, order, known),
      categories: addToCategories(current.categories, order, new Set(known.categories)),
    },
  };
}

/**
 * The days (YYYY-MM-DD) of `orders` whose stored day addOrders needs to fold them into `current`: those
 * before the customer's last purchase day (none for a customer without totals yet).
 */
export function storedDaysNeeded(current: CustomerTotals | null, orders: readonly TotalsOrder[]): string[] {
  if (!current) return [];
  const lastDay = dayOf(current.summary.lastOrderAt);
  return [...new Set(orders.map((order) => dayOf(order.placedAt)).filter((day) => day < lastDay))];
}

/** `days` as they stand once `order` is stored too: its day grows, a later day's previous one may move closer. */
function withOrder(days: ReadonlyMap<string, StoredDay>, order: TotalsOrder): Map<string, StoredDay> {
  const day = dayOf(order.placedAt);
  const categories = [...categoryLines(order).keys()];
  const next = new Map<string, StoredDay>();
  for (const [other, stored] of days) {
    if (other === day)
      next.set(other, {
        ...stored,
        total: (stored.total ?? 0) + order.total,
        categories: [...new Set([...stored.categories, ...categories])],
      });
    // Orders fold in time order, so the days still to come are on or after this one: only their
    // previous purchase day can move.
    else if (day < other)
      next.set(other, {
        ...stored,
        previousDay: stored.previousDay && stored.previousDay > day ? stored.previousDay : day,
      });
    else next.set(other, stored);
  }
  return next;
}

/**
 * Folds `orders` into `current` in time order (then id); null when one of them cannot be folded.
 * `storedDays` (by YYYY-MM-DD) are what the stored orders say about the days before the customer's last
 * purchase day that some of the orders fall on; each fold keeps them true for the next.
 */
export function addOrders(
  current: CustomerTotals | null,
  orders: readonly TotalsOrder[],
  storedDays: ReadonlyMap<string, StoredDay> = new Map(),
): CustomerTotals | null {
  const ordered = [...orders].sort((a, b) =>
    a.placedAt === b.placedAt ? (a.id < b.id ? -1 : 1) : a.placedAt < b.placedAt ? -1 : 1,
  );
  let totals = current;
  let days: ReadonlyMap<string, StoredDay> = storedDays;
  for (const order of ordered) {
    const outcome = addOrder(totals, order, days.get(dayOf(order.placedAt)));
    if (outcome.kind === "recompute") return null;
    totals = outcome.totals;
    days = withOrder(days, order);
  }
  return totals;
}

/** The totals of a customer's orders (at least one), computed from scratch: the full recompute. */
export function totalsOfOrders(orders: readonly TotalsOrder[]): CustomerTotals {
  if (orders.length === 0) throw new Error("totalsOfOrders: a customer has at least one order");
  const byTime = [...orders].sort((a, b) =>
    a.placedAt === b.placedAt ? (a.id < b.id ? -1 : 1) : a.placedAt < b.placedAt ? -1 : 1,
  );
  const dayTotals = new Map<string, number>();
  for (const order of byTime)
    dayTotals.set(dayOf(order.placedAt), (dayTotals.get(dayOf(order.placedAt)) ?? 0) + order.total);
  const days = [...dayTotals.keys()].sort();
  const totals = days.map((day) => dayTotal(dayTotals.get(day)!));
  let gapSquareSum = 0;
  for (let index = 1; index < days.length; index++) gapSquareSum += daysBetween(days[index - 1]!, days[index]!) ** 2;
  const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
  const count = (test: (order: TotalsOrder) => boolean) => byTime.filter(test).length;
  const first = byTime[0]!;
  const summary: SummaryTotals = {
    orders: byTime.length,
    purchaseDays: days.length,
    firstOrderAt: first.placedAt,
    lastOrderAt: byTime[byTime.length - 1]!.placedAt,
    spend: sum(byTime.map((order) => order.total)),
    positiveOrders: count((order) => order.total > 0),
    positiveSpend: sum(byTime.map((order) => Math.max(0, order.total))),
    firstOrderSpend: Math.max(0, first.total),
    secondPurchaseAt: days[1] ?? null,
    gapSquareSum,
    positiveDays: totals.filter((total) => total > 0).length,
    positiveDaySpend: sum(totals.map((total) => Math.max(0, total))),
    firstDaySpend: Math.max(0, totals[0]!),
    lastDaySpend: totals[totals.length - 1]!,
    webOrders: count((order) => order.channel === "web"),
    storeOrders: count((order) => order.channel === "store"),
    appOrders: count((order) => order.channel === "app"),
    phoneOrders: count((order) => order.channel === "phone"),
    units: sum(byTime.map((order) => order.units)),
    discountedUnits: sum(byTime.map((order) => order.discountedUnits)),
  };

  const categories = new Map<
    string,
    { orders: TotalsOrder[]; units: number; spend: number; discounted: number; web: number; store: number }
  >();
  for (const order of byTime) {
    for (const [categoryId, sums] of categoryLines(order)) {
      const category = categories.get(categoryId) ?? {
        orders: [],
        units: 0,
        spend: 0,
        discounted: 0,
        web: 0,
        store: 0,
      };
      category.orders.push(order);
      category.units += sums.units;
      category.spend += sums.spend;
      category.discounted += sums.discountedUnits;
      if (order.channel === "web" || order.channel === "app") category.web += sums.units;
      if (order.channel === "store") category.store += sums.units;
      categories.set(categoryId, category);
    }
  }
  return {
    summary,
    categories: [...categories].map(([categoryId, category]) => ({
      categoryId,
      orders: category.orders.length,
      purchaseDays: new Set(category.orders.map((order) => dayOf(order.placedAt))).size,
      units: category.units,
      spend: category.spend,
      firstPurchaseAt: category.orders[0]!.placedAt,
      lastPurchaseAt: category.orders[category.orders.length - 1]!.placedAt,
      avgUnitPrice: category.units === 0 ? 0 : category.spend / category.units,
      discountedUnits: category.discounted,
      webUnits: category.web,
      storeUnits: category.store,
    })),
  };
}
