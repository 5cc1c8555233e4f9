// Turns raw identifiers from a request into keyed hashes (HMAC-SHA-256 with IDENTITY_HASH_SECRET), so
// raw PII is never stored; the console can still look a customer up because the same hash is computed.
import { maskIdentifier, normalizeIdentifier } from "../core/identity/normalize.ts";
import type { IdentityRef } from "../core/identity/resolve.ts";
import { type Trust, trustOf } from "../core/identity/trust.ts";
import { type IdentifierKind, identifierKinds } from "../core/vocabulary.ts";
import { type ShopperTokenSettings, type TokenRefusal, verifyWithSettings } from "../http/shopper-token.ts";
import { matchKeyOf } from "./match-keys.ts";
import { defaultPhoneRegion, normalizeForKey } from "./phone.ts";

export { normalizeForKey };

export interface HashedIdentity extends IdentityRef {
  masked: string;
  trust: Trust;
  /** The export match key, only for the kinds a deployment opted into (identity/match-keys.ts). */
  matchKey?: string;
  /** The key the id had while account and device ids were NFKC-folded, where it differs (foldedKey). */
  foldedKey?: string;
}

/** An identifier as sent on the wire: a bare value (the kind's default trust) or a value with its trust. */
export type WireIdentifier = string | { value: string; verified?: boolean | undefined };

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

/** Normalises, blocks junk, masks, hashes and weighs the trust of one request's identifiers. */
/**
 * The key an account or device id had before ids of those kinds were keyed as sent: NFKC-folded and
 * trimmed (`ｊｏｈｎ` was keyed as `john`). Null where that is the key it has now (every printable ASCII
 * id) and for the other kinds. An erasure recorded before put that key on the suppression list, so
 * whatever checks the list checks it too (suppressionKeysOf): the erased person's id, sent as it always
 * was, stays refused. It matches nothing else: no customer is found or joined by it.
 */
export async function foldedKey(
  kind: IdentifierKind,
  raw: string,
  normalizedValue: string,
  secret: string,
): Promise<string | null> {
  if (kind !== "account" && kind !== "device") return null;
  const folded = foldedValue(raw);
  return folded !== "" && folded !== normalizedValue ? identityKey(kind, folded, secret) : null;
}

/** An account or device id as it was keyed before: NFKC-folded and trimmed (see foldedKey). */
export const foldedValue = (raw: string) => raw.normalize("NFKC").trim();

/**
 * A folded key as the suppression list is asked for it (suppressedKeys, suppressionGuard): it matches
 * only rows listed while ids were keyed folded (suppressions.folded_era), never a later erasure of the
 * plain id it folds to, which is another person's.
 */
export const foldedEraKey = (key: string) => `${foldedEraPrefix}${key}`;
export const foldedEraPrefix = "folded-era|";

/** The keys the suppression list is checked for: each identifier's, and its folded key where it has one. */
export const suppressionKeysOf = (identities: readonly { key: string; foldedKey?: string | null }[]): string[] =>
  identities.flatMap(({ key, foldedKey }) => (foldedKey ? [key, foldedEraKey(foldedKey)] : [key]));

export async function hashIdentifiers(
  identifiers: Partial<Record<IdentifierKind, WireIdentifier | undefined>>,
  secret: string,
  phoneRegion = defaultPhoneRegion,
  matchKinds: ReadonlySet<IdentifierKind> = new Set(),
): Promise<{ identities: HashedIdentity[]; ignored: IgnoredIdentifier[] }> {
  const identities: HashedIdentity[] = [];
  const ignored: IgnoredIdentifier[] = [];
  for (const kind of identifierKinds) {
    const sent = identifiers[kind];
    if (sent === undefined) continue;
    const raw = typeof sent === "string" ? sent : sent.value;
    const trust = trustOf(kind, typeof sent === "string" ? undefined : sent.verified);
    if (trust === null) {
      // The schema refuses this; kept so a caller that skips it cannot create a verified device.
      ignored.push({ kind, reason: `a ${kind} cannot be verified` });
      continue;
    }
    const normalized = normalizeForKey(kind, raw, phoneRegion);
    if (!normalized.ok) {
      ignored.push({ kind, reason: normalized.reason });
      continue;
    }
    const matchKey = matchKinds.has(kind) ? await matchKeyOf(kind, normalized.value) : null;
    const folded = await foldedKey(kind, raw, normalized.value, secret);
    identities.push({
      kind,
      key: await identityKey(kind, normalized.value, secret),
      masked: maskIdentifier(kind, normalized.value),
      trust,
      ...(matchKey ? { matchKey } : {}),
      ...(folded ? { foldedKey: folded } : {}),
    });
  }
  return { identities, ignored };
}

/**
 * A stable source id for an identify call: the same identifiers with the same trust give the same
 * source, so retries are no-ops. Verified keys hash as they always did (calls stored before trust
 * existed keep their source); unverified ones carry a marker, so vouching for an identifier later is
 * new evidence, not a retry.
 */
export async function identifySource(identities: { key: string; trust: Trust }[]): Promise<string> {
  const parts = identities.map(({ key, trust }) => (trust === "verified" ? key : `${key}~unverified`));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.sort().join("|")));
  return `identify:${toHex(digest).slice(0, 32)}`;
}

export type ShopperKey =
  | { ok: true; accountKey: string | null; foldedAccountKey?: string }
  | { ok: false; reason: TokenRefusal };

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
  if (!normalized.ok) return { ok: true, accountKey: null };
  const secret = secrets.IDENTITY_HASH_SECRET;
  const folded = await foldedKey("account", check.claims.sub, normalized.value, secret);
  return {
    ok: true,
    accountKey: await identityKey("account", normalized.value, secret),
    ...(folded ? { foldedAccountKey: folded } : {}),
  };
}
