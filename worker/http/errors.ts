// The one error type and the one envelope every failure is answered with.
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export type ErrorCode =
  | "invalid_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "payload_too_large"
  | "rate_limited"
  | "unavailable"
  | "internal";

export interface Issue {
  path: (string | number)[];
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly issues?: Issue[],
    /**
     * Seconds the client should wait before retrying, sent as `Retry-After`: on 429, 503, and the 409s
     * that clear by themselves (customers busy in another request, an ingestion or an erasure); a 409
     * without it will not.
     */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const notFound = (message: string) => new ApiError(404, "not_found", message);
export const unauthorized = (message: string) => new ApiError(401, "unauthorized", message);
export const invalidRequest = (message: string, issues?: Issue[]) =>
  new ApiError(400, "invalid_request", message, issues);
export const rateLimited = (message: string, retryAfterSeconds: number) =>
  new ApiError(429, "rate_limited", message, undefined, retryAfterSeconds);
export const unavailable = (message: string, retryAfterSeconds: number) =>
  new ApiError(503, "unavailable", message, undefined, retryAfterSeconds);

/** Builds every error response: `{ error: { code, message, requestId, issues? } }`, never cached. */
export function errorResponse(c: Context, error: ApiError) {
  const requestId = (c.get("requestId") as string | undefined) ?? "";
  c.header("Cache-Control", "no-store");
  if (error.retryAfterSeconds !== undefined)
    c.header("Retry-After", String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
  return c.json(
    {
      error: {
        code: error.code,
        message: error.message,
        requestId,
        ...(error.issues?.length ? { issues: error.issues } : {}),
      },
    },
    error.status,
  );
}
