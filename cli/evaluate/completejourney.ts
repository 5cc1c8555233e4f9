// Reads 84.51° "The Complete Journey" (a folder with products.csv and transactions_sample.csv, either
// possibly gzipped, as in tests/fixtures/completejourney-full) into purchase lines at a chosen catalog
// level. Households are customers and every purchase is in store; a fuel line is one unit, as the
// import preset counts it. Evaluation logic lives in evaluate.ts; this file only parses.

import { parse } from "csv-parse/sync";
import { completeJourneyOrders } from "../import/completejourney.ts";
import { dataFileIn, readInputText } from "../import/files.ts";
import type { PurchaseLine } from "./lines.ts";

export const completeJourneyLevels = ["department", "product_category", "product_type"] as const;
export type CompleteJourneyLevel = (typeof completeJourneyLevels)[number];

type Row = Record<string, string>;

/** "2017-01-28T14:06:53-0500" → an ISO instant in UTC (the offset needs a colon for Date.parse). */
function toIsoInstant(timestamp: string): string {
  const withColon = timestamp.replace(/([+-]\d{2})(\d{2})$/, "$1:$2");
  const ms = Date.parse(withColon);
  if (Number.isNaN(ms)) throw new Error(`completejourney: bad timestamp ${timestamp}`);
  return new Date(ms).toISOString();
}

export async function readCompleteJourney(folder: string, level: CompleteJourneyLevel): Promise<PurchaseLine[]> {
  const [productsCsv, transactionsCsv] = await Promise.all([
    readInputText(dataFileIn(folder, "products.csv")),
    readInputText(dataFileIn(folder, "transactions_sample.csv")),
  ]);
  const categoryOf = new Map<string, string>();
  const soldByMeasure = new RegExp(completeJourneyOrders.countAsOneUnit?.matches ?? "$^");
  const oneUnit = new Set<string>();
  for (const row of parse(productsCsv, { columns: true, skip_empty_lines: true }) as Row[]) {
    const category = row[level]?.trim();
    if (row.product_id && category) categoryOf.set(row.product_id, category);
    if (row.product_id && soldByMeasure.test(row.product_type ?? "")) oneUnit.add(row.product_id);
  }
  const lines: PurchaseLine[] = [];
  for (const row of parse(transactionsCsv, { columns: true, skip_empty_lines: true }) as Row[]) {
    const categoryId = categoryOf.get(row.product_id ?? "");
    if (!categoryId) continue; // products missing from products.csv cannot be placed in a category
    const discount = Number(row.retail_disc) + Number(row.coupon_disc) + Number(row.coupon_match_disc);
    lines.push({
      customerId: row.household_id!,
      basketId: row.basket_id!,
      productId: row.product_id!,
      categoryId,
      at: toIsoInstant(row.transaction_timestamp!),
      channel: "store",
      quantity: oneUnit.has(row.product_id!) ? 1 : Number(row.quantity),
      spend: Number(row.sales_value),
      discounted: discount > 0,
    });
  }
  return lines;
}
