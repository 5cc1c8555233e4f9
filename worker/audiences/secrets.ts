// Audience webhook signing secrets, in the Standard Webhooks form (`whsec_` + base64 of 32 random
// bytes). The worker must read a secret back to sign with it, so it cannot keep only a hash: it keeps
// it sealed with AES-GCM under a key derived (HKDF) from IDENTITY_HASH_SECRET, so a copy of the
// database alone does not let anyone sign payloads. The API shows a secret once, when it is made.
import { signingSecretPrefix } from "../core/webhooks/signing-secret.ts";

const sealedPrefix = "v1.";
const encoder = new TextEncoder();

export const toBase64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
export const fromBase64 = (text: string) => Uint8Array.from(atob(text), (char) => char.charCodeAt(0));

/** A new signing secret: `whsec_` and 32 random bytes in base64. */
export function newSigningSecret(): string {
  return `${signingSecretPrefix}${toBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/** The HMAC key bytes of a signing secret (the base64 after `whsec_`). */
export function signingKeyBytes(secret: string): Uint8Array {
  return fromBase64(secret.slice(signingSecretPrefix.length));
}

async function sealingKey(masterSecret: string): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey("raw", encoder.encode(masterSecret), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode("patron audience webhook secret") },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** `secret` sealed for storage: `v1.<iv>.<ciphertext>`, base64 parts; the audience id is bound in. */
export async function sealSecret(secret: string, audienceId: string, masterSecret: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: encoder.encode(audienceId) },
    await sealingKey(masterSecret),
    encoder.encode(secret),
  );
  return `${sealedPrefix}${toBase64(iv)}.${toBase64(new Uint8Array(sealed))}`;
}

/** The secret a `sealSecret` result holds; throws if it was sealed for another audience or key. */
export async function openSecret(sealed: string, audienceId: string, masterSecret: string): Promise<string> {
  const [iv, data] = sealed.slice(sealedPrefix.length).split(".");
  if (!sealed.startsWith(sealedPrefix) || !iv || !data) throw new Error("not a sealed audience secret");
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: fromBase64(iv), additionalData: encoder.encode(audienceId) },
    await sealingKey(masterSecret),
    fromBase64(data),
  );
  return new TextDecoder().decode(plain);
}
