// The settings a deployment cannot serve without, and the checks that find what is missing or unusable.
// Shared by the worker (which refuses to serve while anything is wrong) and the deploy script's
// pre-flight (which refuses to deploy). Names only, never values, ever leave these functions.
import { isSupportedCountry } from "libphonenumber-js/min";
import { maxShards, parseShardCount } from "../core/shards/placement.ts";
import { parseMaxTtlSeconds } from "./shopper-token.ts";

/** Set with `wrangler secret put <NAME>`; locally they come from .dev.vars. */
export const requiredSecrets = [
  "PATRON_API_KEY",
  "PATRON_ADMIN_KEY",
  "SHOPPER_TOKEN_SECRET",
  "IDENTITY_HASH_SECRET",
] as const;

/** Every setting a deployment refuses to serve without: the secrets and the storefront origins. */
export const requiredSettings = [...requiredSecrets, "ALLOWED_ORIGINS"] as const;

export interface ConfigProblem {
  /** The setting's name (never its value). */
  name: string;
  problem: string;
}

/** ALLOWED_ORIGINS as a list: comma-separated, blanks dropped. */
export function allowedOrigins(setting: string | undefined): string[] {
  return (setting ?? "")
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
}

/** Entries that can never equal a browser's Origin header (a path, a trailing slash, no scheme...). */
export function invalidOrigins(origins: readonly string[]): string[] {
  return origins.filter((origin) => {
    try {
      const url = new URL(origin);
      return !/^https?:$/.test(url.protocol) || url.origin !== origin;
    } catch {
      return true;
    }
  });
}

const present = (value: unknown): boolean => typeof value === "string" && value.trim() !== "";

/** What keeps this deployment from serving safely; empty when it may serve. */
export function configProblems(env: Readonly<Record<string, unknown>>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const name of requiredSecrets)
    if (!present(env[name])) problems.push({ name, problem: `${name} is not set (wrangler secret put ${name}).` });
  const origins = allowedOrigins(typeof env.ALLOWED_ORIGINS === "string" ? env.ALLOWED_ORIGINS : undefined);
  if (origins.length === 0)
    problems.push({
      name: "ALLOWED_ORIGINS",
      problem:
        "ALLOWED_ORIGINS is not set: list the storefront origins (https://shop.example) in wrangler.toml [vars].",
    });
  else {
    // Origins are public (every browser sends them), so naming the bad entries reveals nothing.
    const invalid = invalidOrigins(origins);
    if (invalid.length > 0)
      problems.push({
        name: "ALLOWED_ORIGINS",
        problem: `ALLOWED_ORIGINS entries ${invalid.map((origin) => JSON.stringify(origin.slice(0, 100))).join(", ")} are not origins: use scheme://host[:port], no path or trailing slash.`,
      });
  }
  const maxTtl = env.SHOPPER_TOKEN_MAX_TTL_SECONDS;
  if (maxTtl !== undefined && (typeof maxTtl !== "string" || parseMaxTtlSeconds(maxTtl) === null))
    problems.push({
      name: "SHOPPER_TOKEN_MAX_TTL_SECONDS",
      problem: "SHOPPER_TOKEN_MAX_TTL_SECONDS must be a positive whole number of seconds.",
    });
  // A misspelt region ("UK") would read every national phone number in the wrong country.
  const region = env.PHONE_DEFAULT_REGION;
  if (
    region !== undefined &&
    (typeof region !== "string" || (region.trim() !== "" && !isSupportedCountry(region.trim().toUpperCase())))
  )
    problems.push({
      name: "PHONE_DEFAULT_REGION",
      problem: "PHONE_DEFAULT_REGION must be an ISO 3166 country code such as US, GB or FR (GB, not UK).",
    });
  // Every figure adds order amounts up, so the shop has one currency; a typo would refuse every order.
  const currency = env.RETAILER_CURRENCY;
  if (currency !== undefined && (typeof currency !== "string" || !/^[A-Z]{3}$/.test(retailerCurrency(currency))))
    problems.push({
      name: "RETAILER_CURRENCY",
      problem: "RETAILER_CURRENCY must be an ISO 4217 currency code in capitals, such as USD, EUR or JPY.",
    });
  // A shard count that changes by accident would place every customer somewhere else: refuse it.
  const shards = env.SHARD_COUNT;
  if (shards !== undefined && (typeof shards !== "string" || parseShardCount(shards) === null))
    problems.push({
      name: "SHARD_COUNT",
      problem: `SHARD_COUNT must be 0 (one D1 database) or a whole number of customer shards from 1 to ${maxShards}.`,
    });
  return problems;
}

/** The currency every amount is in (RETAILER_CURRENCY, default USD); configProblems refuses a malformed one. */
export function retailerCurrency(setting: string | undefined): string {
  return setting?.trim() || "USD";
}

/** Whether `name` is a time zone the runtime knows (an IANA name such as America/New_York). */
export function knownTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/**
 * Why a RETAILER_TIME_ZONE setting would not be used, or null. The Worker runs on UTC then, every
 * preferred hour and console time off by the zone's offset without an error anywhere, so npm start and
 * the deploy pre-flight name it.
 */
export function timeZoneProblem(setting: unknown): string | null {
  if (typeof setting !== "string" || setting === "" || knownTimeZone(setting)) return null;
  return `RETAILER_TIME_ZONE ${JSON.stringify(setting.slice(0, 100))} is not a time zone the runtime knows, so the worker would run on UTC: give an IANA name such as America/New_York or Europe/Berlin.`;
}

/** RETAILER_TIME_ZONE when it names a time zone the runtime knows; otherwise UTC, with a warning. */
export function retailerTimeZone(setting: string | undefined): string {
  if (!setting) return "UTC";
  if (knownTimeZone(setting)) return setting;
  console.warn(JSON.stringify({ warning: "RETAILER_TIME_ZONE is not an IANA time zone; using UTC", setting }));
  return "UTC";
}
