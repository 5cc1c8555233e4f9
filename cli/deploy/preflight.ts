// The deploy pre-flight: from wrangler.toml's settings and the names `wrangler secret list` prints,
// decides what would keep the deployment from serving safely. Pure (no I/O, no values of secrets), so
// it is tested on its own; cli/deploy/deploy.ts runs it between the build and the remote migrations,
// the wrangler.toml part first so it answers before any network call.
import { databases } from "../../db/databases.ts";
import { transitionsUrlProblem } from "../../worker/audiences/webhook-url.ts";
import { nightlyRunSubrequests } from "../../worker/core/shards/calls.ts";
import {
  allowedOrigins,
  configProblems,
  invalidOrigins,
  requiredSecrets,
  timeZoneProblem,
} from "../../worker/http/config.ts";
import { parseMaxTtlSeconds } from "../../worker/http/shopper-token.ts";

export interface DeployConfig {
  /** Names of the secrets set on the deployed Worker (`wrangler secret list`). */
  secretNames: readonly string[];
  /** wrangler.toml [vars]. */
  vars: Readonly<Record<string, unknown>>;
  /** wrangler.toml [[d1_databases]]. */
  databases: readonly { binding: string; database_id?: string }[];
  /** wrangler.toml [limits]. */
  limits?: { subrequests?: number };
}

export interface Preflight {
  /** Each one stops the deploy. */
  problems: string[];
  /** Printed, the deploy goes on. */
  warnings: string[];
}

const localHosts = new Set(["localhost", "127.0.0.1", "[::1]"]);
const isLocal = (origin: string) => localHosts.has(new URL(origin).hostname);

/** The [vars] the Worker itself checks that nothing else here does (configProblems, worker/http/config.ts). */
const workerChecked = new Set(["PHONE_DEFAULT_REGION", "RETAILER_CURRENCY", "SHARD_COUNT"]);

/**
 * What wrangler.toml alone shows (no network): ALLOWED_ORIGINS, the lifetime cap, the phone region, the
 * currency, the shard count, the time zone, the transitions webhook URL, the demo, the D1 id.
 */
