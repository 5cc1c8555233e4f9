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
  /** The mount points; one "Picked for you" shelf of 8 by default. */
  mounts?: string;
  /** The page's <html lang>. */
  lang?: string;
  /** A Content-Security-Policy for a <meta> tag; the page then keeps its CSS and stub out of inline code. */
  csp?: string;
  /** Script run before the widget's script: e.g. remove a browser API. */
  before?: string;
  /** More attributes for the widget's script tag, e.g. `data-debug`. */
  scriptAttributes?: string;
}

const defaultMount = '<div data-patron="picked-for-you" data-limit="8" data-title="Picked for you"></div>';

/**
 * A storefront page that embeds the widget exactly as the docs tell integrators to: the reservation
 * stylesheet in the head, the queue stub, the async script and the mount points. Layout shifts add up in
 * `window.layoutShift`; CSP violations are listed in `window.violations`.
 */
export function hostPage({
  workerUrl,
  token,
  timeoutMs,
  css = "",
  mounts = defaultMount,
  lang = "en-US",
  csp,
  before = "",
  scriptAttributes = "",
}: HostPageOptions): string {
  const attributes = [
    token ? `data-token="${token}"` : "",
    timeoutMs ? `data-timeout="${timeoutMs}"` : "",
    scriptAttributes,
  ].join(" ");
  const script = `
  window.layoutShift = 0;
  window.violations = [];
  document.addEventListener("securitypolicyviolation", (event) => violations.push(event.violatedDirective + " " + event.blockedURI));
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.layoutShift += entry.value;
  }).observe({ type: "layout-shift", buffered: true });
  window.patron = window.patron || function () { (patron.q = patron.q || []).push(arguments); };
  ${before}`;
  const styles = `body { margin: 0; max-width: 1200px; font: 16px serif; } ${css}`;
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><title>Shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
${csp ? `<meta http-equiv="Content-Security-Policy" content="${csp}">` : ""}
${csp ? '<link rel="stylesheet" href="/page.css">' : `<style>${styles}</style>`}
<link rel="stylesheet" href="${workerUrl}/widget/v1.css">
${csp ? '<script src="/page.js"></script>' : `<script>${script}</script>`}
<script async src="${workerUrl}/widget/v1.js" ${attributes}></script>
</head><body>
<p class="outside">Above the shelf</p>
${mounts}
<div class="after">Below the shelf</div>
<img class="outside-img" alt="" width="40" height="20" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
</body></html>`;
}

/** The CSS and script a `csp` host page loads from its own origin (they are inline otherwise). */
export function hostPageAssets(options: HostPageOptions): Record<string, string> {
  const html = hostPage({ ...options, csp: undefined });
  return {
    "/page.css": html.match(/<style>([\s\S]*?)<\/style>/)![1]!,
    "/page.js": html.match(/<script>([\s\S]*?)<\/script>/)![1]!,
  };
}

/** Serves `pages` (path → html) at the fake shop origin for every page of the browser context. */
export async function serveShop(page: Page, pages: Record<string, string>): Promise<void> {
  await page.context().route(`${shopOrigin}/**`, (route) => {
    const pathname = new URL(route.request().url()).pathname;
    const html = pages[pathname];
    const contentType = pathname.endsWith(".css")
      ? "text/css"
      : pathname.endsWith(".js")
        ? "text/javascript"
        : "text/html";
    return html
      ? route.fulfill({ status: 200, contentType: `${contentType}; charset=utf-8`, body: html })
      : route.fulfill({ status: 404, body: "not found" });
  });
}

export interface RenderedCard {
  href: string;
  title: string;
  price: string;
  listPrice: string | null;
  reason: string | null;
  /** The link's accessible name, as Chromium computes it for assistive technology. */
  label: string;
}

/** Waits until the widget has cached the popular shelf (in the background, once the page's shelves are up). */
export async function popularCached(page: Page): Promise<void> {
  await page.waitForFunction(() => localStorage.getItem("patron:popular:v1")?.includes("recommendationId"), undefined, {
    timeout: 10_000,
  });
}

/** Reads the product cards out of the first mount point's shadow root. */
export async function renderedCards(page: Page, mountIndex = 0): Promise<RenderedCard[]> {
  const cards = await page.evaluate((index) => {
    const root = document.querySelectorAll("[data-patron]")[index]?.shadowRoot;
    return [...(root?.querySelectorAll("li a") ?? [])].map((link) => {
      return {
        href: link.getAttribute("href") ?? "",
        title: link.querySelector("b")?.textContent ?? "",
        price: (link.querySelector("ins") ?? link.querySelector("em"))?.firstChild?.textContent ?? "",
        listPrice: link.querySelector("s")?.textContent ?? null,
        reason: link.querySelector("p")?.textContent || null,
      };
    });
  }, mountIndex);
  const names = await accessibleNames(page, `document.querySelectorAll("[data-patron]")[${mountIndex}]?.shadowRoot`);
  return cards.map((card, index) => ({ ...card, label: names[index] ?? "" }));
}

/**
 * The accessible names Chromium gives the elements `selector` finds under `root` (a page expression), in
 * order: by default the card links.
 */
export async function accessibleNames(page: Page, root: string, selector = "li a"): Promise<string[]> {
  const session = await page.context().newCDPSession(page);
  try {
    const { result } = await session.send("Runtime.evaluate", {
      expression: `[...(${root}?.querySelectorAll(${JSON.stringify(selector)}) ?? [])]`,
    });
    const { result: links } = await session.send("Runtime.getProperties", {
      objectId: result.objectId!,
      ownProperties: true,
    });
    const names: string[] = [];
    for (const link of links.filter((property) => /^\d+$/.test(property.name))) {
      const { nodes } = await session.send("Accessibility.getPartialAXTree", {
        objectId: link.value!.objectId!,
        fetchRelatives: false,
      });
      names.push(String(nodes[0]?.name?.value ?? ""));
    }
    return names;
  } finally {
    await session.detach();
  }
}

/** Waits until the mount point shows cards: drawn, and shown once the shelf's stylesheet has loaded. */
export function waitForCards(page: Page, mountIndex = 0, timeout = 15_000) {
  return page.waitForFunction(
    (index) =>
      (document.querySelectorAll("[data-patron]")[index]?.shadowRoot?.querySelectorAll("div:not([hidden]) li a")
        .length ?? 0) > 0,
    mountIndex,
    { timeout },
  );
}

/**
 * Runs SQL against the dev worker's local D1 through wrangler, as an operator would: the main database
 * (DB) or the events database (EVENTS_DB: widget events and conversions). The running worker holds
 * the same SQLite file, so a read that meets one of its writes is "database is locked": it is tried
 * again, as an operator would.
 */
export async function queryLocalD1<T>(
  persistDir: string,
  sql: string,
  database: "DB" | "EVENTS_DB" = "DB",
): Promise<T[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { stdout } = await run(
        path.join(root, "node_modules/.bin/wrangler"),
        ["d1", "execute", database, "--local", "--persist-to", persistDir, "--command", sql, "--json"],
        { cwd: root, env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" } },
      );
      const parsed = JSON.parse(stdout) as { results: T[] }[];
      return parsed[0]?.results ?? [];
    } catch (error) {
      const locked = /SQLITE_BUSY|database is locked/.test(String((error as Error).message));
      if (!locked || attempt >= 10) throw error;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
}
