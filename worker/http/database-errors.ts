// The one place D1 failures are recognised. D1 and workerd raise plain Errors whose message names the
// condition ("D1_ERROR: database is locked: SQLITE_BUSY", "D1 DB is overloaded. Requests queued for
// too long.", "Network connection lost.", "... storage caused object to be reset."), and drizzle wraps
// them in an error whose `cause` is the original; so the whole cause chain is read. app.onError turns
// the class into an answer: no database condition is ever a bare 500.

export type DatabaseFailure =
  /** Busy, locked, overloaded, reset or unreachable: the same request is expected to work shortly. */
  | { kind: "busy"; retryAfterSeconds: number; message: string }
  /** A value or statement over D1's size limits (SQLITE_TOOBIG, "string or blob too big"). */
  | { kind: "too_big"; message: string }
  /** Any other D1 error: reported as unavailable too, after a longer pause, and logged. */
  | { kind: "database"; retryAfterSeconds: number; message: string };

/** Transient conditions and the seconds a client should wait before trying again. */
const busyPatterns: readonly [RegExp, number][] = [
  [/SQLITE_BUSY|SQLITE_LOCKED|database (?:table )?is locked/i, 1],
  [/overloaded|too many requests queued|requests queued for too long/i, 5],
  [/network connection lost|connection (?:was )?reset|client disconnected|transient issue/i, 2],
  [/caused object to be reset|was reset|exceeded (?:its )?(?:timeout|cpu time limit|memory limit)/i, 5],
  [/storage operation exceeded timeout|operation timed out|SQLITE_IOERR|SQLITE_INTERRUPT/i, 5],
];

const tooBigPattern = /SQLITE_TOOBIG|string or blob too big|statement too long|too many SQL variables/i;

/** A D1 or SQLite error, by its message: D1_ERROR, D1_EXEC_ERROR, D1_TYPE_ERROR, "D1 DB ...", SQLITE_*. */
const databasePattern = /\bD1_[A-Z_]+\b|\bD1 DB\b|\bSQLITE_[A-Z_]+\b/;

/** Messages along the error's cause chain (bounded, so a cyclic chain cannot loop). */
function messagesOf(error: unknown): string[] {
  const messages: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      messages.push(current.message);
      current = (current as { cause?: unknown }).cause;
    } else {
      messages.push(String(current));
      break;
    }
  }
  return messages;
}

/** The database condition behind `error`, or null when it is not a D1 error. */
export function classifyDatabaseError(error: unknown): DatabaseFailure | null {
  const messages = messagesOf(error);
  for (const message of messages) {
    for (const [pattern, retryAfterSeconds] of busyPatterns) {
      if (pattern.test(message)) return { kind: "busy", retryAfterSeconds, message };
    }
  }
  for (const message of messages) {
    if (tooBigPattern.test(message)) return { kind: "too_big", message };
  }
  for (const message of messages) {
    if (databasePattern.test(message)) return { kind: "database", retryAfterSeconds: 10, message };
  }
  return null;
}
