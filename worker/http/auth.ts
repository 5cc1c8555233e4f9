// Bearer-key guards for server-to-server (API key) and console (admin key) routes.
import type { MiddlewareHandler } from "hono";
import type { AppEnv, Env } from "../env.ts";
import { ApiError } from "./errors.ts";
import { assertKeyChecksAllowed, countFailedKeyCheck } from "./rate-limit.ts";

/**
 * Constant-time comparison of two strings with Web Crypto, so a wrong key leaks nothing through timing:
 * both sides are hashed to equal-length SHA-256 digests (hiding the key's length too), then compared
 * by workerd's `crypto.subtle.timingSafeEqual`.
 */
export async function timingSafeEqual(a: string, b: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [left, right] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(left, right);
}

export function bearerToken(header: string | undefined): string | null {
  const match = header?.match(/^Bearer\s+(.+)$/i);
  return match?.[1]?.trim() ?? null;
}

function requireKey(pick: (env: Env) => string[], what: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    assertKeyChecksAllowed(c, what);
    const token = bearerToken(c.req.header("Authorization"));
    if (!token) throw new ApiError(401, "unauthorized", `Missing ${what}: send "Authorization: Bearer <key>".`);
    const accepted = pick(c.env).filter(Boolean);
    // Every configured key is compared, so the time taken does not tell which one matched.
    const matches = await Promise.all(accepted.map((key) => timingSafeEqual(token, key)));
    if (!matches.includes(true)) {
      await countFailedKeyCheck(c, what);
      throw new ApiError(401, "unauthorized", `Invalid ${what}.`);
    }
    await next();
  };
}

/** Storefront and POS servers. The admin key is accepted too, so the console can call the same routes. */
export const requireApiKey = requireKey((env) => [env.PATRON_API_KEY, env.PATRON_ADMIN_KEY], "API key");
/** The merchandiser console and operators. */
export const requireAdminKey = requireKey((env) => [env.PATRON_ADMIN_KEY], "admin key");
