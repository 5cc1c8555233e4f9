// Delivering one page to a webhook (an audience's changes, or the nightly job's stage transitions:
// worker/jobs/transitions.webhook.ts), signed the Standard Webhooks way (https://www.standardwebhooks.com):
// `webhook-id` (the delivery id, the same on every retry of the page: receivers drop a repeat),
// `webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of
// `<id>.<timestamp>.<body>` under the `whsec_` secret), so any Standard Webhooks library verifies it.
// Without a secret the POST carries the id and timestamp but no signature. Redirects are not followed:
// the URL that was checked or configured is the only place the data goes.
import { signingKeyBytes, toBase64 } from "./secrets.ts";

/** How long one POST may take before it counts as failed (and is retried). */
export const deliveryTimeoutMs = 15_000;

export interface Delivery {
  url: string;
  /** The `whsec_` signing secret; null sends the POST unsigned (no `webhook-signature`). */
  secret: string | null;
  id: string;
  body: string;
  /** The User-Agent header, naming what is sent: "Patron-Audiences/1", "Patron-Transitions/1". */
  agent: string;
}

/** What a receiver answered: `ok` for 2xx; `retry` false when sending the same page again cannot help. */
export type DeliveryResult =
  | { ok: true; statusCode: number }
  | { ok: false; retry: boolean; statusCode: number | null; error: string };

export async function signature(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", signingKeyBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestamp}.${body}`));
  return `v1,${toBase64(new Uint8Array(mac))}`;
}

/** 408 and 429 say "later"; any other 4xx says the receiver will not take this page. */
const retryableStatus = (status: number) => status >= 500 || status === 408 || status === 429;

export async function deliver(delivery: Delivery, now: Date): Promise<DeliveryResult> {
  const timestamp = Math.floor(now.getTime() / 1000);
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "User-Agent": delivery.agent,
    "webhook-id": delivery.id,
    "webhook-timestamp": String(timestamp),
  };
  if (delivery.secret !== null)
    headers["webhook-signature"] = await signature(delivery.secret, delivery.id, timestamp, delivery.body);
  let response: Response;
  try {
    response = await fetch(delivery.url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(deliveryTimeoutMs),
      headers,
      body: delivery.body,
    });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    return {
      ok: false,
      retry: true,
      statusCode: null,
      // The runtime's own words for the failure, without the error's class name ("TypeError: ...").
      error: timedOut
        ? `no answer within ${deliveryTimeoutMs / 1000} s`
        : `could not connect: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  // The body is not read: only the status matters, and an unread body must still be released.
  await response.body?.cancel();
  if (response.status >= 200 && response.status < 300) return { ok: true, statusCode: response.status };
  if (response.status >= 300 && response.status < 400)
    return { ok: false, retry: false, statusCode: response.status, error: "answered with a redirect (not followed)" };
  return {
    ok: false,
    retry: retryableStatus(response.status),
    statusCode: response.status,
    error: `answered HTTP ${response.status}`,
  };
}
