import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
export const ingestRoutes = new Hono<AppEnv>();
