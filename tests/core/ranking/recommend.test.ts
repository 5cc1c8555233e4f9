import { describe, expect, it } from "vitest";
import { rankingOptionsWith } from "../../../worker/core/ranking/options.ts";
import { type RecommendationInput, recommend } from "../../../worker/core/ranking/recommend.ts";
import type { CustomerSummary } from "../../../worker/core/ranking/types.ts";
import { holdoutArm } from "../../../worker/core/rules/holdout.ts";
import { category, daysAgo, now, population, product, rhythm } from "./builders.ts";

const summary: CustomerSummary = {
  orders: 6,
  purchaseDays: 6,
  firstOrderAt: daysAgo(200),
  lastOrderAt: daysAgo(30),
  spend: 120,
  webOrders: 2,
  storeOrders: 4,
  appOrders: 0,
  phoneOrders: 0,
  units: 100,
  discountedUnits: 1,
};
const base: RecommendationInput = {
  customerId: "cust-1",
  summary,
  categoryStats: [rhythm("coffee", 6, 30, 30, { webUnits: 2, storeUnits: 4 })],
  // A population whose shoppers stick to their own categories (small κ), so six orders outweigh the prior.
  population: population([category("coffee", { penetration: 0.01 }), category("milk", { penetration: 0.9 })], {
    tasteConcentration: 2,
  }),
  catalog: [
    product("coffee-full", "coffee"),
    product("coffee-sale", "coffee", { salePrice: 15 }),
    product("milk-1", "milk"),
  ],
  rules: [],
  segment: { stage: "active" },
  now,
};
const personalised = rankingOptionsWith({ holdout: { share: 0 } });

describe("recommend", () => {
  it("hashes the arm from holdoutKey when given, whatever the customer id", () => {
    const options = rankingOptionsWith({ holdout: { share: 0.5 } });
    const ids = Array.from({ length: 40 }, (_, i) => `${i}-customer`);
    const key = "account:stable";
    const expected = holdoutArm(key, options.holdout);
    for (const customerId of ids) {
      expect(recommend({ ...base, customerId, holdoutKey: key }, options).arm).toBe(expected);
    }
    // Without it the customer id decides, and a different id can land in the other arm.
    const byCustomer = new Set(ids.map((customerId) => recommend({ ...base, customerId }, options).arm));
    expect(byCustomer).toEqual(new Set(["holdout", "personalized"]));
  });

  it.each([
    ["anonymous visitor", "anonymous", { customerId: null, summary: null, categoryStats: [] }, personalised],
    ["held-out shopper", "holdout", {}, rankingOptionsWith({ holdout: { share: 1 } })],
    ["personalised shopper", "personalized", {}, personalised],
  ])("%s gets the %s arm", (_label, arm, fields, options) => {
    const result = recommend({ ...base, ...fields }, options);
    expect(result.arm).toBe(arm);
    expect(result.categories[0]!.categoryId).toBe(arm === "personalized" ? "coffee" : "milk");
  });

  it("derives a full-price shopper and hides discounts from them unless a rule allows them", () => {
    const hidden = recommend(base, personalised);
    expect(hidden.segment.discountSensitivity).toBe("full_price");
    expect(hidden.items.map((i) => i.productId)).not.toContain("coffee-sale");

    const allowed = recommend(
      {
        ...base,
        rules: [
          {
            id: "allow-all",
            name: "Sale week",
            action: "allow_discounts",
            targetType: "category",
            targetId: "*",
            enabled: true,
            segment: { stage: "active" },
          },
        ],
      },
      personalised,
    );
    expect(allowed.items.map((i) => i.productId)).toContain("coffee-sale");
  });

  it("applies rules last, also to the default shelf", () => {
    const result = recommend(
      {
        ...base,
        customerId: null,
        rules: [
          { id: "x", name: "No milk", action: "exclude", targetType: "category", targetId: "milk", enabled: true },
        ],
      },
      personalised,
    );
    expect(result.categories.map((c) => c.categoryId)).toEqual(["coffee"]);
    expect(result.appliedRuleIds).toEqual(["x"]);
  });
});
