// A deployment missing a required secret or ALLOWED_ORIGINS refuses to serve: the real app called with
// an env that lacks one answers every route, /health included, with 503 `unavailable` naming what is
// missing and never echoing a configured value.
import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { createApp } from "../../worker/app.ts";
import { newSigningSecret } from "../../worker/audiences/secrets.ts";
import { configProblems, requiredSettings } from "../../worker/http/config.ts";
import { adminKey, anOrder, apiKey } from "../fixtures/builders.ts";

const app = createApp();
const call = (path: string, init: RequestInit, overrides: Record<string, string | undefined>) =>
  app.request(`http://patron.test${path}`, init, { ...env, ...overrides });

const requests: [string, RequestInit][] = [
  ["/health", {}],
  ["/v1/recommendations", {}],
  ["/v1/events", { method: "POST", body: JSON.stringify({ type: "view", productId: "cfg-p" }) }],
  [
    "/v1/orders",
    {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ orders: [anOrder({ id: "config-order" })] }),
    },
  ],
  ["/v1/admin/models", { headers: { Authorization: `Bearer ${adminKey}` } }],
  ["/demo/token?account=demo-new", {}],
];

describe("a deployment missing configuration", () => {
  it.each(requiredSettings)("answers every route with 503 when %s is missing", async (name) => {
    for (const [path, init] of requests) {
      for (const value of [undefined, "", "   "]) {
        const response = await call(path, init, { [name]: value, PATRON_DEMO: "on" });
        expect(response.status, `${path} without ${name}`).toBe(503);
        expect(response.headers.get("Retry-After")).toMatch(/^\d+$/);
        const body = (await response.json()) as {
          error: { code: string; message: string; requestId: string; issues: { path: string[] }[] };
        };
        expect(body.error.code).toBe("unavailable");
        expect(body.error.message).toContain(name);
        expect(body.error.issues.map((issue) => issue.path[0])).toEqual([name]);
        expect(body.error.requestId).toBe(response.headers.get("X-Request-Id"));
        for (const secret of [
          env.PATRON_API_KEY,
          env.PATRON_ADMIN_KEY,
          env.SHOPPER_TOKEN_SECRET,
          env.IDENTITY_HASH_SECRET,
        ])
          expect(JSON.stringify(body)).not.toContain(secret);
      }
    }
  });

  it("lets a storefront's browser read the 503 from an allowed origin, so it can say why", async () => {
    const origin = env.ALLOWED_ORIGINS.split(",")[0]?.trim() as string;
    for (const [path, init] of requests.filter(
      ([path]) => path.startsWith("/v1/recommendations") || path.startsWith("/v1/events"),
    )) {
      const response = await call(
        path,
        { ...init, headers: { Origin: origin } },
        { SHOPPER_TOKEN_MAX_TTL_SECONDS: "abc" },
      );
      expect(response.status, path).toBe(503);
      expect(response.headers.get("Access-Control-Allow-Origin"), path).toBe(origin);
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain(
        "SHOPPER_TOKEN_MAX_TTL_SECONDS",
      );
      // Another origin still gets no CORS header.
      const other = await call(
        path,
        { ...init, headers: { Origin: "https://elsewhere.test" } },
        {
          SHOPPER_TOKEN_MAX_TTL_SECONDS: "abc",
        },
      );
      expect(other.status).toBe(503);
      expect(other.headers.get("Access-Control-Allow-Origin")).toBeNull();
    }
  });

  it("names everything that is missing at once", async () => {
    const response = await call("/health", {}, { PATRON_ADMIN_KEY: undefined, ALLOWED_ORIGINS: undefined });
    expect(response.status).toBe(503);
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toContain("PATRON_ADMIN_KEY, ALLOWED_ORIGINS");
  });

  it("refuses ALLOWED_ORIGINS entries that can never match an Origin header, and a bad lifetime cap", async () => {
    for (const origins of ["https://shop.test/", "shop.test", "https://shop.test/path", "ftp://shop.test"]) {
      const response = await call("/health", {}, { ALLOWED_ORIGINS: `http://127.0.0.1:8787,${origins}` });
      expect(response.status, origins).toBe(503);
    }
    for (const cap of ["0", "-5", "1e9", "a day", "86400.5"]) {
      const response = await call("/health", {}, { SHOPPER_TOKEN_MAX_TTL_SECONDS: cap });
      expect(response.status, cap).toBe(503);
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain(
        "SHOPPER_TOKEN_MAX_TTL_SECONDS",
      );
    }
  });

  it("refuses a phone region libphonenumber does not know, and accepts known ones in any case", async () => {
    for (const region of ["UK", "XX", "Britain"]) {
      const response = await call("/health", {}, { PHONE_DEFAULT_REGION: region });
      expect(response.status, region).toBe(503);
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain(
        "PHONE_DEFAULT_REGION",
      );
    }
    for (const region of ["GB", "fr", " US "])
      expect((await call("/health", {}, { PHONE_DEFAULT_REGION: region })).status, region).toBe(200);
  });

  it("refuses a shop currency that is not an ISO 4217 code in capitals, and accepts one that is", async () => {
    for (const currency of ["eur", "EURO", "€", "US$"]) {
      const response = await call("/health", {}, { RETAILER_CURRENCY: currency });
      expect(response.status, currency).toBe(503);
      const { error } = (await response.json()) as { error: { issues: { path: string[]; message: string }[] } };
      expect(error.issues).toEqual([
        {
          path: ["RETAILER_CURRENCY"],
          message: "RETAILER_CURRENCY must be an ISO 4217 currency code in capitals, such as USD, EUR or JPY.",
        },
      ]);
    }
    for (const currency of ["EUR", "JPY", " GBP ", undefined])
      expect((await call("/health", {}, { RETAILER_CURRENCY: currency })).status, currency).toBe(200);
  });

  it("serves with a malformed TRANSITIONS_WEBHOOK_SECRET: only the nightly webhook step refuses it", async () => {
    const key = (bytes: number) => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))));
    for (const secret of ["", "hunter2-hunter2", key(32), `whsec_${key(16)}`, `whsec_${key(32)} `, newSigningSecret()])
      expect((await call("/health", {}, { TRANSITIONS_WEBHOOK_SECRET: secret })).status, secret).toBe(200);
  });

  it("logs the refusal with the request id and the missing names only", async () => {
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const response = await app.request(
        "http://patron.test/v1/recommendations",
        { headers: { "X-Request-Id": "req-config-1" } },
        { ...env, IDENTITY_HASH_SECRET: undefined },
      );
      expect(response.status).toBe(503);
      const lines = log.mock.calls.map((call) => String(call[0]));
      const line = lines.find((text) => text.includes("req-config-1"));
      expect(JSON.parse(line ?? "{}")).toEqual({
        requestId: "req-config-1",
        error: "misconfigured",
        missing: ["IDENTITY_HASH_SECRET"],
      });
      for (const text of lines) expect(text).not.toContain(env.SHOPPER_TOKEN_SECRET);
    } finally {
      log.mockRestore();
    }
  });

  it("serves normally once everything is set", async () => {
    expect(configProblems(env as unknown as Record<string, unknown>)).toEqual([]);
    const response = await call("/health", {}, { ALLOWED_ORIGINS: "https://shop.test, https://www.shop.test:8443" });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { status: "ok" } });
  });
});
