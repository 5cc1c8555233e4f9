// Turns raw identifiers from a request into keyed hashes (HMAC-SHA-256 with IDENTITY_HASH_SECRET), so
// raw PII is never stored; the console can still look a customer up because the same hash is computed.
import { maskIdentifier, normalizeIdentifier } from "../core/identity/normalize.ts";
import type { IdentityRef } from "../core/identity/resolve.ts";
import { type IdentifierKind, identifierKinds } from "../core/vocabulary.ts";
import { type ShopperTokenSettings, type TokenRefusal, verifyWithSettings } from "../http/shopper-token.ts";

export interface HashedIdentity extends IdentityRef {
  masked: string;
}

export interface IgnoredIdentifier {
  kind: IdentifierKind;
  reason: string;
}

const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    keyCache.set(secret, key);
  }
  return key;
}

const toHex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");

/** HMAC-SHA-256 of `text` with `secret`, as hex: the keyed hash every stored identifier goes through. */
export async function hmacHex(text: string, secret: string): Promise<string> {
  return toHex(await crypto.subtle.sign("HMAC", await hmacKey(secret), new TextEncoder().encode(text)));
}

export async function identityKey(kind: IdentifierKind, normalizedValue: string, secret: string): Promise<string> {
  const signature = await crypto.subtle.sign(
    "HMAC",
    await hmacKey(secret),
    new TextEncoder().encode(`${kind}:${normalizedValue}`),
  );
  return `${kind}:${toHex(signature).slice(0, 40)}`;
}

/** Normalises, blocks junk, masks and hashes one request's identifiers. */
export async function hashIdentifiers(
  identifiers: Partial<Record<IdentifierKind, string | undefined>>,
  secret: string,
): Promise<{ identities: HashedIdentity[]; ignored: IgnoredIdentifier[] }> {
  const identities: HashedIdentity[] = [];
  const ignored: IgnoredIdentifier[] = [];
  for (const kind of identifierKinds) {
    const raw = identifiers[kind];
    if (raw === undefined) continue;
    const normalized = normalizeIdentifier(kind, raw);
    if (!normalized.ok) {
      ignored.push({ kind, reason: normalized.reason });
      continue;
    }
    identities.push({
      kind,
      key: await identityKey(kind, normalized.value, secret),
      masked: maskIdentifier(kind, normalized.value),
    });
  }
  return { identities, ignored };
}

/** A stable source id for an identify call: the same identifiers give the same source, so retries are no-ops. */
export async function identifySource(keys: string[]): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode([...keys].sort().join("|")));
  return `identify:${toHex(digest).slice(0, 32)}`;
}

export type ShopperKey = { ok: true; accountKey: string | null } | { ok: false; reason: TokenRefusal };

/**
 * Verifies a shopper token (current or previous secret, the deployment's lifetime cap) and turns its
 * `sub` into the account's identity key, the one lookup both recommendations and events need.
 * `accountKey` is null for an account id normalisation rejects.
 */
export async function shopperAccountKey(
  token: string,
  secrets: ShopperTokenSettings & { IDENTITY_HASH_SECRET: string },
  now: Date,
): Promise<ShopperKey> {
  const check = await verifyWithSettings(token, secrets, now);
  if (!check.ok) return check;
  const normalized = normalizeIdentifier("account", check.claims.sub);
  return {
    ok: true,
    accountKey: normalized.ok ? await identityKey("account", normalized.value, secrets.IDENTITY_HASH_SECRET) : null,
  };
}
