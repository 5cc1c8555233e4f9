// Rate limits through Cloudflare's Rate Limiting binding (configured under [[ratelimits]] in
// wrangler.toml): the shopper routes per client address and per shopper, and failed API/admin key
// checks per client address. `RATE_LIMITS=off` switches every limit off (local benchmarks only).
//
// If a binding is missing or its call fails, the request goes through and a warning is logged: the
// limits protect capacity and slow key guessing, and an outage of the limiter must not take the
// storefront's shelf down with it.
import type { Context, MiddlewareHandler } from "hono";
import ipaddr from "ipaddr.js";
import type { AppEnv, Env } from "../env.ts";
import { rateLimited } from "./errors.ts";

/** The route families limited per client address and per shopper. */
export type LimitedRoute = "recommendations" | "events";

type LimiterBinding = "RATE_LIMIT_SHOPPER" | "RATE_LIMIT_ADDRESS" | "RATE_LIMIT_KEY_FAILURES";

/**
 * The window every limiter in wrangler.toml counts in (`period = 60`): a client over a limit is told
 * to retry after at most one window.
 */
export const rateLimitPeriodSeconds = 60;

/** Limits are on unless RATE_LIMITS is "off". */
export function rateLimitsOn(env: Pick<Env, "RATE_LIMITS">): boolean {
  return (env.RATE_LIMITS ?? "").trim().toLowerCase() !== "off";
}

/**
 * The client's address as the limits count it, from what Cloudflare sees. Cloudflare (and `wrangler
 * dev`) always set `CF-Connecting-IP` and overwrite any value the client sends; without it no
 * per-address limit applies. An IPv6 address counts by its /64 prefix (addressKey).
 */
export function clientAddress(c: Context<AppEnv>): string | null {
  const address = c.req.header("CF-Connecting-IP")?.trim();
  return address ? addressKey(address) : null;
}

/**
 * An IPv4 address as it is; an IPv6 address as its /64 prefix (`2001:db8:0:1::/64`). One IPv6
 * subscriber (a home line, a phone, a server) is handed a whole /64 and may send from any of its 2^64
 * addresses: counted per address, every request could come with a fresh allowance. An IPv4 address
 * mapped into IPv6 (`::ffff:192.0.2.1`) is that IPv4 address. Text that is neither is returned as it is.
 */
export function addressKey(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const parsed = ipaddr.process(address);
  if (parsed instanceof ipaddr.IPv4) return parsed.toString();
  return `${parsed.parts
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(":")}::/64`;
}

/** Counts one request against `key`. True when it is within the limit, or when the limiter is unavailable. */
async function withinLimit(c: Context<AppEnv>, binding: LimiterBinding, key: string): Promise<boolean> {
  const limiter = c.env[binding];
  try {
    if (!limiter) throw new Error(`the ${binding} binding is not configured`);
    const { success } = await limiter.limit({ key });
    return success;
  } catch (error) {
    console.warn(
      JSON.stringify({
        requestId: c.get("requestId"),
        warning: "rate limiter unavailable; request allowed",
        binding,
        error: String(error),
      }),
    );
    return true;
  }
}

const routeNames: Record<LimitedRoute, string> = {
  recommendations: "recommendation requests",
  events: "event requests",
};

/** Middleware: the route family's requests per client address. Registered after CORS, so preflights are free. */
export function limitByAddress(route: LimitedRoute): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const address = clientAddress(c);
    if (address && rateLimitsOn(c.env) && !(await withinLimit(c, "RATE_LIMIT_ADDRESS", `${route}:${address}`)))
      throw rateLimited(
        `Too many ${routeNames[route]} from this address: retry after ${rateLimitPeriodSeconds} s.`,
        rateLimitPeriodSeconds,
      );
    await next();
  };
}

/**
 * The route family's requests per shopper, keyed by the account's identity key. Called only once the
 * shopper token has verified, so a forged token cannot spend someone else's allowance.
 */
