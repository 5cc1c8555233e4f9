// The form of a webhook signing secret, as Standard Webhooks (https://www.standardwebhooks.com) writes
// one: `whsec_` and the base64 of the HMAC key. Audience secrets are made in this form
// (worker/audiences/secrets.ts), and TRANSITIONS_WEBHOOK_SECRET must be in it.

export const signingSecretPrefix = "whsec_";

/**
 * Whether `text` is a signing secret: `whsec_` and the padded base64 of 24 to 64 bytes, the key sizes
 * the specification allows (audience secrets hold 32). Nothing is trimmed: a stray space is refused.
 */
export function isSigningSecret(text: string): boolean {
  if (!text.startsWith(signingSecretPrefix)) return false;
  const encoded = text.slice(signingSecretPrefix.length);
  if (encoded.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return false;
  const bytes = (encoded.length / 4) * 3 - (encoded.length - encoded.replace(/=+$/, "").length);
  return bytes >= 24 && bytes <= 64;
}
