// Reads one unified customer: identities (masked only), orders with lines, and the summary.

import { sql } from "drizzle-orm";
import { jsonEach } from "../../db/batch.ts";
import { roundTo } from "../core/math/round.ts";
import { customerClock } from "../core/models/store-clock.ts";
import { type CustomerProfile, scoreCustomer } from "../core/profile/customer-profile.ts";
import { type PopulationModels, placeholderModels } from "../core/profile/population-models.ts";
import type { Db } from "../env.ts";
import { identitiesOf } from "../identity/identity.repo.ts";
import { type CurrentModels, currentModels, fitClock } from "../models/models.repo.ts";
import { linesOf, ordersOf } from "../orders/orders.repo.ts";

/** Follows merged_into to the surviving customer; null when the id was never a customer. */
export async function survivingCustomerId(db: Db, customerId: string): Promise<string | null> {
  let id = customerId;
  for (let hop = 0; hop < 16; hop++) {
    const row = await db.get<{ merged_into: string | null }>(sql`SELECT merged_into FROM customers WHERE id = ${id}`);
    if (!row) return null;
    if (!row.merged_into) return id;
    id = row.merged_into;
  }
  return id;
}

/** An identity row that is a customer's own storefront account (a shared one is no one's). */
const ownStorefrontAccount = sql`kind = 'account' AND shared = 0`;

/**
 * The identity key of the customer's storefront account (what a shopper token for it resolves to), or
 * null when they have none: the storefront can personalize only for a signed-in account.
 */
export async function storefrontAccountKeyOf(db: Db, customerId: string): Promise<string | null> {
  const row = await db.get<{ key: string }>(sql`
    SELECT key FROM identities WHERE customer_id = ${customerId} AND ${ownStorefrontAccount}
    ORDER BY created_at, key LIMIT 1`);
  return row?.key ?? null;
}

/** Which of these customers have a storefront account (not a shared one): a shelf they can see online. */
export async function withStorefrontAccount(db: Db, customerIds: readonly string[]): Promise<Set<string>> {
  if (customerIds.length === 0) return new Set();
  const rows = await db.all<{ id: string }>(sql`
    SELECT DISTINCT customer_id AS id FROM identities
    WHERE customer_id IN (SELECT value FROM ${jsonEach(customerIds)}) AND ${ownStorefrontAccount}`);
  return new Set(rows.map((row) => row.id));
}

/**
 * One customer as GET /v1/customers/:id shows it. `models`: the fit in force, when `db` is not where it
 * is stored (a customer shard reads the customer locally and gets the models from the Worker).
 */
export async function loadCustomer(
  db: Db,
  customerId: string,
  orderLimit: number,
  now: Date,
  timeZone = "UTC",
  models?: CurrentModels,
) {
  const [identities, orders, summary, categories, mergedFrom] = await Promise.all([
    identitiesOf(db, customerId),
    ordersOf(db, customerId, orderLimit),
    db.query.customerSummaries.findFirst({ where: (s, { eq }) => eq(s.customerId, customerId) }),
    db.query.customerCategoryStats.findMany({
      where: (s, { eq }) => eq(s.customerId, customerId),
      orderBy: (s, { desc }) => [desc(s.spend)],
    }),
    db.all<{ id: string }>(sql`SELECT id FROM customers WHERE merged_into = ${customerId} ORDER BY id`),
  ]);
  models ??= await currentModels(db, now);
  // After a back-dated run, the store's clock: the page then agrees with the scores the list shows.
  const at = customerClock(now, fitClock(models), summary?.lastOrderAt ?? null);
  const lines = await linesOf(
    db,
    orders.map((o) => o.id),
  );
  // A customer the models cannot score (an odd history, a degenerate stored fit) is shown without a profile.
  const scored =
    summary && models.customer
      ? scoreCustomer({
          summary,
          categories,
          models: models.customer,
          categoryPrices: Object.fromEntries(
            Object.entries(models.population?.categories ?? {}).map(([id, category]) => [id, category.priceQuantiles]),
          ),
          categoryIntervalDays: Object.fromEntries(
            Object.entries(models.population?.categories ?? {}).map(([id, category]) => [
              id,
              category.repurchaseIntervalDays,
            ]),
          ),
          orderTimes: orders.map((order) => order.placedAt),
          timeZone,
          now: at,
        })
      : null;
  const linesByOrder = new Map<string, typeof lines>();
  for (const line of lines) linesByOrder.set(line.order_id, [...(linesByOrder.get(line.order_id) ?? []), line]);
  return {
    customerId,
    mergedFrom: mergedFrom.map((row) => row.id),
    identities: identities.map(({ kind, masked, trust, shared }) => ({ kind, masked, trust, shared: shared === 1 })),
    orders: orders.map((order) => ({
      id: order.id,
      channel: order.channel,
      storeId: order.storeId,
      placedAt: order.placedAt,
      total: order.total,
      discountTotal: order.discountTotal,
      currency: order.currency,
      lines: (linesByOrder.get(order.id) ?? []).map((line) => ({
        productId: line.product_id,
        categoryId: line.category_id,
        quantity: line.quantity,
        unitPrice: line.unit_price,
        listPrice: line.list_price,
      })),
    })),
    profile: scored?.ok && models.customer ? profileView(scored.profile, models.customer) : null,
    summary: summary
      ? {
          orders: summary.orders,
          purchaseDays: summary.purchaseDays,
          firstOrderAt: summary.firstOrderAt,
          lastOrderAt: summary.lastOrderAt,
          // Sums of order totals in floating point (1856.1600000000005): money is shown to cents.
          spend: roundTo(summary.spend, 2),
          channels: {
            web: summary.webOrders,
            store: summary.storeOrders,
            app: summary.appOrders,
            phone: summary.phoneOrders,
          },
          units: summary.units,
          discountedUnits: summary.discountedUnits,
          discountedShare: summary.units > 0 ? summary.discountedUnits / summary.units : 0,
          categories: categories.map((c) => ({
            categoryId: c.categoryId,
            orders: c.orders,
            purchaseDays: c.purchaseDays,
            units: c.units,
            spend: roundTo(c.spend, 2),
            lastPurchaseAt: c.lastPurchaseAt,
            typicalPricePaid: roundTo(c.avgUnitPrice, 2),
            discountedShare: c.units > 0 ? c.discountedUnits / c.units : 0,
            onlineUnits: c.webUnits,
            storeUnits: c.storeUnits,
          })),
        }
      : null,
  };
}

