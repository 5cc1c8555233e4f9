// What the widget's browser test files share: the worker under wrangler's dev server with the demo
// retailer seeded and one model run, a known shopper's token (and an expired one), and Chromium with a
// fresh context per page; plus the page helpers every file uses.
import type { Browser, BrowserContext, ConsoleMessage, Page } from "playwright-core";
import { postSeedData } from "../../cli/seed-demo.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { type DevWorker, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import { assertWidgetBuilt, launchChromium, shopOrigin } from "./harness.ts";

export interface WidgetSuite {
  worker: DevWorker;
  browser: Browser;
  /** demo-full-price's token, valid for an hour. */
  shopperToken: string;
  /** demo-full-price's token, expired two hours ago. */
  expiredToken: string;
  /** A page in a context of its own, closed by stop(). */
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  stop(): Promise<void>;
}

export async function startWidgetSuite(): Promise<WidgetSuite> {
  assertWidgetBuilt();
  const worker = await startDevWorker({ vars: { PATRON_DEMO: "on", ALLOWED_ORIGINS: shopOrigin } });
  await postSeedData({ url: worker.url, apiKey: testSecrets.PATRON_API_KEY, customers: 40 });
  const refit = await fetch(`${worker.url}/v1/admin/jobs/nightly?wait=1`, {
    method: "POST",
    headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
  });
  if (!refit.ok) throw new Error(`nightly job failed: ${refit.status} ${await refit.text()}`);
  const secret = testSecrets.SHOPPER_TOKEN_SECRET;
  const shopperToken = await signShopperToken("demo-full-price", secret, 3600, new Date());
  const expiredToken = await signShopperToken("demo-full-price", secret, 3600, new Date(Date.now() - 3 * 3600_000));
  const browser = await launchChromium();
  const contexts: BrowserContext[] = [];
  return {
    worker,
    browser,
    shopperToken,
    expiredToken,
    async newPage(viewport = { width: 1280, height: 900 }) {
      const context = await browser.newContext({ viewport });
      contexts.push(context);
      return context.newPage();
    },
    async stop() {
      for (const context of contexts) await context.close().catch(() => {});
      await browser.close();
      await worker.stop();
    },
  };
}

/** Uncaught exceptions and console output of any kind, except the browser's own log of a failed request. */
export function collectNoise(page: Page): string[] {
  const noise: string[] = [];
  page.on("pageerror", (error) => noise.push(`pageerror: ${error.message}`));
  page.on("console", (message: ConsoleMessage) => {
    if (!/Failed to load resource|net::ERR_|blocked by CORS policy/.test(message.text())) {
      noise.push(`console.${message.type()}: ${message.text()}`);
    }
  });
  return noise;
}

/** A gate a route handler can wait on: `open()` lets it through. */
export function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}
