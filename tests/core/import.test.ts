// The bulk importer's pure parts: mappings, grouping, batching, resumable state, retries and the
// import loop against a scripted fake server (no network).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  BatchRejected,
  backoffDelay,
  defaultRetryPolicy,
  IngestClient,
  IngestFailed,
  retryAfterMs,
} from "../../cli/import/client.ts";
import { collectListPrices, completeJourneyOrders, completeJourneyProduct } from "../../cli/import/completejourney.ts";
import {
  applyTransform,
  columnsUsed,
  groupOrderLines,
  MappingError,
  mapOrderRow,
  mapProductRow,
  type OrderMapping,
  parseMapping,
  slugify,
  titleCase,
  toIsoInstant,
} from "../../cli/import/mapping.ts";
import { summaryLines } from "../../cli/import/progress.ts";
import { countQueuedBatches } from "../../cli/import/queued.ts";
import {
  batchesOf,
  ImportStopped,
  locateIssues,
  ReadStopped,
  runImport,
  type SourceRecord,
} from "../../cli/import/run.ts";
import { InputError, loadLookups, readNdjson, rowKeyOf } from "../../cli/import/sources.ts";
import {
  confirmBatch,
  countConfirmed,
  emptyState,
  emptyTotals,
  fingerprintOf,
  isConfirmed,
  loadState,
  markPosted,
  unconfirmedImports,
} from "../../cli/import/state.ts";
import type { WireOrder } from "../../db/seed/wire.ts";
import { checkWireOrder } from "../../db/seed/wire.ts";
import { normalizeIdentifier } from "../../worker/core/identity/normalize.ts";
import { medianOf } from "../../worker/core/math/quantile.ts";

const cjRow = {
  household_id: "400",
  store_id: "388",
  basket_id: "31932241118",
  product_id: "13094913",
  quantity: "2",
  sales_value: "11.87",
  retail_disc: "2.9",
  coupon_disc: "0.5",
  coupon_match_disc: "0.25",
  week: "8",
  transaction_timestamp: "2017-02-18T13:13:10-0500",
};
const lookups = {
  products: new Map([
    ["13094913", { product_id: "13094913", product_category: "BAKED BREAD/BUNS/ROLLS", department: "GROCERY" }],
  ]),
};

describe("text transforms", () => {
  it.each([
    ["BAKED BREAD/BUNS/ROLLS", "baked-bread-buns-rolls"],
    ["  Frozen Pizza ", "frozen-pizza"],
    ["BEERS/ALES & MALT", "beers-ales-and-malt"],
    ["Crème brûlée", "creme-brulee"],
  ])("slugify(%j) = %j", (text, slug) => expect(slugify(text)).toBe(slug));

  it("title-cases shouting catalog text", () => {
    expect(titleCase("EGGS - X-LARGE")).toBe("Eggs - X-Large");
    expect(titleCase("BAKED BREAD/BUNS/ROLLS")).toBe("Baked Bread/Buns/Rolls");
  });

  it.each([
    ["2017-01-28T14:06:53-0500", "2017-01-28T19:06:53Z"],
    ["2017-06-03T19:05:42-04:00", "2017-06-03T23:05:42Z"],
    ["2026-03-14 10:22:00", "2026-03-14T10:22:00Z"],
    ["2026-03-14", "2026-03-14T00:00:00Z"],
    ["2026-03-14T10:22:00.250Z", "2026-03-14T10:22:00.250Z"],
  ])("toIsoInstant(%j) = %j", (raw, iso) => expect(toIsoInstant(raw)).toBe(iso));

  it("refuses what is not a date", () => expect(() => toIsoInstant("last tuesday")).toThrow(MappingError));

  it.each(["05/03/2026", "March 5 2026", "5 Mar 2026 10:00", "2026-3-5"])(
    "refuses %j: day and month order, and the time zone, would be guessed",
    (raw) => expect(() => toIsoInstant(raw, "placedAt")).toThrow(`placedAt: "${raw}" is not a date-time`),
  );

  it.each(["2026-02-30", "2026-02-30T10:00:00Z", "2026-04-31 10:00:00", "2025-02-29", "2026-13-01", "2026-00-10"])(
    "refuses %j, a day the calendar does not have (not rolled over into the next month)",
    (raw) => expect(() => toIsoInstant(raw, "placedAt")).toThrow(`placedAt: "${raw}" is not a date-time`),
  );

  it("reads an offset of whole hours, as PostgreSQL writes a timestamptz", () => {
    expect(toIsoInstant("2026-03-14 10:22:00+01")).toBe("2026-03-14T09:22:00Z");
    expect(toIsoInstant("2026-03-14 10:22:00.5-05", "placedAt", "Europe/Berlin")).toBe("2026-03-14T15:22:00.500Z");
    expect(toIsoInstant("2026-03-14T10:22+00")).toBe("2026-03-14T10:22:00Z");
    // Not after a time, two digits are no offset: a date written without its day is still refused.
    expect(() => toIsoInstant("2026-03+01", "placedAt")).toThrow('placedAt: "2026-03+01" is not a date-time');
  });

  it("takes the last day of each month, 29 February of a leap year included", () => {
    expect(toIsoInstant("2024-02-29")).toBe("2024-02-29T00:00:00Z");
    expect(toIsoInstant("2026-04-30 23:59:59")).toBe("2026-04-30T23:59:59Z");
    expect(toIsoInstant("2026-12-31T23:00:00-0500")).toBe("2027-01-01T04:00:00Z");
  });

  it("reads a date-time without an offset on the export's clock, daylight saving included", () => {
    // New York is UTC−5 in winter, UTC−4 in summer; Berlin UTC+1 and UTC+2.
    expect(toIsoInstant("2026-01-15 21:30:00", "placedAt", "America/New_York")).toBe("2026-01-16T02:30:00Z");
    expect(toIsoInstant("2026-07-15 21:30:00", "placedAt", "America/New_York")).toBe("2026-07-16T01:30:00Z");
    expect(toIsoInstant("2026-07-01T12:00", "placedAt", "Europe/Berlin")).toBe("2026-07-01T10:00:00Z");
    expect(toIsoInstant("2026-03-14", "placedAt", "Europe/Berlin")).toBe("2026-03-13T23:00:00Z"); // midnight there
    // The hour the spring change skips reads as the hour after; an offset written in the cell wins.
    expect(toIsoInstant("2026-03-08 02:30:00", "placedAt", "America/New_York")).toBe("2026-03-08T07:30:00Z");
    expect(toIsoInstant("2026-07-15T21:30:00Z", "placedAt", "America/New_York")).toBe("2026-07-15T21:30:00Z");
    expect(toIsoInstant("2026-07-15T21:30:00+0100", "placedAt", "America/New_York")).toBe("2026-07-15T20:30:00Z");
    expect(applyTransform("datetime", "2026-01-15 21:30:00", "placedAt", "America/New_York")).toBe(
      "2026-01-16T02:30:00Z",
    );
  });

  it("reads a yes or a no, and refuses any other word rather than guess it is a no", () => {
    for (const yes of ["1", "true", "Yes", " Y ", "t", "ON"]) expect(applyTransform("boolean", yes)).toBe(true);
    for (const no of ["0", "FALSE", "no", "n", "f", "off"]) expect(applyTransform("boolean", no)).toBe(false);
    for (const other of ["In Stock", "available", "maybe", "2"])
      expect(() => applyTransform("boolean", other, "inStock")).toThrow(`inStock: "${other}" is not a yes or no`);
  });
});

