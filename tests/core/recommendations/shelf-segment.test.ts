// The shelf's segment without segment rules skips the profile but must rank exactly as with it: the
// same discount sensitivity for every shopper, and the whole segment as soon as a rule names one.
import { describe, expect, it } from "vitest";
import type { ProfileSummary } from "../../../worker/core/profile/customer-profile.ts";
import {
  fitPopulationModels,
  type SummaryRow,
  summaryRowFromOrders,
} from "../../../worker/core/profile/population-models.ts";
import { shelfSegmentOf, shopperSegmentOf } from "../../../worker/recommendations/segment.ts";

const day = 86_400_000;
const now = new Date("2026-06-01T12:00:00Z");

/** Customers with 1–8 orders, 1–4 units each, a share of them discounted from none to all (seeded). */
function base(customers = 600): SummaryRow[] {
  let state = 7;
  const uniform = () => {
    state = (state * 16_807) % 2_147_483_647;
    return state / 2_147_483_647;
  };
  return Array.from({ length: customers }, (_, c) => {
    const count = 1 + Math.floor(uniform() * 8);
    const dealShare = [0, 0.1, 0.4, 0.8, 1][c % 5] as number;
    const last = now.getTime() - Math.floor(uniform() * 200) * day;
    const orders = Array.from({ length: count }, (_, k) => {
      const units = 1 + Math.floor(uniform() * 4);
      return {
        placedAt: new Date(last - (count - 1 - k) * (5 + Math.floor(uniform() * 60)) * day).toISOString(),
        total: 10 + Math.round(uniform() * 9000) / 100,
        units,
        discountedUnits: Math.round(units * dealShare),
      };
    });
    return summaryRowFromOrders(`c${c}`, orders);
  });
}

const asProfile = (row: SummaryRow): ProfileSummary => ({
  ...row,
  webOrders: row.purchaseDays,
  storeOrders: 0,
  appOrders: 0,
  phoneOrders: 0,
});

describe("shelfSegmentOf", () => {
  const rows = base();
  const models = fitPopulationModels(rows, now);

  it("without segment rules: the profile's discount sensitivity for every shopper, and nothing else", () => {
    const sensitivities = new Set<string>();
    for (const row of rows) {
      const full = shopperSegmentOf(asProfile(row), models, now);
      const light = shelfSegmentOf(asProfile(row), models, now, [{ segment: null }, {}]);
      expect(light).toEqual({ discountSensitivity: full?.discountSensitivity });
      sensitivities.add(String(light?.discountSensitivity));
    }
    // The base spans the sensitivities, so the comparison covers each.
    expect(sensitivities.size).toBeGreaterThanOrEqual(3);
  });

  it("with a rule limited to a segment: the whole segment, as the profile gives it", () => {
    for (const row of rows.slice(0, 50)) {
      expect(shelfSegmentOf(asProfile(row), models, now, [{ segment: { stage: ["fading"] } }])).toEqual(
        shopperSegmentOf(asProfile(row), models, now),
      );
    }
  });

  it("a summary that cannot be read gets no segment", () => {
    const broken = { ...asProfile(rows[0]!), discountedUnits: rows[0]!.units + 1 };
    expect(shelfSegmentOf(broken, models, now, [])).toBeUndefined();
  });
});
