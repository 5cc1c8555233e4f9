// /demo/token signs only for the demo's seeded shoppers: its list must be exactly the accounts the
// seed gives the personas (the anonymous persona has none).
import { describe, expect, it } from "vitest";
import { demoShoppers } from "../../db/seed/generate.ts";
import { demoAccounts } from "../../worker/demo/demo.schemas.ts";

describe("demo accounts", () => {
  it("are the seeded personas' storefront accounts", () => {
    const seeded = demoShoppers.map((shopper) => shopper.accountId).filter((account) => account !== null);
    expect([...demoAccounts].sort()).toEqual([...seeded].sort());
  });
});
