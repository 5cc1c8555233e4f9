// Saved audiences in the console, in real Chromium against `wrangler dev` (with local webhooks allowed)
// and a real local webhook receiver: "Save as audience" on the Customers list shows the API's field
// message for a bad webhook URL (an alert that nothing was saved, focus on that field), then saves the
// current filters and shows the signing secret once; Escape closes the form; the Audiences section lists
// it with its size at saving, and after a nightly run its delivery, which the receiver got signed with
// that secret; delete asks first, then focuses the Audiences heading and says it was deleted.
// Screenshots go to tests/artifacts/; any CSP violation or page error fails.
import path from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWebhookReceiver, type WebhookReceiver } from "../fixtures/webhook-receiver.ts";
import type { ReceivedRequest } from "../fixtures/webhook-receiver.types.ts";
import { testSecrets } from "../fixtures/wrangler-dev.ts";
import { artifactsDir } from "../widget/harness.ts";
import { demoCustomers, focusedDescription, useConsole } from "./console-browser.ts";

let receiver: WebhookReceiver;
// The webhook receiver starts before the console's worker and closes after it.
beforeAll(async () => {
  receiver = await startWebhookReceiver();
});
afterAll(async () => {
  await receiver?.close();
});
const app = useConsole({
  prefix: "console-audiences",
  browser: { viewport: { width: 1280, height: 900 } },
  worker: { vars: { AUDIENCE_WEBHOOKS_ALLOW_LOCAL: "on" } },
  seed: demoCustomers(120),
  startPath: "/console/customers",
  timeoutMs: 240_000,
});

async function screenshot(name: string) {
  await app.page.screenshot({ path: path.join(artifactsDir, `console-audiences-${name}.png`), fullPage: true });
}

