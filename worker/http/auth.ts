// Bearer-key guards for server-to-server (API key) and console (admin key) routes; admin routes also
// accept the console's session cookie (worker/console/session.routes.ts).
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { adminKeyDigest, liveSession, sessionIdHash } from "../console/session.repo.ts";
import type { AppEnv, Env } from "../env.ts";
import { ApiError } from "./errors.ts";
import {
  assertKeyChecksAllowed,
  assertSessionLookupsAllowed,
  countFailedKeyCheck,
  countUnknownSession,
} from "./rate-limit.ts";
import { isPlainHttpOverNetwork } from "./transport.ts";

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

/**
 * The console's session cookie: a random id whose SHA-256 is kept in D1 (console_sessions). Over https
 * it is set as `__Host-patron_session` (Secure, Path=/, no Domain: no other host of the domain and no
 * plain-http page can set or overwrite it); over plain http to this machine (a local `npm start`),
 * where a browser may refuse a Secure cookie, as `patron_session`. Plain http to any other host gets
 * no session at all (session.routes.ts, carriedSessionIds).
 */
export const sessionCookieName = "patron_session";

/** Whether a request came over https: its session cookie is then `__Host-` prefixed and Secure. */
export const isHttps = (c: Context<AppEnv>) => new URL(c.req.url).protocol === "https:";

/**
 * The session ids a request carries, the one to trust first: the `__Host-` cookie, then the plain one
 * (local http; over https, a session signed in before the cookie took its prefix, at most 12 h old).
 * Over plain http to a host that is not this machine none: a cookie that crossed a network in clear
 * opens nothing (the request is answered as one without it), so a session is never honoured where
 * anyone on the way could read or replay it.
 */
export function carriedSessionIds(c: Context<AppEnv>): string[] {
  if (isPlainHttpOverNetwork(c.req.url)) return [];
  const ids = [getCookie(c, sessionCookieName, "host"), getCookie(c, sessionCookieName)];
  return ids.filter((id): id is string => Boolean(id));
}
/** The header the console sends on every write made with its session cookie. */
export const consoleHeaderName = "X-Patron-Console";

const safeMethods = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * A cookie rides along with any request the browser makes, so a write authenticated by it must prove
 * it comes from the console's own page: it carries `X-Patron-Console: 1` (a custom header another site
 * cannot add without a CORS preflight, which this worker never grants to admin routes) and, when the
 * browser sends an Origin, that Origin is this worker's own. SameSite=Strict is the first line.
 */
export function assertSameSiteConsoleWrite(
  c: Context<AppEnv>,
  what = "A change made with the console's session",
): void {
  if (safeMethods.has(c.req.method)) return;
  const origin = c.req.header("Origin");
  const ownOrigin = new URL(c.req.url).origin;
  if (c.req.header(consoleHeaderName) !== "1" || (origin !== undefined && origin !== ownOrigin))
    throw new ApiError(
      403,
      "forbidden",
      `${what} must come from the console itself (send "${consoleHeaderName}: 1" from the same origin).`,
    );
}

function requireKey(pick: (env: Env) => string[], what: string, acceptSession: boolean): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const authorization = c.req.header("Authorization");
    const sessionId = acceptSession && !authorization ? carriedSessionIds(c)[0] : undefined;
    if (sessionId) {
      // A session cookie is not a guessed key: its id is 256 random bits, so an unknown one is an ended
      // session, or a cookie another host of the domain planted in the browser (over https a plain
      // `patron_session` can be). It is neither counted against the address's failed-key limit nor
      // refused while the address is blocked: counted, such a cookie would lock out its browser and
      // everyone behind the same address, sign-in included. An address sending more of them than the
      // address allowance is held back on its own count (each costs a D1 read), sign-in still open.
      assertSessionLookupsAllowed(c);
      const session = await liveSession(
        c.var.db,
        await sessionIdHash(sessionId),
        c.var.now,
        await adminKeyDigest(c.env.PATRON_ADMIN_KEY, c.env.IDENTITY_HASH_SECRET),
      );
      if (session.kind === "keyChanged")
        throw new ApiError(
          401,
          "unauthorized",
          "Your console session has ended: the admin key has changed since you signed in. Sign in again.",
        );
      if (session.kind === "ended") {
        await countUnknownSession(c);
        throw new ApiError(401, "unauthorized", "Your console session has ended: sign in again.");
      }
      assertSameSiteConsoleWrite(c);
      c.set("consoleUser", session.userName);
      await next();
      // What the console reads is for the signed-in browser alone: never kept by a shared cache.
      if (!c.res.headers.get("Cache-Control")) c.header("Cache-Control", "private, no-store");
      return;
    }
    assertKeyChecksAllowed(c, what);
    const token = bearerToken(authorization);
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
// The console's session is not accepted here: it opens the admin routes only, never ingestion.
export const requireApiKey = requireKey((env) => [env.PATRON_API_KEY, env.PATRON_ADMIN_KEY], "API key", false);
/** The merchandiser console (its session cookie) and operators (the admin key). */
export const requireAdminKey = requireKey((env) => [env.PATRON_ADMIN_KEY], "admin key", true);
