// The widget's developer surface in real headless Chromium against the real worker under `wrangler dev`:
// placements and page context (data-placement, data-product, data-exclude) with no product repeated
// across shelves, hooks, headless fetch, add-to-cart, SPA unmount/remount without leaks, impressions
// that ignore hidden shelves, arrow-key navigation and the data-debug explanations.
import type { Page, Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { type DevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import {
  type HostPageOptions,
  hostPage,
  popularCached,
  queryLocalD1,
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

interface Picks {
  recommendationId: string;
  placement: string | null;
  items: { id: string; title: string }[];
}

/** What the page's render, empty and click hooks saw (installed through the queue stub). */
interface Seen {
  rendered: { placement?: string; ids: string[]; titles: string[]; mountIndex: number }[];
  empty: { placement?: string; mountIndex: number }[];
  clicks: { placement?: string; id: string; position: number }[];
}

/** Queued before the script loads: the hooks record into window.seen; a throwing and a rejecting hook sit beside them. */
const recordingHooks = `
  window.seen = { rendered: [], empty: [], clicks: [] };
  const mountIndex = (element) => [...document.querySelectorAll("[data-patron]")].indexOf(element);
  patron("on", "render", () => { throw new Error("a broken render hook"); });
  patron("on", "render", ({ element, placement, items }) =>
    seen.rendered.push({ placement, ids: items.map((item) => item.id), titles: items.map((item) => item.title), mountIndex: mountIndex(element) }));
  patron("on", "empty", ({ element, placement }) => seen.empty.push({ placement, mountIndex: mountIndex(element) }));
  patron("on", "click", async () => { throw new Error("a broken async click hook"); });
  patron("on", "click", ({ placement, item, position }) => seen.clicks.push({ placement, id: item.id, position }));
`;

const seen = (page: Page) => page.evaluate(() => (window as unknown as { seen: Seen }).seen);

const newPage = (viewport?: { width: number; height: number }) => suite.newPage(viewport);

async function openShop(page: Page, options: Omit<HostPageOptions, "workerUrl">): Promise<void> {
  await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token: shopperToken, ...options }) });
  await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
}

/** The shopper's picks as the API answers them to a server (no Origin header, so no CORS). */
async function picksFor(query: string): Promise<Picks> {
  const response = await fetch(`${worker.url}/v1/recommendations?token=${encodeURIComponent(shopperToken)}&${query}`);
  if (!response.ok) throw new Error(`GET /v1/recommendations answered ${response.status}`);
  return ((await response.json()) as { data: Picks }).data;
}

/** The JSON bodies of the beacons the page sends to POST /v1/events. */
function collectBeacons(page: Page) {
  const events: Record<string, unknown>[] = [];
  page.on("request", (request: Request) => {
    if (request.url().endsWith("/v1/events") && request.method() === "POST") {
      events.push(...(JSON.parse(request.postData() ?? "{}") as { events: Record<string, unknown>[] }).events);
    }
  });
  return events;
}

/**
 * The shelves' requests to GET /v1/recommendations. The background request for the popular shelf (no
 * context, no token), sent once the shelves are up while none is cached, is left out.
 */
function recommendationRequests(page: Page): URL[] {
  const asked: URL[] = [];
  page.on("request", (request: Request) => {
    const url = new URL(request.url());
    if (url.pathname.endsWith("/v1/recommendations") && url.search !== "?limit=48") asked.push(url);
  });
  return asked;
}

beforeAll(async () => {
  suite = await startWidgetSuite();
  ({ worker, shopperToken, expiredToken } = suite);
});

afterAll(() => suite?.stop());

describe("placements and context", () => {
  it("gives two placements on one page disjoint items, and their events carry placement and position", async () => {
    const page = await newPage({ width: 1280, height: 1400 });
    const noise = collectNoise(page);
    const asked = recommendationRequests(page);
    const beacons = collectBeacons(page);
    const mounts = `<div data-patron="x" data-placement="home" data-limit="6" data-title="Picked for you"></div>
      <div data-patron="x" data-placement="trending" data-limit="6" data-title="Also for you"></div>`;
    await openShop(page, { mounts, before: recordingHooks });
    await waitForCards(page, 0);
    await waitForCards(page, 1);

    // One request per placement, each asking enough for both shelves.
    expect(asked.map((url) => [url.searchParams.get("placement"), url.searchParams.get("limit")]).sort()).toEqual([
      ["home", "12"],
      ["trending", "12"],
    ]);
    const { rendered } = await seen(page);
    const home = rendered.find((shelf) => shelf.placement === "home")!;
    const trending = rendered.find((shelf) => shelf.placement === "trending")!;
    expect(home.ids.length).toBeGreaterThan(0);
    expect(trending.ids.length).toBeGreaterThan(0);
    expect(home.ids.filter((id) => trending.ids.includes(id))).toEqual([]);
    // The hooks describe what the shelves show.
    expect((await renderedCards(page, 0)).map((card) => card.title)).toEqual(home.titles);
    expect((await renderedCards(page, 1)).map((card) => card.title)).toEqual(trending.titles);

    // Impressions (both shelves are on screen) and a click carry the shelf's placement and the card's position.
    await expect
      .poll(() => beacons.filter((event) => event.type === "impression").length, { timeout: 15_000 })
      .toBe(home.ids.length + trending.ids.length);
    for (const event of beacons.filter((event) => event.type === "impression")) {
      const shelf = event.placement === "home" ? home : trending;
      expect(shelf.ids[(event.position as number) - 1]).toBe(event.productId);
    }
    await page.evaluate(() => {
      // Stay on the page: the click is counted, the navigation is not needed.
      const links = document.querySelectorAll("[data-patron]")[1]!.shadowRoot!.querySelectorAll("a");
      links[1]!.addEventListener("click", (event) => event.preventDefault());
    });
    await page.locator("[data-patron] >> nth=1").locator("li a").nth(1).click();
    await expect
      .poll(() => beacons.filter((event) => event.type === "click"))
      .toEqual([expect.objectContaining({ placement: "trending", position: 2, productId: trending.ids[1] })]);
    expect((await seen(page)).clicks).toEqual([{ placement: "trending", id: trending.ids[1], position: 2 }]);

    // The worker stores them with their placement and position (the events count: attribution holds).
    await expect
      .poll(
        () =>
          queryLocalD1<{ placement: string; position: number }>(
            worker.persistDir,
            `SELECT placement, position FROM events WHERE type = 'click' AND product_id = '${trending.ids[1]}'`,
            "EVENTS_DB",
          ),
        { timeout: 15_000 },
      )
      .toEqual([{ placement: "trending", position: 2 }]);
    expect(noise).toEqual([]);
  });

  it("never shows the product page's own product, and asks with product=", async () => {
    const product = (await picksFor("limit=8")).items[0]!.id;
    const page = await newPage();
    const asked = recommendationRequests(page);
    const mounts = `<div data-patron="x" data-placement="product" data-product="${product}" data-limit="8" data-title="Goes with this"></div>`;
    await openShop(page, { mounts, before: recordingHooks });
    await waitForCards(page);
    expect(asked[0]!.searchParams.get("product")).toBe(product);
    expect(asked[0]!.searchParams.get("placement")).toBe("product");
    const { rendered } = await seen(page);
    expect(rendered[0]!.ids.length).toBeGreaterThan(0);
    expect(rendered[0]!.ids).not.toContain(product);
  });

  it("honours data-exclude (the cart): none of its ids shows", async () => {
    const first = (await picksFor("limit=8")).items.slice(0, 3).map((item) => item.id);
    expect(first).toHaveLength(3);
    const page = await newPage();
    const asked = recommendationRequests(page);
    const mounts = `<div data-patron="x" data-placement="cart" data-exclude="${first.join(", ")}" data-limit="8"></div>`;
    await openShop(page, { mounts, before: recordingHooks });
    await waitForCards(page);
    expect(asked[0]!.searchParams.get("exclude")).toBe(first.join(", "));
    const { rendered } = await seen(page);
    expect(rendered[0]!.ids.length).toBeGreaterThan(0);
    expect(rendered[0]!.ids.filter((id) => first.includes(id))).toEqual([]);
  });
});

