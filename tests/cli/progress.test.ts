// The import progress bar's ETA: readable while cli-progress cannot estimate one yet; the plain lines
// printed instead where stderr is not a terminal; and the closing summary, whose order counts add up
// to the orders sent.
import { describe, expect, it, vi } from "vitest";
import { describeProgress, etaText, progressBar, summaryLines } from "../../cli/import/progress.ts";
import type { QueuedImportResult } from "../../cli/import/queued.ts";
import { emptyProgress, type ImportResult } from "../../cli/import/run.ts";
import { emptyState, emptyTotals } from "../../cli/import/state.ts";

describe("the progress bar's ETA", () => {
  it("says ? while there is no estimate (nothing processed yet)", () => {
    expect(etaText(Number.POSITIVE_INFINITY)).toBe("?");
    expect(etaText(Number.NaN)).toBe("?");
  });

  it("shows seconds, minutes and seconds, or hours and minutes", () => {
    expect([etaText(0), etaText(7.4), etaText(59)]).toEqual(["0s", "7s", "59s"]);
    expect([etaText(60), etaText(125), etaText(3599)]).toEqual(["1m00s", "2m05s", "59m59s"]);
    expect([etaText(3600), etaText(7260), etaText(90_000)]).toEqual(["1h00m", "2h01m", "25h00m"]);
  });
});

describe("the progress note", () => {
  it("says the batches wait while the worker has customer writes paused, and nothing of it otherwise", () => {
    const progress = { ...emptyProgress(), totals: { ...emptyTotals(), accepted: 40, duplicates: 2 } };
    expect(describeProgress(progress)).toBe("40 new, 2 dup");
    expect(describeProgress({ ...progress, writesPausedAt: "2026-12-04T18:00:00.000Z" })).toBe(
      "40 new, 2 dup, waiting: customer writes paused since 2026-12-04T18:00:00.000Z for a move into customer shards",
    );
  });
});

describe("the import summary", () => {
  const direct: ImportResult = {
    records: 6,
    skippedRecords: 0,
    batches: 3,
    skippedBatches: 0,
    retries: 0,
    totals: { ...emptyTotals(), records: 6, accepted: 0, duplicates: 4, suppressed: 2 },
    elapsedMs: 2000,
    state: undefined,
    changedIds: [],
  };
  const figure = (lines: string[], label: string) =>
    Number(
      lines
        .find((line) => line.startsWith(`${label} `))
        ?.slice(label.length)
        .trim()
        .split(" ")[0],
    );

  it("prints the orders the server suppressed, so that the counts add up to the orders sent", () => {
    const lines = summaryLines("orders", direct);
    expect(lines.slice(0, 5)).toEqual([
      "orders sent        6 (3/s)",
      "accepted           0",
      "duplicates         4",
      "suppressed         2",
      "ignored identifiers 0",
    ]);
  });

  it("says under duplicates how many the server had stored with other content, naming the first", () => {
    const changed = (count: number, changedIds: string[]): ImportResult => ({
      ...direct,
      totals: { ...direct.totals, changed: count },
      changedIds,
    });
    expect(summaryLines("orders", changed(2, ["o-2", "o-5"])).slice(2, 4)).toEqual([
      "duplicates         4",
      "changed            2 of them differ from the stored orders and were not applied: o-2, o-5",
    ]);
    // Fewer ids than are kept: they are all there are (two copies of one id count twice).
    expect(summaryLines("orders", changed(4, ["o-2", "o-5"]))[3]).toMatch(/: o-2, o-5$/);
    const five = ["o-1", "o-2", "o-3", "o-4", "o-5"];
    expect(summaryLines("orders", changed(9, five))[3]).toMatch(/: o-1, o-2, o-3, o-4, o-5 and up to 4 more$/);
    const resumed: ImportResult = {
      ...changed(2, ["o-2", "o-5"]),
      skippedBatches: 1,
      state: { ...emptyState("f", "file", new Date()), confirmedThrough: 2, totals: { ...direct.totals, changed: 3 } },
    };
    expect(summaryLines("orders", resumed).find((line) => line.startsWith("in all"))).toBe(
      "in all             6 orders in 2 batches: 0 accepted, 4 duplicates, 2 suppressed; 3 of the duplicates changed (this run and earlier ones)",
    );
  });

  it("counts the orders of batches the queue failed as sent and failed", () => {
    const queued: QueuedImportResult = {
      ...direct,
      totals: { ...emptyTotals(), records: 4, accepted: 3, duplicates: 0, suppressed: 1 },
      importId: "imp_1",
      failed: [{ sequence: 1, orders: 2, error: "database busy" }],
      setAside: [],
      posted: 3,
      receivedBefore: 0,
      status: "failed",
    };
    const lines = summaryLines("orders", queued);
    expect(lines).toContain("failed             2 (in batches the server could not ingest)");
    const parts = ["accepted", "duplicates", "suppressed", "failed"].map((label) => figure(lines, label));
    expect(parts.reduce((sum, count) => sum + count, 0)).toBe(figure(lines, "orders sent"));
    expect(figure(lines, "orders sent")).toBe(6);
    expect(summaryLines("orders", direct).some((line) => line.startsWith("failed"))).toBe(false);
  });

  it("counts the orders the worker set aside from done batches as sent and set aside", () => {
    const queued: QueuedImportResult = {
      ...direct,
      totals: { ...emptyTotals(), records: 5, accepted: 4, duplicates: 1, suppressed: 0 },
      importId: "imp_1",
      failed: [],
      setAside: [{ sequence: 0, orders: 2, ids: ["w-1", "w-2"], error: "2 orders were set aside" }],
      posted: 2,
      receivedBefore: 0,
      status: "done",
    };
    const lines = summaryLines("orders", queued);
    expect(lines).toContain("set aside          2 (identifiers linking too many orders: below)");
    const parts = ["accepted", "duplicates", "suppressed", "set aside"].map((label) => figure(lines, label));
    expect(parts.reduce((sum, count) => sum + count, 0)).toBe(figure(lines, "orders sent"));
    expect(figure(lines, "orders sent")).toBe(7);
    expect(summaryLines("orders", direct).some((line) => line.startsWith("set aside"))).toBe(false);
  });
});

