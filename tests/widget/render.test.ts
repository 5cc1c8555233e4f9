// The widget's rendering promises in real headless Chromium against the real worker under `wrangler
// dev`: no layout shift while picks arrive, one time budget, visible reasons, a host page it never
// breaks, a strict CSP, dwell-based impressions and accessible cards.
import type { Page, Request, Route } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { type DevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import {
  accessibleNames,
  type HostPageOptions,
  hostPage,
  hostPageAssets,
  renderedCards,
  serveShop,
  shopOrigin,
  waitForCards,
} from "./harness.ts";
import { collectNoise, gate, startWidgetSuite, type WidgetSuite } from "./suite.ts";

let worker: DevWorker;
let shopperToken: string;
let expiredToken: string;
let suite: WidgetSuite;

const newPage = (viewport?: { width: number; height: number }) => suite.newPage(viewport);

const layoutShift = (page: Page) => page.evaluate(() => (window as unknown as { layoutShift: number }).layoutShift);

/** Lets the browser lay out and report: two animation frames. */
const settle = (page: Page) =>
  page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));

function shelfStyle(page: Page, selector: string, property: string, mountIndex = 0) {
  return page.evaluate(
    ({ selector, property, mountIndex }) => {
      const element = document.querySelectorAll("[data-patron]")[mountIndex]?.shadowRoot?.querySelector(selector);
      return element ? getComputedStyle(element).getPropertyValue(property) : null;
    },
    { selector, property, mountIndex },
  );
}

const twoShelves = `<div data-patron="picked-for-you" data-limit="8" data-title="Picked for you"></div>
<p>Between the shelves</p>
<div data-patron="picked-for-you" data-limit="4" data-title="More to explore"></div>`;

beforeAll(async () => {
  suite = await startWidgetSuite();
  ({ worker, shopperToken, expiredToken } = suite);
});

afterAll(() => suite?.stop());

