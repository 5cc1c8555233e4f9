// The demo storefront is served only where asked, checked where the asset routing really runs: the
// worker under `wrangler dev` with wrangler.toml's [assets] (the vitest worker pool calls the Worker
// directly and does not route static files). With the dev build's demo files in dist/public, /demo and
// its files answer 404 unless PATRON_DEMO is "on"; the deploy build (--no-demo) carries no demo files.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { startDevWorker } from "../fixtures/wrangler-dev.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const demoPaths = [
  "/demo",
  "/demo/",
  "/demo/index.html",
  "/demo/cart",
  "/demo/shop.css",
  "/demo/shop.js",
  "/demo/images/coffee-001.svg",
  "/demo/products/coffee-001",
  "/demo/token?account=demo-new",
];

describe("demo exposure", () => {
  it("builds without any demo file with --no-demo, and with them by default", async () => {
    const out = mkdtempSync(path.join(tmpdir(), "patron-build-"));
    try {
      await run(process.execPath, ["--import", "tsx", "widget/build.ts", "--no-demo", "--out", out], { cwd: root });
      expect(readdirSync(out).sort()).toEqual(["_headers", "widget"]);
      expect(readFileSync(path.join(out, "_headers"), "utf8")).not.toContain("/demo");
      await run(process.execPath, ["--import", "tsx", "widget/build.ts", "--out", out], { cwd: root });
      expect(existsSync(path.join(out, "demo/index.html"))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);

  it("answers 404 for /demo and its static files under wrangler dev unless PATRON_DEMO is on", async () => {
    if (!existsSync(path.join(root, "dist/public/demo/index.html")))
      throw new Error("dist/public/demo is missing: run `npm run build` first (npm test does).");
    const off = await startDevWorker({ vars: { PATRON_DEMO: "off" } });
    try {
      for (const demoPath of demoPaths) {
        const response = await fetch(`${off.url}${demoPath}`, { redirect: "manual" });
        expect(response.status, demoPath).toBe(404);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe("not_found");
      }
      // The widget stays a plain static file.
      expect((await fetch(`${off.url}/widget/v1.js`)).status).toBe(200);
    } finally {
      await off.stop();
    }
    const on = await startDevWorker({ vars: { PATRON_DEMO: "on" } });
    try {
      const page = await fetch(`${on.url}/demo/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("Northwind");
      expect((await fetch(`${on.url}/demo/shop.css`)).status).toBe(200);
      expect((await fetch(`${on.url}/demo/cart`)).status).toBe(200);
      expect((await fetch(`${on.url}/demo/token?account=demo-new`)).status).toBe(200);
      expect((await fetch(`${on.url}/demo/token?account=someone-else`)).status).toBe(403);
    } finally {
      await on.stop();
    }
  }, 300_000);
});
