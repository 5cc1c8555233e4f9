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
});
