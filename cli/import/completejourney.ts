// The `completejourney` preset: 84.51°'s "The Complete Journey" (2017 grocery loyalty households) as
// packaged by the completejourney R package. Households are loyalty cards (`CJ-0400`: prefixed and
// zero-padded, since bare or short numbers are blocked as junk), baskets are store orders
// (`cj-<basket_id>`), product_category is the category. Discounts in this packaging are positive
// amounts (the original Dunnhumby files wrote them negative); `abs` makes the list price right under
// either convention. List price = (sales_value + retail_disc + coupon_disc + coupon_match_disc) /
// quantity, unit price = sales_value / quantity; lines with zero quantity are skipped and counted.
// Fuel lines (product type GASOLINE…) are one unit each, priced at the line's totals.

import type { WireProduct } from "../../db/seed/wire.ts";
import { medianOf } from "../../worker/core/math/quantile.ts";
import type { LookupTables, OrderMapping, Row } from "./mapping.ts";
import { mapOrderRow, slugify, titleCase } from "./mapping.ts";

export const completeJourneyOrders: OrderMapping = {
  kind: "orders",
  orderId: { column: "basket_id", prefix: "cj-" },
  channel: { value: "store" },
  storeId: { column: "store_id", prefix: "cj-store-" },
  placedAt: { column: "transaction_timestamp", transform: "datetime" },
  currency: { value: "USD" },
  // Normalisation drops the dash, and loyalty numbers under 4 characters are blocked as junk: pad so
  // household 2 becomes CJ-0002 (CJ0002), not CJ-2 (CJ2, blocked).
  identifiers: { loyalty: { column: "household_id", prefix: "CJ-", padStart: 4 } },
  line: {
    productId: { column: "product_id", prefix: "cj-" },
    categoryId: {
      column: "product_id",
      lookup: "products",
      field: "product_category",
      transform: "slug",
      default: "unknown",
    },
    quantity: { column: "quantity", transform: "number" },
    unitPrice: { sum: ["sales_value"], divideBy: "quantity" },
    listPrice: {
      sum: ["sales_value", "retail_disc", "coupon_disc", "coupon_match_disc"],
      abs: true,
      divideBy: "quantity",
    },
  },
  // Fuel's quantity is thousandths of a gallon (6821 for a 15 USD fill-up): one fill-up is one unit.
  countAsOneUnit: {
    when: { column: "product_id", lookup: "products", field: "product_type", default: "" },
    matches: "^GASOLINE",
  },
  lookups: { products: { file: "products.csv", key: "product_id" } },
};

/**
 * Observed per-unit list prices for each product, collected from transaction rows; `lookups` holds
 * the products table (it says which lines are fuel, priced per fill-up).
 */
export function collectListPrices(
  rows: Iterable<Row>,
  lookups: LookupTables,
  prices = new Map<string, number[]>(),
): Map<string, number[]> {
  for (const row of rows) {
    const mapped = mapOrderRow(
      { ...completeJourneyOrders, line: { ...completeJourneyOrders.line, categoryId: { value: "-" } } },
      row,
      lookups,
    );
    if (!mapped.line) continue;
    const list = prices.get(mapped.line.productId) ?? [];
    list.push(mapped.line.listPrice);
    prices.set(mapped.line.productId, list);
  }
  return prices;
}

/**
 * One catalog product from a products.csv row. The list price is the median observed shelf price:
 * the catalog has none, and a median is robust to the odd mis-scanned line. Null when the product
 * was never seen in the transactions (no price to give it).
 */
export function completeJourneyProduct(row: Row, observedListPrices: Map<string, number[]>): WireProduct | null {
  const id = `cj-${row.product_id}`;
  const prices = observedListPrices.get(id);
  if (!prices || prices.length === 0) return null;
  const type = titleCase(row.product_type ?? "");
  const size = (row.package_size ?? "").replace(/\s+/g, " ").trim();
  const brand = row.brand === "Private" ? "Store brand" : "";
  const category = row.product_category || "unknown";
  return {
    id,
    title: [brand, type || titleCase(category)].filter(Boolean).join(" ") + (size ? ` (${size})` : ""),
    categoryId: slugify(category) || "unknown",
    categoryName: titleCase(category),
    parentCategoryId: row.department ? slugify(row.department) : null,
    url: null,
    imageUrl: null,
    listPrice: Math.round(medianOf(prices) * 100) / 100,
    salePrice: null,
    inStock: true,
  };
}
