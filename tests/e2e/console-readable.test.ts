// The customer page read by a person, in real Chromium against `wrangler dev` with the seeded demo
// retailer and one nightly run: the worker's RETAILER_TIME_ZONE is Asia/Tokyo and the browser is in Los
// Angeles, and every date and time on the page (the order timeline, "orders since", the stage changes,
// the charts' axis and tooltips) is on Tokyo's clock, the page saying so. The heading names the customer by
// the masked identifiers they hold, orders list product titles, categories their names, and the figures'
// words are explained on the page. Screenshots go to tests/artifacts/; any CSP violation or page error fails.
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { timeTicks } from "../../console/src/time-ticks.ts";
import type { CustomerHistoryResponse, CustomerResponse } from "../../worker/customers/customers.schemas.ts";
import { testSecrets } from "../fixtures/wrangler-dev.ts";
import { artifactsDir } from "../widget/harness.ts";
import { demoCustomers, signIn, useConsole } from "./console-browser.ts";

const retailerZone = "Asia/Tokyo";
const browserZone = "America/Los_Angeles";

let customer: CustomerResponse["data"];
let history: CustomerHistoryResponse["data"];

/** A date and time as the page should write it: on Tokyo's clock, with the zone's short name. */
const tokyoTime = (iso: string) =>
  `${new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: retailerZone })} GMT+9`;
const tokyoDay = (iso: string | number) =>
  new Date(iso).toLocaleDateString("en-GB", { dateStyle: "medium", timeZone: retailerZone });

async function admin<T>(pathAndQuery: string, method = "GET"): Promise<T> {
  const response = await fetch(`${app.worker.url}${pathAndQuery}`, {
    method,
    headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
  });
  expect(response.status, pathAndQuery).toBe(200);
  return ((await response.json()) as { data: T }).data;
}

const app = useConsole({
  prefix: "console-readable",
  browser: { viewport: { width: 1280, height: 900 }, timezoneId: browserZone },
  worker: { vars: { RETAILER_TIME_ZONE: retailerZone } },
  async seed(worker) {
    await demoCustomers(40)(worker);
    // One category bought on one day only, a week ago: it has no rhythm of its own.
    const gift = {
      id: "readable-gift-card",
      channel: "store",
      storeId: "store-1",
      placedAt: new Date(Date.now() - 7 * 86_400_000).toISOString(),
      currency: "USD",
      identifiers: { loyalty: "LY-DEMO-0003" },
      lines: [{ productId: "gift-card-25", categoryId: "gift-cards", quantity: 1, unitPrice: 25, listPrice: 25 }],
      recommendationId: null,
    };
    const posted = await fetch(`${worker.url}/v1/orders`, {
      method: "POST",
      headers: { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ orders: [gift] }),
    });
    expect(posted.status, await posted.clone().text()).toBe(200);
    expect((await admin<{ status: string }>("/v1/admin/jobs/nightly?wait=1", "POST")).status).toBe("done");
    const found = await admin<CustomerResponse["data"]>("/v1/customers/lookup?kind=loyalty&value=LY-DEMO-0003");
    customer = await admin(`/v1/customers/${encodeURIComponent(found.customerId)}`);
    history = await admin(`/v1/customers/${encodeURIComponent(found.customerId)}/history`);
  },
  timeoutMs: 600_000,
});

// Signed in on that customer's page, read once it is drawn.
beforeAll(async () => {
  await signIn(app.page, `${app.worker.url}/console/customers/${encodeURIComponent(customer.customerId)}`);
  await app.page.getByRole("list", { name: "Order timeline, most recent first" }).waitFor();
});