export async function limitShopper(c: Context<AppEnv>, route: LimitedRoute, accountKey: string): Promise<void> {
  if (rateLimitsOn(c.env) && !(await withinLimit(c, "RATE_LIMIT_SHOPPER", `${route}:${accountKey}`)))
    throw rateLimited(
      `Too many ${routeNames[route]} for this shopper: retry after ${rateLimitPeriodSeconds} s.`,
      rateLimitPeriodSeconds,
    );
}

/**
 * Addresses that sent more console session cookies naming no live session than the address allowance
 * (RATE_LIMIT_ADDRESS) in a window, until when (ms). Such a cookie is no key guess (a planted or ended
 * one must not lock its browser out of signing in), but each costs a D1 read: while this lasts, a
 * session cookie from the address is answered 429 before it is looked up. Per isolate, as below.
 */
const sessionFloods = new Map<string, number>();
const sessionFloodMessage = `Too many requests with ended console sessions from this address: retry after ${rateLimitPeriodSeconds} s.`;

/** Before a session cookie is looked up: 429 while the client's address is blocked for cookies naming no session. */
export function assertSessionLookupsAllowed(c: Context<AppEnv>): void {
  assertNotBlocked(c, sessionFloods, sessionFloodMessage);
}

/** After a session cookie named no live session: counted per address; over the allowance the address is blocked for one window. */
export async function countUnknownSession(c: Context<AppEnv>): Promise<void> {
  const address = clientAddress(c);
  if (!address || !rateLimitsOn(c.env)) return;
  if (await withinLimit(c, "RATE_LIMIT_ADDRESS", `unknown-session:${address}`)) return;
  block(sessionFloods, address);
  throw rateLimited(sessionFloodMessage, rateLimitPeriodSeconds);
}

/** 429 while the client's address is in `blocked`; an expired entry is dropped. */
function assertNotBlocked(c: Context<AppEnv>, blocked: Map<string, number>, message: string): void {
  const address = clientAddress(c);
  if (!address || !rateLimitsOn(c.env)) return;
  const until = blocked.get(address);
  if (until === undefined) return;
  const remainingMs = until - Date.now();
  if (remainingMs <= 0) {
    blocked.delete(address);
    return;
  }
  throw rateLimited(message, remainingMs / 1000);
}

/** Blocks `address` for one window (a full map is emptied first: memory stays bounded). */
function block(blocked: Map<string, number>, address: string): void {
  if (blocked.size >= maxBlockedAddresses) blocked.clear();
  blocked.set(address, Date.now() + rateLimitPeriodSeconds * 1000);
}

/**
 * Addresses over the failed-key limit, until when (ms). The binding cannot be read without counting,
 * so the block itself is remembered here: while it lasts every key check from the address answers 429,
 * even with the right key, or a guesser could tell a right key (200) from a wrong one (429).
 * Per isolate: another isolate learns of the block at the address's next failed check.
 */
const blockedAddresses = new Map<string, number>();
const maxBlockedAddresses = 10_000;

function keyFailureMessage(what: string): string {
  return `Too many failed ${what} checks from this address: retry after ${rateLimitPeriodSeconds} s.`;
}

/** Before a key is compared: 429 while the client's address is blocked for failed key checks. */
export function assertKeyChecksAllowed(c: Context<AppEnv>, what: string): void {
  assertNotBlocked(c, blockedAddresses, keyFailureMessage(what));
}

/**
 * After a key did not match: counts the failure against the client's address; over the limit the
 * address is blocked for one window and the answer is 429 instead of 401. Successful checks never count.
 */
export async function countFailedKeyCheck(c: Context<AppEnv>, what: string): Promise<void> {
  const address = clientAddress(c);
  if (!address || !rateLimitsOn(c.env)) return;
  if (await withinLimit(c, "RATE_LIMIT_KEY_FAILURES", address)) return;
  block(blockedAddresses, address);
  throw rateLimited(keyFailureMessage(what), rateLimitPeriodSeconds);
}
