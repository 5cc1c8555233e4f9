// What the console's browser test files share: the built bundle checked for, Chromium with one page
// whose script errors are collected (a CSP violation is one), signing in with the admin key, and a
// picture of the page when a test fails.
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { Browser, BrowserContext, BrowserContextOptions, ConsoleMessage, Page } from "playwright-core";
import { beforeEach, onTestFailed } from "vitest";
import { testSecrets } from "../fixtures/wrangler-dev.ts";
import { artifactsDir, launchChromium } from "../widget/harness.ts";

const root = path.resolve(import.meta.dirname, "../..");

export function assertConsoleBuilt(): void {
  if (!existsSync(path.join(root, "dist/public/console/assets/console.js")))
    throw new Error("dist/public/console is missing: run `npm run build` first (npm test does).");
  mkdirSync(artifactsDir, { recursive: true });
}

export interface ConsoleBrowser {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions and console errors, except Chromium's own log of each non-2xx response. */
  errors: string[];
  close(): Promise<void>;
}

export async function openConsoleBrowser(options: BrowserContextOptions): Promise<ConsoleBrowser> {
  const browser = await launchChromium();
  const context = await browser.newContext(options);
  const page = await context.newPage();
  // Generous waits: the machine running the suite may be busy with the other test projects.
  page.setDefaultTimeout(60_000);
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message: ConsoleMessage) => {
    if (message.type() === "error" && !/Failed to load resource/.test(message.text()))
      errors.push(`console: ${message.text()}`);
  });
  return {
    browser,
    context,
    page,
    errors,
    async close() {
      await context.close().catch(() => {});
      await browser.close();
    },
  };
}

/** Opens `url` (a console page) and signs in with the admin key. */
export async function signIn(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel("Admin key").fill(testSecrets.PATRON_ADMIN_KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Console" }).waitFor();
}

/** A failing test leaves a picture of the page behind, next to the screenshots: `<prefix>-failed-<test>.png`. */
export function screenshotFailures(prefix: string, page: () => Page | undefined): void {
  beforeEach((test) => {
    onTestFailed(async () => {
      const name = test.task.name.slice(0, 40).replace(/\W+/g, "-");
      await page()
        ?.screenshot({ path: path.join(artifactsDir, `${prefix}-failed-${name}.png`), fullPage: true })
        .catch(() => {});
    });
  });
}
