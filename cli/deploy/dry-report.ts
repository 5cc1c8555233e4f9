// The end of `npm run deploy:dry`: what `npm run deploy`'s no-network check of wrangler.toml would say
// (step 2), printed and never failing, since the dry run only builds and bundles and a fresh clone's
// wrangler.toml is made for local use. The secrets (step 3) need a Cloudflare login, so they are not
// checked here.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { configReadProblem, readWranglerConfig } from "./deploy.ts";
import { type Preflight, settingsPreflight } from "./preflight.ts";

/** The lines the dry run ends with, for the pre-flight's answer on wrangler.toml. */
export function dryRunReport({ problems, warnings }: Preflight): string[] {
  const head =
    problems.length === 0
      ? "wrangler.toml passes the check `npm run deploy` makes before deploying (the secrets are checked then too)."
      : "wrangler.toml is not ready: `npm run deploy` would stop at its check (the dry run goes on):";
  return [head, ...problems.map((problem) => `  ✗ ${problem}`), ...warnings.map((warning) => `  ! ${warning}`)];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const config = await readWranglerConfig();
    console.log(`\n${dryRunReport(settingsPreflight(config)).join("\n")}`);
  } catch (error) {
    console.log(`\nwrangler.toml could not be read: ${configReadProblem(error)}`);
  }
}
