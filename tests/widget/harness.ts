// Shared pieces of the widget's browser tests: Debian's Chromium driven by playwright-core, host pages
// served from a fake storefront origin, and reads of the worker's local D1.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { type Browser, chromium, type Page } from "playwright-core";

const root = path.resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

/** The storefront origin the host pages are served from: cross-origin to the worker, as in production. */
export const shopOrigin = "http://shop.test";
export const artifactsDir = path.join(root, "tests/artifacts");

export function assertWidgetBuilt(): void {
  if (!existsSync(path.join(root, "dist/public/widget/v1.js"))) {
    throw new Error("dist/public/widget/v1.js is missing: run `npm run build` before the browser tests.");
  }
}

/** Debian's Chromium unless CHROMIUM_PATH names another Chromium or Chrome binary. */
export const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `Chromium not found at ${chromiumPath}. Install it (Debian/Ubuntu: sudo apt-get install -y chromium) ` +
        "or set CHROMIUM_PATH to a Chromium or Chrome binary.",
    );
  }
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--no-sandbox",
      "--headless",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // The fake storefront origin counts as public and the worker listens on loopback; in production
      // both are public. Without this, Private Network Access blocks the page from the worker.
      "--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,LocalNetworkAccessChecks",
    ],
  });
}

export interface HostPageOptions {
  workerUrl: string;
  token?: string;
  timeoutMs?: number;
  /** Extra CSS for the host page, e.g. a hostile global reset. */
  css?: string;
}

/** A storefront page that embeds the widget exactly as the docs tell integrators to. */
export function hostPage({ workerUrl, token, timeoutMs, css = "" }: HostPageOptions): string {
  const attributes = [token ? `data-token="${token}"` : "", timeoutMs ? `data-timeout="${timeoutMs}"` : ""].join(" ");
  return `<!doctype html>
<html lang="en-US"><head><meta charset="utf-8"><title>Shop</title>
<style>body { margin: 0; width: 1200px; font: 16px serif; } ${css}</style>
<script>
  window.layoutShift = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.layoutShift += entry.value;
  }).observe({ type: "layout-shift", buffered: true });
  window.patron = window.patron || function () { (patron.q = patron.q || []).push(arguments); };
</script>
<script async src="${workerUrl}/widget/v1.js" ${attributes}></script>
</head><body>
<p class="outside">Above the shelf</p>
<div data-patron="picked-for-you" data-limit="8" data-title="Picked for you"></div>
<div class="after">Below the shelf</div>
<img class="outside-img" alt="" width="40" height="20" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
</body></html>`;
}

/** Serves `pages` (path → html) at the fake shop origin for every page of the browser context. */
export async function serveShop(page: Page, pages: Record<string, string>): Promise<void> {
  await page.context().route(`${shopOrigin}/**`, (route) => {
    const html = pages[new URL(route.request().url()).pathname];
    return html
      ? route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: html })
      : route.fulfill({ status: 404, body: "not found" });
  });
}

export interface RenderedCard {
  href: string;
  title: string;
  price: string;
  listPrice: string | null;
  reason: string | null;
  label: string;
  description: string | null;
}

/** Reads the product cards out of the first mount point's shadow root. */
export function renderedCards(page: Page, mountIndex = 0): Promise<RenderedCard[]> {
  return page.evaluate((index) => {
    const root = document.querySelectorAll("[data-patron]")[index]?.shadowRoot;
    return [...(root?.querySelectorAll("li a") ?? [])].map((link) => {
      const describedBy = link.getAttribute("aria-describedby");
      return {
        href: link.getAttribute("href") ?? "",
        title: link.querySelector("b")?.textContent ?? "",
        price: (link.querySelector("ins") ?? link.querySelector("em"))?.firstChild?.textContent ?? "",
        listPrice: link.querySelector("s")?.textContent ?? null,
        reason: link.querySelector("p")?.textContent ?? null,
        label: link.getAttribute("aria-label") ?? "",
        description: describedBy ? (root?.getElementById(describedBy)?.textContent ?? null) : null,
      };
    });
  }, mountIndex);
}

export function waitForCards(page: Page, mountIndex = 0, timeout = 15_000) {
  return page.waitForFunction(
    (index) =>
      (document.querySelectorAll("[data-patron]")[index]?.shadowRoot?.querySelectorAll("li a").length ?? 0) > 0,
    mountIndex,
    { timeout },
  );
}

/** Runs SQL against the dev worker's local D1 through wrangler, as an operator would. */
export async function queryLocalD1<T>(persistDir: string, sql: string): Promise<T[]> {
  const { stdout } = await run(
    path.join(root, "node_modules/.bin/wrangler"),
    ["d1", "execute", "DB", "--local", "--persist-to", persistDir, "--command", sql, "--json"],
    { cwd: root, env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" } },
  );
  const parsed = JSON.parse(stdout) as { results: T[] }[];
  return parsed[0]?.results ?? [];
}