describe("the completejourney orders mapping", () => {
  it("maps a basket line to a store order with a prefixed loyalty card, unit and list prices", () => {
    const mapped = mapOrderRow(completeJourneyOrders, cjRow, lookups);
    expect(mapped.header).toEqual({
      id: "cj-31932241118",
      channel: "store",
      storeId: "cj-store-388",
      placedAt: "2017-02-18T18:13:10Z",
      currency: "USD",
      identifiers: { loyalty: "CJ-0400" },
      recommendationId: null,
    });
    expect(mapped.line).toEqual({
      productId: "cj-13094913",
      categoryId: "baked-bread-buns-rolls",
      quantity: 2,
      unitPrice: 5.935,
      listPrice: 7.76, // (11.87 + 2.9 + 0.5 + 0.25) / 2
    });
    expect(checkWireOrder({ ...mapped.header, lines: [mapped.line!] })).toEqual([]);
  });

  it("counts a fuel line as one fill-up at the line's prices, not thousandths of a gallon as units", () => {
    const fuel = {
      products: new Map([
        [
          "6534178",
          { product_id: "6534178", product_category: "COUPON/MISC ITEMS", product_type: "GASOLINE-REG UNLEADED" },
        ],
      ]),
    };
    const row = { ...cjRow, product_id: "6534178", quantity: "6821", sales_value: "15.0", retail_disc: "0.68" };
    Object.assign(row, { coupon_disc: "0", coupon_match_disc: "0" });
    const line = mapOrderRow(completeJourneyOrders, row, fuel).line;
    expect(line).toEqual({
      productId: "cj-6534178",
      categoryId: "coupon-misc-items",
      quantity: 1,
      unitPrice: 15,
      listPrice: 15.68,
    });
    // A mapping whose price is a per-unit column is multiplied back to the line's total.
    const perUnit = parseMapping({
      ...completeJourneyOrders,
      line: {
        ...completeJourneyOrders.line,
        unitPrice: { column: "price", transform: "number" },
        listPrice: undefined,
      },
    });
    if (perUnit.kind !== "orders") throw new Error("expected an orders mapping");
    expect(mapOrderRow(perUnit, { ...row, quantity: "8.5", price: "2.2" }, fuel).line).toMatchObject({
      quantity: 1,
      unitPrice: 18.7,
      listPrice: 18.7,
    });
    // A sum divided by another column than the quantity (cents to dollars) keeps that division.
    const cents = parseMapping({
      ...completeJourneyOrders,
      line: {
        ...completeJourneyOrders.line,
        unitPrice: { sum: ["price_cents"], divideBy: "per_dollar" },
        listPrice: undefined,
      },
    });
    if (cents.kind !== "orders") throw new Error("expected an orders mapping");
    expect(
      mapOrderRow(cents, { ...row, quantity: "4", price_cents: "250", per_dollar: "100" }, fuel).line,
    ).toMatchObject({ quantity: 1, unitPrice: 10 });
    // Other lines keep their quantity.
    expect(mapOrderRow(completeJourneyOrders, cjRow, lookups).line?.quantity).toBe(2);
    const observed = collectListPrices([row], fuel);
    expect(observed.get("cj-6534178")).toEqual([15.68]);
    // Counted, so the import can say how many lines it sent as one unit.
    const rows = [row, { ...cjRow, basket_id: row.basket_id }].map((each, index) => ({
      mapped: mapOrderRow(completeJourneyOrders, each, {
        products: new Map<string, Record<string, string>>([...fuel.products, ...lookups.products]),
      }),
      line: index + 2,
    }));
    expect(groupOrderLines(rows).stats.countedAsOneUnit).toBe(1);
  });

  it("gives the same list price when discounts are written as negative amounts", () => {
    const negative = { ...cjRow, retail_disc: "-2.9", coupon_disc: "-0.5", coupon_match_disc: "-0.25" };
    expect(mapOrderRow(completeJourneyOrders, negative, lookups).line?.listPrice).toBe(7.76);
  });

  it("skips zero-quantity lines with a reason instead of dividing by zero", () => {
    const mapped = mapOrderRow(completeJourneyOrders, { ...cjRow, quantity: "0", sales_value: "0" }, lookups);
    expect(mapped.line).toBeNull();
    expect(mapped.skipReason).toBe("quantity 0");
  });

  it("pads short household ids so the loyalty number survives junk blocking", () => {
    const loyalty = mapOrderRow(completeJourneyOrders, { ...cjRow, household_id: "2" }, lookups).header.identifiers
      .loyalty;
    expect(loyalty).toBe("CJ-0002");
    expect(normalizeIdentifier("loyalty", loyalty as string).ok).toBe(true);
    expect(normalizeIdentifier("loyalty", "CJ-2").ok).toBe(false);
  });

  it("falls back to the unknown category for products missing from the catalog", () => {
    const mapped = mapOrderRow(completeJourneyOrders, { ...cjRow, product_id: "1" }, lookups);
    expect(mapped.line?.categoryId).toBe("unknown");
  });

  it("reads a sum's empty cell as its default, and without one names the cell and the way out", () => {
    const withSums = (listPrice: Record<string, unknown>) =>
      parseMapping({
        kind: "orders",
        orderId: "receipt",
        channel: { value: "store" },
        placedAt: { column: "sold_at", transform: "datetime" },
        identifiers: { loyalty: "card" },
        line: {
          productId: "sku",
          categoryId: "category",
          quantity: { column: "qty", transform: "number" },
          unitPrice: { sum: ["net_amount"] },
          listPrice,
        },
      }) as OrderMapping;
    const row = { receipt: "r1", sold_at: "2026-01-02T03:04:05Z", card: "LY-100200", sku: "s1", category: "c" };
    const blankDiscount = { ...row, qty: "1", net_amount: "8", discount: "" };
    // A discount left blank is no discount when the mapping says so.
    const counted = mapOrderRow(withSums({ sum: ["net_amount", "discount"], default: 0 }), blankDiscount);
    expect(counted.line).toMatchObject({ unitPrice: 8, listPrice: 8 });
    expect(() => mapOrderRow(withSums({ sum: ["net_amount", "discount"] }), blankDiscount)).toThrow(
      'line.listPrice (discount): the cell is empty (give the sum a "default", such as 0 for a discount left blank, if that is right)',
    );
    // An empty price is an empty field, refused by name as any other.
    expect(() =>
      mapOrderRow(withSums({ sum: ["net_amount", "discount"], default: 0 }), { ...blankDiscount, net_amount: "" }),
    ).toThrow('line.unitPrice: the cell is empty (give the mapping a "default" if that is right)');
    expect(() => withSums({ sum: ["net_amount"], default: "0" })).toThrow(
      /a sum's "default" is the number an empty cell counts as, such as 0/,
    );
  });

  it("names the field and column when a row cannot be read", () => {
    expect(() => mapOrderRow(completeJourneyOrders, { ...cjRow, sales_value: "abc" }, lookups)).toThrow(
      /line.unitPrice \(sales_value\): "abc" is not a number/,
    );
    const { household_id: _, ...withoutHousehold } = cjRow;
    expect(() => mapOrderRow(completeJourneyOrders, withoutHousehold, lookups)).toThrow(/no column "household_id"/);
  });

  it("lists the columns it reads", () => {
    expect(columnsUsed(completeJourneyOrders).sort()).toEqual(
      [
        "basket_id",
        "coupon_disc",
        "coupon_match_disc",
        "household_id",
        "product_id",
        "quantity",
        "retail_disc",
        "sales_value",
        "store_id",
        "transaction_timestamp",
      ].sort(),
    );
  });
});

