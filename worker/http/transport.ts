// Strict-Transport-Security: a browser that once reached the worker over https goes on using https for
// that host, so no later request goes in the clear, where a network could answer in the worker's place
// (a look-alike sign-in page collecting the admin key, say).

/** One year, the usual value; no includeSubDomains: the worker's host name speaks only for itself. */
export const strictTransportSecurity = "max-age=31536000";

/**
 * Whether a response to this URL carries Strict-Transport-Security: over https only (a browser ignores
 * it over http anyway), and never for localhost or an IP address, so a local https run cannot pin every
 * local port to https.
 */
export function sendsStrictTransportSecurity(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol !== "https:") return false;
  const host = hostname.toLowerCase().replace(/\.$/, "");
  const local = host === "localhost" || host.endsWith(".localhost");
  const ipAddress = host.startsWith("[") || /^\d+(?:\.\d+){3}$/.test(host);
  return !local && !ipAddress;
}

/**
 * Whether a host name is this machine itself (`localhost`, `*.localhost`, 127.0.0.0/8, `[::1]`): a
 * request to it never crosses a network, so plain http there reads nothing to anyone (a local
 * `npm start`, the end-to-end tests on 127.0.0.1). Any other name or address, a private one included,
 * is reached over a network.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  return host === "localhost" || host.endsWith(".localhost") || host === "[::1]" || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/**
 * Whether a request came over plain http to a host that is not this machine: whatever it carries (the
 * admin key, a session cookie) crossed a network in clear, and its answer could come from anyone on the
 * way. The scheme is the one the browser used: on Cloudflare the URL a Worker is given is the
 * visitor's, TLS ended at Cloudflare's edge, never a proxy's hop behind it.
 */
export function isPlainHttpOverNetwork(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === "http:" && !isLoopbackHost(hostname);
}

/** The same address over https (path and query kept): where a plain-http request is sent instead. */
export function httpsAddress(url: string): string {
  const secure = new URL(url);
  secure.protocol = "https:";
  return secure.href;
}
