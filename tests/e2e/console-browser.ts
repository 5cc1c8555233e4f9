// What the console's browser test files share: the built bundle checked for, Chromium with one page
// whose script errors are collected (a CSP violation is one), signing in with the admin key, a picture
// of the page when a test fails, and useConsole, which sets all of it up around a dev worker per file.
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import type {
  Browser,
  BrowserContext,
  BrowserContextOptions,
  ConsoleMessage,
  Locator,
  Page,
  Route,
} from "playwright-core";
import { afterAll, beforeAll, beforeEach, onTestFailed } from "vitest";
import { postSeedData } from "../../cli/seed-demo.ts";
import { type DevWorker, type StartOptions, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
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

/** The name the console's tests sign in under: the rule history names their changes by it. */
export const consoleUserName = "Maria Lopez";

/** Opens `url` (a console page) and signs in with the admin key, under `consoleUserName`. */
export async function signIn(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel("Admin key").fill(testSecrets.PATRON_ADMIN_KEY);
  await page.getByLabel("Your name (optional)").fill(consoleUserName);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Console" }).waitFor();
}

/**
 * The figures under a chart (`chart`: its SVG, role img), as a screen reader reaches them: its "Figures
 * as a table" opened as a click on it opens it, then the table named as the chart is, each body row as
 * its cells' texts (the row's heading first).
 */
export async function chartFigures(chart: Locator): Promise<string[][]> {
  const figure = chart.locator("xpath=ancestor::figure[1]");
  const details = figure.locator("details.figures");
  if (!(await details.evaluate((element) => (element as HTMLDetailsElement).open)))
    await details.locator("summary").click();
  const table = figure.getByRole("table", { name: (await chart.getAttribute("aria-label")) ?? "", exact: true });
  return table
    .locator("tbody tr")
    .evaluateAll((rows) =>
      rows.map((row) => [...(row as HTMLTableRowElement).cells].map((cell) => cell.textContent ?? "")),
    );
}

/** What a screen reader reads with the focused field: the texts its `aria-describedby` names, in order. */
export function focusedDescription(page: Page): Promise<string> {
  return page.evaluate(() =>
    (document.activeElement?.getAttribute("aria-describedby") ?? "")
      .split(" ")
      .map((id) => document.getElementById(id)?.textContent)
      .join(" "),
  );
}

/** A failing test leaves a picture of the page behind, next to the screenshots: `<prefix>-failed-<test>.png`. */
/** An answer held back, as on a slow connection: `release` lets it through, `end` does too and stops holding. */
export interface HeldBack {
  release(): void;
  end(): Promise<void>;
}

/** Holds back the page's requests whose URL `matches`, until `release` (or `end`, for a `finally`). */
export async function holdBack(page: Page, matches: (url: URL) => boolean): Promise<HeldBack> {
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const handler = async (route: Route) => {
    await held;
    await route.continue();
  };
  await page.route(matches, handler);
  return {
    release,
    async end() {
      release();
      await page.unroute(matches, handler);
    },
  };
}

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

export interface ConsoleSetup {
  /** Names the picture of a failed test: `<prefix>-failed-<test>.png`. */
  prefix: string;
  /** The browser context's options: the viewport, downloads, a time zone. */
  browser: BrowserContextOptions;
  /** The dev worker's options (its settings, `vars`). */
  worker?: StartOptions;
  /** What the worker holds before the browser opens (demoCustomers(n), or anything else). */
  seed?: (worker: DevWorker) => Promise<unknown>;
  /** The console page to sign in on ("/console"); without it the file signs in itself. */
  startPath?: string;
  /** The setup hook's timeout (vitest's hookTimeout without it). */
  timeoutMs?: number;
}

/** What useConsole started, for the file's tests and later hooks (reading it earlier throws). */
export interface ConsoleHandle {
  readonly worker: DevWorker;
  readonly page: Page;
  readonly context: BrowserContext;
  /** Uncaught exceptions and console errors, as openConsoleBrowser collects them. */
  readonly errors: string[];
}

/** Seeds the demo retailer with `customers` customers: a `seed` for useConsole. */
export const demoCustomers = (customers: number) => (worker: DevWorker) =>
  postSeedData({ url: worker.url, apiKey: testSecrets.PATRON_API_KEY, customers });

/**
 * Registers a file's console setup: before its tests, the bundle checked for, a dev worker started and
 * seeded, Chromium opened and (with `startPath`) signed in; a picture of each failed test; after them,
 * Chromium closed and the worker stopped. The worker can be read as soon as it runs (in `seed`).
 */
export function useConsole(setup: ConsoleSetup): ConsoleHandle {
  let worker: DevWorker | undefined;
  let chromium: ConsoleBrowser | undefined;
  beforeAll(async () => {
    assertConsoleBuilt();
    worker = await startDevWorker(setup.worker);
    await setup.seed?.(worker);
    chromium = await openConsoleBrowser(setup.browser);
    if (setup.startPath) await signIn(chromium.page, `${worker.url}${setup.startPath}`);
  }, setup.timeoutMs);
  screenshotFailures(setup.prefix, () => chromium?.page);
  afterAll(async () => {
    await chromium?.close();
    await worker?.stop();
  });
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not started yet: read it in a test or a later hook.`);
    return value;
  };
  return {
    get worker() {
      return started(worker, "The dev worker");
    },
    get page() {
      return started(chromium, "Chromium").page;
    },
    get context() {
      return started(chromium, "Chromium").context;
    },
    get errors() {
      return started(chromium, "Chromium").errors;
    },
  };
}
