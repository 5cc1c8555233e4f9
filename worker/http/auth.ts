// Bearer-key guards for server-to-server (API key) and console (admin key) routes.
import type { MiddlewareHandler } from "hono";
import type { AppEnv, Env } from "../env.ts";
import { ApiError } from "./errors.ts";
import { assertKeyChecksAllowed, countFailedKeyCheck } from "./rate-limit.ts";

/** Constant-time comparison of two strings, so a wrong key leaks nothing through timing. */
export function timingSafeEqual(a: string, b: string): boolean {
  const encoder = new TextEncoder();
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  let diff = left.length ^ right.length;
  for (let i = 0; i < Math.max(left.length, right.length); i++) diff |= (left[i] ?? 0) ^ (right[i] ?? 0);
  return diff === 0;
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
    if (!accepted.some((key) => timingSafeEqual(token, key))) {
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
