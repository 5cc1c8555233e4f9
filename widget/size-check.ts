/// <reference types="node" />
// The widget's byte budget, checked on every change: it loads on every storefront page view. Run as a
// script (`npm run size`) it prints the figures and exits non-zero over budget; `tests/widget/size.test.ts`
// imports the same measurement so `npm test` fails over budget too. It does not build the bundle.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

export const budgetGzipBytes = 7_000;
export const widgetBundlePath = path.resolve(import.meta.dirname, "../dist/public/widget/v1.js");
/** The files v1.js loads beside it (the shelf's stylesheet, the reservation and the optional modules): reported, no budget. */
export const widgetPartPaths = ["v1.css", "v1-shelf.css", "v1-cart.js", "v1-debug.js"].map((file) =>
  path.resolve(import.meta.dirname, "../dist/public/widget", file),
);
/** The console's bundle: reported for information (it loads only on /console, never on a storefront). */
export const consoleBundlePaths = ["console.js", "console.css"].map((file) =>
  path.resolve(import.meta.dirname, "../dist/public/console/assets", file),
);

/** Gzip size at level 9, the most a CDN is likely to squeeze out of the bundle. */
export function gzipSize(source: Uint8Array): number {
  return gzipSync(source, { level: 9 }).length;
}

export interface BundleSize {
  minifiedBytes: number;
  gzipBytes: number;
}

/** The built bundle's sizes, or null when it has not been built. */
export async function measureWidgetBundle(file = widgetBundlePath): Promise<BundleSize | null> {
  const source = await readFile(file).catch(() => null);
  return source ? { minifiedBytes: source.length, gzipBytes: gzipSize(source) } : null;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const size = await measureWidgetBundle();
  if (!size) {
    console.error(`${path.relative(process.cwd(), widgetBundlePath)} is missing: run \`npm run build\` first.`);
    process.exit(1);
  }
  const verdict = size.gzipBytes <= budgetGzipBytes ? "within" : "OVER";
  console.log(
    `widget/v1.js: ${size.minifiedBytes} bytes minified, ${size.gzipBytes} bytes gzip (${verdict} the ${budgetGzipBytes}-byte budget)`,
  );
  for (const file of widgetPartPaths) {
    const part = await measureWidgetBundle(file);
    console.log(
      part
        ? `widget/${path.basename(file)}: ${part.minifiedBytes} bytes minified, ${part.gzipBytes} bytes gzip (loaded beside v1.js; no budget)`
        : `widget/${path.basename(file)}: not built`,
    );
  }
  for (const file of consoleBundlePaths) {
    const consoleSize = await measureWidgetBundle(file);
    console.log(
      consoleSize
        ? `console/${path.basename(file)}: ${consoleSize.minifiedBytes} bytes minified, ${consoleSize.gzipBytes} bytes gzip (loaded only on /console; no budget)`
        : `console/${path.basename(file)}: not built`,
    );
  }
  if (size.gzipBytes > budgetGzipBytes) process.exit(1);
}
