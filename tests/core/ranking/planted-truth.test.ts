// Generated customers with known truth (db/seed/generate.ts): each planted effect must come back out.
import { beforeAll, describe, expect, it } from "vitest";
import {
  evaluateGenerated,
  type GeneratedDataset,
  generateDataset,
  type PlantedTruthResult,
  plantedTruth,
} from "../../../cli/evaluate/generated.ts";

let dataset: GeneratedDataset;
let truth: PlantedTruthResult;

beforeAll(() => {
  dataset = generateDataset({ customers: 600, seed: 11, today: "2026-06-01" });
  truth = plantedTruth(dataset, 30);
});

describe("planted truth", () => {
  it("recovers the planted complementary pairs among each source's top complements", () => {
    expect(truth.complements.recoveredInTop3 / truth.complements.planted).toBeGreaterThanOrEqual(0.8);
    expect(truth.complements.meanLiftPlanted).toBeGreaterThan(truth.complements.meanLiftOther);
  });

  it("flags due categories that are then bought more often than the rest", () => {
    expect(truth.dueNow.flaggedDue).toBeGreaterThan(100);
    expect(truth.dueNow.boughtWhenDue).toBeGreaterThan(truth.dueNow.boughtWhenNotDue);
  });

  it("tells full-price shoppers from deal seekers", () => {
    expect(truth.discount.accuracy).toBeGreaterThan(0.75);
    expect(truth.discount.confusion.full_price!.deal_seeker).toBe(0);
    expect(truth.discount.confusion.deal_seeker!.full_price).toBe(0);
  });

  it("places budget, mid and premium shoppers in order within the price distributions", () => {
    const { budget, mid, premium } = truth.priceBand.meanPercentile;
    expect(budget!).toBeLessThan(0.3);
    expect(mid!).toBeGreaterThan(budget! + 0.15);
    expect(premium!).toBeGreaterThan(mid! + 0.15);
  });

  it("beats both baselines on a time split of the generated history", () => {
    const result = evaluateGenerated(dataset, 5, 90);
    expect(result.households).toBeGreaterThan(300);
    for (const metric of ["recall", "ndcg"] as const) {
      expect(result.patron[metric]).toBeGreaterThan(result.baselines.popularity[metric]);
      expect(result.patron[metric]).toBeGreaterThanOrEqual(result.baselines.ownFrequency[metric]);
    }
  });
});
