// The deploy script without deploying: the pre-flight that decides what is missing, the parsing of
// `wrangler secret list`, and the runner's order (build, check, migrate, deploy) stopping at the first
// failure, with commands recorded instead of run.
import { describe, expect, it } from "vitest";
import {
  configReadProblem,
  DeployStopped,
  deploy,
  deployAssets,
  deployBundle,
  type Runner,
  readWranglerConfig,
} from "../../cli/deploy/deploy.ts";
import { dryRunReport } from "../../cli/deploy/dry-report.ts";
import { type DeployConfig, deployPreflight, parseSecretList, settingsPreflight } from "../../cli/deploy/preflight.ts";
import { nightlyRunSubrequests } from "../../worker/core/shards/calls.ts";

const allSecrets = ["PATRON_API_KEY", "PATRON_ADMIN_KEY", "SHOPPER_TOKEN_SECRET", "IDENTITY_HASH_SECRET"];
const ready: DeployConfig = {
  secretNames: allSecrets,
  vars: { ALLOWED_ORIGINS: "https://shop.example,https://www.shop.example", SHOPPER_TOKEN_MAX_TTL_SECONDS: "86400" },
  databases: [
    { binding: "DB", database_id: "6f1c2a0e-93b4-4d55-8a61-0c2d9e7f4b11" },
    { binding: "EVENTS_DB", database_id: "b2e8d0c4-1f37-4a9e-9c65-7d40e2a1f388" },
  ],
  limits: { subrequests: nightlyRunSubrequests },
};
const with_ = (overrides: Partial<DeployConfig>): DeployConfig => ({ ...ready, ...overrides });

