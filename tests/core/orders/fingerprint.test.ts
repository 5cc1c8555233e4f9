// An order's content fingerprint: the same content in another spelling compares equal, and a change
// is named by its field, whatever else changed or not.
import { describe, expect, it } from "vitest";
import {
  changedFields,
  type FingerprintOrder,
  fingerprintFields,
  orderFingerprint,
} from "../../../worker/core/orders/fingerprint.ts";

const order: FingerprintOrder = {
  channel: "web",
  storeId: null,
  placedAt: "2026-03-14T10:22:00Z",
  currency: "USD",
  lines: [
    { productId: "sku-1", categoryId: "heels", quantity: 1, unitPrice: 89, listPrice: 120 },
    { productId: "sku-2", categoryId: "bags", quantity: 2, unitPrice: 30 },
  ],
  recommendationId: null,
};
const identities = [
  { key: "account:aa11", trust: "verified" },
  { key: "email:bb22", trust: "unverified" },
];
const stored = orderFingerprint(order, identities);

describe("orderFingerprint", () => {
  it("is 8 hex digits per field, the same for the same content", () => {
    expect(stored).toMatch(new RegExp(`^[0-9a-f]{${8 * fingerprintFields.length}}$`));
    expect(orderFingerprint(structuredClone(order), [...identities])).toBe(stored);
  });

  it("reads content as ingestion stores it: instants, list prices, absent values, order of lines and identifiers", () => {
    const same: FingerprintOrder = {
      channel: "web",
      placedAt: "2026-03-14T11:22:00+01:00",
      currency: "USD",
      lines: [
        { productId: "sku-2", categoryId: "bags", quantity: 2, unitPrice: 30, listPrice: 30 },
        { productId: "sku-1", categoryId: "heels", quantity: 1, unitPrice: 89, listPrice: 120 },
      ],
    };
    const fingerprint = orderFingerprint(same, [...identities].reverse());
    expect(fingerprint).toBe(stored);
    expect(changedFields(stored, fingerprint)).toEqual([]);
  });
});

describe("changedFields", () => {
  it("names each field that differs, in the fields' order", () => {
    const cases: [Partial<FingerprintOrder>, typeof identities, string[]][] = [
      [{ lines: [{ ...order.lines[0]!, unitPrice: 79 }, order.lines[1]!] }, identities, ["lines"]],
      [{ lines: [order.lines[0]!] }, identities, ["lines"]],
      [{}, [...identities, { key: "loyalty:cc33", trust: "verified" }], ["identifiers"]],
      [{}, [identities[0]!, { key: "email:bb22", trust: "verified" }], ["identifiers"]],
      [{ channel: "store", storeId: "s-1" }, identities, ["channel", "storeId"]],
      [{ placedAt: "2026-03-14T10:22:01Z", recommendationId: "r-1" }, identities, ["placedAt", "recommendationId"]],
      [{ currency: "EUR" }, identities, ["currency"]],
    ];
    for (const [change, sentIdentities, fields] of cases)
      expect(changedFields(stored, orderFingerprint({ ...order, ...change }, sentIdentities))).toEqual(fields);
  });

  it("is null (unknown) for an order stored without a fingerprint, or with one of another layout", () => {
    expect(changedFields(null, stored)).toBeNull();
    expect(changedFields(stored.slice(8), stored)).toBeNull();
  });
});
