// What the admin commands (`patron backfill`, `patron shards migrate`) talk to with no flags: the local
// run `npm start` made, its port and its .dev.vars.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { adminKeyFrom, defaultWorkerUrl, devVar, parseDevVars, talksToLocalWorker } from "../../cli/dev-vars.ts";

/** The scratch folders a test made, removed after it. */
const scratch: string[] = [];
async function scratchFolder(prefix: string) {
  const folder = await mkdtemp(path.join(tmpdir(), prefix));
  scratch.push(folder);
  return folder;
}

/**
 * Runs the command "in" a scratch folder holding `devVars` as its .dev.vars (none when undefined), with
 * no $PATRON_ADMIN_KEY; returns the folder.
 */
async function inFolder(prefix: string, devVars?: string) {
  const folder = await scratchFolder(prefix);
  if (devVars !== undefined) await writeFile(path.join(folder, ".dev.vars"), devVars);
  vi.spyOn(process, "cwd").mockReturnValue(folder);
  vi.stubEnv("PATRON_ADMIN_KEY", "");
  delete process.env.PATRON_ADMIN_KEY;
  return folder;
}

afterEach(async () => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  for (const folder of scratch.splice(0)) await rm(folder, { recursive: true, force: true });
});

describe("defaultWorkerUrl", () => {
  it("is PATRON_URL when set, else the local worker on PORT, else on 8787", () => {
    vi.stubEnv("PATRON_URL", "");
    delete process.env.PATRON_URL;
    vi.stubEnv("PORT", "8797");
    expect(defaultWorkerUrl()).toBe("http://127.0.0.1:8797");
    delete process.env.PORT;
    expect(defaultWorkerUrl()).toBe("http://127.0.0.1:8787");
    vi.stubEnv("PATRON_URL", "https://patron.example.workers.dev");
    expect(defaultWorkerUrl()).toBe("https://patron.example.workers.dev");
  });
});

describe("adminKeyFrom", () => {
  it("takes --key, then PATRON_ADMIN_KEY, then the .dev.vars in the working folder", async () => {
    await inFolder("patron-dev-vars-", '# local\nPATRON_ADMIN_KEY="from-file"\nOTHER=1\n');
    expect(await devVar("PATRON_ADMIN_KEY")).toBe("from-file");
    expect(await adminKeyFrom(undefined)).toEqual({ key: "from-file", from: ".dev.vars" });
    vi.stubEnv("PATRON_ADMIN_KEY", "from-env");
    expect(await adminKeyFrom(undefined)).toEqual({ key: "from-env", from: "$PATRON_ADMIN_KEY" });
    expect(await adminKeyFrom("from-flag")).toEqual({ key: "from-flag", from: "--key" });
  });

  it("finds the .dev.vars of a folder above, as when a command runs in a subfolder of the repository", async () => {
    const folder = await inFolder("patron-dev-vars-above-", "PATRON_ADMIN_KEY=from-root\n");
    const below = path.join(folder, "console", "src");
    await mkdir(below, { recursive: true });
    vi.spyOn(process, "cwd").mockReturnValue(below);
    expect(await adminKeyFrom(undefined)).toEqual({ key: "from-root", from: ".dev.vars" });
  });

  it("never reads .dev.vars for a worker other than the local one", async () => {
    await inFolder("patron-dev-vars-remote-", "PATRON_ADMIN_KEY=local-only\n");
    expect(await adminKeyFrom(undefined, false)).toBeUndefined();
    expect(await adminKeyFrom(undefined, true)).toEqual({ key: "local-only", from: ".dev.vars" });
    vi.stubEnv("PATRON_URL", "https://patron.example.workers.dev");
    expect(talksToLocalWorker(undefined)).toBe(false);
    vi.stubEnv("PATRON_URL", "");
    delete process.env.PATRON_URL;
    expect(talksToLocalWorker(undefined)).toBe(true);
    expect(talksToLocalWorker("https://patron.example.workers.dev")).toBe(false);
    expect(talksToLocalWorker("http://127.0.0.1.example.com:8787")).toBe(false);
    expect(talksToLocalWorker("not a url")).toBe(false);
  });

  it("counts a --url or $PATRON_URL on this machine (npm start on another port) as the local worker", () => {
    for (const url of ["http://127.0.0.1:8797", "http://localhost:8797/", "http://[::1]:8787"])
      expect(talksToLocalWorker(url)).toBe(true);
    vi.stubEnv("PATRON_URL", "http://127.0.0.1:8797");
    expect(talksToLocalWorker(undefined)).toBe(true);
  });

  it("is undefined with no flag, no variable and no .dev.vars", async () => {
    await inFolder("patron-no-dev-vars-");
    expect(await adminKeyFrom(undefined)).toBeUndefined();
  });
});

describe("parseDevVars", () => {
  it("reads .dev.vars as wrangler does: comments, export, quotes and inline comments", () => {
    expect(
      parseDevVars(
        [
          "# the local keys",
          "PATRON_ADMIN_KEY=abc # local",
          "export PATRON_API_KEY='key with # hash'",
          'SHOPPER_TOKEN_SECRET="quoted"',
          "EMPTY=",
          "not a line",
        ].join("\n"),
      ),
    ).toEqual({
      PATRON_ADMIN_KEY: "abc",
      PATRON_API_KEY: "key with # hash",
      SHOPPER_TOKEN_SECRET: "quoted",
      EMPTY: "",
    });
  });
});
