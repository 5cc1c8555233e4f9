// The widget's optional modules in real headless Chromium against the real worker under `wrangler dev`:
// v1.js imports v1-cart.js and v1-debug.js only when the page uses them (an addToCart hook, data-debug),
// a hook registered before the script or after the shelves rendered works the same, and the buttons
// the module draws through v1.js's Preact take part in the row's keyboard navigation.
import { readFileSync } from "node:fs";
import path from "node:path";
import type { ConsoleMessage, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DevWorker } from "../fixtures/wrangler-dev.ts";
import { hostPage, renderedCards, serveShop, shopOrigin, waitForCards } from "./harness.ts";
import { startWidgetSuite, type WidgetSuite } from "./suite.ts";

let worker: DevWorker;
let shopperToken: string;
let expiredToken: string;
let suite: WidgetSuite;

const newPage = () => suite.newPage();

/** The widget's optional modules the page requested, by file name (v1-cart.js …). */
function optionalModules(page: Page): string[] {
  const requested: string[] = [];
  page.on("request", (request) => {
    const file = new URL(request.url()).pathname.match(/\/widget\/(v1-[a-z]+\.js)$/)?.[1];
    if (file) requested.push(file);
  });
  return requested;
}

/** What a mount point's shadow root shows: its cards' "Add to cart" buttons and their computed position. */
const cartButtons = (page: Page) =>
  page.evaluate(() => {
    const root = document.querySelector("[data-patron]")!.shadowRoot!;
    return [...root.querySelectorAll("li button")].map((button) => ({
      text: button.textContent,
      position: getComputedStyle(button).position,
    }));
  });

/** Records every addToCart call on window.added: the item id, recommendation id and position. */
const recordAddToCart = `patron("on", "addToCart", (detail) => {
  (window.added = window.added || []).push({ id: detail.item.id, recommendationId: detail.recommendationId, position: detail.position });
});`;

beforeAll(async () => {
  suite = await startWidgetSuite();
  ({ worker, shopperToken, expiredToken } = suite);
});

afterAll(() => suite?.stop());

