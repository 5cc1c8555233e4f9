// The console's customer 360 and the Overview's CLV distribution in real Chromium against `wrangler dev`
// with the seeded demo retailer and one nightly run: the Overview draws (and tables) the API's CLV histogram; a demo
// customer looked up by loyalty number (typed with en dashes) shows web and store orders on one
// timeline, P(alive) and cadence over time drawn and tabled from the API's history (order dates marked,
// fading and lapsed lines), the next order of a fading customer as holding only if they still buy, and "what this
// shopper sees now" rendered by the widget's own shelf with the items and reasons GET /v1/recommendations
// gives that shopper, sending no event; on a 390 px phone the page has nothing wider than its box but the
// shelf's row, and its charts (and the Overview's) are drawn at the phone's width, their text at least
// 10 px. Screenshots go to tests/artifacts/; any CSP violation or page error fails.
import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { day, money, percent, ratio } from "../../console/src/api.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { testSecrets } from "../fixtures/wrangler-dev.ts";
import { artifactsDir } from "../widget/harness.ts";
import { chartFigures, demoCustomers, holdBack, signIn, useConsole } from "./console-browser.ts";

const root = path.resolve(import.meta.dirname, "../..");
const app = useConsole({
  prefix: "console-360",
  browser: { viewport: { width: 1280, height: 900 } },
  seed: demoCustomers(80),
  timeoutMs: 240_000,
});
/** Requests the console made to the events route: a preview must send none. */
const eventRequests: string[] = [];

interface HistoryPoint {
  at: string;
  kind: string;
  probabilityAlive: number;
  expectedIntervalDays: number;
  daysSinceLast: number;
  overdueRatio: number;
  stage: string;
}
interface History {
  points: HistoryPoint[];
  thresholds: { fadingBelowProbabilityAlive: number; lapsedBelowProbabilityAlive: number };
}
interface ShelfItem {
  id: string;
  title: string;
  reason: string;
}
interface Customer {
  customerId: string;
  orders: { placedAt: string; channel: string }[];
  profile: { stage: string; cadence: { nextExpectedAt: string | null } } | null;
}