describe("zero layout shift", () => {
  for (const width of [1280, 375]) {
    for (const mounts of [undefined, twoShelves]) {
      const shelves = mounts ? 2 : 1;
      it(`keeps CLS at most 0.01 while the picks arrive late (${width}px, ${shelves} shelf/shelves)`, async () => {
        const page = await newPage({ width, height: 900 });
        const noise = collectNoise(page);
        await serveShop(page, {
          "/": hostPage({ workerUrl: worker.url, token: shopperToken, timeoutMs: 10_000, mounts }),
        });
        // The answer is held until the skeleton is up: the picks arrive late, within the time budget.
        const skeletonUp = gate();
        await page.route("**/v1/recommendations**", async (route) => {
          await skeletonUp.opened;
          await route.continue();
        });
        await page.goto(`${shopOrigin}/`);
        await page.waitForFunction(() =>
          document.querySelector("[data-patron]")?.shadowRoot?.querySelector("[aria-busy]"),
        );
        const before = await page.evaluate(() => document.querySelector(".after")!.getBoundingClientRect().top);
        skeletonUp.open();
        for (let index = 0; index < shelves; index++) await waitForCards(page, index);
        await settle(page);
        expect(await page.evaluate(() => document.querySelector(".after")!.getBoundingClientRect().top)).toBe(before);
        expect(await layoutShift(page)).toBeLessThanOrEqual(0.01);
        expect(noise).toEqual([]);
      });
    }
  }

  for (const width of [1280, 375]) {
    it(`lays data-layout="grid" out as two rows that fill the width on a wide page, one scrolling row on a phone, with CLS at most 0.01 (${width}px)`, async () => {
      const page = await newPage({ width, height: 1200 });
      const noise = collectNoise(page);
      const mounts =
        '<div data-patron="picked-for-you" data-layout="grid" data-limit="24" data-title="Picked for you"></div>';
      await serveShop(page, {
        "/": hostPage({ workerUrl: worker.url, token: shopperToken, timeoutMs: 10_000, mounts }),
      });
      const skeletonUp = gate();
      await page.route("**/v1/recommendations**", async (route) => {
        await skeletonUp.opened;
        await route.continue();
      });
      await page.goto(`${shopOrigin}/`);
      await page.waitForFunction(() =>
        document.querySelector("[data-patron]")?.shadowRoot?.querySelector("[aria-busy]"),
      );
      const before = await page.evaluate(() => document.querySelector(".after")!.getBoundingClientRect().top);
      skeletonUp.open();
      await waitForCards(page);
      await settle(page);
      const layout = await page.evaluate(() => {
        const host = document.querySelector("[data-patron]") as HTMLElement;
        const root = host.shadowRoot!;
        const section = root.querySelector("section")!.getBoundingClientRect();
        const ul = root.querySelector("ul")!;
        // Rows of cards whose top edge is inside the shelf: what a shopper can see.
        const tops = [...root.querySelectorAll("li")]
          .map((card) => card.getBoundingClientRect().top)
          .filter((top) => top < section.bottom);
        return {
          rows: new Set(tops.map(Math.round)).size,
          scrolls: ul.scrollWidth > ul.clientWidth,
          hostHeight: host.getBoundingClientRect().height,
          sectionHeight: section.height,
        };
      });
      expect(await page.evaluate(() => document.querySelector(".after")!.getBoundingClientRect().top)).toBe(before);
      expect(await layoutShift(page)).toBeLessThanOrEqual(0.01);
      if (width >= 768) expect(layout).toMatchObject({ rows: 2, scrolls: false });
      else expect(layout).toMatchObject({ rows: 1, scrolls: true });
      // The shelf fills exactly the space v1.css reserved.
      expect(Math.abs(layout.hostHeight - layout.sectionHeight)).toBeLessThanOrEqual(1);
      expect(noise).toEqual([]);
    });
  }

  it("spends one time budget: past data-timeout with nothing cached it asks nothing more and collapses once (CLS at most 0.1)", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken, timeoutMs: 800 }) });
    const testFinished = gate();
    onTestFinished(testFinished.open);
    const asked: string[] = [];
    await page.route("**/v1/recommendations**", async (route: Route) => {
      asked.push(route.request().url());
      await testFinished.opened; // Held until the test ends: only the widget's own budget can end the wait.
      await route.continue().catch(() => {});
    });
    await page.goto(`${shopOrigin}/`);
    await page.waitForFunction(() => document.querySelector<HTMLElement>("[data-patron]")?.hidden === true, undefined, {
      timeout: 10_000,
    });
    await settle(page);
    expect(asked).toHaveLength(1); // No second, popular request after the budget was spent.
    expect(await page.evaluate(() => document.querySelector("[data-patron]")!.getBoundingClientRect().height)).toBe(0);
    expect(await layoutShift(page)).toBeLessThanOrEqual(0.1);
    expect(noise).toEqual([]);
  });
});