describe("optional modules", () => {
  it("imports none on a page that uses none of them", async () => {
    const page = await newPage();
    const requested = optionalModules(page);
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken }) });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const links = page.locator("[data-patron] li a");
    await links.first().focus();
    await page.keyboard.press("ArrowRight"); // Keyboard navigation is part of v1.js itself.
    await expect.poll(() => links.nth(1).evaluate((link) => link.matches(":focus"))).toBe(true);
    expect(await cartButtons(page)).toEqual([]);
    expect(requested).toEqual([]);
  });

  it("draws styled Add to cart buttons from v1-cart.js for an addToCart hook queued before the script", async () => {
    const page = await newPage();
    const requested = optionalModules(page);
    const beacons: string[] = [];
    page.on("request", (request) => {
      if (request.url().endsWith("/v1/events")) beacons.push(request.postData() ?? "");
    });
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken, before: recordAddToCart }) });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const cards = await renderedCards(page);
    await expect
      .poll(() => cartButtons(page), { timeout: 15_000 })
      .toEqual(cards.map(() => ({ text: "Add to cart", position: "absolute" })));
    expect(requested).toEqual(["v1-cart.js"]);

    await page.locator("[data-patron] li button").nth(1).click();
    const added = await page.evaluate(() => (window as unknown as { added: unknown[] }).added);
    const recommendationId = new URL(cards[1]!.href).searchParams.get("patron_rec");
    expect(added).toEqual([{ id: expect.any(String), recommendationId, position: 2 }]);
    await expect.poll(() => beacons.filter((body) => body.includes('"click"')).length).toBe(1);
    expect(beacons.find((body) => body.includes('"click"'))).toContain(`"position":2`);

    // One tab stop for the row: the arrow keys go from a card's link to its button and on to the next card.
    const links = page.locator("[data-patron] li a");
    await links.first().focus();
    await page.keyboard.press("ArrowRight");
    await expect
      .poll(() =>
        page
          .locator("[data-patron] li button")
          .first()
          .evaluate((button) => button.matches(":focus")),
      )
      .toBe(true);
    await page.keyboard.press("ArrowRight");
    await expect.poll(() => links.nth(1).evaluate((link) => link.matches(":focus"))).toBe(true);
    expect(await links.nth(1).getAttribute("tabindex")).toBe("0");
    expect(await links.first().getAttribute("tabindex")).toBe("-1");
  });

  it("adds the buttons to the shelves already shown when the hook comes after them", async () => {
    const page = await newPage();
    const requested = optionalModules(page);
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken }) });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const cards = await renderedCards(page);
    expect(requested).toEqual([]);
    await page.evaluate(recordAddToCart);
    await expect.poll(() => cartButtons(page), { timeout: 15_000 }).toHaveLength(cards.length);
    // The cards themselves are the same: only the buttons were added.
    expect(await renderedCards(page)).toEqual(cards);
    expect(requested).toEqual(["v1-cart.js"]);
  });

  it("takes the shelf's stylesheet and v1-debug.js from data-api's /widget/ when v1.js is a copy served elsewhere", async () => {
    const page = await newPage();
    const copy = readFileSync(path.join(import.meta.dirname, "../../dist/public/widget/v1.js"), "utf8");
    const html = hostPage({ workerUrl: worker.url, token: shopperToken }).replace(
      `<script async src="${worker.url}/widget/v1.js"`,
      `<script async data-debug data-api="${worker.url}" src="${shopOrigin}/cdn/v1.js"`,
    );
    expect(html).toContain("/cdn/v1.js");
    await serveShop(page, { "/": html, "/cdn/v1.js": copy });
    const files: string[] = [];
    page.on("request", (request) => {
      if (/\/v1-(shelf\.css|debug\.js)$/.test(request.url())) files.push(request.url());
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    expect(await page.evaluate(() => document.querySelector<HTMLElement>("[data-patron]")?.hidden)).toBe(false);
    // data-debug imports v1-debug.js with the first answer: from the API too.
    await expect.poll(() => files.length).toBe(2);
    expect(files.sort()).toEqual([`${worker.url}/widget/v1-debug.js`, `${worker.url}/widget/v1-shelf.css`]);
  });

  it("says with data-debug that the shelf's stylesheet did not load, and hides the shelf", async () => {
    const page = await newPage();
    const info: string[] = [];
    page.on("console", (message: ConsoleMessage) => {
      if (message.type() === "info") info.push(message.text());
    });
    await page.route("**/widget/v1-shelf.css", (route) => route.abort());
    const html = hostPage({ workerUrl: worker.url, token: shopperToken, scriptAttributes: "data-debug" });
    await serveShop(page, { "/": html });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await expect.poll(() => info.join("\n"), { timeout: 15_000 }).toContain("the shelf's stylesheet");
    expect(info.join("\n")).toContain("style-src");
    expect(await page.evaluate(() => document.querySelector<HTMLElement>("[data-patron]")?.hidden)).toBe(true);
  });

  it("fires empty once for a shelf already empty when the shelf's stylesheet fails after the answers came", async () => {
    const page = await newPage();
    const record = `window.hooks = [];
      patron("on", "render", ({ placement }) => hooks.push("render " + placement));
      patron("on", "empty", ({ placement }) => hooks.push("empty " + placement));`;
    // An anonymous visitor: the home shelf shows the popular picks, the buy-again shelf has none.
    const mounts =
      '<div data-patron="home" data-placement="home"></div><div data-patron="again" data-placement="buy-again"></div>';
    const hooks = () => page.evaluate(() => (window as unknown as { hooks?: string[] }).hooks ?? []);
    await page.route("**/widget/v1-shelf.css", async (route) => {
      // Held until both shelves have had their answer, then failed.
      for (let waited = 0; waited < 15_000 && (await hooks()).length < 2; waited += 100)
        await new Promise((resolve) => setTimeout(resolve, 100));
      await route.abort();
    });
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, mounts, before: record }) });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await expect.poll(hooks, { timeout: 20_000 }).toContain("empty home");
    await page.waitForTimeout(500);
    expect((await hooks()).sort()).toEqual(["empty buy-again", "empty home", "render home"]);
  });

  it("says with data-debug that the API is unreachable when it is, not that the origin is refused", async () => {
    const page = await newPage();
    const info: string[] = [];
    page.on("console", (message: ConsoleMessage) => {
      if (message.type() === "info") info.push(message.text());
    });
    // The worker down, but for the modules: v1.css, which the probe asks for, fails with the shelf's request.
    await page.route("**/v1/recommendations**", (route) => route.abort());
    await page.route("**/widget/v1.css", (route) => route.abort());
    const html = hostPage({ workerUrl: worker.url, token: shopperToken, scriptAttributes: "data-debug" });
    await serveShop(page, { "/": html });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await expect.poll(() => info.join("\n"), { timeout: 15_000 }).toContain(`the API at ${worker.url} is unreachable`);
    expect(info.join("\n")).not.toContain("ALLOWED_ORIGINS");
  });

  it("explains an expired token on the console with v1-debug.js for data-debug, never printing the token", async () => {
    const page = await newPage();
    const requested = optionalModules(page);
    const info: string[] = [];
    page.on("console", (message: ConsoleMessage) => {
      if (message.type() === "info") info.push(message.text());
    });
    const html = hostPage({ workerUrl: worker.url, token: expiredToken }).replace(
      "<script async src=",
      "<script async data-debug src=",
    );
    await serveShop(page, { "/": html });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    await expect.poll(() => info.length, { timeout: 15_000 }).toBeGreaterThan(0);
    expect(info[0]).toContain("refused the shopper token");
    expect(info.join("\n")).not.toContain(expiredToken);
    expect(requested).toEqual(["v1-debug.js"]);
  });
});
