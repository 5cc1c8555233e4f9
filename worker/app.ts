// createApp(): the middleware every request passes through, the error envelope, and the feature sub-apps.
import { Hono } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { adminRoutes } from "./admin/admin.routes.ts";
import { backfillRoutes } from "./admin/backfills.routes.ts";
import { customerListRoutes } from "./admin/customer-lists.routes.ts";
import { insightsRoutes } from "./admin/insights.routes.ts";
import { shardAdminRoutes } from "./admin/shards.routes.ts";
import { audienceRoutes } from "./audiences/audiences.routes.ts";
import { consoleRoutes } from "./console/console.routes.ts";
import { sessionRoutes } from "./console/session.routes.ts";
import { reshardPrepared, shardCountChanged, shardCountSkew } from "./core/shards/placement.ts";
import { customersRoutes } from "./customers/customers.routes.ts";
import { eventsDatabase, mainDatabase } from "./databases.ts";
import { demoRoutes } from "./demo/demo.routes.ts";
import type { AppEnv } from "./env.ts";
import { eventsRoutes } from "./events/events.routes.ts";
import { allowedOrigins, configProblems } from "./http/config.ts";
import { classifyDatabaseError } from "./http/database-errors.ts";
import { ApiError, errorResponse, unavailable } from "./http/errors.ts";
import { limitByAddress } from "./http/rate-limit.ts";
import { sendsStrictTransportSecurity, strictTransportSecurity } from "./http/transport.ts";
import { queryOnlyWhereRead } from "./http/validate.ts";
import { importRoutes } from "./imports/imports.routes.ts";
import { ingestRoutes } from "./orders/orders.routes.ts";
import { recommendationsRoutes } from "./recommendations/recommendations.routes.ts";
import { rulesRoutes } from "./rules/rules.routes.ts";
import { unmigratedProblemCached, unmigratedRetrySeconds } from "./shards/migration-guard.ts";
import { shardCount } from "./shards/shards.ts";
import { suppressionsRoutes } from "./suppressions/suppressions.routes.ts";

/** The routes a storefront's browser calls (shopper token or anonymous); the only ones with CORS. */
const shopperPaths = /^\/v1\/(?:recommendations|events)\/?$/;
/**
 * The API routes that take query parameters (method and path as registered below); each reads them with
 * queryParams, which names the ones it takes. Every other API route takes none: any is a 400
 * (docs/api.md). Only GET /v1/recommendations (and GET /demo/token, a page's, outside the API) ignore
 * names they do not know.
 */
export const routesReadingQuery: ReadonlySet<string> = new Set([
  "GET /v1/products",
  "GET /v1/imports",
  "GET /v1/imports/:id/batches",
  "GET /v1/customers/lookup",
  "GET /v1/customers/holders",
  "GET /v1/customers/:id/shelf",
  "GET /v1/recommendations",
  "GET /v1/admin/rules",
  "GET /v1/admin/rules/targets",
  "GET /v1/admin/suppressions",
  "GET /v1/admin/insights/best-customers",
  "GET /v1/admin/customers",
  "GET /v1/admin/shards/migrate",
  "POST /v1/admin/jobs/nightly",
  "GET /v1/admin/jobs/nightly",
  "GET /v1/admin/transitions/summary",
  "GET /v1/admin/transitions",
  "GET /v1/admin/segments",
  "GET /v1/admin/holdout",
]);
/** How soon a client should look again at a deployment that is missing configuration. */
const misconfiguredRetrySeconds = 300;

