import { describe, expect, it } from "vitest";
import { normalizeForKey, phoneRegion, toE164 } from "../../../worker/identity/phone.ts";

describe("toE164", () => {
  // Each number written as a local would (national, in the retailer's region) and as a visitor would.
  it.each([
    [
      "GB",
      "+442079460958",
      ["020 7946 0958", "(020) 7946-0958", "+44 20 7946 0958", "0044 20 7946 0958", "+44 (0)20 7946 0958"],
    ],
    ["GB", "+447911123456", ["07911 123456", "+44 7911 123456"]],
    ["FR", "+33142685300", ["01 42 68 53 00", "01.42.68.53.00", "+33 1 42 68 53 00", "0033 1 42 68 53 00"]],
    ["FR", "+33612345678", ["06 12 34 56 78", "+33 6 12 34 56 78"]],
    ["DE", "+4930123456", ["030 123456", "(030) 123 456", "+49 30 123456", "0049 30 123456"]],
    ["DE", "+4915123456789", ["0151 23456789", "+49 151 23456789"]],
    ["IN", "+919876543210", ["98765 43210", "098765 43210", "+91 98765 43210", "0091 98765 43210"]],
    ["JP", "+81312345678", ["03-1234-5678", "(03) 1234-5678", "+81 3-1234-5678", "+81 3 1234 5678"]],
    ["JP", "+819012345678", ["090-1234-5678", "+81 90 1234 5678"]],
    ["US", "+14155550142", ["(415) 555-0142", "415.555.0142", "1-415-555-0142", "+1 415 555 0142"]],
  ] as const)("%s %s from every way of writing it", (region, e164, forms) => {
    for (const form of forms) expect(toE164(form, region), `${form} in ${region}`).toEqual({ ok: true, e164 });
  });

  it("reads international numbers in their own country whatever the default region", () => {
    for (const region of ["US", "GB", "JP"] as const) {
      expect(toE164("+33 1 42 68 53 00", region)).toEqual({ ok: true, e164: "+33142685300" });
      expect(toE164("+91 98765 43210", region)).toEqual({ ok: true, e164: "+919876543210" });
    }
  });

  it("reads a tel: link's number (RFC 3966), with its extension dropped as a typed one's is", () => {
    for (const form of [
      "tel:+1-212-736-5000",
      "TEL:+1-212-736-5000",
      "tel:+1-212-736-5000;ext=12",
      " tel:2127365000",
      "tel: 001 212 736 5000",
    ])
      expect(toE164(form, "US"), form).toEqual({ ok: true, e164: "+12127365000" });
    expect(toE164("tel:+1-211-555-1234", "US")).toMatchObject({ ok: false });
  });

  it("reads a national number in the default region, so the same digits differ by country", () => {
    expect(toE164("020 7946 0958", "GB")).toEqual({ ok: true, e164: "+442079460958" });
    expect(toE164("020 7946 0958", "US")).toMatchObject({ ok: false });
  });

  it.each([
    ["555", "US", /too short/],
    ["+1 211 555 1234", "US", /^not a valid phone number for country code \+1$/],
    ["123456789012345678", "GB", /too long/],
    ["phone me", "US", /not a phone number/],
    ["+44 20 7946", "US", /not a valid|too short/],
    ["00 00", "FR", /not a phone number|too short|country/],
  ] as const)("refuses %j in %s with a reason", (raw, region, reason) => {
    const result = toE164(raw, region);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});

describe("toE164's reasons", () => {
  const readInRegion = (region: string, elsewhere: string) =>
    `for the default region, ${region} (a number without a country code is read as one from there); ` +
    `write a number from another country with + and its country code, such as ${elsewhere}`;

  it("says a national number was read in the default region, and asks for the international form", () => {
    // A UK mobile typed the local way in a US shop: too long for a US number, not "too long" alone.
    expect(toE164("07911 123456", "US")).toEqual({
      ok: false,
      reason: `phone number too long ${readInRegion("US", "+44 for the UK")}`,
    });
    expect(toE164("030 123456", "US")).toEqual({
      ok: false,
      reason: `phone number too short ${readInRegion("US", "+44 for the UK")}`,
    });
    expect(toE164("211 555 1234", "US")).toEqual({
      ok: false,
      reason: `not a valid phone number ${readInRegion("US", "+44 for the UK")}`,
    });
    expect(toE164("(415) 555-0142", "GB")).toEqual({
      ok: false,
      reason: `not a valid phone number ${readInRegion("GB", "+1 for the US")}`,
    });
  });

  it("names the country a number gives, not the default region", () => {
    for (const raw of ["+44 7911 12345", "0044 7911 12345", "011 44 7911 12345", "+44 1111 111111"])
      expect(toE164(raw, "US"), raw).toEqual({ ok: false, reason: "not a valid phone number for country code +44" });
    expect(toE164("+44 20 7946", "US")).toEqual({ ok: false, reason: "phone number too short for country code +44" });
    expect(toE164("+44 79111 234567", "JP")).toEqual({
      ok: false,
      reason: "phone number too long for country code +44",
    });
    expect(toE164("+999 123 456", "US")).toEqual({ ok: false, reason: "phone number without a known country code" });
  });

  it("reads Unicode dashes and spaces, as phone keyboards type them, like - and space", () => {
    for (const raw of [
      "415–555–0142",
      "415—555—0142",
      "(415)\u2212555\u20100142",
      "415\u2011555\u20120142",
      "415\u00a0555\u202f0142",
      "415\u2009555\u30000142",
      "415\u200b555\u00ad0142",
    ])
      expect(toE164(raw, "US"), JSON.stringify(raw)).toEqual({ ok: true, e164: "+14155550142" });
    expect(toE164("+44\u00a020–7946—0958", "US")).toEqual({ ok: true, e164: "+442079460958" });
  });
});

describe("normalizeForKey", () => {
  it("gives every phone form one key value, and still blocks placeholders", () => {
    expect(normalizeForKey("phone", "0044 20 7946 0958")).toEqual({ ok: true, kind: "phone", value: "+442079460958" });
    expect(normalizeForKey("phone", "020 7946 0958", "GB")).toEqual({
      ok: true,
      kind: "phone",
      value: "+442079460958",
    });
    expect(normalizeForKey("phone", "n/a")).toEqual({ ok: false, kind: "phone", reason: "placeholder value" });
    expect(normalizeForKey("phone", "0000000000").ok).toBe(false);
    expect(normalizeForKey("phone", "1234567890").ok).toBe(false);
  });

  it("leaves other kinds to core's rules", () => {
    expect(normalizeForKey("email", " A@B.test ")).toEqual({ ok: true, kind: "email", value: "a@b.test" });
  });
});

describe("phoneRegion", () => {
  it("takes a known ISO country in any case, and falls back to US otherwise", () => {
    expect(phoneRegion(undefined)).toBe("US");
    expect(phoneRegion("gb")).toBe("GB");
    expect(phoneRegion(" JP ")).toBe("JP");
    expect(phoneRegion("Narnia")).toBe("US");
  });
});