describe("the shelf's stylesheet, /widget/v1-shelf.css", () => {
  it("is requested with the answer, and keeps the shelf hidden in its reserved space until it has loaded", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken, timeoutMs: 10_000 }) });
    // The answer waits for the stylesheet's request and the stylesheet for the test: were either asked
    // for only after the other arrived, the shelf would never draw.
    const stylesheetAsked = gate();
    const stylesheet = gate();
    await page.route("**/widget/v1-shelf.css", async (route) => {
      stylesheetAsked.open();
      await stylesheet.opened;
      await route.continue();
    });
    await page.route("**/v1/recommendations**", async (route) => {
      await stylesheetAsked.opened;
      await route.continue();
    });
    // A stylesheet still loading holds the page's load event, like any stylesheet.
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    const before = await page.evaluate(() => document.querySelector(".after")!.getBoundingClientRect().top);
    // The answer arrives and is drawn while the stylesheet is still held.
    await page.waitForFunction(() => document.querySelector("[data-patron]")?.shadowRoot?.querySelector("li a"));
    const unstyled = await page.evaluate(() => {
      const host = document.querySelector<HTMLElement>("[data-patron]")!;
      const root = host.shadowRoot!.querySelector("div")!;
      return { hidden: root.hidden, cardBoxes: root.getClientRects().length, height: host.offsetHeight };
    });
    // Nothing unstyled shows; v1.css keeps the shelf's height: calc(10rem + 9.5rem) at 16px.
    expect(unstyled).toEqual({ hidden: true, cardBoxes: 0, height: 312 });
    stylesheet.open();
    await waitForCards(page);
    await settle(page);
    expect(await shelfStyle(page, "ul", "display")).toBe("grid");
    expect(await page.evaluate(() => document.querySelector(".after")!.getBoundingClientRect().top)).toBe(before);
    expect(await layoutShift(page)).toBeLessThanOrEqual(0.01);
    expect(noise).toEqual([]);
  });

  it("is served like v1.js: cached for a day, open to every origin", async () => {
    const script = await fetch(`${worker.url}/widget/v1.js`);
    const stylesheet = await fetch(`${worker.url}/widget/v1-shelf.css`);
    expect(stylesheet.status).toBe(200);
    expect(stylesheet.headers.get("Content-Type")).toMatch(/^text\/css/);
    expect(await stylesheet.text()).toContain(":host{");
    for (const header of ["Cache-Control", "Access-Control-Allow-Origin", "Cross-Origin-Resource-Policy"]) {
      expect(stylesheet.headers.get(header), header).toBe(script.headers.get(header));
    }
    expect(stylesheet.headers.get("Cache-Control")).toContain("max-age=86400");
  });

  it("collapses the shelf once when it fails to load, with no error", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken, timeoutMs: 10_000 }) });
    await page.route("**/widget/v1-shelf.css", (route) => route.abort());
    await page.goto(`${shopOrigin}/`);
    await page.waitForFunction(() => document.querySelector<HTMLElement>("[data-patron]")?.hidden === true);
    await settle(page);
    const host = await page.evaluate(() => {
      const element = document.querySelector("[data-patron]")!;
      return { height: element.getBoundingClientRect().height, nodes: element.shadowRoot!.childNodes.length };
    });
    expect(host).toEqual({ height: 0, nodes: 0 });
    expect(await layoutShift(page)).toBeLessThanOrEqual(0.1);
    expect(noise).toEqual([]);
  });
});

describe("a scrolling row on a phone", () => {
  for (const width of [320, 360, 375, 414]) {
    it(`shows part of the next card, so the row looks scrollable (${width}px)`, async () => {
      const page = await newPage({ width, height: 900 });
      await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken }) });
      await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
      await waitForCards(page);
      const row = await page.evaluate(() => {
        const ul = document.querySelector("[data-patron]")!.shadowRoot!.querySelector("ul")!;
        const edge = ul.getBoundingClientRect().right;
        const cards = [...ul.querySelectorAll("li")].map((card) => card.getBoundingClientRect());
        return {
          scrolls: ul.scrollWidth > ul.clientWidth,
          whole: cards.filter((card) => card.right <= edge).length,
          peek: Math.max(0, ...cards.filter((card) => card.right > edge).map((card) => edge - card.left)),
          width: cards[0]?.width ?? 0,
        };
      });
      expect(row.scrolls).toBe(true);
      expect(row.whole).toBeGreaterThanOrEqual(2);
      // At least a sixth of a card in sight past the last whole one, never all but a sliver of it.
      expect(row.peek).toBeGreaterThanOrEqual(row.width / 6);
      expect(row.peek).toBeLessThanOrEqual(row.width * 0.8);
    });
  }
});

