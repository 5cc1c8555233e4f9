/// <reference types="node" />
// Builds the console (/console, a Preact single-page app) into dist/public/console/assets: one ES module
// (console.js) and one stylesheet (console.css). Only the console's HTML (worker/console/console.routes.ts)
// loads them; the storefront widget and the demo never do.
//   --out <dir>    build into another folder (tests)
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { build, type Plugin, transform } from "esbuild";

const root = path.resolve(import.meta.dirname, "..");
const { values: flags } = parseArgs({ options: { out: { type: "string" } } });
const publicDir = path.resolve(root, flags.out ?? "dist/public");
const outDir = path.join(publicDir, "console/assets");

const widgetDir = path.join(root, "widget/storefront");

/**
 * The customer page renders the storefront widget's own shelf (console/src/shelf-preview.tsx). The
 * widget's stylesheet comes in as text, for the constructed stylesheet of its shadow root, as the
 * widget's own build gives it; and the widget's events module is swapped for a silent one, so a
 * preview in the console sends no impression or click.
 */
const widgetShelf: Plugin = {
  name: "widget-shelf",
  setup(builder) {
    builder.onResolve({ filter: /^\.\/events\.ts$/ }, (args) =>
      path.dirname(args.importer) === widgetDir ? { path: path.join(root, "console/src/widget-events.ts") } : undefined,
    );
    builder.onLoad({ filter: /\.css$/ }, async (args) => {
      if (path.dirname(args.path) !== widgetDir) return undefined;
      const { code } = await transform(await readFile(args.path, "utf8"), { loader: "css", minify: true });
      return { contents: `export default ${JSON.stringify(code.trim())};`, loader: "js" };
    });
  },
};

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
  plugins: [widgetShelf],
  logLevel: "warning",
});

const sizes = Object.entries(result.metafile.outputs).map(
  ([file, output]) => `${path.relative(root, file)} (${output.bytes} bytes minified)`,
);
console.log(`built ${sizes.join(", ")}`);
