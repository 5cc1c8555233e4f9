// The console in real Chromium against `wrangler dev` with the seeded demo retailer: a wrong key is
// refused and the right one signs in; the Models page's empty state runs the nightly job and shows its
// progress and then the fits; every page is visited through the navigation (a screenshot of each goes to
// tests/artifacts/); a demo customer is looked up and their web and store orders share one timeline; a
// deep link survives a reload; a rule is created (the API's field messages shown first) and disabled;
// signing out kills the session server-side. The strict CSP is in force throughout: any violation fails.
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
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

interface SegmentRow {
  stage: string;
  customers: number;
  clv12: number | null;
}

async function screenshot(name: string) {
  await page.screenshot({ path: path.join(artifactsDir, `console-${name}.png`), fullPage: true });
}

async function openFromNav(name: string) {
  await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true }).click();
  await expect.poll(() => page.getByRole("link", { name, exact: true }).getAttribute("aria-current")).toBe("page");
}

/** Looks a customer up by storefront account on the Customers page and waits for their page. */
async function openCustomerByAccount(account: string) {
  await openFromNav("Customers");
  await page.getByLabel("Identifier").selectOption("account");
  await page.getByLabel("Value").fill(account);
  await page.getByRole("button", { name: "Look up" }).click();
  await page.waitForURL(/\/console\/customers\/c_/);
}

beforeAll(async () => {
  if (!existsSync(path.join(root, "dist/public/console/assets/console.js")))
    throw new Error("dist/public/console is missing: run `npm run build` first (npm test does).");
  mkdirSync(artifactsDir, { recursive: true });
  worker = await startDevWorker();
  await postSeedData({ url: worker.url, apiKey: testSecrets.PATRON_API_KEY, customers: 60 });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  // Generous waits: the machine running the suite may be busy with the other test projects.
  page.setDefaultTimeout(60_000);
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message: ConsoleMessage) => {
    // Chromium logs each non-2xx response itself ("Failed to load resource"): the 401s and 400s are expected.
    if (message.type() === "error" && !/Failed to load resource/.test(message.text()))
      errors.push(`console: ${message.text()}`);
  });
});

