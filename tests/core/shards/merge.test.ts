// Merging the shards' sorted answers (worker/core/shards/merge.ts): the merge of every shard's first
// rows is the first rows of the whole, in SQLite's order, whatever the split.
import { describe, expect, it } from "vitest";
import {
  compareSqlValues,
  mergeSorted,
  type SortValue,
  sqlOrder,
  sumGroups,
} from "../../../worker/core/shards/merge.ts";

/** A small deterministic generator (mulberry32), so a failure is reproducible. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Row {
  value: number | string;
  id: string;
}

describe("compareSqlValues", () => {
  it("orders as SQLite: NULL, then numbers, then text", () => {
    const values: SortValue[] = ["b", 2, null, "a", -1.5, "", 10];
    expect([...values].sort(compareSqlValues)).toEqual([null, -1.5, 2, 10, "", "a", "b"]);
  });
});

describe("mergeSorted", () => {
  for (const descending of [false, true]) {
    it(`gives the first rows of the whole from each shard's first rows (${descending ? "desc" : "asc"})`, () => {
      const next = random(descending ? 7 : 3);
      const direction = descending ? "desc" : "asc";
      const order = sqlOrder<Row>([(row) => row.value, direction], [(row) => row.id, direction]);
      for (let trial = 0; trial < 50; trial++) {
        // Few distinct values, so ties on the value are common and the id decides.
        const rows: Row[] = Array.from({ length: 1 + Math.floor(next() * 60) }, (_, i) => ({
          value: Math.floor(next() * 5),
          id: `c_${String(i).padStart(3, "0")}`,
        }));
        const shards: Row[][] = [[], [], [], []];
        for (const row of rows) shards[Math.floor(next() * 4)]?.push(row);
        const limit = 1 + Math.floor(next() * 20);
        const pages = shards.map((shard) => [...shard].sort(order).slice(0, limit));
        expect(mergeSorted(pages, order, limit)).toEqual([...rows].sort(order).slice(0, limit));
      }
    });
  }

  it("pages through the whole by keyset cursor, each page from every shard's rows after the cursor", () => {
    const next = random(11);
    const order = sqlOrder<Row>([(row) => row.value, "desc"], [(row) => row.id, "desc"]);
    const rows: Row[] = Array.from({ length: 97 }, (_, i) => ({
      value: `2026-0${1 + Math.floor(next() * 3)}-01`,
      id: `c_${String(i).padStart(3, "0")}`,
    }));
    const shards: Row[][] = [[], [], []];
    for (const row of rows) shards[Math.floor(next() * 3)]?.push(row);
    const seen: Row[] = [];
    let after: Row | undefined;
    for (let page = 0; page < 100; page++) {
      const cursor = after;
      const pages = shards.map((shard) =>
        [...shard]
          .filter((row) => cursor === undefined || order(row, cursor) > 0)
          .sort(order)
          .slice(0, 10),
      );
      const merged = mergeSorted(pages, order, 10);
      seen.push(...merged);
      after = merged.at(-1);
      if (merged.length < 10) break;
    }
    expect(seen).toEqual([...rows].sort(order));
  });

  it("keeps the lower list first on ties and stops at the limit or when every list is read", () => {
    const order = sqlOrder<{ v: number; from: string }>([(row) => row.v, "asc"]);
    const lists = [[{ v: 1, from: "a" }], [{ v: 1, from: "b" }], [{ v: 0, from: "c" }]];
    expect(mergeSorted(lists, order, 10).map((row) => row.from)).toEqual(["c", "a", "b"]);
    expect(mergeSorted(lists, order, 2).map((row) => row.from)).toEqual(["c", "a"]);
    expect(mergeSorted([[], []], order, 5)).toEqual([]);
  });
});

describe("sqlOrder", () => {
  it("applies each term's own direction (ORDER BY clv DESC, id ASC)", () => {
    const order = sqlOrder<{ clv: number; id: string }>([(row) => row.clv, "desc"], [(row) => row.id, "asc"]);
    const rows = [
      { clv: 1, id: "b" },
      { clv: 2, id: "z" },
      { clv: 1, id: "a" },
    ];
    expect(rows.sort(order)).toEqual([
      { clv: 2, id: "z" },
      { clv: 1, id: "a" },
      { clv: 1, id: "b" },
    ]);
  });
});

describe("sumGroups", () => {
  it("adds each group's rows from every list, as GROUP BY over their union", () => {
    const lists = [
      [
        { stage: "active", n: 2 },
        { stage: "fading", n: 1 },
      ],
      [{ stage: "active", n: 3 }],
      [],
    ];
    const summed = sumGroups(
      lists,
      (row) => row.stage,
      (total, row) => ({ ...total, n: total.n + row.n }),
    );
    expect(summed).toEqual([
      { stage: "active", n: 5 },
      { stage: "fading", n: 1 },
    ]);
  });
});
