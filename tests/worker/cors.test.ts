// The CORS matrix through the real worker: route family × origin (allowed, other, none) × request
// (the actual GET/POST, and the OPTIONS preflight). Only the shopper routes ever carry Access-Control-*
// headers, and only for an origin in ALLOWED_ORIGINS (wrangler.toml lists http://127.0.0.1:8787).
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import { adminKey, anOrder, apiKey } from "../fixtures/builders.ts";

const allowed = "http://127.0.0.1:8787";
const origins = { allowed, other: "https://evil.test", none: undefined } as const;

interface Route {
  family: "shopper" | "ingestion" | "admin";
  method: "GET" | "POST" | "DELETE";
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

const json = { "Content-Type": "application/json" };
const routes: Route[] = [
  { family: "shopper", method: "GET", path: "/v1/recommendations" },
  {
    family: "shopper",
    method: "POST",
    path: "/v1/events",
    headers: { "Content-Type": "text/plain" },
    body: JSON.stringify({ type: "view", productId: "cors-p" }),
  },
  {
    family: "ingestion",
    method: "POST",
    path: "/v1/orders",
    headers: { ...json, Authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ orders: [anOrder({ id: "cors-order-1" })] }),
  },
  {
    family: "ingestion",
    method: "POST",
    path: "/v1/identify",
    headers: { ...json, Authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ identifiers: { account: "cors-account", email: "cors@shop.test" } }),
  },
  {
    family: "ingestion",
    method: "POST",
    path: "/v1/products",
    headers: { ...json, Authorization: "Bearer wrong" },
    body: "{}",
  },
  {
    family: "admin",
    method: "GET",
    path: "/v1/customers/lookup?kind=account&value=cors-account",
    headers: { Authorization: `Bearer ${adminKey}` },
  },
  { family: "admin", method: "GET", path: "/v1/admin/rules", headers: { Authorization: `Bearer ${adminKey}` } },
  { family: "admin", method: "GET", path: "/v1/admin/models", headers: { Authorization: "Bearer wrong" } },
  { family: "admin", method: "DELETE", path: "/v1/customers/nobody", headers: { Authorization: `Bearer ${adminKey}` } },
];

const corsHeaders = (response: Response) =>
  [...response.headers.keys()].filter((name) => name.toLowerCase().startsWith("access-control-"));

const cases = routes.flatMap((route) =>
  (Object.keys(origins) as (keyof typeof origins)[]).map(
    (origin) => [route.family, route.method, route.path, origin, route] as const,
  ),
);

describe("CORS", () => {
  it.each(cases)("%s %s %s from %s origin: actual request", async (family, method, path, origin, route) => {
    const response = await SELF.fetch(`http://patron.test${path}`, {
      method,
      headers: { ...route.headers, ...(origins[origin] ? { Origin: origins[origin] } : {}) },
      body: route.body,
    });
    expect(response.status, await response.clone().text()).toBeLessThan(500);
    if (family === "shopper" && origin === "allowed") {
      expect(response.headers.get("Access-Control-Allow-Origin")).toBe(allowed);
      expect(response.headers.get("Access-Control-Expose-Headers")).toBe("X-Request-Id");
    } else {
      expect(corsHeaders(response)).toEqual([]);
    }
    if (family === "shopper") expect(response.headers.get("Vary")).toMatch(/Origin/);
  });

  it.each(cases)("%s %s %s from %s origin: preflight", async (family, method, path, origin) => {
    const response = await SELF.fetch(`http://patron.test${path}`, {
      method: "OPTIONS",
      headers: {
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
        ...(origins[origin] ? { Origin: origins[origin] } : {}),
      },
    });
    if (family === "shopper" && origin === "allowed") {
      expect(response.status).toBe(204);
      expect(response.headers.get("Access-Control-Allow-Origin")).toBe(allowed);
      expect(response.headers.get("Access-Control-Allow-Methods")?.split(",")).toContain(method);
      expect(response.headers.get("Access-Control-Allow-Headers")?.split(",")).toContain("Authorization");
      return;
    }
    expect(corsHeaders(response)).toEqual([]);
    // A refused preflight is an ordinary error: 403 for a shopper route's foreign origin; otherwise
    // whatever the route answers a keyless OPTIONS (401 behind a key, 404 where no route matches).
    const expected = family === "shopper" ? (origin === "other" ? [403] : [404]) : [401, 404];
    expect(expected).toContain(response.status);
    const body = (await response.json()) as { error: { code: string; requestId: string } };
    expect(body.error.code).toBe({ 401: "unauthorized", 403: "forbidden", 404: "not_found" }[response.status]);
    expect(body.error.requestId).toBe(response.headers.get("X-Request-Id"));
  });

  it("keeps the allowed origin's headers on a shopper route's error, so the page can read it", async () => {
    const response = await SELF.fetch("http://patron.test/v1/recommendations", {
      headers: { Origin: allowed, Authorization: "Bearer not-a-token" },
    });
    expect(response.status).toBe(401);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe(allowed);
  });

  it("matches origins exactly, not by prefix or case-folded host", async () => {
    for (const origin of [`${allowed}.evil.test`, "http://127.0.0.1:87", "HTTP://127.0.0.1:8787 ", "null"]) {
      const response = await SELF.fetch("http://patron.test/v1/recommendations", { headers: { Origin: origin } });
      expect(corsHeaders(response), origin).toEqual([]);
    }
  });

  // Every route the app declares, not only the sample above: outside the two shopper routes, none
  // answers an allowed origin with an Access-Control-* header, keyless or (for reads) with the admin key.
  const declared = createApp()
    .routes.filter((route) => route.method !== "ALL" && route.path.startsWith("/v1/"))
    .filter((route) => !/^\/v1\/(recommendations|events)$/.test(route.path))
    .map((route) => [route.method, route.path.replace(/:\w+(\{[^}]*\})?/g, "cors-x")] as const);

  it("covers the declared admin and ingestion routes", () => {
    expect(declared.length).toBeGreaterThan(15);
  });

  it.each(declared)("%s %s never answers with CORS headers", async (method, path) => {
    const attempts: RequestInit[] = [
      { method, headers: { Origin: allowed } },
      { method: "OPTIONS", headers: { Origin: allowed, "Access-Control-Request-Method": method } },
      // (Not the Workflow status route: looking up a run that does not exist only adds engine noise.)
      ...(method === "GET" && !path.includes("/jobs/")
        ? [{ method, headers: { Origin: allowed, Authorization: `Bearer ${adminKey}` } }]
        : []),
    ];
    for (const init of attempts) {
      const response = await SELF.fetch(`http://patron.test${path}`, init);
      expect(response.status, `${init.method} ${path}`).toBeLessThan(500);
      expect(corsHeaders(response), `${init.method} ${path}`).toEqual([]);
    }
  });
});
