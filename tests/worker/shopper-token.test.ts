// The shopper-token matrix: every refusal reason and the accepted cases (previous secret during a
// rotation, the clock-skew edges, the lifetime cap), first against the verifier at a fixed clock, then
// through the real worker, whose 401 names the reason. Tokens are built here by hand with Web Crypto,
// independently of the worker's signer, so a test can put anything in a header, payload or signature.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import {
  signShopperToken,
  type TokenRefusal,
  tokenRefusalMessages,
  verifyShopperToken,
} from "../../worker/http/shopper-token.ts";

const secret = "token-matrix-secret";
const previous = "token-matrix-previous";
const nowSeconds = 1_780_000_000;
const now = new Date(nowSeconds * 1000);

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
const segment = (value: unknown) => base64url(new TextEncoder().encode(JSON.stringify(value)));

async function hmac(key: string, text: string): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, new TextEncoder().encode(text)));
}

interface Craft {
  header?: Record<string, unknown>;
  key?: string;
  /** Rewrites the signature's text after signing (padding, non-canonical characters...). */
  signature?: (text: string) => string;
}

async function craft(payload: Record<string, unknown>, options: Craft = {}): Promise<string> {
  const head = `${segment(options.header ?? { alg: "HS256", typ: "JWT" })}.${segment(payload)}`;
  const signature = base64url(await hmac(options.key ?? secret, head));
  return `${head}.${options.signature ? options.signature(signature) : signature}`;
}

/** A signature whose last character differs only in the bits base64url leaves unused (32 bytes → 43 chars, 2 spare bits). */
function nonCanonicalLast(text: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const last = alphabet.indexOf(text.at(-1) ?? "A");
  return text.slice(0, -1) + alphabet[last ^ 1];
}

const valid = { sub: "shopper-1", iat: nowSeconds - 10, exp: nowSeconds + 3600 };

