// What an integrator meets embedding the shelf, in real headless Chromium against the real worker under
// `wrangler dev`: the script tag's and mount points' attributes as page templates print them, the page's
// own outline and routing, and what a screen reader and the keyboard find.
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { type DevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import {
  type HostPageOptions,
  hostPage,
  popularCached,
  renderedCards,
  serveShop,
  shopOrigin,
  waitForCards,
} from "./harness.ts";
import { collectNoise, gate, startWidgetSuite, type WidgetSuite } from "./suite.ts";

let worker: DevWorker;
let shopperToken: string;
let suite: WidgetSuite;

beforeAll(async () => {
  suite = await startWidgetSuite();
  ({ worker, shopperToken } = suite);
});

afterAll(() => suite?.stop());

const newPage = (viewport?: { width: number; height: number }) => suite.newPage(viewport);

async function openShop(page: Page, options: Omit<HostPageOptions, "workerUrl">): Promise<void> {
  await serveShop(page, { "/": hostPage({ workerUrl: worker.url, ...options }) });
  await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
}

/** A shelf's heading: its element, its text and its font size. */
const heading = (page: Page, mountIndex = 0) =>
  page.evaluate((index) => {
    const title = document.querySelectorAll("[data-patron]")[index]!.shadowRoot!.querySelector("#title")!;
    return { tag: title.tagName.toLowerCase(), text: title.textContent, fontSize: getComputedStyle(title).fontSize };
  }, mountIndex);

/** The regions, headings, lists and links Chromium exposes to assistive technology on the page, in order. */
async function accessibilityTree(page: Page): Promise<{ role: string; name: string; level?: number }[]> {
  const session = await page.context().newCDPSession(page);
  try {
    const { nodes } = await session.send("Accessibility.getFullAXTree");
    const shown = nodes.filter((node) => !node.ignored);
    return shown
      .map((node) => ({
        role: String(node.role?.value ?? ""),
        name: String(node.name?.value ?? ""),
        level: node.properties?.find((property) => property.name === "level")?.value.value as number | undefined,
      }))
      .filter((node) => ["region", "heading", "list", "listitem", "link"].includes(node.role));
  } finally {
    await session.detach();
  }
}

describe("data-token", () => {
  it("trims the spaces and line breaks a page template leaves around the token, and setToken's too", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    const tokens: (string | null)[] = [];
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (url.pathname.endsWith("/v1/recommendations")) tokens.push(url.searchParams.get("token"));
    });
    await openShop(page, { token: `\n      ${shopperToken}\n    ` });
    await waitForCards(page);
    // The shopper's own picks under their heading: the API took the token at the first asking.
    expect((await heading(page)).text).toBe("Picked for you");
    expect(tokens[0]).toBe(shopperToken);
    await page.evaluate(
      (token) => (window as unknown as { patron: (...args: unknown[]) => void }).patron("setToken", ` ${token}\t`),
      shopperToken,
    );
    await expect.poll(() => tokens.filter((token) => token !== null).length).toBe(2);
    expect(tokens.filter((token) => token !== null)).toEqual([shopperToken, shopperToken]);
    await waitForCards(page);
    expect((await heading(page)).text).toBe("Picked for you");
    expect(noise).toEqual([]);
  });
});

describe("data-timeout", () => {
  it.each(["-1", "0", "abc", "1e12"])(
    "shows the shopper's shelf with data-timeout=%s, read as no budget the page meant",
    async (value) => {
      const page = await newPage();
      const noise = collectNoise(page);
      await openShop(page, { token: shopperToken, scriptAttributes: `data-timeout="${value}"` });
      await waitForCards(page);
      expect((await heading(page)).text).toBe("Picked for you");
      expect((await renderedCards(page)).length).toBeGreaterThan(0);
      expect(noise).toEqual([]);
      await page.close();
    },
  );
});