describe("hooks", () => {
  it("fires render and empty (the page can hide its section), and a throwing hook breaks nothing", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    // The "nothing" placement answers no items: that shelf has nothing to show.
    await page.route(
      (url) => url.pathname.endsWith("/v1/recommendations") && url.searchParams.get("placement") === "nothing",
      (route) =>
        route.fulfill({
          status: 200,
          contentType: "application/json",
          headers: { "Access-Control-Allow-Origin": shopOrigin },
          body: JSON.stringify({ data: { recommendationId: "rec_none", arm: "anonymous", items: [] } }),
        }),
    );
    const mounts = `<div data-patron="x" data-placement="home" data-limit="4"></div>
      <section id="section"><h3>More</h3><div data-patron="x" data-placement="nothing" data-limit="4"></div></section>`;
    const hideSection = `patron("on", "empty", ({ element }) => { element.closest("section").hidden = true; });`;
    await openShop(page, { mounts, before: recordingHooks + hideSection });
    await waitForCards(page, 0);
    await expect.poll(async () => (await seen(page)).empty).toEqual([{ placement: "nothing", mountIndex: 1 }]);
    expect((await seen(page)).rendered).toEqual([expect.objectContaining({ placement: "home", mountIndex: 0 })]);
    expect(await page.evaluate(() => document.getElementById("section")!.hidden)).toBe(true);
    expect(await page.evaluate(() => document.querySelectorAll<HTMLElement>("[data-patron]")[1]!.hidden)).toBe(true);
    expect(noise).toEqual([]); // The throwing render hook and the rejecting click hook stay silent.
  });
});

describe("headless fetch", () => {
  it("resolves to the picks as JSON with the page's token and budget, and to null on failure", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    const product = (await picksFor("limit=8")).items[0]!.id;
    await openShop(page, { mounts: "" });
    await page.waitForFunction(() => (window as unknown as { patron: { loaded?: boolean } }).patron.loaded);
    const picks = await page.evaluate(
      (product) =>
        (window as unknown as { patron: (...args: unknown[]) => Promise<Picks | null> }).patron("fetch", {
          placement: "product",
          product,
          exclude: ["x-1", "x-2"],
          limit: 3,
        }),
      product,
    );
    expect(picks).toMatchObject({ placement: "product", customerKnown: true, recommendationId: expect.any(String) });
    expect(picks!.items.length).toBeGreaterThan(0);
    expect(picks!.items.length).toBeLessThanOrEqual(3);
    expect(picks!.items.map((item) => item.id)).not.toContain(product);

    await page.route("**/v1/recommendations**", (route) => route.abort());
    const failed = await page.evaluate(() =>
      (window as unknown as { patron: (...args: unknown[]) => Promise<Picks | null> }).patron("fetch", {
        placement: "home",
      }),
    );
    expect(failed).toBeNull();
    expect(noise).toEqual([]);
  });

  it("cuts a cached fallback to its limit and leaves out its product and excluded ids, as a shelf does", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    await serveShop(page, {
      // One anonymous shelf of 8: the popular shelf is cached with as many items as any page can need.
      "/": hostPage({ workerUrl: worker.url }),
      "/shop": hostPage({ workerUrl: worker.url, token: shopperToken, mounts: "" }),
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    await page.waitForFunction(() => localStorage.getItem("patron:popular:v1") !== null, undefined, {
      timeout: 10_000,
    });
    const cached = await page.evaluate(
      () => (JSON.parse(localStorage.getItem("patron:popular:v1")!) as { data: Picks }).data.items,
    );
    const popular = await fetch(`${worker.url}/v1/recommendations?limit=48`);
    expect(cached.length).toBe(((await popular.json()) as { data: Picks }).data.items.length);
    expect(cached.length).toBeGreaterThan(8);

    await page.goto(`${shopOrigin}/shop`, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => (window as unknown as { patron: { loaded?: boolean } }).patron.loaded);
    await page.route("**/v1/recommendations**", (route) => route.abort());
    const [product, excluded] = [cached[0]!.id, cached[2]!.id];
    const picks = await page.evaluate(
      ([product, excluded]) =>
        (window as unknown as { patron: (...args: unknown[]) => Promise<Picks | null> }).patron("fetch", {
          placement: "product",
          product,
          exclude: [excluded],
          limit: 4,
        }),
      [product, excluded],
    );
    expect(picks!.items.map((item) => item.id)).toEqual(
      cached
        .map((item) => item.id)
        .filter((id) => id !== product && id !== excluded)
        .slice(0, 4),
    );
    expect(noise).toEqual([]);
  });
});