/** The model figures as the API shows them: rounded, dates as ISO strings, units in the field names. */
function profileView(profile: CustomerProfile, models: Pick<PopulationModels, "fittedAt" | "source" | "fallbacks">) {
  return {
    modelsFittedAt: models.fittedAt,
    // "default": the last run had too little history to fit, or its purchase model's fit failed and its
    // default parameters stand in: these figures come from placeholders.
    modelsSource: placeholderModels(models) ? ("default" as const) : ("fitted" as const),
    clv12: roundTo(profile.clv12, 2),
    clv24: roundTo(profile.clv24, 2),
    probabilityAlive: roundTo(profile.probabilityAlive, 4),
    probabilityPurchase90d: roundTo(profile.probabilityPurchase90d, 4),
    expectedPurchases90d: roundTo(profile.expectedPurchases90d, 4),
    expectedOrderValue: roundTo(profile.expectedOrderValue, 2),
    cadence: {
      expectedIntervalDays: roundTo(profile.cadence.expectedIntervalDays, 1),
      daysSinceLast: roundTo(profile.cadence.daysSinceLast, 1),
      overdueRatio: roundTo(profile.cadence.overdueRatio, 2),
      nextExpectedAt: profile.cadence.nextExpectedAt,
      regularity: profile.cadence.regularity,
    },
    stage: profile.lifecycle.stage,
    stageReason: profile.lifecycle.reason,
    // What a one-time buyer's stage is judged by (null for repeat buyers): models.md, lifecycle.
    oneTimeReturnDays: profile.lifecycle.returnWindow && {
      usual: roundTo(profile.lifecycle.returnWindow.usualDays, 1),
      late: roundTo(profile.lifecycle.returnWindow.lateDays, 1),
      sinceFirstPurchase: roundTo(profile.lifecycle.returnWindow.sinceFirstDays, 1),
    },
    valueTier: profile.valueTier,
    discountSensitivity: profile.discount.sensitivity,
    discountedShare: roundTo(profile.discount.share, 4),
    populationDiscountedShare: roundTo(profile.discount.populationShare, 4),
    offerGuidance: profile.offerGuidance,
    channelMix: profile.channelMix,
    preferredWeekday: profile.preferredWeekday,
    preferredHour: profile.preferredHour,
    categories: profile.categories.map((category) => ({
      categoryId: category.categoryId,
      expectedIntervalDays: roundTo(category.cadence.expectedIntervalDays, 1),
      overdueRatio: roundTo(category.cadence.overdueRatio, 2),
      nextExpectedAt: category.cadence.nextExpectedAt,
      probabilityActive: roundTo(category.cadence.probabilityAlive, 4),
      lapsed: category.cadence.lapsed,
      priceBand: category.priceBand?.band ?? null,
      pricePercentile: category.priceBand ? roundTo(category.priceBand.percentile, 3) : null,
    })),
  };
}
