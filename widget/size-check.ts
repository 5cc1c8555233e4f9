/// <reference types="node" />
// The widget's byte budget, checked on every change: it loads on every storefront page view.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";

export const budgetGzipBytes = 7_000;

const file = path.resolve(import.meta.dirname, "../dist/public/widget/v1.js");
const source = await readFile(file).catch(() => null);
if (!source) {
  console.error(`${path.relative(process.cwd(), file)} is missing: run \`npm run build\` first.`);
  process.exit(1);
}
const gzipped = gzipSync(source, { level: 9 }).length;
const verdict = gzipped <= budgetGzipBytes ? "within" : "OVER";
console.log(
  `widget/v1.js: ${source.length} bytes minified, ${gzipped} bytes gzip (${verdict} the ${budgetGzipBytes}-byte budget)`,
);
if (gzipped > budgetGzipBytes) process.exit(1);
