// The demo storefront as `npm start` serves it: the real worker under `wrangler dev` with the demo on,
// seeded with the demo retailer through the public API and refitted by the nightly job, for the
// browser tests that open the demo's pages. The fake storefront origin is allowed too, for host pages.
import { mkdirSync } from "node:fs";
import type { Page } from "playwright-core";
import { postSeedData } from "../../cli/seed-demo.ts";
import { type DevWorker, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import { artifactsDir, assertWidgetBuilt, shopOrigin } from "./harness.ts";

export async function startSeededDemo(customers = 40): Promise<DevWorker> {
  assertWidgetBuilt();
  mkdirSync(artifactsDir, { recursive: true });
  const worker = await startDevWorker({ vars: { PATRON_DEMO: "on", ALLOWED_ORIGINS: shopOrigin } });
  try {
    await postSeedData({ url: worker.url, apiKey: testSecrets.PATRON_API_KEY, customers });
    const refit = await fetch(`${worker.url}/v1/admin/jobs/nightly?wait=1`, {
      method: "POST",
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    if (!refit.ok) throw new Error(`nightly job failed: ${refit.status} ${await refit.text()}`);
  } catch (error) {
    await worker.stop();
    throw error;
  }
  return worker;
}

/** The product cards shown by the mount point named `data-patron="<name>"` (its shadow root's links). */
export function shelfCards(page: Page, name: string): Promise<{ href: string; sale: boolean }[]> {
  return page.evaluate((name) => {
    const root = document.querySelector(`[data-patron="${name}"]`)?.shadowRoot;
    return [...(root?.querySelectorAll("li a") ?? [])].map((link) => ({
      href: (link as HTMLAnchorElement).href,
      sale: link.querySelector("ins") !== null,
    }));
  }, name);
}

/** Waits until the shelf `data-patron="<name>"` shows at least one card. */
export async function waitForShelf(page: Page, name: string, timeout = 30_000): Promise<void> {
  await page.waitForFunction(
    (name) => (document.querySelector(`[data-patron="${name}"]`)?.shadowRoot?.querySelectorAll("li a").length ?? 0) > 0,
    name,
    { timeout },
  );
}
