import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

describe("GET /health", () => {
  it("answers ok with a request id", async () => {
    const response = await SELF.fetch("http://patron.test/health");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { status: "ok" } });
    expect(response.headers.get("X-Request-Id")).toMatch(/.+/);
  });

  it("echoes a caller's request id", async () => {
    const response = await SELF.fetch("http://patron.test/health", { headers: { "X-Request-Id": "abc-123" } });
    expect(response.headers.get("X-Request-Id")).toBe("abc-123");
  });

  it("answers unknown routes with the error envelope", async () => {
    const response = await SELF.fetch("http://patron.test/nope");
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; requestId: string } };
    expect(body.error.code).toBe("not_found");
    expect(body.error.requestId).toBe(response.headers.get("X-Request-Id"));
    expect(response.headers.get("Cache-Control")).toBe("no-store");
  });

  it("says at the root, where a browser lands, where the console and the API are", async () => {
    const response = await SELF.fetch("http://patron.test/");
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: "not_found" });
    expect(body.error.message).toBe(
      "No route for GET /. The console is at /console (and, with PATRON_DEMO on, the demo storefront at /demo); the API is under /v1.",
    );
    const other = (await (await SELF.fetch("http://patron.test/nope")).json()) as { error: { message: string } };
    expect(other.error.message).toBe("No route for GET /nope.");
  });
});
