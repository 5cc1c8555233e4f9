import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
export const customersRoutes = new Hono<AppEnv>();