describe("setToken", () => {
  it("sends the impressions counted for the last shopper with their token, not with the next one's", async () => {
    const page = await newPage();
    await page.clock.install();
    const beacons: { token?: string; events: { type: string; recommendationId: string }[] }[] = [];
    page.on("request", (request) => {
      if (request.url().endsWith("/v1/events")) beacons.push(JSON.parse(request.postData() ?? "{}"));
    });
    const personal = page.waitForResponse((response) => response.url().includes("token="));
    // The shelf below the fold: its cards start counting only once scrolled into view, on the paused clock.
    const mounts = '<div style="height: 3000px"></div><div data-patron="picked-for-you" data-limit="8"></div>';
    await openShop(page, { token: shopperToken, mounts });
    const { data } = (await (await personal).json()) as { data: { recommendationId: string } };
    await waitForCards(page);
    await page.clock.pauseAt(Date.now() + 60_000);
    await page.evaluate(() => document.querySelector("[data-patron]")!.scrollIntoView());
    // The page's own observer reports after the widget's, which was registered first: its timers are running.
    await expect
      .poll(() =>
        page.evaluate(
          () =>
            new Promise<number>((resolve) =>
              new IntersectionObserver(([entry]) => resolve(entry!.intersectionRatio)).observe(
                document.querySelector("[data-patron]")!.shadowRoot!.querySelector("li")!,
              ),
            ),
        ),
      )
      .toBeGreaterThanOrEqual(0.5);
    // A second in view counts the cards; their beacon waits a fifth of a second for other cards, and the
    // shopper signs out meanwhile.
    await page.clock.runFor(1_050);
    await page.evaluate(() => (window as unknown as { patron: (...args: unknown[]) => void }).patron("setToken", ""));
    await page.clock.runFor(1_000);
    const tokens = () =>
      beacons.flatMap((beacon) =>
        beacon.events
          .filter((event) => event.type === "impression" && event.recommendationId === data.recommendationId)
          .map(() => beacon.token ?? null),
      );
    await expect.poll(() => tokens().length).toBeGreaterThan(0);
    expect(new Set(tokens())).toEqual(new Set([shopperToken]));
    await page.close();
  });
});

describe("mount point attributes with spaces", () => {
  it("trims data-placement and data-currency, and an empty data-placement costs no shelf its impressions", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    const placements: (string | null)[] = [];
    const beacons: { status: number; events: { placement?: string }[] }[] = [];
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (url.pathname.endsWith("/v1/recommendations") && url.searchParams.has("token"))
        placements.push(url.searchParams.get("placement"));
    });
    page.on("response", async (response) => {
      if (response.url().endsWith("/v1/events")) {
        const { events } = JSON.parse(response.request().postData() ?? "{}");
        beacons.push({ status: response.status(), events });
      }
    });
    // As a template prints them: a placement with spaces around it, and one whose value was never set.
    const mounts = `<div data-patron="x" data-placement=" home " data-currency=" EUR " data-limit="4"></div>
      <div data-patron="x" data-placement="" data-limit="4"></div>`;
    await openShop(page, { token: shopperToken, mounts });
    await waitForCards(page, 0);
    await waitForCards(page, 1);
    expect(placements).toHaveLength(2);
    expect(new Set(placements)).toEqual(new Set(["home", null]));
    // The shopper's own shelf, not the popular one standing in for settings the API refused.
    expect((await heading(page, 0)).text).toBe("Picked for you");
    expect((await renderedCards(page, 0))[0]!.price).toMatch(/€/);
    // The cards of both shelves count after a second in view, in beacons the API takes.
    await expect
      .poll(() => beacons.flatMap((beacon) => beacon.events).length, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(8);
    expect(beacons.map((beacon) => beacon.status)).toEqual(beacons.map(() => 202));
    const sent = beacons.flatMap((beacon) => beacon.events.map((event) => event.placement ?? null));
    expect(new Set(sent)).toEqual(new Set(["home", null]));
    expect(noise).toEqual([]);
  });

  it("heads a shelf whose data-title and data-title-anonymous are blank with the defaults, never with nothing", async () => {
    const page = await newPage();
    await openShop(page, {
      mounts: '<div data-patron="x" data-title=" " data-title-anonymous="\n  " data-limit="4"></div>',
    });
    await waitForCards(page);
    expect((await heading(page)).text).toBe("Popular right now");
    // The region is named by its heading: a blank one would leave it without a name.
    const regions = (await accessibilityTree(page)).filter((node) => node.role === "region");
    expect(regions.map((node) => node.name)).toEqual(["Popular right now"]);
  });

  it('lays data-layout=" grid " and "Grid" out as the grid, v1.css reserving its height, as data-layout="grid"', async () => {
    const page = await newPage({ width: 1280, height: 1200 });
    const noise = collectNoise(page);
    const mounts = ["grid", " grid ", "Grid", "\n  GRID\n"]
      .map((layout) => `<div data-patron="x" data-layout="${layout}" data-limit="4"></div>`)
      .join("\n");
    await openShop(page, { mounts });
    // What v1.css reserves before the script has drawn anything.
    const reserved = await page.evaluate(() =>
      [...document.querySelectorAll("[data-patron]")].map((host) => getComputedStyle(host).minHeight),
    );
    for (let index = 0; index < 4; index++) await waitForCards(page, index);
    const layouts = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>("[data-patron]")].map((host) => {
        const root = host.shadowRoot!;
        return {
          flow: getComputedStyle(root.querySelector("ul")!).gridAutoFlow,
          // The shelf fills exactly the space v1.css reserved.
          fills: Math.abs(host.getBoundingClientRect().height - root.querySelector("section")!.offsetHeight) <= 1,
        };
      }),
    );
    // The grid's rows, taller than the one scrolling row's reservation.
    expect(new Set(reserved).size).toBe(1);
    expect(Number.parseFloat(reserved[0]!)).toBeGreaterThan(19.5 * 16);
    expect(layouts).toEqual(layouts.map(() => ({ flow: "row", fills: true })));
    expect(noise).toEqual([]);
  });
});