describe("add to cart", () => {
  it("shows a button on each card that calls the page with the item and recommendation id, and sends an attributed click", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    const beacons = collectBeacons(page);
    const addToCart = `window.carted = [];
      patron("on", "addToCart", ({ item, recommendationId, placement, position }) => carted.push({ id: item.id, recommendationId, placement, position }));`;
    const mounts = '<div data-patron="x" data-placement="home" data-limit="4"></div>';
    await openShop(page, {
      mounts,
      before: recordingHooks + addToCart,
      scriptAttributes: 'data-cart-label="Add to basket"',
    });
    await waitForCards(page);
    const { rendered } = await seen(page);
    const buttons = page.locator("[data-patron] li button");
    expect(await buttons.count()).toBe(rendered[0]!.ids.length);
    expect(await buttons.first().textContent()).toBe("Add to basket");
    expect(await buttons.first().getAttribute("aria-label")).toBe(`Add to basket: ${rendered[0]!.titles[0]}`);
    const url = page.url();
    await buttons.nth(1).click();
    const carted = await page.evaluate(
      () => (window as unknown as { carted: Record<string, unknown>[] }).carted as Record<string, unknown>[],
    );
    expect(carted).toEqual([
      { id: rendered[0]!.ids[1], recommendationId: expect.stringMatching(/^rec_/), placement: "home", position: 2 },
    ]);
    expect(page.url()).toBe(url); // The button does not follow the card's link.
    await expect
      .poll(() => beacons.filter((event) => event.type === "click"))
      .toEqual([
        expect.objectContaining({
          recommendationId: carted[0]!.recommendationId,
          productId: rendered[0]!.ids[1],
          placement: "home",
          position: 2,
        }),
      ]);
    await expect
      .poll(
        () =>
          queryLocalD1<{ n: number }>(
            worker.persistDir,
            `SELECT count(*) AS n FROM events WHERE type = 'click' AND recommendation_id = '${carted[0]!.recommendationId}'`,
            "EVENTS_DB",
          ),
        { timeout: 15_000 },
      )
      .toEqual([{ n: 1 }]);
    expect(noise).toEqual([]);
  });
});

describe("single-page apps", () => {
  it("mounts and takes down 50 shelves with the DOM node count back within 10%", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    // One render hook for the whole test, told which element it waits for.
    const painted = `window.painted = null;
      patron("on", "render", ({ element }) => window.painted?.(element));`;
    await openShop(page, { mounts: "", before: painted });
    await page.waitForFunction(() => (window as unknown as { patron: { loaded?: boolean } }).patron.loaded);
    // One SPA view: a new mount point, mounted, painted, then unmounted and removed; every other view
    // forgets patron("unmount") and only removes it, which the next patron("mount") notices.
    const cycles = (count: number) =>
      page.evaluate(async (count) => {
        const host = window as unknown as {
          patron: (...args: unknown[]) => unknown;
          painted: ((element: Element) => void) | null;
        };
        for (let cycle = 0; cycle < count; cycle++) {
          const element = document.createElement("div");
          element.dataset.patron = "x";
          element.dataset.placement = "spa";
          const shown = new Promise<void>((resolve) => {
            host.painted = (painted) => painted === element && resolve();
          });
          document.body.append(element);
          host.patron("mount");
          await shown;
          host.painted = null;
          if (cycle % 2 === 0) host.patron("unmount", element);
          element.remove();
        }
        host.patron("mount");
      }, count);
    const cdp = await page.context().newCDPSession(page);
    // Detached nodes with script wrappers take more than one collection: collect until the count settles.
    const nodes = async () => {
      let count = Number.POSITIVE_INFINITY;
      for (let round = 0; round < 10; round++) {
        await cdp.send("HeapProfiler.collectGarbage");
        const { nodes } = await cdp.send("Memory.getDOMCounters");
        if (nodes >= count) return nodes;
        count = nodes;
      }
      return count;
    };
    await cycles(1);
    const before = await nodes();
    await cycles(50);
    // Back within 10%: a card's image still loading keeps its detached tree alive until the load ends
    // (with instant images the count is back at once), so the count is read until it settles; nodes the
    // widget kept would never come back.
    await expect.poll(nodes, { timeout: 15_000 }).toBeLessThanOrEqual(before * 1.1);
    expect(noise).toEqual([]);
  });

  it("refetches when a later mount needs more items than were loaded", async () => {
    const page = await newPage();
    const asked = recommendationRequests(page);
    const mounts = '<div id="small" data-patron="x" data-placement="home" data-limit="2"></div>';
    await openShop(page, { mounts });
    await waitForCards(page);
    expect((await renderedCards(page)).length).toBe(2);
    expect(asked.map((url) => url.searchParams.get("limit"))).toEqual(["2"]);
    await page.evaluate(() => {
      const patron = (window as unknown as { patron: (...args: unknown[]) => unknown }).patron;
      const small = document.getElementById("small")!;
      patron("unmount", small);
      small.remove();
      document.body.insertAdjacentHTML(
        "beforeend",
        '<div data-patron="x" data-placement="home" data-limit="10"></div>',
      );
      patron("mount");
    });
    await waitForCards(page);
    expect(asked.map((url) => url.searchParams.get("limit"))).toEqual(["2", "10"]);
    const available = (await picksFor("placement=home&limit=10")).items.length;
    expect(available).toBeGreaterThan(2);
    await expect.poll(async () => (await renderedCards(page)).length).toBe(available);
  });

  it("shares answers out in mount order when a later mount's answer arrives first", async () => {
    const page = await newPage();
    const firstAsked = gate();
    const firstGoes = gate();
    onTestFinished(firstGoes.open);
    await page.route("**/v1/recommendations?limit=4**", async (route) => {
      firstAsked.open();
      await firstGoes.opened;
      await route.continue();
    });
    await openShop(page, { mounts: '<div data-patron="x" data-placement="home" data-limit="4"></div>' });
    await firstAsked.opened;
    await page.evaluate(() => {
      document.body.insertAdjacentHTML("beforeend", '<div data-patron="x" data-placement="home" data-limit="4"></div>');
      (window as unknown as { patron: (...args: unknown[]) => unknown }).patron("mount");
    });
    // The second shelf's answer (limit=8) is in; the first's is held back until now.
    await page.waitForTimeout(500);
    firstGoes.open();
    await waitForCards(page, 0);
    await waitForCards(page, 1);
    const picks = (await picksFor("placement=home&limit=8")).items.map((item) => item.title);
    expect(picks.length).toBe(8);
    await expect.poll(async () => (await renderedCards(page, 0)).map((card) => card.title)).toEqual(picks.slice(0, 4));
    await expect.poll(async () => (await renderedCards(page, 1)).map((card) => card.title)).toEqual(picks.slice(4, 8));
  });

  it("mounts a shelf again when its attributes changed since it mounted (a view that kept the element)", async () => {
    const [first, second] = (await picksFor("limit=8")).items;
    const page = await newPage();
    const asked = recommendationRequests(page);
    await openShop(page, {
      mounts: `<div id="goes" data-patron="x" data-placement="product" data-product="${first!.id}" data-limit="8"></div>`,
    });
    await waitForCards(page);
    await page.evaluate((product) => {
      document.getElementById("goes")!.dataset.product = product;
      (window as unknown as { patron: (...args: unknown[]) => unknown }).patron("mount");
    }, second!.id);
    await expect.poll(() => asked.map((url) => url.searchParams.get("product"))).toEqual([first!.id, second!.id]);
    await expect
      .poll(async () => {
        const titles = (await renderedCards(page)).map((card) => card.title);
        return titles.length > 0 && !titles.includes(second!.title);
      })
      .toBe(true);
    // Mounted again on the same shadow root: one shelf, not two.
    expect(
      await page.evaluate(() => document.getElementById("goes")!.shadowRoot!.querySelectorAll("section").length),
    ).toBe(1);
  });

  it("shows a shelf whose stylesheet failed once when it is mounted again", async () => {
    const page = await newPage();
    let refused = 0;
    await page.route("**/widget/v1-shelf.css", (route) => (refused++ === 0 ? route.abort() : route.continue()));
    await openShop(page, {});
    await expect
      .poll(() => page.evaluate(() => document.querySelector<HTMLElement>("[data-patron]")!.hidden))
      .toBe(true);
    await page.evaluate(() => (window as unknown as { patron: (...args: unknown[]) => unknown }).patron("mount"));
    await waitForCards(page);
    expect(await page.evaluate(() => document.querySelector<HTMLElement>("[data-patron]")!.hidden)).toBe(false);
    expect(refused).toBe(2);
  });
});

