// `patron import list` in words: one import a line, newest first as the worker lists them, an open one
// with nothing queued said to be waiting for batches, and how to read the next page.
import { describe, expect, it } from "vitest";
import { importsListText } from "../../cli/commands/import.ts";

const job = (id: string, overrides: Record<string, unknown> = {}) => ({
  id,
  source: "pos-2026.csv",
  status: "done",
  expectedBatches: 3,
  batches: { received: 3, queued: 0, done: 3, failed: 0 },
  orders: { received: 1200, processed: 1200 },
  totals: { accepted: 1190 },
  createdAt: "2026-12-06T21:30:12.345Z",
  ...overrides,
});

describe("importsListText", () => {
  it("lists each import with its status, batches of those expected, orders processed and source", () => {
    const lines = importsListText(
      [
        job("imp_00000000000000000003", {
          status: "open",
          batches: { received: 1, queued: 0, done: 1, failed: 0 },
          orders: { received: 400, processed: 400 },
          totals: { accepted: 400 },
        }),
        job("imp_00000000000000000002", {
          status: "open",
          batches: { received: 2, queued: 1, done: 1, failed: 0 },
          totals: { accepted: 1188, setAside: 2 },
        }),
        job("imp_00000000000000000001", {
          status: "failed",
          expectedBatches: null,
          source: null,
          batches: { received: 3, queued: 0, done: 2, failed: 1 },
        }),
      ],
      "imp_00000000000000000001",
    );
    expect(lines[0]).toMatch(/^import\s+created \(UTC\)\s+status\s+batches\s+orders processed\s+accepted\s+source$/);
    expect(lines[1]).toMatch(
      /^imp_00000000000000000003 {2}2026-12-06 21:30 {2}open \(waiting for batches\) {2}1 of 3\s+400 of 400\s+400\s+pos-2026\.csv$/,
    );
    expect(lines[2]).toMatch(/ open {2}\s*2 of 3, 1 queued\s+1,200 of 1,200\s+1,188 \(2 set aside\)\s+pos-2026\.csv$/);
    expect(lines[3]).toMatch(/ failed\s+3, 1 failed\s+1,200 of 1,200\s+1,190$/);
    expect(lines.slice(-2)).toEqual(["", "More: the same command with --before imp_00000000000000000001"]);
  });

  it("says when there is none", () => {
    expect(importsListText([], null)).toEqual(["No imports yet."]);
  });
});