export function settingsPreflight(config: Omit<DeployConfig, "secretNames">): Preflight {
  const problems: string[] = [];
  const warnings: string[] = [];

  const originsVar = config.vars.ALLOWED_ORIGINS;
  if (typeof originsVar === "string") {
    const origins = allowedOrigins(originsVar);
    const invalid = invalidOrigins(origins);
    if (origins.length === 0)
      problems.push("ALLOWED_ORIGINS is empty: list your storefront origins in wrangler.toml [vars].");
    else if (invalid.length > 0)
      problems.push(
        `ALLOWED_ORIGINS has entries that are not origins (scheme://host[:port], no path or trailing slash): ${invalid.join(", ")}`,
      );
    else if (origins.every(isLocal))
      problems.push(
        `ALLOWED_ORIGINS lists only local origins (${origins.join(", ")}): set your storefront's origins in wrangler.toml [vars].`,
      );
    else {
      const local = origins.filter(isLocal);
      if (local.length > 0) warnings.push(`ALLOWED_ORIGINS still lists local origins: ${local.join(", ")}.`);
      const plain = origins.filter((origin) => !isLocal(origin) && origin.startsWith("http:"));
      if (plain.length > 0) warnings.push(`ALLOWED_ORIGINS lists origins without https: ${plain.join(", ")}.`);
    }
  }

  // Every setting is text to the Worker: `SHARD_COUNT = 4` reaches it as a number, not as "4".
  const unquoted = Object.entries(config.vars).filter(
    ([, value]) => typeof value === "number" || typeof value === "boolean",
  );
  for (const [name, value] of unquoted)
    problems.push(`${name} = ${value} in wrangler.toml [vars] must be quoted: ${name} = "${value}".`);
  const reported = new Set(unquoted.map(([name]) => name));

  const maxTtl = config.vars.SHOPPER_TOKEN_MAX_TTL_SECONDS;
  if (
    maxTtl !== undefined &&
    !reported.has("SHOPPER_TOKEN_MAX_TTL_SECONDS") &&
    (typeof maxTtl !== "string" || parseMaxTtlSeconds(maxTtl) === null)
  )
    problems.push("SHOPPER_TOKEN_MAX_TTL_SECONDS in wrangler.toml must be a positive whole number of seconds.");

  // Settings the Worker refuses with 503 on every route (docs/api.md): caught here, before deploying.
  for (const { name, problem } of configProblems(config.vars))
    if (workerChecked.has(name) && !reported.has(name)) problems.push(`${problem} (wrangler.toml [vars])`);

  const timeZone = timeZoneProblem(config.vars.RETAILER_TIME_ZONE);
  if (timeZone && !reported.has("RETAILER_TIME_ZONE")) problems.push(`${timeZone} (wrangler.toml [vars])`);

  // A deployment never sends to localhost (AUDIENCE_WEBHOOKS_ALLOW_LOCAL is refused below).
  // Empty, it is unset (the Worker sends nothing); unquoted, it is reported above.
  const transitionsUrl = config.vars.TRANSITIONS_WEBHOOK_URL;
  if (typeof transitionsUrl === "string" && transitionsUrl !== "") {
    const problem = transitionsUrlProblem(transitionsUrl, undefined);
    if (problem) problems.push(`${problem} (wrangler.toml [vars])`);
  }

  if (config.vars.PATRON_DEMO === "on")
    problems.push(
      'PATRON_DEMO is "on" in wrangler.toml: the demo storefront hands out shopper tokens and must not run in a deployment.',
    );

  if (
    String(config.vars.RATE_LIMITS ?? "")
      .trim()
      .toLowerCase() === "off"
  )
    problems.push(
      'RATE_LIMITS is "off" in wrangler.toml: every rate limit (failed keys, shelves, events) is switched off, for local benchmarks only. Remove it.',
    );

  if (config.vars.AUDIENCE_WEBHOOKS_ALLOW_LOCAL === "on")
    problems.push(
      'AUDIENCE_WEBHOOKS_ALLOW_LOCAL is "on" in wrangler.toml: it lets audience and transitions webhooks use plain http to localhost, for development only.',
    );

  // One nightly Workflow instance shares one subrequest budget over all its steps.
  const subrequests = config.limits?.subrequests;
  if (subrequests === undefined || subrequests < nightlyRunSubrequests)
    warnings.push(
      `wrangler.toml [limits] subrequests is ${subrequests === undefined ? "not set (Cloudflare's default: 10,000)" : subrequests.toLocaleString("en")}: ` +
        "one nightly run spends that over all its steps, and a run at millions of customers needs more (docs/scaling.md, calls of one nightly run). " +
        `Set [limits] subrequests = ${nightlyRunSubrequests}.`,
    );

  // The two databases (main and events) and wrangler.toml's placeholder ids (zeros, the events one ending in 1).
  const unset = databases.filter(({ binding }) => {
    const id = config.databases.find((database) => database.binding === binding)?.database_id;
    return !id || /^[0-]+1?$/.test(id);
  });
  if (unset.length > 0)
    problems.push(
      `The D1 database_id in wrangler.toml is still the placeholder for ${unset.map((d) => d.binding).join(" and ")}: ` +
        `${unset.map((d) => `run \`npx wrangler d1 create ${d.name}\``).join(", ")} and put the id there.`,
    );

  return { problems, warnings };
}

/** What the secret list shows: every required secret set, and set as a secret (not a plain [vars] value). */
export function secretsPreflight(config: DeployConfig): Preflight {
  const secrets = new Set(config.secretNames);
  const problems = requiredSecrets
    .filter((name) => !secrets.has(name))
    .map((name) =>
      name in config.vars
        ? `${name} is a plain [vars] value in wrangler.toml: remove it there and set it as a secret (npx wrangler secret put ${name}).`
        : `${name} is not set: npx wrangler secret put ${name}`,
    );
  // Known only once the secrets are listed: ALLOWED_ORIGINS may be a secret rather than a [vars] value.
  if (!("ALLOWED_ORIGINS" in config.vars) && !secrets.has("ALLOWED_ORIGINS"))
    problems.push("ALLOWED_ORIGINS is not set: list your storefront origins in wrangler.toml [vars].");
  const warnings: string[] = [];
  const put = "npx wrangler secret put TRANSITIONS_WEBHOOK_SECRET";
  const urlInVars = "TRANSITIONS_WEBHOOK_URL" in config.vars;
  if ("TRANSITIONS_WEBHOOK_SECRET" in config.vars)
    problems.push(
      `TRANSITIONS_WEBHOOK_SECRET is a plain [vars] value in wrangler.toml: remove it there and set it as a secret (${put}).`,
    );
  else if ((urlInVars || secrets.has("TRANSITIONS_WEBHOOK_URL")) && !secrets.has("TRANSITIONS_WEBHOOK_SECRET"))
    warnings.push(
      `TRANSITIONS_WEBHOOK_URL is set without TRANSITIONS_WEBHOOK_SECRET: stage transitions are POSTed unsigned. Set one: echo "whsec_$(openssl rand -base64 32)" | ${put}`,
    );
  // A [vars] URL is checked with wrangler.toml (settingsPreflight); a secret's value cannot be read here.
  if (secrets.has("TRANSITIONS_WEBHOOK_URL") && !urlInVars)
    warnings.push(
      "TRANSITIONS_WEBHOOK_URL is a secret, so its value is not checked here: it must be https to a public host on the default port (no IP address, private name or credentials), or every nightly run with stage transitions fails at its webhook step.",
    );
  return { problems, warnings };
}

/** Everything the pre-flight checks, given the secret names. */
export function deployPreflight(config: DeployConfig): Preflight {
  const secrets = secretsPreflight(config);
  const settings = settingsPreflight(config);
  return {
    problems: [...secrets.problems, ...settings.problems],
    warnings: [...secrets.warnings, ...settings.warnings],
  };
}

/** The secret names in `wrangler secret list --format json` output (`[{ "name": ..., "type": ... }]`). */
export function parseSecretList(stdout: string): string[] {
  const start = stdout.indexOf("[");
  const end = stdout.lastIndexOf("]");
  if (start < 0 || end < start) throw new Error("`wrangler secret list` printed no JSON list of secrets.");
  const list: unknown = JSON.parse(stdout.slice(start, end + 1));
  if (!Array.isArray(list)) throw new Error("`wrangler secret list` printed something other than a list.");
  return list.map((entry) => {
    const name = (entry as { name?: unknown })?.name;
    if (typeof name !== "string") throw new Error("`wrangler secret list` printed an entry without a name.");
    return name;
  });
}
