// An error as Patron keeps or logs it outside a request's own log line (an audience's last delivery
// error, a background step's log): its innermost cause's message, without a failed query's text or
// bound values (drizzle's "Failed query: <SQL>\nparams: ..."), which may hold customer rows.

/** The error's innermost cause's message, cut before any query text; at most 500 characters. */
export function errorText(error: unknown): string {
  let inner = error;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  const text = inner instanceof Error ? inner.message : String(inner);
  const query = text.search(/Failed query:|\nparams:/);
  const kept = query < 0 ? text : text.slice(0, query).trim() || "a database query failed";
  return kept.slice(0, 500);
}
