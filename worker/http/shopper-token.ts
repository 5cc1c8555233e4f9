// Shopper tokens: compact JWTs (HS256) signed by the storefront's server with SHOPPER_TOKEN_SECRET.
// `sub` is the storefront account id; `exp` is required so a leaked token dies on its own.
import { sign, verify } from "hono/jwt";

export interface ShopperClaims {
  sub: string;
  exp: number;
  iat?: number;
}

export async function signShopperToken(
  accountId: string,
  secret: string,
  ttlSeconds: number,
  now: Date,
): Promise<string> {
  const iat = Math.floor(now.getTime() / 1000);
  return sign({ sub: accountId, iat, exp: iat + ttlSeconds }, secret, "HS256");
}

export type TokenCheck =
  | { ok: true; claims: ShopperClaims }
  | { ok: false; reason: "malformed" | "bad_signature" | "expired" | "missing_claims" };

/** Verifies signature, algorithm and expiry at `now`. Never throws for a bad token. */
export async function verifyShopperToken(token: string, secret: string, now: Date): Promise<TokenCheck> {
  let payload: Record<string, unknown>;
  try {
    payload = await verify(token, secret, { alg: "HS256", exp: false, nbf: false, iat: false });
  } catch (error) {
    const name = (error as Error).name ?? "";
    return { ok: false, reason: /Signature|Algorithm/i.test(name) ? "bad_signature" : "malformed" };
  }
  const { sub, exp } = payload;
  if (typeof sub !== "string" || !sub || typeof exp !== "number") return { ok: false, reason: "missing_claims" };
  if (exp * 1000 <= now.getTime()) return { ok: false, reason: "expired" };
  return { ok: true, claims: { sub, exp, iat: typeof payload.iat === "number" ? payload.iat : undefined } };
}
