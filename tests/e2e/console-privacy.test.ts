// A privacy request in the console, in real Chromium against `wrangler dev`: a guest's web order and a
// till's order carry one email, never verified, so looking it up finds nobody; the Customers page then
// lists the records holding it (POST /v1/customers/holders), each linked to its customer page, where
// export and erase are. The email is sent in request bodies, never in a URL. Any CSP violation or page
// error fails.
import { describe, expect, it } from "vitest";
import { anOrder } from "../fixtures/builders.ts";
import { testSecrets } from "../fixtures/wrangler-dev.ts";
import { useConsole } from "./console-browser.ts";

const email = "erin.ex@post.org";

const app = useConsole({
  prefix: "console-privacy",
  browser: { viewport: { width: 1280, height: 900 } },
  async seed(worker) {
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
  },
  startPath: "/console/customers",
  timeoutMs: 240_000,
});

describe("console privacy request", () => {
  it("lists the records holding an email that identifies nobody, each linked to its customer", async () => {
    const urls: string[] = [];
    app.page.on("request", (request) => urls.push(request.url()));
    await app.page.getByLabel("Identifier").selectOption("email");
    await app.page.getByLabel("Value").fill(email);
    await app.page.getByRole("button", { name: "Look up" }).click();
    await expect.poll(() => app.page.getByRole("alert").textContent()).toContain("only ever sent unverified");
    const list = app.page.getByRole("heading", { name: "Records holding this email" });
    await list.waitFor();
    // Asked with the email in the body: request logs keep URLs, and the email is in none.
    expect(urls.filter((url) => url.includes("/v1/customers/"))).toEqual([
      expect.stringMatching(/\/v1\/customers\/lookup$/),
      expect.stringMatching(/\/v1\/customers\/holders$/),
    ]);
    expect(urls.filter((url) => decodeURIComponent(url).toLowerCase().includes("erin.ex"))).toEqual([]);
    // The page lists them: the API's pointer to its holders route is left out of the note.
    expect(await app.page.getByRole("alert").locator("p").first().textContent()).toBe(
      "That email address was only ever sent unverified, so it identifies nobody. They are listed below.",
    );
    const rows = app.page.locator("table", { has: app.page.getByRole("columnheader", { name: "Orders with it" }) });
    const links = rows.getByRole("link", { name: /^c_/ });
    expect(await links.count()).toBe(2);
    expect(await rows.textContent()).toContain("seen unverified");
    const first = (await links.first().textContent()) ?? "";
    await links.first().click();
    await app.page.getByRole("heading", { name: `Customer ${first}` }).waitFor();
    expect(await app.page.getByRole("button", { name: "Erase customer" }).count()).toBe(1);
    expect(app.errors).toEqual([]);
  }, 120_000);
});
