import type { Env } from "../../worker/env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends import("../../worker/env.ts").Env {
      TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    }
  }
}
declare module "cloudflare:test" {
  interface ProvidedEnv extends Env {
    TEST_MIGRATIONS: D1Migration[];
  }
}
