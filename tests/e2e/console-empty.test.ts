// The console on a store with no orders yet, in real Chromium against `wrangler dev`: a nightly run
// there finds nobody to score and fits nothing, and the pages say so rather than pass the placeholder
// parameters off as a fit. The Overview says the run found no customer (not "run the nightly job"
// again); the Models page marks the parameters as placeholders; a customer whose orders arrive
// afterwards is shown with a note that their figures come from them.
import { describe, expect, it } from "vitest";
import { testSecrets } from "../fixtures/wrangler-dev.ts";
import { useConsole } from "./console-browser.ts";

const app = useConsole({
  prefix: "console-empty",
  browser: { viewport: { width: 1280, height: 900 } },
  startPath: "/console",
});

async function openFromNav(name: string) {
  await app.page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true }).click();
  await expect.poll(() => app.page.getByRole("link", { name, exact: true }).getAttribute("aria-current")).toBe("page");
}

describe("the console on a store with no orders", () => {
  it("says a finished run found no customer to score, and to load orders, not to run it again", async () => {
    await app.page.getByRole("heading", { name: "No customer has been scored yet" }).waitFor();
    await app.page.getByText("No model fit yet: run the nightly job now").waitFor();
    await app.page.getByRole("button", { name: "Run the nightly job" }).click();
    await app.page
      .getByText(/^The last nightly run finished .* and found no customer to score/)
      .waitFor({ timeout: 150_000 });
    expect(await app.page.getByText("No model fit yet: run the nightly job now").count()).toBe(0);
  }, 180_000);

  it("marks the Models page's parameters as placeholders: nothing converged, no fallback, no return rate", async () => {
    const response = await fetch(`${app.worker.url}/v1/admin/models`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    const { customer } = ((await response.json()) as { data: { customer: { source: string; sampleSize: number } } })
      .data;
    expect(customer).toMatchObject({ source: "default", sampleSize: 0 });
    await openFromNav("Models");
    await app.page.getByText("Not fitted: these are placeholder parameters.").waitFor();
    const converged = app.page.getByRole("row", { name: /^converged/ });
    expect(await converged.allTextContents()).toEqual(["converged–", "converged–"]);
    await app.page.getByText("Not fitted: the placeholder parameters above stand in for every model.").waitFor();
    expect(await app.page.getByText("None: every fit was used as fitted.").count()).toBe(0);
    await app.page.getByText("no customer's first purchase yet to estimate it from").waitFor();
  }, 120_000);

  it("says a customer's figures come from placeholders when no run has fitted the models", async () => {
    const loyalty = "LY-EMPTY-1";
    const orders = [40, 10].map((daysAgo) => ({
      id: `empty-${daysAgo}`,
      channel: "store",
      storeId: "store-1",
      placedAt: new Date(Date.now() - daysAgo * 86_400_000).toISOString(),
      identifiers: { loyalty },
      lines: [{ productId: "sku-1", categoryId: "candles", quantity: 1, unitPrice: 20 }],
    }));
    const posted = await fetch(`${app.worker.url}/v1/orders`, {
      method: "POST",
      headers: { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ orders }),
    });
    expect(posted.status).toBe(200);
    const found = await fetch(`${app.worker.url}/v1/customers/lookup?kind=loyalty&value=${loyalty}`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    const { customerId } = ((await found.json()) as { data: { customerId: string } }).data;
    const customer = await fetch(`${app.worker.url}/v1/customers/${customerId}`, {
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    const { profile } = ((await customer.json()) as { data: { profile: { modelsSource: string } } }).data;
    expect(profile.modelsSource).toBe("default");
    await app.page.goto(`${app.worker.url}/console/customers/${encodeURIComponent(customerId)}`);
    await app.page.getByRole("note").getByText("Placeholder figures.").waitFor();
    expect(app.errors).toEqual([]);
  }, 120_000);
});
