// The console's Overview and Customers lists in real Chromium against `wrangler dev` with the seeded demo
// retailer: before the first nightly run the Overview says to run it, and its button does; then "What the
// best customers have in common" shows the API's traits in the API's order (sentence, paired share bars,
// lift) for the tier chosen; the Customers list shows the API's pages (filters, sort, "Next page" with
// the cursor, a fading customer's next order "if still buying: around …"), links each row to the customer
// page, and "Export CSV" downloads the same list as CSV with the session cookie alone. Screenshots go to
// tests/artifacts/; any CSP violation or page error fails.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { day } from "../../console/src/api.ts";
import { testSecrets } from "../fixtures/wrangler-dev.ts";
import { artifactsDir } from "../widget/harness.ts";
import { demoCustomers, holdBack, useConsole } from "./console-browser.ts";

const app = useConsole({
  prefix: "console-lists",
  browser: { viewport: { width: 1280, height: 900 }, acceptDownloads: true },
  // Enough customers for a top tier (10%) that shares traits with at least 5 of its members.
  seed: demoCustomers(200),
  startPath: "/console",
  timeoutMs: 240_000,
});

interface Trait {
  dimension: string;
  value: string;
  label: string;
  sentence: string;
  topShare: number;
  restShare: number;
}
interface Listed {
  customerId: string;
  stage: string;
  expectedNextOrderAt: string | null;
  purchaseDays: number | null;
}

async function screenshot(name: string) {
  await app.page.screenshot({ path: path.join(artifactsDir, `console-lists-${name}.png`), fullPage: true });
}

/** The API's answer, read with the admin key (not the browser's session), to compare the page with. */
async function admin<T>(pathAndQuery: string): Promise<T> {
  const response = await fetch(`${app.worker.url}${pathAndQuery}`, {
    headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
  });
  expect(response.status, pathAndQuery).toBe(200);
  return ((await response.json()) as { data: T }).data;
}

async function openFromNav(name: string) {
  await app.page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true }).click();
  await expect.poll(() => app.page.getByRole("link", { name, exact: true }).getAttribute("aria-current")).toBe("page");
}

/** A trait's name as the console says it: a discount sensitivity in words, as in the customer list ("deal seeker"). */
const shownLabel = (trait: Trait) =>
  trait.dimension === "discountSensitivity" ? trait.value.replace(/_/g, " ") : trait.label;

const listedIds = () =>
  app.page.getByRole("table").filter({ hasText: "CLV at stake" }).locator("tbody tr td:first-child a");

