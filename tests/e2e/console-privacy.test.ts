// A privacy request in the console, in real Chromium against `wrangler dev`: a guest's web order and a
// till's order carry one email, never verified, so looking it up finds nobody; the Customers page then
// lists the records holding it (GET /v1/customers/holders), each linked to its customer page, where
// export and erase are. Any CSP violation or page error fails.
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anOrder } from "../fixtures/builders.ts";
import { type DevWorker, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import {
  assertConsoleBuilt,
  type ConsoleBrowser,
  openConsoleBrowser,
  screenshotFailures,
  signIn,
} from "./console-browser.ts";

let worker: DevWorker;
let chromium: ConsoleBrowser;
let page: Page;
const email = "erin.ex@post.org";

beforeAll(async () => {
  assertConsoleBuilt();
  worker = await startDevWorker();
  const orders = [
    anOrder({ id: "t-ex-guest", placedAt: "2026-02-01T10:00:00Z", identifiers: { email } }),
    anOrder({ id: "t-ex-till", channel: "store", placedAt: "2026-03-01T10:00:00Z", identifiers: { email } }),
  ];
  const posted = await fetch(`${worker.url}/v1/orders`, {
    method: "POST",
    headers: { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ orders }),
  });
  expect(posted.status).toBe(200);
  chromium = await openConsoleBrowser({ viewport: { width: 1280, height: 900 } });
  page = chromium.page;
  await signIn(page, `${worker.url}/console/customers`);
}, 240_000);

screenshotFailures("console-privacy", () => page);

afterAll(async () => {
  await chromium?.close();
  await worker?.stop();
});

describe("console privacy request", () => {
  it("lists the records holding an email that identifies nobody, each linked to its customer", async () => {
    await page.getByLabel("Identifier").selectOption("email");
    await page.getByLabel("Value").fill(email);
    await page.getByRole("button", { name: "Look up" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("only ever sent unverified");
    const list = page.getByRole("heading", { name: "Records holding this email" });
    await list.waitFor();
    const rows = page.locator("table", { has: page.getByRole("columnheader", { name: "Orders with it" }) });
    const links = rows.getByRole("link", { name: /^c_/ });
    expect(await links.count()).toBe(2);
    expect(await rows.textContent()).toContain("seen unverified");
    const first = (await links.first().textContent()) ?? "";
    await links.first().click();
    await page.getByRole("heading", { name: `Customer ${first}` }).waitFor();
    expect(await page.getByRole("button", { name: "Erase customer" }).count()).toBe(1);
    expect(chromium.errors).toEqual([]);
  }, 120_000);
});
