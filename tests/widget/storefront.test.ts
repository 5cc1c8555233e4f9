// The storefront widget in real headless Chromium against the real worker under `wrangler dev`,
// seeded through the public ingestion API with the demo data set.
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Browser, BrowserContext, ConsoleMessage, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { postSeedData } from "../../cli/seed-demo.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { type DevWorker, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import {
  artifactsDir,
  assertWidgetBuilt,
  hostPage,
  launchChromium,
  queryLocalD1,
  renderedCards,
  serveShop,
  shopOrigin,
  waitForCards,
} from "./harness.ts";

interface RecommendationsBody {
  data: {
    recommendationId: string;
    arm: string;
    customerKnown: boolean;
    items: {
      id: string;
      title: string;
      price: number;
      listPrice: number;
      reasons?: { text?: string }[];
      reason?: string;
    }[];
  };
}

// A page's reset aimed at every element the widget uses. The page keeps control of where the mount
// point sits, how wide it is and whether it shows (margin, width, floats, opacity and visibility on the
// div itself); what is inside is the widget's, so the div rule attacks only what would change the inside.
const hostileCss = `
  div {
    display: inline !important; padding: 40px !important; border: 9px solid red !important;
    min-height: 0 !important; font-size: 40px !important; line-height: 5 !important; color: red !important;
    white-space: pre !important; text-align: right !important;
  }
  section, ul, li, a, img, p, span, h2, b, em, s, ins, i {
    display: inline !important; position: static !important;
    width: 3px !important; height: 3px !important; min-height: 0 !important; max-width: 3px !important;
    margin: 40px !important; padding: 40px !important; border: 9px solid red !important;
    font-size: 40px !important; line-height: 5 !important; color: red !important; background: yellow !important;
    opacity: 0.2 !important; visibility: hidden !important; transform: rotate(12deg) !important;
  }
  * { font-family: "Comic Sans MS", cursive !important; letter-spacing: 6px !important; text-transform: uppercase !important; }
  img { object-fit: fill !important; }
`;

let worker: DevWorker;
let browser: Browser;
let shopperToken: string;
const contexts: BrowserContext[] = [];

/** Errors a page reports: uncaught exceptions, and console errors other than the browser's own network log. */
function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message: ConsoleMessage) => {
    // Chromium logs "Failed to load resource: net::ERR_..." itself for a request the test aborted.
    if (message.type() === "error" && !/Failed to load resource|net::ERR_/.test(message.text())) {
      errors.push(`console: ${message.text()}`);
    }
  });
  return errors;
}

/** The recommendation requests the page sends from now on, as URLs, in the order they leave. */
function recommendationRequests(page: Page): URL[] {
  const asked: URL[] = [];
  page.on("request", (request) => {
    if (request.url().includes("/v1/recommendations")) asked.push(new URL(request.url()));
  });
  return asked;
}

async function newPage(viewport = { width: 1280, height: 2000 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  return context.newPage();
}

/** The answer for the page's main shelf: the demo home page also asks for its buy-again shelf, in parallel. */
function recommendationsResponse(page: Page) {
  return page.waitForResponse(
    (response) =>
      response.url().includes("/v1/recommendations") &&
      !response.url().includes("placement=buy-again") &&
      response.ok(),
  );
}

beforeAll(async () => {
  assertWidgetBuilt();
  mkdirSync(artifactsDir, { recursive: true });
  worker = await startDevWorker({ vars: { PATRON_DEMO: "on", ALLOWED_ORIGINS: shopOrigin } });
  await postSeedData({ url: worker.url, apiKey: testSecrets.PATRON_API_KEY, customers: 60 });
  // The nightly refit gives the popular shelf and the discount-sensitivity baseline, as `npm start` does.
  const refit = await fetch(`${worker.url}/v1/admin/jobs/nightly?wait=1`, {
    method: "POST",
    headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
  });
  if (!refit.ok) throw new Error(`nightly job failed: ${refit.status} ${await refit.text()}`);
  shopperToken = await signShopperToken("demo-full-price", testSecrets.SHOPPER_TOKEN_SECRET, 3600, new Date());
  browser = await launchChromium();
});

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await worker?.stop();
});

