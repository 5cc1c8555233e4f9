// Types for the workerd test environment: the worker's generated bindings (worker/worker-configuration.d.ts),
// its optional settings, and the test-only migrations of both databases.
import type { D1Migration } from "cloudflare:test";
import type { OptionalSettings } from "../../worker/env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends OptionalSettings {
      TEST_MIGRATIONS: D1Migration[];
      TEST_EVENTS_MIGRATIONS: D1Migration[];
      /** Runs and seed for the fuzz test (tests/worker/fuzz.test.ts), set by `npm run bench -- fuzz`. */
      FUZZ_RUNS?: string;
      FUZZ_SEED?: string;
    }
  }
}