describe("parseMapping", () => {
  const validOrders = {
    kind: "orders",
    orderId: "o",
    channel: { value: "store" },
    placedAt: { column: "p", transform: "datetime" },
    identifiers: { email: "e" },
    line: { productId: "p", categoryId: "c", quantity: { column: "q", transform: "integer" }, unitPrice: "u" },
  };
  it("accepts the preset and a minimal hand-written mapping", () => {
    expect(parseMapping(JSON.parse(JSON.stringify(completeJourneyOrders)))).toEqual(completeJourneyOrders);
    const minimal = {
      kind: "orders",
      orderId: "order_no",
      channel: { value: "web" },
      placedAt: { column: "date", transform: "datetime" },
      identifiers: { email: { column: "email", transform: "lower" } },
      line: {
        productId: "sku",
        categoryId: { column: "category", transform: "slug" },
        quantity: { column: "qty", transform: "integer" },
        unitPrice: { column: "price", transform: "number" },
      },
    };
    const mapping = parseMapping(minimal) as OrderMapping;
    const mapped = mapOrderRow(mapping, {
      order_no: "A1",
      date: "2026-01-02T03:04:05Z",
      email: " Jane@Example.com ",
      sku: "s1",
      category: "Heels",
      qty: "1",
      price: "89",
    });
    expect(mapped.header.identifiers).toEqual({ email: "jane@example.com" });
    // A time zone for an export written in local time: its date-times are read on that clock.
    const local = parseMapping({ ...minimal, timeZone: "America/Los_Angeles" }) as OrderMapping;
    const late = {
      order_no: "A2",
      date: "2026-01-02 22:15:00",
      email: "j@e.test",
      sku: "s1",
      category: "x",
      qty: "1",
      price: "1",
    };
    expect(mapOrderRow(local, late).header.placedAt).toBe("2026-01-03T06:15:00Z");
    expect(mapOrderRow(mapping, late).header.placedAt).toBe("2026-01-02T22:15:00Z");
    for (const timeZone of ["Mars/Olympus", "", 5, "EST-ish"])
      expect(() => parseMapping({ ...minimal, timeZone })).toThrow(
        /"timeZone" .* is not a time zone this machine knows/,
      );
    expect(mapped.line).toEqual({ productId: "s1", categoryId: "heels", quantity: 1, unitPrice: 89, listPrice: 89 });
    // The kinds the source vouches for go out verified; the others with their kind's default trust.
    const vouched = parseMapping({
      ...minimal,
      identifiers: { ...minimal.identifiers, phone: "phone", device: "device" },
      verified: ["email"],
    }) as OrderMapping;
    const row = { order_no: "A1", date: "2026-01-02T03:04:05Z", email: "j@e.test", phone: "0", device: "d1" };
    expect(mapOrderRow(vouched, { ...row, sku: "s1", category: "c", qty: "1", price: "1" }).header.identifiers).toEqual(
      {
        email: { value: "j@e.test", verified: true },
        phone: "0",
        device: "d1",
      },
    );
  });

  it('stops at an empty cell an order needs, naming the field, rather than sending "" or 0', () => {
    const mapping = parseMapping({
      kind: "orders",
      orderId: "order_no",
      channel: { value: "web" },
      placedAt: { column: "date", transform: "datetime" },
      identifiers: { account: "account" },
      storeId: "store",
      line: {
        productId: "sku",
        categoryId: "category",
        quantity: { column: "qty", transform: "integer" },
        unitPrice: { column: "price", transform: "number" },
        listPrice: { column: "list", transform: "number" },
      },
    }) as OrderMapping;
    const row = {
      order_no: "A1",
      date: "2026-01-02",
      account: "a1",
      store: "",
      sku: "s1",
      category: "c",
      qty: "1",
      price: "9",
      list: "",
    };
    // An empty list price is the unit price; an empty unit price, date, product or quantity stops.
    expect(mapOrderRow(mapping, row).line).toMatchObject({ unitPrice: 9, listPrice: 9 });
    // An empty cell a field is mapped to by name only is no value (a web order's empty store), not "".
    expect(mapOrderRow(mapping, row).header.storeId).toBeNull();
    expect(mapOrderRow(mapping, { ...row, store: "s-1" }).header.storeId).toBe("s-1");
    for (const [column, field] of <[string, string][]>[
      ["price", "line.unitPrice"],
      ["date", "placedAt"],
      ["sku", "line.productId"],
      ["category", "line.categoryId"],
      ["qty", "line.quantity"],
    ])
      expect(() => mapOrderRow(mapping, { ...row, [column]: " " }), column).toThrow(`${field}: the cell is empty`);
  });

  it("refuses a lookup field the lookup file does not have before reading the orders", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "patron-lookup-"));
    try {
      writeFileSync(path.join(dir, "products.csv"), "sku,category\ns1,shoes\n");
      const mapping = parseMapping({
        kind: "orders",
        orderId: "order_no",
        channel: { value: "web" },
        placedAt: "date",
        identifiers: { account: "account" },
        lookups: { products: { file: "products.csv", key: "sku" } },
        line: {
          productId: "sku",
          categoryId: { column: "sku", lookup: "products", field: "categroy", default: "misc" },
          quantity: "qty",
          unitPrice: "price",
        },
      });
      await expect(loadLookups(mapping, (file) => path.join(dir, file))).rejects.toThrow(
        'the mapping reads field(s) categroy of lookup "products", which the file does not have; its columns are sku, category',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads own columns only: a column named constructor that the file lacks is missing, not a function", () => {
    const mapping = parseMapping({
      kind: "orders",
      orderId: "order_no",
      channel: { value: "web" },
      storeId: { column: "constructor" },
      placedAt: "date",
      identifiers: { account: "account" },
      line: { productId: "sku", categoryId: "category", quantity: "qty", unitPrice: "price" },
    }) as OrderMapping;
    const row = { order_no: "A1", date: "2026-01-02", account: "a1", sku: "s1", category: "c", qty: "1", price: "9" };
    expect(() => mapOrderRow(mapping, row)).toThrow('storeId: the input has no column "constructor"');
  });

  it("sends the currency the mapping reads, and none without one: the worker then takes the shop's", () => {
    const mapping = {
      kind: "orders",
      orderId: "order_no",
      channel: { value: "store" },
      placedAt: "date",
      identifiers: { loyalty: "card" },
      line: { productId: "sku", categoryId: "category", quantity: "qty", unitPrice: "price" },
    };
    const row = { order_no: "A1", date: "2026-01-02T03:04:05Z", card: "L-1234", sku: "s", category: "c", qty: "1" };
    const map = (extra: Record<string, unknown>) =>
      mapOrderRow(parseMapping({ ...mapping, ...extra }) as OrderMapping, { ...row, price: "10", cur: "EUR" });
    const unmapped = map({});
    expect(unmapped.header).not.toHaveProperty("currency");
    expect(checkWireOrder({ ...unmapped.header, lines: [unmapped.line!] })).toEqual([]);
    expect(map({ currency: "cur" }).header.currency).toBe("EUR");
    expect(map({ currency: { value: "JPY" } }).header.currency).toBe("JPY");
  });

  it.each([
    [{ kind: "things" }, /"kind"/],
    [{ kind: "orders", channel: "c", placedAt: "p", identifiers: { email: "e" }, line: {} }, /"orderId" is required/],
    [
      { kind: "orders", orderId: "o", channel: "c", placedAt: "p", identifiers: { fax: "f" }, line: {} },
      /unknown identifier kind "fax"/,
    ],
    [
      {
        kind: "orders",
        orderId: "o",
        channel: "c",
        placedAt: "p",
        identifiers: { email: "e" },
        line: { productId: "p", categoryId: "c", quantity: "q" },
      },
      /"line.unitPrice" is required/,
    ],
    [
      { kind: "products", product: { id: "id", title: "t", categoryId: { lookup: "x", column: "c" }, listPrice: "p" } },
      /lookup without "field"/,
    ],
    [
      { kind: "orders", orderId: "o", channel: "c", placedAt: "p", identifiers: { email: "e" }, verified: ["phone"] },
      /"verified" lists "phone", which "identifiers" does not map/,
    ],
    [
      { kind: "orders", orderId: "o", channel: "c", placedAt: "p", identifiers: { device: "d" }, verified: ["device"] },
      /a device cannot be verified/,
    ],
    // Misspelt keys and transforms: ignored, they would drop a field from every record without a word.
    [{ ...validOrders, storeID: "x" }, /unknown key "storeID" in the mapping \(did you mean "storeId"\?\)/],
    [
      { ...validOrders, line: { ...validOrders.line, listprice: "net" } },
      /unknown key "listprice" in "line" \(did you mean "listPrice"\?\)/,
    ],
    [
      { ...validOrders, line: { ...validOrders.line, quantity: { column: "q", transfrom: "number" } } },
      /unknown key "transfrom" in "line.quantity"/,
    ],
    [
      { ...validOrders, line: { ...validOrders.line, quantity: { column: "q", transform: "nmber" } } },
      /"line.quantity" has an unknown transform "nmber"; the transforms are trim, lower/,
    ],
    [{ ...validOrders, countAsOneUnit: { when: "t" } }, /"countAsOneUnit.matches" must be a regular expression/],
    [{ ...validOrders, countAsOneUnit: { when: "t", matches: "(" } }, /"countAsOneUnit.matches" is not a regular/],
    [{ ...validOrders, countAsOneUnit: { matches: "^GAS" } }, /"countAsOneUnit.when" is required/],
    [{ ...validOrders, countAsOneUnit: { when: "t", matches: "x", if: 1 } }, /unknown key "if" in "countAsOneUnit"/],
    [{ ...validOrders, orderId: { sum: ["a"], divide: "b" } }, /unknown key "divide" in "orderId"/],
    [
      { ...validOrders, lookups: { stores: { file: "s.csv", key: "id", keys: "x" } } },
      /unknown key "keys" in lookups.stores/,
    ],
    [
      { kind: "products", product: { id: "id", title: "t", categoryId: "c", listPrice: "p", instock: "s" } },
      /unknown key "instock" in "product" \(did you mean "inStock"\?\)/,
    ],
  ])("rejects %j", (mapping, message) => expect(() => parseMapping(mapping)).toThrow(message));

  it("accepts the valid mapping the rejections above start from, and keys starting with $ as notes", () => {
    expect(parseMapping(validOrders)).toEqual(validOrders);
    const noted = { ...validOrders, $comment: "POS export", line: { ...validOrders.line, $note: "per line" } };
    expect(parseMapping(noted)).toEqual(noted);
  });

  it("reads an inStock column mapped without a transform as yes or no, and stops on another word", () => {
    const mapping = parseMapping({
      kind: "products",
      product: {
        id: "sku",
        title: "name",
        categoryId: "cat",
        listPrice: { column: "price", transform: "number" },
        inStock: "stock",
      },
    });
    if (mapping.kind !== "products") throw new Error("expected a products mapping");
    const row = (stock: string) => ({ sku: "s1", name: "Pumps", cat: "heels", price: "120", stock });
    expect(mapProductRow(mapping, row("TRUE")).inStock).toBe(true);
    expect(mapProductRow(mapping, row("no")).inStock).toBe(false);
    expect(mapProductRow(mapping, row("")).inStock).toBe(true);
    expect(() => mapProductRow(mapping, row("In Stock"))).toThrow('product.inStock: "In Stock" is not a yes or no');
  });

  it("maps product rows", () => {
    const mapping = parseMapping({
      kind: "products",
      product: {
        id: "sku",
        title: "name",
        categoryId: { column: "cat", transform: "slug" },
        categoryName: "cat",
        listPrice: { column: "price", transform: "number" },
        salePrice: { column: "sale", transform: "number" },
        inStock: { column: "stock", transform: "boolean" },
      },
    });
    if (mapping.kind !== "products") throw new Error("expected a products mapping");
    expect(
      mapProductRow(mapping, { sku: "s1", name: "Pumps", cat: "Heels", price: "120", sale: "", stock: "yes" }),
    ).toEqual({
      id: "s1",
      title: "Pumps",
      categoryId: "heels",
      categoryName: "Heels",
      url: null,
      imageUrl: null,
      listPrice: 120,
      salePrice: null,
      inStock: true,
    });
  });

  it("maps a product row's currency when the mapping names one, and leaves an empty one to the shop's", () => {
    const mapping = parseMapping({
      kind: "products",
      product: { id: "sku", title: "name", categoryId: "cat", listPrice: "price", currency: "cur" },
    });
    if (mapping.kind !== "products") throw new Error("expected a products mapping");
    const row = { sku: "s1", name: "Pumps", cat: "heels", price: "120" };
    expect(mapProductRow(mapping, { ...row, cur: "EUR" }).currency).toBe("EUR");
    expect(mapProductRow(mapping, { ...row, cur: "" })).not.toHaveProperty("currency");
  });
});

