// createApp(): the middleware every request passes through, the error envelope, and the feature sub-apps.
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import * as schema from "../db/schema.ts";
import { adminRoutes } from "./admin/admin.routes.ts";
import { customersRoutes } from "./customers/customers.routes.ts";
import { demoRoutes } from "./demo/demo.routes.ts";
import type { AppEnv } from "./env.ts";
import { eventsRoutes } from "./events/events.routes.ts";
import { ApiError, errorResponse } from "./http/errors.ts";
import { limitByAddress } from "./http/rate-limit.ts";
import { ingestRoutes } from "./orders/orders.routes.ts";
import { recommendationsRoutes } from "./recommendations/recommendations.routes.ts";
import { rulesRoutes } from "./rules/rules.routes.ts";

export function createApp() {
  const app = new Hono<AppEnv>();

  app.use("*", async (c, next) => {
    const requestId = c.req.header("X-Request-Id")?.slice(0, 64) || crypto.randomUUID();
    c.set("requestId", requestId);
    c.set("now", new Date());
    c.set("db", drizzle(c.env.DB, { schema }));
    c.header("X-Request-Id", requestId);
    await next();
  });

  app.use(
    "/v1/*",
    cors({
      origin: (origin, c) => {
        const allowed = (c.env.ALLOWED_ORIGINS ?? "").split(",").map((o: string) => o.trim());
        return allowed.includes(origin) ? origin : null;
      },
      allowHeaders: ["Authorization", "Content-Type", "X-Request-Id", "X-Patron-User"],
      exposeHeaders: ["X-Request-Id"],
      maxAge: 600,
    }),
  );

  // Per client address, after CORS so preflights are not counted (per shopper: in the routes).
  app.use("/v1/recommendations/*", limitByAddress("recommendations"));
  app.use("/v1/events/*", limitByAddress("events"));

  app.onError((error, c) => {
    if (error instanceof ApiError) return errorResponse(c, error);
    if (error instanceof HTTPException && error.status < 500) {
      return errorResponse(c, new ApiError(error.status as 400, "invalid_request", error.message || "Bad request."));
    }
    console.error(
      JSON.stringify({ requestId: c.get("requestId"), error: String(error), stack: (error as Error).stack }),
    );
    return errorResponse(
      c,
      new ApiError(500, "internal", "Something went wrong on our side. Quote the request id when reporting it."),
    );
  });

  app.notFound((c) => errorResponse(c, new ApiError(404, "not_found", `No route for ${c.req.method} ${c.req.path}.`)));

  app.get("/health", (c) => c.json({ data: { status: "ok" } }));

  app.route("/v1", ingestRoutes);
  app.route("/v1/customers", customersRoutes);
  app.route("/v1/recommendations", recommendationsRoutes);
  app.route("/v1/admin/rules", rulesRoutes);
  app.route("/v1/admin", adminRoutes);
  app.route("/v1/events", eventsRoutes);
  app.route("/demo", demoRoutes);

  return app;
}
