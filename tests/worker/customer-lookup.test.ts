// The console's lookup as a store associate meets it, on both stores (D1, and customer shards in the
// worker-shards project): what it says when it finds nobody or cannot read the value, numbers typed on
// a phone keyboard, and the customer's money shown to cents.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { customerResponseSchema } from "../../worker/customers/customers.schemas.ts";
import { adminKey, anOrder, apiKey, client, uniquePrefix, verified } from "../fixtures/builders.ts";

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

describe("POST /v1/customers/lookup, /v1/customers/holders and /v1/admin/suppressions/lookup", () => {
  const post = (path: string, body: unknown) => api.call("POST", path, body, adminKey);

  it("answer as their GET forms do, with the identifier in the body instead of the URL", async () => {
    const p = uniquePrefix("body");
    const email = `${p}@Inbox.test`;
    const orders = [anOrder({ identifiers: { account: `${p}-acct`, email: verified(email) } })];
    expect((await api.postOrders(orders)).status).toBe(200);
    const byQuery = await api.lookup("email", email);
    const byBody = await post("/v1/customers/lookup", { kind: "email", value: email });
    expect(byBody.status).toBe(200);
    expect(await byBody.json()).toEqual(await byQuery.json());

    const holdersByQuery = await api.call(
      "GET",
      `/v1/customers/holders?kind=email&value=${encodeURIComponent(email)}`,
      undefined,
      adminKey,
    );
    const holdersByBody = await post("/v1/customers/holders", { kind: "email", value: email });
    expect(holdersByBody.status).toBe(200);
    const holders = await holdersByBody.json();
    expect(holders).toEqual(await holdersByQuery.json());
    expect(holders).toMatchObject({ data: { kind: "email", known: true, holders: [{ held: true }] } });

    const onList = await post("/v1/admin/suppressions/lookup", { kind: "email", value: email });
    expect(onList.status).toBe(200);
    expect(await onList.json()).toEqual({ data: { kind: "email", suppressed: false } });
  });

  it("say the same when nobody holds it, and point to the holders' POST form", async () => {
    const p = uniquePrefix("nobody-body");
    const response = await post("/v1/customers/lookup", { kind: "loyalty", value: `${p}-L` });
    expect(response.status).toBe(404);
    expect((await errorOf(response)).message).toBe(
      "No customer holds that loyalty number. Check it was typed in full, or look the customer up by another identifier.",
    );
    // Only ever sent unverified: identifies nobody, and the message names where every record of it is listed.
    const typed = `${p}@guest.test`;
    expect((await api.postOrders([anOrder({ identifiers: { email: typed } })])).status).toBe(200);
    const unverified = await post("/v1/customers/lookup", { kind: "email", value: typed });
    expect(unverified.status).toBe(404);
    expect((await errorOf(unverified)).message).toMatch(
      /see POST \/v1\/customers\/holders with the same kind and value\.$/,
    );
  });

  it("refuse a body that is not the two fields, or a value in the URL as well, with a 400", async () => {
    for (const [path, body] of [
      ["/v1/customers/lookup", { kind: "email" }],
      ["/v1/customers/lookup", { kind: "email", value: "a@b.test", extra: 1 }],
      ["/v1/customers/holders", { kind: "fax", value: "1" }],
      ["/v1/admin/suppressions/lookup", { kind: "email", value: "" }],
    ] as const) {
      const response = await post(path, body);
      expect(response.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect((await errorOf(response)).code).toBe("invalid_request");
    }
    const withQuery = await api.call(
      "POST",
      "/v1/customers/lookup?kind=email&value=a%40b.test",
      { kind: "email", value: "a@b.test" },
      adminKey,
    );
    expect(withQuery.status).toBe(400);
    // Admin key only, as the GET forms: no key, or the ingestion key, is a 401.
    for (const path of ["/v1/customers/lookup", "/v1/customers/holders", "/v1/admin/suppressions/lookup"])
      for (const key of [null, apiKey]) {
        const response = await api.call("POST", path, { kind: "email", value: "a@b.test" }, key);
        expect(response.status, `${path} ${key ?? "no key"}`).toBe(401);
      }
  });
});
