// zod → ApiError. The only place outside *.schemas.ts that touches zod.
import type { Context } from "hono";
import type * as z from "zod";
import { ApiError, type Issue } from "./errors.ts";

export function toIssues(error: z.ZodError): Issue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map((p) => (typeof p === "symbol" ? String(p) : p)),
    message: issue.message,
  }));
}

export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = toIssues(result.error);
    throw new ApiError(400, "invalid_request", `Invalid ${what}: ${issues.length} problem(s) found.`, issues);
  }
  return result.data;
}

/** Reads and validates a JSON body; a body that is not JSON is a 400, not a 500. */
export async function jsonBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new ApiError(400, "invalid_request", "Request body must be valid JSON.");
  }
  return parseOrThrow(schema, body, "request body");
}

export function queryParams<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  return parseOrThrow(schema, c.req.query(), "query parameters");
}
