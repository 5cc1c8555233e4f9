// `patron --version` prints the version of the package it belongs to (the one a bug report names).
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");

it("prints the package's version and nothing else", async () => {
  const { version } = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string };
  const { stdout } = await promisify(execFile)("node", [path.join(root, "cli/bin.mjs"), "--version"], { cwd: root });
  expect(stdout).toBe(`${version}\n`);
}, 30_000);
