// `npm run deploy`, the one command: build without the demo storefront (into its own folder, so the
// local build in dist/public keeps the demo), check wrangler.toml and the Worker's secrets, bundle the
// Worker without uploading it, create the queues the Worker uses when missing, apply the remote D1
// migrations, deploy the Worker with that build. Everything that can refuse the deployment runs before
// the migrations, so a refusal leaves the running Worker on the schema it was written for. Each step
// says what it runs; the first failure stops everything after it with a message saying what to do.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { databases } from "../../db/databases.ts";
import {
  type DeployConfig,
  type Preflight,
  parseSecretList,
  secretsPreflight,
  settingsPreflight,
} from "./preflight.ts";

const root = path.resolve(import.meta.dirname, "../..");
const wrangler = path.join(root, "node_modules/.bin/wrangler");
/** Where the deploy builds the static files it ships (relative to the repository). */
export const deployAssets = ".wrangler/deploy/public";
/** Where the bundling check writes the Worker it would upload. */
export const deployBundle = ".wrangler/deploy/bundle";

/** Runs a command; `capture` returns its stdout instead of streaming it. Throws on a non-zero exit. */
export type Runner = (command: string, args: string[], options?: { capture?: boolean }) => string;

/** wrangler.toml as the deploy reads it: the settings the pre-flight checks, and the queues the Worker uses. */
export type DeployTarget = Omit<DeployConfig, "secretNames"> & { queues?: readonly string[] };

export interface DeployIo {
  run: Runner;
  readConfig: () => DeployTarget;
  log: (line: string) => void;
}

export class DeployStopped extends Error {}

interface Step {
  title: string;
  action: () => void;
  /** What to do when it fails. */
  hint: string;
}

export function deploy(io: DeployIo): void {
  const config = io.readConfig();
  const report = ({ problems, warnings }: Preflight) => {
    for (const warning of warnings) io.log(`  ! ${warning}`);
    if (problems.length > 0)
      throw new DeployStopped(
        `the deployment is not ready:\n${problems.map((problem) => `  ✗ ${problem}`).join("\n")}`,
      );
  };
  const steps: Step[] = [
    {
      title: `Building the widget without the demo storefront, and the console, into ${deployAssets} (widget/build.ts --no-demo, console/build.ts)`,
      action: () => {
        io.run(process.execPath, ["--import", "tsx", "widget/build.ts", "--no-demo", "--out", deployAssets]);
        io.run(process.execPath, ["--import", "tsx", "console/build.ts", "--out", deployAssets]);
      },
      hint: "fix the build error above (`npm run build` shows the same).",
    },
    {
      title: "Checking wrangler.toml (ALLOWED_ORIGINS, token lifetime cap, demo off, D1 database id)",
      action: () => report(settingsPreflight(config)),
      hint: "fix wrangler.toml as listed, then run `npm run deploy` again.",
    },
    {
      title: "Checking the Worker's secrets (wrangler secret list)",
      action: () => {
        const secretNames = parseSecretList(
          io.run(wrangler, ["secret", "list", "--format", "json"], { capture: true }),
        );
        report(secretsPreflight({ ...config, secretNames }));
        io.log(`  ✓ secrets set: ${secretNames.join(", ") || "none"}`);
      },
      hint: "set the secrets listed, then run `npm run deploy` again. (Run `npx wrangler login` first if wrangler could not list them.)",
    },
    {
      title: `Bundling the Worker without uploading it (wrangler deploy --dry-run --outdir ${deployBundle})`,
      action: () => io.run(wrangler, ["deploy", "--dry-run", "--outdir", deployBundle, "--assets", deployAssets]),
      hint: "nothing was migrated or deployed; the Worker still runs the previous version. Fix the error above and run again.",
    },
    // A queue must exist before a Worker that produces to it deploys; creating one is safe to repeat.
    ...(config.queues ?? []).map((queue) => ({
      title: `Making sure the ${queue} queue exists (wrangler queues info ${queue}, created when missing)`,
      action: () => {
        try {
          io.run(wrangler, ["queues", "info", queue], { capture: true });
          io.log(`  ✓ ${queue} exists`);
        } catch {
          io.run(wrangler, ["queues", "create", queue]);
        }
      },
      hint: "nothing was migrated or deployed; check `npx wrangler queues list` and run again.",
    })),
    // Both databases (db/databases.ts): the main one, then the events one. Last before the deploy: the
    // steps above can refuse the deployment, and a migration cannot be taken back.
    ...databases.map(({ name }) => ({
      title: `Applying D1 migrations to the remote ${name} database (wrangler d1 migrations apply ${name} --remote)`,
      action: () => io.run(wrangler, ["d1", "migrations", "apply", name, "--remote"]),
      hint: "nothing was deployed; the Worker still runs the previous version. Fix the migration error above and run again (migrations already applied are skipped).",
    })),
    {
      title: `Deploying the Worker (wrangler deploy --assets ${deployAssets})`,
      action: () => io.run(wrangler, ["deploy", "--assets", deployAssets]),
      hint: "the migrations are applied but the new Worker is not deployed; fix the error above and run again.",
    },
  ];

  steps.forEach((step, index) => {
    io.log(`\n[${index + 1}/${steps.length}] ${step.title}`);
    try {
      step.action();
    } catch (error) {
      const reason =
        error instanceof DeployStopped
          ? error.message
          : `${(error instanceof Error ? error.message : String(error)).split("\n")[0]} (its output is above).`;
      throw new DeployStopped(`npm run deploy stopped at step ${index + 1} (${step.title}): ${reason}\n${step.hint}`);
    }
  });
  io.log("\nDeployed. Check it: curl -s https://<your worker>/health");
}

const runCommand: Runner = (command, args, options = {}) => {
  const output = execFileSync(command, args, {
    cwd: root,
    stdio: options.capture ? ["inherit", "pipe", "inherit"] : "inherit",
    encoding: "utf8",
  });
  return options.capture ? output : "";
};

export async function readWranglerConfig(): Promise<DeployTarget> {
  const { unstable_readConfig } = await import("wrangler");
  const config = unstable_readConfig({ config: path.join(root, "wrangler.toml") });
  return {
    vars: config.vars as Record<string, unknown>,
    databases: config.d1_databases.map((database: { binding: string; database_id?: string }) => ({
      binding: database.binding,
      database_id: database.database_id,
    })),
    queues: [...new Set<string>(config.queues.producers.map((producer: { queue: string }) => producer.queue))],
    limits: { subrequests: config.limits?.subrequests },
  };
}

/**
 * An error wrangler gave reading wrangler.toml, without its stack or the file's text: its message, and
 * for a TOML error the line it points at.
 */
export function configReadProblem(error: unknown): string {
  const { message, location } = error as {
    message?: string;
    location?: { line?: number; column?: number; lineText?: string };
  };
  const where = location?.line
    ? ` at line ${location.line}${location.column ? `, column ${location.column}` : ""}: ${location.lineText ?? ""}`
    : "";
  return `${String(message ?? error).trim()}${where}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let config: DeployTarget;
  try {
    config = await readWranglerConfig();
  } catch (error) {
    console.error(
      `\nnpm run deploy stopped before its first step: wrangler.toml could not be read:\n  ${configReadProblem(error)}\n` +
        "Fix wrangler.toml, then run `npm run deploy` again. A secret is never a [vars] value: set it with `npx wrangler secret put NAME`.",
    );
    process.exit(1);
  }
  try {
    deploy({ run: runCommand, readConfig: () => config, log: (line) => console.log(line) });
  } catch (error) {
    console.error(`\n${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