describe("groupOrderLines", () => {
  it("groups rows of one order wherever they are, keeps first-seen order and line numbers, drops emptied orders", () => {
    const rows = [
      { ...cjRow, basket_id: "1" },
      { ...cjRow, basket_id: "2", quantity: "0" },
      { ...cjRow, basket_id: "3" },
      { ...cjRow, basket_id: "1", product_id: "13094913" },
    ].map((row, index) => ({ mapped: mapOrderRow(completeJourneyOrders, row, lookups), line: index + 2 }));
    const { orders, stats } = groupOrderLines(rows);
    expect(orders.map((grouped) => [grouped.order.id, grouped.order.lines.length, grouped.lines])).toEqual([
      ["cj-1", 2, [2, 5]],
      ["cj-3", 1, [4]],
    ]);
    expect(stats).toEqual({
      rows: 4,
      skippedLines: 1,
      skipReasons: { "quantity 0": 1 },
      emptyOrders: 1,
      anonymousOrders: 0,
      countedAsOneUnit: 0,
      headerConflicts: 0,
      repeatedRows: 0,
      ordersWithRepeats: 0,
    });
  });

  it("gives an order the identifiers a later row names, and leaves out an order no row names anyone on", () => {
    const rows = [
      // The customer's card on the receipt's second line only.
      { ...cjRow, basket_id: "7", household_id: "" },
      { ...cjRow, basket_id: "7", household_id: "402", product_id: "13094913" },
      // An anonymous till sale: no identifier on any line.
      { ...cjRow, basket_id: "8", household_id: "" },
      { ...cjRow, basket_id: "8", household_id: "", product_id: "13094913" },
    ].map((row, index) => ({ mapped: mapOrderRow(completeJourneyOrders, row, lookups), line: index + 2 }));
    const { orders, stats } = groupOrderLines(rows);
    expect(orders.map((grouped) => [grouped.order.id, grouped.order.identifiers, grouped.order.lines.length])).toEqual([
      ["cj-7", { loyalty: "CJ-0402" }, 2],
    ]);
    expect(stats).toMatchObject({
      anonymousOrders: 1,
      firstAnonymous: { orderId: "cj-8", line: 4 },
      headerConflicts: 0,
    });
  });

  it("counts rows whose order id is reused by another store or customer, naming the first and its fields", () => {
    const rows = [
      { ...cjRow, basket_id: "1" },
      { ...cjRow, basket_id: "1", product_id: "13094913" },
      { ...cjRow, basket_id: "1", household_id: "401", store_id: "389" },
      { ...cjRow, basket_id: "1", transaction_timestamp: "2017-02-19T10:00:00-0500" },
      // Order columns left empty on a later line, as many exports write them: no difference.
      { ...cjRow, basket_id: "1", household_id: "", store_id: "" },
    ].map((row, index) => ({ mapped: mapOrderRow(completeJourneyOrders, row, lookups), line: index + 2 }));
    const { orders, stats } = groupOrderLines(rows);
    expect(orders).toHaveLength(1);
    expect(orders[0]?.order.storeId).toBe("cj-store-388");
    expect(stats.headerConflicts).toBe(2);
    expect(stats.firstConflict).toEqual({ orderId: "cj-1", line: 4, firstLine: 2, fields: ["storeId", "identifiers"] });
  });

  it("counts a row repeated exactly wherever it falls, keeps it as a line unless asked to drop it, and never confuses another line of the order with one", () => {
    const rows = [
      { ...cjRow, basket_id: "1" },
      { ...cjRow, basket_id: "1", product_id: "13094913", week: "9" }, // a column the mapping does not read differs: another line
      { ...cjRow, basket_id: "2" },
      { ...cjRow, basket_id: "1" }, // the file's first row again, after another order
      { ...cjRow, basket_id: "2", quantity: "0" },
      { ...cjRow, basket_id: "2", quantity: "0" }, // a skipped row repeated: skipped, not a repeat
      { ...cjRow, basket_id: "2" },
      { ...cjRow, basket_id: "1" },
    ].map((row, index) => ({
      mapped: mapOrderRow(completeJourneyOrders, row, lookups),
      line: index + 2,
      rowKey: rowKeyOf(row),
    }));
    const kept = groupOrderLines(rows);
    expect(kept.orders.map((grouped) => [grouped.order.id, grouped.order.lines.length, grouped.lines])).toEqual([
      ["cj-1", 4, [2, 3, 5, 9]],
      ["cj-2", 2, [4, 6, 7, 8]],
    ]);
    expect(kept.stats).toMatchObject({
      repeatedRows: 3,
      ordersWithRepeats: 2,
      firstRepeat: { orderId: "cj-1", line: 5, firstLine: 2 },
      skippedLines: 2,
      headerConflicts: 0,
    });
    const dropped = groupOrderLines(rows, { dropRepeatedRows: true });
    expect(dropped.orders.map((grouped) => [grouped.order.id, grouped.order.lines.length, grouped.lines])).toEqual([
      ["cj-1", 2, [2, 3]],
      ["cj-2", 1, [4, 6, 7]],
    ]);
    expect(dropped.stats).toMatchObject({ rows: 8, repeatedRows: 3, ordersWithRepeats: 2 });
    // Without row keys (a caller that has no cells to compare) no row is a repeat.
    expect(groupOrderLines(rows.map(({ mapped, line }) => ({ mapped, line }))).stats.repeatedRows).toBe(0);
  });
});