describe("reasons and titles", () => {
  it("shows each card's reason in its layout, without hover", async () => {
    const page = await newPage({ width: 375, height: 900 });
    await page.emulateMedia({ reducedMotion: "reduce" });
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken }) });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const reasons = await page.evaluate(() =>
      [...document.querySelector("[data-patron]")!.shadowRoot!.querySelectorAll("li a")].map((link) => {
        const reason = link.querySelector("p")!;
        const image = link.querySelector("i")!.getBoundingClientRect();
        const box = reason.getBoundingClientRect();
        const style = getComputedStyle(reason);
        return {
          text: reason.textContent,
          tooltip: reason.title, // The whole reason on hover, where its one line cuts it.
          visible: style.opacity === "1" && style.visibility === "visible" && box.height > 0,
          belowImage: box.top >= image.bottom, // In the card's flow, not laid over the image.
        };
      }),
    );
    expect(reasons.length).toBeGreaterThan(0);
    for (const reason of reasons) {
      expect(reason.text).not.toBe("");
      expect(reason.tooltip).toBe(reason.text);
      expect(reason.visible).toBe(true);
      expect(reason.belowImage).toBe(true);
    }
  });

  it('titles the popular shelf "Popular right now", or data-title-anonymous', async () => {
    // Each page in a browser context of its own. Three pages in one tab timed out twice in many runs on
    // the second or third page (once on its load event, once on its cards; the cause is not established),
    // where the tests that open every page in a new context never have.
    const headingOn = async (page: HostPageOptions) => {
      const tab = await newPage();
      await serveShop(tab, { "/": hostPage(page) });
      await tab.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
      await waitForCards(tab);
      return tab.evaluate(() => document.querySelector("[data-patron]")!.shadowRoot!.querySelector("h2")!.textContent);
    };
    expect(await headingOn({ workerUrl: worker.url })).toBe("Popular right now");
    const custom = '<div data-patron="x" data-title="Picked for you" data-title-anonymous="Bestsellers"></div>';
    expect(await headingOn({ workerUrl: worker.url, mounts: custom })).toBe("Bestsellers");
    expect(await headingOn({ workerUrl: worker.url, token: shopperToken })).toBe("Picked for you");
  });

  it("never shows a signed-in shopper a heading that is not theirs: unseen in the skeleton, the API's once it answers", async () => {
    // An account Patron has no order for: its shelf is the popular one, under data-title-anonymous.
    const stranger = await signShopperToken(
      "account-with-no-orders",
      testSecrets.SHOPPER_TOKEN_SECRET,
      3600,
      new Date(),
    );
    for (const [token, heading] of [
      [stranger, "Popular right now"],
      [shopperToken, "Picked for you"],
    ] as const) {
      const page = await newPage();
      await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token, timeoutMs: 10_000 }) });
      const skeletonUp = gate();
      await page.route("**/v1/recommendations**", async (route) => {
        await skeletonUp.opened;
        await route.continue();
      });
      await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
      const title = () =>
        page.evaluate(() => {
          const h2 = document.querySelector("[data-patron]")?.shadowRoot?.querySelector("h2");
          return h2
            ? { text: h2.textContent, visibility: getComputedStyle(h2).visibility, height: h2.offsetHeight }
            : null;
        });
      await page.waitForFunction(() =>
        document.querySelector("[data-patron]")?.shadowRoot?.querySelector("[aria-busy]"),
      );
      await expect.poll(async () => (await title())?.visibility, { timeout: 10_000 }).toBe("hidden");
      const skeleton = await title();
      expect(skeleton?.height).toBeGreaterThan(0); // Its space kept: nothing moves when it shows.
      skeletonUp.open();
      await waitForCards(page);
      expect(await title()).toEqual({ text: heading, visibility: "visible", height: skeleton?.height });
    }
  });
});