describe("console lists", () => {
  it("before the first run, the Overview says to run the nightly job, and its button fills the page", async () => {
    await app.page.getByRole("heading", { name: "No customer has been scored yet" }).waitFor();
    const before = await admin<{ runId: string | null; traits: Trait[] }>("/v1/admin/insights/best-customers");
    expect(before.runId).toBeNull();
    await openFromNav("Customers");
    await app.page.getByText("No customer has been scored yet: the list fills after the nightly model run").waitFor();
    await openFromNav("Overview");
    await app.page.getByRole("button", { name: "Run the nightly job" }).click();
    await app.page
      .getByRole("heading", { name: "What the best customers have in common" })
      .waitFor({ timeout: 240_000 });
  }, 300_000);

  it("ranks what the best customers have in common as the API does, with paired share bars, per tier", async () => {
    const top = await admin<{ customers: number; traits: Trait[] }>("/v1/admin/insights/best-customers?tier=top");
    expect(top.customers).toBeGreaterThan(0);
    expect(top.traits.length).toBeGreaterThan(0);
    const list = app.page.getByRole("list", { name: "Traits of top-tier customers, most distinctive first" });
    await list.waitFor();
    // The order is by the interval's low end, not by lift: the page says so, since lifts then read out of order.
    await app.page.getByText("by how surely the trait sets them apart (the low end of its 95% interval)").waitFor();
    await app.page
      .getByText("The bars show who has the trait: top-tier customers (upper) and the rest (lower).")
      .waitFor();
    expect(await list.locator(".sentence").allTextContents()).toEqual(top.traits.map((trait) => trait.sentence));
    // Each trait's title in words, never the API's raw value ("Discount sensitivity deal_seeker").
    expect(await list.locator(".trait strong").allTextContents()).toEqual(top.traits.map(shownLabel));
    for (const title of await list.locator(".trait strong").allTextContents()) expect(title).not.toContain("_");
    const first = top.traits[0] as Trait;
    const bar = list.getByRole("img").first();
    expect(await bar.getAttribute("aria-label")).toBe(
      `${shownLabel(first)}: ${Math.round(first.topShare * 100)}% of top-tier customers vs ${Math.round(first.restShare * 100)}% of the rest`,
    );
    expect(await list.locator(".lift .figure").count()).toBe(top.traits.length);
    await screenshot("overview-best-customers");
    // Another tier: the page asks the API for that tier and shows its traits (or says there are none).
    const high = await admin<{ customers: number; traits: Trait[] }>("/v1/admin/insights/best-customers?tier=high");
    await app.page.getByLabel("Value tier").selectOption("high");
    // The heading says whose traits these are: "the best customers" only for the top tier.
    await app.page.getByRole("heading", { name: "What high-tier customers have in common" }).waitFor();
    if (high.traits.length > 0) {
      const highList = app.page.getByRole("list", { name: "Traits of high-tier customers, most distinctive first" });
      await highList.waitFor();
      expect(await highList.locator(".sentence").allTextContents()).toEqual(high.traits.map((trait) => trait.sentence));
    } else await app.page.getByText("No trait sets the high tier's").waitFor();

    // A discount sensitivity trait, as the API answers one (its label is the value, "deal_seeker"): the
    // title and the bar say it in words, as the customer list does, not "Discount sensitivity deal_seeker".
    const medium = (url: URL) =>
      url.pathname === "/v1/admin/insights/best-customers" && url.searchParams.get("tier") === "medium";
    await app.page.route(medium, async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { data: { traits: unknown[] } };
      body.data.traits = [
        {
          dimension: "discountSensitivity",
          value: "deal_seeker",
          label: "deal_seeker",
          topShare: 0.6,
          restShare: 0.2,
          lift: 2.98,
          topCustomers: 30,
          restCustomers: 50,
          score: 1.2,
          sentence: "60% of medium-value customers buy mostly on deals vs 20% of the rest",
        },
      ];
      await route.fulfill({ response, json: body });
    });
    try {
      await app.page.getByLabel("Value tier").selectOption("medium");
      const mediumList = app.page.getByRole("list", {
        name: "Traits of medium-tier customers, most distinctive first",
      });
      await mediumList.waitFor();
      expect(await mediumList.locator(".trait strong").allTextContents()).toEqual(["deal seeker"]);
      expect(await mediumList.getByRole("img").getAttribute("aria-label")).toBe(
        "deal seeker: 60% of medium-tier customers vs 20% of the rest",
      );
      await screenshot("overview-trait-in-words");
    } finally {
      await app.page.unroute(medium);
    }
  }, 120_000);

  it("keeps the value tier chosen for the best customers' traits on Back from a customer and on a reload", async () => {
    await openFromNav("Overview");
    await app.page.getByLabel("Value tier").selectOption("high");
    await app.page.waitForURL("**/console?tier=high");
    const high = app.page.getByRole("heading", { name: "What high-tier customers have in common" });
    await high.waitFor();
    // A customer opened from the Overview's list of the most valuable, then Back: the high tier still.
    await app.page.getByRole("link", { name: /^c_/ }).first().click();
    await app.page.waitForURL(/\/console\/customers\/c_/);
    await app.page.getByRole("heading", { level: 1, name: /Customer c_/ }).waitFor();
    await app.page.goBack();
    await app.page.waitForURL("**/console?tier=high");
    await high.waitFor();
    expect(await app.page.getByLabel("Value tier").inputValue()).toBe("high");
    await app.page.getByRole("list", { name: "Traits of high-tier customers, most distinctive first" }).waitFor();
    // A reload too; the Overview link starts again from the top tier.
    await app.page.reload();
    await high.waitFor();
    expect(await app.page.getByLabel("Value tier").inputValue()).toBe("high");
    await openFromNav("Overview");
    await app.page.getByRole("heading", { name: "What the best customers have in common" }).waitFor();
    expect(new URL(app.page.url()).search).toBe("");
    expect(await app.page.getByLabel("Value tier").inputValue()).toBe("top");
  }, 120_000);

  it("says another tier's traits are loading rather than showing the last tier's under its heading", async () => {
    await openFromNav("Overview");
    await app.page.getByRole("list", { name: "Traits of top-tier customers, most distinctive first" }).waitFor();
    // The low tier's answer held back, as on a slow connection.
    const low = (url: URL) =>
      url.pathname === "/v1/admin/insights/best-customers" && url.searchParams.get("tier") === "low";
    const heldBack = await holdBack(app.page, low);
    const loading = app.page.getByRole("status").filter({ hasText: "Loading what low-tier customers have in common…" });
    try {
      await app.page.getByLabel("Value tier").selectOption("low");
      await app.page.getByRole("heading", { name: "What low-tier customers have in common" }).waitFor();
      await loading.waitFor();
      expect(await app.page.getByRole("list", { name: /^Traits of top-tier customers/ }).count()).toBe(0);
      expect(await app.page.getByText(/top-tier customers against/).count()).toBe(0);
      heldBack.release();
      await loading.waitFor({ state: "detached" });
    } finally {
      await heldBack.end();
    }
    expect(await app.page.getByText(/top-tier customers/).count()).toBe(0);
    await openFromNav("Overview");
  }, 120_000);

  it("lists customers as the API pages them: sort, filters and Next page with the cursor", async () => {
    await openFromNav("Customers");
    const first = await admin<{ customers: Listed[]; next: string | null }>(
      "/v1/admin/customers?sort=-clvAtStake&limit=25",
    );
    expect(first.customers.length).toBe(25);
    expect(first.next).not.toBeNull();
    await expect.poll(() => listedIds().allTextContents()).toEqual(first.customers.map((row) => row.customerId));
    // The next order as the customer page words it: a fading customer's date holds only if they still buy.
    expect(first.customers.some((row) => row.stage === "fading" && row.expectedNextOrderAt)).toBe(true);
    const table = app.page.getByRole("table").filter({ hasText: "CLV at stake" });
    const due = (await table.locator("thead th").allTextContents()).indexOf("Next order due") + 1;
    expect(await table.locator(`tbody td:nth-child(${due})`).allTextContents()).toEqual(
      first.customers.map((row) =>
        row.purchaseDays === 1
          ? "no date from one order"
          : row.stage === "fading"
            ? `if still buying: around ${day(row.expectedNextOrderAt)}`
            : day(row.expectedNextOrderAt),
      ),
    );
    // CLV at stake is said to be what it is, apart from the 12-month CLV beside it (and the Overview's sum of that);
    // both name the shop's currency, as every table of amounts does.
    const header = (name: string) => app.page.getByRole("columnheader", { name, exact: true }).getAttribute("title");
    expect(await header("CLV at stake (USD)")).toBe(
      "A year of the customer's usual orders × (1 − P(alive)): what is lost if they have gone",
    );
    expect(await header("12-month CLV (USD)")).toBe(
      "Expected spend over the next 12 months, already lowered by the chance they have stopped",
    );
    // The tier is the 12-month CLV's, which a big past spender can be low on.
    expect(await header("Tier")).toBe(
      "By 12-month CLV, not past spend: top is the highest 10% of customers, high the next 20%, medium the next 30%, low the rest and anyone expected to spend under a tenth of a typical purchase day",
    );
    const caption = await app.page
      .locator("section[aria-labelledby=customer-list-title] > p.muted")
      .first()
      .textContent();
    expect(caption).toContain(
      "CLV at stake is a year of the customer's usual orders (expected order value × 365 ÷ their usual days between orders) × the chance they have stopped buying (1 − P(alive))",
    );
    expect(caption).toContain("the Overview adds it up over the fading and lapsed customers");
    // Next page: the API's page after the cursor, nothing repeated.
    const second = await admin<{ customers: Listed[] }>(
      `/v1/admin/customers?sort=-clvAtStake&limit=25&cursor=${encodeURIComponent(first.next as string)}`,
    );
    await app.page.getByRole("button", { name: "Next page" }).click();
    await expect.poll(() => listedIds().allTextContents()).toEqual(second.customers.map((row) => row.customerId));
    await app.page.getByText("Page 2", { exact: true }).waitFor();
    await app.page.getByRole("button", { name: "Previous page" }).click();
    await expect.poll(() => listedIds().allTextContents()).toEqual(first.customers.map((row) => row.customerId));
    // Back on the first page, Previous page is unavailable but keeps the keyboard's focus.
    expect(await app.page.getByRole("button", { name: "Previous page" }).getAttribute("aria-disabled")).toBe("true");
    expect(await app.page.evaluate(() => document.activeElement?.textContent)).toBe("Previous page");
    // A filter and another sort start again from the first page of that list.
    await app.page.getByLabel("Stage", { exact: true }).selectOption("active");
    await app.page.getByLabel("Sort", { exact: true }).selectOption("probabilityAlive");
    const active = await admin<{ customers: Listed[] }>(
      "/v1/admin/customers?stage=active&sort=probabilityAlive&limit=25",
    );
    expect(active.customers.length).toBeGreaterThan(0);
    await expect.poll(() => listedIds().allTextContents()).toEqual(active.customers.map((row) => row.customerId));
    await app.page.getByText("Page 1", { exact: true }).waitFor();
    await screenshot("customers-list");
    // The filters and sort are in the address: a reload shows the same list with the same choices.
    await app.page.waitForURL("**/console/customers?stage=active&sort=probabilityAlive");
    await app.page.reload();
    await expect.poll(() => listedIds().allTextContents()).toEqual(active.customers.map((row) => row.customerId));
    expect(await app.page.getByLabel("Stage", { exact: true }).inputValue()).toBe("active");
    expect(await app.page.getByLabel("Sort", { exact: true }).inputValue()).toBe("probabilityAlive");
    // A category the catalog does not have applies on Enter only (a half-typed name is no filter), and a
    // filter nobody matches says so and what to do.
    await app.page.getByLabel("Lapsing in category (id)").fill("no-such-category");
    await app.page.waitForTimeout(1000);
    expect(new URL(app.page.url()).searchParams.has("lapsedCategory")).toBe(false);
    await app.page.getByLabel("Lapsing in category (id)").press("Enter");
    await app.page.getByText("No scored customer matches these filters").waitFor();
    await app.page.waitForURL(
      "**/console/customers?stage=active&lapsedCategory=no-such-category&sort=probabilityAlive",
    );
    await app.page.getByLabel("Lapsing in category (id)").fill("");
    await app.page.waitForURL("**/console/customers?stage=active&sort=probabilityAlive");
    await expect.poll(() => listedIds().allTextContents()).toEqual(active.customers.map((row) => row.customerId));
    // A row opens the customer page; Back returns to the same list.
    const customerId = active.customers[0]?.customerId as string;
    await app.page.getByRole("link", { name: customerId, exact: true }).click();
    await app.page.waitForURL(`**/console/customers/${encodeURIComponent(customerId)}`);
    await app.page.getByRole("heading", { name: `Customer ${customerId}` }).waitFor();
    await app.page.goBack();
    await expect.poll(() => listedIds().allTextContents()).toEqual(active.customers.map((row) => row.customerId));
    expect(await app.page.getByLabel("Stage", { exact: true }).inputValue()).toBe("active");
    // So does the customer page's own link back: the list as it was left, not a fresh one.
    await app.page.getByRole("link", { name: customerId, exact: true }).click();
    await app.page.getByRole("heading", { name: `Customer ${customerId}` }).waitFor();
    await app.page.getByRole("link", { name: "← Look up another customer" }).click();
    await app.page.waitForURL("**/console/customers?stage=active&sort=probabilityAlive");
    await expect.poll(() => listedIds().allTextContents()).toEqual(active.customers.map((row) => row.customerId));
    // The Customers link starts again from the whole list, the category typed before forgotten.
    await app.page.getByLabel("Lapsing in category (id)").fill("no-such-category");
    await app.page.getByLabel("Lapsing in category (id)").press("Enter");
    await app.page.waitForURL(/lapsedCategory=no-such-category/);
    await openFromNav("Customers");
    await expect.poll(() => listedIds().allTextContents()).toEqual(first.customers.map((row) => row.customerId));
    expect(await app.page.getByLabel("Stage", { exact: true }).inputValue()).toBe("");
    await app.page.waitForTimeout(1000);
    expect(new URL(app.page.url()).search).toBe("");
    expect(await app.page.getByLabel("Lapsing in category (id)").inputValue()).toBe("");
    // Another list starts at page 1, and so does coming back to one paged through before.
    await app.page.getByRole("button", { name: "Next page" }).click();
    await app.page.getByText("Page 2", { exact: true }).waitFor();
    await app.page.getByLabel("Stage", { exact: true }).selectOption("active");
    await app.page.getByText("Page 1", { exact: true }).waitFor();
    await app.page.getByLabel("Stage", { exact: true }).selectOption("");
    await app.page.getByText("Page 1", { exact: true }).waitFor();
    await expect.poll(() => listedIds().allTextContents()).toEqual(first.customers.map((row) => row.customerId));
    // A customer opened from page 2: Back, and the customer page's link back, return to page 2.
    await app.page.getByRole("button", { name: "Next page" }).click();
    await app.page.getByText("Page 2", { exact: true }).waitFor();
    await expect.poll(() => listedIds().allTextContents()).toEqual(second.customers.map((row) => row.customerId));
    const onSecond = second.customers[0]?.customerId as string;
    await app.page.getByRole("link", { name: onSecond, exact: true }).click();
    await app.page.getByRole("heading", { name: `Customer ${onSecond}` }).waitFor();
    await app.page.goBack();
    await app.page.getByText("Page 2", { exact: true }).waitFor();
    await expect.poll(() => listedIds().allTextContents()).toEqual(second.customers.map((row) => row.customerId));
    await app.page.getByRole("link", { name: onSecond, exact: true }).click();
    await app.page.getByRole("heading", { name: `Customer ${onSecond}` }).waitFor();
    await app.page.getByRole("link", { name: "← Look up another customer" }).click();
    await app.page.getByText("Page 2", { exact: true }).waitFor();
    await expect.poll(() => listedIds().allTextContents()).toEqual(second.customers.map((row) => row.customerId));
    // Previous page still goes back to page 1, and the Customers link starts from page 1.
    await app.page.getByRole("button", { name: "Previous page" }).click();
    await app.page.getByText("Page 1", { exact: true }).waitFor();
    await app.page.getByRole("button", { name: "Next page" }).click();
    await app.page.getByText("Page 2", { exact: true }).waitFor();
    await openFromNav("Overview");
    await openFromNav("Customers");
    await app.page.getByText("Page 1", { exact: true }).waitFor();
    await expect.poll(() => listedIds().allTextContents()).toEqual(first.customers.map((row) => row.customerId));
    // Back from there is the list left on page 2, as it was.
    await app.page.goBack();
    await app.page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
    await app.page.goBack();
    await app.page.getByText("Page 2", { exact: true }).waitFor();
    await app.page.getByText("Loading the customers for these filters…").waitFor({ state: "detached" });
    await expect.poll(() => listedIds().allTextContents()).toEqual(second.customers.map((row) => row.customerId));
    // A customer opened from the list once, then again from the Overview: the link back goes to the list,
    // not back to the Overview.
    await app.page.getByRole("link", { name: onSecond, exact: true }).click();
    await app.page.getByRole("heading", { name: `Customer ${onSecond}` }).waitFor();
    await app.page.goBack();
    await openFromNav("Overview");
    // The same customer opened from the Overview page (as its tables' links do, within the console).
    await app.page.evaluate((id) => {
      history.pushState(null, "", `/console/customers/${id}`);
      dispatchEvent(new PopStateEvent("popstate"));
    }, onSecond);
    await app.page.getByRole("heading", { name: `Customer ${onSecond}` }).waitFor();
    await app.page.getByRole("link", { name: "← Look up another customer" }).click();
    await expect.poll(() => new URL(app.page.url()).pathname).toBe("/console/customers");
    await app.page.getByRole("heading", { name: "Customers to act on" }).waitFor();
  }, 120_000);

  it("marks a customer's page opened from the list as it is drawn, so Back at once leaves no mark for their next page", async () => {
    await openFromNav("Customers");
    await app.page.getByText("Loading the customers for these filters…").waitFor({ state: "detached" });
    const row = listedIds().first();
    const id = (await row.textContent()) as string;
    const href = (await row.getAttribute("href")) as string;
    // Frames held back, as on a busy machine: effects that wait for paint have not run when the page shows.
    // The row is clicked, and Back pressed in the same moment the customer's page is first seen.
    const markedWhenSeen = await app.page.evaluate(
      (address) =>
        new Promise<unknown>((resolve) => {
          const frames = window.requestAnimationFrame;
          window.requestAnimationFrame = () => 0;
          (document.querySelector(`a[href="${address}"]`) as HTMLAnchorElement).click();
          const seen = () =>
            [...document.querySelectorAll("a")].some((a) => a.textContent?.includes("Look up another"));
          const poll = () => {
            if (!seen()) return void setTimeout(poll, 0);
            const marked = (history.state as { fromList?: boolean } | null)?.fromList;
            history.back();
            window.requestAnimationFrame = frames;
            resolve(marked);
          };
          poll();
        }),
      href,
    );
    expect(markedWhenSeen).toBe(true);
    await app.page.getByText("Page 1", { exact: true }).waitFor();
    // The same customer opened later from elsewhere in the console: their link back opens the list, not Back.
    await openFromNav("Overview");
    await app.page.evaluate((address) => {
      history.pushState(null, "", address);
      dispatchEvent(new PopStateEvent("popstate"));
    }, href);
    await app.page.getByRole("heading", { name: `Customer ${id}` }).waitFor();
    await app.page.getByRole("link", { name: "← Look up another customer" }).click();
    await expect.poll(() => new URL(app.page.url()).pathname).toBe("/console/customers");
    await app.page.getByRole("heading", { name: "Customers to act on" }).waitFor();
  }, 120_000);

  it("goes Back and Forward between two filtered lists on one mounted page, each with its filters, sort and page", async () => {
    type ListPage = { customers: Listed[]; next: string | null };
    const active = await admin<ListPage>("/v1/admin/customers?stage=active&sort=-clvAtStake&limit=25");
    expect(active.next).not.toBeNull();
    const activeSecond = await admin<ListPage>(
      `/v1/admin/customers?stage=active&sort=-clvAtStake&limit=25&cursor=${encodeURIComponent(active.next as string)}`,
    );
    const lapsed = await admin<ListPage>("/v1/admin/customers?stage=lapsed&sort=-overdueRatio&limit=25");
    expect(lapsed.customers.length).toBeGreaterThan(0);
    const list = app.page.locator("section[aria-labelledby=customer-list-title]");
    const shows = async (stage: string, sort: string, pageNumber: number, rows: Listed[]) => {
      await app.page.getByText(`Page ${pageNumber}`, { exact: true }).waitFor();
      await app.page.getByText("Loading the customers for these filters…").waitFor({ state: "detached" });
      await expect.poll(() => listedIds().allTextContents()).toEqual(rows.map((row) => row.customerId));
      expect(await app.page.getByLabel("Stage", { exact: true }).inputValue()).toBe(stage);
      expect(await app.page.getByLabel("Sort", { exact: true }).inputValue()).toBe(sort);
      // The same list drawn all along: not a page mounted afresh by the history's move.
      expect(await list.getAttribute("data-e2e-mounted")).toBe("once");
    };
    await openFromNav("Customers");
    await list.evaluate((element) => element.setAttribute("data-e2e-mounted", "once"));
    // The active list, left on its second page.
    await app.page.getByLabel("Stage", { exact: true }).selectOption("active");
    await app.page.waitForURL("**/console/customers?stage=active");
    await shows("active", "-clvAtStake", 1, active.customers);
    await app.page.getByRole("button", { name: "Next page" }).click();
    await shows("active", "-clvAtStake", 2, activeSecond.customers);
    // Another list on the same page: the Customers link adds a history entry, a filter and sort then
    // replace it.
    await openFromNav("Customers");
    await app.page.getByLabel("Stage", { exact: true }).selectOption("lapsed");
    await app.page.getByLabel("Sort", { exact: true }).selectOption("-overdueRatio");
    await app.page.waitForURL("**/console/customers?stage=lapsed&sort=-overdueRatio");
    await shows("lapsed", "-overdueRatio", 1, lapsed.customers);
    await screenshot("customers-lapsed");
    // Back: the active list on the page it was left on, its filter and sort shown as they were.
    await app.page.goBack();
    await app.page.waitForURL("**/console/customers?stage=active");
    await shows("active", "-clvAtStake", 2, activeSecond.customers);
    // Forward: the lapsed list again, then Back once more.
    await app.page.goForward();
    await app.page.waitForURL("**/console/customers?stage=lapsed&sort=-overdueRatio");
    await shows("lapsed", "-overdueRatio", 1, lapsed.customers);
    await app.page.goBack();
    await app.page.waitForURL("**/console/customers?stage=active");
    await shows("active", "-clvAtStake", 2, activeSecond.customers);
  }, 120_000);

  it("follows Next page from the page shown only: pressed again while the next page loads, it skips none", async () => {
    type ListPage = { customers: Listed[]; next: string | null };
    const first = await admin<ListPage>("/v1/admin/customers?sort=-clvAtStake&limit=25");
    const second = await admin<ListPage>(
      `/v1/admin/customers?sort=-clvAtStake&limit=25&cursor=${encodeURIComponent(first.next as string)}`,
    );
    const third = await admin<ListPage>(
      `/v1/admin/customers?sort=-clvAtStake&limit=25&cursor=${encodeURIComponent(second.next as string)}`,
    );
    expect(third.customers.length).toBeGreaterThan(0);
    await openFromNav("Customers");
    await expect.poll(() => listedIds().allTextContents()).toEqual(first.customers.map((row) => row.customerId));
    // The next page's answer held back, as on a slow connection.
    const paged = (url: URL) => url.pathname === "/v1/admin/customers" && url.searchParams.has("cursor");
    const heldBack = await holdBack(app.page, paged);
    const next = app.page.getByRole("button", { name: "Next page" });
    try {
      await next.click();
      await app.page.getByText("Loading the customers for these filters…").waitFor();
      // Page 1 still shows, and its cursor is not the way on: Next page waits for page 2, and pressed
      // again from the keyboard (it keeps the focus) follows nothing.
      expect(await next.getAttribute("aria-disabled")).toBe("true");
      expect(await app.page.evaluate(() => document.activeElement?.textContent)).toBe("Next page");
      await app.page.keyboard.press("Enter");
      heldBack.release();
      await app.page.getByText("Loading the customers for these filters…").waitFor({ state: "detached" });
    } finally {
      await heldBack.end();
    }
    await app.page.getByText("Page 2", { exact: true }).waitFor();
    await expect.poll(() => listedIds().allTextContents()).toEqual(second.customers.map((row) => row.customerId));
    // Once page 2 has come, Next page goes on to page 3.
    await next.click();
    await app.page.getByText("Page 3", { exact: true }).waitFor();
    await expect.poll(() => listedIds().allTextContents()).toEqual(third.customers.map((row) => row.customerId));
  }, 120_000);

  it("keeps the next-order sort away from the lapsed list, and says a list is loading while the last one still shows", async () => {
    const lapsed = await admin<{ customers: Listed[] }>("/v1/admin/customers?stage=lapsed&sort=-clvAtStake&limit=25");
    expect(lapsed.customers.length).toBeGreaterThan(0);
    // The pair the API refuses (lapsed customers have no next order), as an old link may hold it.
    await app.page.goto(`${app.worker.url}/console/customers?stage=lapsed&sort=expectedNextOrderAt`);
    await expect.poll(() => listedIds().allTextContents()).toEqual(lapsed.customers.map((row) => row.customerId));
    await app.page.getByText("Lapsed customers are not expected to order, so they cannot be sorted").waitFor();
    expect(await app.page.getByRole("option", { name: /^Expected next order/ }).isDisabled()).toBe(true);
    expect(await app.page.getByRole("alert").count()).toBe(0);

    // A slow answer: the last list stays, dimmed and said to be loading, until the new one comes.
    const fading = (url: URL) => url.pathname === "/v1/admin/customers" && url.searchParams.get("stage") === "fading";
    const heldBack = await holdBack(app.page, fading);
    try {
      await app.page.getByLabel("Stage", { exact: true }).selectOption("fading");
      await app.page.getByText("Loading the customers for these filters…").waitFor();
      expect(await app.page.locator("[aria-busy=true]").count()).toBe(1);
      expect(await listedIds().allTextContents()).toEqual(lapsed.customers.map((row) => row.customerId));
      heldBack.release();
      await app.page.getByText("Loading the customers for these filters…").waitFor({ state: "detached" });
      expect(await app.page.locator("[aria-busy=true]").count()).toBe(0);
    } finally {
      await heldBack.end();
    }
  }, 120_000);

  it("says the session could not be checked when Patron fails, and tries again, rather than asking to sign in", async () => {
    const check = (url: URL) => url.pathname === "/v1/admin/session";
    await app.page.route(check, (route) =>
      route.request().method() === "GET"
        ? route.fulfill({
            status: 503,
            contentType: "application/json",
            body: JSON.stringify({ error: { code: "unavailable", message: "The database is busy.", requestId: "r" } }),
          })
        : route.continue(),
    );
    try {
      await app.page.goto(`${app.worker.url}/console/customers`);
      await app.page.getByText("Whether you are signed in could not be checked: The database is busy.").waitFor();
      expect(await app.page.getByLabel("Admin key").count()).toBe(0);
    } finally {
      await app.page.unroute(check);
    }
    await app.page.getByRole("button", { name: "Try again" }).click();
    await app.page.getByRole("navigation", { name: "Console" }).waitFor();
  }, 120_000);

  it("leaves out a filter value the address holds that is no option, as its select shows it", async () => {
    const all = await admin<{ customers: Listed[] }>("/v1/admin/customers?sort=-clvAtStake&limit=25");
    await app.page.goto(`${app.worker.url}/console/customers?stage=bogus&valueTier=TOP`);
    await expect.poll(() => listedIds().allTextContents()).toEqual(all.customers.map((row) => row.customerId));
    expect(await app.page.getByLabel("Stage", { exact: true }).inputValue()).toBe("");
    expect(await app.page.getByText("Invalid option").count()).toBe(0);
  });

  it("says a one-time buyer has no rhythm yet instead of figures from all customers' interval", async () => {
    const fresh = await admin<{ customers: Listed[] }>("/v1/admin/customers?stage=new&sort=-clvAtStake&limit=25");
    const oneOrder = fresh.customers.filter((row) => row.purchaseDays === 1);
    expect(oneOrder.length).toBeGreaterThan(0);
    await app.page.goto(`${app.worker.url}/console/customers?stage=new`);
    await expect.poll(() => listedIds().allTextContents()).toEqual(fresh.customers.map((row) => row.customerId));
    const table = app.page.getByRole("table").filter({ hasText: "CLV at stake" });
    const headers = await table.locator("thead th").allTextContents();
    for (const row of oneOrder) {
      const cells = table.locator("tbody tr").filter({ has: app.page.getByRole("link", { name: row.customerId }) });
      const texts = await cells.locator("td").allTextContents();
      expect(texts[headers.indexOf("Overdue ratio")]).toBe("one order");
      expect(texts[headers.indexOf("Next order due")]).toBe("no date from one order");
      expect(texts[headers.indexOf("Stage")]).toBe("new");
    }
    // A fading one-time buyer's P(alive) stays high: the stage says what it goes by instead.
    const fading = await admin<{ customers: Listed[] }>("/v1/admin/customers?stage=fading&sort=-clvAtStake&limit=25");
    const fadingOnce = fading.customers.filter((row) => row.purchaseDays === 1);
    expect(fadingOnce.length).toBeGreaterThan(0);
    await app.page.goto(`${app.worker.url}/console/customers?stage=fading`);
    await expect.poll(() => listedIds().allTextContents()).toEqual(fading.customers.map((row) => row.customerId));
    for (const row of fading.customers) {
      const cells = table.locator("tbody tr").filter({ has: app.page.getByRole("link", { name: row.customerId }) });
      expect((await cells.locator("td").allTextContents())[headers.indexOf("Stage")]).toBe(
        row.purchaseDays === 1 ? "fading by time since their one order" : "fading",
      );
    }
  }, 120_000);

  it("keeps the customer list readable on a tablet and a phone: rows as on a desktop, the table scrolling in its box, the page links in a row", async () => {
    await app.page.goto(`${app.worker.url}/console/customers?stage=fading`);
    const table = app.page.getByRole("table").filter({ hasText: "CLV at stake" });
    await table.locator("tbody tr").first().waitFor();
    let desktopRow = 0;
    try {
      for (const width of [1280, 800, 360]) {
        await app.page.setViewportSize({ width, height: 900 });
        const measured = await table.evaluate((list) => {
          const box = list.closest(".table-wrap") as HTMLElement;
          return {
            // Squeezed to a tablet's width, an offer wrapped word by word: nine lines, a row 200 px tall.
            tallestRow: Math.max(
              ...[...list.querySelectorAll("tbody tr")].map((row) => row.getBoundingClientRect().height),
            ),
            scrollsInItsBox: box.scrollWidth > box.clientWidth,
            pageWidth: document.documentElement.scrollWidth,
            // The rows the header's page links stand on.
            linkRows: new Set(
              [...document.querySelectorAll("nav[aria-label='Console'] a")].map((link) =>
                Math.round(link.getBoundingClientRect().top),
              ),
            ).size,
          };
        });
        expect(measured.pageWidth, `${width} px`).toBeLessThanOrEqual(width);
        expect(measured.linkRows, `${width} px`).toBeLessThanOrEqual(width === 1280 ? 1 : 2);
        if (width === 1280) {
          desktopRow = measured.tallestRow;
          continue;
        }
        expect(measured.tallestRow, `${width} px`).toBeLessThanOrEqual(desktopRow);
        expect(measured.scrollsInItsBox, `${width} px`).toBe(true);
        await screenshot(`customers-${width}`);
      }
    } finally {
      await app.page.setViewportSize({ width: 1280, height: 900 });
    }
  }, 120_000);

  it("finds a lapsing category's id from its name typed in the field", async () => {
    // A category the catalog names apart from its id ("Jewellery" for jewellery, say).
    const { targets } = await admin<{ targets: { id: string; name: string }[] }>(
      "/v1/admin/rules/targets?type=category&q=e&limit=20",
    );
    const named = targets.find((target) => target.name !== target.id);
    expect(named).toBeDefined();
    const { id, name } = named as { id: string; name: string };
    await app.page.goto(`${app.worker.url}/console/customers`);
    await app.page.getByLabel("Lapsing in category (id)").fill(name);
    await app.page.getByRole("button", { name: `${name} (${id})` }).click();
    await app.page.waitForURL(new RegExp(`lapsedCategory=${encodeURIComponent(id)}(&|$)`));
    expect(await app.page.getByLabel("Lapsing in category (id)").inputValue()).toBe(id);
    // The id is the catalog's now: nothing more to offer.
    await app.page.getByRole("button", { name: `${name} (${id})` }).waitFor({ state: "detached" });
  }, 120_000);

  it("exports the filtered list as CSV with the session cookie alone", async () => {
    await openFromNav("Customers");
    await app.page.getByLabel("Tier", { exact: true }).selectOption("top");
    const expected: string[] = [];
    for (let cursor: string | null = null, first = true; first || cursor; first = false) {
      const listed: { customers: Listed[]; next: string | null } = await admin(
        `/v1/admin/customers?valueTier=top&sort=-clvAtStake&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      );
      expected.push(...listed.customers.map((row) => row.customerId));
      cursor = listed.next;
    }
    expect(expected.length).toBeGreaterThan(0);
    const link = app.page.getByRole("link", { name: "Export CSV" });
    expect(await link.getAttribute("href")).toBe("/v1/admin/customers?valueTier=top&sort=-clvAtStake&format=csv");
    // This deployment enables no match keys (EXPORT_MATCH_KEYS unset): the page says what the CSV lacks.
    expect(await app.page.locator(`#${await link.getAttribute("aria-describedby")}`).textContent()).toContain(
      "The CSV names customers by Patron's id only",
    );
    const [download] = await Promise.all([app.page.waitForEvent("download"), link.click()]);
    const csv = readFileSync((await download.path()) as string, "utf8");
    const lines = csv.split("\r\n").filter((line) => line !== "");
    expect(lines[0]).toBe(
      "customerId,stage,valueTier,discountSensitivity,overdueRatio,probabilityAlive,clv12,clv24,clvAtStake,expectedNextOrderAt,offer,offerGuidance,purchaseDays",
    );
    expect(lines.slice(1).map((line) => line.split(",")[0])).toEqual(expected);
    expect(lines.slice(1).every((line) => line.split(",")[2] === "top")).toBe(true);
    expect(app.errors).toEqual([]);
    // A match key the page was told of (at its session check) but the deployment no longer enables: the
    // API's refusal is said on the page, and nothing downloads.
    const session = "**/v1/admin/session";
    await app.page.route(session, async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { data: { matchKeys: string[] } };
      body.data.matchKeys = ["email_sha256"];
      await route.fulfill({ response, json: body });
    });
    let downloads = 0;
    app.page.on("download", () => downloads++);
    try {
      await app.page.reload();
      await expect
        .poll(() => link.getAttribute("href"))
        .toBe("/v1/admin/customers?valueTier=top&sort=-clvAtStake&format=csv&matchKeys=email_sha256");
      await link.click();
      await app.page
        .getByText("email_sha256 is not enabled on this deployment (EXPORT_MATCH_KEYS)", { exact: true })
        .waitFor();
      expect(downloads).toBe(0);
    } finally {
      await app.page.unroute(session);
    }
    await app.page.reload();
    await expect
      .poll(() => link.getAttribute("href"))
      .toBe("/v1/admin/customers?valueTier=top&sort=-clvAtStake&format=csv");
    await expect.poll(() => listedIds().allTextContents()).toEqual(expected.slice(0, 25));
    await app.page.getByText("Loading the customers for these filters…").waitFor({ state: "detached" });
    // With the session gone, the export says so (the sign-in form) instead of a download that fails.
    await app.context.clearCookies();
    await link.click();
    await app.page.getByRole("heading", { name: "Your session ended" }).waitFor();
    expect(downloads).toBe(0);
  }, 120_000);
});
