// The console's steering pages in real Chromium against `wrangler dev` with the seeded demo retailer and
// one nightly run: the Models page draws the last run's diagnostics (or explains why there are none);
// the Experiments page leads with the verdict the API gives; on the rule form, a draft is previewed for
// one customer (before and after shelves side by side, the items it moves marked) and simulated over a
// sample, matching what the API computes for the same draft, before anything is saved. Screenshots go to
// tests/artifacts/console-steer-*.png. The strict CSP is in force throughout: any violation fails.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import type { Browser, BrowserContext, ConsoleMessage, Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from "vitest";
import { postSeedData } from "../../cli/seed-demo.ts";
import { type DevWorker, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import { artifactsDir, launchChromium } from "../widget/harness.ts";

const root = path.resolve(import.meta.dirname, "../..");
let worker: DevWorker;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const errors: string[] = [];

async function screenshot(name: string) {
  await page.screenshot({ path: path.join(artifactsDir, `console-steer-${name}.png`), fullPage: true });
}

async function openFromNav(name: string) {
  await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true }).click();
  await expect.poll(() => page.getByRole("link", { name, exact: true }).getAttribute("aria-current")).toBe("page");
}

/** The admin API as the signed-in console calls it (the page's session cookie). */
async function adminApi<T>(
  method: "GET" | "POST",
  route: string,
  body?: unknown,
): Promise<{ status: number; data: T }> {
  const response = await page.request.fetch(`${worker.url}${route}`, {
    method,
    headers: { "X-Patron-Console": "1", ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    data: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = (await response.json()) as { data: T };
  return { status: response.status(), data: payload.data };
}

/**
 * Plants a holdout experiment in the dev worker's local D1, as the widget's events and attributed
 * orders would leave it: `shoppers` per arm, each shown one recommendation `daysAgo`, the first
 * `converted` clicking and ordering (25) from it.
 */
async function plantExperiment(arm: string, shoppers: number, converted: number, daysAgo: number) {
  const at = new Date(Date.now() - daysAgo * 86_400_000).toISOString();
  const rows: string[] = [];
  for (let s = 0; s < shoppers; s++) {
    const customer = `c_e2e_${arm}_${daysAgo}_${s}`;
    const rid = `rid_e2e_${arm}_${daysAgo}_${s}`;
    const event = (type: string, key: string) =>
      `INSERT INTO events (type, recommendation_id, arm, customer_id, product_id, category_id, at, dedupe_key) VALUES ('${type}', '${rid}', '${arm}', '${customer}', 'p1', 'coffee', '${at}', '${rid}-${key}');`;
    rows.push(event("impression", "i1"), event("impression", "i2"));
    if (s < converted)
      rows.push(
        event("click", "c"),
        `INSERT INTO orders (id, customer_id, channel, placed_at, currency, total, discount_total, units, discounted_units, recommendation_id, created_at) VALUES ('o_${rid}', '${customer}', 'web', '${at}', 'USD', 25, 0, 1, 0, '${rid}', '${at}');`,
      );
  }
  await promisify(execFile)(
    path.join(root, "node_modules/.bin/wrangler"),
    ["d1", "execute", "DB", "--local", "--persist-to", worker.persistDir, "--command", rows.join(" ")],
    { cwd: root, env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" } },
  );
}

beforeAll(async () => {
  if (!existsSync(path.join(root, "dist/public/console/assets/console.js")))
    throw new Error("dist/public/console is missing: run `npm run build` first (npm test does).");
  mkdirSync(artifactsDir, { recursive: true });
  worker = await startDevWorker();
  await postSeedData({ url: worker.url, apiKey: testSecrets.PATRON_API_KEY, customers: 60 });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1024, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(60_000);
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message: ConsoleMessage) => {
    if (message.type() === "error" && !/Failed to load resource/.test(message.text()))
      errors.push(`console: ${message.text()}`);
  });
  await page.goto(`${worker.url}/console`);
  await page.getByLabel("Admin key").fill(testSecrets.PATRON_ADMIN_KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Console" }).waitFor();
  // The overview answers from the seeded data before any model run: the worker is ready.
  await page.getByRole("heading", { name: "No customer has been scored yet" }).waitFor();
}, 240_000);

beforeEach((context) => {
  onTestFailed(async () => {
    await page
      ?.screenshot({
        path: path.join(
          artifactsDir,
          `console-steer-failed-${context.task.name.slice(0, 40).replace(/\W+/g, "-")}.png`,
        ),
        fullPage: true,
      })
      .catch(() => {});
  });
});

afterAll(async () => {
  await context?.close().catch(() => {});
  await browser?.close();
  await worker?.stop();
});

describe("console steering pages", () => {
  it("Models: explains missing diagnostics, then after a nightly run draws what the API computed", async () => {
    await openFromNav("Models");
    await page.getByRole("heading", { name: "No model fit yet" }).waitFor();
    await page.getByRole("button", { name: "Run the nightly job" }).click();
    await page.getByRole("heading", { name: /Diagnostics/ }).waitFor({ timeout: 150_000 });
    const diagnostics = await adminApi<{
      status: string;
      message?: string;
      tracking?: unknown[];
      byFrequency?: { purchases: string }[];
    }>("GET", "/v1/admin/models/diagnostics");
    expect(diagnostics.status).toBe(200);
    if (diagnostics.data.status === "ready") {
      const tracking = page.getByRole("img", { name: /^Repeat purchases per \d+-day period/ });
      await tracking.waitFor();
      // One point per period for each of the two lines, and the holdout period shaded.
      expect(await tracking.locator("circle").count()).toBe(2 * (diagnostics.data.tracking?.length ?? 0));
      expect(await tracking.locator("rect.chart-shade").count()).toBe(1);
      const byFrequency = diagnostics.data.byFrequency ?? [];
      const table = page.getByRole("table", { name: "By frequency in the calibration period" });
      expect(await table.locator("tbody tr").count()).toBe(byFrequency.length);
    } else {
      expect(diagnostics.data.status).toBe("unavailable");
      await page.getByText(diagnostics.data.message ?? "").waitFor();
    }
    await screenshot("models-diagnostics");
  }, 200_000);

  it("Experiments: the API's verdict is the headline, with intervals per arm and results over time", async () => {
    await plantExperiment("personalized", 40, 8, 2);
    await plantExperiment("holdout", 10, 1, 2);
    await plantExperiment("personalized", 30, 6, 1);
    await openFromNav("Experiments");
    const since = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10);
    const holdout = await adminApi<{ verdict: { text: string }; overTime: { periods: unknown[] } }>(
      "GET",
      `/v1/admin/holdout?since=${since}T00:00:00Z`,
    );
    expect(holdout.status).toBe(200);
    expect(holdout.data.verdict.text).not.toBe("");
    await page.getByText(holdout.data.verdict.text).waitFor();
    const table = page.getByRole("table", { name: /95% intervals/ });
    expect(await table.locator("tbody tr").count()).toBe(5);
    // The conversion row shows an interval for each arm and for the lift.
    expect(
      await table
        .getByRole("row", { name: /^Conversion/ })
        .getByText("95% CI")
        .count(),
    ).toBe(3);
    const overTime = page.getByRole("img", { name: "Conversion per day by arm" });
    await overTime.waitFor();
    expect(holdout.data.overTime.periods.length).toBeGreaterThan(0);
    await screenshot("experiments");
  }, 120_000);

  it("Rules: previews and simulates a draft before saving, as the API computes it", async () => {
    const customers = await adminApi<{ customers: { customerId: string }[] }>("GET", "/v1/admin/customers?limit=5");
    expect(customers.status).toBe(200);
    const customerId = customers.data.customers[0]?.customerId ?? "";
    expect(customerId).toMatch(/^c_/);
    // Learn the customer's top category, to draft a rule that must move their shelf.
    const probe = await adminApi<{ before: { categoryId: string }[] }>("POST", "/v1/admin/rules/preview", {
      rule: { name: "probe", action: "hide_discounts", targetType: "category", targetId: "*" },
      customerId,
    });
    expect(probe.status).toBe(200);
    const category = probe.data.before[0]?.categoryId ?? "";
    expect(category).not.toBe("");

    await openFromNav("Rules");
    await page.getByRole("link", { name: "New rule" }).click();
    await page.getByLabel("Name").fill(`Exclude ${category}`);
    await page.getByLabel("Action").selectOption("exclude");
    await page.getByLabel("Target id", { exact: true }).fill(category);
    await page.getByLabel("Customer id").fill(customerId);
    await page.getByRole("button", { name: "Preview" }).click();
    await page.getByRole("heading", { name: `Preview for ${customerId}` }).waitFor();
    await page.getByText("This rule changes this customer's shelf").waitFor();
    // The excluded category's items leave the shelf, and are marked so on the Before side.
    expect(await page.getByText("leaves the shelf").count()).toBeGreaterThan(0);

    const simulated = await adminApi<{ shoppers: number; affected: number }>("POST", "/v1/admin/rules/simulate", {
      rule: { name: `Exclude ${category}`, action: "exclude", targetType: "category", targetId: category },
      sample: 200,
    });
    expect(simulated.status).toBe(200);
    await page.getByRole("button", { name: "Simulate over 200 shoppers" }).click();
    await page.getByRole("heading", { name: `Simulation over ${simulated.data.shoppers} shoppers` }).waitFor();
    await page.getByText(`${simulated.data.affected} of ${simulated.data.shoppers} shoppers`).waitFor();
    await page.getByText(`Categories losing exposure:`).waitFor();
    await screenshot("rule-preview");
    // Nothing was saved.
    const rules = await adminApi<unknown[]>("GET", "/v1/admin/rules");
    expect(rules.data).toHaveLength(0);
  }, 120_000);

  it("kept the strict CSP: no script errors or violations on any page", () => {
    expect(errors).toEqual([]);
  });
});
