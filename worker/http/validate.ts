// zod → ApiError. The only place outside *.schemas.ts that touches zod.
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import * as z from "zod";
import { ApiError, type Issue } from "./errors.ts";

/** At most this many issues are listed in one answer; the message still counts them all. */
const maxIssuesListed = 100;

export function toIssues(error: z.ZodError): Issue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map((p) => (typeof p === "symbol" ? String(p) : p)),
    message: issue.message,
  }));
}

/** "1 problem found", "3 problems found". */
export const problemsFound = (n: number): string => `${n} ${n === 1 ? "problem" : "problems"} found`;

export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = toIssues(result.error);
    const listed = issues.length > maxIssuesListed ? ` (the first ${maxIssuesListed} are listed)` : "";
    throw new ApiError(
      400,
      "invalid_request",
      `Invalid ${what}: ${problemsFound(issues.length)}${listed}.`,
      issues.slice(0, maxIssuesListed),
    );
  }
  return result.data;
}

/** The default cap on a JSON request body; routes that take batches pass their own. */
export const defaultMaxBodyBytes = 64 * 1024;

const tooLarge = (maxBytes: number) =>
  new ApiError(413, "payload_too_large", `Request body is limited to ${maxBytes.toLocaleString("en-US")} bytes.`);

/**
 * Reads a request body as UTF-8 text, refusing it with 413 as soon as it is known to exceed
 * `maxBytes`: from Content-Length when declared, and from the bytes actually read otherwise (a
 * chunked body, or a Content-Length that undercounts), without buffering more than the limit.
 * Bytes that are not UTF-8, and a compressed body (any Content-Encoding but identity), are a 400.
 */
export async function readBody(request: Request, maxBytes: number): Promise<string> {
  // A compressed body would read as bytes that are not UTF-8: said for what it is.
  const encoding = request.headers.get("Content-Encoding")?.trim().toLowerCase();
  if (encoding && encoding !== "identity")
    throw new ApiError(
      400,
      "invalid_request",
      `Compressed request bodies are not accepted (Content-Encoding: ${encoding}): send the body uncompressed.`,
    );
  const declared = request.headers.get("Content-Length");
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) return "";
  const reader = request.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    parts.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError(400, "invalid_request", "Request body must be UTF-8 text.");
  }
}

/** Parses request text as JSON; text that is not JSON is a 400 with the `notJson` message. */
function parseJson(text: string, notJson: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid_request", notJson);
  }
}

/** Reads a body of at most `maxBytes` and parses it as JSON; anything else is a 400 or 413, never a 500. */
export async function readJson(request: Request, maxBytes: number, notJson: string): Promise<unknown> {
  return parseJson(await readBody(request, maxBytes), notJson);
}

/** The 400 message for a JSON body that does not parse. */
export const notJsonBody = "Request body must be valid JSON.";

/** Reads and validates a JSON body of at most `maxBytes`; a body that is not JSON is a 400, not a 500. */
export async function jsonBody<T extends z.ZodType>(
  c: Context,
  schema: T,
  maxBytes = defaultMaxBodyBytes,
): Promise<z.infer<T>> {
  const body = await readJson(c.req.raw, maxBytes, notJsonBody);
  return parseOrThrow(schema, body, "request body");
}

/**
 * A JSON body a route may go without: undefined when the request sends none (no bytes, or only
 * whitespace, whatever its Content-Type says), else read and validated as jsonBody reads it.
 */
export async function optionalJsonBody<T extends z.ZodType>(
  c: Context,
  schema: T,
  maxBytes = defaultMaxBodyBytes,
): Promise<z.infer<T> | undefined> {
  const text = await readBody(c.req.raw, maxBytes);
  if (text.trim() === "") return undefined;
  return parseOrThrow(schema, parseJson(text, notJsonBody), "request body");
}

/** The keys an object schema reads, through the pipes and transforms wrapped around it; null for another. */
function objectShapeOf(schema: z.ZodType): Record<string, unknown> | null {
  let inner: z.ZodType = schema;
  while (inner instanceof z.ZodPipe) inner = inner.in as z.ZodType;
  return inner instanceof z.ZodObject ? inner.shape : null;
}

/** A route that takes no query parameter: any is a 400 (`DELETE …?dryRun=true` must not delete for real). */
const noQuerySchema = z.strictObject({});

/** Refuses any query parameter, with the 400 queryParams gives a parameter a route does not take. */
export function refuseQuery(c: Context): void {
  queryParams(c, noQuerySchema);
}

/**
 * The request's query parameters as `schema` reads them. A parameter the schema does not name is a 400
 * (a misspelt filter, `tier=top` for `valueTier=top`, would otherwise be dropped and the answer hold
 * everyone), unless the route takes `extra: "ignored"` (a public read a page may append its own to).
 */
export function queryParams<T extends z.ZodType>(
  c: Context,
  schema: T,
  options: { extra?: "refused" | "ignored" } = {},
): z.infer<T> {
  const query = c.req.query();
  const shape = objectShapeOf(schema);
  if (options.extra !== "ignored") {
    // A schema whose names cannot be read (a union, say) would let any name through: a fault of the route.
    if (!shape) throw new Error("queryParams needs an object schema, to refuse the names it does not take.");
    const known = Object.keys(shape);
    const unknown = Object.keys(query).filter((name) => !known.includes(name));
    if (unknown.length > 0) {
      const issues = unknown.map((name) => {
        const near = known.find((key) => {
          const [a, b] = [key.toLowerCase(), name.toLowerCase()];
          return a === b || a.endsWith(b) || b.startsWith(a);
        });
        const hint = near ? ` (did you mean ${near}?)` : "";
        return {
          path: [name],
          message: `${name} is not a parameter of this route${hint}; ${known.length > 0 ? `it takes ${known.join(", ")}` : "it takes none"}`,
        };
      });
      throw new ApiError(
        400,
        "invalid_request",
        `Invalid query parameters: ${issues.map((issue) => issue.message).join("; ")}.`,
        issues.slice(0, maxIssuesListed),
      );
    }
  }
  return parseOrThrow(schema, query, "query parameters");
}

/**
 * Middleware for every API route: a request may carry query parameters only to a route in `readers`
 * ("GET /v1/products", method and path as the app registers them), and such a route reads them with
 * queryParams, which refuses a name its schema does not take. Any other route takes none, and any
 * parameter is the 400 refuseQuery gives, before the route runs (and so before anything is written):
 * `POST /v1/orders?dryRun=true` must not store the orders. A new route takes none until listed.
 */
export function queryOnlyWhereRead(readers: ReadonlySet<string>): MiddlewareHandler {
  return async (c, next) => {
    // HEAD is answered by the GET route.
    const method = c.req.method === "HEAD" ? "GET" : c.req.method;
    // Middleware is registered for "ALL": the first route of the request's own method is the one that answers.
    const route = matchedRoutes(c).find((matched) => matched.method === method);
    if (route && !readers.has(`${method} ${route.path}`)) refuseQuery(c);
    await next();
  };
}
