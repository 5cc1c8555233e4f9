// Every route of the app, walked from the app's own route table, sent a query parameter it does not take:
// an API route answers 400 naming it (docs/api.md), so a new route cannot forget to; only
// GET /v1/recommendations and GET /demo/token ignore it, and the pages under /console and /demo take their
// own. A refused request writes nothing.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp, routesReadingQuery } from "../../worker/app.ts";
import { anOrder, uniquePrefix } from "../fixtures/builders.ts";

const admin = { Authorization: "Bearer test-admin-key" };
const takesNone = "Invalid query parameters: dryRun is not a parameter of this route; it takes none.";
/** Documented to ignore parameters they do not know. */
const ignoring = new Set(["GET /v1/recommendations", "GET /demo/token"]);
/** Pages a browser opens (the console's addresses hold its filters) and their files: not the API. */
const page = /^\/(?:console|demo)(?:\/|$)/;

/** A path a route matches: each parameter (and a trailing `*`) filled with a value of the right shape. */
function pathOf(route: string): string {
  return route
    .replace(/:file\{[^}]*\}/g, "sku-1.svg")
    .replace(/\/imports\/:id/g, `/imports/imp_${"0".repeat(20)}`)
    .replace(/:[A-Za-z]+/g, "x1")
    .replace(/\*$/, "x1");
}

const app = createApp();
const routes = [
  ...new Map(
    app.routes.filter((route) => route.method !== "ALL").map((route) => [`${route.method} ${route.path}`, route]),
  ).values(),
];

async function send(method: string, path: string, key: Record<string, string> = admin) {
  const ctx = createExecutionContext();
  const response = await app.request(
    `http://patron.test${path}`,
    {
      method,
      headers: { ...key, "X-Patron-Console": "1", ...(method === "GET" ? {} : { "Content-Type": "application/json" }) },
      ...(method === "GET" || method === "DELETE" ? {} : { body: "{}" }),
    },
    { ...env, PATRON_DEMO: "on" },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return response;
}

describe("query parameters a route does not take", () => {
  it("walks every route: the API's answer 400 naming the parameter, but the two that ignore it and the pages", async () => {
    expect(routes.length).toBeGreaterThan(60);
    const wrong: string[] = [];
    for (const route of routes) {
      const name = `${route.method} ${route.path}`;
      const path = pathOf(route.path);
      const query = name === "GET /demo/token" ? "?account=demo-new&dryRun=true" : "?dryRun=true";
      // The shopper routes read a Bearer token as a shopper's: sent without one, they answer anonymously.
      const response = await send(route.method, `${path}${query}`, ignoring.has(name) ? {} : admin);
      const body = (await response.text()) || "{}";
      const message = response.headers.get("Content-Type")?.includes("json")
        ? ((JSON.parse(body) as { error?: { message?: string } }).error?.message ?? "")
        : "";
      if (ignoring.has(name)) {
        if (response.status !== 200) wrong.push(`${name}: ${response.status} ${message}`);
      } else if (page.test(route.path)) {
        if (response.status === 400) wrong.push(`${name} (a page): 400 ${message}`);
      } else if (routesReadingQuery.has(name)) {
        if (response.status !== 400 || !message.includes("dryRun is not a parameter of this route; it takes "))
          wrong.push(`${name}: ${response.status} ${message}`);
      } else if (response.status !== 400 || message !== takesNone) {
        wrong.push(`${name}: ${response.status} ${message}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("lists only routes the app has, each taking parameters it names", async () => {
    const registered = new Set(routes.map((route) => `${route.method} ${route.path}`));
    expect([...routesReadingQuery].filter((name) => !registered.has(name))).toEqual([]);
  });

  it("stores no order sent with ?dryRun=true", async () => {
    const p = uniquePrefix("query-dry-run");
    const order = anOrder({ id: `${p}-1`, identifiers: { account: `${p}-acct` } });
    const refused = await SELF.fetch("http://patron.test/v1/orders?dryRun=true", {
      method: "POST",
      headers: { Authorization: "Bearer test-api-key", "Content-Type": "application/json" },
      body: JSON.stringify({ orders: [order] }),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: "invalid_request",
      message: takesNone,
    });
    const lookup = `http://patron.test/v1/customers/lookup?kind=account&value=${p}-acct`;
    expect((await SELF.fetch(lookup, { headers: admin })).status).toBe(404);
  });

  it("refuses ?asOf= on a customer's history, HEAD included, rather than answer the present", async () => {
    for (const method of ["GET", "HEAD"]) {
      const response = await SELF.fetch("http://patron.test/v1/customers/c_nobody/history?asOf=2026-01-01", {
        method,
        headers: admin,
      });
      expect(response.status).toBe(400);
      if (method === "GET")
        expect(((await response.json()) as { error: { message: string } }).error.message).toBe(
          "Invalid query parameters: asOf is not a parameter of this route; it takes none.",
        );
    }
  });
});
