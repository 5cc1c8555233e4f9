// `patron backfill status` and `rerun`: one line per backfill and part of the store.
import { describe, expect, it } from "vitest";
import { backfillLines } from "../../cli/commands/backfill.ts";

describe("backfillLines", () => {
  it("says where each part's pass stands: done, under way, or waiting for the next run", () => {
    const backfill = (store: string, cursor: string, doneAt: string | null) => ({
      name: "customer_products",
      store,
      cursor,
      doneAt,
      pending: doneAt === null,
    });
    expect(
      backfillLines({
        backfills: [
          backfill("shard-0", "c_9", "2026-12-01T03:00:00.000Z"),
          backfill("shard-1", "c_4", null),
          backfill("shard-2", "", null),
        ],
        pending: 2,
      }),
    ).toEqual([
      "customer_products  shard-0  done (by the nightly run of 2026-12-01T03:00:00.000Z)",
      "customer_products  shard-1  pending: the last pass reached c_4 (a run goes on from there, or starts again from the first customer)",
      "customer_products  shard-2  pending: the next nightly run fills it",
    ]);
  });

  it("says so when no table was ever backfilled", () => {
    expect(backfillLines({ backfills: [], pending: 0 })).toEqual([
      "no backfills: every derived table was written from the start",
    ]);
  });
});