describe("verifyShopperToken at a fixed clock", () => {
  const refusals: [string, () => Promise<string>, TokenRefusal][] = [
    ["not three parts", async () => "hello", "malformed"],
    ["four parts", async () => `${await craft(valid)}.x`, "malformed"],
    ["a header that is not JSON", async () => `bm9wZQ.${segment(valid)}.${"A".repeat(43)}`, "malformed"],
    ["an over-long token", async () => craft({ ...valid, pad: "x".repeat(5000) }), "malformed"],
    ["alg none", async () => craft(valid, { header: { alg: "none" } }), "unsupported_algorithm"],
    ["alg HS512", async () => craft(valid, { header: { alg: "HS512" } }), "unsupported_algorithm"],
    ["alg RS256", async () => craft(valid, { header: { alg: "RS256" } }), "unsupported_algorithm"],
    ["a crit header", async () => craft(valid, { header: { alg: "HS256", crit: ["exp"] } }), "unsupported_algorithm"],
    ["another secret", async () => craft(valid, { key: "someone-elses-secret" }), "bad_signature"],
    ["an empty signature", async () => craft(valid, { signature: () => "" }), "bad_signature"],
    ["a padded signature", async () => craft(valid, { signature: (text) => `${text}=` }), "bad_signature"],
    ["a non-canonical last character", async () => craft(valid, { signature: nonCanonicalLast }), "bad_signature"],
    [
      "standard base64 characters",
      async () => craft(valid, { signature: (t) => `${t.replace(/-/g, "+")}+` }),
      "bad_signature",
    ],
    ["a truncated signature", async () => craft(valid, { signature: (text) => text.slice(0, -2) }), "bad_signature"],
    [
      "a tampered payload",
      async () => {
        const [header, , signature] = (await craft(valid)).split(".");
        return `${header}.${segment({ ...valid, sub: "victim" })}.${signature}`;
      },
      "bad_signature",
    ],
    ["no exp", async () => craft({ sub: "shopper-1", iat: nowSeconds }), "missing_claims"],
    ["a string exp", async () => craft({ ...valid, exp: String(nowSeconds + 60) }), "missing_claims"],
    ["no sub", async () => craft({ iat: nowSeconds, exp: nowSeconds + 60 }), "missing_claims"],
    ["an empty sub", async () => craft({ ...valid, sub: "" }), "missing_claims"],
    // A JWT's `sub` is a string; the refusal says how to sign a numeric account id.
    ["a numeric sub", async () => craft({ ...valid, sub: 881 }), "missing_claims"],
    ["a string iat", async () => craft({ ...valid, iat: "yesterday" }), "missing_claims"],
    ["a string nbf", async () => craft({ ...valid, nbf: "later" }), "missing_claims"],
    ["exp now", async () => craft({ ...valid, exp: nowSeconds }), "expired"],
    ["exp a second ago", async () => craft({ ...valid, exp: nowSeconds - 1 }), "expired"],
    ["nbf 61 s ahead", async () => craft({ ...valid, nbf: nowSeconds + 61 }), "not_yet_valid"],
    ["iat 61 s ahead", async () => craft({ ...valid, iat: nowSeconds + 61 }), "issued_in_future"],
    ["exp = 1e308", async () => craft({ sub: "shopper-1", exp: 1e308 }), "lifetime_too_long"],
    ["exp = 1e308 with iat", async () => craft({ ...valid, exp: 1e308 }), "lifetime_too_long"],
    ["exp - iat one second over a day", async () => craft({ ...valid, exp: valid.iat + 86_401 }), "lifetime_too_long"],
    [
      "no iat and exp 61 s beyond a day from now",
      async () => craft({ sub: "shopper-1", exp: nowSeconds + 86_400 + 61 }),
      "lifetime_too_long",
    ],
  ];

  it.each(refusals)("refuses %s", async (_, make, reason) => {
    expect(await verifyShopperToken(await make(), [secret, previous], now)).toEqual({ ok: false, reason });
  });

  const accepted: [string, () => Promise<string>, string | readonly string[]][] = [
    ["the current secret", () => craft(valid), [secret, previous]],
    ["the previous secret during a rotation", () => craft(valid, { key: previous }), [secret, previous]],
    ["a single secret", () => craft(valid), secret],
    ["iat exactly 60 s ahead", () => craft({ ...valid, iat: nowSeconds + 60 }), [secret]],
    ["nbf exactly 60 s ahead", () => craft({ ...valid, nbf: nowSeconds + 60 }), [secret]],
    ["nbf in the past", () => craft({ ...valid, nbf: nowSeconds - 100 }), [secret]],
    ["exp - iat exactly a day", () => craft({ ...valid, exp: valid.iat + 86_400 }), [secret]],
    [
      "no iat and exp a day (plus skew) from now",
      () => craft({ sub: "shopper-1", exp: nowSeconds + 86_460 }),
      [secret],
    ],
    ["exp one second ahead", () => craft({ ...valid, exp: nowSeconds + 1 }), [secret]],
    ["no typ header", () => craft(valid, { header: { alg: "HS256" } }), [secret]],
  ];

  it.each(accepted)("accepts %s", async (_, make, secrets) => {
    const check = await verifyShopperToken(await make(), secrets, now);
    expect(check).toMatchObject({ ok: true, claims: { sub: "shopper-1" } });
  });

  it("refuses the previous secret once it is no longer configured", async () => {
    expect(await verifyShopperToken(await craft(valid, { key: previous }), [secret, undefined], now)).toEqual({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("applies a shorter cap when the deployment sets one", async () => {
    const hour = await craft({ ...valid, exp: valid.iat + 3600 });
    expect((await verifyShopperToken(hour, secret, now, { maxTtlSeconds: 3600 })).ok).toBe(true);
    expect(await verifyShopperToken(hour, secret, now, { maxTtlSeconds: 3599 })).toEqual({
      ok: false,
      reason: "lifetime_too_long",
    });
  });

  it("signs tokens it accepts, with iat and exp one ttl apart", async () => {
    const token = await signShopperToken("shopper-2", secret, 3600, now);
    expect(await verifyShopperToken(token, secret, now)).toEqual({
      ok: true,
      claims: { sub: "shopper-2", iat: nowSeconds, exp: nowSeconds + 3600 },
    });
    const [header] = token.split(".");
    expect(JSON.parse(atob(header ?? ""))).toEqual({ alg: "HS256", typ: "JWT" });
  });

  it("names every refusal distinctly", () => {
    const messages = Object.values(tokenRefusalMessages);
    expect(new Set(messages).size).toBe(messages.length);
    // A numeric account id is the likeliest missing `sub` of all: it is named.
    expect(tokenRefusalMessages.missing_claims).toContain("sign String(id)");
  });
});

describe("shopper tokens through the worker", () => {
  const app = createApp();
  const request = (token: string, overrides: Record<string, string | undefined> = {}) =>
    app.request(
      "http://patron.test/v1/recommendations",
      { headers: { Authorization: `Bearer ${token}` } },
      { ...env, SHOPPER_TOKEN_SECRET: secret, SHOPPER_TOKEN_SECRET_PREVIOUS: previous, ...overrides },
    );
  const wallSeconds = () => Math.floor(Date.now() / 1000);

  it.each<[string, () => Promise<string>, TokenRefusal]>([
    ["a padded signature", () => craft(liveClaims(), { signature: (text) => `${text}=` }), "bad_signature"],
    ["exp = 1e308", () => craft({ sub: "shopper-1", exp: 1e308 }), "lifetime_too_long"],
    ["nbf two minutes ahead", () => craft({ ...liveClaims(), nbf: wallSeconds() + 120 }), "not_yet_valid"],
    ["iat two minutes ahead", () => craft({ ...liveClaims(), iat: wallSeconds() + 120 }), "issued_in_future"],
    ["an expired token", () => craft({ ...liveClaims(), exp: wallSeconds() - 5 }), "expired"],
    ["alg none", () => craft(liveClaims(), { header: { alg: "none" } }), "unsupported_algorithm"],
  ])("answers %s with 401 naming the reason", async (_, make, reason) => {
    const response = await request(await make());
    expect(response.status).toBe(401);
    const body = (await response.json()) as { error: { code: string; message: string; requestId: string } };
    expect(body.error).toMatchObject({ code: "unauthorized", message: tokenRefusalMessages[reason] });
    expect(body.error.requestId).toBe(response.headers.get("X-Request-Id"));
  });

  it("accepts tokens signed with the previous secret while it is set, and refuses them after", async () => {
    const old = await craft(liveClaims(), { key: previous });
    expect((await request(old)).status).toBe(200);
    expect((await request(old, { SHOPPER_TOKEN_SECRET_PREVIOUS: undefined })).status).toBe(401);
    expect((await request(await craft(liveClaims()))).status).toBe(200);
  });

  it("takes the lifetime cap from SHOPPER_TOKEN_MAX_TTL_SECONDS", async () => {
    const twoHours = await craft({ ...liveClaims(), exp: wallSeconds() + 7200 });
    expect((await request(twoHours)).status).toBe(200);
    const capped = await request(twoHours, { SHOPPER_TOKEN_MAX_TTL_SECONDS: "3600" });
    expect(capped.status).toBe(401);
    expect(((await capped.json()) as { error: { message: string } }).error.message).toBe(
      tokenRefusalMessages.lifetime_too_long,
    );
  });

  it("accepts iat and nbf a little ahead of the worker's clock (within the skew)", async () => {
    const ahead = wallSeconds() + 30;
    expect((await request(await craft({ sub: "shopper-1", iat: ahead, nbf: ahead, exp: ahead + 600 }))).status).toBe(
      200,
    );
  });
});

function liveClaims() {
  const iat = Math.floor(Date.now() / 1000);
  return { sub: "shopper-1", iat, exp: iat + 600 };
}