describe("impressions", () => {
  it("counts none while a shelf or its ancestor is visibility:hidden or display:none, and counts once it shows", async () => {
    const page = await newPage({ width: 1280, height: 1400 });
    await page.clock.install();
    const beacons = collectBeacons(page);
    const mounts = `<div id="invisible" style="visibility: hidden"><div data-patron="x" data-placement="invisible" data-limit="4"></div></div>
      <div id="undisplayed" style="display: none"><div data-patron="x" data-placement="undisplayed" data-limit="4"></div></div>`;
    await openShop(page, { mounts });
    await waitForCards(page, 0);
    await waitForCards(page, 1);
    // The page's own observer says when the hidden shelf's cards are on screen (a box, though invisible).
    const onScreen = (mountIndex: number) =>
      page.evaluate(
        (mountIndex) =>
          new Promise<number>((resolve) => {
            const card = document.querySelectorAll("[data-patron]")[mountIndex]!.shadowRoot!.querySelector("li")!;
            new IntersectionObserver(([entry]) => resolve(entry!.intersectionRatio)).observe(card);
          }),
        mountIndex,
      );
    expect(await onScreen(0)).toBeGreaterThanOrEqual(0.5);
    await page.clock.pauseAt(Date.now() + 60_000);
    await page.clock.runFor(5_000);
    expect(beacons.filter((event) => event.type === "impression")).toEqual([]);

    await page.evaluate(() => {
      document.getElementById("invisible")!.style.visibility = "visible";
      document.getElementById("undisplayed")!.style.display = "block";
    });
    // Display brings the second shelf's cards into the observer's view; the first's timer is asked again.
    await expect.poll(() => onScreen(1)).toBeGreaterThanOrEqual(0.5);
    await expect
      .poll(async () => {
        await page.clock.runFor(500);
        return [...new Set(beacons.filter((event) => event.type === "impression").map((event) => event.placement))];
      })
      .toEqual(expect.arrayContaining(["invisible", "undisplayed"]));
  });
});

describe("a mount point the page hides itself", () => {
  it("stays hidden with display:none inline or from a class (Tailwind's .hidden), counts no impression, and shows when shown", async () => {
    const page = await newPage({ width: 1280, height: 1400 });
    await page.clock.install();
    const beacons = collectBeacons(page);
    const mounts = `<style>.hidden { display: none; }</style>
      <div id="inline" style="display: none" data-patron="x" data-placement="inline" data-limit="4"></div>
      <div id="classed" class="hidden" data-patron="x" data-placement="classed" data-limit="4"></div>`;
    await openShop(page, { mounts });
    await waitForCards(page, 0);
    await waitForCards(page, 1);
    const shown = () =>
      page.evaluate(() =>
        [...document.querySelectorAll<HTMLElement>("[data-patron]")].map((host) => [
          getComputedStyle(host).display,
          host.checkVisibility(),
        ]),
      );
    expect(await shown()).toEqual([
      ["none", false],
      ["none", false],
    ]);
    await page.clock.pauseAt(Date.now() + 60_000);
    await page.clock.runFor(5_000);
    expect(beacons.filter((event) => event.type === "impression")).toEqual([]);

    await page.evaluate(() => {
      document.getElementById("inline")!.style.display = "";
      document.getElementById("classed")!.classList.remove("hidden");
    });
    expect(await shown()).toEqual([
      ["flow-root", true],
      ["flow-root", true],
    ]);
    await expect
      .poll(async () => {
        await page.clock.runFor(500);
        return [...new Set(beacons.filter((event) => event.type === "impression").map((event) => event.placement))];
      })
      .toEqual(expect.arrayContaining(["inline", "classed"]));
  });
});

describe("impression batching", () => {
  it("sends the impressions of cards that count together in one beacon, not one per card", async () => {
    const page = await newPage({ width: 1280, height: 1400 });
    const requests: number[] = [];
    page.on("request", (request: Request) => {
      if (request.url().endsWith("/v1/events") && request.method() === "POST") {
        const body = JSON.parse(request.postData() ?? "{}") as { events: { type: string }[] };
        requests.push(body.events.filter((event) => event.type === "impression").length);
      }
    });
    const mounts = `<div data-patron="x" data-placement="home" data-limit="4"></div>
      <div data-patron="x" data-placement="home-more" data-limit="4"></div>`;
    await openShop(page, { mounts });
    await waitForCards(page, 0);
    await waitForCards(page, 1);
    // Both shelves' eight cards are on screen at once: a second later their impressions count together.
    await expect.poll(() => requests.reduce((sum, count) => sum + count, 0), { timeout: 15_000 }).toBe(8);
    expect(requests.length).toBeLessThanOrEqual(2);
    expect(Math.max(...requests)).toBeGreaterThanOrEqual(4);
  });
});