describe("deploy pre-flight", () => {
  it("passes a ready deployment", () => {
    expect(deployPreflight(ready)).toEqual({ problems: [], warnings: [] });
    const settings = {
      PHONE_DEFAULT_REGION: "GB",
      RETAILER_CURRENCY: "GBP",
      RETAILER_TIME_ZONE: "Europe/London",
      SHARD_COUNT: "16",
    };
    expect(deployPreflight(with_({ vars: { ...ready.vars, ...settings } }))).toEqual({ problems: [], warnings: [] });
  });

  it.each(allSecrets)("stops when %s is not set, naming the command that sets it", (name) => {
    const { problems } = deployPreflight(with_({ secretNames: allSecrets.filter((secret) => secret !== name) }));
    expect(problems).toEqual([`${name} is not set: npx wrangler secret put ${name}`]);
  });

  it("names every missing secret at once", () => {
    expect(deployPreflight(with_({ secretNames: [] })).problems).toHaveLength(4);
  });

  it("refuses a secret kept as a plain [vars] value", () => {
    const { problems } = deployPreflight(
      with_({ secretNames: allSecrets.slice(1), vars: { ...ready.vars, PATRON_API_KEY: "in-the-clear" } }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("PATRON_API_KEY is a plain [vars] value");
    expect(problems[0]).not.toContain("in-the-clear");
  });

  it.each([
    ["missing", {}, "ALLOWED_ORIGINS is not set"],
    ["empty", { ALLOWED_ORIGINS: " , " }, "ALLOWED_ORIGINS is empty"],
    ["with a path", { ALLOWED_ORIGINS: "https://shop.example/" }, "not origins"],
    ["local only", { ALLOWED_ORIGINS: "http://127.0.0.1:8787,http://localhost:8787" }, "only local origins"],
  ])("stops when ALLOWED_ORIGINS is %s", (_, vars, message) => {
    const { problems } = deployPreflight(with_({ vars }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(message);
  });

  it("accepts ALLOWED_ORIGINS set as a secret", () => {
    expect(deployPreflight(with_({ vars: {}, secretNames: [...allSecrets, "ALLOWED_ORIGINS"] })).problems).toEqual([]);
  });

  it("warns about local and plain-http origins next to real ones", () => {
    const { problems, warnings } = deployPreflight(
      with_({ vars: { ALLOWED_ORIGINS: "https://shop.example,http://localhost:8787,http://old.shop.example" } }),
    );
    expect(problems).toEqual([]);
    expect(warnings).toEqual([
      "ALLOWED_ORIGINS still lists local origins: http://localhost:8787.",
      "ALLOWED_ORIGINS lists origins without https: http://old.shop.example.",
    ]);
  });

  it("says a number or true/false in [vars] must be quoted, once, rather than that it is malformed", () => {
    const vars = {
      ...ready.vars,
      SHOPPER_TOKEN_MAX_TTL_SECONDS: 3600,
      SHARD_COUNT: 4,
      HOLDOUT_SHARE: 0.1,
      X_FLAG: true,
    };
    expect(deployPreflight(with_({ vars })).problems).toEqual([
      'SHOPPER_TOKEN_MAX_TTL_SECONDS = 3600 in wrangler.toml [vars] must be quoted: SHOPPER_TOKEN_MAX_TTL_SECONDS = "3600".',
      'SHARD_COUNT = 4 in wrangler.toml [vars] must be quoted: SHARD_COUNT = "4".',
      'HOLDOUT_SHARE = 0.1 in wrangler.toml [vars] must be quoted: HOLDOUT_SHARE = "0.1".',
      'X_FLAG = true in wrangler.toml [vars] must be quoted: X_FLAG = "true".',
    ]);
  });

  it("refuses a transitions webhook URL an audience webhook could not have", () => {
    for (const [url, message] of [
      ["http://crm.example/patron", "TRANSITIONS_WEBHOOK_URL must use https"],
      ["http://localhost:9000/hooks", "TRANSITIONS_WEBHOOK_URL must use https"],
      ["https://192.168.1.20/hooks", "TRANSITIONS_WEBHOOK_URL must name a host, not an IP address."],
      ["https://crm.local/hooks", "TRANSITIONS_WEBHOOK_URL must name a public host."],
    ]) {
      const { problems } = deployPreflight(with_({ vars: { ...ready.vars, TRANSITIONS_WEBHOOK_URL: url } }));
      expect(problems, url).toHaveLength(1);
      expect(problems[0], url).toContain(message);
      expect(problems[0], url).toContain("(wrangler.toml [vars])");
    }
  });

  it("warns that a transitions webhook without its secret is sent unsigned, and refuses the secret in [vars]", () => {
    const unsigned =
      "TRANSITIONS_WEBHOOK_URL is set without TRANSITIONS_WEBHOOK_SECRET: stage transitions are POSTed unsigned.";
    const url = { ...ready.vars, TRANSITIONS_WEBHOOK_URL: "https://crm.example.com/patron" };
    for (const config of [with_({ vars: url }), with_({ secretNames: [...allSecrets, "TRANSITIONS_WEBHOOK_URL"] })]) {
      const { problems, warnings } = deployPreflight(config);
      expect(problems).toEqual([]);
      expect(warnings[0]).toContain(unsigned);
      expect(warnings[0]).toContain("npx wrangler secret put TRANSITIONS_WEBHOOK_SECRET");
    }
    // A URL kept as a secret cannot be checked here: said once, signed or not.
    const unchecked = "TRANSITIONS_WEBHOOK_URL is a secret, so its value is not checked here";
    expect(deployPreflight(with_({ vars: url })).warnings).toHaveLength(1);
    for (const extra of [[], ["TRANSITIONS_WEBHOOK_SECRET"]]) {
      const { warnings } = deployPreflight(
        with_({ secretNames: [...allSecrets, "TRANSITIONS_WEBHOOK_URL", ...extra] }),
      );
      expect(warnings.filter((warning) => warning.startsWith(unchecked))).toHaveLength(1);
      expect(warnings).toHaveLength(extra.length === 0 ? 2 : 1);
    }
    const signed = with_({ vars: url, secretNames: [...allSecrets, "TRANSITIONS_WEBHOOK_SECRET"] });
    expect(deployPreflight(signed)).toEqual({ problems: [], warnings: [] });
    const inVars = deployPreflight(with_({ vars: { ...url, TRANSITIONS_WEBHOOK_SECRET: "whsec_in-the-clear" } }));
    expect(inVars.problems).toHaveLength(1);
    expect(inVars.problems[0]).toContain("TRANSITIONS_WEBHOOK_SECRET is a plain [vars] value");
    expect(inVars.problems[0]).not.toContain("in-the-clear");
  });

  it.each([
    [
      "a bad lifetime cap",
      { vars: { ...ready.vars, SHOPPER_TOKEN_MAX_TTL_SECONDS: "one day" } },
      "SHOPPER_TOKEN_MAX_TTL_SECONDS",
    ],
    ["a misspelt phone region", { vars: { ...ready.vars, PHONE_DEFAULT_REGION: "UK" } }, "PHONE_DEFAULT_REGION"],
    ["a currency in lower case", { vars: { ...ready.vars, RETAILER_CURRENCY: "usd" } }, "RETAILER_CURRENCY"],
    [
      "a misspelt time zone, which the Worker would read as UTC",
      { vars: { ...ready.vars, RETAILER_TIME_ZONE: "America/NewYork" } },
      'RETAILER_TIME_ZONE "America/NewYork" is not a time zone the runtime knows, so the worker would run on UTC',
    ],
    ["a shard count that is not a number", { vars: { ...ready.vars, SHARD_COUNT: "four" } }, "SHARD_COUNT"],
    ["the demo switched on", { vars: { ...ready.vars, PATRON_DEMO: "on" } }, "PATRON_DEMO"],
    ["rate limits switched off", { vars: { ...ready.vars, RATE_LIMITS: "off" } }, "RATE_LIMITS"],
    [
      "local audience webhooks switched on",
      { vars: { ...ready.vars, AUDIENCE_WEBHOOKS_ALLOW_LOCAL: "on" } },
      "AUDIENCE_WEBHOOKS_ALLOW_LOCAL",
    ],
    [
      "the placeholder database id",
      { databases: [{ binding: "DB", database_id: "00000000-0000-0000-0000-000000000000" }, ready.databases[1]] },
      "placeholder",
    ],
    [
      "the placeholder events database id",
      {
        databases: [ready.databases[0], { binding: "EVENTS_DB", database_id: "00000000-0000-0000-0000-000000000001" }],
      },
      "patron-events",
    ],
    ["no database", { databases: [] }, "placeholder"],
  ])("stops on %s", (_, overrides, message) => {
    const { problems } = deployPreflight(with_(overrides as Partial<DeployConfig>));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(message);
  });

  it("warns when one nightly run may not make the calls it needs at scale, and reads the setting from wrangler.toml", async () => {
    for (const limits of [undefined, {}, { subrequests: 10_000 }]) {
      const { problems, warnings } = settingsPreflight({ ...ready, limits });
      expect(problems).toEqual([]);
      expect(warnings).toEqual([
        expect.stringMatching(
          /^wrangler\.toml \[limits\] subrequests is (not set \(Cloudflare's default: 10,000\)|10,000): one nightly run spends that over all its steps, .* Set \[limits\] subrequests = 1000000\.$/,
        ),
      ]);
    }
    expect(settingsPreflight({ ...ready, limits: { subrequests: 10_000_000 } }).warnings).toEqual([]);
    // The repository's own wrangler.toml, as the deploy reads it, allows what a run needs.
    expect((await readWranglerConfig()).limits).toEqual({ subrequests: nightlyRunSubrequests });
  });

  it("reads secret names from wrangler's JSON list, banner or not", () => {
    const banner = "\n ⛅️ wrangler 4.86.0\n───\n";
    const list =
      '[\n  { "name": "PATRON_API_KEY", "type": "secret_text" },\n  { "name": "PATRON_ADMIN_KEY", "type": "secret_text" }\n]\n';
    expect(parseSecretList(list)).toEqual(["PATRON_API_KEY", "PATRON_ADMIN_KEY"]);
    expect(parseSecretList(banner + list)).toEqual(["PATRON_API_KEY", "PATRON_ADMIN_KEY"]);
    expect(parseSecretList("[]")).toEqual([]);
    expect(() => parseSecretList("You are not logged in.")).toThrow(/no JSON list/);
    expect(() => parseSecretList('[{"type":"secret_text"}]')).toThrow(/without a name/);
  });
});

describe("npm run deploy", () => {
  function harness(options: { secrets?: string[]; failOn?: string; queues?: string[] } = {}) {
    const calls: string[] = [];
    const lines: string[] = [];
    const run: Runner = (command, args) => {
      const line = [command.endsWith("wrangler") ? "wrangler" : "node", ...args].join(" ");
      calls.push(line);
      if (options.failOn && line.includes(options.failOn)) throw new Error(`Command failed: ${line}`);
      return line.includes("secret list")
        ? JSON.stringify((options.secrets ?? allSecrets).map((name) => ({ name })))
        : "";
    };
    const io = {
      run,
      readConfig: () => ({ vars: ready.vars, databases: ready.databases, queues: options.queues ?? ["patron-import"] }),
      log: (line: string) => lines.push(line),
    };
    return { io, calls, lines };
  }

  it("builds without the demo, checks, bundles, checks the queue, migrates both remote databases, then deploys", () => {
    const { io, calls, lines } = harness();
    deploy(io);
    expect(calls).toEqual([
      `node --import tsx widget/build.ts --no-demo --out ${deployAssets}`,
      `node --import tsx console/build.ts --out ${deployAssets}`,
      "wrangler secret list --format json",
      `wrangler deploy --dry-run --outdir ${deployBundle} --assets ${deployAssets}`,
      "wrangler queues info patron-import",
      "wrangler d1 migrations apply patron --remote",
      "wrangler d1 migrations apply patron-events --remote",
      `wrangler deploy --assets ${deployAssets}`,
    ]);
    expect(lines.filter((line) => /^\n\[\d\/8\]/.test(line))).toHaveLength(8);
  });

  it("stops before migrating when the Worker does not bundle", () => {
    const { io, calls } = harness({ failOn: "--dry-run" });
    expect(() => deploy(io)).toThrow(/stopped at step 4 .*\n.*nothing was migrated or deployed/);
    expect(calls.some((call) => call.includes("migrations"))).toBe(false);
  });

  it("creates a missing queue before deploying", () => {
    const { io, calls } = harness({ failOn: "queues info" });
    deploy(io);
    expect(calls.slice(-5)).toEqual([
      "wrangler queues info patron-import",
      "wrangler queues create patron-import",
      "wrangler d1 migrations apply patron --remote",
      "wrangler d1 migrations apply patron-events --remote",
      `wrangler deploy --assets ${deployAssets}`,
    ]);
  });

  it("stops before deploying when the queue can be neither found nor created", () => {
    const { io, calls } = harness({ failOn: "queues" });
    expect(() => deploy(io)).toThrow(/stopped at step 5 .*queue/);
    expect(calls).not.toContain(`wrangler deploy --assets ${deployAssets}`);
    expect(calls.some((call) => call.includes("migrations"))).toBe(false);
  });

  it("stops before migrating when a secret is missing, and says what to set", () => {
    const { io, calls } = harness({ secrets: allSecrets.filter((name) => name !== "SHOPPER_TOKEN_SECRET") });
    expect(() => deploy(io)).toThrow(DeployStopped);
    expect(
      calls.some((call) => call.includes("migrations") || call === `wrangler deploy --assets ${deployAssets}`),
    ).toBe(false);
    try {
      deploy(io);
    } catch (error) {
      expect((error as Error).message).toContain("stopped at step 3");
      expect((error as Error).message).toContain("npx wrangler secret put SHOPPER_TOKEN_SECRET");
    }
  });

  it("stops before deploying when the migrations fail", () => {
    const { io, calls } = harness({ failOn: "migrations apply" });
    expect(() => deploy(io)).toThrow(/stopped at step 6 .*\n.*nothing was deployed/);
    expect(calls).not.toContain(`wrangler deploy --assets ${deployAssets}`);
  });

  it("stops on wrangler.toml problems before asking wrangler for the secrets", () => {
    const { io, calls } = harness();
    const local = { ...io, readConfig: () => ({ vars: { ALLOWED_ORIGINS: "http://localhost:8787" }, databases: [] }) };
    expect(() => deploy(local)).toThrow(/stopped at step 2 [\s\S]*only local origins[\s\S]*placeholder/);
    expect(calls).toEqual([
      `node --import tsx widget/build.ts --no-demo --out ${deployAssets}`,
      `node --import tsx console/build.ts --out ${deployAssets}`,
    ]);
  });

  it("builds what it ships apart from the local build, so the local demo keeps working", () => {
    const { io, calls } = harness();
    deploy(io);
    expect(deployAssets).not.toMatch(/^dist/);
    expect(
      calls.filter((call) => call.includes("build.ts")).every((call) => call.endsWith(`--out ${deployAssets}`)),
    ).toBe(true);
    expect(calls.at(-1)).toBe(`wrangler deploy --assets ${deployAssets}`);
  });

  it("says what is wrong with a wrangler.toml wrangler could not read, without a stack or the file's text", () => {
    const parse = Object.assign(new Error("Invalid TOML document: invalid value"), {
      location: { line: 30, column: 16, lineText: "HOLDOUT_SHARE = 0.1.2 oops", fileText: 'name = "patron"\n…' },
    });
    expect(configReadProblem(parse)).toBe(
      "Invalid TOML document: invalid value at line 30, column 16: HOLDOUT_SHARE = 0.1.2 oops",
    );
    const twice = new Error(
      "Processing wrangler.toml configuration:\n  - SHOPPER_TOKEN_SECRET assigned to Environment Variable and Secret bindings.",
    );
    expect(configReadProblem(twice)).toBe(twice.message);
    expect(configReadProblem(twice)).not.toContain("    at ");
  });

  it("stops at the build when it fails", () => {
    const { io, calls } = harness({ failOn: "--no-demo" });
    expect(() => deploy(io)).toThrow(/stopped at step 1/);
    expect(calls).toHaveLength(1);
  });
});

describe("npm run deploy:dry's report", () => {
  it("says whether npm run deploy's check of wrangler.toml would pass, listing what would stop it", () => {
    expect(dryRunReport(settingsPreflight(ready))).toEqual([
      "wrangler.toml passes the check `npm run deploy` makes before deploying (the secrets are checked then too).",
    ]);
    const local = settingsPreflight({ ...ready, vars: { ...ready.vars, ALLOWED_ORIGINS: "http://localhost:8787" } });
    const lines = dryRunReport(local);
    expect(lines[0]).toContain("would stop at its check");
    expect(lines.slice(1)).toEqual(local.problems.map((problem) => `  ✗ ${problem}`));
    expect(lines).toHaveLength(1 + local.problems.length);
  });
});
