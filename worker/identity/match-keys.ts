// Match keys for audience exports, an opt-in per deployment (EXPORT_MATCH_KEYS, off by default): what
// an email tool or an ad platform's customer-list upload matches on, stored at ingestion next to the
// identifier's keyed hash. Never a raw email or phone: those are kept only as plain SHA-256 of the
// normalised value, the form customer-list matching expects.
import { sql } from "drizzle-orm";
import type { IdentifierKind } from "../core/vocabulary.ts";

export const matchKeyNames = ["account", "loyalty", "email_sha256", "phone_sha256"] as const;
export type MatchKeyName = (typeof matchKeyNames)[number];

/** The identifier kind each match key is taken from. */
export const matchKeyKind: Record<MatchKeyName, IdentifierKind> = {
  account: "account",
  loyalty: "loyalty",
  email_sha256: "email",
  phone_sha256: "phone",
};

/** The CSV column of each match key. */
export const matchKeyColumn: Record<MatchKeyName, string> = {
  account: "account",
  loyalty: "loyalty",
  email_sha256: "emailSha256",
  phone_sha256: "phoneSha256",
};

/** EXPORT_MATCH_KEYS (comma-separated names) → the enabled names; unknown names are ignored, with a warning. */
export function enabledMatchKeys(setting: string | undefined): Set<MatchKeyName> {
  const enabled = new Set<MatchKeyName>();
  for (const raw of (setting ?? "").split(",")) {
    const name = raw.trim();
    if (!name) continue;
    if ((matchKeyNames as readonly string[]).includes(name)) enabled.add(name as MatchKeyName);
    else console.warn(JSON.stringify({ warning: "EXPORT_MATCH_KEYS names an unknown match key; ignored", name }));
  }
  return enabled;
}

/** The identifier kinds whose match key ingestion stores under these settings. */
export function matchKinds(enabled: ReadonlySet<MatchKeyName>): Set<IdentifierKind> {
  return new Set([...enabled].map((name) => matchKeyKind[name]));
}

const toHex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");

/**
 * The match key of one normalised identifier: the account id or loyalty number as normalised for its
 * key (trimmed; loyalty upper-cased without spaces or dashes), the SHA-256 hex of the email (trimmed,
 * lower-cased) or of the phone in E.164 (`+` and digits). Null for other kinds.
 */
export async function matchKeyOf(kind: IdentifierKind, normalizedValue: string): Promise<string | null> {
  if (kind === "account" || kind === "loyalty") return normalizedValue;
  if (kind === "email" || kind === "phone")
    return toHex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(normalizedValue)));
  return null;
}

/** Stores match keys on the identities just written (same batch, after the identity rows). */
export function matchKeyStatement(rows: readonly { key: string; matchKey?: string | undefined }[]) {
  const keyed = rows.filter((row) => row.matchKey);
  if (keyed.length === 0) return [];
  return [
    sql`
      UPDATE identities SET match_key = j.value ->> 'matchKey'
      FROM json_each(${JSON.stringify(keyed.map(({ key, matchKey }) => ({ key, matchKey })))}) AS j
      WHERE identities.key = j.value ->> 'key'`,
  ];
}
