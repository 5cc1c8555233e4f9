// The demo storefront in real headless Chromium against the real worker under `wrangler dev`: a
// shopper's walk from the home page (two placements) through a product page ("Goes with this") to the
// bag (the cart shelf), at desktop and phone widths. Every shelf shows items; each page's mount points
// carry the placement, the page's product and the bag's ids; nothing moves once shown; screenshots of
// each page go to tests/artifacts/.
import path from "node:path";
import type { Browser, BrowserContext, ConsoleMessage, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DevWorker } from "../fixtures/wrangler-dev.ts";
import { shelfCards, startSeededDemo, waitForShelf } from "./demo-fixture.ts";
import { artifactsDir, launchChromium } from "./harness.ts";

let worker: DevWorker;
let browser: Browser;
const contexts: BrowserContext[] = [];

// The loyalty-card shopper buys coffee, tea and candles on a rhythm: something is due, so the home
// page's buy-again shelf has items too, and promotions put sale cards on the shelves.
const shopper = "demo-store-loyal";

beforeAll(async () => {
  worker = await startSeededDemo();
  browser = await launchChromium();
});

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await worker?.stop();
});

/** Uncaught exceptions and console errors. */
function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message: ConsoleMessage) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  return errors;
}

/** A page that adds up its layout shifts (CLS) in window.layoutShift from its first paint on. */
async function newPage(width: number): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  contexts.push(context);
  await context.addInitScript(() => {
    const page = window as unknown as { layoutShift: number };
    page.layoutShift = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries() as (PerformanceEntry & { value: number; hadRecentInput: boolean })[])
        if (!entry.hadRecentInput) page.layoutShift += entry.value;
    }).observe({ type: "layout-shift", buffered: true });
  });
  return context.newPage();
}

const layoutShift = (page: Page) => page.evaluate(() => (window as unknown as { layoutShift: number }).layoutShift);

/**
 * Waits until every picture on the page (the shelves' too) has loaded, so a screenshot shows them: the
 * page is scrolled to the bottom first, as lazy images load only near the viewport, then back up.
 */
async function picturesLoaded(page: Page): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
  await expect
    .poll(
      () =>
        page.evaluate(() => {
          const roots: ParentNode[] = [
            document,
            ...[...document.querySelectorAll("[data-patron]")].flatMap((host) => host.shadowRoot ?? []),
          ];
          const images = roots.flatMap((root) => [...root.querySelectorAll("img")]);
          // A shelf's cards past its right edge (the sideways-scrolling row) are never near the viewport.
          const inView = images.filter((image) => image.getBoundingClientRect().left < window.innerWidth);
          return inView.filter((image) => !image.complete || image.naturalWidth === 0).length;
        }),
      { timeout: 30_000, interval: 200 },
    )
    .toBe(0);
  await page.evaluate(() => window.scrollTo(0, 0));
}

async function screenshot(page: Page, name: string): Promise<void> {
  await picturesLoaded(page);
  await page.screenshot({ path: path.join(artifactsDir, `demo-${name}.png`), fullPage: true });
}

const mountAttributes = (page: Page) =>
  page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>("[data-patron]")].map((host) => ({
      name: host.dataset.patron,
      placement: host.dataset.placement,
      product: host.dataset.product,
      exclude: host.dataset.exclude,
    })),
  );