async function screenshot(name: string) {
  await app.page.screenshot({ path: path.join(artifactsDir, `console-360-${name}.png`), fullPage: true });
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

/**
 * What keeps the page's charts from being read on screen: a text drawn under 10 CSS px (its font size
 * times the scale the SVG is drawn at) or running past its chart's edges, a chart wider than its box
 * (or narrower than it, leaving it half empty).
 */
async function chartProblems(): Promise<string[]> {
  return app.page.evaluate(() =>
    [...document.querySelectorAll<SVGSVGElement>(".chart svg")].flatMap((svg) => {
      const name = svg.getAttribute("aria-label");
      const figure = svg.closest(".chart") as HTMLElement;
      const box = svg.getBoundingClientRect();
      const texts = [...svg.querySelectorAll("text")].filter((text) => text.textContent);
      const problems = texts.length ? [] : [`${name}: no text`];
      if (figure.scrollWidth > figure.clientWidth + 1 || box.right > figure.getBoundingClientRect().right + 1)
        problems.push(`${name}: wider than its box`);
      // Nor narrower than its card's content, leaving the card's right side empty.
      const padding = Number.parseFloat(getComputedStyle(figure).paddingLeft) * 2;
      if (box.width < figure.clientWidth - padding - 2) problems.push(`${name}: narrower than its card`);
      for (const text of texts) {
        const matrix = text.getScreenCTM();
        const px = Number.parseFloat(getComputedStyle(text).fontSize) * (matrix ? Math.hypot(matrix.a, matrix.b) : 0);
        const own = text.getBoundingClientRect();
        if (px < 10) problems.push(`${name}: "${text.textContent}" at ${px.toFixed(1)} px`);
        if (own.left < box.left - 1 || own.right > box.right + 1)
          problems.push(`${name}: "${text.textContent}" past the chart's edge`);
      }
      // Labels on one line (the time axis) drawn over one another.
      const boxes = texts.map((text) => ({ text: text.textContent, box: text.getBoundingClientRect() }));
      for (const [i, a] of boxes.entries())
        for (const b of boxes.slice(i + 1))
          if (
            Math.abs(a.box.top - b.box.top) < 1 &&
            a.box.left < b.box.right - 1 &&
            b.box.left < a.box.right - 1 &&
            a.box.width > 0 &&
            b.box.width > 0
          )
            problems.push(`${name}: "${a.text}" over "${b.text}"`);
      return problems;
    }),
  );
}

/** Starts the nightly job with the Overview's button and waits for the CLV chart it fills. */
async function runNightlyFromOverview() {
  const chart = app.page.getByRole("img", { name: "Customers by 12-month CLV" });
  await app.page.getByRole("heading", { name: "No customer has been scored yet" }).waitFor();
  await app.page.getByRole("button", { name: "Run the nightly job" }).click();
  await chart.waitFor({ timeout: 240_000 });
  return chart;
}

// Requests to the events route are noted from before signing in.
beforeAll(async () => {
  app.page.on("request", (request) => {
    if (new URL(request.url()).pathname.startsWith("/v1/events")) eventRequests.push(request.url());
  });
  await signIn(app.page, `${app.worker.url}/console`);
});

describe("console customer 360", () => {
  it("runs the nightly job from the Overview, then draws the API's CLV distribution with its caption", async () => {
    const chart = await runNightlyFromOverview();
    const distribution = await admin<{ customers: number; buckets: { customers: number; clv12: number }[] }>(
      "/v1/admin/insights/clv-distribution",
    );
    expect(distribution.customers).toBeGreaterThan(0);
    expect(distribution.buckets.length).toBeGreaterThan(1);
    const bars = chart.locator(".histogram-bar");
    await expect.poll(() => bars.count()).toBe(distribution.buckets.length);
    const heights = await chart
      .locator("rect.chart-bar")
      .evaluateAll((rects) => rects.map((rect) => Number(rect.getAttribute("height"))));
    // Each bar is as tall as its bucket is full, relative to the fullest.
    const fullest = Math.max(...distribution.buckets.map((bucket) => bucket.customers));
    const tallest = Math.max(...heights);
    distribution.buckets.forEach((bucket, index) => {
      expect(heights[index], `bucket ${index}`).toBeCloseTo((bucket.customers / fullest) * tallest, 0);
    });
    // The axis is labelled at the buckets' edges, each label clear of the next; every bucket in full in its title.
    const labels = await chart.locator(".chart-label").evaluateAll((texts) =>
      texts.map((text) => {
        const box = text.getBoundingClientRect();
        return { text: text.textContent, left: box.left, right: box.right };
      }),
    );
    expect(labels.length).toBeGreaterThan(1);
    for (const [index, label] of labels.entries()) {
      expect(label.text, `label ${index}`).toMatch(/^\d+(\.\d)?[KM]?$/);
      if (index > 0)
        expect(label.left, `${labels[index - 1]!.text} and ${label.text}`).toBeGreaterThan(labels[index - 1]!.right);
    }
    const titles = await chart.locator(".histogram-bar > title").allTextContents();
    expect(titles).toHaveLength(distribution.buckets.length);
    for (const title of titles.slice(1, -1)) expect(title).toMatch(/^\d+(\.\d)?[KM]?–\d+(\.\d)?[KM]?: /);
    // Its figures as a table under it, for a screen reader (which reads the chart by its name alone): a
    // row per bucket, named as its bar's tooltip names it, with the API's customers and CLV.
    expect(await chartFigures(chart)).toEqual(
      distribution.buckets.map((bucket, index) => [
        titles[index]?.split(": ")[0],
        bucket.customers.toLocaleString("en-US"),
        `${money(bucket.clv12)} of CLV`,
      ]),
    );
    await app.page
      .getByText(`${distribution.customers.toLocaleString("en-US")} scored customers by their expected spend`)
      .waitFor();
    await screenshot("overview-clv");
  }, 900_000);

  it("looks a demo customer up by loyalty number: web and store orders on one timeline, and their history drawn", async () => {
    await openFromNav("Customers");
    await app.page.getByLabel("Identifier").selectOption("loyalty");
    // Typed as a phone keyboard types it (en dashes, lower case): the same card as LY-DEMO-0003.
    await app.page.getByLabel("Value").fill("ly–demo–0003");
    await app.page.getByRole("button", { name: "Look up" }).click();
    await app.page.waitForURL(/\/console\/customers\/c_/);
    const customerId = decodeURIComponent(new URL(app.page.url()).pathname.split("/").at(-1) as string);
    const customer = await admin<Customer>(`/v1/customers/${encodeURIComponent(customerId)}`);
    const timeline = app.page.getByRole("list", { name: "Order timeline, most recent first" });
    await timeline.waitFor();
    expect(new Set(await timeline.locator(".badge.channel").allTextContents())).toEqual(new Set(["Web", "Store"]));

    const history = await admin<History>(`/v1/customers/${encodeURIComponent(customerId)}/history`);
    expect(history.points.length).toBeGreaterThan(10);
    const alive = app.page.getByRole("img", { name: "P(alive) over time" });
    await alive.waitFor();
    // One point per date the API scored, the fading and lapsed lines, and a mark per order, web and store.
    expect(await alive.locator(".series-a circle").count()).toBe(history.points.length);
    const titles = await alive.locator(".series-a circle title").allTextContents();
    history.points.forEach((point, index) => {
      expect(titles[index], point.at).toContain(percent(point.probabilityAlive));
    });
    expect(await alive.locator("line.chart-threshold").count()).toBe(2);
    // The same points as a table, for a screen reader: a row per date the API scored, its P(alive) with
    // the stage it gave and why the date is there.
    const kindNotes: Record<string, string> = {
      before_order: ", just before an order",
      order: ", just after an order",
      now: ", now",
      stage: ", when the stage changed",
    };
    expect(await chartFigures(alive)).toEqual(
      history.points.map((point) => [
        day(point.at),
        `${percent(point.probabilityAlive)} (${point.stage}${kindNotes[point.kind] ?? ""})`,
      ]),
    );
    const from = Date.parse(history.points[0]!.at);
    const charted = customer.orders.filter((order) => Date.parse(order.placedAt) >= from);
    expect(await alive.locator("line.chart-mark").count()).toBe(charted.length);
    expect(await alive.locator("line.mark-web").count()).toBe(charted.filter((o) => o.channel === "web").length);
    expect(await alive.locator("line.mark-store").count()).toBe(charted.filter((o) => o.channel === "store").length);
    expect(await alive.locator("line.mark-store").count()).toBeGreaterThan(0);
    // Order marks are told apart from every line they sit under, in light and dark mode.
    const strokes = (chart: typeof alive, selector: string) =>
      chart.locator(selector).evaluateAll((lines) => [...new Set(lines.map((line) => getComputedStyle(line).stroke))]);
    for (const colorScheme of ["light", "dark"] as const) {
      await app.page.emulateMedia({ colorScheme });
      const markColours = [...(await strokes(alive, "line.mark-web")), ...(await strokes(alive, "line.mark-store"))];
      expect(new Set(markColours).size, colorScheme).toBe(2);
      // Each channel in one colour: its marks and their legend's swatch are its badge's on the timeline.
      for (const [channel, name] of [
        ["web", "Web"],
        ["store", "Store"],
      ]) {
        const badge = await timeline
          .locator(`.badge.channel.${channel}`)
          .first()
          .evaluate((element) => getComputedStyle(element).color);
        expect(await strokes(alive, `line.mark-${channel}`), `${name}, ${colorScheme}`).toEqual([badge]);
        const swatch = app.page.locator("figure").filter({ has: alive }).locator(`.legend .swatch.mark-${channel}`);
        expect(
          await swatch.evaluate((element) => getComputedStyle(element).backgroundColor),
          `${name}'s swatch, ${colorScheme}`,
        ).toBe(badge);
      }
      for (const chart of [alive, app.page.getByRole("img", { name: "Cadence over time" })]) {
        const lineColours = [
          ...(await strokes(chart, "path.chart-line")),
          ...(await strokes(chart, "line.chart-threshold")),
        ];
        expect(lineColours.length, colorScheme).toBeGreaterThan(0);
        for (const colour of markColours) expect(lineColours, colorScheme).not.toContain(colour);
      }
    }
    await app.page.emulateMedia({ colorScheme: null });
    const cadence = app.page.getByRole("img", { name: "Cadence over time" });
    expect(await cadence.locator("path.chart-line").count()).toBe(2);
    expect(await cadence.locator(".series-c circle").count()).toBe(history.points.length);
    expect(await chartFigures(cadence)).toEqual(
      history.points.map((point) => [
        day(point.at),
        `${Math.round(point.expectedIntervalDays)} d`,
        `${Math.round(point.daysSinceLast)} d (overdue ratio ${ratio(point.overdueRatio)})`,
      ]),
    );
    // The stage changes in words end at the stage the customer has today.
    const stages = await app.page.locator(".stage-changes .badge").allTextContents();
    expect(stages.at(-1)).toBe(history.points.at(-1)?.stage);
    expect(stages.at(-1)).toBe(customer.profile?.stage);
    // The demo's fading regular may have stopped: their next order's date is said to hold only if they have not.
    expect(customer.profile?.stage).toBe("fading");
    const next = app.page.locator(".tile").filter({ has: app.page.getByText("Next order expected", { exact: true }) });
    expect(await next.locator("dd.figure").textContent()).toBe(
      `if still buying: around ${day(customer.profile?.cadence.nextExpectedAt)}`,
    );
    await screenshot("customer-history");
  }, 120_000);

  it("shows what the shopper sees now with the widget's own shelf: the items and reasons the storefront gets", async () => {
    const customerId = decodeURIComponent(new URL(app.page.url()).pathname.split("/").at(-1) as string);
    const token = await signShopperToken("demo-fading", testSecrets.SHOPPER_TOKEN_SECRET, 3600, new Date());
    const storefront = await fetch(`${app.worker.url}/v1/recommendations?limit=8`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(storefront.status).toBe(200);
    const served = ((await storefront.json()) as { data: { customerKnown: boolean; items: ShelfItem[] } }).data;
    expect(served.customerKnown).toBe(true);
    expect(served.items.length).toBeGreaterThan(0);
    const seen = await admin<{ items: ShelfItem[] }>(`/v1/customers/${encodeURIComponent(customerId)}/shelf?limit=8`);
    expect(seen.items.map((item) => item.id)).toEqual(served.items.map((item) => item.id));

    const section = app.page.getByRole("region", { name: "What this shopper sees now" });
    await section.scrollIntoViewIfNeeded();
    // The widget's markup, inside its shadow root: a card per item, its title and its reason.
    const cards = section.locator(".shelf-preview li a");
    await expect.poll(() => cards.count()).toBe(served.items.length);
    expect(await section.locator(".shelf-preview h2").textContent()).toBe("Picked for you");
    expect(await section.locator(".shelf-preview li b").allTextContents()).toEqual(
      served.items.map((item) => item.title),
    );
    expect(await section.locator(".shelf-preview li p").allTextContents()).toEqual(
      served.items.map((item) => item.reason),
    );
    // Styled by the widget's own stylesheet (adopted by the shadow root): one row of fixed-width cards.
    expect(await section.locator(".shelf-preview ul").evaluate((list) => getComputedStyle(list).gridAutoFlow)).toBe(
      "column",
    );
    expect(
      await section.getByRole("list", { name: "Items and their reasons" }).locator(".reason").allTextContents(),
    ).toEqual(served.items.map((item) => item.reason));
    await screenshot("customer-sees-now");
    // A preview is not a shopper seeing the shelf: the console bundle has no beacon, and sent no event.
    const bundle = readFileSync(path.join(root, "dist/public/console/assets/console.js"), "utf8");
    expect(bundle).not.toContain("sendBeacon");
    expect(eventRequests).toEqual([]);
    expect(app.errors).toEqual([]);
  }, 120_000);

  it("fits the customer page on 390 and 360 px phones: nothing scrolls sideways but the shelf's row and tables in their boxes", async () => {
    try {
      for (const width of [390, 360]) {
        await app.page.setViewportSize({ width, height: 844 });
        await app.page.getByRole("img", { name: "P(alive) over time" }).waitFor();
        const measured = await app.page.evaluate(() => ({
          scrollWidth: document.documentElement.scrollWidth,
          // Content wider than its box (a long id in the heading): on a phone whose font runs a little
          // wider, that is what pushes the page sideways. A table scrolls in its own box (.table-wrap),
          // which the keyboard can focus to scroll.
          wider: [...document.querySelectorAll("main *:not(svg *)")]
            .filter(
              (element) =>
                !element.closest(".shelf-preview") &&
                !element.closest(".table-wrap") &&
                element.scrollWidth > element.clientWidth + 1,
            )
            .map((element) => `${element.tagName.toLowerCase()} ${element.textContent?.slice(0, 40)}`),
          // What reaches past the screen's right edge, outside a box that scrolls.
          past: [...document.querySelectorAll("main *")]
            .filter(
              (element) =>
                !element.closest(".shelf-preview") &&
                !element.closest(".table-wrap") &&
                !element.closest("svg") &&
                element.getBoundingClientRect().right > window.innerWidth + 0.5,
            )
            .map(
              (element) => `${element.tagName.toLowerCase()}.${element.className} ${element.textContent?.slice(0, 30)}`,
            )
            .slice(0, 8),
          unreachable: [...document.querySelectorAll<HTMLElement>("main .table-wrap")]
            .filter((element) => element.scrollWidth > element.clientWidth + 1 && element.tabIndex < 0)
            .map((element) => element.getAttribute("aria-label")),
        }));
        expect(measured.past, `${width} px`).toEqual([]);
        expect(measured.scrollWidth, `${width} px`).toBeLessThanOrEqual(width);
        expect(measured.wider, `${width} px`).toEqual([]);
        expect(measured.unreachable, `${width} px`).toEqual([]);
        await expect.poll(chartProblems, { timeout: 10_000 }).toEqual([]);
        await screenshot(`customer-phone-${width}`);
      }
    } finally {
      await app.page.setViewportSize({ width: 1280, height: 900 });
    }
  }, 120_000);

  it("draws the charts for a 390 px phone: their text at 10 px or more, inside the chart, nothing scrolling sideways; on a desktop, across their cards", async () => {
    // An error on window that is not a page error, e.g. "ResizeObserver loop completed with undelivered notifications".
    await app.page.evaluate(() =>
      window.addEventListener("error", (event) => {
        document.body.dataset.windowError = event.message;
      }),
    );
    await app.page.setViewportSize({ width: 390, height: 844 });
    try {
      await app.page.getByRole("img", { name: "P(alive) over time" }).waitFor();
      await expect.poll(chartProblems, { timeout: 10_000 }).toEqual([]);
      await screenshot("customer-phone-charts");
      await openFromNav("Overview");
      await app.page.getByRole("img", { name: "Customers by 12-month CLV" }).waitFor();
      await expect.poll(chartProblems, { timeout: 10_000 }).toEqual([]);
      await screenshot("overview-phone");
      // At a desktop's width they fill their cards, as tall as at 760 px.
      await app.page.setViewportSize({ width: 1280, height: 900 });
      await expect.poll(chartProblems, { timeout: 10_000 }).toEqual([]);
      // Laid out again a frame after the resize (useWidth): until then the phone's picture is scaled up.
      const chart = app.page.getByRole("img", { name: "Customers by 12-month CLV" });
      await expect.poll(async () => (await chart.boundingBox())?.height, { timeout: 10_000 }).toBeLessThanOrEqual(260);
      expect((await chart.boundingBox())?.width).toBeGreaterThan(900);
      expect(await app.page.evaluate(() => document.body.dataset.windowError)).toBeUndefined();
    } finally {
      await app.page.setViewportSize({ width: 1280, height: 900 });
    }
  }, 120_000);

  it("looks an account up as typed: padding dropped, but not a space of another kind before the id", async () => {
    await openFromNav("Customers");
    await app.page.getByLabel("Identifier").selectOption("account");
    // An ideographic space makes another account id (ids are keyed as sent): nobody holds it.
    await app.page.getByLabel("Value").fill("\u3000demo-fading");
    await app.page.getByRole("button", { name: "Look up" }).click();
    const problem = app.page.locator(".problem");
    await problem.waitFor({ timeout: 10_000 });
    expect(await problem.textContent()).toMatch(/No customer holds that/);
    expect(new URL(app.page.url()).pathname).toBe("/console/customers");
    // Only spaces: said in the form's words, nothing asked of the API.
    await app.page.getByLabel("Value").fill("   ");
    await app.page.getByRole("button", { name: "Look up" }).click();
    await expect.poll(() => problem.textContent()).toContain("Type the identifier's value: it is only spaces now.");
    // Padding a form or a paste adds is dropped: the demo's fading regular.
    await app.page.getByLabel("Value").fill(" demo-fading\t");
    await app.page.getByRole("button", { name: "Look up" }).click();
    await app.page.waitForURL(/\/console\/customers\/c_/);
    // Back finds the form as it was left, the value never in the address.
    await app.page.goBack();
    await app.page.waitForURL(/\/console\/customers$/);
    await expect.poll(() => app.page.getByLabel("Value").inputValue()).toBe(" demo-fading\t");
    expect(await app.page.getByLabel("Identifier").inputValue()).toBe("account");
  }, 120_000);

  it("shows another customer's page as loading until it comes, never the last customer under its address", async () => {
    const idOf = async (account: string) =>
      (await admin<{ customerId: string }>(`/v1/customers/lookup?kind=account&value=${account}`)).customerId;
    const [first, second] = [await idOf("demo-fading"), await idOf("demo-full-price")];
    await app.page.goto(`${app.worker.url}/console/customers/${encodeURIComponent(first)}`);
    await app.page.getByRole("button", { name: "Erase customer" }).waitFor();
    const firstHeading = await app.page.getByRole("heading", { level: 1 }).textContent();
    // The second customer's answer held back, as on a slow connection.
    const secondCustomer = (url: URL) => url.pathname === `/v1/customers/${second}`;
    const heldBack = await holdBack(app.page, secondCustomer);
    try {
      await app.page.evaluate((id) => {
        history.pushState(null, "", `/console/customers/${id}`);
        dispatchEvent(new PopStateEvent("popstate"));
      }, second);
      await app.page.getByText("Loading the customer…").waitFor();
      expect(await app.page.getByRole("button", { name: "Erase customer" }).count()).toBe(0);
      expect(await app.page.getByRole("heading", { level: 1, name: firstHeading ?? "" }).count()).toBe(0);
      heldBack.release();
      await app.page.getByRole("button", { name: "Erase customer" }).waitFor();
      expect(await app.page.getByRole("heading", { level: 1 }).textContent()).toContain(second);
    } finally {
      await heldBack.end();
    }
  }, 120_000);

  it("names the categories of a store-only customer's shelf as the popular shelf's, not as ranked for them", async () => {
    const loyalty = "LY-E2E-TILL-1";
    const orders = [1, 2].map((n) => ({
      id: `e2e-till-${n}`,
      channel: "store",
      storeId: "store-1",
      placedAt: new Date(Date.now() - n * 20 * 86_400_000).toISOString(),
      identifiers: { loyalty },
      lines: [{ productId: "sku-till", categoryId: "till", quantity: 1, unitPrice: 10 }],
    }));
    const posted = await fetch(`${app.worker.url}/v1/orders`, {
      method: "POST",
      headers: { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ orders }),
    });
    expect(posted.status).toBe(200);
    const { customerId } = await admin<{ customerId: string }>(`/v1/customers/lookup?kind=loyalty&value=${loyalty}`);
    await app.page.goto(`${app.worker.url}/console/customers/${encodeURIComponent(customerId)}`);
    const section = app.page.getByRole("region", { name: "What this shopper sees now" });
    await section.getByText("This customer has no storefront account").waitFor();
    await section.getByRole("heading", { name: "Categories of the popular shelf" }).waitFor();
    expect(await section.getByRole("heading", { name: "Categories ranked for them" }).count()).toBe(0);
  }, 120_000);

  it("heads a customer page whose customer is gone, takes the focus there and names the tab by it", async () => {
    await app.page.goto(`${app.worker.url}/console/customers/c_gone`);
    await app.page.getByRole("heading", { level: 1 }).waitFor();
    // Opened from within the console (another page shown first), the heading takes the focus.
    await app.page
      .getByRole("navigation", { name: "Console" })
      .getByRole("link", { name: "Overview", exact: true })
      .click();
    await app.page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
    await app.page.evaluate(() => {
      history.pushState(null, "", "/console/customers/c_gone");
      dispatchEvent(new PopStateEvent("popstate"));
    });
    const heading = app.page.getByRole("heading", { level: 1, name: "Customer not found" });
    await heading.waitFor();
    await app.page.getByText("No customer with id c_gone.").waitFor();
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.textContent)).toBe("Customer not found");
    await expect.poll(() => app.page.title()).toBe("Customer not found · Patron console");
  }, 120_000);
});