describe("the customer page, read by a person", () => {
  it("runs Chromium in Los Angeles, on a customer with a history to read", async () => {
    expect(await app.page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone)).toBe(browserZone);
    expect(customer.orders.length).toBeGreaterThan(3);
    expect(history.points.length).toBeGreaterThan(10);
  });

  it("shows every date and time on the retailer's clock, and says which", async () => {
    const timeline = app.page.getByRole("list", { name: "Order timeline, most recent first" });
    expect(await timeline.locator(".when").allTextContents()).toEqual(
      customer.orders.map((o) => tokyoTime(o.placedAt)),
    );
    const spend = app.page.locator(".tile").filter({ hasText: "Lifetime spend" });
    expect(await spend.textContent()).toContain(`since ${tokyoDay(customer.summary!.firstOrderAt)}`);
    // The stage changes in words: each on the Tokyo date of the instant it happened.
    const changes = history.points.filter(
      (point, index) => index === 0 || history.points[index - 1]?.stage !== point.stage,
    );
    // The history is drawn after the orders (a request of its own): wait for its list.
    const stageChanges = app.page.locator(".stage-changes li");
    await expect.poll(() => stageChanges.count()).toBe(changes.length);
    const items = await stageChanges.allTextContents();
    expect(items).toHaveLength(changes.length);
    changes.forEach((point, index) => {
      expect(items[index]).toContain(`${point.stage} from ${tokyoDay(point.at)}`);
      // While they had one order the stage went by the days since it: P(alive) (always 100% then) is not the why.
      expect(items[index]).toContain(
        point.stageReason.startsWith("one_time_") ? "after their one order)" : "(P(alive) ",
      );
    });
    expect(changes[0]?.stageReason).toMatch(/^one_time_/); // the history starts at their first order
    await app.page.getByText(`Times in ${retailerZone}, the retailer's time zone.`).waitFor();
    await app.page.screenshot({ path: path.join(artifactsDir, "console-readable-zone.png"), fullPage: true });
  }, 120_000);

  it("draws the charts' axis and tooltips on the retailer's clock", async () => {
    const alive = app.page.getByRole("img", { name: "P(alive) over time" });
    await alive.waitFor();
    const titles = await alive.locator(".series-a circle title").allTextContents();
    expect(titles).toHaveLength(history.points.length);
    history.points.forEach((point, index) => {
      expect(titles[index]).toMatch(new RegExp(`^P\\(alive\\), ${tokyoDay(point.at)}: `));
    });
    const marks = await alive.locator("line.chart-mark title").allTextContents();
    expect(marks.length).toBeGreaterThan(0);
    for (const mark of marks) expect(mark).toMatch(/^(Web|Store) order, \d{1,2} \w{3,4} \d{4}$/);
    expect(new Set(marks.map((mark) => mark.split(", ")[1]))).toEqual(
      new Set(
        customer.orders
          .filter((order) => Date.parse(order.placedAt) >= Date.parse(history.points[0]!.at))
          .map((order) => tokyoDay(order.placedAt)),
      ),
    );
    // Each axis label sits where Tokyo's calendar puts it (a UTC midnight is 9 hours off).
    const from = Date.parse(history.points[0]!.at);
    const to = Date.parse(history.points.at(-1)!.at);
    const expected = new Map(timeTicks(from, to, 5, retailerZone).map((tick) => [tick.label, tick.at]));
    const drawn = await alive.evaluate((svg) => ({
      width: Number(svg.getAttribute("viewBox")?.split(" ")[2]),
      ticks: [...svg.querySelectorAll("g")]
        .map((group) => ({ line: group.querySelector("line.chart-grid"), text: group.querySelector("text") }))
        .filter(({ line, text }) => line && text && line.getAttribute("x1") === line.getAttribute("x2"))
        .map(({ line, text }) => ({ x: Number(line!.getAttribute("x1")), label: text!.textContent ?? "" })),
    }));
    expect(drawn.ticks.length).toBeGreaterThan(1);
    for (const tick of drawn.ticks) {
      const at = expected.get(tick.label);
      expect(at, tick.label).toBeDefined();
      expect(tick.x, tick.label).toBeCloseTo(64 + ((at! - from) / (to - from)) * (drawn.width - 64 - 16), 2);
    }
  }, 120_000);

  it("names the customer by the identifiers they hold, with the id smaller", async () => {
    const heading = app.page.getByRole("heading", { level: 1 });
    const loyalty = customer.identities.find(
      (identity) => identity.kind === "loyalty" && identity.trust === "verified",
    );
    const email = customer.identities.find((identity) => identity.kind === "email" && identity.trust === "verified");
    expect(loyalty).toBeDefined();
    const name = [email?.masked, `loyalty ${loyalty!.masked}`].filter(Boolean).join(" · ");
    expect(await heading.textContent()).toBe(`${name} Customer ${customer.customerId}`);
    const idSize = await heading
      .locator(".heading-id")
      .evaluate((span) => Number.parseFloat(getComputedStyle(span).fontSize));
    const headingSize = await heading.evaluate((h1) => Number.parseFloat(getComputedStyle(h1).fontSize));
    expect(idSize).toBeLessThan(headingSize);
  });

  it("lists what they bought by product title and category name, where the catalog has them", async () => {
    const titled = customer.orders.flatMap((order) => order.lines).filter((line) => line.productTitle !== null);
    expect(titled.length).toBeGreaterThan(0);
    const whats = await app.page.locator(".timeline .what").allTextContents();
    customer.orders.forEach((order, index) => {
      for (const line of order.lines)
        expect(whats[index]).toContain(`${line.quantity}× ${line.productTitle ?? line.productId}`);
    });
    const affinities = app.page.getByRole("heading", { name: "Category affinities" }).locator("xpath=..");
    // Spend in the shop's currency, named in the column's heading as every table of amounts has it.
    expect(await affinities.locator("thead th").allTextContents()).toEqual([
      "Category",
      "Orders",
      "Spend (USD)",
      "Price band",
      "Lapse",
    ]);
    const categories = affinities.locator("tbody tr");
    const shown = await categories.evaluateAll((rows) => rows.map((row) => row.querySelector("td")?.textContent));
    const named = customer.summary!.categories.filter((category) => category.categoryName);
    expect(named.length).toBeGreaterThan(0);
    for (const category of named) {
      expect(category.categoryName).not.toBe(category.categoryId);
      expect(shown).toContain(category.categoryName);
      expect(shown).not.toContain(category.categoryId);
    }
    // A category bought on one day has no rhythm of its own: no overdue ratio (it would be everyone's).
    const lapse = await categories.evaluateAll((rows) =>
      Object.fromEntries(rows.map((row) => [row.querySelector("td")?.textContent, row.lastElementChild?.textContent])),
    );
    const days = customer.summary!.categories.map(
      (category) => [category.categoryName ?? category.categoryId, category.purchaseDays] as const,
    );
    expect(days.some(([, n]) => n === 1)).toBe(true);
    expect(days.some(([, n]) => n > 1)).toBe(true);
    for (const [name, n] of days)
      if (n === 1) expect(lapse[name]).toBe("bought on one day: no rhythm of its own");
      else expect(lapse[name]).not.toContain("one day");
  });

  it("explains P(alive), the overdue ratio, the stage's reasons and the shelf's arm in words on the page", async () => {
    const terms = app.page.locator("details.terms");
    await terms.locator("summary", { hasText: "What these mean" }).click();
    for (const term of ["P(alive)", "Overdue ratio", "Stage"]) await terms.getByText(term, { exact: true }).waitFor();
    await terms.getByText(/"slipping"/).waitFor();
    await app.page
      .getByText(/P\(alive\): the chance they are still buying; overdue ratio: days since the last order/)
      .waitFor();
    const arm = app.page.getByText(/^Experiment arm: personalized\. They get the personalized shelf/);
    await arm.waitFor();
    await app.page.screenshot({ path: path.join(artifactsDir, "console-readable-terms.png"), fullPage: true });
    expect(app.errors).toEqual([]);
  }, 120_000);
});
