// Which URLs an audience webhook (and the transitions webhook) may point at. The worker POSTs customer lists there every night, so a
// URL is a place customer data goes and a request the worker makes on someone's say-so: https only, to
// a public host name on the default port, without credentials in the URL. Plain http is accepted only
// for localhost / 127.0.0.1, and only where AUDIENCE_WEBHOOKS_ALLOW_LOCAL is "on" (a local receiver in
// development and tests). Checked when an audience is saved and again before each delivery.

/** Longest accepted webhook URL, in characters. */
export const maxWebhookUrlLength = 2048;

const localHosts = new Set(["localhost", "127.0.0.1"]);
/**
 * Names that resolve inside a network or nowhere, never to a public host: private names, the special-use
 * names of RFC 6761 (test, invalid, example, localhost), .onion (RFC 7686), .alt (RFC 9476), .arpa's
 * reverse and home names, `localdomain` (loopback on many hosts) and Kubernetes' service names (.svc).
 * Cloudflare resolves with public DNS, where none of these is a public host; a self-hosted workerd
 * or `wrangler dev` would resolve them on its own network.
 */
const privateSuffixes = [
  ".localhost",
  ".local",
  ".internal",
  ".lan",
  ".intranet",
  ".corp",
  ".localdomain",
  ".test",
  ".invalid",
  ".example",
  ".onion",
  ".alt",
  ".arpa",
  ".svc",
];

const isIpLiteral = (hostname: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith("[");

/** "on" lets webhooks use http to localhost / 127.0.0.1. */
export const allowsLocalWebhooks = (setting: string | undefined) => setting === "on";

/** Why `raw` may not be an audience webhook URL, or null when it may. */
export function webhookUrlProblem(raw: string, allowLocal: boolean): string | null {
  if (raw.length > maxWebhookUrlLength) return `must be at most ${maxWebhookUrlLength} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "must be an absolute URL (https://…)";
  }
  if (url.username || url.password)
    return "must not carry credentials: the payload is signed (webhook-signature), verify that instead";
  // A fully qualified name's trailing dot ("localhost.") names the same host: checked without it.
  const hostname = url.hostname.toLowerCase().replace(/\.+$/, "");
  if (url.protocol === "http:" && allowLocal && localHosts.has(hostname)) return null;
  if (url.protocol !== "https:")
    return allowLocal
      ? "must use https (http only to localhost or 127.0.0.1)"
      : "must use https (http to localhost needs AUDIENCE_WEBHOOKS_ALLOW_LOCAL=on, for development only)";
  if (url.port && url.port !== "443") return "must use the default https port";
  if (isIpLiteral(hostname)) return "must name a host, not an IP address";
  if (localHosts.has(hostname) || !hostname.includes(".") || privateSuffixes.some((s) => hostname.endsWith(s)))
    return "must name a public host";
  return null;
}

/**
 * Why TRANSITIONS_WEBHOOK_URL may not be sent to, or null: the same rule, since what it receives is
 * customer ids and their stages (worker/jobs/transitions.webhook.ts; the deploy pre-flight too).
 */
export function transitionsUrlProblem(url: string, allowLocal: string | undefined): string | null {
  const problem = webhookUrlProblem(url, allowsLocalWebhooks(allowLocal));
  return problem && `TRANSITIONS_WEBHOOK_URL ${problem}.`;
}