describe("data-api", () => {
  it("takes an API base pasted with the routes' /v1 at its end, with or without a slash", async () => {
    for (const base of [`${worker.url}/v1`, `${worker.url}/v1/`, `${worker.url}/`]) {
      const page = await newPage();
      const noise = collectNoise(page);
      const paths: string[] = [];
      page.on("request", (request) => {
        const url = new URL(request.url());
        if (url.origin === new URL(worker.url).origin) paths.push(url.pathname);
      });
      await openShop(page, { token: shopperToken, scriptAttributes: `data-api="${base}"` });
      await waitForCards(page);
      expect((await heading(page)).text, base).toBe("Picked for you");
      expect(paths, base).toContain("/v1/recommendations");
      // The stylesheet from the API's /widget/, and nothing asked of /v1/v1/.
      expect(paths, base).toContain("/widget/v1-shelf.css");
      expect(
        paths.filter((path) => path.startsWith("/v1/v1/") || path.startsWith("/v1/widget/")),
        base,
      ).toEqual([]);
      expect(noise, base).toEqual([]);
    }
  });
});

describe("a data-placement the API refuses", () => {
  it("costs the page's other shelves none of their impressions: the popular shelf standing in sends its events without it", async () => {
    const page = await newPage();
    const noise = collectNoise(page);
    const beacons: { status: number; events: { placement?: string }[] }[] = [];
    page.on("response", async (response) => {
      if (response.url().endsWith("/v1/events")) {
        const { events } = JSON.parse(response.request().postData() ?? "{}");
        beacons.push({ status: response.status(), events });
      }
    });
    const mounts = `<div data-patron="x" data-placement="Home" data-limit="4"></div>
      <div data-patron="x" data-placement="home" data-limit="4"></div>`;
    await serveShop(page, {
      // Anonymous, its shelf out of view: it caches the popular shelf in the background and counts nothing.
      "/": hostPage({ workerUrl: worker.url, css: ".outside { height: 3000px; }" }),
      "/refused": hostPage({ workerUrl: worker.url, token: shopperToken, mounts }),
    });
    await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
    await waitForCards(page);
    await popularCached(page);
    await page.goto(`${shopOrigin}/refused`, { waitUntil: "domcontentloaded" });
    await waitForCards(page, 0);
    await waitForCards(page, 1);
    // The API refused "Home" (a placement is lowercase): the cached popular shelf stands in.
    expect((await heading(page, 0)).text).toBe("Popular right now");
    expect((await heading(page, 1)).text).toBe("Picked for you");
    await expect
      .poll(() => beacons.flatMap((beacon) => beacon.events).length, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(8);
    expect(beacons.map((beacon) => beacon.status)).toEqual(beacons.map(() => 202));
    const sent = beacons.flatMap((beacon) => beacon.events.map((event) => event.placement ?? null));
    expect(new Set(sent)).toEqual(new Set(["home", null]));
    expect(noise).toEqual([]);
  });
});

describe("the skeleton", () => {
  it("is no list of empty items to a screen reader: the region and its cards show once the answer came", async () => {
    const page = await newPage();
    const answer = gate();
    await page.route("**/v1/recommendations**", async (route) => {
      await answer.opened;
      await route.continue();
    });
    await openShop(page, {
      mounts:
        '<button id="before">Before</button><div data-patron="x" data-limit="8"></div><button id="after">After</button>',
    });
    await page.waitForFunction(() =>
      document.querySelector("[data-patron]")?.shadowRoot?.querySelector("div:not([hidden]) [aria-busy] li"),
    );
    const loading = await accessibilityTree(page);
    expect(loading.filter((node) => node.role === "listitem" || node.role === "list")).toEqual([]);
    // Nothing in it to focus either: the keyboard passes the empty row by (no scroll button, no tab stop).
    await page.focus("#before");
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("after");
    answer.open();
    await waitForCards(page);
    const shown = await accessibilityTree(page);
    const cards = (await renderedCards(page)).length;
    expect(cards).toBeGreaterThan(0);
    expect(shown.filter((node) => node.role === "listitem")).toHaveLength(cards);
    expect(shown.filter((node) => node.role === "link")).toHaveLength(cards);
  });

  it("announces no heading while it loads, a signed-in shopper's or the popular one: a busy section, the region named once the answer came", async () => {
    // An account Patron has no order for: its shelf turns out to be the popular one, under data-title-anonymous.
    const stranger = await signShopperToken(
      "account-with-no-orders",
      testSecrets.SHOPPER_TOKEN_SECRET,
      3600,
      new Date(),
    );
    for (const [token, title] of [
      [shopperToken, "Picked for you"],
      [stranger, "Popular right now"],
      [undefined, "Popular right now"],
    ] as const) {
      const page = await newPage();
      const answer = gate();
      await page.route("**/v1/recommendations**", async (route) => {
        await answer.opened;
        await route.continue();
      });
      await openShop(page, { token, timeoutMs: 10_000, mounts: '<div data-patron="x" data-limit="8"></div>' });
      await page.waitForFunction(() =>
        document.querySelector("[data-patron]")?.shadowRoot?.querySelector("div:not([hidden]) [aria-busy] li"),
      );
      const section = () =>
        page.evaluate(() => {
          const found = document.querySelector("[data-patron]")!.shadowRoot!.querySelector("section")!;
          return { busy: found.getAttribute("aria-busy"), labelledBy: found.getAttribute("aria-labelledby") };
        });
      const shown = async () =>
        (await accessibilityTree(page)).filter((node) => node.role === "region" || node.role === "heading");
      // No "Picked for you" before the API has said whose shelf it is, nor a heading over a shelf that may
      // yet be hidden: only a section that says it is busy.
      expect(await shown(), token ? "signed in" : "anonymous").toEqual([]);
      expect(await section()).toEqual({ busy: "true", labelledBy: null });
      answer.open();
      await waitForCards(page);
      expect(await shown()).toEqual([
        { role: "region", name: title, level: undefined },
        { role: "heading", name: title, level: 2 },
      ]);
      expect(await section()).toEqual({ busy: null, labelledBy: "title" });
      await page.close();
    }
  });
});

describe("data-heading-level", () => {
  it("draws the heading at the level the page's outline needs, an h2 by default, looking the same at every level", async () => {
    const page = await newPage();
    const mounts = [undefined, "3", "1", "9", "abc", "0"]
      .map(
        (level, index) =>
          `<div data-patron="x" data-placement="shelf-${index}" data-limit="2"${level ? ` data-heading-level="${level}"` : ""}></div>`,
      )
      .join("\n");
    await openShop(page, { token: shopperToken, mounts });
    for (let index = 0; index < 6; index++) await waitForCards(page, index);
    const headings = [];
    for (let index = 0; index < 6; index++) headings.push(await heading(page, index));
    // Out of range is clamped (9 → 6), not a number means the default, as for data-limit.
    expect(headings.map((found) => found.tag)).toEqual(["h2", "h3", "h1", "h6", "h2", "h2"]);
    expect(new Set(headings.map((found) => found.fontSize))).toEqual(new Set(["20px"]));
    const levels = (await accessibilityTree(page))
      .filter((node) => node.role === "heading" && node.name === "Picked for you")
      .map((node) => node.level);
    expect(levels).toEqual([2, 3, 1, 6, 2, 2]);
  });
});

describe("the click hook", () => {
  it("gets the browser's click event, whose preventDefault() keeps the page where it is, and the click still counts", async () => {
    const page = await newPage();
    const beacons: string[] = [];
    page.on("request", (request) => {
      if (request.url().endsWith("/v1/events")) beacons.push(request.postData() ?? "");
    });
    // A single-page app that routes a plain click itself and leaves a modified one to the browser.
    const before = `
      window.routed = [];
      patron("on", "click", ({ event, item }) => {
        if (event.button === 0 && !event.metaKey && !event.ctrlKey) {
          event.preventDefault();
          routed.push(item.id);
        }
      });`;
    await openShop(page, { token: shopperToken, before });
    await waitForCards(page);
    const cardId = new URL((await renderedCards(page))[0]!.href).pathname;
    await page.locator("[data-patron] li a").first().click();
    await expect.poll(() => beacons.filter((body) => body.includes('"click"')).length).toBe(1);
    // The page is still the shop's: the browser did not follow the link.
    await page.waitForTimeout(300);
    expect(page.url()).toBe(`${shopOrigin}/`);
    expect(await page.evaluate(() => (window as unknown as { routed: string[] }).routed)).toHaveLength(1);
    expect(cardId).not.toBe("/");
  });
});

describe("scroll buttons and the keyboard", () => {
  it("keeps focus on a scroll button that has scrolled the row to its end, aria-disabled, so pressing it again scrolls nothing and follows no link", async () => {
    const page = await newPage({ width: 1280, height: 800 });
    const noise = collectNoise(page);
    await openShop(page, {
      token: shopperToken,
      mounts: '<button id="before">Before</button><div data-patron="x" data-placement="home" data-limit="24"></div>',
    });
    await waitForCards(page);
    const focus = () =>
      page.evaluate(() => {
        const host = document.querySelector("[data-patron]")!;
        const inner = host.shadowRoot!.activeElement;
        const links = [...host.shadowRoot!.querySelectorAll("li a")];
        const row = host.shadowRoot!.querySelector("ul")!;
        const button = inner?.matches("section > button")
          ? `${inner.getAttribute("aria-label")}${inner.getAttribute("aria-disabled") === "true" ? " (disabled)" : ""}`
          : null;
        return {
          outer: document.activeElement === host ? "shelf" : document.activeElement!.tagName.toLowerCase(),
          inner: button ?? (inner ? `card ${links.indexOf(inner) + 1} of ${links.length}` : null),
          // Seen: a focused button that cannot scroll stays on screen, dimmed, not hidden.
          visible: inner ? getComputedStyle(inner).visibility === "visible" : null,
          at:
            row.scrollLeft === 0 ? "start" : row.scrollLeft + row.clientWidth + 1 > row.scrollWidth ? "end" : "middle",
        };
      });
    const scrollLeft = () =>
      page.evaluate(() => document.querySelector("[data-patron]")!.shadowRoot!.querySelector("ul")!.scrollLeft);
    await page.focus("#before");
    await page.keyboard.press("Tab"); // The Next button: Previous, which cannot scroll at the row's start, is no tab stop.
    expect(await focus()).toEqual({ outer: "shelf", inner: "Next", visible: true, at: "start" });
    await page.keyboard.press("Enter");
    await expect.poll(scrollLeft).toBeGreaterThan(0);
    // Partway along, focus stays on the button, to press it again.
    await page.waitForTimeout(600);
    expect(await focus()).toEqual({ outer: "shelf", inner: "Next", visible: true, at: "middle" });
    for (let presses = 0; presses < 20 && (await focus()).at !== "end"; presses++) {
      await page.keyboard.press("Enter");
      await page.waitForTimeout(600);
    }
    // At the end it stays where it was, focused and seen, and says it can do no more.
    await expect.poll(focus).toEqual({ outer: "shelf", inner: "Next (disabled)", visible: true, at: "end" });
    // Enter once more, still meaning "scroll": nothing moves, and the page is still the shop's (a card's
    // link, had focus moved to it, would have left the page).
    const end = await scrollLeft();
    await page.keyboard.press("Enter");
    await page.waitForTimeout(600);
    expect(page.url()).toBe(`${shopOrigin}/`);
    expect(await scrollLeft()).toBe(end);
    expect(await focus()).toEqual({ outer: "shelf", inner: "Next (disabled)", visible: true, at: "end" });
    // Shift+Tab from there reaches Previous, which back at the start keeps focus the same way.
    await page.keyboard.press("Shift+Tab");
    expect(await focus()).toEqual({ outer: "shelf", inner: "Previous", visible: true, at: "end" });
    for (let presses = 0; presses < 20 && (await focus()).at !== "start"; presses++) {
      await page.keyboard.press("Enter");
      await page.waitForTimeout(600);
    }
    await expect.poll(focus).toEqual({ outer: "shelf", inner: "Previous (disabled)", visible: true, at: "start" });
    await page.keyboard.press("Enter");
    await page.waitForTimeout(600);
    expect(page.url()).toBe(`${shopOrigin}/`);
    expect(await focus()).toEqual({ outer: "shelf", inner: "Previous (disabled)", visible: true, at: "start" });
    // Tab carries on: Next, then the row's one tab stop, the first card, and the arrow keys from there.
    await page.keyboard.press("Tab");
    expect((await focus()).inner).toBe("Next");
    await page.keyboard.press("Tab");
    const links = (await renderedCards(page)).length;
    expect((await focus()).inner).toBe(`card 1 of ${links}`);
    await page.keyboard.press("ArrowRight");
    expect((await focus()).inner).toBe(`card 2 of ${links}`);
    expect(noise).toEqual([]);
  });

  it("marks them with the aria-disabled attribute in a browser without the ariaDisabled property (Firefox before 119)", async () => {
    const page = await newPage({ width: 1280, height: 800 });
    const noise = collectNoise(page);
    await openShop(page, {
      before: "delete Element.prototype.ariaDisabled;",
      mounts: '<div data-patron="x" data-placement="home" data-limit="24"></div>',
    });
    await waitForCards(page);
    const buttons = await page.evaluate(() =>
      [...document.querySelector("[data-patron]")!.shadowRoot!.querySelectorAll("section > button")].map((button) => ({
        name: button.getAttribute("aria-label"),
        disabled: button.getAttribute("aria-disabled"),
        visibility: getComputedStyle(button).visibility,
      })),
    );
    // At the row's start Previous cannot scroll, and is hidden; Next can.
    expect(buttons).toEqual([
      { name: "Previous", disabled: "true", visibility: "hidden" },
      { name: "Next", disabled: "false", visibility: "visible" },
    ]);
    expect(noise).toEqual([]);
  });
});