export function createApp() {
  const app = new Hono<AppEnv>();

  app.use("*", async (c, next) => {
    const requestId = c.req.header("X-Request-Id")?.slice(0, 64) || crypto.randomUUID();
    c.set("requestId", requestId);
    c.set("now", new Date());
    c.set("db", mainDatabase(c.env.DB));
    c.set("eventsDb", eventsDatabase(c.env.EVENTS_DB));
    c.header("X-Request-Id", requestId);
    await next();
    // No answer is to be read as another type than it says (a JSON error as a script or a page, say).
    // Set after the route, as a Response a route builds itself does not take headers set before it.
    c.header("X-Content-Type-Options", "nosniff");
    // Every answer over https, errors and the console's pages included (transport.ts).
    if (sendsStrictTransportSecurity(c.req.url)) c.header("Strict-Transport-Security", strictTransportSecurity);
  });

  // CORS for the two routes a storefront's browser calls, and only for ALLOWED_ORIGINS: any other
  // origin, and every admin and ingestion route, gets no Access-Control-* header at all.
  const shopperCors = cors({
    origin: (origin) => origin,
    allowMethods: ["GET", "POST"],
    allowHeaders: ["Authorization", "Content-Type", "X-Request-Id", "X-Patron-User"],
    exposeHeaders: ["X-Request-Id"],
    maxAge: 600,
  });
  app.use("*", async (c, next) => {
    if (!shopperPaths.test(c.req.path)) return next();
    const origin = c.req.header("Origin");
    if (origin && allowedOrigins(c.env.ALLOWED_ORIGINS).includes(origin)) return shopperCors(c, next);
    if (c.req.method === "OPTIONS" && origin)
      throw new ApiError(
        403,
        "forbidden",
        `Origin ${JSON.stringify(origin.slice(0, 200))} may not call ${c.req.path} from a browser: add it to ALLOWED_ORIGINS.`,
      );
    await next();
    c.header("Vary", "Origin", { append: true });
  });

  // A deployment missing a secret or ALLOWED_ORIGINS serves nothing rather than running open. After
  // CORS, so a storefront's browser can read why (its origin allowed): the widget's debug names it.
  app.use("*", async (c, next) => {
    const problems = configProblems(c.env as unknown as Record<string, unknown>);
    if (problems.length === 0) return next();
    console.error(
      JSON.stringify({ requestId: c.get("requestId"), error: "misconfigured", missing: problems.map((p) => p.name) }),
    );
    throw new ApiError(
      503,
      "unavailable",
      `This deployment is not configured and serves nothing until it is: ${problems.map((p) => p.name).join(", ")}.`,
      problems.map((p) => ({ path: [p.name], message: p.problem })),
      misconfiguredRetrySeconds,
    );
  });

  // SHARD_COUNT set on a deployment whose customers are still in D1 only: nothing is served, rather than
  // customers missed and made again in the shards.
  app.use("*", async (c, next) => {
    const count = shardCount(c.env);
    if (count === 0) return next();
    const problem = await unmigratedProblemCached(c.var.db, count, c.var.now);
    if (problem === null) return next();
    console.error(JSON.stringify({ requestId: c.get("requestId"), refused: "shards_not_migrated" }));
    throw unavailable(problem, unmigratedRetrySeconds);
  });

  // A query parameter an API route does not take is a 400 before the route runs, writes included
  // (`POST /v1/orders?dryRun=true` stores nothing). Not the pages under /console and /demo: the console
  // keeps a list's filters in its address, and the demo's pages take their own.
  const refuseUnreadQuery = queryOnlyWhereRead(routesReadingQuery);
  app.use("/v1/*", refuseUnreadQuery);
  app.use("/health", refuseUnreadQuery);

  // Per client address, after CORS so preflights are not counted (per shopper: in the routes).
  app.use("/v1/recommendations/*", limitByAddress("recommendations"));
  app.use("/v1/events/*", limitByAddress("events"));

  app.onError((error, c) => {
    if (error instanceof ApiError) return errorResponse(c, error);
    if (error instanceof HTTPException && error.status < 500) {
      return errorResponse(c, new ApiError(error.status as 400, "invalid_request", error.message || "Bad request."));
    }
    // A shard placed for another count, prepared by a reshard and asked to write under the old one, or
    // asked to write by a Worker placing keys by another count (a rollout of a new count: seconds). An
    // operational state, not a fault of the code: logged with its message, without a stack.
    const message = String((error as Error)?.message ?? error);
    const shardCode = [shardCountChanged, reshardPrepared, shardCountSkew].find((code) => message.includes(code));
    if (shardCode) {
      console.error(JSON.stringify({ requestId: c.get("requestId"), refused: shardCode, path: c.req.path, message }));
      const retryAfter = shardCode === shardCountSkew ? 30 : 300;
      return errorResponse(
        c,
        unavailable(message.slice(message.indexOf(shardCode) + shardCode.length + 2), retryAfter),
      );
    }
    const database = classifyDatabaseError(error);
    console.error(
      JSON.stringify({
        requestId: c.get("requestId"),
        ...(database ? { database: database.kind, cause: database.message } : {}),
        error: String(error),
        stack: (error as Error).stack,
      }),
    );
    if (database?.kind === "too_big") {
      return errorResponse(
        c,
        new ApiError(413, "payload_too_large", "A value in the request is larger than the database accepts."),
      );
    }
    if (database) {
      return errorResponse(
        c,
        unavailable(
          "The database is busy or unavailable at the moment. Retry after the Retry-After delay.",
          database.retryAfterSeconds,
        ),
      );
    }
    return errorResponse(
      c,
      new ApiError(500, "internal", "Something went wrong on our side. Quote the request id when reporting it."),
    );
  });

  app.notFound((c) => {
    // The root is where a browser pointed at the worker lands: it says where the pages are.
    const pages =
      c.req.path === "/"
        ? " The console is at /console (and, with PATRON_DEMO on, the demo storefront at /demo); the API is under /v1."
        : "";
    return errorResponse(c, new ApiError(404, "not_found", `No route for ${c.req.method} ${c.req.path}.${pages}`));
  });

  app.get("/health", (c) => c.json({ data: { status: "ok" } }));

  app.route("/v1", ingestRoutes);
  app.route("/v1/imports", importRoutes);
  app.route("/v1/customers", customersRoutes);
  app.route("/v1/recommendations", recommendationsRoutes);
  app.route("/v1/admin/backfills", backfillRoutes);
  app.route("/v1/admin/rules", rulesRoutes);
  app.route("/v1/admin/suppressions", suppressionsRoutes);
  app.route("/v1/admin/insights", insightsRoutes);
  app.route("/v1/admin/customers", customerListRoutes);
  app.route("/v1/admin/audiences", audienceRoutes);
  app.route("/v1/admin/session", sessionRoutes);
  app.route("/v1/admin/shards", shardAdminRoutes);
  app.route("/v1/admin", adminRoutes);
  app.route("/v1/events", eventsRoutes);
  app.route("/demo", demoRoutes);
  app.route("/console", consoleRoutes);

  return app;
}