describe("storefront widget", () => {
  it("renders a signed-in shopper's picks, with prices, reasons and links carrying the recommendation id", async () => {
    const page = await newPage();
    const errors = collectErrors(page);
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken }) });
    const answer = recommendationsResponse(page);
    await page.goto(`${shopOrigin}/`);
    const body = (await (await answer).json()) as RecommendationsBody;
    await waitForCards(page);

    expect(body.data.customerKnown).toBe(true);
    const cards = await renderedCards(page);
    const items = body.data.items.slice(0, 8);
    expect(cards).toHaveLength(items.length);
    const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
    cards.forEach((card, index) => {
      const item = items[index]!;
      expect(card.title).toBe(item.title);
      expect(card.price).toBe(money.format(item.price));
      expect(card.listPrice).toBe(item.price < item.listPrice ? money.format(item.listPrice) : null);
      expect(new URL(card.href).searchParams.get("patron_rec")).toBe(body.data.recommendationId);
      const sentence = item.reason ?? item.reasons?.find((reason) => reason.text)?.text ?? null;
      expect(card.reason).toBe(sentence);
      expect(card.label).toContain(item.title);
      if (sentence) expect(card.label).toContain(sentence); // The visible reason is part of the name.
    });
    expect(errors).toEqual([]);
  });

  it("keeps its look inside a hostile page, and keeps its styles out of the page", async () => {
    const page = await newPage();
    await serveShop(page, {
      "/clean": hostPage({ workerUrl: worker.url, token: shopperToken }),
      "/hostile": hostPage({ workerUrl: worker.url, token: shopperToken, css: hostileCss }),
    });
    const measure = () =>
      page.evaluate(() => {
        const host = document.querySelector("[data-patron]") as HTMLElement;
        const root = host.shadowRoot!;
        const box = (element: Element | null) => {
          const rect = element?.getBoundingClientRect();
          return rect ? [Math.round(rect.width), Math.round(rect.height)] : null;
        };
        const style = (element: Element | null, ...names: string[]) => {
          const computed = element ? getComputedStyle(element) : null;
          return names.map((name) => computed?.getPropertyValue(name));
        };
        const card = root.querySelector("li");
        return {
          host: box(host),
          hostStyle: style(host, "padding-top", "border-top-width"),
          display: getComputedStyle(host).display,
          card: box(card),
          image: box(root.querySelector("img")),
          link: style(
            root.querySelector("a"),
            "color",
            "font-size",
            "font-family",
            "line-height",
            "letter-spacing",
            "text-transform",
            "visibility",
            "white-space",
          ),
          heading: [box(root.querySelector("h2")), ...style(root.querySelector("h2"), "font-size", "visibility")],
          cards: root.querySelectorAll("li a").length,
        };
      });

    await page.goto(`${shopOrigin}/clean`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const clean = await measure();
    await page.goto(`${shopOrigin}/hostile`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const hostile = await measure();
    await page.screenshot({ path: path.join(artifactsDir, "widget-hostile-page.png") });

    expect(clean.cards).toBeGreaterThan(0);
    expect(clean.card?.[0]).toBeGreaterThan(100);
    // The mount point's display is the page's to set (its display:none hides the shelf), so the hostile
    // page makes it inline; the shelf inside keeps its look and its box all the same.
    expect([clean.display, hostile.display]).toEqual(["flow-root", "inline"]);
    expect({ ...hostile, display: clean.display }).toEqual(clean);
    // The hostile rules are live on the page itself...
    const pageDiv = await page.evaluate(() => getComputedStyle(document.querySelector(".after")!).paddingTop);
    expect(pageDiv).toBe("40px");
    // ...and the widget's own rules (p { opacity: 0 }, img { object-fit: cover }) never reach the page.
    await page.goto(`${shopOrigin}/clean`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const outside = await page.evaluate(() => ({
      paragraph: getComputedStyle(document.querySelector(".outside")!).opacity,
      image: getComputedStyle(document.querySelector(".outside-img")!).objectFit,
    }));
    expect(outside).toEqual({ paragraph: "1", image: "fill" });
  });

  describe("when the API is slow or down", () => {
    /**
     * Loads the anonymous page once so the popular shelf is cached in this context's localStorage. The
     * shopper's page gives up on the API after `timeoutMs`: the skeleton is measured before that, so a
     * test that does not wait for the timeout sets it far beyond anything a loaded machine takes.
     */
    async function pageWithCachedPopular(timeoutMs: number): Promise<Page> {
      const page = await newPage();
      await serveShop(page, {
        "/anonymous": hostPage({ workerUrl: worker.url }),
        "/shopper": hostPage({ workerUrl: worker.url, token: shopperToken, timeoutMs }),
      });
      await page.goto(`${shopOrigin}/anonymous`, { waitUntil: "domcontentloaded" });
      await waitForCards(page);
      await page.waitForFunction(() => localStorage.getItem("patron:popular:v1") !== null);
      return page;
    }

    /**
     * The mount point's box and the content below it, once the skeleton is up and once the shelf is.
     * `afterSkeleton` runs between the two, e.g. to let a held request fail only once the skeleton
     * has been measured.
     */
    async function skeletonThenShelf(page: Page, afterSkeleton: () => void = () => {}) {
      await page.waitForFunction(() =>
        document.querySelector("[data-patron]")?.shadowRoot?.querySelector("[aria-busy]"),
      );
      const geometry = () =>
        page.evaluate(() => ({
          host: Math.round(document.querySelector("[data-patron]")!.getBoundingClientRect().height),
          below: Math.round(document.querySelector(".after")!.getBoundingClientRect().top),
          shift: (window as unknown as { layoutShift: number }).layoutShift,
        }));
      const skeleton = await geometry();
      afterSkeleton();
      await waitForCards(page);
      return { skeleton, shelf: await geometry() };
    }

    /** A gate a route handler can wait on: `open()` lets it through. */
    function gate() {
      let open = () => {};
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      return { opened, open };
    }

    /** The titles of the popular shelf the widget cached in this page's localStorage, as the shelf shows them. */
    function cachedPopularTitles(page: Page): Promise<string[]> {
      return page.evaluate(() => {
        const cached = JSON.parse(localStorage.getItem("patron:popular:v1")!) as {
          data: { items: { title: string }[] };
        };
        return cached.data.items.slice(0, 8).map((item) => item.title);
      });
    }

    it("falls back to the cached popular shelf when the API is down, in the space it reserved", async () => {
      // The failed request, not the timeout, brings the fallback.
      const page = await pageWithCachedPopular(60_000);
      const errors = collectErrors(page);
      // The request fails only once the skeleton has been measured, however fast or slow the machine.
      const skeletonMeasured = gate();
      await page.route("**/v1/recommendations**", async (route) => {
        await skeletonMeasured.opened;
        await route.abort("connectionrefused");
      });
      await page.goto(`${shopOrigin}/shopper`, { waitUntil: "domcontentloaded" });
      const { skeleton, shelf } = await skeletonThenShelf(page, skeletonMeasured.open);

      expect(skeleton.host).toBeGreaterThan(200);
      expect(shelf.host).toBe(skeleton.host);
      expect(shelf.below).toBe(skeleton.below);
      expect(shelf.shift).toBe(skeleton.shift);
      expect((await renderedCards(page)).length).toBeGreaterThan(0);
      expect(errors).toEqual([]);
      await page.screenshot({ path: path.join(artifactsDir, "widget-api-down.png") });
    });

    it("caches the popular shelf on a page whose shelves all carry a context and a token, and shows it with the API down", async () => {
      const page = await newPage();
      const errors = collectErrors(page);
      const mounts = `<div data-patron="x" data-placement="home" data-limit="4"></div>
        <div data-patron="x" data-placement="cart" data-exclude="no-such-sku" data-limit="4"></div>`;
      await serveShop(page, {
        "/": hostPage({ workerUrl: worker.url, token: shopperToken, timeoutMs: 5_000, mounts }),
      });
      const asked = recommendationRequests(page);
      await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
      await waitForCards(page, 0);
      await waitForCards(page, 1);
      // Once the shelves are up, one background request for the context-free anonymous popular shelf.
      await page.waitForFunction(() => localStorage.getItem("patron:popular:v1") !== null, undefined, {
        timeout: 10_000,
      });
      const popular = asked.filter((url) => !url.searchParams.has("placement"));
      expect(popular.map((url) => url.search)).toEqual(["?limit=48"]);
      const cached = await page.evaluate(
        () => JSON.parse(localStorage.getItem("patron:popular:v1")!).data as RecommendationsBody["data"],
      );
      expect(cached.customerKnown).toBe(false); // Not the shopper's picks.
      const titles = cached.items.map((item) => item.title);

      // The next visit, with the API down: both shelves show the cached popular shelf, in turn.
      asked.length = 0;
      await page.route("**/v1/recommendations**", (route) => route.abort("connectionrefused"));
      await page.reload({ waitUntil: "domcontentloaded" });
      await waitForCards(page, 0);
      await waitForCards(page, 1);
      expect((await renderedCards(page, 0)).map((card) => card.title)).toEqual(titles.slice(0, 4));
      expect((await renderedCards(page, 1)).map((card) => card.title)).toEqual(titles.slice(4, 8));
      // The cache is fresh: no background request this time, only the two shelves'.
      expect(asked.map((url) => url.searchParams.get("placement")).sort()).toEqual(["cart", "home"]);
      expect(errors).toEqual([]);
    });

    it("makes no background request for the popular shelf where storage is blocked: nothing could keep it", async () => {
      const page = await newPage();
      const errors = collectErrors(page);
      // As Chromium answers a page whose site may not store data (cookies blocked): reading the property throws.
      await page.addInitScript(() =>
        Object.defineProperty(window, "localStorage", {
          get() {
            throw new DOMException("Access is denied for this document.", "SecurityError");
          },
        }),
      );
      const mounts = `<div data-patron="x" data-placement="home" data-limit="4"></div>`;
      await serveShop(page, {
        "/": hostPage({ workerUrl: worker.url, token: shopperToken, timeoutMs: 5_000, mounts }),
      });
      const asked = recommendationRequests(page);
      await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
      await waitForCards(page, 0);
      await page.waitForLoadState("networkidle");
      expect(asked.map((url) => url.searchParams.get("placement"))).toEqual(["home"]);
      expect(errors).toEqual([]);
    });

    it("stops waiting after data-timeout when the API is slow", async () => {
      // Long enough for the skeleton to be measured first on a loaded machine, short enough to wait for.
      const page = await pageWithCachedPopular(2_500);
      const errors = collectErrors(page);
      // The shopper's request is held open until the test has finished: the shelf can only appear
      // because the widget stopped waiting for it, not because it arrived late. No clock is read here.
      const testFinished = gate();
      onTestFinished(testFinished.open);
      let held = 0;
      let released = false;
      await page.route("**/v1/recommendations**", async (route) => {
        held++;
        await testFinished.opened;
        released = true;
        await route.continue().catch(() => {}); // The widget gave up on this request long ago.
      });
      await page.goto(`${shopOrigin}/shopper`, { waitUntil: "domcontentloaded" });
      const { skeleton, shelf } = await skeletonThenShelf(page);

      expect(released).toBe(false);
      expect(held).toBe(1);
      const cards = await renderedCards(page);
      expect(cards.map((card) => card.title)).toEqual(await cachedPopularTitles(page)); // The cached popular shelf.
      expect(shelf.host).toBe(skeleton.host);
      expect(shelf.shift).toBe(skeleton.shift);
      expect(errors).toEqual([]);
    });

    it("hides itself cleanly when the API is down and nothing is cached", async () => {
      const page = await newPage();
      const errors = collectErrors(page);
      await serveShop(page, { "/shopper": hostPage({ workerUrl: worker.url, token: shopperToken, timeoutMs: 800 }) });
      const asked: string[] = [];
      await page.route("**/v1/recommendations**", (route) => {
        asked.push(route.request().url());
        return route.abort("connectionrefused");
      });
      await page.goto(`${shopOrigin}/shopper`);
      await page.waitForFunction(
        () => document.querySelector("[data-patron]")!.shadowRoot?.querySelector("section") === null,
        undefined,
        { timeout: 10_000 },
      );
      const height = await page.evaluate(() => document.querySelector("[data-patron]")!.getBoundingClientRect().height);
      expect(height).toBe(0);
      expect(errors).toEqual([]);
      // No answer came: the shelf is not asked for again without the token, which would fail the same way.
      expect(asked).toHaveLength(1);
      expect(asked[0]).toContain("token=");
    });

    it("shows the shelf of a degraded answer (the API's database is down) like any other", async () => {
      const page = await newPage();
      const errors = collectErrors(page);
      await serveShop(page, { "/shopper": hostPage({ workerUrl: worker.url, token: shopperToken, timeoutMs: 5_000 }) });
      const titles = ["Kept coffee", "Kept tea", "Kept mug"];
      await page.route("**/v1/recommendations**", (route) =>
        route.fulfill({
          status: 200,
          contentType: "application/json",
          headers: { "Cache-Control": "no-store", "Access-Control-Allow-Origin": "*" },
          body: JSON.stringify({
            data: {
              recommendationId: "rec_degraded.anonymous.0000000000000000",
              arm: "anonymous",
              customerKnown: false,
              degraded: true,
              categories: [],
              items: titles.map((title, index) => ({
                id: `kept-${index}`,
                title,
                url: `${shopOrigin}/p/kept-${index}`,
                imageUrl: null,
                price: 10 + index,
                listPrice: 10 + index,
                categoryId: "kept",
                reasons: [{ code: "popular" }],
                reason: "Popular right now",
              })),
            },
          }),
        }),
      );
      await page.goto(`${shopOrigin}/shopper`, { waitUntil: "domcontentloaded" });
      await waitForCards(page);
      expect((await renderedCards(page)).map((card) => card.title)).toEqual(titles);
      expect(errors).toEqual([]);
    });
  });

  it("sends impression and click beacons that the worker stores, and the click lands on an attributed link", async () => {
    const page = await newPage();
    const errors = collectErrors(page);
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken }) });
    const answer = recommendationsResponse(page);
    const impressions = page.waitForRequest(
      (request) => request.url().endsWith("/v1/events") && (request.postData() ?? "").includes('"impression"'),
    );
    await page.goto(`${shopOrigin}/`);
    const { data } = (await (await answer).json()) as RecommendationsBody;
    await waitForCards(page);
    const beacon = await impressions;
    expect(beacon.method()).toBe("POST");
    expect(beacon.headers()["content-type"]).toMatch(/^text\/plain/);

    const clicked = page.waitForRequest(
      (request) => request.url().endsWith("/v1/events") && (request.postData() ?? "").includes('"click"'),
    );
    await page.locator("[data-patron] li a").first().click();
    await clicked;
    await page.waitForURL(/patron_rec=/);
    expect(new URL(page.url()).searchParams.get("patron_rec")).toBe(data.recommendationId);

    const sql = `select type, product_id as productId from events where recommendation_id = '${data.recommendationId}' order by id`;
    let rows: { type: string; productId: string }[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      rows = await queryLocalD1(worker.persistDir, sql, "EVENTS_DB");
      if (rows.some((row) => row.type === "click")) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const shown = new Set(data.items.slice(0, 8).map((item) => item.id));
    const impressed = rows.filter((row) => row.type === "impression");
    expect(impressed.length).toBeGreaterThan(0);
    expect(impressed.every((row) => shown.has(row.productId))).toBe(true);
    expect(new Set(impressed.map((row) => row.productId)).size).toBe(impressed.length); // once per product
    expect(rows.filter((row) => row.type === "click")).toEqual([{ type: "click", productId: data.items[0]!.id }]);
    expect(errors).toEqual([]);
  });

  it("shows each demo shopper different picks on the demo storefront (screenshots in tests/artifacts)", async () => {
    const shoppers = ["demo-full-price", "demo-store-loyal", "demo-fading", "demo-new", "anonymous"];
    const shelves = new Map<string, RecommendationsBody["data"]>();
    for (const shopper of shoppers) {
      const page = await newPage({ width: 1280, height: 1400 });
      const errors = collectErrors(page);
      const answer = recommendationsResponse(page);
      await page.goto(`${worker.url}/demo/?shopper=${shopper}`);
      shelves.set(shopper, ((await (await answer).json()) as RecommendationsBody).data);
      await waitForCards(page);
      await page.screenshot({ path: path.join(artifactsDir, `demo-${shopper}.png`), fullPage: true });
      expect(errors).toEqual([]);
    }
    const withHistory = shoppers.filter((shopper) => shopper !== "anonymous");
    expect(shelves.get("anonymous")?.customerKnown).toBe(false);
    // startDevWorker holds no shopper out (HOLDOUT_SHARE 0), so every demo shopper with history is in
    // the personalized arm and sees their own picks, different from each other's and the popular shelf.
    for (const shopper of withHistory) {
      expect(shelves.get(shopper)?.customerKnown, shopper).toBe(true);
      expect(shelves.get(shopper)?.arm, shopper).toBe("personalized");
    }
    const firstPicks = (shopper: string) =>
      shelves
        .get(shopper)!
        .items.slice(0, 4)
        .map((item) => item.id)
        .join();
    const report = shoppers.map((shopper) => `${shopper}: ${firstPicks(shopper)}`).join("\n");
    expect(new Set(shoppers.map(firstPicks)).size, report).toBe(shoppers.length);
    // A full-price shopper buys anyway: no markdowns on their shelf.
    const fullPrice = shelves.get("demo-full-price")!;
    expect(fullPrice.items.length).toBeGreaterThan(0);
    expect(fullPrice.items.filter((item) => item.price < item.listPrice)).toEqual([]);
  });
});
