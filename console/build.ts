/// <reference types="node" />
// Builds the console (/console, a Preact single-page app) into dist/public/console/assets: one ES module
// (console.js) and one stylesheet (console.css). Only the console's HTML (worker/console/console.routes.ts)
// loads them; the storefront widget and the demo never do.
//   --out <dir>    build into another folder (tests)
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const root = path.resolve(import.meta.dirname, "..");
const { values: flags } = parseArgs({ options: { out: { type: "string" } } });
const publicDir = path.resolve(root, flags.out ?? "dist/public");
const outDir = path.join(publicDir, "console/assets");

await rm(path.join(publicDir, "console"), { recursive: true, force: true });
await mkdir(outDir, { recursive: true });

const result = await build({
  // main.tsx imports console.css, so esbuild writes console.css next to console.js.
  entryPoints: { console: path.join(root, "console/src/main.tsx") },
  outdir: outDir,
  entryNames: "[name]",
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});

const sizes = Object.entries(result.metafile.outputs).map(
  ([file, output]) => `${path.relative(root, file)} (${output.bytes} bytes minified)`,
);
console.log(`built ${sizes.join(", ")}`);
