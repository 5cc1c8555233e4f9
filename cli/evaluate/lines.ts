// Purchase lines, the common form every evaluation dataset is read into, and their aggregation into
// the per customer × category rows the worker keeps (customer_category_stats). No file I/O here.

import type { CategoryStat } from "../../worker/core/ranking/types.ts";
import type { Channel } from "../../worker/core/vocabulary.ts";

export interface PurchaseLine {
  customerId: string;
  basketId: string;
  productId: string;
  categoryId: string;
  /** ISO 8601 instant. */
  at: string;
  channel: Channel;
  quantity: number;
  /** Amount paid for the line. */
  spend: number;
  /** Bought below list price (a retail or coupon discount). */
  discounted: boolean;
}

interface Accumulator {
  stat: CategoryStat;
  baskets: Set<string>;
  days: Set<string>;
}

/** Folds lines into one CategoryStat per customer × category, as ingestion would. */
export function aggregateCategoryStats(lines: Iterable<PurchaseLine>): Map<string, CategoryStat[]> {
  const byCustomer = new Map<string, Map<string, Accumulator>>();
  for (const line of lines) {
    let categories = byCustomer.get(line.customerId);
    if (!categories) {
      categories = new Map();
      byCustomer.set(line.customerId, categories);
    }
    let acc = categories.get(line.categoryId);
    if (!acc) {
      acc = {
        stat: {
          categoryId: line.categoryId,
          orders: 0,
          purchaseDays: 0,
          units: 0,
          spend: 0,
          firstPurchaseAt: line.at,
          lastPurchaseAt: line.at,
          avgUnitPrice: 0,
          discountedUnits: 0,
          webUnits: 0,
          storeUnits: 0,
        },
        baskets: new Set(),
        days: new Set(),
      };
      categories.set(line.categoryId, acc);
    }
    const units = Math.max(0, line.quantity);
    acc.baskets.add(line.basketId);
    acc.days.add(line.at.slice(0, 10));
    acc.stat.units += units;
    acc.stat.spend += line.spend;
    if (line.discounted) acc.stat.discountedUnits += units;
    if (line.channel === "web") acc.stat.webUnits += units;
    if (line.channel === "store") acc.stat.storeUnits += units;
    if (Date.parse(line.at) < Date.parse(acc.stat.firstPurchaseAt)) acc.stat.firstPurchaseAt = line.at;
    if (Date.parse(line.at) > Date.parse(acc.stat.lastPurchaseAt)) acc.stat.lastPurchaseAt = line.at;
  }
  const result = new Map<string, CategoryStat[]>();
  for (const [customerId, categories] of byCustomer) {
    result.set(
      customerId,
      [...categories.values()].map(({ stat, baskets, days }) => ({
        ...stat,
        orders: baskets.size,
        purchaseDays: days.size,
        avgUnitPrice: stat.units > 0 ? stat.spend / stat.units : 0,
      })),
    );
  }
  return result;
}