async function admin<T>(method: string, pathAndQuery: string, body?: unknown): Promise<T> {
  const response = await fetch(`${app.worker.url}${pathAndQuery}`, {
    method,
    headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(response.status, pathAndQuery).toBeLessThan(300);
  return ((await response.json()) as { data: T }).data;
}

async function allListed(query: string): Promise<string[]> {
  const ids: string[] = [];
  for (let cursor: string | null = null, first = true; first || cursor; first = false) {
    const listed: { customers: { customerId: string }[]; next: string | null } = await admin(
      "GET",
      `/v1/admin/customers?${query}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    ids.push(...listed.customers.map((row) => row.customerId));
    cursor = listed.next;
  }
  return ids;
}

const audiencesTable = () => app.page.getByRole("table").filter({ hasText: "Last delivery" });

describe("console audiences", () => {
  let secret = "";

  it("saves the list's filters as an audience, after showing the API's message for a bad webhook URL", async () => {
    await app.page.getByText("No saved audience yet").waitFor();
    await app.page.getByLabel("Stage", { exact: true }).selectOption("fading");
    await app.page.getByRole("button", { name: "Save as audience" }).click();
    const form = app.page.getByRole("form", { name: "Save as audience" });
    await form.getByText("Saves stage fading.").waitFor();
    // The form opens with the keyboard's focus in its first field.
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.id)).toBe("audience-name");
    await app.page.getByLabel("Audience name").fill("Fading regulars");
    await app.page.getByLabel("Webhook URL (optional)").fill("http://hooks.example.com/patron");
    await app.page.getByRole("button", { name: "Save audience" }).click();
    await form.getByText("Webhook URL must use https").waitFor();
    expect(await app.page.getByLabel("Webhook URL (optional)").getAttribute("aria-invalid")).toBe("true");
    // The refusal is said (an alert), and the focus goes to the field it is about, whose message is read with it.
    expect(await form.getByRole("alert").textContent()).toBe("Not saved: fix what is marked under the fields above.");
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.id)).toBe("audience-webhook");
    expect(await focusedDescription(app.page)).toContain("Webhook URL must use https");
    expect(await admin<{ audiences: unknown[] }>("GET", "/v1/admin/audiences")).toEqual({ audiences: [] });

    // Sized as it is saved, from the scores in force (a first nightly run scores the seeded customers).
    const run = await admin<{ status: string }>("POST", "/v1/admin/jobs/nightly?wait=1", {});
    expect(run.status).toBe("done");
    const fadingNow = (await allListed("stage=fading")).length;
    expect(fadingNow).toBeGreaterThan(1);
    await app.page.getByLabel("Webhook URL (optional)").fill(`${receiver.url}/hooks/console`);
    await app.page.getByRole("button", { name: "Save audience" }).click();
    await app.page.getByText(`Audience “Fading regulars” saved: ${fadingNow} customers in it now.`).waitFor();
    secret = (await app.page.getByRole("status").locator("code").first().textContent()) ?? "";
    expect(secret).toMatch(/^whsec_/);
    const row = audiencesTable().getByRole("row").filter({ hasText: "Fading regulars" });
    await row.waitFor();
    expect(await row.locator("td").allTextContents()).toEqual([
      "Fading regulars",
      "stage fading",
      String(fadingNow),
      new URL(receiver.url).host,
      "not yet",
      "Delete Fading regulars",
    ]);
    const [saved] = (
      await admin<{ audiences: { filters: unknown; webhookUrl: string }[] }>("GET", "/v1/admin/audiences")
    ).audiences;
    expect(saved).toMatchObject({ filters: { stage: "fading" }, webhookUrl: `${receiver.url}/hooks/console` });
    await screenshot("saved");
  }, 120_000);

  it("shows the audience's size and delivery after a nightly run, and the receiver got the list signed", async () => {
    const run = await admin<{ status: string }>("POST", "/v1/admin/jobs/nightly?wait=1", {});
    expect(run.status).toBe("done");
    const fading = await allListed("stage=fading");
    expect(fading.length).toBeGreaterThan(0);
    await app.page.reload();
    const row = audiencesTable().getByRole("row").filter({ hasText: "Fading regulars" });
    await expect.poll(async () => (await row.locator("td").nth(2).textContent())?.trim()).toBe(String(fading.length));
    await row.getByText("delivered (HTTP 204)").waitFor();
    await row.getByText(`${fading.length} joined, 0 left`).waitFor();

    const received = (await (await fetch(`${receiver.url}/received/console`)).json()) as ReceivedRequest[];
    const webhook = new Webhook(secret);
    const joined = received.flatMap((request) => {
      const payload = webhook.verify(request.body, request.headers) as { joined: { customerId: string }[] };
      return payload.joined.map((customer) => customer.customerId);
    });
    expect(joined.sort()).toEqual([...fading].sort());
    await screenshot("delivered");
  }, 300_000);

  it("deletes an audience only after a confirmation", async () => {
    await app.page.getByRole("button", { name: "Delete Fading regulars" }).click();
    const dialog = app.page.getByRole("alertdialog");
    await dialog.getByText("Delete the audience “Fading regulars”? Its webhook gets no more deliveries.").waitFor();
    const focused = () => app.page.evaluate(() => document.activeElement?.textContent?.trim());
    // Focus on the safe answer; Escape cancels as Cancel does, and focus goes back to the row's Delete.
    await expect.poll(focused).toBe("Cancel");
    await app.page.keyboard.press("Escape");
    expect(await dialog.count()).toBe(0);
    await expect.poll(focused).toBe("Delete Fading regulars");
    await app.page.getByRole("button", { name: "Delete Fading regulars" }).click();
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect((await admin<{ audiences: unknown[] }>("GET", "/v1/admin/audiences")).audiences).toHaveLength(1);
    await app.page.getByRole("button", { name: "Delete Fading regulars" }).click();
    await app.page.getByRole("button", { name: "Yes, delete this audience" }).click();
    await app.page.getByText("No saved audience yet").waitFor();
    // The row and its Delete are gone: the focus is on the Audiences heading, not the page's body, and
    // the deletion is said in a status line.
    await app.page.getByRole("status").filter({ hasText: "Audience “Fading regulars” was deleted." }).waitFor();
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.id)).toBe("audiences-title");
    expect((await admin<{ audiences: unknown[] }>("GET", "/v1/admin/audiences")).audiences).toEqual([]);
    expect(app.errors).toEqual([]);
  }, 120_000);

  it("marks a lapsing category the catalog lacks, refuses a name already saved under its field, and gives focus back", async () => {
    await admin("POST", "/v1/admin/audiences", { name: "Kitchen lapsers", filters: { lapsedCategory: "kitchn" } });
    await app.page.reload();
    const row = audiencesTable().getByRole("row").filter({ hasText: "Kitchen lapsers" });
    await row.getByText("category not in the catalog").waitFor();
    await app.page.getByRole("button", { name: "Save as audience" }).click();
    await app.page.getByLabel("Audience name").fill("kitchen LAPSERS");
    await app.page.getByRole("button", { name: "Save audience" }).click();
    const form = app.page.getByRole("form", { name: "Save as audience" });
    await form.getByText('an audience named "kitchen LAPSERS" is saved already: choose another name').waitFor();
    expect(await app.page.getByLabel("Audience name").getAttribute("aria-invalid")).toBe("true");
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.id)).toBe("audience-name");
    expect(await form.getByRole("alert").textContent()).toBe("Not saved: fix what is marked under the fields above.");
    expect((await admin<{ audiences: unknown[] }>("GET", "/v1/admin/audiences")).audiences).toHaveLength(1);
    // Closing the form gives the keyboard's focus back to the button that opened it.
    const focused = () => app.page.evaluate(() => document.activeElement?.textContent?.trim());
    await form.getByRole("button", { name: "Cancel" }).click();
    await expect.poll(focused).toBe("Save as audience");
    // Escape closes it too, from any of its fields, as it cancels a confirmation.
    await app.page.getByRole("button", { name: "Save as audience" }).click();
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.id)).toBe("audience-name");
    await app.page.keyboard.press("Escape");
    expect(await form.count()).toBe(0);
    await expect.poll(focused).toBe("Save as audience");
    expect(app.errors).toEqual([]);
  }, 120_000);
});
