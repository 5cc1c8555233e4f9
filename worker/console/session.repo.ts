// Console sessions in D1: rows keyed by the SHA-256 of the session id the browser holds in its cookie.
import { and, eq, gt, inArray, lte } from "drizzle-orm";
import { consoleSessions } from "../../db/schema.ts";
import type { Db } from "../env.ts";

/** Hex SHA-256 of a session id: what is stored and looked up, never the id itself. */
export async function sessionIdHash(sessionId: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(sessionId));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
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
 * Stores a session (with the name its user gave, if any) and, in the same batch, drops every session
 * already expired (an indexed delete) and the sessions `replacing` names (the hashes of the ids the
 * signing-in browser still carried): a sign-in ends the session it replaces.
 */
export async function createSession(
  db: Db,
  idHash: string,
  now: Date,
  expiresAt: Date,
  userName: string | null = null,
  replacing: string[] = [],
): Promise<void> {
  await db.batch([
    db.delete(consoleSessions).where(lte(consoleSessions.expiresAt, now.toISOString())),
    ...(replacing.length > 0 ? [db.delete(consoleSessions).where(inArray(consoleSessions.idHash, replacing))] : []),
    db
      .insert(consoleSessions)
      .values({ idHash, createdAt: now.toISOString(), expiresAt: expiresAt.toISOString(), userName }),
  ]);
}

/** The session with this hash, when it exists and has not expired at `now`: the name given at sign-in. */
export async function liveSession(db: Db, idHash: string, now: Date): Promise<{ userName: string | null } | null> {
  const [row] = await db
    .select({ userName: consoleSessions.userName })
    .from(consoleSessions)
    .where(and(eq(consoleSessions.idHash, idHash), gt(consoleSessions.expiresAt, now.toISOString())))
    .limit(1);
  return row ?? null;
}

/** Ends the sessions with these hashes; `{ kind: "ended" }` whether or not they still existed. */
export async function deleteSessions(db: Db, idHashes: string[]): Promise<{ kind: "ended" }> {
  if (idHashes.length > 0) await db.delete(consoleSessions).where(inArray(consoleSessions.idHash, idHashes));
  return { kind: "ended" };
}
