// The console's lookup as a store associate meets it, on both stores (D1, and customer shards in the
// worker-shards project): what it says when it finds nobody or cannot read the value, numbers typed on
// a phone keyboard, and the customer's money shown to cents.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { customerResponseSchema } from "../../worker/customers/customers.schemas.ts";
import { anOrder, client, uniquePrefix, verified } from "../fixtures/builders.ts";

const api = client(SELF);

async function errorOf(response: Response) {
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

describe("GET /v1/customers/lookup", () => {
  it("names the kind in words when it finds nobody, and says what to try next", async () => {
    const p = uniquePrefix("nobody");
    for (const [kind, value, name] of [
      ["email", `${p}@inbox.test`, "email address"],
      ["phone", "+1 415 555 0199", "phone number"],
      ["loyalty", `${p}-L`, "loyalty number"],
      ["account", `${p}-acct`, "web account"],
    ]) {
      const response = await api.lookup(kind as string, value as string);
      expect(response.status).toBe(404);
      expect(await errorOf(response)).toMatchObject({
        code: "not_found",
        message: `No customer holds that ${name}. Check it was typed in full, or look the customer up by another identifier.`,
      });
    }
  });

  it("says a phone number without a country code was read in the default region, and asks for +44 …", async () => {
    const local = await api.lookup("phone", "07911 123456");
    expect(local.status).toBe(400);
    expect(await errorOf(local)).toMatchObject({
      code: "invalid_request",
      message:
        "That phone number is not usable as an identifier: phone number too long for the default region, US " +
        "(a number without a country code is read as one from there); write a number from another country with + " +
        "and its country code, such as +44 for the UK.",
    });
    // A number that gives its country is judged in that country, not in the default region.
    const international = await api.lookup("phone", "+44 7911 12345");
    expect(international.status).toBe(400);
    expect((await errorOf(international)).message).toBe(
      "That phone number is not usable as an identifier: not a valid phone number for country code +44.",
    );
  });

  it("finds a loyalty number typed with en dashes and no-break spaces, as phone keyboards type it", async () => {
    const p = uniquePrefix("dash").toUpperCase();
    expect(
      (await api.postOrders([anOrder({ channel: "store", identifiers: { loyalty: `LY-${p}-0002` } })])).status,
    ).toBe(200);
    const found = await api.lookup("loyalty", `LY-${p}-0002`);
    expect(found.status).toBe(200);
    const { customerId } = customerResponseSchema.parse(await found.json()).data;
    for (const typed of [
      `LY–${p}–0002`,
      `ly—${p.toLowerCase()}—0002`,
      `LY\u00a0${p}\u202f0002`,
      `LY\u2212${p}\u20110002`,
    ]) {
      const response = await api.lookup("loyalty", typed);
      expect(response.status, typed).toBe(200);
      expect(customerResponseSchema.parse(await response.json()).data.customerId).toBe(customerId);
    }
  });
});

describe("GET /v1/customers/:id", () => {
  it("shows the lifetime and category spend and the typical price paid to cents", async () => {
    const p = uniquePrefix("cents");
    const line = (unitPrice: number) => ({ productId: `${p}-sku`, categoryId: `${p}-cat`, quantity: 1, unitPrice });
    // 0.1 + 0.2 is 0.30000000000000004 in floating point, as the summary's sums are.
    const orders = [0.1, 0.2].map((price, k) =>
      anOrder({
        id: `${p}-${k}`,
        placedAt: `2026-03-1${k}T10:00:00Z`,
        identifiers: { account: `${p}-acct`, email: verified(`${p}@mail.test`) },
        lines: [line(price)],
      }),
    );
    expect((await api.postOrders(orders)).status).toBe(200);
    const found = await api.lookup("account", `${p}-acct`);
    const { summary } = customerResponseSchema.parse(await found.json()).data;
    expect(summary?.spend).toBe(0.3);
    expect(summary?.categories).toEqual([expect.objectContaining({ spend: 0.3, typicalPricePaid: 0.15 })]);
  });
});
