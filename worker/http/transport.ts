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