describe("completejourney products", () => {
  it("prices a product at the median observed shelf price and names it readably", () => {
    const observed = collectListPrices(
      [
        cjRow,
        { ...cjRow, sales_value: "15.87" },
        { ...cjRow, quantity: "1", sales_value: "6.00", retail_disc: "0", coupon_disc: "0", coupon_match_disc: "0" },
      ],
      lookups,
    );
    expect(observed.get("cj-13094913")).toEqual([7.76, 9.76, 6]);
    const product = completeJourneyProduct(
      {
        product_id: "13094913",
        department: "GROCERY",
        brand: "Private",
        product_category: "BAKED BREAD/BUNS/ROLLS",
        product_type: "DIET/LIGHT BREAD",
        package_size: "16  OZ",
      },
      observed,
    );
    expect(product).toEqual({
      id: "cj-13094913",
      title: "Store brand Diet/Light Bread (16 OZ)",
      categoryId: "baked-bread-buns-rolls",
      categoryName: "Baked Bread/Buns/Rolls",
      parentCategoryId: "grocery",
      url: null,
      imageUrl: null,
      listPrice: 7.76,
      salePrice: null,
      inStock: true,
    });
    expect(completeJourneyProduct({ product_id: "999" }, observed)).toBeNull();
    expect(medianOf([3, 1, 2, 10])).toBe(2.5);
  });
});

describe("batchesOf", () => {
  const collect = async <T>(source: AsyncIterable<T[]>) => {
    const out: T[][] = [];
    for await (const batch of source) out.push(batch);
    return out;
  };

  it("cuts full batches and a remainder, from sync or async sources", async () => {
    expect((await collect(batchesOf([1, 2, 3, 4, 5], 2))).map((batch) => batch.length)).toEqual([2, 2, 1]);
    async function* numbers() {
      for (let i = 0; i < 4; i++) yield i;
    }
    expect(await collect(batchesOf(numbers(), 4))).toEqual([[0, 1, 2, 3]]);
    await expect(collect(batchesOf([1], 1001))).rejects.toThrow(/1–1000/);
    await expect(collect(batchesOf([1], 0))).rejects.toThrow(/1–1000/);
  });

  it("cuts a batch before a record whose key the batch holds with other content, not before an exact copy", async () => {
    const clash = { key: (pair: [string, number]) => pair[0], content: (pair: [string, number]) => String(pair[1]) };
    const pairs: [string, number][] = [
      ["a", 1],
      ["b", 1],
      ["a", 1],
      ["a", 2],
      ["c", 1],
      ["b", 2],
      ["d", 1],
    ];
    const batches = await collect(batchesOf(pairs, 5, undefined, clash));
    // The batch begun at the clash says so (a run sends it once the batch before is answered).
    expect(batches.map((batch) => (batch as { afterClash?: true }).afterClash === true)).toEqual([false, true]);
    expect(batches.map((batch) => [...batch])).toEqual([
      [
        ["a", 1],
        ["b", 1],
        ["a", 1],
      ],
      [
        ["a", 2],
        ["c", 1],
        ["b", 2],
        ["d", 1],
      ],
    ]);
  });

  it("also cuts a batch before the record that would take it past the weight cap", async () => {
    const weight = { weigh: (n: number) => n, max: 10 };
    expect(await collect(batchesOf([4, 4, 4, 1, 1, 12, 3, 3, 3, 3], 3, weight))).toEqual([
      [4, 4],
      [4, 1, 1],
      [12],
      [3, 3, 3],
      [3],
    ]);
  });
});

