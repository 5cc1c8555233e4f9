// Shopper tokens: compact JWTs signed with HMAC-SHA-256 (HS256, and nothing else) by the storefront's
// server with SHOPPER_TOKEN_SECRET. `sub` is the storefront account id; `exp` is required so a leaked
// token dies on its own, and its lifetime is capped (SHOPPER_TOKEN_MAX_TTL_SECONDS, default one day).
// A small explicit verifier on Web Crypto rather than a general JWT library: one algorithm, canonical
// encodings only, the HMAC checked by `crypto.subtle.verify` (constant time), and every refusal named.

export interface ShopperClaims {
  sub: string;
  exp: number;
  iat?: number;
  nbf?: number;
}

/** How far ahead of our clock a storefront's `iat` or `nbf` may be (their clock may run fast). */
export const clockSkewSeconds = 60;
/** The default cap on a token's lifetime when SHOPPER_TOKEN_MAX_TTL_SECONDS is not set. */
export const defaultMaxTtlSeconds = 86_400;
/** Longer than any token a storefront needs; refused before any decoding. */
const maxTokenChars = 4096;

export type TokenRefusal =
  | "malformed"
  | "unsupported_algorithm"
  | "bad_signature"
  | "missing_claims"
  | "expired"
  | "not_yet_valid"
  | "issued_in_future"
  | "lifetime_too_long";

export type TokenCheck = { ok: true; claims: ShopperClaims } | { ok: false; reason: TokenRefusal };

export interface VerifyOptions {
  /** The longest accepted lifetime in seconds: `exp - iat`, or `exp - now` when there is no `iat`. */
  maxTtlSeconds?: number;
}

/** The settings a deployment verifies shopper tokens with (names as in wrangler.toml and its secrets). */
export interface ShopperTokenSettings {
  SHOPPER_TOKEN_SECRET: string;
  /** The secret being rotated out: tokens it signed keep verifying until it is deleted. */
  SHOPPER_TOKEN_SECRET_PREVIOUS?: string;
  SHOPPER_TOKEN_MAX_TTL_SECONDS?: string;
}

/**
 * SHOPPER_TOKEN_MAX_TTL_SECONDS as whole seconds; `defaultMaxTtlSeconds` when unset, null when set to
 * anything but a positive integer (the deployment's configuration check refuses to serve then).
 */
export function parseMaxTtlSeconds(setting: string | undefined): number | null {
  if (setting === undefined || setting.trim() === "") return defaultMaxTtlSeconds;
  if (!/^\d+$/.test(setting.trim())) return null;
  const seconds = Number(setting.trim());
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds : null;
}

const encoder = new TextEncoder();
/** Web Crypto's key type, spelled so it also type-checks where this module runs under Node (the CLI). */
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;
const keyCache = new Map<string, Promise<HmacKey>>();

function hmacKey(secret: string): Promise<HmacKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    keyCache.set(secret, key);
  }
  return key;
}

function encodeBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Unpadded base64url only: no `=`, no `+` or `/`, no whitespace; null for anything else. */
function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  let binary: string;
  try {
    binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  } catch {
    return null;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function decodeJsonObject(segment: string): Record<string, unknown> | null {
  const bytes = decodeBase64Url(segment);
  if (!bytes) return null;
  try {
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
    return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const optionalNumber = (value: unknown): number | undefined | null =>
  value === undefined ? undefined : typeof value === "number" && Number.isFinite(value) ? value : null;

export async function signShopperToken(
  accountId: string,
  secret: string,
  ttlSeconds: number,
  now: Date,
): Promise<string> {
  const iat = Math.floor(now.getTime() / 1000);
  const header = encodeBase64Url(encoder.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
  const payload = encodeBase64Url(encoder.encode(JSON.stringify({ sub: accountId, iat, exp: iat + ttlSeconds })));
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(`${header}.${payload}`));
  return `${header}.${payload}.${encodeBase64Url(new Uint8Array(signature))}`;
}

/**
 * Verifies a shopper token at `now` against one secret or several (current first, then the one being
 * rotated out): the structure and canonical encoding, the algorithm, the HMAC, then the claims. Never
 * throws for a bad token; says why it refused.
 */
export async function verifyShopperToken(
  token: string,
  secrets: string | readonly (string | undefined)[],
  now: Date,
  options: VerifyOptions = {},
): Promise<TokenCheck> {
  const refuse = (reason: TokenRefusal): TokenCheck => ({ ok: false, reason });
  if (token.length > maxTokenChars) return refuse("malformed");
  const parts = token.split(".");
  if (parts.length !== 3) return refuse("malformed");
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];

  const header = decodeJsonObject(headerPart);
  if (!header) return refuse("malformed");
  if (header.alg !== "HS256" || "crit" in header) return refuse("unsupported_algorithm");

  // One encoding per signature: a decoded signature must re-encode to exactly the text received, so
  // `=` padding and the spare low bits of the last character cannot make a second valid spelling.
  const signature = decodeBase64Url(signaturePart);
  if (signature?.length !== 32 || encodeBase64Url(signature) !== signaturePart) return refuse("bad_signature");
  const signed = encoder.encode(`${headerPart}.${payloadPart}`);
  let verified = false;
  for (const secret of typeof secrets === "string" ? [secrets] : secrets) {
    if (!secret) continue;
    if (await crypto.subtle.verify("HMAC", await hmacKey(secret), signature, signed)) {
      verified = true;
      break;
    }
  }
  if (!verified) return refuse("bad_signature");

  const payload = decodeJsonObject(payloadPart);
  if (!payload) return refuse("malformed");
  const { sub, exp } = payload;
  const iat = optionalNumber(payload.iat);
  const nbf = optionalNumber(payload.nbf);
  if (
    typeof sub !== "string" ||
    !sub ||
    typeof exp !== "number" ||
    !Number.isFinite(exp) ||
    iat === null ||
    nbf === null
  )
    return refuse("missing_claims");

  const nowSeconds = now.getTime() / 1000;
  const maxTtl = options.maxTtlSeconds ?? defaultMaxTtlSeconds;
  if (exp <= nowSeconds) return refuse("expired");
  if (nbf !== undefined && nbf > nowSeconds + clockSkewSeconds) return refuse("not_yet_valid");
  if (iat !== undefined && iat > nowSeconds + clockSkewSeconds) return refuse("issued_in_future");
  // Without `iat` the remaining life is what counts, with the same allowance for the signer's clock.
  if (iat !== undefined ? exp - iat > maxTtl : exp - nowSeconds > maxTtl + clockSkewSeconds)
    return refuse("lifetime_too_long");
  return {
    ok: true,
    claims: { sub, exp, ...(iat !== undefined ? { iat } : {}), ...(nbf !== undefined ? { nbf } : {}) },
  };
}

/** What the 401 says for each refusal: distinct, and enough for an integrator to fix their signer. */
export const tokenRefusalMessages: Record<TokenRefusal, string> = {
  malformed: "The shopper token is not a valid JWT (three unpadded base64url parts, JSON header and payload).",
  unsupported_algorithm: 'The shopper token must be signed with HS256 ("alg": "HS256", no "crit").',
  bad_signature: "The shopper token's signature does not match.",
  missing_claims:
    "The shopper token needs a `sub`, the storefront account id as a non-empty string (a numeric id signed as a number is refused: sign String(id)), and a numeric `exp`; `iat` and `nbf`, when present, must be numbers.",
  expired: "The shopper token has expired: sign a fresh one on your server.",
  not_yet_valid: "The shopper token is not valid yet (`nbf` is more than 60 s ahead of our clock).",
  issued_in_future: "The shopper token's `iat` is more than 60 s ahead of our clock: check the signing server's clock.",
  lifetime_too_long:
    "The shopper token lives longer than this deployment allows (SHOPPER_TOKEN_MAX_TTL_SECONDS, one day by default): sign shorter-lived tokens.",
};

/** Verifies with a deployment's settings: current and previous secret, its lifetime cap. */
export function verifyWithSettings(token: string, settings: ShopperTokenSettings, now: Date): Promise<TokenCheck> {
  return verifyShopperToken(token, [settings.SHOPPER_TOKEN_SECRET, settings.SHOPPER_TOKEN_SECRET_PREVIOUS], now, {
    maxTtlSeconds: parseMaxTtlSeconds(settings.SHOPPER_TOKEN_MAX_TTL_SECONDS) ?? defaultMaxTtlSeconds,
  });
}