describe("impression batching past the API's limit", () => {
  it("splits the impressions of more than 100 cards seen at once into beacons of at most 100 events", async () => {
    const page = await newPage({ width: 1280, height: 6000 });
    const batches: number[] = [];
    page.on("request", (request: Request) => {
      if (request.url().endsWith("/v1/events") && request.method() === "POST")
        batches.push((JSON.parse(request.postData() ?? "{}") as { events: unknown[] }).events.length);
    });
    // Five contexts answered with 24 products of their own each (the demo catalog's answers overlap too
    // much for 120 distinct cards on one page): the widget is what is under test here.
    await page.route("**/v1/recommendations**", (route) => {
      const placement = new URL(route.request().url()).searchParams.get("placement");
      const items = Array.from({ length: 24 }, (_, index) => ({
        id: `${placement}-${index}`,
        title: `Product ${placement} ${index}`,
        price: 10,
        url: `${shopOrigin}/products/${placement}-${index}`,
        imageUrl: null,
        reason: "Picked for the test",
      }));
      return route.fulfill({
        status: 200,
        contentType: "application/json",
        headers: { "Access-Control-Allow-Origin": shopOrigin },
        body: JSON.stringify({
          data: { recommendationId: `rec-${placement}`, arm: "personalized", customerKnown: true, items },
        }),
      });
    });
    await page.route("**/v1/events", (route) => route.fulfill({ status: 202, body: "{}" }));
    const mounts = ["a", "b", "c", "d", "e"]
      .map((name) => `<div data-patron="x" data-placement="${name}" data-layout="grid" data-limit="24"></div>`)
      .join("");
    await page.clock.install();
    // Four rows of six: every card of a shelf in view (past the last row a grid leaves cards out of view).
    // The shelves start below the fold and come into view together, with the page's timers paused.
    await openShop(page, {
      mounts: `<div id="top"></div>${mounts}`,
      css: "[data-patron] { --patron-rows: 4; } .outside { height: 7000px; }",
    });
    for (let index = 0; index < 5; index++) await waitForCards(page, index);
    await page.clock.pauseAt(Date.now() + 60_000);
    await page.evaluate(() => document.getElementById("top")!.scrollIntoView());
    await page.waitForTimeout(500); // Lets the browser deliver the intersections (timers stay paused).
    await page.clock.runFor(1_500); // Every card has been in view a second: all count at once.
    const cards = await page.evaluate(() =>
      [...document.querySelectorAll("[data-patron]")].reduce(
        (sum, host) => sum + (host.shadowRoot?.querySelectorAll("li a").length ?? 0),
        0,
      ),
    );
    expect(cards).toBe(120);
    await expect.poll(() => batches.reduce((sum, count) => sum + count, 0), { timeout: 15_000 }).toBe(120);
    expect(batches).toEqual([100, 20]);
  });
});

