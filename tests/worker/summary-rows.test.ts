// The ingestion SQL and summaryRowFromOrders (the models' input for evaluations and tests) must
// summarise the same orders the same way: purchase days, day totals, the second purchase day and Σgap².
// Runs on both customer stores (D1 and the customer shards), reading the rows wherever they are stored.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { summaryRowFromOrders } from "../../worker/core/profile/population-models.ts";
import { anOrder, client, uniquePrefix } from "../fixtures/builders.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);

describe("customer_summaries", () => {
  it("matches summaryRowFromOrders: same-day orders are one occasion, free days count as days, gaps squared", async () => {
    const p = uniquePrefix();
    const identifiers = { account: `${p}-u` };
    const line = (unitPrice: number) => [
      { productId: "sku-1", categoryId: "tea", quantity: 1, unitPrice, listPrice: 20 },
    ];
    const orders = [
      anOrder({ id: `${p}-1`, placedAt: "2026-01-01T09:00:00Z", identifiers, lines: line(30) }),
      anOrder({ id: `${p}-2`, placedAt: "2026-01-05T09:00:00Z", identifiers, lines: line(20) }),
      anOrder({ id: `${p}-3`, placedAt: "2026-01-05T18:30:00Z", identifiers, channel: "store", lines: line(40) }),
      anOrder({ id: `${p}-4`, placedAt: "2026-01-12T10:00:00Z", identifiers, lines: line(0) }),
      anOrder({ id: `${p}-5`, placedAt: "2026-02-20T10:00:00Z", identifiers, lines: line(15) }),
    ];
    // Two batches, out of order: the summary is rebuilt from every stored order each time.
    for (const batch of [orders.slice(2), orders.slice(0, 2)]) {
      const response = await api.postOrders(batch);
      expect(response.status, await response.clone().text()).toBe(200);
    }
    const [owner] = await storeRows<{ customer_id: string }>("SELECT customer_id FROM orders WHERE id = ?", `${p}-1`);
    const customerId = owner!.customer_id;
    const [stored, ...others] = await storeRows(
      `SELECT purchase_days, first_order_at, last_order_at, second_purchase_at, gap_square_sum, positive_days,
        positive_day_spend, first_day_spend FROM customer_summaries WHERE customer_id = ?`,
      customerId,
    );
    expect(others).toEqual([]);
    const expected = summaryRowFromOrders(
      customerId,
      orders.map((order) => ({ placedAt: order.placedAt, total: order.lines[0]!.unitPrice })),
    );
    expect(stored).toEqual({
      purchase_days: expected.purchaseDays,
      first_order_at: "2026-01-01T09:00:00.000Z",
      last_order_at: "2026-02-20T10:00:00.000Z",
      second_purchase_at: expected.secondPurchaseAt,
      gap_square_sum: expected.gapSquareSum,
      positive_days: expected.positiveDays,
      positive_day_spend: expected.positiveDaySpend,
      first_day_spend: expected.firstDaySpend,
    });
    expect(expected).toMatchObject({ purchaseDays: 4, secondPurchaseAt: "2026-01-05", positiveDays: 3 });
    expect(expected.gapSquareSum).toBe(4 ** 2 + 7 ** 2 + 39 ** 2);
  });
});
