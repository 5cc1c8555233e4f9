// Runs the real `patron token` as a child process (node cli/bin.mjs token ...) and verifies what it
// prints with the worker's own verifyShopperToken: right secret, wrong secret, expiry, secret lookup.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it, onTestFinished } from "vitest";
import { verifyShopperToken } from "../../worker/http/shopper-token.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const bin = path.join(root, "cli/bin.mjs");
const timeout = 30_000;

async function runToken(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const { SHOPPER_TOKEN_SECRET: _ignored, SHOPPER_TOKEN_MAX_TTL_SECONDS: _cap, ...inherited } = process.env;
  try {
    const { stdout, stderr } = await run("node", [bin, "token", ...args], {
      cwd: options.cwd ?? root,
      env: { ...inherited, ...options.env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function onlyToken(stdout: string): string {
  const lines = stdout.trim().split("\n");
  expect(lines).toHaveLength(1); // the token and nothing else, so $(patron token ...) works
  expect(lines[0]).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  return lines[0]!;
}

describe("patron token", () => {
  it(
    "prints a token the worker accepts for the right secret only, expiring after the ttl",
    async () => {
      const before = Math.floor(Date.now() / 1000);
      const { code, stdout, stderr } = await runToken(["--sub", "u-1", "--ttl", "1h", "--secret", "s"]);
      const after = Math.ceil(Date.now() / 1000);
      expect(code, stderr).toBe(0);
      expect(stderr).toBe("");
      const token = onlyToken(stdout);

      const check = await verifyShopperToken(token, "s", new Date());
      expect(check.ok).toBe(true);
      if (!check.ok) return;
      expect(check.claims.sub).toBe("u-1");
      expect(check.claims.exp).toBeGreaterThanOrEqual(before + 3600);
      expect(check.claims.exp).toBeLessThanOrEqual(after + 3600);

      expect(await verifyShopperToken(token, "another-secret", new Date())).toEqual({
        ok: false,
        reason: "bad_signature",
      });
      expect(await verifyShopperToken(token, "s", new Date((check.claims.exp + 1) * 1000))).toEqual({
        ok: false,
        reason: "expired",
      });
    },
    timeout,
  );

  it.each([
    ["30m", 1800],
    ["1d", 86_400],
    ["90", 90],
  ])(
    "reads --ttl %s as %i seconds",
    async (ttl, seconds) => {
      const { code, stdout } = await runToken(["--sub", "u-2", "--ttl", ttl, "--secret", "s"]);
      expect(code).toBe(0);
      const check = await verifyShopperToken(onlyToken(stdout), "s", new Date());
      expect(check.ok && check.claims.exp - (check.claims.iat ?? 0)).toBe(seconds);
    },
    timeout,
  );

  it(
    "takes the secret from SHOPPER_TOKEN_SECRET, then .dev.vars, then the local default (saying so)",
    async () => {
      const withVars = mkdtempSync(path.join(tmpdir(), "patron-token-"));
      writeFileSync(path.join(withVars, ".dev.vars"), 'PATRON_API_KEY=x\nSHOPPER_TOKEN_SECRET="from-dev-vars"\n');
      const empty = mkdtempSync(path.join(tmpdir(), "patron-token-"));
      onTestFinished(() => {
        for (const folder of [withVars, empty]) rmSync(folder, { recursive: true, force: true });
      });

      const fromEnv = await runToken(["--sub", "u-3"], { cwd: withVars, env: { SHOPPER_TOKEN_SECRET: "from-env" } });
      expect((await verifyShopperToken(onlyToken(fromEnv.stdout), "from-env", new Date())).ok).toBe(true);

      const fromFile = await runToken(["--sub", "u-3"], { cwd: withVars });
      expect((await verifyShopperToken(onlyToken(fromFile.stdout), "from-dev-vars", new Date())).ok).toBe(true);
      expect(fromFile.stderr).toBe("");

      const fallback = await runToken(["--sub", "u-3"], { cwd: empty });
      expect((await verifyShopperToken(onlyToken(fallback.stdout), "dev-shopper-secret", new Date())).ok).toBe(true);
      expect(fallback.stderr).toContain('local default "dev-shopper-secret"');
    },
    timeout,
  );

  it(
    "refuses a --ttl longer than the worker's cap, and follows SHOPPER_TOKEN_MAX_TTL_SECONDS",
    async () => {
      const tooLong = await runToken(["--sub", "u-5", "--ttl", "2d", "--secret", "s"]);
      expect(tooLong.code).toBe(2);
      expect(tooLong.stdout).toBe("");
      expect(tooLong.stderr).toContain("SHOPPER_TOKEN_MAX_TTL_SECONDS = 86400 s, the default");

      const raised = await runToken(["--sub", "u-5", "--ttl", "2d", "--secret", "s"], {
        env: { SHOPPER_TOKEN_MAX_TTL_SECONDS: "172800" },
      });
      expect(raised.code, raised.stderr).toBe(0);
      const token = onlyToken(raised.stdout);
      expect(await verifyShopperToken(token, "s", new Date())).toMatchObject({
        ok: false,
        reason: "lifetime_too_long",
      });
      expect((await verifyShopperToken(token, "s", new Date(), { maxTtlSeconds: 172_800 })).ok).toBe(true);

      const lowered = await runToken(["--sub", "u-5", "--ttl", "2h", "--secret", "s"], {
        env: { SHOPPER_TOKEN_MAX_TTL_SECONDS: "3600" },
      });
      expect(lowered.code).toBe(2);
      expect(lowered.stderr).toContain("SHOPPER_TOKEN_MAX_TTL_SECONDS = 3600 s)");
    },
    timeout,
  );

  it(
    "rejects a missing --sub, an unreadable --ttl and an empty --secret with exit code 2 and nothing on stdout",
    async () => {
      // `--secret "$UNSET"`: not signed with the local default, which the deployment would refuse.
      const emptySecret = await runToken(["--sub", "u-4", "--secret", ""]);
      expect(emptySecret.code).toBe(2);
      expect(emptySecret.stdout).toBe("");
      expect(emptySecret.stderr).toBe("patron token: --secret is empty (an unset variable?)\n");
      for (const ttl of ["soon", "0", "-5"]) {
        const badTtl = await runToken(["--sub", "u-4", "--ttl", ttl, "--secret", "s"]);
        expect(badTtl.code, ttl).toBe(2);
        expect(badTtl.stdout).toBe("");
        expect(badTtl.stderr).toBe(
          `patron token: --ttl must be a positive duration like 30m, 1h, 12h or a whole number of seconds, got "${ttl}"\n`,
        );
      }
      const noSub = await runToken(["--secret", "s"]);
      expect(noSub.code).not.toBe(0);
      expect(noSub.stdout).toBe("");
      expect(noSub.stderr).toContain("--sub");
    },
    timeout,
  );
});

describe("patron token --sub", () => {
  it("drops only the padding a shell or file adds: an id starting with another space keeps it", async () => {
    for (const [sent, sub] of [
      [" u-7\t", "u-7"],
      ["\u3000u-7", "\u3000u-7"],
    ]) {
      const { code, stdout, stderr } = await runToken(["--sub", sent as string, "--secret", "s"]);
      expect(code, stderr).toBe(0);
      const check = await verifyShopperToken(onlyToken(stdout), "s", new Date());
      expect(check.ok && check.claims.sub).toBe(sub);
    }
  });
});