describe("never breaks the host page", () => {
  it("renders without IntersectionObserver, with no error", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    await serveShop(page, {
      "/": hostPage({ workerUrl: worker.url, token: shopperToken, before: "delete window.IntersectionObserver;" }),
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    expect(await page.evaluate(() => typeof window.IntersectionObserver)).toBe("undefined");
    expect((await renderedCards(page)).length).toBeGreaterThan(0);
    expect(noise).toEqual([]);
  });

  it("clamps odd data-limit values to a whole number from 1 to 24 (default 8)", async () => {
    const limits = ["0", "-2", "2.5", "abc", "99"];
    const clamped = [8, 1, 3, 8, 24];
    const page = await newPage();
    const noise = collectNoise(page);
    const mounts = limits.map((limit) => `<div data-patron="x" data-limit="${limit}"></div>`).join("\n");
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, mounts }) });
    const asked = page.waitForRequest((request: Request) => request.url().includes("/v1/recommendations"));
    await page.goto(`${shopOrigin}/`);
    // One request for the page's shelves, enough for all of them (the sum of the clamped limits).
    expect(new URL((await asked).url()).searchParams.get("limit")).toBe("44");
    // The popular shelf may hold fewer: each shelf, in page order, takes what no shelf above it shows.
    const popular = (await (await fetch(`${worker.url}/v1/recommendations?limit=44`)).json()) as {
      data: { items: unknown[] };
    };
    let left = popular.data.items.length;
    const expected = clamped.map((limit) => {
      const count = Math.min(limit, left);
      left -= count;
      return count;
    });
    expect(expected[0]).toBeGreaterThan(0);
    await page.waitForFunction(
      (count) =>
        [...document.querySelectorAll("[data-patron]")].filter(
          (host) => host.shadowRoot?.querySelector("li a") || (host as HTMLElement).hidden,
        ).length === count,
      limits.length,
    );
    const counts = await Promise.all(limits.map(async (_, index) => (await renderedCards(page, index)).length));
    expect(counts).toEqual(expected);
    expect(noise).toEqual([]);
  });

  it("falls back from an unknown lang such as en_US and keeps the shop's currency", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    await serveShop(page, {
      "/": hostPage({
        workerUrl: worker.url,
        lang: "en_US",
        mounts: '<div data-patron="x" data-currency="EUR"></div>',
      }),
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const cards = await renderedCards(page);
    expect(cards.length).toBeGreaterThan(0);
    for (const card of cards) expect(card.price).toMatch(/€/);
    expect(noise).toEqual([]);
  });

  it("shows the popular shelf for an expired token", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: expiredToken }) });
    const answers: number[] = [];
    page.on("response", (response) => {
      if (response.url().includes("/v1/recommendations")) answers.push(response.status());
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    expect(answers[0]).toBe(401);
    expect((await renderedCards(page)).length).toBeGreaterThan(0);
    expect(
      await page.evaluate(() => document.querySelector("[data-patron]")!.shadowRoot!.querySelector("h2")!.textContent),
    ).toBe("Popular right now");
    expect(noise).toEqual([]);
  });

  it("leaves out cards without a safe link or a price, and keeps the neutral tile where a picture fails to load", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken }) });
    // The real answer, with its first card's link made unsafe, its second's taken away, its third's
    // picture pointing at an address that refuses to serve it, and its fourth's price null (not free).
    let titles: string[] = [];
    await page.route("**/v1/recommendations**", async (route) => {
      // The shelf's request only, not the popular shelf the widget caches in the background afterwards.
      if (!route.request().url().includes("token=")) return route.continue();
      const response = await route.fetch();
      const body = (await response.json()) as {
        data: { items: { title: string; url: string | null; imageUrl: string | null; price: number | null }[] };
      };
      const items = body.data.items;
      expect(items.length).toBeGreaterThanOrEqual(5);
      items[0]!.url = "javascript:alert(document.domain)";
      items[1]!.url = null;
      items[2]!.imageUrl = `${worker.url}/widget/no-such-picture.png`;
      items[3]!.price = null;
      titles = items.filter((_, index) => index !== 3).map((item) => item.title);
      await route.fulfill({ response, json: body });
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const cards = await renderedCards(page);
    expect(cards.map((card) => card.title)).toEqual(titles.slice(2, 2 + cards.length));
    for (const card of cards) expect(card.href).toMatch(/^https?:\/\//);
    await expect
      .poll(() =>
        page.evaluate(() => {
          const tile = document.querySelector("[data-patron]")!.shadowRoot!.querySelector("li i")!;
          const picture = tile.querySelector("img")!;
          return {
            failed: picture.complete && picture.naturalWidth === 0,
            tileHeight: tile.getBoundingClientRect().height,
          };
        }),
      )
      .toEqual({ failed: true, tileHeight: expect.any(Number) });
    const tile = await page.evaluate(() => {
      const element = document.querySelector("[data-patron]")!.shadowRoot!.querySelector("li i")!;
      return { height: element.getBoundingClientRect().height, background: getComputedStyle(element).backgroundColor };
    });
    expect(tile.height).toBeGreaterThan(100);
    expect(tile.background).not.toBe("rgba(0, 0, 0, 0)");
    expect(noise).toEqual([]);
  });

  it("leaves a mount point the page hid hidden", async () => {
    const page = await newPage();
    const mounts = '<div data-patron="x"></div><div data-patron="x" hidden id="kept-hidden"></div>';
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken, mounts }) });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page, 0);
    await waitForCards(page, 1); // Rendered inside, but not shown.
    expect(await page.evaluate(() => document.getElementById("kept-hidden")!.hidden)).toBe(true);
    expect(await page.evaluate(() => document.getElementById("kept-hidden")!.getBoundingClientRect().height)).toBe(0);
  });

  it("collapses quietly on a page whose origin the API does not allow", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    const otherOrigin = "http://elsewhere.test";
    await page.context().route(`${otherOrigin}/**`, (route) =>
      route.fulfill({
        status: 200,
        contentType: "text/html; charset=utf-8",
        body: hostPage({ workerUrl: worker.url, token: shopperToken }),
      }),
    );
    await page.goto(`${otherOrigin}/`);
    await page.waitForFunction(() => document.querySelector<HTMLElement>("[data-patron]")?.hidden === true, undefined, {
      timeout: 10_000,
    });
    expect(noise).toEqual([]);
  });
});