describe("an answer with nothing in it", () => {
  it("collapses a buy-again shelf with nothing due, even after the popular shelf was cached on an earlier page", async () => {
    const page = await newPage();
    const again = '<div data-patron="x" data-placement="buy-again" data-title="Time to stock up" data-limit="4"></div>';
    await serveShop(page, {
      // Anonymous: the popular shelf, cached in localStorage as the fallback for the next pages.
      "/": hostPage({ workerUrl: worker.url }),
      "/again": hostPage({ workerUrl: worker.url, before: recordingHooks, mounts: again }),
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    // Cached in the background once the page's shelves are up.
    await popularCached(page);
    const answered = page.waitForResponse((response) => response.url().includes("placement=buy-again"));
    await page.goto(`${shopOrigin}/again`, { waitUntil: "domcontentloaded" });
    // The API answers the anonymous buy-again shelf with no items: nothing is due for a shopper it does not know.
    expect(((await (await answered).json()) as { data: Picks }).data.items).toEqual([]);
    await expect.poll(async () => (await seen(page)).empty).toEqual([{ placement: "buy-again", mountIndex: 0 }]);
    expect(await page.evaluate(() => document.querySelector<HTMLElement>("[data-patron]")!.hidden)).toBe(true);
    expect((await renderedCards(page)).length).toBe(0);
    expect((await seen(page)).rendered).toEqual([]);
  });

  it("collapses a signed-in shopper's buy-again shelf when nothing is due for them", async () => {
    const page = await newPage();
    const token = await signShopperToken("demo-new", testSecrets.SHOPPER_TOKEN_SECRET, 3600, new Date());
    const again = '<div data-patron="x" data-placement="buy-again" data-title="Time to stock up" data-limit="4"></div>';
    await serveShop(page, {
      "/": hostPage({ workerUrl: worker.url }),
      "/again": hostPage({ workerUrl: worker.url, token, before: recordingHooks, mounts: again }),
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    const answered = page.waitForResponse((response) => response.url().includes("placement=buy-again"));
    await page.goto(`${shopOrigin}/again`, { waitUntil: "domcontentloaded" });
    const answer = ((await (await answered).json()) as { data: Picks & { customerKnown: boolean } }).data;
    expect(answer).toMatchObject({ customerKnown: true, items: [] });
    await expect.poll(async () => (await seen(page)).empty).toEqual([{ placement: "buy-again", mountIndex: 0 }]);
    expect((await renderedCards(page)).length).toBe(0);
  });

  it("shows the cached popular shelf for a degraded answer with no items, as for no answer", async () => {
    const page = await newPage();
    await serveShop(page, {
      "/": hostPage({ workerUrl: worker.url }),
      "/degraded": hostPage({ workerUrl: worker.url, token: shopperToken, before: recordingHooks }),
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    await page.waitForFunction(() => localStorage.getItem("patron:popular:v1") !== null, undefined, {
      timeout: 10_000,
    });
    const cached = (await renderedCards(page)).map((card) => card.title);
    // The API's answer while its database is down and it has kept no good shelf (tests/worker/faults.test.ts).
    await page.route("**/v1/recommendations**", (route) =>
      route.fulfill({
        status: 200,
        contentType: "application/json",
        headers: { "Access-Control-Allow-Origin": shopOrigin },
        body: JSON.stringify({
          data: { recommendationId: "rec-degraded", arm: "anonymous", customerKnown: false, items: [], degraded: true },
        }),
      }),
    );
    await page.goto(`${shopOrigin}/degraded`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    expect((await renderedCards(page)).map((card) => card.title)).toEqual(cached);
    expect((await seen(page)).empty).toEqual([]);
  });
});

describe('patron("setToken")', () => {
  const again = '<div data-patron="x" data-placement="buy-again" data-title="Time to stock up" data-limit="4"></div>';

  /** The mount point: its hidden attribute, its height and the cards in its shadow root. */
  const mountPoint = (page: Page) =>
    page.evaluate(() => {
      const host = document.querySelector<HTMLElement>("[data-patron]")!;
      const cards = host.shadowRoot?.querySelectorAll("li a").length ?? 0;
      return { hidden: host.hidden, height: Math.round(host.getBoundingClientRect().height), cards };
    });

  /** An anonymous page whose buy-again shelf has collapsed, and the token of a shopper with items due. */
  async function collapsedBuyAgain(): Promise<{ page: Page; token: string }> {
    // The loyalty-card shopper buys on a rhythm: something is due (tests/widget/demo.test.ts).
    const token = await signShopperToken("demo-store-loyal", testSecrets.SHOPPER_TOKEN_SECRET, 3600, new Date());
    const due = await fetch(
      `${worker.url}/v1/recommendations?placement=buy-again&limit=4&token=${encodeURIComponent(token)}`,
    );
    expect(((await due.json()) as { data: Picks }).data.items.length).toBeGreaterThan(0);
    const page = await newPage();
    await openShop(page, { token: "", mounts: again, before: recordingHooks });
    await expect.poll(async () => (await seen(page)).empty).toEqual([{ placement: "buy-again", mountIndex: 0 }]);
    expect(await mountPoint(page)).toEqual({ hidden: true, height: 0, cards: 0 });
    return { page, token };
  }

  const command = (page: Page, ...args: unknown[]) =>
    page.evaluate((args) => (window as unknown as { patron: (...args: unknown[]) => unknown }).patron(...args), args);

  it("shows a collapsed shelf again once the new shopper has items, and collapses it when they are gone", async () => {
    const { page, token } = await collapsedBuyAgain();
    await command(page, "setToken", token);
    await expect.poll(async () => (await seen(page)).rendered.length).toBe(1);
    await waitForCards(page);
    const shown = await mountPoint(page);
    expect(shown.hidden).toBe(false);
    expect(shown.height).toBeGreaterThan(200);
    expect(shown.cards).toBe((await seen(page)).rendered[0]!.ids.length);

    // Signed out again: nothing is due for an anonymous visitor.
    await command(page, "setToken", "");
    await expect.poll(async () => (await seen(page)).empty.length).toBe(2);
    expect(await mountPoint(page)).toEqual({ hidden: true, height: 0, cards: 0 });
  });

  it("takes the last shopper's picks off the page at once when the token changes, before the new answer", async () => {
    const page = await newPage();
    await openShop(page, { mounts: '<div data-patron="x" data-limit="4"></div>' });
    await waitForCards(page);
    const shelf = () =>
      page.evaluate(() => {
        const root = document.querySelector("[data-patron]")!.shadowRoot!;
        return { cards: root.querySelectorAll("li a").length, text: root.textContent ?? "" };
      });
    expect((await shelf()).text).toContain("You");
    // The signed-out answer is held: what shows meanwhile is the skeleton, not the signed-in shopper's cards.
    const answer = gate();
    await page.route("**/v1/recommendations**", async (route) => {
      await answer.opened;
      await route.continue();
    });
    await command(page, "setToken", "");
    expect(await shelf()).toEqual({ cards: 0, text: "Popular right now" });
    answer.open();
    await waitForCards(page);
    expect((await shelf()).cards).toBe(4);
  });

  it("shows a collapsed shelf again when it is remounted for a shopper with items", async () => {
    const { page, token } = await collapsedBuyAgain();
    await page.evaluate(() => {
      const patron = (window as unknown as { patron: (...args: unknown[]) => unknown }).patron;
      patron("unmount", document.querySelector("[data-patron]"));
    });
    await command(page, "setToken", token);
    await command(page, "mount");
    await expect.poll(async () => (await seen(page)).rendered.length).toBe(1);
    await waitForCards(page);
    const shown = await mountPoint(page);
    expect(shown.hidden).toBe(false);
    expect(shown.height).toBeGreaterThan(200);
  });
});

describe("keyboard", () => {
  it("gives the row one tab stop and moves between cards with the arrow keys, Home and End", async () => {
    const page = await newPage();
    const mounts = `<button id="before">Before</button>
      <div data-patron="x" data-placement="home" data-limit="4"></div>
      <button id="after">After</button>`;
    await openShop(page, { mounts });
    await waitForCards(page);
    const titles = (await renderedCards(page)).map((card) => card.title);
    expect(titles.length).toBeGreaterThan(2);
    const focused = () =>
      page.evaluate(() => {
        const active = document.activeElement;
        const inner = active?.shadowRoot?.activeElement;
        return inner ? (inner.querySelector("b")?.textContent ?? inner.textContent) : (active?.id ?? null);
      });
    await page.focus("#before");
    await page.keyboard.press("Tab");
    expect(await focused()).toBe(titles[0]);
    await page.keyboard.press("ArrowRight");
    expect(await focused()).toBe(titles[1]);
    await page.keyboard.press("End");
    expect(await focused()).toBe(titles.at(-1));
    await page.keyboard.press("ArrowLeft");
    expect(await focused()).toBe(titles.at(-2));
    await page.keyboard.press("Tab"); // One tab stop: out of the row.
    expect(await focused()).toBe("after");
    await page.keyboard.press("Shift+Tab"); // Back to the card that had focus.
    expect(await focused()).toBe(titles.at(-2));
    await page.keyboard.press("Home");
    expect(await focused()).toBe(titles[0]);
  });
  it("brings a grid's card into view when the keyboard moves to it past the last row shown", async () => {
    const page = await newPage({ width: 1280, height: 1200 });
    await openShop(page, { mounts: '<div data-patron="x" data-layout="grid" data-limit="24"></div>' });
    await waitForCards(page);
    const cards = (await renderedCards(page)).length;
    const lastInView = () =>
      page.evaluate(() => {
        const root = document.querySelector("[data-patron]")!.shadowRoot!;
        const grid = root.querySelector("ul")!.getBoundingClientRect();
        const card = [...root.querySelectorAll("li")].at(-1)!.getBoundingClientRect();
        return card.top >= grid.top - 1 && card.bottom <= grid.bottom + 1;
      });
    expect(await lastInView()).toBe(false); // More cards than two rows hold.
    await page.focus("[data-patron]");
    await page.evaluate(() => document.querySelector("[data-patron]")!.shadowRoot!.querySelector("a")!.focus());
    await page.keyboard.press("End");
    expect(
      await page.evaluate(
        () =>
          document.querySelector("[data-patron]")!.shadowRoot!.activeElement?.closest("li") ===
          [...document.querySelector("[data-patron]")!.shadowRoot!.querySelectorAll("li")].at(-1),
      ),
    ).toBe(true);
    expect(cards).toBeGreaterThan(12);
    await expect.poll(lastInView).toBe(true);
  });
});

describe("scroll buttons", () => {
  it("gives a mouse previous and next buttons at the heading's end while the row can scroll that way", async () => {
    const page = await newPage({ width: 1280, height: 800 });
    const noise = collectNoise(page);
    await openShop(page, { mounts: '<div data-patron="x" data-placement="home" data-limit="24"></div>' });
    await waitForCards(page);
    const row = () =>
      page.evaluate(() => {
        const shadow = document.querySelector("[data-patron]")!.shadowRoot!;
        const ul = shadow.querySelector("ul")!;
        const box = shadow.querySelector("section")!.getBoundingClientRect();
        return {
          scrollLeft: ul.scrollLeft,
          overflows: ul.scrollWidth > ul.clientWidth,
          right: box.right,
          top: box.top,
        };
      });
    const start = await row();
    expect(start.overflows).toBe(true);
    expect(start.scrollLeft).toBe(0);
    // The buttons are 2rem (32 px) wide, 0.25rem from the section's top: next at its right end, previous
    // 0.5rem to its left. At the start only next shows: a click where previous would be scrolls nothing.
    const previous = { x: start.right - 44 - 16, y: start.top + 4 + 16 };
    const next = { x: start.right - 4 - 16, y: start.top + 4 + 16 };
    await page.mouse.click(previous.x, previous.y);
    await page.waitForTimeout(300);
    expect((await row()).scrollLeft).toBe(0);
    await page.mouse.click(next.x, next.y);
    await expect.poll(async () => (await row()).scrollLeft).toBeGreaterThan(0);
    const moved = (await row()).scrollLeft;
    await page.waitForTimeout(500); // Smooth scrolling settles.
    await page.mouse.click(previous.x, previous.y);
    await expect.poll(async () => (await row()).scrollLeft).toBeLessThan(moved);
    expect(noise).toEqual([]);
  });

  it("places them by writing direction: on a right-to-left page at the heading's left, next scrolling leftwards", async () => {
    const page = await newPage({ width: 1280, height: 800 });
    const noise = collectNoise(page);
    await openShop(page, {
      mounts: '<div dir="rtl"><div data-patron="x" data-placement="home" data-limit="24"></div></div>',
    });
    await waitForCards(page);
    const row = () =>
      page.evaluate(() => {
        const shadow = document.querySelector("[data-patron]")!.shadowRoot!;
        const ul = shadow.querySelector("ul")!;
        const h2 = getComputedStyle(shadow.querySelector("h2")!);
        const box = shadow.querySelector("section")!.getBoundingClientRect();
        return {
          scrollLeft: ul.scrollLeft,
          overflows: ul.scrollWidth > ul.clientWidth,
          headingRoom: [h2.paddingLeft, h2.paddingRight],
          left: box.left,
          top: box.top,
        };
      });
    const start = await row();
    expect(start.overflows).toBe(true);
    expect(start.scrollLeft).toBe(0);
    // The heading keeps its room for the buttons on its left, where its text ends.
    expect(start.headingRoom).toEqual(["88px", "0px"]);
    // A card's "Add to cart" button (as v1-cart.js draws it) sits in the image's left corner, and a
    // struck list price keeps its space on its right, before the price it follows.
    const card = await page.evaluate(() => {
      const li = document.querySelector("[data-patron]")!.shadowRoot!.querySelector("li")!;
      const button = li.appendChild(document.createElement("button"));
      const struck = li.querySelector("em")!.appendChild(document.createElement("s"));
      const box = li.getBoundingClientRect();
      const at = button.getBoundingClientRect();
      const style = getComputedStyle(struck);
      const placed = {
        left: at.left - box.left,
        right: box.right - at.right,
        margins: [style.marginLeft, style.marginRight],
      };
      button.remove();
      struck.remove();
      return placed;
    });
    expect(card.left).toBe(8);
    expect(card.right).toBeGreaterThan(8);
    expect(card.margins[0]).toBe("0px");
    expect(card.margins[1]).not.toBe("0px");
    // Next at the section's left end, previous 0.5rem to its right; the row starts at its right.
    const next = { x: start.left + 4 + 16, y: start.top + 4 + 16 };
    const previous = { x: start.left + 44 + 16, y: start.top + 4 + 16 };
    await page.mouse.click(previous.x, previous.y);
    await page.waitForTimeout(300);
    expect((await row()).scrollLeft).toBe(0);
    await page.mouse.click(next.x, next.y);
    // Scrolling towards a right-to-left row's end makes scrollLeft negative.
    await expect.poll(async () => (await row()).scrollLeft).toBeLessThan(0);
    const moved = (await row()).scrollLeft;
    await page.waitForTimeout(500); // Smooth scrolling settles.
    await page.mouse.click(previous.x, previous.y);
    await expect.poll(async () => (await row()).scrollLeft).toBeGreaterThan(moved);
    expect(noise).toEqual([]);
  });
});

describe("a shelf on a right-to-left page", () => {
  it("moves focus with the arrow keys the way the row runs, and shows each reason's beginning", async () => {
    const page = await newPage({ width: 1280, height: 800 });
    const noise = collectNoise(page);
    await openShop(page, {
      mounts: '<div dir="rtl"><div data-patron="x" data-placement="home" data-limit="8"></div></div>',
    });
    await waitForCards(page);
    const focused = () =>
      page.evaluate(() => {
        const shadow = document.querySelector("[data-patron]")!.shadowRoot!;
        const links = [...shadow.querySelectorAll("a")];
        const at = links.indexOf(shadow.activeElement as HTMLAnchorElement);
        return { at, x: links[at]?.getBoundingClientRect().x ?? null };
      });
    await page.evaluate(() => document.querySelector("[data-patron]")!.shadowRoot!.querySelector("a")!.focus());
    const first = await focused();
    expect(first.at).toBe(0);
    // The first card is the rightmost: the left arrow goes to the next, which is further left.
    await page.keyboard.press("ArrowLeft");
    const second = await focused();
    expect(second.at).toBe(1);
    expect(second.x as number).toBeLessThan(first.x as number);
    await page.keyboard.press("ArrowRight");
    expect((await focused()).at).toBe(0);
    // Nothing further right of the first card.
    await page.keyboard.press("ArrowRight");
    expect((await focused()).at).toBe(0);

    // A reason cut short loses its end: its first letter is inside its box.
    const reasons = await page.evaluate(() =>
      [...document.querySelector("[data-patron]")!.shadowRoot!.querySelectorAll("p")].map((p) => {
        const text = p.firstChild as Text;
        const range = document.createRange();
        range.setStart(text, 0);
        range.setEnd(text, 1);
        const letter = range.getBoundingClientRect();
        const box = p.getBoundingClientRect();
        return {
          cut: p.scrollWidth > p.clientWidth,
          firstLetterShown: letter.left >= box.left - 0.5 && letter.right <= box.right + 0.5,
        };
      }),
    );
    expect(reasons.filter((reason) => reason.cut).length).toBeGreaterThan(0);
    expect(reasons.filter((reason) => !reason.firstLetterShown)).toEqual([]);
    expect(noise).toEqual([]);
  });
});

/** The lines the page prints with console.info, as they come. */
function consoleInfo(page: Page): string[] {
  const info: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "info") info.push(message.text());
  });
  return info;
}

describe("data-debug", () => {
  it("explains with console.info why the popular shelf shows, never printing the token", async () => {
    const page = await newPage();
    const info = consoleInfo(page);
    await openShop(page, { token: expiredToken, scriptAttributes: "data-debug" });
    await waitForCards(page);
    await expect.poll(() => info.join("\n")).toContain("refused the shopper token");
    expect(info.join("\n")).toContain("sign a fresh one"); // The API's own reason.
    expect(info.join("\n")).not.toContain(expiredToken);
    expect(info.join("\n")).not.toContain(expiredToken.split(".")[2]!);
  });

  it("names the setting the API refused, once however many shelves asked", async () => {
    const page = await newPage();
    const info = consoleInfo(page);
    // Two contexts (two requests), the same refusal. Neither is asked again without the token: a 400 on
    // the shelf's own settings would be refused again.
    const mounts = ["Home Page!", "Home Page!!"]
      .map((name) => `<div data-patron="x" data-placement="${name}" data-limit="4"></div>`)
      .join("");
    const refused: string[] = [];
    page.on("response", (response) => {
      if (response.url().includes("/v1/recommendations") && response.status() === 400) refused.push(response.url());
    });
    await openShop(page, { scriptAttributes: "data-debug", mounts });
    await expect.poll(() => refused.length).toBeGreaterThanOrEqual(2);
    await expect
      .poll(() =>
        page.evaluate(() => [...document.querySelectorAll<HTMLElement>("[data-patron]")].every((host) => host.hidden)),
      )
      .toBe(true);
    await page.waitForTimeout(300); // Lets the debug module print whatever it would.
    expect(refused).toHaveLength(2);
    expect(refused.every((url) => url.includes("token="))).toBe(true);
    expect(info.join("\n")).toMatch(/placement: \S/);
    expect(info.filter((line) => line.includes("refused the shelf's settings"))).toHaveLength(1);
    expect(info.join("\n")).toContain("popular shelf if one is cached, else nothing");
    expect(info.join("\n")).not.toContain(shopperToken);
  });

  it("shows the popular shelf for a token over the API's 4,096 characters, asked for again without it", async () => {
    const page = await newPage();
    const info = consoleInfo(page);
    const asked = recommendationRequests(page);
    const longToken = `${shopperToken}.${"x".repeat(4096)}`; // Refused with 400 on `token`, not 401.
    await openShop(page, { token: longToken, scriptAttributes: "data-debug" });
    await waitForCards(page);
    expect(asked.map((url) => url.searchParams.has("token"))).toEqual([true, false]);
    await expect
      .poll(() => info.join("\n"))
      .toMatch(/refused the shopper token: .* token: \S.*fetched without the token/);
    expect(info.join("\n")).not.toContain(shopperToken);
  });

  it("explains a token the API took for an account it knows no customer of, and says nothing of a known shopper's", async () => {
    const page = await newPage();
    const info = consoleInfo(page);
    const stranger = await signShopperToken("nobody-ordered-yet", testSecrets.SHOPPER_TOKEN_SECRET, 3600, new Date());
    await openShop(page, { token: stranger, scriptAttributes: "data-debug" });
    await waitForCards(page);
    await expect.poll(() => info.join("\n")).toContain("knows no customer with its account");
    expect(info.join("\n")).toContain("identifiers.account");
    expect(info.join("\n")).not.toContain(stranger);

    const known = await newPage();
    const knownInfo = consoleInfo(known);
    await openShop(known, { token: shopperToken, scriptAttributes: "data-debug" });
    await waitForCards(known);
    await known.waitForTimeout(300); // Lets the debug module print whatever it would.
    expect(knownInfo).toEqual([]);
  });

  it("hides a mount point that cannot hold a shadow root, fires its empty hook and says why", async () => {
    const page = await newPage();
    const info = consoleInfo(page);
    const mounts =
      '<ul><li>A</li><li data-patron="x" data-placement="home"></li></ul><div data-patron="x" data-placement="home"></div>';
    await openShop(page, { scriptAttributes: "data-debug", mounts, before: recordingHooks });
    await waitForCards(page, 1);
    const li = await page.evaluate(() => {
      const host = document.querySelector("li[data-patron]") as HTMLElement;
      return { hidden: host.hidden, height: host.getBoundingClientRect().height, shadow: host.shadowRoot !== null };
    });
    expect(li).toEqual({ hidden: true, height: 0, shadow: false });
    expect((await seen(page)).empty).toEqual([{ placement: "home", mountIndex: 0 }]);
    await expect.poll(() => info.join("\n")).toContain("a mount point (data-patron) cannot hold a shelf");
    // Once: a remount passes it by. A page's own element with a shadow root of its own is left as it is.
    const own = await page.evaluate(() => {
      const element = document.body.appendChild(document.createElement("div"));
      element.dataset.patron = "x";
      element.attachShadow({ mode: "open" }).innerHTML = "<p>the page's own</p>";
      (window as unknown as { patron: (command: string) => void }).patron("mount");
      return { hidden: element.hidden, text: element.shadowRoot!.textContent };
    });
    await page.waitForTimeout(300);
    expect(own).toEqual({ hidden: false, text: "the page's own" });
    expect((await seen(page)).empty).toEqual([{ placement: "home", mountIndex: 0 }]);
    expect(info.filter((line) => line.includes("cannot hold a shelf"))).toHaveLength(1);
  });

  it("explains a spent time budget", async () => {
    const page = await newPage();
    const info = consoleInfo(page);
    const testFinished = gate();
    onTestFinished(testFinished.open);
    await page.route("**/v1/recommendations**", async (route) => {
      await testFinished.opened; // Held until the test ends: only the widget's budget ends the wait.
      await route.continue().catch(() => {});
    });
    await openShop(page, { timeoutMs: 800, scriptAttributes: "data-debug" });
    await expect.poll(() => info.join("\n")).toContain("did not answer within data-timeout (800 ms");
    expect(info.join("\n")).not.toContain(shopperToken);
  });

  it("explains a page whose origin the API does not allow", async () => {
    const page = await newPage();
    const info = consoleInfo(page);
    const otherOrigin = "http://elsewhere.test";
    await page.context().route(`${otherOrigin}/**`, (route) =>
      route.fulfill({
        status: 200,
        contentType: "text/html; charset=utf-8",
        body: hostPage({ workerUrl: worker.url, token: shopperToken, scriptAttributes: "data-debug" }),
      }),
    );
    await page.goto(`${otherOrigin}/`);
    await expect.poll(() => info.join("\n"), { timeout: 15_000 }).toContain(`origin (${otherOrigin}) is not in`);
    expect(info.join("\n")).toContain("showing the popular shelf if one is cached, else nothing.");
    expect(info.join("\n")).not.toContain(shopperToken);
  });
});
