// Accessibility in real headless Chromium against the real worker under `wrangler dev`: axe-core on the
// demo storefront's home page (a shelf with a sale card) and product page finds no serious or critical
// issue, and the shelf's text reads at 4.5:1 or more on a light and on a dark host page, by axe's
// colour-contrast rule and by the WCAG formula over the colours Chromium computed.
import axe from "axe-core";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { type DevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import { shelfCards, startSeededDemo, waitForShelf } from "./demo-fixture.ts";
import { hostPage, launchChromium, renderedCards, serveShop, shopOrigin, waitForCards } from "./harness.ts";

let worker: DevWorker;
let browser: Browser;
const contexts: BrowserContext[] = [];

// Shops on promotion: their shelves carry sale cards (a red price and a struck "was" price).
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

async function newPage(width = 1280): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  contexts.push(context);
  return context.newPage();
}

interface Finding {
  rule: string;
  impact: string;
  help: string;
  /** Each node's selector path (a shadow root's host first) and what to fix. */
  nodes: { target: string[]; fix: string }[];
}

/** Runs axe-core over the whole page, open shadow roots included; the serious and critical findings. */
async function seriousFindings(page: Page, rules?: string[]): Promise<Finding[]> {
  await page.addScriptTag({ content: axe.source });
  const results = await page.evaluate(
    (rules) =>
      (window as unknown as { axe: typeof axe }).axe.run(
        document,
        rules ? { runOnly: { type: "rule", values: rules } } : { resultTypes: ["violations"] },
      ),
    rules,
  );
  return results.violations
    .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
    .map((violation) => ({
      rule: violation.id,
      impact: violation.impact ?? "",
      help: violation.help,
      nodes: violation.nodes.map((node) => ({
        target: node.target.flat().map(String),
        fix: node.failureSummary ?? "",
      })),
    }));
}

/** How many rules axe checked and passed: proof that it looked at the page, not at an empty one. */
async function passedRules(page: Page): Promise<string[]> {
  const results = await page.evaluate(() =>
    (window as unknown as { axe: typeof axe }).axe.run(document, { resultTypes: ["passes"] }),
  );
  return results.passes.map((pass) => pass.id);
}

// WCAG 2.x relative luminance and contrast ratio.
function luminance([r, g, b]: number[]): number {
  const channel = (value: number) => {
    const c = value / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(r!) + 0.7152 * channel(g!) + 0.0722 * channel(b!);
}
function contrast(a: number[], b: number[]): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (light! + 0.05) / (dark! + 0.05);
}

interface TextColour {
  element: string;
  text: string;
  colour: number[];
  background: number[];
}

/**
 * The colour of each kind of text in the first shelf (heading, reason, title, price, sale price, "was"
 * price), and the page background behind the shelf (its own is transparent).
 */
function shelfTextColours(page: Page): Promise<TextColour[]> {
  return page.evaluate(() => {
    const rgb = (value: string) => (value.match(/[\d.]+/g) ?? []).map(Number);
    const host = document.querySelector("[data-patron]")!;
    let background = [255, 255, 255];
    for (let node: Element | null = host; node; node = node.parentElement) {
      const [r, g, b, alpha = 1] = rgb(getComputedStyle(node).backgroundColor);
      if (alpha > 0) {
        background = [r!, g!, b!];
        break;
      }
    }
    const root = host.shadowRoot!;
    return ["h2", "li a p", "li a b", "li a em", "li a ins", "li a s"].flatMap((selector) => {
      const element = [...root.querySelectorAll(selector)].find((found) => found.textContent);
      return element
        ? [
            {
              element: selector,
              text: element.textContent ?? "",
              colour: rgb(getComputedStyle(element).color),
              background,
            },
          ]
        : [];
    });
  });
}

describe("accessibility", () => {
  for (const width of [1280, 375]) {
    it(`finds no serious or critical axe issue on the demo home page with a sale card (${width}px)`, async () => {
      const page = await newPage(width);
      await page.goto(`${worker.url}/demo/?shopper=${shopper}`);
      await waitForShelf(page, "picked-for-you");
      const cards = await shelfCards(page, "picked-for-you");
      expect(cards.filter((card) => card.sale).length, "a sale card on the shelf").toBeGreaterThan(0);
      expect(await seriousFindings(page)).toEqual([]);
      expect(await passedRules(page)).toEqual(expect.arrayContaining(["color-contrast", "link-name", "image-alt"]));
    });
  }

  it("finds no serious or critical axe issue on the demo product page, opened from a sale card", async () => {
    const page = await newPage();
    await page.goto(`${worker.url}/demo/?shopper=${shopper}`);
    await waitForShelf(page, "picked-for-you");
    const sale = (await shelfCards(page, "picked-for-you")).find((card) => card.sale);
    expect(sale).toBeDefined();
    await page.goto(sale!.href);
    await waitForShelf(page, "goes-with");
    // The page's own price is on sale too: the red price and the struck "was" price.
    expect(await page.locator(".price ins").count()).toBe(1);
    expect(await seriousFindings(page)).toEqual([]);
  });

  // The card links have no aria-label: their own text names them, in the order it shows, with a
  // visually hidden "was" before the struck list price.
  it("names every card with its visible text in order (axe label-content-name-mismatch, WCAG 2.5.3)", async () => {
    const page = await newPage();
    await page.goto(`${worker.url}/demo/?shopper=${shopper}`);
    await waitForShelf(page, "picked-for-you");
    expect(await seriousFindings(page, ["label-content-name-mismatch"])).toEqual([]);
    // The names Chromium computes: a sale card's reads its price, then "was" and the struck price.
    const cards = await renderedCards(page);
    const sale = cards.find((card) => card.listPrice);
    expect(sale).toBeDefined();
    expect(sale!.label).toContain(`${sale!.title} ${sale!.price} was ${sale!.listPrice}`);
    for (const card of cards) expect(card.label.startsWith(card.reason ?? card.title), card.label).toBe(true);
  });

  for (const [scheme, css] of [
    ["light", "html { background: #fff; color: #111; }"],
    ["dark", "html { color-scheme: dark; background: #121212; color: #eee; }"],
  ] as const) {
    it(`reads at 4.5:1 or more on a ${scheme} host page, sale prices included`, async () => {
      const page = await newPage();
      const token = await signShopperToken(shopper, testSecrets.SHOPPER_TOKEN_SECRET, 3600, new Date());
      await serveShop(page, { "/": hostPage({ workerUrl: worker.url, token, css, timeoutMs: 10_000 }) });
      await page.goto(`${shopOrigin}/`, { waitUntil: "domcontentloaded" });
      await waitForCards(page);
      const colours = await shelfTextColours(page);
      expect(colours.map((colour) => colour.element)).toEqual([
        "h2",
        "li a p",
        "li a b",
        "li a em",
        "li a ins",
        "li a s",
      ]);
      const tooFaint = colours
        .map((colour) => ({ ...colour, ratio: Math.round(contrast(colour.colour, colour.background) * 100) / 100 }))
        .filter((colour) => colour.ratio < 4.5);
      expect(tooFaint).toEqual([]);
      expect(await seriousFindings(page, ["color-contrast"])).toEqual([]);
    });
  }
});
