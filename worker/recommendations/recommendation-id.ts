// Recommendation ids that carry, under an HMAC, what an attribution must match: the holdout arm, the
// shopper it was served to, the items served and when it was issued. Nothing is stored per request:
// an impression, click or order attribution is checked against the id alone.
//
// Format: rec_<nonce>.<arm>.<issuedAt>.<tags>.<signature>
//   nonce      8 base64url characters (48 random bits): every response gets its own id
//   arm        p (personalized), h (holdout) or a (anonymous)
//   issuedAt   issue time, whole seconds since the epoch, base 36
//   tags       2 base64url characters per served item, in shelf order: the first 12 bits of
//              HMAC(key, "tag|" nonce "|" item id); an item belongs to the id when its tag is listed
//   signature  11 base64url characters: the first 64 bits of HMAC(key, <everything before it> "|" subject)
// The subject is signed but not written: `customer:<id>` for a known customer, `account:<identity key>`
// for a signed-in account Patron has no customer for yet, `anonymous` without a token. The key is
// derived from SHOPPER_TOKEN_SECRET (verification also tries SHOPPER_TOKEN_SECRET_PREVIOUS).

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

export type ServedArm = "personalized" | "holdout" | "anonymous";

const armCodes: Record<ServedArm, string> = { personalized: "p", holdout: "h", anonymous: "a" };
const armOfCode: Record<string, ServedArm> = { p: "personalized", h: "holdout", a: "anonymous" };

/** Items a recommendation id can list: the route's `limit` maximum. */
export const maxTaggedItems = 48;
/** Longest id this format produces (48 items): wire schemas must accept at least this many characters. */
export const maxRecommendationIdLength = 4 + 8 + 3 + 8 + 1 + 2 * maxTaggedItems + 1 + 11;

export const anonymousSubject = "anonymous";
export const customerSubject = (customerId: string) => `customer:${customerId}`;
export const accountSubject = (accountKey: string) => `account:${accountKey}`;

function signingKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey(
      "raw",
      encoder.encode(`recommendation-id:${secret}`),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    keys.set(secret, key);
  }
  return key;
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Unpadded base64url of the bytes: always the canonical spelling (unused low bits are zero). */
function base64url(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alphabet[(buffer >> bits) & 63];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += alphabet[(buffer << (6 - bits)) & 63];
  return out;
}

async function mac(secret: string, text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", await signingKey(secret), encoder.encode(text)));
}

/** The 12-bit tag of one item under one nonce, as two base64url characters. */
async function itemTag(secret: string, nonce: string, itemId: string): Promise<string> {
  const bytes = await mac(secret, `tag|${nonce}|${itemId}`);
  const bits = ((bytes[0] as number) << 4) | ((bytes[1] as number) >> 4);
  return (alphabet[bits >> 6] as string) + (alphabet[bits & 63] as string);
}

async function signature(secret: string, body: string, subject: string): Promise<string> {
  return base64url((await mac(secret, `${body}|${subject}`)).slice(0, 8));
}

/** Compares two strings of equal length without an early exit. */
function sameString(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export interface IssuedRecommendation {
  arm: ServedArm;
  /** Who it is served to: customerSubject(), accountSubject() or anonymousSubject. */
  subject: string;
  /** The served item ids, in shelf order (at most maxTaggedItems are listed). */
  itemIds: readonly string[];
  issuedAt: Date;
}

export async function newRecommendationId(issued: IssuedRecommendation, secret: string): Promise<string> {
  const nonce = base64url(crypto.getRandomValues(new Uint8Array(6)));
  const tags = await Promise.all(issued.itemIds.slice(0, maxTaggedItems).map((id) => itemTag(secret, nonce, id)));
  const issuedAt = Math.floor(issued.issuedAt.getTime() / 1000).toString(36);
  const body = `rec_${nonce}.${armCodes[issued.arm]}.${issuedAt}.${tags.join("")}`;
  return `${body}.${await signature(secret, body, issued.subject)}`;
}

export interface ParsedRecommendationId {
  id: string;
  nonce: string;
  arm: ServedArm;
  issuedAt: Date;
  tags: string[];
  body: string;
  signature: string;
}

const idPattern =
  /^rec_([A-Za-z0-9_-]{8})\.([pha])\.([0-9a-z]{1,8})\.((?:[A-Za-z0-9_-]{2}){0,48})\.([A-Za-z0-9_-]{11})$/;

/** The parts of an id in the current format, unverified; null for anything else (old ids included). */
export function parseRecommendationId(id: string): ParsedRecommendationId | null {
  const match = idPattern.exec(id);
  if (!match) return null;
  const [, nonce, arm, issued, tags, sig] = match as unknown as [string, string, string, string, string, string];
  const seconds = Number.parseInt(issued, 36);
  return {
    id,
    nonce,
    arm: armOfCode[arm] as ServedArm,
    issuedAt: new Date(seconds * 1000),
    tags: tags.match(/.{2}/g) ?? [],
    body: id.slice(0, id.lastIndexOf(".")),
    signature: sig,
  };
}

/**
 * The secret the id was signed with when it was served to one of `subjects` (a shopper and the
 * customers merged into them), or null when it was not: forged, tampered with, or someone else's.
 */
export async function signerOf(
  parsed: ParsedRecommendationId,
  subjects: readonly string[],
  secrets: readonly string[],
): Promise<string | null> {
  for (const secret of secrets) {
    for (const subject of subjects) {
      if (sameString(await signature(secret, parsed.body, subject), parsed.signature)) return secret;
    }
  }
  return null;
}

/** Whether the item was among those served under the id (false positives: about items ÷ 4096). */
export async function wasServed(parsed: ParsedRecommendationId, secret: string, itemId: string): Promise<boolean> {
  if (parsed.tags.length === 0) return false;
  const tag = await itemTag(secret, parsed.nonce, itemId);
  return parsed.tags.includes(tag);
}
