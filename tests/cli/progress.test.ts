// The import progress bar's ETA: readable while cli-progress cannot estimate one yet.
import { describe, expect, it } from "vitest";
import { etaText } from "../../cli/import/progress.ts";

describe("the progress bar's ETA", () => {
  it("says ? while cli-progress has no estimate (nothing processed yet), never a cut-off NFs or LLs", () => {
    expect(etaText("INF")).toBe("?");
    expect(etaText("NULL")).toBe("?");
    expect(etaText(Number.POSITIVE_INFINITY)).toBe("?");
    expect(etaText(Number.NaN)).toBe("?");
  });

  it("shows seconds, minutes and seconds, or hours and minutes", () => {
    expect([etaText(0), etaText(7.4), etaText(59)]).toEqual(["0s", "7s", "59s"]);
    expect([etaText(60), etaText(125), etaText(3599)]).toEqual(["1m00s", "2m05s", "59m59s"]);
    expect([etaText(3600), etaText(7260), etaText(90_000)]).toEqual(["1h00m", "2h01m", "25h00m"]);
  });
});