// A failing step leaves a picture of the page behind, next to the screenshots.
beforeEach((context) => {
  onTestFailed(async () => {
    await page
      ?.screenshot({
        path: path.join(artifactsDir, `console-failed-${context.task.name.slice(0, 40).replace(/\W+/g, "-")}.png`),
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

describe("console", () => {
  it("ships its bundle apart from the storefront: neither the widget nor the demo shop loads it", () => {
    const widget = readFileSync(path.join(root, "dist/public/widget/v1.js"), "utf8");
    expect(widget).not.toContain("/console");
    const demo = path.join(root, "dist/public/demo");
    const demoFiles = existsSync(demo) ? readdirSync(demo) : [];
    for (const file of demoFiles.filter((name) => /\.(html|js)$/.test(name)))
      expect(readFileSync(path.join(demo, file), "utf8"), file).not.toContain("/console");
  });

  it("refuses a wrong admin key plainly, then signs in with the right one", async () => {
    await page.goto(`${worker.url}/console`);
    const key = page.getByLabel("Admin key");
    await key.fill("not-the-admin-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toBe("That admin key is not right.");
    await screenshot("sign-in-refused");
    expect(await page.getByRole("navigation", { name: "Console" }).count()).toBe(0);
    await key.fill(testSecrets.PATRON_ADMIN_KEY);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("navigation", { name: "Console" }).waitFor();
    for (const name of ["Overview", "Customers", "Rules", "Experiments", "Models"])
      expect(await page.getByRole("link", { name, exact: true }).count(), name).toBe(1);
    const cookies = await context.cookies();
    const session = cookies.find((cookie) => cookie.name === "patron_session");
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe("Strict");
    // HttpOnly: the page's own script cannot read it.
    expect(await page.evaluate(() => document.cookie)).not.toContain("patron_session");
  }, 120_000);

  it("says the overview needs a model fit, and the Models page runs the nightly job with progress", async () => {
    await expect.poll(() => page.getByRole("heading", { name: "No customer has been scored yet" }).count()).toBe(1);
    await openFromNav("Models");
    await page.getByRole("heading", { name: "No model fit yet" }).waitFor();
    await screenshot("models-empty");
    await page.getByRole("button", { name: "Run the nightly job" }).click();
    // Progress shows while the run is being started and while it runs.
    expect(await page.getByRole("progressbar", { name: "Nightly job progress" }).count()).toBe(1);
    // Once the run is done the page shows the fits it made.
    await page.getByText("BG/NBD", { exact: false }).first().waitFor({ timeout: 150_000 });
    expect(await page.getByRole("heading", { name: "No model fit yet" }).count()).toBe(0);
    await screenshot("models");
  }, 180_000);

  it("shows customers by stage and tier, CLV by stage and the 12-month CLV of fading and lapsed customers", async () => {
    await openFromNav("Overview");
    const heading = page.getByRole("heading", { name: "12-month CLV of fading and lapsed customers" });
    await heading.waitFor();
    // The sum of the API's 12-month CLV over the fading and lapsed customers, said to be that and told
    // apart from the Customers list's CLV at stake (a year of orders × the chance they have stopped).
    const response = await fetch(`${worker.url}/v1/admin/segments?limit=1`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    const { summary } = ((await response.json()) as { data: { summary: SegmentRow[] } }).data;
    const atRisk = ["fading", "lapsed"].map((stage) => summary.filter((row) => row.stage === stage));
    const clv12 = atRisk.reduce((sum, rows) => sum + rows.reduce((total, row) => total + (row.clv12 ?? 0), 0), 0);
    const customers = atRisk.flat().reduce((sum, row) => sum + row.customers, 0);
    const tile = page.locator(".tile").filter({ has: heading });
    // In the shop's currency (RETAILER_CURRENCY, USD by default), named after the figure.
    expect(await tile.locator(".figure").textContent()).toBe(
      `${clv12.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })} USD`,
    );
    const caption = (await tile.locator("p.muted").textContent()) ?? "";
    expect(caption).toContain(`What these ${customers} customer${customers === 1 ? "" : "s"} are still expected`);
    expect(caption).toContain("Not their CLV at stake (Customers): a year of their usual orders × that chance");
    expect(await page.getByRole("img", { name: "12-month CLV by lifecycle stage" }).count()).toBe(1);
    const stages = await page
      .getByRole("table")
      .filter({ hasText: "All tiers" })
      .locator("tbody th[scope=row]")
      .allTextContents();
    expect(stages).toEqual(["new", "active", "fading", "lapsed"]);
    await page.getByRole("heading", { name: /Movement in the last/ }).waitFor();
    await screenshot("overview");
  }, 120_000);

  it("looks up a demo customer and shows web and store orders on one timeline, surviving a reload", async () => {
    await openCustomerByAccount("demo-store-loyal");
    const timeline = page.getByRole("list", { name: "Order timeline, most recent first" });
    await timeline.waitFor();
    const channels = new Set(await timeline.locator(".badge.channel").allTextContents());
    expect(channels).toEqual(new Set(["Web", "Store"]));
    expect(await page.getByRole("cell", { name: "verified" }).count()).toBeGreaterThan(0);
    expect(await page.getByText("CLV, 12 months").count()).toBe(1);
    // The lookup lands the keyboard on the customer's heading (who they are, then their id), not on the document.
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe("H1");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toMatch(
      /^s\*+@inbox\.net · loyalty \*+0002 Customer c_/,
    );
    // Orders per channel beside the main channel, counted as the API counts them.
    const customerId = decodeURIComponent(page.url().split("/").pop() ?? "");
    const { channels: ordersByChannel, spend } = (
      (await (
        await fetch(`${worker.url}/v1/customers/${encodeURIComponent(customerId)}`, {
          headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
        })
      ).json()) as { data: { summary: { channels: Record<string, number>; spend: number } } }
    ).data.summary;
    // Money in the shop's currency, named after the figure.
    const lifetimeSpend = page.locator(".tile").filter({ has: page.getByText("Lifetime spend", { exact: true }) });
    expect(await lifetimeSpend.locator("dd.figure").textContent()).toBe(
      `${spend.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })} USD`,
    );
    const channelNotes = await page
      .locator(".tile")
      .filter({ has: page.getByText("Main channel", { exact: true }) })
      .locator("dd.muted")
      .textContent();
    for (const [channel, orders] of Object.entries(ordersByChannel))
      if (orders > 0) expect(channelNotes).toContain(`${channel} ${orders.toLocaleString("en-US")}`);
    await screenshot("customer");
    // A deep link: reloading keeps the page (and the session).
    const url = page.url();
    await page.reload();
    await timeline.waitFor();
    expect(page.url()).toBe(url);
    // A lookup that finds nobody says so in words, and what to try next.
    await openFromNav("Customers");
    await page.getByLabel("Value").fill("nobody.known@inbox.net");
    await page.getByRole("button", { name: "Look up" }).click();
    await expect
      .poll(() => page.getByRole("alert").locator("p").first().textContent())
      .toBe(
        "No customer holds that email address. Check it was typed in full, or look the customer up by another identifier.",
      );
    await screenshot("customers");
    // The customer id shown on their page and in the list opens them, as the field's hint says.
    expect(await page.getByLabel("Value").getAttribute("aria-describedby")).toBe("lookup-value-hint");
    expect(await page.locator("#lookup-value-hint").textContent()).toContain("A customer id (c_…");
    await page.getByLabel("Identifier").selectOption({ label: "Customer id (c_…)" });
    await page.getByLabel("Value").fill(` ${customerId} `);
    await page.getByRole("button", { name: "Look up" }).click();
    await page.waitForURL(`**/console/customers/${customerId}`);
    await timeline.waitFor();
  }, 120_000);

  it("says a one-order customer's discount share as bought, and labels the estimate the sensitivity is judged by", async () => {
    await openCustomerByAccount("demo-new");
    const customerId = decodeURIComponent(page.url().split("/").pop() ?? "");
    const response = await fetch(`${worker.url}/v1/customers/${encodeURIComponent(customerId)}`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    const customer = (
      (await response.json()) as {
        data: {
          summary: { orders: number; units: number; discountedUnits: number };
          profile: {
            discountedShare: number;
            populationDiscountedShare: number;
            stageReason: string;
            oneTimeReturnDays: { usual: number; late: number; sinceFirstPurchase: number } | null;
            cadence: { expectedIntervalDays: number | null };
          } | null;
        };
      }
    ).data;
    const { orders, units, discountedUnits } = customer.summary;
    expect(orders).toBe(1);
    expect(units).toBeGreaterThan(0);
    expect(customer.profile).not.toBeNull();
    const percent = (share: number) => `${(share * 100).toFixed(0)}%`;
    const notes = (label: string) =>
      page
        .locator(".tile")
        .filter({ has: page.getByText(label, { exact: true }) })
        .locator("dd.muted");
    await notes("Discount sensitivity").first().waitFor();
    // What they bought, counted; then the estimate (shrunk toward everyone's share) said to be one.
    expect(await notes("Discount sensitivity").allTextContents()).toEqual([
      `${discountedUnits} of ${units} unit${units === 1 ? "" : "s"} on discount (${percent(discountedUnits / units)})`,
      `sensitivity judged by an estimated ${percent(customer.profile?.discountedShare ?? 0)}: their share pulled toward all customers' ${percent(customer.profile?.populationDiscountedShare ?? 0)}, less the more they buy`,
    ]);
    expect(await notes("Lifetime spend").textContent()).toMatch(/^1 order since \d/);
    // A one-time buyer's stage is judged by how long returning customers took: the page says so, in days.
    const window = customer.profile?.oneTimeReturnDays;
    expect(window).toBeTruthy();
    const days = (n: number) => `${n.toLocaleString("en-US")} day${n === 1 ? "" : "s"}`;
    expect(await notes("Stage").allTextContents()).toEqual([
      customer.profile?.stageReason.replaceAll("_", " "),
      `bought on one day, ${days(window?.sinceFirstPurchase ?? 0)} ago; half of the customers who came back did within ${days(window?.usual ?? 0)}, 90% within ${days(window?.late ?? 0)}`,
    ]);
    // Nor a rhythm of their own: the interval the models give them is said to be everyone's.
    const cadence = page.locator(".tile").filter({ has: page.getByText("Cadence", { exact: true }) });
    expect(await cadence.locator("dd.figure").textContent()).toBe("no rhythm yet (one order)");
    expect(await notes("Cadence").allTextContents()).toEqual([
      `${days(window?.sinceFirstPurchase ?? 0)} since their one order`,
      `all customers' usual interval: every ${customer.profile?.cadence.expectedIntervalDays} days`,
    ]);
    const next = page.locator(".tile").filter({ has: page.getByText("Next order expected", { exact: true }) });
    expect(await next.locator("dd.figure").textContent()).toBe("no date from one order");
    await screenshot("customer-one-order");
  }, 120_000);

  it("creates a rule, showing the API's messages on the fields first, then disables it", async () => {
    await openFromNav("Rules");
    await page.getByText("No rules yet").waitFor();
    await page.getByRole("link", { name: "New rule" }).click();
    await page.getByLabel("Target id").fill("coffee");
    await page.getByLabel("Strength").fill("0");
    await page.getByRole("button", { name: "Create rule" }).click();
    await page.getByText("name must not be empty").waitFor();
    await page.getByText("strength must be greater than 0").waitFor();
    expect(await page.getByLabel("Name").getAttribute("aria-invalid")).toBe("true");
    await screenshot("rule-invalid");
    await page.getByLabel("Name").fill("Boost coffee for fading customers");
    await page.getByLabel("Strength").fill("0.8");
    await page.getByRole("checkbox", { name: "fading" }).check();
    await page.getByRole("button", { name: "Create rule" }).click();
    await page.waitForURL(/\/console\/rules\/r_/);
    await page.getByRole("heading", { name: "History" }).waitFor();
    expect(await page.getByRole("cell", { name: "create" }).count()).toBe(1);
    await openFromNav("Rules");
    const row = page.getByRole("row", { name: /Boost coffee for fading customers/ });
    await row.getByText("boost category coffee: score × 1.8, for stage fading").waitFor();
    await row.getByRole("button", { name: "Disable Boost coffee for fading customers" }).click();
    await row.getByText("disabled").waitFor();
    await screenshot("rules");
  }, 120_000);

  it("shows the experiment page", async () => {
    await openFromNav("Experiments");
    await page.getByRole("heading", { name: "Experiments" }).waitFor();
    await page.getByLabel("Period").waitFor();
    await screenshot("experiments");
  }, 120_000);

  it("exports a customer's data and erases the customer after a confirmation", async () => {
    await openCustomerByAccount("demo-new");
    const customerId = decodeURIComponent(page.url().split("/").pop() ?? "");
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Export data" }).click(),
    ]);
    const exported = JSON.parse(readFileSync((await download.path()) as string, "utf8")) as { customerId: string };
    expect(exported.customerId).toBe(customerId);
    const focused = () => page.evaluate(() => document.activeElement?.textContent?.trim());
    await page.getByRole("button", { name: "Erase customer" }).click();
    await page.getByRole("alertdialog").waitFor();
    // The pressed button is gone: focus moves into the confirmation, on its safe answer, not to <body>.
    await expect.poll(focused).toBe("Cancel");
    await screenshot("erase-confirm");
    // Cancelling erases nothing, and gives focus back to the button that opened the confirmation.
    await page.keyboard.press("Enter");
    expect(await page.getByRole("alertdialog").count()).toBe(0);
    await expect.poll(focused).toBe("Erase customer");
    await page.getByRole("button", { name: "Erase customer" }).click();
    await page.getByRole("button", { name: "Yes, erase this customer" }).click();
    await page.getByText(`Customer ${customerId} was erased.`).waitFor();
    await expect.poll(focused).toBe("Customers");
    // The notice is said once: gone after leaving the page and coming back.
    await openFromNav("Overview");
    await openFromNav("Customers");
    await page.getByRole("heading", { name: "Customers to act on" }).waitFor();
    expect(await page.getByText(`Customer ${customerId} was erased.`).count()).toBe(0);
    const gone = await fetch(`${worker.url}/v1/customers/${customerId}`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    expect(gone.status).toBe(404);
  }, 120_000);

  it("works at tablet width and from the keyboard", async () => {
    await page.setViewportSize({ width: 820, height: 1180 });
    await openFromNav("Overview");
    await page.reload();
    await page.getByRole("heading", { name: "12-month CLV of fading and lapsed customers" }).waitFor();
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Overview");
    // Nothing wider than the screen: no sideways scrolling at tablet width.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(820);
    await screenshot("overview-tablet");
    await page.emulateMedia({ colorScheme: "dark" });
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(background).toBe("rgb(20, 21, 24)");
    await screenshot("overview-tablet-dark");
    await page.emulateMedia({ colorScheme: "light" });
    await page.setViewportSize({ width: 1280, height: 900 });
  }, 120_000);

  it("signs out server-side: the old session cookie opens nothing", async () => {
    const session = (await context.cookies()).find((cookie) => cookie.name === "patron_session");
    expect(session).toBeDefined();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Admin key").waitFor();
    expect((await context.cookies()).some((cookie) => cookie.name === "patron_session")).toBe(false);
    const replay = await fetch(`${worker.url}/v1/admin/segments`, {
      headers: { Cookie: `patron_session=${session?.value}` },
    });
    expect(replay.status).toBe(401);
    await page.reload();
    await page.getByLabel("Admin key").waitFor();
    await screenshot("signed-out");
    expect(errors).toEqual([]);
  }, 120_000);
});
