// The scale bench's seeded base (tests/bench/base-mix.ts): its kinds at their stated shares in every
// stretch of the base, shoppers picked among account holders, and each kind's orders carrying the
// identifiers and channels the mix states.
import { describe, expect, it } from "vitest";
import { generateCustomers } from "../../db/seed/generate.ts";
import { orderSchema } from "../../worker/orders/orders.schemas.ts";
import {
  accountHolderFrom,
  accountOf,
  baseMix,
  emailOf,
  hasAccount,
  kindOf,
  loyaltyOf,
  ordersOfKind,
  type SeededKind,
} from "../bench/base-mix.ts";

const today = "2026-06-01";
const kinds = Object.keys(baseMix.shares) as SeededKind[];
const countKinds = (from: number, to: number) => {
  const counts: Record<SeededKind, number> = { web: 0, store: 0, both: 0 };
  for (let index = from; index < to; index++) counts[kindOf(index)]++;
  return counts;
};

describe("the scale bench's base mix", () => {
  it("gives each kind its share of the base, and of every stretch of a hundred customers", () => {
    expect(kinds.reduce((sum, kind) => sum + baseMix.shares[kind], 0)).toBeCloseTo(1, 10);
    const whole = countKinds(0, 100_000);
    for (const kind of kinds) expect(Math.abs(whole[kind] / 100_000 - baseMix.shares[kind])).toBeLessThan(0.001);
    for (let from = 0; from < 100_000; from += 9_973) {
      const stretch = countKinds(from, from + 100);
      for (const kind of kinds) expect(Math.abs(stretch[kind] - 100 * baseMix.shares[kind])).toBeLessThanOrEqual(2);
    }
  });

  it("picks shoppers among the customers holding an account", () => {
    for (let index = 0; index < 2_000; index++) {
      const picked = accountHolderFrom(index);
      expect(kindOf(picked)).not.toBe("store");
      expect(picked).toBeGreaterThanOrEqual(index);
      for (let between = index; between < picked; between++) expect(hasAccount(between)).toBe(false);
    }
  });

  it("gives each kind's orders the channel and identifiers the mix states", () => {
    const seen = { storeOrders: 0, receipts: 0, both: 0 };
    let index = 0;
    for (const generated of generateCustomers({ seed: 11, customers: 600, today, includePersonas: false })) {
      const kind = kindOf(index);
      const orders = ordersOfKind(index, generated.orders);
      expect(orders.length).toBe(generated.orders.length);
      for (const order of orders) {
        expect(orderSchema.safeParse(order).success).toBe(true);
        if (order.channel === "web") {
          expect(kind).not.toBe("store");
          expect(order.identifiers).toEqual({ account: accountOf(index), email: emailOf(index) });
        } else {
          expect(order.channel).toBe("store");
          expect(kind).not.toBe("web");
          expect(order.storeId).toMatch(/^store-\d\d$/);
          expect(order.identifiers.loyalty).toBe(loyaltyOf(index));
          seen.storeOrders++;
          if (order.identifiers.email !== undefined) seen.receipts++;
        }
      }
      if (kind === "both") {
        seen.both++;
        // The first order is the join: a store order with the card and the account.
        expect(orders[0]?.identifiers).toEqual({ loyalty: loyaltyOf(index), account: accountOf(index) });
        // Their orders in both channels, from their second order on.
        if (orders.length > 1) expect(new Set(orders.map((order) => order.channel)).size).toBe(2);
      }
      index++;
    }
    expect(Math.abs(seen.receipts / seen.storeOrders - baseMix.receiptEmailShare)).toBeLessThan(0.03);
    expect(seen.both).toBeGreaterThan(100);
  });

  it("shares a household email between neighbours at the stated share of pairs", () => {
    let shared = 0;
    for (let pair = 0; pair < 10_000; pair++) {
      const [first, second] = [emailOf(2 * pair), emailOf(2 * pair + 1)];
      if (first === second) shared++;
      else expect([first, second]).toEqual([`scale-${2 * pair}@example.com`, `scale-${2 * pair + 1}@example.com`]);
    }
    expect(Math.abs(shared / 10_000 - baseMix.sharedEmailShare)).toBeLessThan(0.005);
  });
});