describe("progress where stderr is not a terminal", () => {
  const linesOf = (run: (display: ReturnType<typeof progressBar>) => void, lineEveryMs: number) => {
    const printed: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((line: string) => void printed.push(line));
    try {
      run(progressBar(1000, "customers", undefined, 0, lineEveryMs));
    } finally {
      spy.mockRestore();
    }
    return printed;
  };

  it("prints a plain line with the count, the share, the rate, the ETA and the note instead of a bar", () => {
    const printed = linesOf((display) => {
      expect(display.enabled).toBe(false); // No bar: the caller prints its retries itself.
      display.update(250, { note: "3 retries" });
    }, 0);
    expect(printed).toHaveLength(1);
    expect(printed[0]).toMatch(/^customers 250 of 1000 \(25%\), \d+\/s, ETA (\S+), \S+ elapsed: 3 retries$/);
  });

  it("leaves what an earlier run confirmed out of a resumed run's rate and ETA", () => {
    vi.useFakeTimers({ now: new Date("2026-12-07T06:00:00Z"), toFake: ["Date"] });
    try {
      const printed = linesOf((display) => {
        // 900 of the 1,000 were skipped at once as confirmed; this run did 50 in 10 s.
        vi.advanceTimersByTime(10_000);
        display.update(950, {}, 900);
      }, 0);
      expect(printed).toEqual(["customers 950 of 1000 (95%), 5/s, ETA 10s, 10s elapsed"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("draws the bar with its own ETA, leaving out what an earlier run confirmed", () => {
    vi.useFakeTimers({ now: new Date("2026-12-07T06:00:00Z"), toFake: ["Date"] });
    const drawn: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      drawn.push(String(chunk));
      return true;
    });
    try {
      // Forced on (--progress) where stderr is no terminal, as here.
      const bar = progressBar(1000, "orders", true);
      vi.advanceTimersByTime(10_000);
      bar.update(950, {}, 900);
      bar.stop();
    } finally {
      spy.mockRestore();
      vi.useRealTimers();
    }
    const last = drawn.filter((text) => text.includes("950/1000")).at(-1) ?? "";
    expect(last).toContain("950/1000 orders | 5 orders/s | ETA 10s");
  });

  it("prints at most one line per interval, so a short run prints none", () => {
    const printed = linesOf((display) => {
      for (let done = 1; done <= 1000; done++) display.update(done);
    }, 60_000);
    expect(printed).toEqual([]);
  });

  it("prints nothing when asked for no progress", () => {
    const printed: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((line: string) => void printed.push(line));
    try {
      progressBar(1000, "customers", false, 0, 0).update(500);
    } finally {
      spy.mockRestore();
    }
    expect(printed).toEqual([]);
  });
});
