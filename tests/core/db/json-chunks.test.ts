// The JSON chunking every repo's json_each parameters go through (db/json-chunks.ts): byte counts match
// UTF-8, no chunk exceeds its budget, and the chunks together hold every item in order.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsonChunks, maxJsonParamBytes, utf8Bytes } from "../../../db/json-chunks.ts";

const encoder = new TextEncoder();

describe("utf8Bytes", () => {
  it("counts what TextEncoder writes, for any string (lone surrogates become three-byte U+FFFD)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (text) => {
        expect(utf8Bytes(text)).toBe(encoder.encode(text).length);
      }),
      { seed: 10, numRuns: 500 },
    );
    expect(utf8Bytes("a\u00e9\u6f22\u{1f6d2}\ud800")).toBe(1 + 2 + 3 + 4 + 3);
  });
});

describe("jsonChunks", () => {
  it("keeps every chunk within the budget and every item, in order", () => {
    // Each item serialises to at most 1,803 bytes (a lone surrogate is escaped as six), under any budget here.
    const item = fc.oneof(
      fc.string({ unit: "binary", maxLength: 300 }),
      fc.record({ id: fc.string({ unit: "binary", maxLength: 100 }), n: fc.integer() }),
    );
    fc.assert(
      fc.property(fc.array(item, { maxLength: 200 }), fc.integer({ min: 2000, max: 8000 }), (items, budget) => {
        const chunks = jsonChunks(items, budget);
        for (const chunk of chunks) expect(encoder.encode(chunk).length).toBeLessThanOrEqual(budget);
        expect(chunks.flatMap((chunk) => JSON.parse(chunk) as unknown[])).toEqual(JSON.parse(JSON.stringify(items)));
      }),
      { seed: 11, numRuns: 200 },
    );
  });

  it("sends a small array as one chunk and cuts a big one well under D1's 2 MB value limit", () => {
    expect(jsonChunks(["a", "b"])).toEqual(['["a","b"]']);
    const big = Array.from({ length: 5000 }, (_, i) => `${i}-${"漢".repeat(200)}`);
    const chunks = jsonChunks(big);
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(encoder.encode(chunk).length).toBeLessThanOrEqual(maxJsonParamBytes);
    expect(maxJsonParamBytes).toBeLessThan(2_000_000);
  });
});
