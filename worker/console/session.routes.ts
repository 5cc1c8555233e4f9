// Console sign-in (mounted at /v1/admin/session, before the other admin routes): the admin key, checked
// in constant time, buys a session cookie. The cookie holds a random id; D1 keeps only its SHA-256 and
// an expiry 12 h after sign-in (not extended by use). Every admin route accepts the cookie as well as
// the admin key (worker/http/auth.ts), writes only with `X-Patron-Console: 1` from the same origin.
import { type Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import * as z from "zod";
import type { AppEnv } from "../env.ts";
import { assertSameSiteConsoleWrite, requireAdminKey, sessionCookieName, timingSafeEqual } from "../http/auth.ts";
import { retailerCurrency, retailerTimeZone } from "../http/config.ts";
import { ApiError } from "../http/errors.ts";
import { assertKeyChecksAllowed, countFailedKeyCheck } from "../http/rate-limit.ts";
import { jsonBody } from "../http/validate.ts";
import { enabledMatchKeys, matchKeyNames } from "../identity/match-keys.ts";
import { consoleUserSchema } from "../rules/rules.schemas.ts";
import { createSession, deleteSession, newSessionId, sessionIdHash } from "./session.repo.ts";

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

const isHttps = (url: string) => new URL(url).protocol === "https:";

export const sessionRoutes = new Hono<AppEnv>()
  .use("*", async (c, next) => {
    await next();
    c.header("Cache-Control", "no-store");
  })
  .post("/", async (c) => {
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
    await createSession(c.var.db, await sessionIdHash(sessionId), c.var.now, expiresAt, name);
    setCookie(c, sessionCookieName, sessionId, {
      httpOnly: true,
      sameSite: "Strict",
      path: "/",
      secure: isHttps(c.req.url),
      maxAge: sessionLifetimeSeconds,
    });
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
    const sessionId = getCookie(c, sessionCookieName);
    if (sessionId) await deleteSession(c.var.db, await sessionIdHash(sessionId));
    deleteCookie(c, sessionCookieName, { path: "/", secure: isHttps(c.req.url), httpOnly: true, sameSite: "Strict" });
    return c.json({ data: { signedIn: false } });
  });