describe("strict Content-Security-Policy", () => {
  it("renders the shelf styled under style-src 'self' <worker>, with no violation", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    const options: HostPageOptions = { workerUrl: worker.url, token: shopperToken };
    const csp = `default-src 'self'; style-src 'self' ${worker.url}; script-src 'self' ${worker.url}; connect-src ${worker.url}; img-src * data:`;
    await serveShop(page, { "/": hostPage({ ...options, csp }), ...hostPageAssets(options) });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    expect(await shelfStyle(page, "ul", "display")).toBe("grid");
    expect(await shelfStyle(page, "h2", "font-size")).toBe("20px");
    expect(await page.evaluate(() => (window as unknown as { violations: string[] }).violations)).toEqual([]);
    expect(noise).toEqual([]);
  });
});

describe("events", () => {
  it("counts an impression after a card is half visible for one second, and middle-click and Enter as clicks", async () => {
    const page = await newPage({ width: 1280, height: 600 });
    await page.clock.install();
    const beacons: string[] = [];
    page.on("request", (request) => {
      if (request.url().endsWith("/v1/events")) beacons.push(request.postData() ?? "");
    });
    await serveShop(page, {
      "/": hostPage({
        workerUrl: worker.url,
        token: shopperToken,
        css: ".outside { height: 1500px; }", // The shelf starts below the fold.
      }),
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    // From here the page's timers only move when the test moves them.
    await page.clock.pauseAt(Date.now() + 60_000);
    await page.clock.runFor(5_000);
    expect(beacons.filter((body) => body.includes('"impression"'))).toEqual([]); // Never seen yet.

    await page.evaluate(() => document.querySelector("[data-patron]")!.scrollIntoView());
    await page.waitForTimeout(500); // Lets the browser deliver the intersection (timers stay paused).
    await page.clock.runFor(900);
    await page.waitForTimeout(300);
    expect(beacons.filter((body) => body.includes('"impression"'))).toEqual([]); // Not a second yet.
    await page.clock.runFor(200); // A second has passed: the cards count.
    await page.waitForTimeout(300);
    expect(beacons.filter((body) => body.includes('"impression"'))).toEqual([]); // Held to go together.
    await page.clock.runFor(200); // Their one beacon leaves a fifth of a second later.
    await expect.poll(() => beacons.filter((body) => body.includes('"impression"')).length).toBe(1);
    expect(JSON.parse(beacons.find((body) => body.includes('"impression"'))!).events.length).toBeGreaterThan(1);

    const clicks = () => beacons.filter((body) => body.includes('"click"')).length;
    await page.locator("[data-patron] li a").nth(1).click({ button: "middle" });
    await expect.poll(clicks).toBe(1);
    await page.locator("[data-patron] li a").first().focus();
    await page.keyboard.press("Enter");
    await expect.poll(clicks).toBe(2);
  });

  it("sends the impressions still waiting with a click, at once: the page may be leaving", async () => {
    const page = await newPage({ width: 1280, height: 600 });
    await page.clock.install();
    const beacons: { type: string }[][] = [];
    page.on("request", (request) => {
      if (request.url().endsWith("/v1/events")) beacons.push(JSON.parse(request.postData() ?? "{}").events);
    });
    await serveShop(page, {
      "/": hostPage({ workerUrl: worker.url, token: shopperToken, css: ".outside { height: 1500px; }" }),
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    await page.clock.pauseAt(Date.now() + 60_000);
    await page.evaluate(() => document.querySelector("[data-patron]")!.scrollIntoView());
    await page.waitForTimeout(500); // Lets the browser deliver the intersection (timers stay paused).
    await page.clock.runFor(1_100); // The cards count; their beacon would leave a fifth of a second later.
    await page.waitForTimeout(300);
    expect(beacons).toEqual([]);
    await page.locator("[data-patron] li a").nth(1).click({ button: "middle" });
    await expect.poll(() => beacons.length).toBe(1);
    expect(beacons[0]!.filter((event) => event.type === "impression").length).toBeGreaterThan(1);
    expect(beacons[0]!.filter((event) => event.type === "click")).toHaveLength(1);
    await page.clock.runFor(200); // The held beacon's time: nothing is left to send.
    await page.waitForTimeout(300);
    expect(beacons).toHaveLength(1);
  });
});

describe("accessibility", () => {
  it("names the region by its heading and each card by its visible text", async () => {
    const page = await newPage();
    await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken }) });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const region = await page.evaluate(() => {
      const root = document.querySelector("[data-patron]")!.shadowRoot!;
      const section = root.querySelector("section")!;
      return {
        label: section.getAttribute("aria-label"),
        labelledBy: root.getElementById(section.getAttribute("aria-labelledby") ?? "")?.textContent,
      };
    });
    expect(region).toEqual({ label: null, labelledBy: "Picked for you" });
    const cards = await renderedCards(page);
    for (const card of cards) {
      // The link's own text names it, in the order it shows, the struck price read out as "was".
      const visible = [card.reason, card.title, card.price, card.listPrice && `was ${card.listPrice}`];
      const at = visible.flatMap((text) => (text ? [card.label.indexOf(text)] : []));
      expect(at, card.label).not.toContain(-1);
      expect(at).toEqual([...at].sort((a, b) => a - b));
    }
  });

  it('heads a known shopper\'s shelf "Picked for you" and names its region so without data-title, or with an empty one', async () => {
    // The headings and region names of the page's shelves, once each shows its cards; a page per context.
    const shelvesOn = async (page: HostPageOptions, shelves: number) => {
      const tab = await newPage();
      await serveShop(tab, { "/": hostPage(page) });
      await tab.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
      const found = [];
      for (let index = 0; index < shelves; index++) {
        await waitForCards(tab, index);
        const root = `document.querySelectorAll("[data-patron]")[${index}].shadowRoot`;
        found.push({
          heading: await tab.evaluate(`${root}.querySelector("h2").textContent`),
          region: await accessibleNames(tab, root, "section"),
        });
      }
      return found;
    };
    const untitled = `<div data-patron="x" data-limit="4"></div>
      <div data-patron="x" data-limit="4" data-title="" data-title-anonymous=""></div>`;
    const picked = { heading: "Picked for you", region: ["Picked for you"] };
    expect(await shelvesOn({ workerUrl: worker.url, token: shopperToken, mounts: untitled }, 2)).toEqual([
      picked,
      picked,
    ]);
    // An empty data-title-anonymous falls back the same way.
    const popular = { heading: "Popular right now", region: ["Popular right now"] };
    expect(await shelvesOn({ workerUrl: worker.url, mounts: untitled }, 2)).toEqual([popular, popular]);
  });

  it("keeps sale prices at 4.5:1 contrast on a dark page, and scales type with the page", async () => {
    const page = await newPage();
    await serveShop(page, {
      "/": hostPage({ workerUrl: worker.url, css: ":root { color-scheme: dark; background: #111; font-size: 20px; }" }),
    });
    await page.route("**/v1/recommendations**", (route) =>
      route.fulfill({
        status: 200,
        contentType: "application/json",
        headers: { "Access-Control-Allow-Origin": "*" },
        body: JSON.stringify({
          data: {
            recommendationId: "rec_x",
            arm: "anonymous",
            customerKnown: false,
            items: [{ id: "p1", title: "Tea", url: `${shopOrigin}/p1`, price: 8, listPrice: 10, reason: "On sale" }],
          },
        }),
      }),
    );
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const [red, green, blue] = ((await shelfStyle(page, "ins", "color")) ?? "").match(/\d+/g)!.map(Number) as [
      number,
      number,
      number,
    ];
    const channel = (value: number) => {
      const c = value / 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    const luminance = (r: number, g: number, b: number) =>
      0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    const contrast = (luminance(red, green, blue) + 0.05) / (luminance(17, 17, 17) + 0.05);
    expect(contrast).toBeGreaterThanOrEqual(4.5);
    expect(await shelfStyle(page, "h2", "font-size")).toBe("25px"); // 1.25rem of the page's 20px.
  });

  it("takes its size from --patron-size on a page whose root font size is 62.5%, in the space v1.css reserved", async () => {
    const sizes = async (css: string) => {
      const page = await newPage();
      await serveShop(page, {
        "/": hostPage({ workerUrl: worker.url, css: `html { font-size: 62.5%; } ${css}` }),
      });
      await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
      const reserved = await page.evaluate(
        () => document.querySelector("[data-patron]")!.getBoundingClientRect().height,
      );
      await waitForCards(page);
      await settle(page);
      return {
        reserved,
        ...(await page.evaluate(() => {
          const host = document.querySelector("[data-patron]")!;
          const shadow = host.shadowRoot!;
          return {
            host: host.getBoundingClientRect().height,
            section: shadow.querySelector("section")!.getBoundingClientRect().height,
            heading: getComputedStyle(shadow.querySelector("h2")!).fontSize,
            reason: getComputedStyle(shadow.querySelector("p")!).fontSize,
            image: shadow.querySelector("i")!.getBoundingClientRect().height,
          };
        })),
      };
    };
    // 1.6rem of a 10px root is the reader's 16px: the shelf as on a page that leaves the root alone.
    expect(await sizes("[data-patron] { --patron-size: 1.6rem; }")).toEqual({
      reserved: 312,
      host: 312,
      section: 312,
      heading: "20px",
      reason: "13px",
      image: 160,
    });
    // Without it the shelf follows the root, as every size is a multiple of 1rem.
    expect(await sizes("")).toEqual({
      reserved: 195,
      host: 195,
      section: 195,
      heading: "12.5px",
      reason: "8.125px",
      image: 100,
    });
  });
});
