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
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const notFound = (message: string) => new ApiError(404, "not_found", message);
export const unauthorized = (message: string) => new ApiError(401, "unauthorized", message);
export const invalidRequest = (message: string, issues?: Issue[]) =>
  new ApiError(400, "invalid_request", message, issues);

/** Builds every error response: `{ error: { code, message, requestId, issues? } }`, never cached. */
export function errorResponse(c: Context, error: ApiError) {
  const requestId = (c.get("requestId") as string | undefined) ?? "";
  c.header("Cache-Control", "no-store");
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