describe("demo storefront", () => {
  for (const [width, device] of [
    [1280, "desktop"],
    [375, "phone"],
  ] as const) {
    it(`walks home → product page → bag with every shelf showing items (${width}px, screenshots demo-*-${device}.png)`, async () => {
      const page = await newPage(width);
      const errors = collectErrors(page);

      // Home: "Picked for you" and "buy again", each naming its placement.
      await page.goto(`${worker.url}/demo/?shopper=${shopper}`);
      await waitForShelf(page, "picked-for-you");
      await waitForShelf(page, "buy-again");
      expect(await mountAttributes(page)).toEqual([
        { name: "picked-for-you", placement: "home", product: undefined, exclude: undefined },
        { name: "buy-again", placement: "buy-again", product: undefined, exclude: undefined },
      ]);
      await expect.poll(() => page.locator("#greeting").textContent()).toBe(`Hi, ${shopper}`);
      await screenshot(page, `home-${device}`);
      expect(await layoutShift(page)).toBeLessThanOrEqual(0.01);

      // A card leads to its product page, carrying the recommendation id.
      const [first] = await shelfCards(page, "picked-for-you");
      const productId = new URL(first!.href).pathname.split("/").pop()!;
      expect(new URL(first!.href).searchParams.get("patron_rec")).toMatch(/^rec_/);
      await page.goto(first!.href);
      await expect.poll(() => page.locator("h1").textContent()).toBeTruthy();
      await waitForShelf(page, "goes-with");
      expect(await mountAttributes(page)).toEqual([
        { name: "goes-with", placement: "product", product: productId, exclude: undefined },
      ]);
      await expect.poll(() => page.locator(".note code").first().textContent()).toMatch(/^rec_/);
      await screenshot(page, `product-${device}`);
      expect(await layoutShift(page)).toBeLessThanOrEqual(0.01);

      // Into the bag, and on to it through the header.
      await page.locator("#add").click();
      await expect.poll(() => page.locator("#added").textContent()).toMatch(/^Added .+ to your bag\.$/);
      await expect.poll(() => page.locator("#bag-count").textContent()).toBe("1");
      await page.getByRole("link", { name: "Bag (1)" }).click();
      await page.waitForURL(`${worker.url}/demo/cart`);
      await waitForShelf(page, "cart");
      expect(await mountAttributes(page)).toEqual([
        { name: "cart", placement: "cart", product: undefined, exclude: productId },
      ]);
      const bagLines = page.locator("#bag-items li");
      await expect.poll(() => bagLines.count()).toBe(1);
      expect(await bagLines.first().locator("a").getAttribute("href")).toBe(`/demo/products/${productId}`);
      expect(await bagLines.first().textContent()).toContain("From a Patron shelf");
      expect(await page.locator("#bag-empty").isHidden()).toBe(true);
      await screenshot(page, `cart-${device}`);
      expect(await layoutShift(page)).toBeLessThanOrEqual(0.01);

      // Back home, the shelves leave out what is in the bag.
      await page.getByRole("link", { name: "Home", exact: true }).click();
      await waitForShelf(page, "picked-for-you");
      expect((await mountAttributes(page)).map((mount) => mount.exclude)).toEqual([productId, productId]);

      // The page stays within the phone's width: nothing to scroll sideways but the shelves' rows.
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
      expect(errors).toEqual([]);
    });
  }

  it("empties the bag with Remove, and keeps the persona across pages until another is chosen", async () => {
    const page = await newPage(1280);
    const errors = collectErrors(page);
    await page.goto(`${worker.url}/demo/?shopper=demo-fading`);
    await page.goto(`${worker.url}/demo/products/coffee-002`);
    await expect.poll(() => page.locator("#greeting").textContent()).toBe("Hi, demo-fading");
    expect(await page.locator("#shopper").inputValue()).toBe("demo-fading");
    await page.locator("#add").click();
    await page.locator("#add").click();
    await page.goto(`${worker.url}/demo/cart`);
    await expect.poll(() => page.locator("#bag-items li").textContent()).toContain("quantity 2");
    expect(await page.locator(".from-shelf").count()).toBe(0); // Not opened from a shelf: nothing to attribute.
    await page.getByRole("button", { name: /^Remove / }).click();
    await expect.poll(() => page.locator("#bag-items li").count()).toBe(0);
    await expect.poll(() => page.locator("#bag-empty").isVisible()).toBe(true);
    expect(await page.locator("[data-patron]").getAttribute("data-exclude")).toBeNull();

    // Switching persona on a page whose address names one: the new choice wins, here and on the next page.
    await page.goto(`${worker.url}/demo/?shopper=demo-fading`);
    await page.locator("#shopper").selectOption("anonymous");
    await page.waitForURL((url) => url.searchParams.get("shopper") === "anonymous");
    await expect.poll(() => page.locator("#greeting").textContent()).toBe("Sign in");
    await page.goto(`${worker.url}/demo/cart`);
    await expect.poll(() => page.locator("#greeting").textContent()).toBe("Sign in");
    expect(errors).toEqual([]);
  });

  it("empties the bag, and the recommendation ids it held, when another persona is chosen", async () => {
    const page = await newPage(1280);
    const errors = collectErrors(page);
    const storedBag = () => page.evaluate(() => localStorage.getItem("northwind-bag"));
    /** A product from the persona's shelf, with the recommendation id issued to that persona, into the bag. */
    const addFromShelf = async (persona: string) => {
      await page.goto(`${worker.url}/demo/?shopper=${persona}`);
      await waitForShelf(page, "picked-for-you");
      const [card] = await shelfCards(page, "picked-for-you");
      const recommendationId = new URL(card!.href).searchParams.get("patron_rec");
      expect(recommendationId).toMatch(/^rec_/);
      await page.goto(card!.href);
      await page.locator("#add").click();
      await expect.poll(() => page.locator("#bag-count").textContent()).toBe("1");
      expect(await storedBag()).toContain(recommendationId!);
    };

    // With the switcher: the page reloads as the new persona with an empty bag.
    await addFromShelf(shopper);
    await page.locator("#shopper").selectOption("demo-fading");
    await expect.poll(() => page.locator("#greeting").textContent()).toBe("Hi, demo-fading");
    expect(await page.locator("#bag-count").textContent()).toBe("0");
    expect(await storedBag()).toBe("[]");
    await page.goto(`${worker.url}/demo/cart`);
    await expect.poll(() => page.locator("#bag-empty").isVisible()).toBe(true);
    expect(await page.locator("#bag-items li").count()).toBe(0);
    expect(await page.locator(".from-shelf").count()).toBe(0);

    // With an address naming another persona: the same; the same persona again keeps the bag.
    await addFromShelf("demo-full-price");
    await page.goto(`${worker.url}/demo/cart?shopper=demo-full-price`);
    await expect.poll(() => page.locator("#bag-items li").count()).toBe(1);
    await page.goto(`${worker.url}/demo/cart?shopper=demo-new`);
    await expect.poll(() => page.locator("#greeting").textContent()).toBe("Hi, demo-new");
    expect(await page.locator("#bag-count").textContent()).toBe("0");
    expect(await page.locator("#bag-items li").count()).toBe(0);
    expect(errors).toEqual([]);
  });
});
