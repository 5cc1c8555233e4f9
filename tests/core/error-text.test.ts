// What Patron keeps or logs of an error raised outside a request: the innermost cause's message, never
// a failed query's text or bound values.
import { describe, expect, it } from "vitest";
import { errorText } from "../../worker/http/error-text.ts";

describe("errorText", () => {
  it("keeps no query text or bound values in an error it records or logs, cause or no cause", () => {
    const query =
      'Failed query: UPDATE audiences SET sync_pending_page = ? WHERE id = ?\nparams: {"joined":[{"email":"a@b.c"}]},aud_1';
    expect(errorText(new Error(query))).toBe("a database query failed");
    expect(errorText(new Error(query, { cause: new Error("D1_ERROR: string or blob too big") }))).toBe(
      "D1_ERROR: string or blob too big",
    );
    expect(errorText(new Error(`holding page 3: ${query}`))).toBe("holding page 3:");
    expect(errorText("page 2 of 5: answered HTTP 500")).toBe("page 2 of 5: answered HTTP 500");
  });

  it("cuts a long message to 500 characters", () => {
    expect(errorText(new Error("x".repeat(600)))).toHaveLength(500);
  });
});
