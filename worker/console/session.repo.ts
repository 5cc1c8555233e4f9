// Console sessions in D1: rows keyed by the SHA-256 of the session id the browser holds in its cookie,
// each with a keyed digest of the admin key it was opened with, so rotating the key ends it.
import { and, eq, gt, inArray, isNull, lte, ne, or } from "drizzle-orm";
import { consoleSessions } from "../../db/schema.ts";
import type { Db } from "../env.ts";
import { hmacHex } from "../identity/identity.keys.ts";

/** Hex SHA-256 of a session id: what is stored and looked up, never the id itself. */
export async function sessionIdHash(sessionId: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(sessionId));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

let lastDigest: { adminKey: string; secret: string; digest: Promise<string> } | undefined;

/**
 * What a session keeps of the admin key it was opened with: an HMAC of the key under IDENTITY_HASH_SECRET
 * (never the key, nor a plain hash a copy of the database could test guesses against).
 */
export function adminKeyDigest(adminKey: string, secret: string): Promise<string> {
  // Every request a console cookie authenticates asks for it, and both inputs are fixed for an isolate's life:
  // keep the last one rather than sign again per request.
  if (lastDigest?.adminKey !== adminKey || lastDigest.secret !== secret) {
    lastDigest = { adminKey, secret, digest: hmacHex(`console-session-admin-key:${adminKey}`, secret) };
  }
  return lastDigest.digest;
}

/** A new random session id: 32 bytes from the platform's CSPRNG, base64url. */
export function newSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/**
 * Stores a session (with the name its user gave, if any, and the digest of the admin key it was opened
 * with) and, in the same batch, drops every session already expired or opened with another admin key
 * (refused from now on; the table holds at most 12 hours of sign-ins) and the sessions `replacing`
 * names (the hashes of the ids the signing-in browser still carried): a sign-in ends the session it
 * replaces.
 */
export async function createSession(
  db: Db,
  session: { idHash: string; now: Date; expiresAt: Date; userName: string | null; adminKeyDigest: string },
  replacing: string[] = [],
): Promise<void> {
  const { idHash, now, expiresAt, userName, adminKeyDigest } = session;
  await db.batch([
    db
      .delete(consoleSessions)
      .where(
        or(
          lte(consoleSessions.expiresAt, now.toISOString()),
          isNull(consoleSessions.adminKeyDigest),
          ne(consoleSessions.adminKeyDigest, adminKeyDigest),
        ),
      ),
    ...(replacing.length > 0 ? [db.delete(consoleSessions).where(inArray(consoleSessions.idHash, replacing))] : []),
    db.insert(consoleSessions).values({
      idHash,
      createdAt: now.toISOString(),
      expiresAt: expiresAt.toISOString(),
      userName,
      adminKeyDigest,
    }),
  ]);
}

/**
 * The session with this hash at `now`: live (with the name given at sign-in) while it has not expired
 * and was opened with the admin key whose digest is `adminKeyDigest`; `keyChanged` when it was opened
 * with another key; `ended` when it has expired, was never made or was signed out, and when it was
 * opened before sessions kept their key's digest (such a row cannot show which key opened it).
 */
export async function liveSession(
  db: Db,
  idHash: string,
  now: Date,
  adminKeyDigest: string,
): Promise<{ kind: "live"; userName: string | null } | { kind: "keyChanged" } | { kind: "ended" }> {
  const [row] = await db
    .select({ userName: consoleSessions.userName, adminKeyDigest: consoleSessions.adminKeyDigest })
    .from(consoleSessions)
    .where(and(eq(consoleSessions.idHash, idHash), gt(consoleSessions.expiresAt, now.toISOString())))
    .limit(1);
  if (!row || row.adminKeyDigest === null) return { kind: "ended" };
  if (row.adminKeyDigest !== adminKeyDigest) return { kind: "keyChanged" };
  return { kind: "live", userName: row.userName };
}

/** Ends the sessions with these hashes; `{ kind: "ended" }` whether or not they still existed. */
export async function deleteSessions(db: Db, idHashes: string[]): Promise<{ kind: "ended" }> {
  if (idHashes.length > 0) await db.delete(consoleSessions).where(inArray(consoleSessions.idHash, idHashes));
  return { kind: "ended" };
}
