// The console in real Chromium against `wrangler dev` with the seeded demo retailer: opened signed out it
// asks no session check and logs no error; a wrong key is refused and the right one signs in; the Models
// page's empty state runs the nightly job and shows its progress and then the fits; every page is visited
// through the navigation (a screenshot of each goes to tests/artifacts/); a demo customer is looked up
// and their web and store orders share one timeline; a deep link survives a reload; a rule is created
// (the API's field messages shown first) and disabled; signing out kills the session server-side. The
// strict CSP is in force throughout: any violation fails.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { ConsoleMessage, Request } from "playwright-core";
import { describe, expect, it } from "vitest";
import { testSecrets } from "../fixtures/wrangler-dev.ts";
import { artifactsDir, queryLocalD1 } from "../widget/harness.ts";
import { chartFigures, demoCustomers, holdBack, useConsole } from "./console-browser.ts";

const root = path.resolve(import.meta.dirname, "../..");
// Not signed in here: the first tests open the console signed out and sign in.
const app = useConsole({
  prefix: "console",
  browser: { viewport: { width: 1280, height: 900 } },
  seed: demoCustomers(60),
});

interface SegmentRow {
  stage: string;
  customers: number;
  clv12: number | null;
}

/** WCAG's contrast ratio of two CSS colours, each as the browser computes it ("rgb(179, 92, 0)"). */
function contrast(one: string, other: string): number {
  const luminance = (colour: string) => {
    const [r = 0, g = 0, b = 0] = (colour.match(/[\d.]+/g) ?? []).slice(0, 3).map((part) => {
      const channel = Number(part) / 255;
      return channel <= 0.03928 ? channel / 12.92 : ((channel + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [lighter = 0, darker = 0] = [luminance(one), luminance(other)].sort((a, b) => b - a);
  return (lighter + 0.05) / (darker + 0.05);
}

async function screenshot(name: string) {
  await app.page.screenshot({ path: path.join(artifactsDir, `console-${name}.png`), fullPage: true });
}

async function openFromNav(name: string) {
  await app.page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true }).click();
  await expect.poll(() => app.page.getByRole("link", { name, exact: true }).getAttribute("aria-current")).toBe("page");
}

/** Looks a customer up by storefront account on the Customers page and waits for their page. */
async function openCustomerByAccount(account: string) {
  await openFromNav("Customers");
  await app.page.getByLabel("Identifier").selectOption("account");
  await app.page.getByLabel("Value").fill(account);
  await app.page.getByRole("button", { name: "Look up" }).click();
  await app.page.waitForURL(/\/console\/customers\/c_/);
}

describe("console", () => {
  it("ships its bundle apart from the storefront: neither the widget nor the demo shop loads it", () => {
    const widget = readFileSync(path.join(root, "dist/public/widget/v1.js"), "utf8");
    expect(widget).not.toContain("/console");
    const demo = path.join(root, "dist/public/demo");
    const demoFiles = existsSync(demo) ? readdirSync(demo) : [];
    for (const file of demoFiles.filter((name) => /\.(html|js)$/.test(name)))
      expect(readFileSync(path.join(demo, file), "utf8"), file).not.toContain("/console");
  });

  it("opens signed out with nothing in the browser's console: no session check to fail", async () => {
    const logged: string[] = [];
    const asked: string[] = [];
    const log = (message: ConsoleMessage) => message.type() === "error" && logged.push(message.text());
    const note = (request: Request) =>
      new URL(request.url()).pathname === "/v1/admin/session" && asked.push(request.method());
    app.page.on("console", log);
    app.page.on("request", note);
    try {
      await app.page.goto(`${app.worker.url}/console`);
      await app.page.getByLabel("Admin key").waitFor();
      expect(logged).toEqual([]);
      expect(asked).toEqual([]);
    } finally {
      app.page.off("console", log);
      app.page.off("request", note);
    }
  });

  it("refuses a wrong admin key plainly, then signs in with the right one", async () => {
    await app.page.goto(`${app.worker.url}/console`);
    const key = app.page.getByLabel("Admin key");
    await key.fill("not-the-admin-key");
    await app.page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => app.page.getByRole("alert").textContent()).toBe("That admin key is not right.");
    await screenshot("sign-in-refused");
    expect(await app.page.getByRole("navigation", { name: "Console" }).count()).toBe(0);
    await key.fill(testSecrets.PATRON_ADMIN_KEY);
    await key.press("Enter");
    await app.page.getByRole("navigation", { name: "Console" }).waitFor();
    // The keyboard's focus goes to the page opened, not back to the top of the document.
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.tagName)).toBe("H1");
    for (const name of ["Overview", "Customers", "Rules", "Experiments", "Models"])
      expect(await app.page.getByRole("link", { name, exact: true }).count(), name).toBe(1);
    const cookies = await app.context.cookies();
    const session = cookies.find((cookie) => cookie.name === "patron_session");
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe("Strict");
    // HttpOnly: the page's own script cannot read it.
    expect(await app.page.evaluate(() => document.cookie)).not.toContain("patron_session");
  }, 120_000);

  it("says the overview needs a model fit, and the Models page runs the nightly job with progress", async () => {
    await expect.poll(() => app.page.getByRole("heading", { name: "No customer has been scored yet" }).count()).toBe(1);
    await openFromNav("Models");
    await app.page.getByRole("heading", { name: "No model fit yet" }).waitFor();
    await screenshot("models-empty");
    await app.page.getByRole("button", { name: "Run the nightly job" }).click();
    // Progress shows while the run is being started and while it runs.
    expect(await app.page.getByRole("progressbar", { name: "Nightly job progress" }).count()).toBe(1);
    // Once the run is done the page shows the fits it made.
    await app.page.getByText("BG/NBD", { exact: false }).first().waitFor({ timeout: 150_000 });
    expect(await app.page.getByRole("heading", { name: "No model fit yet" }).count()).toBe(0);
    // The value tiers' floor, as the fit set it: no tier above low under it.
    const fit = await fetch(`${app.worker.url}/v1/admin/models`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    const { valueTierFloor } = ((await fit.json()) as { data: { customer: { valueTierFloor: number } } }).data.customer;
    expect(valueTierFloor).toBeGreaterThan(0);
    const floorRow = app.page.getByRole("row", { name: /floor \(none above low under it\)/ });
    expect(await floorRow.getByRole("cell").textContent()).toContain(valueTierFloor.toFixed(2));
    await screenshot("models");
  }, 180_000);

  it("shows customers by stage and tier, CLV by stage and the 12-month CLV of fading and lapsed customers", async () => {
    await openFromNav("Overview");
    const heading = app.page.getByRole("heading", { name: "12-month CLV of fading and lapsed customers" });
    await heading.waitFor();
    // The sum of the API's 12-month CLV over the fading and lapsed customers, said to be that and told
    // apart from the Customers list's CLV at stake (a year of orders × the chance they have stopped).
    const response = await fetch(`${app.worker.url}/v1/admin/segments?limit=1`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    const { summary } = ((await response.json()) as { data: { summary: SegmentRow[] } }).data;
    const atRisk = ["fading", "lapsed"].map((stage) => summary.filter((row) => row.stage === stage));
    const clv12 = atRisk.reduce((sum, rows) => sum + rows.reduce((total, row) => total + (row.clv12 ?? 0), 0), 0);
    const customers = atRisk.flat().reduce((sum, row) => sum + row.customers, 0);
    const tile = app.page.locator(".tile").filter({ has: heading });
    // In the shop's currency (RETAILER_CURRENCY, USD by default), named after the figure.
    expect(await tile.locator(".figure").textContent()).toBe(
      `${clv12.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })} USD`,
    );
    const caption = (await tile.locator("p.muted").textContent()) ?? "";
    expect(caption).toContain(`What these ${customers} customer${customers === 1 ? "" : "s"} are still expected`);
    expect(caption).toContain("Not their CLV at stake (Customers): a year of their usual orders × that chance");
    // Amounts name the currency where they are drawn or tabled without it on each figure.
    const byStage = app.page.getByRole("img", { name: "12-month CLV by lifecycle stage (USD)" });
    expect(await byStage.count()).toBe(1);
    // The bar chart's figures as a table under it, a row per stage, as the API's segments add up.
    const money = (value: number) =>
      value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    expect(await chartFigures(byStage)).toEqual(
      ["new", "active", "fading", "lapsed"].map((stage) => {
        const rows = summary.filter((row) => row.stage === stage);
        const stageCustomers = rows.reduce((sum, row) => sum + row.customers, 0);
        return [
          stage,
          money(rows.reduce((sum, row) => sum + (row.clv12 ?? 0), 0)),
          `${stageCustomers} customer${stageCustomers === 1 ? "" : "s"}`,
        ];
      }),
    );
    expect(
      await app.page
        .getByRole("table", { name: "12-month CLV by lifecycle stage (USD)" })
        .locator("thead th")
        .allTextContents(),
    ).toEqual(["Stage", "12-month CLV (USD)", "Customers"]);
    expect(await app.page.getByRole("columnheader", { name: "12-month CLV (USD)" }).count()).toBeGreaterThan(0);
    const stages = await app.page
      .getByRole("table")
      .filter({ hasText: "All tiers" })
      .locator("tbody th[scope=row]")
      .allTextContents();
    expect(stages).toEqual(["new", "active", "fading", "lapsed"]);
    // Its cells' amounts in the shop's currency, said once over the table.
    expect(await app.page.getByText("Each cell: customers · their 12-month CLV (USD).", { exact: true }).count()).toBe(
      1,
    );
    await app.page.getByRole("heading", { name: /Movement in the last/ }).waitFor();
    // Every change in the 30 days by kind and the newest ten, as the summary counts them (not a first page of the feed).
    const since = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10);
    const movement = (
      (await (
        await fetch(`${app.worker.url}/v1/admin/transitions/summary?since=${since}T00:00:00Z&recent=10`, {
          headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
        })
      ).json()) as {
        data: {
          changes: number;
          kinds: { from: string | null; to: string; changes: number }[];
          recent: { customerId: string }[];
        };
      }
    ).data;
    expect(movement.changes).toBeGreaterThan(0);
    const byKind = app.page.getByRole("table").filter({ hasText: "Stage changes by kind" });
    expect(await byKind.locator("caption").textContent()).toContain(
      `${movement.changes.toLocaleString("en-US")} change`,
    );
    expect(await byKind.locator("tbody tr").allTextContents()).toEqual(
      movement.kinds.map(
        (kind) => `${kind.from ?? "(first score)"} → ${kind.to}${kind.changes.toLocaleString("en-US")}`,
      ),
    );
    const newest = app.page.getByRole("table").filter({ hasText: "Most recent" });
    expect(await newest.locator("tbody tr td:first-child").allTextContents()).toEqual(
      movement.recent.map((row) => row.customerId),
    );
    await screenshot("overview");
  }, 120_000);

  it("looks up a demo customer and shows web and store orders on one timeline, surviving a reload", async () => {
    await openCustomerByAccount("demo-store-loyal");
    const timeline = app.page.getByRole("list", { name: "Order timeline, most recent first" });
    await timeline.waitFor();
    const channels = new Set(await timeline.locator(".badge.channel").allTextContents());
    expect(channels).toEqual(new Set(["Web", "Store"]));
    expect(await app.page.getByRole("cell", { name: "verified" }).count()).toBeGreaterThan(0);
    expect(await app.page.getByText("CLV, 12 months").count()).toBe(1);
    // The lookup lands the keyboard on the customer's heading (who they are, then their id), not on the document.
    expect(await app.page.evaluate(() => document.activeElement?.tagName)).toBe("H1");
    expect(await app.page.evaluate(() => document.activeElement?.textContent)).toMatch(
      /^s\*+@inbox\.net · loyalty \*+0002 Customer c_/,
    );
    // Orders per channel beside the main channel, counted as the API counts them.
    const customerId = decodeURIComponent(app.page.url().split("/").pop() ?? "");
    const {
      channels: ordersByChannel,
      spend,
      purchaseDays,
    } = (
      (await (
        await fetch(`${app.worker.url}/v1/customers/${encodeURIComponent(customerId)}`, {
          headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
        })
      ).json()) as { data: { summary: { channels: Record<string, number>; spend: number; purchaseDays: number } } }
    ).data.summary;
    // A CLV from many days of orders is their own: nothing is said of all customers' averages beside it.
    expect(purchaseDays).toBeGreaterThan(2);
    const clvNotes = app.page
      .locator(".tile")
      .filter({ has: app.page.getByText("CLV, 12 months", { exact: true }) })
      .locator("dd.muted");
    expect(await clvNotes.allTextContents()).toEqual([expect.stringMatching(/^24 months: /)]);
    // Money in the shop's currency, named after the figure.
    const lifetimeSpend = app.page
      .locator(".tile")
      .filter({ has: app.page.getByText("Lifetime spend", { exact: true }) });
    expect(await lifetimeSpend.locator("dd.figure").textContent()).toBe(
      `${spend.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })} USD`,
    );
    const channelNotes = await app.page
      .locator(".tile")
      .filter({ has: app.page.getByText("Main channel", { exact: true }) })
      .locator("dd.muted")
      .textContent();
    for (const [channel, orders] of Object.entries(ordersByChannel))
      if (orders > 0) expect(channelNotes).toContain(`${channel} ${orders.toLocaleString("en-US")}`);
    await screenshot("customer");
    // A deep link: reloading keeps the page (and the session).
    const url = app.page.url();
    await app.page.reload();
    await timeline.waitFor();
    expect(app.page.url()).toBe(url);
    // A lookup that finds nobody says so in words, and what to try next.
    await openFromNav("Customers");
    // The tab is named by the page.
    await expect.poll(() => app.page.title()).toBe("Customers · Patron console");
    await app.page.getByLabel("Value").fill("nobody.known@inbox.net");
    await app.page.getByRole("button", { name: "Look up" }).click();
    await expect
      .poll(() => app.page.getByRole("alert").locator("p").first().textContent())
      .toBe(
        "No customer holds that email address. Check it was typed in full, or look the customer up by another identifier.",
      );
    // The button pressed keeps the keyboard's focus through the lookup (a disabled one would drop it).
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.textContent)).toBe("Look up");
    await screenshot("customers");
    // The customer id shown on their page and in the list opens them under Customer id, as the field's hint says.
    expect(await app.page.getByLabel("Value").getAttribute("aria-describedby")).toBe("lookup-value-hint");
    expect(await app.page.locator("#lookup-value-hint").textContent()).toContain(
      "To open a customer by their id (c_…, as on a customer's page and in the list below), choose Customer id as the identifier.",
    );
    await app.page.getByLabel("Identifier").selectOption({ label: "Customer id (c_…)" });
    // An id nobody has is said not found, and asks nothing more (holders are listed for identifiers, not ids).
    const asked: string[] = [];
    const listen = (request: { url(): string }) => asked.push(request.url());
    app.page.on("request", listen);
    await app.page.getByLabel("Value").fill("c_nobody");
    await app.page.getByRole("button", { name: "Look up" }).click();
    // The API's message, and what to do about an id cut short.
    await expect
      .poll(() => app.page.getByRole("alert").locator("p").first().textContent())
      .toBe(
        "No customer with id c_nobody. A customer id is c_ and 20 characters (this one has 6), as on the customer's page and in the list: check it was copied in full.",
      );
    await app.page.getByRole("button", { name: "Look up" }).waitFor();
    app.page.off("request", listen);
    expect(asked.filter((url) => url.includes("/v1/customers/"))).toEqual([`${app.worker.url}/v1/customers/c_nobody`]);
    // A loyalty number typed as a customer id, and an id of the right shape that opens nobody (erased, say).
    const badIds: [string, string][] = [
      [
        "LY-DEMO-0003",
        "“LY-DEMO-0003” is not a customer id, which starts with c_: to find someone by an email, phone, loyalty number or account id, choose that identifier.",
      ],
      [
        "c_00000000000000000000",
        "Check it against the customer's page or the list, or look them up by an identifier they use: a customer erased since has no page.",
      ],
    ];
    for (const [typed, hint] of badIds) {
      await app.page.getByLabel("Value").fill(typed);
      await app.page.getByRole("button", { name: "Look up" }).click();
      await expect
        .poll(() => app.page.getByRole("alert").locator("p").first().textContent())
        .toBe(`No customer with id ${typed}. ${hint}`);
    }
    await app.page.getByLabel("Value").fill(` ${customerId} `);
    await app.page.getByRole("button", { name: "Look up" }).click();
    await app.page.waitForURL(`**/console/customers/${customerId}`);
    await timeline.waitFor();
  }, 120_000);

  it("says a one-order customer's discount share as bought, and labels the estimate the sensitivity is judged by", async () => {
    await openCustomerByAccount("demo-new");
    const customerId = decodeURIComponent(app.page.url().split("/").pop() ?? "");
    const response = await fetch(`${app.worker.url}/v1/customers/${encodeURIComponent(customerId)}`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    const customer = (
      (await response.json()) as {
        data: {
          summary: { orders: number; purchaseDays: number; units: number; discountedUnits: number };
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
      app.page
        .locator(".tile")
        .filter({ has: app.page.getByText(label, { exact: true }) })
        .locator("dd.muted");
    await notes("Discount sensitivity").first().waitFor();
    // What they bought, counted; then the estimate (shrunk toward everyone's share) said to be one.
    expect(await notes("Discount sensitivity").allTextContents()).toEqual([
      `${discountedUnits} of ${units} unit${units === 1 ? "" : "s"} on discount (${percent(discountedUnits / units)})`,
      `sensitivity judged by an estimated ${percent(customer.profile?.discountedShare ?? 0)}: their share pulled toward all customers' ${percent(customer.profile?.populationDiscountedShare ?? 0)}, less the more they buy`,
    ]);
    expect(await notes("Lifetime spend").textContent()).toMatch(/^1 order since \d/);
    // Their CLV rests on all customers' averages (one order says little of their rhythm or spend): said beside it.
    expect(customer.summary.purchaseDays).toBe(1);
    expect(await notes("CLV, 12 months").allTextContents()).toEqual([
      expect.stringMatching(/^24 months: /),
      "mostly all customers' averages: one day of orders says little of how often they buy or what they spend",
    ]);
    // A one-time buyer's stage is judged by how long returning customers took: the page says so, in days.
    const window = customer.profile?.oneTimeReturnDays;
    expect(window).toBeTruthy();
    const days = (n: number) => `${n.toLocaleString("en-US")} day${n === 1 ? "" : "s"}`;
    expect(await notes("Stage").allTextContents()).toEqual([
      customer.profile?.stageReason.replaceAll("_", " "),
      `bought on one day, ${days(window?.sinceFirstPurchase ?? 0)} ago; half of the customers who came back did within ${days(window?.usual ?? 0)}, 90% within ${days(window?.late ?? 0)}`,
    ]);
    // Nor a rhythm of their own: the interval the models give them is said to be everyone's.
    const cadence = app.page.locator(".tile").filter({ has: app.page.getByText("Cadence", { exact: true }) });
    expect(await cadence.locator("dd.figure").textContent()).toBe("no rhythm yet (one order)");
    expect(await notes("Cadence").allTextContents()).toEqual([
      `${days(window?.sinceFirstPurchase ?? 0)} since their one order`,
      `all customers' usual interval: every ${customer.profile?.cadence.expectedIntervalDays} days`,
    ]);
    const next = app.page.locator(".tile").filter({ has: app.page.getByText("Next order expected", { exact: true }) });
    expect(await next.locator("dd.figure").textContent()).toBe("no date from one order");
    await screenshot("customer-one-order");
  }, 120_000);

  it("creates a rule, showing the API's messages on the fields first, then disables it", async () => {
    await openFromNav("Rules");
    await app.page.getByText("No rules yet").waitFor();
    await app.page.getByRole("link", { name: "New rule" }).click();
    await app.page.getByLabel("Target id").fill("coffee");
    await app.page.getByLabel("Strength").fill("0");
    await app.page.getByRole("button", { name: "Create rule" }).click();
    await app.page.getByText("Name must not be empty").waitFor();
    await app.page.getByText("Strength must be greater than 0").waitFor();
    expect(await app.page.getByLabel("Name").getAttribute("aria-invalid")).toBe("true");
    await screenshot("rule-invalid");
    await app.page.getByLabel("Name").fill("Boost coffee for fading customers");
    await app.page.getByLabel("Strength").fill("0.8");
    // Each segment's checkboxes are a group named for it inside "Who it applies to", so a checkbox is
    // read with its group's name ("Value tier", "top"), not as a bare "top".
    const segment = app.page.getByRole("group", { name: "Who it applies to (nothing ticked: everyone)" });
    const group = (name: string) => segment.getByRole("group", { name, exact: true });
    for (const [name, values] of [
      ["Stage", ["new", "active", "fading", "lapsed"]],
      ["Value tier", ["top", "high", "medium", "low"]],
      ["Channel", ["web", "store", "app"]],
      ["Discount sensitivity", ["full price", "mixed", "deal seeker"]],
    ] as const)
      expect(
        await group(name)
          .getByRole("checkbox")
          .evaluateAll((boxes) => boxes.map((box) => box.parentElement?.textContent)),
      ).toEqual(values);
    await group("Stage").getByRole("checkbox", { name: "fading" }).check();
    await group("Discount sensitivity").getByRole("checkbox", { name: "full price" }).check();
    await app.page.getByRole("button", { name: "Create rule" }).click();
    await app.page.waitForURL(/\/console\/rules\/r_/);
    await app.page.getByRole("heading", { name: "History" }).waitFor();
    expect(await app.page.getByRole("cell", { name: "create" }).count()).toBe(1);
    await openFromNav("Rules");
    const row = app.page.getByRole("row", { name: /Boost coffee for fading customers/ });
    // In the form's words, not the API's field names (discountSensitivity full_price).
    await row
      .getByText("boost category coffee: score × 1.8, for stage fading, discount sensitivity full price")
      .waitFor();
    await row.getByRole("button", { name: "Disable Boost coffee for fading customers" }).click();
    await row.getByText("disabled").waitFor();
    // Said in the status line, the focus kept on the button pressed (now Enable).
    await app.page
      .getByRole("status")
      .filter({ hasText: "Rule “Boost coffee for fading customers” disabled." })
      .waitFor();
    expect(await app.page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe(
      "Enable Boost coffee for fading customers",
    );
    await screenshot("rules");
  }, 120_000);

  it("deletes a rule after a confirmation, its history kept by the API", async () => {
    const adminHeaders = { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` };
    const listed = await fetch(`${app.worker.url}/v1/admin/rules`, { headers: adminHeaders });
    const [rule] = ((await listed.json()) as { data: { id: string; name: string }[] }).data;
    if (!rule) throw new Error("no rule to delete");
    await app.page.getByRole("link", { name: rule.name }).click();
    await app.page.getByRole("heading", { name: "Delete this rule" }).waitFor();
    const remove = app.page.getByRole("button", { name: "Delete rule" });
    await remove.click();
    const dialog = app.page.getByRole("alertdialog", { name: /Delete the rule “Boost coffee for fading customers”\?/ });
    // Focus on Cancel; Escape cancels and gives the focus back to the button that asked.
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.textContent)).toBe("Cancel");
    await app.page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.textContent)).toBe("Delete rule");
    expect((await fetch(`${app.worker.url}/v1/admin/rules/${rule.id}`, { headers: adminHeaders })).status).toBe(200);
    await remove.click();
    await app.page.getByRole("button", { name: "Yes, delete this rule" }).click();
    await app.page.waitForURL(/\/console\/rules$/);
    await app.page.getByRole("status").getByText("Rule “Boost coffee for fading customers” was deleted.").waitFor();
    await app.page.getByText("No rules yet").waitFor();
    expect((await fetch(`${app.worker.url}/v1/admin/rules/${rule.id}`, { headers: adminHeaders })).status).toBe(404);
    const versions = await fetch(`${app.worker.url}/v1/admin/rules/${rule.id}/versions`, { headers: adminHeaders });
    const changes = ((await versions.json()) as { data: { change: string }[] }).data.map((version) => version.change);
    expect(changes).toEqual(["create", "disable", "delete"]);
    // The notice links to that history, which the rule's page shows with the rule gone.
    await app.page.getByRole("status").getByRole("link", { name: "Its history is kept" }).click();
    await app.page.getByRole("heading", { name: "Rule: Boost coffee for fading customers (deleted)" }).waitFor();
    const history = app.page.getByRole("table").locator("tbody tr td:nth-child(2)");
    expect(await history.allTextContents()).toEqual(["delete", "disable", "create"]);
    expect(await app.page.getByRole("button", { name: "Delete rule" }).count()).toBe(0);
    // An id no rule ever had still says so, on a page of its own: headed, and the tab named by it.
    await app.page.goto(`${app.worker.url}/console/rules/r_none`);
    await app.page.getByText("No rule with id r_none.").waitFor();
    expect(await app.page.getByRole("heading", { level: 1 }).textContent()).toBe("Rule not found");
    await expect.poll(() => app.page.title()).toBe("Rule not found · Patron console");
    // Come back to from another page (Back), its heading takes the focus, as any page's does.
    await openFromNav("Rules");
    await expect.poll(() => app.page.title()).toBe("Rules · Patron console");
    await app.page.goBack();
    await app.page.getByText("No rule with id r_none.").waitFor();
    await expect
      .poll(() => app.page.evaluate(() => `${document.activeElement?.tagName} ${document.activeElement?.textContent}`))
      .toBe("H1 Rule not found");
    await expect.poll(() => app.page.title()).toBe("Rule not found · Patron console");
  }, 120_000);

  it("keeps a rule being written when the page is left and come Back to, and on a reload; once created, not again", async () => {
    await openFromNav("Rules");
    await app.page.getByRole("link", { name: "New rule" }).click();
    await app.page.getByRole("heading", { level: 1, name: "New rule" }).waitFor();
    await app.page.getByLabel("Name").fill("Kept while away");
    await app.page.getByLabel("Target id").fill("candles");
    await app.page.getByLabel("Strength").fill("3");
    await app.page.getByRole("group", { name: "Stage" }).getByLabel("fading").check();
    const shows = async () => {
      await app.page.getByRole("heading", { level: 1, name: "New rule" }).waitFor();
      expect(await app.page.getByLabel("Name").inputValue()).toBe("Kept while away");
      expect(await app.page.getByLabel("Target id").inputValue()).toBe("candles");
      expect(await app.page.getByLabel("Strength").inputValue()).toBe("3");
      expect(await app.page.getByRole("group", { name: "Stage" }).getByLabel("fading").isChecked()).toBe(true);
    };
    // Another page, then Back: the draft as it was left.
    await openFromNav("Customers");
    await app.page.goBack();
    await app.page.waitForURL("**/console/rules/new");
    await shows();
    await app.page.reload();
    await shows();
    // Created: Back to the form finds it empty, not the same rule to create twice.
    await app.page.getByRole("button", { name: "Create rule" }).click();
    await app.page.waitForURL(/\/console\/rules\/(?!new)[^/]+$/);
    await app.page.getByRole("heading", { level: 1, name: "Rule: Kept while away" }).waitFor();
    const ruleId = decodeURIComponent(app.page.url().split("/").pop() ?? "");
    await app.page.goBack();
    await app.page.waitForURL("**/console/rules/new");
    await app.page.getByRole("heading", { level: 1, name: "New rule" }).waitFor();
    expect(await app.page.getByLabel("Name").inputValue()).toBe("");
    expect(await app.page.getByLabel("Target id").inputValue()).toBe("");
    const deleted = await fetch(`${app.worker.url}/v1/admin/rules/${encodeURIComponent(ruleId)}`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    expect(deleted.status).toBeLessThan(300);
  }, 120_000);

  it("shows another rule's page as loading until it comes, never the last rule's form under its address", async () => {
    const admin = { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}`, "Content-Type": "application/json" };
    const create = async (name: string, targetId: string) => {
      const body = { name, action: "boost", targetType: "category", targetId, strength: 1 };
      const response = await fetch(`${app.worker.url}/v1/admin/rules`, {
        method: "POST",
        headers: admin,
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(201);
      return ((await response.json()) as { data: { id: string } }).data.id;
    };
    const first = await create("First of two", "candles");
    const second = await create("Second of two", "mugs");
    await app.page.goto(`${app.worker.url}/console/rules/${first}`);
    await app.page.getByRole("heading", { level: 1, name: "Rule: First of two" }).waitFor();
    // The second rule's answer held back, as on a slow connection.
    const secondRule = (url: URL) => url.pathname === `/v1/admin/rules/${second}`;
    const heldBack = await holdBack(app.page, secondRule);
    try {
      await app.page.evaluate((id) => {
        history.pushState(null, "", `/console/rules/${id}`);
        dispatchEvent(new PopStateEvent("popstate"));
      }, second);
      await app.page.getByText("Loading the rule").waitFor();
      expect(await app.page.getByRole("heading", { level: 1, name: "Rule: First of two" }).count()).toBe(0);
      expect(await app.page.getByLabel("Name", { exact: true }).count()).toBe(0);
      heldBack.release();
      await app.page.getByRole("heading", { level: 1, name: "Rule: Second of two" }).waitFor();
      expect(await app.page.getByLabel("Name", { exact: true }).inputValue()).toBe("Second of two");
    } finally {
      await heldBack.end();
    }
    for (const id of [first, second]) {
      const deleted = await fetch(`${app.worker.url}/v1/admin/rules/${id}`, { method: "DELETE", headers: admin });
      expect(deleted.status).toBeLessThan(300);
    }
  }, 120_000);

  it("shows the experiment page", async () => {
    await openFromNav("Experiments");
    await app.page.getByRole("heading", { name: "Experiments" }).waitFor();
    await app.page.getByLabel("Period").waitFor();
    await screenshot("experiments");
    // The period chosen is in the address: a reload (or a link shared) shows the same period.
    await app.page.getByLabel("Period").selectOption({ label: "Last 7 days" });
    await expect.poll(() => new URL(app.page.url()).search).toBe("?days=7");
    await app.page.reload();
    await app.page.getByLabel("Period").waitFor();
    expect(await app.page.getByLabel("Period").inputValue()).toBe("7");
    await app.page.getByLabel("Period").selectOption({ label: "Last 30 days" });
    await expect.poll(() => new URL(app.page.url()).search).toBe("?days=30");
    await app.page.getByLabel("Period").selectOption({ label: "Since the experiment began" });
    await expect.poll(() => new URL(app.page.url()).search).toBe("");
  }, 120_000);

  it('draws no click-through rate for an arm whose widget reported no impression, and tables it as "–"', async () => {
    // Planted straight into the dev worker's events database: held-out shelves reported by views alone
    // (no impression), around personalized shelves with impressions and a click, all on the home page.
    const event = (type: string, arm: string, shopper: number, daysAgo: number) => {
      const rid = `rid_e2e_ctr_${arm}_${shopper}`;
      const at = new Date(Date.now() - daysAgo * 86_400_000).toISOString();
      return `INSERT INTO events (type, recommendation_id, arm, customer_id, product_id, category_id, placement, at, dedupe_key) VALUES ('${type}', '${rid}', '${arm}', 'c_e2e_ctr_${arm}_${shopper}', 'p1', 'coffee', 'home', '${at}', '${rid}-${type}');`;
    };
    const rows = [
      event("view", "holdout", 1, 2),
      event("impression", "personalized", 1, 1.5),
      event("click", "personalized", 1, 1.5),
      event("impression", "personalized", 2, 1.5),
      event("view", "holdout", 2, 1),
    ];
    await queryLocalD1(app.worker.persistDir, rows.join(" "), "EVENTS_DB");
    const response = await fetch(`${app.worker.url}/v1/admin/holdout?since=start`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    type ArmRow = { arm: string; clickThroughRate: number | null };
    const { arms, placements } = (
      (await response.json()) as { data: { arms: ArmRow[]; placements: { arms: ArmRow[] }[] } }
    ).data;
    // Personalized first, as the page orders the arms.
    const byArm = [...arms].sort((a, b) => b.arm.localeCompare(a.arm));
    expect(byArm.map((arm) => [arm.arm, arm.clickThroughRate])).toEqual([
      ["personalized", 0.5],
      ["holdout", null],
    ]);
    await openFromNav("Models");
    await openFromNav("Experiments");
    const chart = app.page.getByRole("img", { name: "Click-through rate by arm" });
    await chart.waitFor();
    // The results table's "–", not a rate of 0.00% that nobody measured: no bar, and "–" beside it.
    expect(await chart.locator(".chart-value").allTextContents()).toEqual(["50.00%", "–"]);
    expect(await chart.locator("rect.chart-bar").nth(1).getAttribute("width")).toBe("0");
    expect(await chartFigures(chart)).toEqual([
      ["personalized", "50.00%"],
      ["holdout", "–"],
    ]);
    const results = app.page.getByRole("table", { name: /^Results per arm/ });
    expect(
      await results
        .getByRole("row", { name: /^holdout/ })
        .locator("td")
        .nth(4)
        .textContent(),
    ).toBe("–");
    // Per placement too, personalized first, as in every table and chart of the page (the API lists
    // holdout first there).
    expect(placements.flatMap((placement) => placement.arms.map((arm) => arm.arm))).toEqual([
      "holdout",
      "personalized",
    ]);
    const perPlacement = app.page.getByRole("table", { name: "Per placement" });
    expect(await perPlacement.locator("tbody th").allTextContents()).toEqual(["home", "home"]);
    expect(await perPlacement.locator("tbody td:first-of-type").allTextContents()).toEqual(["personalized", "holdout"]);
  }, 120_000);

  it("exports a customer's data and erases the customer after a confirmation", async () => {
    await openCustomerByAccount("demo-new");
    const customerId = decodeURIComponent(app.page.url().split("/").pop() ?? "");
    const [download] = await Promise.all([
      app.page.waitForEvent("download"),
      app.page.getByRole("button", { name: "Export data" }).click(),
    ]);
    const exported = JSON.parse(readFileSync((await download.path()) as string, "utf8")) as { customerId: string };
    expect(exported.customerId).toBe(customerId);
    const focused = () => app.page.evaluate(() => document.activeElement?.textContent?.trim());
    await app.page.getByRole("button", { name: "Erase customer" }).click();
    await app.page.getByRole("alertdialog").waitFor();
    // The pressed button is gone: focus moves into the confirmation, on its safe answer, not to <body>.
    await expect.poll(focused).toBe("Cancel");
    await screenshot("erase-confirm");
    // Cancelling erases nothing, and gives focus back to the button that opened the confirmation.
    await app.page.keyboard.press("Enter");
    expect(await app.page.getByRole("alertdialog").count()).toBe(0);
    await expect.poll(focused).toBe("Erase customer");
    // Escape cancels it too, as in any dialog.
    await app.page.getByRole("button", { name: "Erase customer" }).click();
    await expect.poll(focused).toBe("Cancel");
    await app.page.keyboard.press("Escape");
    expect(await app.page.getByRole("alertdialog").count()).toBe(0);
    await expect.poll(focused).toBe("Erase customer");
    await app.page.getByRole("button", { name: "Erase customer" }).click();
    await app.page.getByRole("button", { name: "Yes, erase this customer" }).click();
    await app.page.getByText(`Customer ${customerId} was erased.`).waitFor();
    await expect.poll(focused).toBe("Customers");
    // The notice is said once: gone after leaving the page and coming back.
    await openFromNav("Overview");
    await openFromNav("Customers");
    await app.page.getByRole("heading", { name: "Customers to act on" }).waitFor();
    expect(await app.page.getByText(`Customer ${customerId} was erased.`).count()).toBe(0);
    const gone = await fetch(`${app.worker.url}/v1/customers/${customerId}`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    expect(gone.status).toBe(404);
    // Looking the erased customer up again says their identifier is suppressed, not merely unknown.
    await app.page.getByLabel("Identifier").selectOption("account");
    await app.page.getByLabel("Value").fill("demo-new");
    await app.page.getByRole("button", { name: "Look up" }).click();
    await app.page
      .getByRole("status")
      .getByText("This account id is on the suppression list: a customer who held it was erased")
      .waitFor();
  }, 120_000);

  it("works at tablet width and from the keyboard", async () => {
    await app.page.setViewportSize({ width: 820, height: 1180 });
    await openFromNav("Overview");
    await app.page.reload();
    await app.page.getByRole("heading", { name: "12-month CLV of fading and lapsed customers" }).waitFor();
    await app.page.keyboard.press("Tab");
    expect(await app.page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    await app.page.keyboard.press("Tab");
    expect(await app.page.evaluate(() => document.activeElement?.textContent)).toBe("Overview");
    // The focus ring stands out, 3:1 or more, against the page's background and the cards' (the header's).
    const ring = () =>
      app.page.evaluate(() => {
        const focused = getComputedStyle(document.activeElement as Element);
        return {
          style: focused.outlineStyle,
          colour: focused.outlineColor,
          page: getComputedStyle(document.body).backgroundColor,
          card: getComputedStyle(document.querySelector(".top") as Element).backgroundColor,
        };
      });
    const light = await ring();
    expect([light.style, light.page, light.card]).toEqual(["solid", "rgb(247, 247, 245)", "rgb(255, 255, 255)"]);
    expect(contrast(light.colour, light.page), `${light.colour} on ${light.page}`).toBeGreaterThanOrEqual(3);
    expect(contrast(light.colour, light.card), `${light.colour} on ${light.card}`).toBeGreaterThanOrEqual(3);
    // Nothing wider than the screen: no sideways scrolling at tablet width.
    expect(await app.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(820);
    await screenshot("overview-tablet");
    await app.page.emulateMedia({ colorScheme: "dark" });
    const background = await app.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(background).toBe("rgb(20, 21, 24)");
    const dark = await ring();
    expect(dark.style).toBe("solid");
    expect(contrast(dark.colour, dark.page), `${dark.colour} on ${dark.page}`).toBeGreaterThanOrEqual(3);
    expect(contrast(dark.colour, dark.card), `${dark.colour} on ${dark.card}`).toBeGreaterThanOrEqual(3);
    await screenshot("overview-tablet-dark");
    await app.page.emulateMedia({ colorScheme: "light" });
    await app.page.setViewportSize({ width: 1280, height: 900 });
  }, 120_000);

  it("signs out server-side: the old session cookie opens nothing", async () => {
    const session = (await app.context.cookies()).find((cookie) => cookie.name === "patron_session");
    expect(session).toBeDefined();
    await app.page.getByRole("button", { name: "Sign out" }).click();
    await app.page.getByLabel("Admin key").waitFor();
    // The tab says so, not the name of the page that went with the session.
    await expect.poll(() => app.page.title()).toBe("Sign in · Patron console");
    expect((await app.context.cookies()).some((cookie) => cookie.name === "patron_session")).toBe(false);
    const replay = await fetch(`${app.worker.url}/v1/admin/segments`, {
      headers: { Cookie: `patron_session=${session?.value}` },
    });
    expect(replay.status).toBe(401);
    await app.page.reload();
    await app.page.getByLabel("Admin key").waitFor();
    await screenshot("signed-out");
    expect(app.errors).toEqual([]);
  }, 120_000);
});