describe("resumable state", () => {
  it("compacts out-of-order confirmations into a prefix and adds totals", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const totals = { ...emptyTotals(), records: 10, accepted: 8, duplicates: 2 };
    let state = emptyState("f", "file", now);
    for (const index of [2, 0, 4]) state = confirmBatch(state, index, totals, now);
    expect([state.confirmedThrough, state.confirmedAbove]).toEqual([1, [2, 4]]);
    expect([0, 1, 2, 3, 4].map((index) => isConfirmed(state, index))).toEqual([true, false, true, false, true]);
    state = confirmBatch(state, 1, totals, now);
    state = confirmBatch(state, 1, totals, now); // idempotent: counted once
    expect([state.confirmedThrough, state.confirmedAbove, countConfirmed(state)]).toEqual([3, [4], 4]);
    expect(state.totals).toEqual({
      records: 40,
      accepted: 32,
      duplicates: 8,
      changed: 0,
      suppressed: 0,
      upserted: 0,
      ignoredIdentifiers: 0,
    });
  });

  it("loads a state file written before a total existed with that total at 0, and resumes adding to it", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const directory = mkdtempSync(path.join(tmpdir(), "patron-state-"));
    try {
      const file = path.join(directory, "import-orders-0123.json");
      // As the previous version wrote it: no `suppressed` among the totals.
      const old = {
        version: 1,
        fingerprint: "f",
        source: "/data/orders.ndjson",
        confirmedThrough: 2,
        confirmedAbove: [],
        totals: { records: 20, accepted: 15, duplicates: 5, upserted: 0, ignoredIdentifiers: 1 },
        updatedAt: now.toISOString(),
      };
      writeFileSync(file, JSON.stringify(old));
      const loaded = loadState(file);
      expect(loaded?.totals).toEqual({ ...old.totals, suppressed: 0, changed: 0 });
      const resumed = confirmBatch(
        loaded as NonNullable<typeof loaded>,
        2,
        { ...emptyTotals(), records: 10, accepted: 6, duplicates: 1, suppressed: 3 },
        now,
      );
      expect(resumed.totals).toEqual({
        records: 30,
        accepted: 21,
        duplicates: 6,
        changed: 0,
        suppressed: 3,
        upserted: 0,
        ignoredIdentifiers: 1,
      });
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it("finds the imports earlier queued runs of the same file created and confirmed nothing of, newest first", () => {
    const directory = mkdtempSync(path.join(tmpdir(), "patron-state-"));
    try {
      const at = (iso: string) => new Date(iso);
      const write = (name: string, state: unknown) => writeFileSync(path.join(directory, name), JSON.stringify(state));
      const base = emptyState("f", "/data/orders.ndjson", at("2026-01-01T00:00:00Z"));
      write("import-orders-a.json", { ...base, importId: "imp_old" });
      write("import-orders-b.json", { ...base, importId: "imp_new", updatedAt: "2026-01-02T00:00:00Z" });
      write("import-orders-c.json", { ...base, importId: "imp_other", source: "/data/other.ndjson" });
      write("import-orders-d.json", {
        ...confirmBatch(base, 0, emptyTotals(), at("2026-01-03")),
        importId: "imp_used",
      });
      write("import-orders-e.json", base);
      write("import-products-f.json", { ...base, importId: "imp_products" });
      write("import-orders-g.json", "not a state");
      const explicit = path.join(directory, "mine.json");
      write("mine.json", { ...base, importId: "imp_explicit", updatedAt: "2025-12-31T00:00:00Z" });
      expect(unconfirmedImports(directory, "/data/orders.ndjson", explicit)).toEqual([
        "imp_new",
        "imp_old",
        "imp_explicit",
      ]);
      expect(unconfirmedImports(path.join(directory, "none"), "/data/orders.ndjson")).toEqual([]);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it("fingerprints what decides batch contents", () => {
    const base = { file: "/a.csv", size: 10, batchSize: 500 };
    expect(fingerprintOf(base)).toBe(fingerprintOf({ ...base }));
    expect(fingerprintOf(base)).not.toBe(fingerprintOf({ ...base, batchSize: 250 }));
  });
});

/** A scripted server: each call takes the next response (a status and body, or a thrown network error). */
function fakeServer(
  script: Array<{ status: number; body?: unknown; headers?: Record<string, string> } | "network-error">,
) {
  const calls: { url: string; body: unknown; auth: string | null }[] = [];
  const fetchImpl = (async (url: string, init: RequestInit) => {
    calls.push({ url, body: JSON.parse(String(init.body)), auth: new Headers(init.headers).get("Authorization") });
    const step = script.shift() ?? { status: 200, body: { data: { accepted: 0, duplicates: 0 } } };
    if (step === "network-error") throw new TypeError("fetch failed");
    return new Response(JSON.stringify(step.body ?? {}), { status: step.status, headers: step.headers });
  }) as typeof fetch;
  return { calls, fetchImpl };
}

function client(fetchImpl: typeof fetch, sleeps: number[] = []) {
  return new IngestClient({
    url: "http://worker.test/",
    apiKey: "k",
    fetch: fetchImpl,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    retry: { maxAttempts: 4 },
  });
}

describe("IngestClient", () => {
  it("retries network errors, 429 and 5xx with growing jittered delays, honouring Retry-After", async () => {
    const sleeps: number[] = [];
    const { calls, fetchImpl } = fakeServer([
      "network-error",
      { status: 503 },
      { status: 429, headers: { "Retry-After": "7" } },
      { status: 200, body: { data: { accepted: 3, duplicates: 0 } } },
    ]);
    const result = await client(fetchImpl, sleeps).post("/v1/orders", { orders: [] });
    expect(result).toEqual({ data: { accepted: 3, duplicates: 0 }, attempts: 4, storedBeforeRetry: [] });
    expect(sleeps).toEqual([250, 500, 7000]);
    expect(calls[0]).toEqual({ url: "http://worker.test/v1/orders", body: { orders: [] }, auth: "Bearer k" });
  });

  it("never retries a 400 and hands back the server's issues", async () => {
    const { calls, fetchImpl } = fakeServer([
      {
        status: 400,
        body: {
          error: {
            code: "invalid_request",
            message: "bad",
            requestId: "r1",
            issues: [{ path: ["orders", 1, "placedAt"], message: "is in the future" }],
          },
        },
      },
    ]);
    const error = await client(fetchImpl)
      .post("/v1/orders", {})
      .catch((caught) => caught);
    expect(error).toBeInstanceOf(BatchRejected);
    expect(error).toMatchObject({
      requestId: "r1",
      issues: [{ path: ["orders", 1, "placedAt"], message: "is in the future" }],
    });
    expect(calls).toHaveLength(1);
  });

  it("stops at once on a wrong key and gives up after the last attempt", async () => {
    const wrongKey = fakeServer([{ status: 401, body: { error: { message: "Missing or invalid API key." } } }]);
    await expect(client(wrongKey.fetchImpl).post("/v1/orders", {})).rejects.toThrow(/HTTP 401 .*check --key/);
    expect(wrongKey.calls).toHaveLength(1);
    // A key found elsewhere (adminKeyFrom) is named where it was found.
    const fromFile = new IngestClient({
      url: "http://worker.test/",
      apiKey: "k",
      keyFrom: ".dev.vars",
      fetch: fakeServer([{ status: 401, body: { error: { message: "Missing or invalid API key." } } }]).fetchImpl,
    });
    await expect(fromFile.post("/v1/orders", {})).rejects.toThrow(/HTTP 401 .*\(check \.dev\.vars\)$/);
    const down = fakeServer([{ status: 500 }, { status: 502 }, { status: 503 }, { status: 504 }, { status: 200 }]);
    const error = await client(down.fetchImpl)
      .post("/v1/orders", {})
      .catch((caught) => caught);
    expect(error).toBeInstanceOf(IngestFailed);
    expect(String(error.message)).toMatch(/gave up after 4 attempts \(last: HTTP 504\)$/);
    // Nothing listening: the hint says what to check; a worker that answered gets none.
    const hinted = (fetchImpl: typeof fetch) =>
      new IngestClient({
        url: "http://worker.test/",
        apiKey: "k",
        fetch: fetchImpl,
        sleep: async () => {},
        retry: { maxAttempts: 2 },
        unreachableHint: "Is the worker running there?",
      }).post("/v1/orders", {});
    const refused = (async () => {
      throw new TypeError("fetch failed");
    }) as typeof fetch;
    await expect(hinted(refused)).rejects.toThrow(
      /gave up after 2 attempts \(last: TypeError: fetch failed\)\. Is the worker running there\?$/,
    );
    await expect(hinted(fakeServer([{ status: 503 }, { status: 503 }]).fetchImpl)).rejects.toThrow(
      /\(last: HTTP 503\)$/,
    );
  });

  it("keeps backoff within [0, min(cap, base·2^(n-1))]", () => {
    expect(backoffDelay(1, defaultRetryPolicy, () => 0.999)).toBeLessThanOrEqual(500);
    expect(backoffDelay(4, defaultRetryPolicy, () => 1)).toBe(4000);
    expect(backoffDelay(20, defaultRetryPolicy, () => 1)).toBe(defaultRetryPolicy.maxDelayMs);
    expect(backoffDelay(3, defaultRetryPolicy, () => 0)).toBe(0);
    expect(retryAfterMs("2", 0)).toBe(2000);
    expect(retryAfterMs("Thu, 01 Jan 1970 00:00:05 GMT", 1000)).toBe(4000);
    expect(retryAfterMs(null, 0)).toBeNull();
  });
});

function records(count: number): SourceRecord<WireOrder>[] {
  return Array.from({ length: count }, (_, index) => ({
    value: {
      id: `o-${index}`,
      channel: "web",
      storeId: null,
      placedAt: "2026-01-01T00:00:00Z",
      currency: "USD",
      identifiers: { account: `u-${index}` },
      lines: [{ productId: "p", categoryId: "c", quantity: 1, unitPrice: 1, listPrice: 1 }],
      recommendationId: null,
    },
    lines: [index + 2, index + 3],
  }));
}

describe("runImport", () => {
  it("posts every batch, sums the server's counts and skips batches an earlier run confirmed", async () => {
    const ok = (accepted: number) => ({
      status: 200,
      body: { data: { accepted, duplicates: 3 - accepted, ignoredIdentifiers: [{}] } },
    });
    const first = fakeServer([ok(3), ok(3), ok(1)]);
    const states: number[] = [];
    const result = await runImport({
      kind: "orders",
      records: records(7),
      client: client(first.fetchImpl),
      batchSize: 3,
      concurrency: 1,
      state: emptyState("f", "file", new Date()),
      onState: (state) => states.push(countConfirmed(state)),
    });
    expect(first.calls.map((call) => (call.body as { orders: unknown[] }).orders.length)).toEqual([3, 3, 1]);
    expect(result.totals).toEqual({
      records: 7,
      accepted: 7,
      duplicates: 2,
      changed: 0,
      suppressed: 0,
      upserted: 0,
      ignoredIdentifiers: 3,
    });
    // Saved as each batch is posted (ImportState.posted), then as it is confirmed.
    expect(states).toEqual([0, 1, 1, 2, 2, 3]);

    const partial = confirmBatch(emptyState("f", "file", new Date()), 1, emptyTotals(), new Date());
    const second = fakeServer([ok(0), ok(0)]);
    const resumed = await runImport({
      kind: "orders",
      records: records(7),
      client: client(second.fetchImpl),
      batchSize: 3,
      state: partial,
    });
    expect(second.calls.map((call) => (call.body as { orders: { id: string }[] }).orders[0]?.id)).toEqual([
      "o-0",
      "o-6",
    ]);
    expect([resumed.batches, resumed.skippedBatches, resumed.records]).toEqual([2, 1, 7]);
    expect(resumed.state && countConfirmed(resumed.state)).toBe(3);
  });

  it("sends an order id reused with other content in a batch after the first, wherever the batches would cut", async () => {
    // The API refuses a batch holding one id twice with other content (400), and answers the later copy
    // as a changed duplicate when it comes in a later batch: the file's outcome must not depend on which.
    const [first, second, third] = records(3);
    const reused = { ...third!, value: { ...third!.value, id: " o-0", placedAt: "2026-02-01T00:00:00Z" } };
    const copy = { ...first!, lines: [9, 10] };
    const server = fakeServer([]);
    await runImport({
      kind: "orders",
      records: [first!, second!, copy, reused, third!],
      client: client(server.fetchImpl),
      batchSize: 1000,
      concurrency: 1,
    });
    expect(
      server.calls.map((call) => (call.body as { orders: { id: string }[] }).orders.map((order) => order.id)),
    ).toEqual([
      ["o-0", "o-1", "o-0"],
      [" o-0", "o-2"],
    ]);
  });

  it("sends the batch after an order id's other copy only once the batches before it are answered", async () => {
    // Two batches in flight at once may be stored in either order: the first copy must be the one stored.
    const [first, second, third] = records(3);
    const reused = { ...third!, value: { ...third!.value, id: "o-0", placedAt: "2026-02-01T00:00:00Z" } };
    const events: string[] = [];
    const fetchImpl = (async (_url: string, init: RequestInit) => {
      const ids = (JSON.parse(String(init.body)) as { orders: { id: string }[] }).orders.map((order) => order.id);
      events.push(`post ${ids}`);
      // The first batch's answer is slow, as one retried after a 503 would be.
      if (ids[0] === "o-0" && ids[1] === "o-1") await new Promise((resolve) => setTimeout(resolve, 50));
      events.push(`answer ${ids}`);
      return new Response(JSON.stringify({ data: { accepted: ids.length, duplicates: 0, ignoredIdentifiers: [] } }));
    }) as typeof fetch;
    await runImport({
      kind: "orders",
      records: [first!, second!, reused, third!],
      client: client(fetchImpl),
      batchSize: 1000,
      concurrency: 2,
    });
    expect(events).toEqual(["post o-0,o-1", "answer o-0,o-1", "post o-0,o-2", "answer o-0,o-2"]);
  });

  it("after a run stopped with a batch in flight, counts as this import's only the first copy of an id", async () => {
    // The rerun finds the stopped run's orders stored: theirs, accepted; an exact copy in the file is a
    // duplicate of its own first copy, as in a run that was never stopped.
    const [first, second] = records(2);
    const posted = markPosted(emptyState("f", "file", new Date()), 0, new Date());
    const server = fakeServer([
      {
        status: 200,
        body: {
          data: {
            accepted: 0,
            duplicates: 3,
            results: ["o-0", "o-0", "o-1"].map((id) => ({ id, customerId: null, status: "duplicate", changed: false })),
            ignoredIdentifiers: [],
          },
        },
      },
    ]);
    const result = await runImport({
      kind: "orders",
      records: [first!, { ...first!, lines: [9, 10] }, second!],
      client: client(server.fetchImpl),
      batchSize: 1000,
      state: posted,
    });
    expect(result.totals).toMatchObject({ records: 3, accepted: 2, duplicates: 1 });
    expect(result.state?.posted).toEqual([]);
  });

  it("drops a batch the server refused whole from those posted: it stored none of it", async () => {
    const server = fakeServer([
      { status: 400, body: { error: { message: "Invalid request body", requestId: "r1", issues: [] } } },
    ]);
    const error = await runImport({
      kind: "orders",
      records: records(2),
      client: client(server.fetchImpl),
      batchSize: 1000,
      state: emptyState("f", "file", new Date()),
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ImportStopped);
    expect((error as ImportStopped).result.state?.posted).toEqual([]);
  });

  it("counts the orders the server suppressed (an erased customer's) into the totals and the state", async () => {
    const server = fakeServer([
      { status: 200, body: { data: { accepted: 1, duplicates: 1, suppressed: 1, ignoredIdentifiers: [] } } },
      { status: 200, body: { data: { accepted: 0, duplicates: 0, suppressed: 1, ignoredIdentifiers: [] } } },
    ]);
    const result = await runImport({
      kind: "orders",
      records: records(4),
      client: client(server.fetchImpl),
      batchSize: 3,
      concurrency: 1,
      state: emptyState("f", "file", new Date()),
    });
    expect(result.totals).toMatchObject({ records: 4, accepted: 1, duplicates: 1, suppressed: 2 });
    expect(result.state?.totals).toMatchObject({ records: 4, accepted: 1, duplicates: 1, suppressed: 2 });
  });

  it("stops at a rejected batch, maps issues to input lines, and keeps earlier confirmations", async () => {
    const server = fakeServer([
      { status: 200, body: { data: { accepted: 2, duplicates: 0 } } },
      {
        status: 400,
        body: {
          error: {
            message: "Invalid request body",
            requestId: "r9",
            issues: [{ path: ["orders", 1, "lines", 0, "quantity"], message: "must be positive" }],
          },
        },
      },
    ]);
    const error = await runImport({
      kind: "orders",
      records: records(6),
      client: client(server.fetchImpl),
      batchSize: 2,
      concurrency: 1,
      state: emptyState("f", "file", new Date()),
    }).catch((caught) => caught);
    expect(error).toBeInstanceOf(ImportStopped);
    expect(error.batchIndex).toBe(1);
    expect(error.issues).toEqual([
      { lines: [5, 6], recordId: "o-3", path: ["lines", 0, "quantity"], message: "must be positive" },
    ]);
    expect(error.result.state.confirmedThrough).toBe(1);
    expect(server.calls).toHaveLength(2);
  });

  it("stops when the input cannot be read further, once the batches in flight are confirmed", async () => {
    async function* brokenAfter(count: number) {
      yield* records(count);
      throw new InputError(`orders.ndjson:${count + 1}: not valid JSON (Unexpected end of JSON input)`, count + 1);
    }
    const slowFetch = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return new Response(JSON.stringify({ data: { accepted: 2, duplicates: 0 } }));
    }) as unknown as typeof fetch;
    const error = await runImport({
      kind: "orders",
      records: brokenAfter(4),
      client: client(slowFetch),
      batchSize: 2,
      concurrency: 2,
      state: emptyState("f", "file", new Date()),
    }).catch((caught) => caught);
    expect(error).toBeInstanceOf(ReadStopped);
    expect(error.message).toBe("orders.ndjson:5: not valid JSON (Unexpected end of JSON input)");
    expect(error.reason).toBeInstanceOf(InputError);
    expect([error.result.batches, error.result.totals.accepted]).toEqual([2, 4]);
    expect(error.result.state.confirmedThrough).toBe(2);
  });

  it("keeps several batches in flight when asked", async () => {
    let inFlight = 0;
    let peak = 0;
    const slowFetch = (async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      return new Response(JSON.stringify({ data: { accepted: 1, duplicates: 0 } }));
    }) as unknown as typeof fetch;
    const result = await runImport({
      kind: "orders",
      records: records(8),
      client: client(slowFetch),
      batchSize: 1,
      concurrency: 3,
    });
    expect(peak).toBe(3);
    expect(result.batches).toBe(8);
  });

  it("locates issues outside any record by path only", () => {
    expect(locateIssues([{ path: ["orders"], message: "send at most 1,000" }], records(1), "orders")).toEqual([
      { lines: [], recordId: null, path: ["orders"], message: "send at most 1,000" },
    ]);
  });
});

describe("readNdjson", () => {
  const read = async (text: string) => {
    const dir = mkdtempSync(path.join(tmpdir(), "patron-ndjson-"));
    const file = path.join(dir, "orders.json");
    writeFileSync(file, text);
    try {
      const records: unknown[] = [];
      for await (const record of readNdjson(file)) records.push(record.value);
      return records;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("reads one object a line, with blank lines between", async () => {
    expect(await read('{"id":"a"}\n\n{"id":"b"}\n')).toEqual([{ id: "a" }, { id: "b" }]);
  });

  it("says a JSON array is not NDJSON and how to convert it, whether on one line or many", async () => {
    for (const text of ['[{"id":"a"},{"id":"b"}]\n', '\n[\n  {"id":"a"}\n]\n']) {
      const error = await read(text).catch((caught) => caught);
      expect(error).toBeInstanceOf(InputError);
      expect(error.message).toMatch(
        /orders\.json:\d: a JSON array; patron import reads NDJSON, one JSON object per line/,
      );
      expect(error.message).toContain("jq -c '.[]'");
    }
  });

  it("stops at a line that is JSON but not an object", async () => {
    const error = await read('{"id":"a"}\n"b"\n').catch((caught) => caught);
    expect(error.message).toMatch(/orders\.json:2: not a JSON object \(one record per line\)$/);
  });
});

describe("the closing summary", () => {
  const result = (skippedBatches: number) => ({
    records: 10,
    skippedRecords: 0,
    batches: 1,
    skippedBatches,
    retries: 0,
    totals: { ...emptyTotals(), records: 10, accepted: 10 },
    changedIds: [],
    elapsedMs: 1000,
    state: {
      ...emptyState("f", "file", new Date()),
      confirmedThrough: 3,
      totals: { ...emptyTotals(), records: 30, accepted: 28, duplicates: 2 },
    },
  });

  it("says what this run sent and, after a resume, what every run confirmed in all", () => {
    const lines = summaryLines("orders", result(2));
    expect(lines[0]).toBe("orders sent        10 (10/s) in this run");
    expect(lines).toContain(
      "in all             30 orders in 3 batches: 28 accepted, 2 duplicates, 0 suppressed (this run and earlier ones)",
    );
    expect(summaryLines("orders", result(0)).some((line) => line.startsWith("in all"))).toBe(false);
    expect(summaryLines("orders", result(0))[0]).toBe("orders sent        10 (10/s)");
  });
});

describe("countQueuedBatches", () => {
  it("counts the batches a queued run cuts, by count and by size", async () => {
    const small = records(7);
    expect(await countQueuedBatches(small, 3)).toEqual({ records: 7, batches: 3 });
    const heavy = Array.from({ length: 5 }, (_, i) => ({
      value: { id: `h-${i}`, note: "x".repeat(50_000) },
      lines: [i],
    }));
    expect(await countQueuedBatches(heavy, 1000)).toEqual({ records: 5, batches: 3 });
  });
});
