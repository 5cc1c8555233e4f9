// A customer's stored totals (customer_summaries and customer_category_stats) kept up to date one order
// at a time: addOrder folds a new order into the totals instead of rebuilding them from every order,
// so an ingested order writes one summary row and one row per category it touches. totalsOfOrders is
// the full recompute, the same maths as the ingestion SQL (orders.repo.ts rebuildSummaryStatements),
// used where folding cannot work: a merge, an erasure, an order moved between customers, or an order
// addOrder refuses (one older than the customer's last purchase day, whose day, gaps and day totals
// need the whole history). Pure.
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

/** Why addOrder cannot fold an order: the caller recomputes the customer from all their orders. */
export type RecomputeReason =
  /** The order's day is before the last purchase day: purchase days, gaps and day totals need the history. */
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

/** `order` added to `current`, whose last purchase day is on or before the order's day. */
/**
 * A purchase day's total, rounded to a millionth: a day whose orders net to nothing (0.1 + 0.2 - 0.3,
 * a purchase and its refund) is 0, not 5.6e-17, so it never counts as a positive day.
 */
const dayTotal = (amount: number) => Math.round(amount * 1e6) / 1e6;

function addToSummary(current: SummaryTotals, order: TotalsOrder): SummaryTotals {
  const day = dayOf(order.placedAt);
  const lastDay = dayOf(current.lastOrderAt);
  const sameDay = day === lastDay;
  // The order's day total: the last day's grown by this order, or a new day of its own.
  const dayBefore = sameDay ? current.lastDaySpend : 0;
  const dayAfter = dayTotal(dayBefore + order.total);
  const purchaseDays = current.purchaseDays + (sameDay ? 0 : 1);
  const channels = channelCounts(order.channel);
  const positive = order.total > 0;
  return {
    orders: current.orders + 1,
    purchaseDays,
    firstOrderAt: order.placedAt < current.firstOrderAt ? order.placedAt : current.firstOrderAt,
    lastOrderAt: order.placedAt > current.lastOrderAt ? order.placedAt : current.lastOrderAt,
    spend: current.spend + order.total,
    positiveOrders: current.positiveOrders + (positive ? 1 : 0),
    positiveSpend: current.positiveSpend + (positive ? order.total : 0),
    firstOrderSpend: order.placedAt < current.firstOrderAt ? Math.max(0, order.total) : current.firstOrderSpend,
    secondPurchaseAt: purchaseDays === 2 && !sameDay ? day : current.secondPurchaseAt,
    gapSquareSum: current.gapSquareSum + (sameDay ? 0 : daysBetween(lastDay, day) ** 2),
    positiveDays: current.positiveDays - (dayBefore > 0 ? 1 : 0) + (dayAfter > 0 ? 1 : 0),
    positiveDaySpend: current.positiveDaySpend - Math.max(0, dayBefore) + Math.max(0, dayAfter),
    firstDaySpend: purchaseDays === 1 ? Math.max(0, dayAfter) : current.firstDaySpend,
    lastDaySpend: dayAfter,
    webOrders: current.webOrders + channels.webOrders,
    storeOrders: current.storeOrders + channels.storeOrders,
    appOrders: current.appOrders + channels.appOrders,
    phoneOrders: current.phoneOrders + channels.phoneOrders,
    units: current.units + order.units,
    discountedUnits: current.discountedUnits + order.discountedUnits,
  };
}

function addToCategories(current: readonly CategoryTotals[], order: TotalsOrder): CategoryTotals[] {
  const byId = new Map(current.map((category) => [category.categoryId, category]));
  const day = dayOf(order.placedAt);
  const online = order.channel === "web" || order.channel === "app";
  for (const [categoryId, sums] of categoryLines(order)) {
    const before = byId.get(categoryId);
    const units = (before?.units ?? 0) + sums.units;
    const spend = (before?.spend ?? 0) + sums.spend;
    byId.set(categoryId, {
      categoryId,
      orders: (before?.orders ?? 0) + 1,
      // The order is on or after the customer's last day, so on or after this category's last day too.
      purchaseDays: (before?.purchaseDays ?? 0) + (before && dayOf(before.lastPurchaseAt) === day ? 0 : 1),
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
 * all the orders; or why it cannot be folded. Folding works for any order on or after the customer's
 * last purchase day, so orders arriving in time order (or any order within one day) always fold.
 */
export function addOrder(current: CustomerTotals | null, order: TotalsOrder): AddOutcome {
  if (!current)
    return { kind: "added", totals: { summary: firstSummary(order), categories: addToCategories([], order) } };
  if (dayOf(order.placedAt) < dayOf(current.summary.lastOrderAt))
    return { kind: "recompute", reason: "before_last_day" };
  if (order.placedAt === current.summary.firstOrderAt) return { kind: "recompute", reason: "ties_first_order" };
  return {
    kind: "added",
    totals: { summary: addToSummary(current.summary, order), categories: addToCategories(current.categories, order) },
  };
}

/** Folds `orders` into `current` in time order (then id); null when one of them cannot be folded. */
export function addOrders(current: CustomerTotals | null, orders: readonly TotalsOrder[]): CustomerTotals | null {
  const ordered = [...orders].sort((a, b) =>
    a.placedAt === b.placedAt ? (a.id < b.id ? -1 : 1) : a.placedAt < b.placedAt ? -1 : 1,
  );
  let totals = current;
  for (const order of ordered) {
    const outcome = addOrder(totals, order);
    if (outcome.kind === "recompute") return null;
    totals = outcome.totals;
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
