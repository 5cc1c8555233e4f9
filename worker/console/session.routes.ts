// Console sign-in (mounted at /v1/admin/session, before the other admin routes): the admin key, checked
// in constant time, buys a session cookie. The cookie holds a random id; D1 keeps only its SHA-256 and
// an expiry 12 h after sign-in (not extended by use), and an HMAC of the admin key it was opened with:
// once PATRON_ADMIN_KEY is rotated, the session is refused. Every admin route accepts the cookie as well as
// the admin key (worker/http/auth.ts), writes only with `X-Patron-Console: 1` from the same origin.
// Over https the cookie is `__Host-patron_session`, over plain http to this machine (a local run)
// `patron_session` (auth.ts); over plain http to any other host there is no signing in: the key would
// cross the network in clear. Signing in ends the session the browser carried, if any: a planted or
// copied earlier cookie dies with it.
import { type Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import * as z from "zod";
import type { AppEnv } from "../env.ts";
import {
  assertSameSiteConsoleWrite,
  carriedSessionIds,
  isHttps,
  requireAdminKey,
  sessionCookieName,
  timingSafeEqual,
} from "../http/auth.ts";
import { retailerCurrency, retailerTimeZone } from "../http/config.ts";
import { ApiError } from "../http/errors.ts";
import { assertKeyChecksAllowed, countFailedKeyCheck } from "../http/rate-limit.ts";
import { httpsAddress, isPlainHttpOverNetwork } from "../http/transport.ts";
import { jsonBody } from "../http/validate.ts";
import { enabledMatchKeys, matchKeyNames } from "../identity/match-keys.ts";
import { consoleUserSchema } from "../rules/rules.schemas.ts";
import { adminKeyDigest, createSession, deleteSessions, newSessionId, sessionIdHash } from "./session.repo.ts";

/** How long a console session lasts from sign-in. */
export const sessionLifetimeSeconds = 12 * 3600;

const signInSchema = z
  .object({ key: z.string().min(1, "Enter the admin key.").max(1000), name: consoleUserSchema })
  .strict();

/** The retailer's time zone (RETAILER_TIME_ZONE, UTC by default): the console shows every date on its clock. */
const timeZoneOf = (c: Context<AppEnv>) => retailerTimeZone(c.env.RETAILER_TIME_ZONE);

/** The match keys EXPORT_MATCH_KEYS enables, in the API's order: what a customer list's CSV may carry. */
const matchKeysOf = (env: AppEnv["Bindings"]) => {
  const enabled = enabledMatchKeys(env.EXPORT_MATCH_KEYS);
  return matchKeyNames.filter((name) => enabled.has(name));
};

const cookieOptions = { httpOnly: true, sameSite: "Strict", path: "/" } as const;

/** The hashes of the session ids the request carries (both cookie names): what a sign-in or sign-out ends. */
const carriedHashes = (c: Context<AppEnv>) => Promise.all(carriedSessionIds(c).map(sessionIdHash));

/**
 * Clears the session cookie: over http the plain one; over https the `__Host-` one (unless
 * `keepPrefixed`) and the plain one too when the browser sent it (set before the cookie took its prefix).
 */
function clearSessionCookies(c: Context<AppEnv>, keepPrefixed = false): void {
  if (!isHttps(c)) {
    deleteCookie(c, sessionCookieName, cookieOptions);
    return;
  }
  if (!keepPrefixed) deleteCookie(c, sessionCookieName, { ...cookieOptions, secure: true, prefix: "host" });
  if (getCookie(c, sessionCookieName)) deleteCookie(c, sessionCookieName, { ...cookieOptions, secure: true });
}

export const sessionRoutes = new Hono<AppEnv>()
  .use("*", async (c, next) => {
    await next();
    c.header("Cache-Control", "no-store");
  })
  .post("/", async (c) => {
    // Over plain http to another machine the key has crossed the network in clear, and the cookie would
    // too on every request: refused before anything is read, checked or counted, with where to go instead.
    if (isPlainHttpOverNetwork(c.req.url))
      throw new ApiError(
        403,
        "forbidden",
        `Signing in over plain http would send the admin key in clear: open the console over https, at ${new URL("/console", httpsAddress(c.req.url)).href}, and sign in there.`,
      );
    // Sign-in is a write like any other: only from the console's page (no login CSRF from another site).
    assertSameSiteConsoleWrite(c, "Signing in");
    const { key, name } = await jsonBody(c, signInSchema);
    assertKeyChecksAllowed(c, "admin key");
    if (!(await timingSafeEqual(key, c.env.PATRON_ADMIN_KEY))) {
      await countFailedKeyCheck(c, "admin key");
      throw new ApiError(401, "unauthorized", "That admin key is not right.", [
        { path: ["key"], message: "That admin key is not right." },
      ]);
    }
    const sessionId = newSessionId();
    const expiresAt = new Date(c.var.now.getTime() + sessionLifetimeSeconds * 1000);
    // The session the browser already carried (its own earlier one, or one planted in it) ends here.
    const replacing = await carriedHashes(c);
    await createSession(
      c.var.db,
      {
        idHash: await sessionIdHash(sessionId),
        now: c.var.now,
        expiresAt,
        userName: name,
        adminKeyDigest: await adminKeyDigest(c.env.PATRON_ADMIN_KEY, c.env.IDENTITY_HASH_SECRET),
      },
      replacing,
    );
    if (isHttps(c)) {
      // A plain cookie from before the prefix goes.
      clearSessionCookies(c, true);
      setCookie(c, sessionCookieName, sessionId, {
        ...cookieOptions,
        secure: true,
        prefix: "host",
        maxAge: sessionLifetimeSeconds,
      });
    } else setCookie(c, sessionCookieName, sessionId, { ...cookieOptions, maxAge: sessionLifetimeSeconds });
    const currency = retailerCurrency(c.env.RETAILER_CURRENCY);
    return c.json(
      {
        data: {
          signedIn: true,
          name,
          expiresAt: expiresAt.toISOString(),
          timeZone: timeZoneOf(c),
          currency,
          matchKeys: matchKeysOf(c.env),
        },
      },
      201,
    );
  })
  // The console learns the shop's currency here, to label its money figures, and the match keys its
  // customer list's CSV may carry.
  .get("/", requireAdminKey, (c) =>
    c.json({
      data: {
        signedIn: true,
        via: c.req.header("Authorization") ? "admin key" : "session",
        name: c.var.consoleUser ?? null,
        timeZone: timeZoneOf(c),
        currency: retailerCurrency(c.env.RETAILER_CURRENCY),
        matchKeys: matchKeysOf(c.env),
      },
    }),
  )
  .delete("/", async (c) => {
    // Signing out needs no live session (an expired one must still be able to clear its cookie), but
    // it is a write: only from the console's page.
    assertSameSiteConsoleWrite(c, "Signing out");
    await deleteSessions(c.var.db, await carriedHashes(c));
    clearSessionCookies(c);
    return c.json({ data: { signedIn: false } });
  });
