// The house rules `npm run check` keeps with tools rather than memory: worker/core imports no package
// and nothing of ours outside core (Biome's noRestrictedImports, biome.json), repos never import HTTP
// errors or Hono (same rule), and the core tsconfig knows no platform (no Workers types, no DOM, no
// Node). Each rule is run on small probe files in a scratch directory, so every case that must fail is
// seen failing and every allowed import is seen passing, against the real biome.json and tsconfig.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");
const bin = (name: string) => path.join(root, "node_modules", ".bin", name);

let scratch = "";
beforeAll(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), "patron-architecture-"));
  copyFileSync(path.join(root, "biome.json"), path.join(scratch, "biome.json"));
  symlinkSync(path.join(root, "node_modules"), path.join(scratch, "node_modules"), "dir");
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function writeProbe(relativePath: string, source: string): void {
  const file = path.join(scratch, relativePath);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, source);
}

interface Diagnostic {
  category: string;
  message: string;
  location: { path: string };
}

/** Runs the import rule alone over `files` (relative to the scratch directory); the files it flags. */
function flaggedBy(files: string[]): string[] {
  const result = spawnSync(
    bin("biome"),
    ["lint", "--only=style/noRestrictedImports", "--reporter=json", "--max-diagnostics=none", ...files],
    { cwd: scratch, encoding: "utf8" },
  );
  const report = JSON.parse(result.stdout) as { diagnostics: Diagnostic[] };
  const diagnostics = report.diagnostics.filter((d) => d.category === "lint/style/noRestrictedImports");
  expect(result.status, result.stderr).toBe(diagnostics.length > 0 ? 1 : 0);
  return diagnostics.map((d) => d.location.path.replaceAll("\\", "/"));
}

describe("worker/core imports only core", () => {
  const cases: [string, string, string, boolean][] = [
    ["an npm package", "worker/core/models/npm.ts", 'import * as z from "zod";', true],
    [
      "a package's types only",
      "worker/core/models/types.ts",
      'import type { D1Database } from "@cloudflare/workers-types";',
      true,
    ],
    ["a node: module", "worker/core/math/node.ts", 'import { readFile } from "node:fs/promises";', true],
    ["a bare Node built-in", "worker/core/math/bare-node.ts", 'import path from "path";', true],
    ["a cloudflare: module", "worker/core/identity/cf.ts", 'import { env } from "cloudflare:workers";', true],
    ["a re-export of a package", "worker/core/ranking/reexport.ts", 'export { Hono } from "hono";', true],
    [
      "a dynamic import of a package",
      "worker/core/rules/dynamic.ts",
      'export const hono = () => import("hono");',
      true,
    ],
    ["an absolute path", "worker/core/models/absolute.ts", 'import { x } from "/etc/x.ts";', true],
    [
      "worker code outside core, one level down",
      "worker/core/models/http.ts",
      'import { ApiError } from "../../http/errors.ts";',
      true,
    ],
    [
      "worker code outside core, at the top",
      "worker/core/top-http.ts",
      'import { ApiError } from "../http/errors.ts";',
      true,
    ],
    ["a sibling module", "worker/core/models/sibling.ts", 'import { x } from "./clv.ts";', false],
    ["another core folder", "worker/core/models/cousin.ts", 'import { x } from "../math/quantile.ts";', false],
    [
      "the vocabulary, one level down",
      "worker/core/rules/vocab.ts",
      'import type { Channel } from "../vocabulary.ts";',
      false,
    ],
    ["a core folder, from the top", "worker/core/top-ok.ts", 'import { x } from "./math/quantile.ts";', false],
  ];

  it.each(cases)("%s: %s", (_what, file, source, flagged) => {
    writeProbe(file, `${source}\n`);
    expect(flaggedBy([file])).toEqual(flagged ? [file] : []);
  });

  it("the same imports are allowed outside core", () => {
    writeProbe("worker/orders/outside.ts", 'import * as z from "zod";\nimport { env } from "cloudflare:workers";\n');
    expect(flaggedBy(["worker/orders/outside.ts"])).toEqual([]);
  });
});

describe("repos never speak HTTP", () => {
  const cases: [string, string, boolean][] = [
    ["the ApiError module", 'import { ApiError } from "../http/errors.ts";', true],
    ["any http/ module", 'import { requireApiKey } from "../http/auth.ts";', true],
    ["Hono's HTTPException", 'import { HTTPException } from "hono/http-exception";', true],
    ["Hono itself", 'import type { Context } from "hono";', true],
    ["drizzle", 'import { sql } from "drizzle-orm";', false],
    ["the batch helper", 'import { runBatch } from "../../db/batch.ts";', false],
    ["core", 'import type { Rule } from "../core/rules/types.ts";', false],
  ];

  it.each(cases)("%s", (what, source, flagged) => {
    const file = `worker/probe/${what.replaceAll(/\W+/g, "-")}.repo.ts`;
    writeProbe(file, `${source}\n`);
    expect(flaggedBy([file])).toEqual(flagged ? [file] : []);
  });

  it("routes may import the errors they answer with", () => {
    writeProbe("worker/probe/probe.routes.ts", 'import { ApiError } from "../http/errors.ts";\n');
    expect(flaggedBy(["worker/probe/probe.routes.ts"])).toEqual([]);
  });
});

it("the worker as it stands keeps both import rules", () => {
  const result = spawnSync(bin("biome"), ["lint", "--only=style/noRestrictedImports", "worker"], {
    cwd: root,
    encoding: "utf8",
  });
  expect(result.stdout + result.stderr).not.toMatch(/noRestrictedImports/);
  expect(result.status).toBe(0);
});

describe("the core tsconfig knows no platform", () => {
  const probes = {
    "d1.ts": "export const binding: D1Database | undefined = undefined;\n",
    "dom.ts": "export const title = () => document.title;\n",
    "node.ts": "export const home = () => process.env.HOME;\n",
  };

  /** Type-checks the probes with worker/core/tsconfig.json, optionally with extra compiler options. */
  function typecheck(name: string, compilerOptions: object = {}): string {
    const directory = path.join(scratch, `tsc-${name}`);
    mkdirSync(directory, { recursive: true });
    for (const [file, source] of Object.entries(probes)) writeFileSync(path.join(directory, file), source);
    const config = {
      extends: path.join(root, "worker/core/tsconfig.json"),
      compilerOptions,
      include: [],
      files: Object.keys(probes),
    };
    writeFileSync(path.join(directory, "tsconfig.json"), JSON.stringify(config));
    const result = spawnSync(bin("tsc"), ["-p", directory], { cwd: directory, encoding: "utf8" });
    return result.stdout + result.stderr;
  }

  it("fails on a Workers binding type, a DOM global and a Node global", () => {
    const output = typecheck("core");
    expect(output).toMatch(/d1\.ts.*Cannot find name 'D1Database'/);
    expect(output).toMatch(/dom\.ts.*Cannot find name 'document'/);
    expect(output).toMatch(/node\.ts.*Cannot find name 'process'/);
  });

  it("compiles the same probes once the platform types are added (the failures come from the config)", () => {
    expect(typecheck("platform", { lib: ["ES2023", "DOM"], types: ["@cloudflare/workers-types", "node"] })).toBe("");
  });
});
