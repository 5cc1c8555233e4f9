// The console's steering pages in real Chromium against wrangler's dev server with the seeded demo
// retailer. Models: the empty state's button runs the nightly job, progress shows while it runs, then
// the fits and the diagnostics charts the API computed; a run started through the API, not the page,
// is the latest run the page shows (with its error and skipped customers when it has them).
// Experiments (a planted holdout experiment): the API's verdict as the headline, each arm's 95%
// interval and the lift's as the API rounded them, every lift tile with its interval and muted while
// there is no verdict, the attributed orders left out for want of widget events, and the results over
// time.
// Rules: a bad field is named next to it; a boost of a category that is not at the top of a demo
// shopper's shelf is previewed (before/after as the API computes them) and simulated, then published,
// and GET /v1/recommendations for that shopper (with a shopper token) leads with that category; edited
// and disabled, its history lists every change and the shelf goes back. Signing out ends the session:
// its cookie opens no admin route. A screenshot of every page goes to tests/artifacts/console-steer-*.png.
// The strict CSP is in force throughout: any violation or script error fails.
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { day, percent as pagePercent } from "../../console/src/api.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { testSecrets } from "../fixtures/wrangler-dev.ts";
import { artifactsDir, queryLocalD1 } from "../widget/harness.ts";
import { chartFigures, consoleUserName, demoCustomers, focusedDescription, useConsole } from "./console-browser.ts";

/** The demo shopper whose shelf the rule steers (a storefront account id, as the token's `sub`). */
const shopperAccount = "demo-full-price";
let shopperToken: string;
let shopperId: string;
const app = useConsole({
  prefix: "console-steer",
  browser: { viewport: { width: 1280, height: 800 } },
  async seed(worker) {
    await demoCustomers(60)(worker);
    shopperToken = await signShopperToken(shopperAccount, testSecrets.SHOPPER_TOKEN_SECRET, 3600, new Date());
    shopperId = (
      await admin<{ customerId: string }>("GET", `/v1/customers/lookup?kind=account&value=${shopperAccount}`)
    ).customerId;
  },
  startPath: "/console",
  timeoutMs: 240_000,
});

interface ShelfItem {
  id: string;
  title: string;
  categoryId: string;
  reasons: { code: string }[];
}
interface Shelf {
  arm: string;
  items: ShelfItem[];
}
interface PreviewItem {
  title: string;
  categoryId: string;
}
interface RuleVersion {
  version: number;
  change: string;
}

async function screenshot(name: string) {
  await app.page.screenshot({ path: path.join(artifactsDir, `console-steer-${name}.png`), fullPage: true });
}

async function openFromNav(name: string) {
  await app.page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true }).click();
  await expect.poll(() => app.page.getByRole("link", { name, exact: true }).getAttribute("aria-current")).toBe("page");
}

/** The admin API's answer, read with the admin key (not the browser's session), to compare the page with. */
async function admin<T>(method: "GET" | "POST" | "PATCH", route: string, body?: unknown): Promise<T> {
  const response = await fetch(`${app.worker.url}${route}`, {
    method,
    headers: {
      Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // 201 for a rule created, 200 for everything else.
  expect(response.status, `${method} ${route}`).toBe(method === "POST" && route === "/v1/admin/rules" ? 201 : 200);
  return ((await response.json()) as { data: T }).data;
}

/** What the storefront gets for the demo shopper: GET /v1/recommendations with their shopper token. */
async function shelf(): Promise<Shelf> {
  const response = await fetch(`${app.worker.url}/v1/recommendations`, {
    headers: { Authorization: `Bearer ${shopperToken}` },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: Shelf }).data;
}

/**
 * The rows a holdout experiment leaves in the events database, as the widget's events and attributed
 * orders (conversions) would:
 * `shoppers` in `arm`, each shown one recommendation `daysAgo` (two impressions), the first `converted`
 * clicking it and placing an attributed order of 25.
 */
function experimentRows(arm: string, shoppers: number, converted: number, daysAgo: number): string[] {
  const at = new Date(Date.now() - daysAgo * 86_400_000).toISOString();
  const statements: string[] = [];
  for (let s = 0; s < shoppers; s++) {
    const customer = `c_e2e_${arm}_${daysAgo}_${s}`;
    const rid = `rid_e2e_${arm}_${daysAgo}_${s}`;
    const event = (type: string, key: string) =>
      `INSERT INTO events (type, recommendation_id, arm, customer_id, product_id, category_id, at, dedupe_key) VALUES ('${type}', '${rid}', '${arm}', '${customer}', 'p1', 'coffee', '${at}', '${rid}-${key}');`;
    statements.push(event("impression", "i1"), event("impression", "i2"));
    if (s < converted)
      statements.push(
        event("click", "c"),
        `INSERT INTO conversions (order_id, recommendation_id, total, at) VALUES ('o_${rid}', '${rid}', 25, '${at}');`,
      );
  }
  return statements;
}

beforeAll(async () => {
  await app.page.getByRole("heading", { name: "No customer has been scored yet" }).waitFor();
});

describe("console steering pages", () => {
  it("Models: the empty state runs the nightly job with progress, then shows the fits and the diagnostics charts", async () => {
    await openFromNav("Models");
    await app.page.getByRole("heading", { name: "No model fit yet" }).waitFor();
    await app.page.getByRole("button", { name: "Run the nightly job" }).click();
    // Progress while the run is started and while it runs; once it is done the page shows the fits.
    const progress = app.page.getByRole("progressbar", { name: "Nightly job progress" });
    await progress.waitFor();
    await app.page.getByRole("table", { name: /^M?BG\/NBD \(/ }).waitFor({ timeout: 150_000 });
    expect(await progress.count()).toBe(0);
    expect(await app.page.getByRole("heading", { name: "No model fit yet" }).count()).toBe(0);

    const models = await admin<{
      customer: {
        sampleSize: number;
        bgnbd: { r: number; alpha: number; a: number; b: number; dropoutAtFirstPurchase?: boolean };
        gammaGamma: { p: number; q: number; gamma: number };
      };
    }>("GET", "/v1/admin/models");
    const sample = app.page.locator(".tile").filter({ has: app.page.getByText("Sample", { exact: true }) });
    await sample.getByText(models.customer.sampleSize.toLocaleString("en-US"), { exact: true }).waitFor();
    // What the parameters say, from the models' means: the purchase rate, the chance of stopping, the order value.
    const meaning = (await app.page.locator("#parameters-meaning").textContent()) ?? "";
    const { r, alpha, a, b } = models.customer.bgnbd;
    const { p, q, gamma } = models.customer.gammaGamma;
    expect(meaning).toContain(
      `on average ${(r / alpha).toLocaleString("en-US", { maximumSignificantDigits: 2 })} purchases every `,
    );
    expect(meaning).toContain(`with a chance of ${((a / (a + b)) * 100).toFixed(0)}% on average (a/(a + b))`);
    expect(q).toBeGreaterThan(1);
    expect(meaning).toContain(
      `typical order is worth ${((p * gamma) / (q - 1)).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`,
    );

    const diagnostics = await admin<{
      status: string;
      model: string;
      tracking: { from: string; phase: string; actual: number; expected: number }[];
      byFrequency: { purchases: string }[];
      totals: { holdout: { actual: number; conditionalExpected: number; expected: number } };
    }>("GET", "/v1/admin/models/diagnostics");
    // The demo history is long enough to hold its last part back: the check is computed, not skipped.
    expect(diagnostics.status).toBe("ready");
    // The diagnostics check the model in force, and the section names it.
    const mbg = models.customer.bgnbd.dropoutAtFirstPurchase === true;
    expect(diagnostics.model).toBe(mbg ? "mbgnbd" : "bgnbd");
    const checked = (await app.page.locator("#diagnostics-model").textContent()) ?? "";
    expect(checked).toContain(
      `Model checked: the ${mbg ? "MBG/NBD" : "BG/NBD"} with each customer's purchase regularity`,
    );
    const tracking = app.page.getByRole("img", { name: /^Repeat purchases per \d+-day period/ });
    await tracking.waitFor();
    // One point per period for each of the two lines, and the holdout period shaded.
    expect(diagnostics.tracking.length).toBeGreaterThan(0);
    expect(await tracking.locator("circle").count()).toBe(2 * diagnostics.tracking.length);
    expect(await tracking.locator("rect.chart-shade").count()).toBe(1);
    // The same figures as a table, for a screen reader: a period a row, as the page formats them, and
    // where the holdout period starts.
    const figure = (value: number) => value.toLocaleString("en-US", { maximumFractionDigits: 1 });
    expect(await chartFigures(tracking)).toEqual(
      diagnostics.tracking.map((period) => [day(period.from), figure(period.actual), figure(period.expected)]),
    );
    const holdoutFrom = diagnostics.tracking.find((period) => period.phase === "holdout")?.from;
    expect(holdoutFrom).toBeTruthy();
    expect(await app.page.locator("figure").filter({ has: tracking }).locator("details p").textContent()).toBe(
      `Holdout period (not used for the fit): from ${day(holdoutFrom)} on.`,
    );
    // The value axis is marked at round steps from 0 (1, 2 or 5 × a power of ten), not thirds of the top.
    const marks = (
      await tracking.locator('text.chart-label[text-anchor="end"][dominant-baseline]').allTextContents()
    ).map((text) => Number(text.replace(/,/g, "")));
    expect(marks[0]).toBe(0);
    expect(marks.length).toBeGreaterThanOrEqual(3);
    const step = (marks[1] ?? 0) - (marks[0] ?? 0);
    marks.forEach((mark, index) => {
      expect(mark).toBeCloseTo(index * step, 6);
    });
    const mantissa = step / 10 ** Math.floor(Math.log10(step));
    expect([1, 2, 5]).toContain(Math.round(mantissa * 1000) / 1000);
    const byFrequency = app.page.getByRole("img", { name: /^Holdout repeat purchases per customer/ });
    await byFrequency.waitFor();
    // The axis shows where it ends: the last group's label ("7+") is drawn, whatever the step.
    const axis = await byFrequency.locator("text.chart-label:not([dominant-baseline])").allTextContents();
    expect(axis.at(-1)).toBe(diagnostics.byFrequency.at(-1)?.purchases);
    expect(axis[0]).toBe(diagnostics.byFrequency[0]?.purchases);
    // The check in a sentence: how far the forecast was from what happened, as a share of it.
    const { actual, conditionalExpected } = diagnostics.totals.holdout;
    const off = conditionalExpected / actual - 1;
    expect(actual).toBeGreaterThan(0);
    // The tile's headline pairs the actual with the forecast its sentence judges, not the population's.
    // A forecast always to one decimal, so two forecasts side by side read alike.
    const forecast = (value: number) =>
      value.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
    const holdoutTile = app.page.locator(".tile").filter({ hasText: "Holdout repeat purchases" });
    expect(await holdoutTile.locator(".figure").textContent()).toBe(
      `${actual.toLocaleString("en-US", { maximumFractionDigits: 1 })} actual · ${forecast(conditionalExpected)} expected`,
    );
    expect(await holdoutTile.textContent()).toContain(
      `from the population alone (the tracking plot's line), ${forecast(diagnostics.totals.holdout.expected)}`,
    );
    await app.page
      .getByText(
        Math.abs(off) < 0.005
          ? "The forecast from each customer's own history matched the holdout period."
          : `The forecast from each customer's own history was ${(Math.abs(off) * 100).toFixed(0)}% ${off > 0 ? "too high" : "too low"} over the holdout period.`,
      )
      .waitFor();
    const table = app.page.getByRole("table", { name: "By frequency in the calibration period" });
    expect(await table.locator("tbody th[scope=row]").allTextContents()).toEqual(
      diagnostics.byFrequency.map((group) => group.purchases),
    );
    await screenshot("models");
  }, 200_000);

  it("Models: shows the latest run whoever started it: one started through the API, not the page", async () => {
    const run = await admin<{ runId: string; status: string; processed: number }>(
      "POST",
      "/v1/admin/jobs/nightly?wait=1",
      {},
    );
    expect(run.status).toBe("done");
    await openFromNav("Experiments");
    await openFromNav("Models");
    const latest = app.page.locator("section.latest-run");
    await expect.poll(() => latest.locator("#latest-run").textContent()).toBe(`Latest run ${run.runId}: done`);
    expect(await latest.textContent()).toContain(`${run.processed.toLocaleString("en-US")} customers processed`);
    await screenshot("models-latest-run");
    // A run that errored after skipping customers (the API's answer changed): its error and the skips by reason.
    await app.page.route("**/v1/admin/jobs/nightly?limit=1", async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { data: { runs: Record<string, unknown>[] } };
      Object.assign(body.data.runs[0]!, {
        status: "errored",
        error: "webhook answered 500",
        detail: { skipped: 3, skippedReasons: { invalid_date: 2, model_error: 1 } },
      });
      await route.fulfill({ response, json: body });
    });
    try {
      await openFromNav("Experiments");
      await openFromNav("Models");
      await expect.poll(() => latest.locator("#latest-run").textContent()).toBe(`Latest run ${run.runId}: errored`);
      expect(await latest.locator(".problem").textContent()).toBe("Error: webhook answered 500");
      expect(await latest.textContent()).toContain(
        "3 customers skipped (they keep their previous score): invalid date 2, model error 1.",
      );
    } finally {
      await app.page.unroute("**/v1/admin/jobs/nightly?limit=1");
    }
  }, 200_000);

  it("Models: a run started from the page reads the diagnostics again with the fits", async () => {
    await openFromNav("Models");
    await app.page.getByRole("heading", { name: /^Diagnostics/ }).waitFor();
    const diagnosticsRead = (request: { url(): string }) =>
      new URL(request.url()).pathname === "/v1/admin/models/diagnostics";
    await app.page.getByRole("button", { name: "Run the nightly job now" }).click();
    // Once the run is done the fits are read again, and the diagnostics with them (they were left as
    // the previous run's until a reload).
    await app.page.waitForRequest(diagnosticsRead, { timeout: 150_000 });
    const latest = app.page.locator("section.latest-run");
    await expect.poll(() => latest.locator("#latest-run").textContent(), { timeout: 30_000 }).toMatch(/: done$/);
  }, 200_000);

  it("Models: names the dropout model in force, the BG/NBD or its MBG/NBD variant, as the API reports it", async () => {
    const models = await admin<{ customer: { timeUnitDays: number; bgnbd: { dropoutAtFirstPurchase?: boolean } } }>(
      "GET",
      "/v1/admin/models",
    );
    const logLikelihood = app.page
      .locator(".tile")
      .filter({ has: app.page.getByText("Log-likelihood", { exact: true }) });
    /** The model's name in the parameters table's caption, under the log-likelihood and in the line saying what it is. */
    async function expectNamed(name: "BG/NBD" | "MBG/NBD") {
      const caption = `${name} (purchase frequency and dropout; time unit ${models.customer.timeUnitDays} days)`;
      await app.page.getByRole("table", { name: caption, exact: true }).waitFor();
      expect(await logLikelihood.locator("dd.muted").textContent()).toBe(`${name} fit`);
      const explanation = (await app.page.locator("#dropout-model").textContent()) ?? "";
      expect(explanation.startsWith(`${name}: `), explanation).toBe(true);
      expect(explanation).toContain(name === "MBG/NBD" ? "right after their first purchase" : "only after a repeat");
    }
    const mbg = models.customer.bgnbd.dropoutAtFirstPurchase === true;
    await expectNamed(mbg ? "MBG/NBD" : "BG/NBD");
    // The API's answer with the other variant in force: the page names that one instead.
    await app.page.route("**/v1/admin/models", async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { data: { customer: { bgnbd: { dropoutAtFirstPurchase: boolean } } } };
      body.data.customer.bgnbd.dropoutAtFirstPurchase = !mbg;
      await route.fulfill({ response, json: body });
    });
    try {
      await openFromNav("Experiments");
      await openFromNav("Models");
      await expectNamed(mbg ? "BG/NBD" : "MBG/NBD");
      await screenshot(mbg ? "models-bgnbd" : "models-mbgnbd");
    } finally {
      await app.page.unroute("**/v1/admin/models");
    }
  }, 120_000);

  it("Overview and Customers: the scored overview, the customer list and one customer's page", async () => {
    await openFromNav("Overview");
    await app.page.getByRole("heading", { name: "12-month CLV of fading and lapsed customers" }).waitFor();
    await app.page.getByRole("heading", { name: "What the best customers have in common" }).waitFor();
    await screenshot("overview");
    // The README's picture: the top of the overview at 1280×800 (docs/images/console-overview.png).
    await app.page.screenshot({ path: path.join(artifactsDir, "console-steer-overview-1280x800.png") });
    await openFromNav("Customers");
    const rows = app.page.getByRole("table").filter({ hasText: "CLV at stake" }).locator("tbody tr");
    await rows.first().waitFor();
    await screenshot("customers");
    await app.page.getByLabel("Identifier").selectOption("account");
    await app.page.getByLabel("Value").fill("demo-store-loyal");
    await app.page.getByRole("button", { name: "Look up" }).click();
    await app.page.waitForURL(/\/console\/customers\/c_/);
    await app.page.getByRole("list", { name: "Order timeline, most recent first" }).waitFor();
    await screenshot("customer");
  }, 120_000);

  it("Experiments: the API's verdict is the headline, with 95% intervals per arm and for the lift, and results over time", async () => {
    // Planted straight into the dev worker's local D1 (one statement batch), as an operator would.
    // First personalized shoppers only (as with HOLDOUT_SHARE=0): the lift cannot be measured, and the
    // page says so rather than failing.
    await queryLocalD1(app.worker.persistDir, experimentRows("personalized", 40, 8, 2).join(" "), "EVENTS_DB");
    await openFromNav("Experiments");
    await app.page.getByRole("table", { name: /95% intervals/ }).waitFor();
    expect(await app.page.getByText("not measurable yet").count()).toBeGreaterThan(0);
    // The test worker runs with HOLDOUT_SHARE=0: the page says none is held out (not "0.0%"), and what
    // that means.
    await app.page.getByText("(HOLDOUT_SHARE, now none) is held out").waitFor();
    await app.page.getByRole("note").getByText("HOLDOUT_SHARE is 0: no shopper is held out").waitFor();
    // Every one of the 40 shoppers had 2 impressions: the mean, with no interval of no width around it,
    // and the arm's count says why (not "under 30 shoppers").
    expect(
      await app.page
        .getByRole("table", { name: /95% intervals/ })
        .getByRole("row", { name: /^Impressions per shopper/ })
        .locator("td")
        .first()
        .textContent(),
    ).toBe("2.000 (no interval: all alike)");
    // And an order attributed to a shelf whose widget reported nothing: in no arm, counted apart.
    const unseen = `INSERT INTO conversions (order_id, recommendation_id, total, at) VALUES ('o_e2e_unseen', 'rid_e2e_unseen', 40, '${new Date(Date.now() - 0.75 * 86_400_000).toISOString()}');`;
    // The dev worker holds nobody out now (HOLDOUT_SHARE 0), so the results end at the last held-out
    // shelf (`ended`): these held-out shoppers come on both sides of the personalized ones.
    const rows = [
      ...experimentRows("holdout", 15, 2, 2),
      ...experimentRows("personalized", 30, 6, 1),
      ...experimentRows("holdout", 15, 1, 0.5),
      unseen,
    ];
    await queryLocalD1(app.worker.persistDir, rows.join(" "), "EVENTS_DB");
    await openFromNav("Models");
    await openFromNav("Experiments");
    type Interval = { value: number; ci95: [number, number] | null };
    const holdout = await admin<{
      arms: {
        arm: string;
        attributedOrders: number;
        recommendations: number;
        clickThroughRate: number | null;
        intervals?: { conversion: Interval | null };
      }[];
      lift: {
        ordersPerRecommendation: number;
        ordersPerRecommendationCi95: [number, number];
        intervals?: { conversion: Interval | null; clickThroughRate: Interval };
      };
      withoutEvents: { attributedOrders: number; attributedRevenue: number };
      verdict: { text: string; decided: boolean };
      overTime: {
        periods: {
          period: string;
          personalized: { conversion: number | null } | null;
          holdout: { conversion: number | null } | null;
        }[];
      };
      began: string;
    }>("GET", "/v1/admin/holdout?since=start");
    // The page opens on the whole experiment, the start its verdict is read from.
    expect(await app.page.getByLabel("Period").inputValue()).toBe("");
    expect(holdout.verdict.text).not.toBe("");
    await app.page.getByRole("status").filter({ hasText: holdout.verdict.text }).waitFor();
    // Under it, what decides: an interval that holds however often the page is read.
    await app.page
      .getByRole("status")
      .getByText(
        /^(Decided by|The verdict waits for) an always-valid interval for the difference in conversion \(now [+−]?\d+\.\d points, 95% CI/,
      )
      .waitFor();

    // Conversion for each arm and for the lift, with the interval the API computed, as the page words it:
    // at the places the API rounded it to (4 for a share, 3 for a lift), never rounded a second time.
    const percent = (value: number) => `${(value * 100).toFixed(2)}%`;
    const times = (value: number) => `${value.toFixed(3)}×`;
    const worded = (interval: Interval | null | undefined, format: (value: number) => string) => {
      expect(interval?.ci95, "an interval").toBeTruthy();
      const [low, high] = interval?.ci95 ?? [0, 0];
      return `${format(interval?.value ?? 0)} (95% CI ${format(low)} to ${format(high)})`;
    };
    // Personalized first, as the lift (personalized ÷ holdout) and the chart's legend read.
    const arms = holdout.arms.filter((arm) => arm.intervals).sort((a, b) => b.arm.localeCompare(a.arm));
    expect(arms.map((arm) => arm.arm)).toEqual(["personalized", "holdout"]);
    const table = app.page.getByRole("table", { name: /95% intervals/ });
    expect(await table.locator("tbody tr").count()).toBe(5);
    const conversion = table.getByRole("row", { name: /^Conversion/ }).locator("td");
    // The lift saying so while its interval includes no difference (1×), and muted, as the tiles are,
    // while there is no verdict.
    const [liftLow = 0, liftHigh = 0] = holdout.lift.intervals?.conversion?.ci95 ?? [];
    const significant = liftLow > 1 || liftHigh < 1;
    expect(await conversion.allTextContents()).toEqual([
      ...arms.map((arm) => worded(arm.intervals?.conversion, percent)),
      `${worded(holdout.lift.intervals?.conversion, times)}${significant ? "" : "; not yet significant"}`,
    ]);
    expect(holdout.verdict.decided).toBe(false);
    expect(await conversion.last().getAttribute("class")).toBe("muted");
    // Every lift tile shows its 95% interval, and none looks like a result while there is no verdict.
    expect(holdout.verdict.decided).toBe(false);
    const tiles = [
      ["Click-through lift", holdout.lift.intervals?.clickThroughRate],
      [
        "Orders per recommendation lift",
        { value: holdout.lift.ordersPerRecommendation, ci95: holdout.lift.ordersPerRecommendationCi95 },
      ],
    ] as const;
    for (const [title, lift] of tiles) {
      const tile = app.page.locator(".tile").filter({ has: app.page.getByRole("heading", { name: title }) });
      expect(lift?.ci95, `${title}: an interval`).toBeTruthy();
      const [low, high] = lift?.ci95 ?? [0, 0];
      expect(await tile.locator(".figure").textContent()).toBe(times(lift?.value ?? 0));
      await tile.getByText(`95% CI ${times(low)} to ${times(high)}`).waitFor();
      await tile.getByText(/^Not (yet significant|a result yet)/).waitFor();
      expect(await tile.getAttribute("class")).toContain("muted");
    }
    await app.page.getByText("per recommendation seen (per shelf, not per shopper)").first().waitFor();
    // The attributed order whose shelf the widget never reported: in no arm, and said how many on the page.
    expect(holdout.withoutEvents).toEqual({ attributedOrders: 1, attributedRevenue: 40 });
    // The 40 personalized shoppers served before anyone was held out (8 orders) are no part of the experiment.
    expect(holdout.arms.reduce((sum, arm) => sum + arm.attributedOrders, 0)).toBe(3 + 6);
    await app.page
      .getByText("1 attributed order (40.00 USD) in this period came from shelves whose widget reported none")
      .waitFor();
    // Money in the shop's currency: revenue per shopper on each figure, the revenue columns in their heading.
    const revenue = await table
      .getByRole("row", { name: /^Revenue per shopper/ })
      .locator("td")
      .allTextContents();
    for (const cell of revenue.slice(0, arms.length)) expect(cell).toMatch(/^[\d,.]+ USD /);
    expect(await app.page.getByRole("columnheader", { name: "Revenue (USD)" }).count()).toBeGreaterThan(0);
    const overTime = app.page.getByRole("img", { name: "Conversion per day by arm" });
    await overTime.waitFor();
    expect(holdout.overTime.periods.length).toBeGreaterThan(0);
    // The legend names the arms as the table does (the API's arm names), and the page spells it one way.
    const legend = app.page.locator("figure").filter({ has: overTime }).locator(".legend li");
    expect(await legend.allTextContents()).toEqual(["personalized", "holdout"]);
    // Its figures as a table, for a screen reader: each day's conversion per arm, as the API has it.
    const conversionOf = (arm: { conversion: number | null } | null) =>
      arm?.conversion == null ? "–" : pagePercent(arm.conversion, 1);
    expect(await chartFigures(overTime)).toEqual(
      holdout.overTime.periods.map((period) => [
        period.period,
        conversionOf(period.personalized),
        conversionOf(period.holdout),
      ]),
    );
    // The bar charts' figures as tables too: each arm's click-through rate and orders per recommendation,
    // personalized first.
    const byArm = [...holdout.arms].sort((a, b) => b.arm.localeCompare(a.arm));
    expect(await chartFigures(app.page.getByRole("img", { name: "Click-through rate by arm" }))).toEqual(
      byArm.map((arm) => [arm.arm, pagePercent(arm.clickThroughRate, 2)]),
    );
    expect(
      await chartFigures(
        app.page.getByRole("img", { name: "Attributed orders per recommendation seen (per shelf, not per shopper)" }),
      ),
    ).toEqual(byArm.map((arm) => [arm.arm, (arm.attributedOrders / arm.recommendations).toFixed(3)]));
    // No shelf here named its placement: no per-placement table to repeat the results per arm.
    await app.page.getByRole("table", { name: /^Results per arm/ }).waitFor();
    expect(await app.page.getByRole("table", { name: "Per placement" }).count()).toBe(0);
    expect(await app.page.locator("main").textContent()).not.toMatch(/personalis/i);
    await screenshot("experiments");
    // On a phone the metrics table scrolls sideways in its box, under its caption, which wraps to the box
    // and stays in it however far the table is scrolled: at the table's width, its end was off the screen.
    await app.page.setViewportSize({ width: 360, height: 800 });
    try {
      const captionInBox = (scrolledTo: "start" | "end") =>
        table.evaluate((element, end) => {
          const box = element.closest(".table-wrap") as HTMLElement;
          box.scrollLeft = end ? box.scrollWidth : 0;
          const caption = (element as HTMLTableElement).caption?.getBoundingClientRect();
          const edges = box.getBoundingClientRect();
          return {
            scrolls: box.scrollWidth > box.clientWidth,
            inBox: !!caption && caption.left >= edges.left - 1 && caption.right <= edges.right + 1,
          };
        }, scrolledTo === "end");
      expect(await captionInBox("start")).toEqual({ scrolls: true, inBox: true });
      expect(await captionInBox("end")).toEqual({ scrolls: true, inBox: true });
      await screenshot("experiments-phone");
    } finally {
      await app.page.setViewportSize({ width: 1280, height: 800 });
    }

    // A moving window has no verdict, whatever its intervals say, and points to the fixed start.
    await app.page.getByLabel("Period").selectOption({ label: "Last 7 days" });
    const moving = app.page.getByRole("status").filter({ hasText: "No verdict on a moving window" });
    await moving.waitFor();
    expect(await app.page.getByRole("status").filter({ hasText: holdout.verdict.text }).count()).toBe(0);
    expect(holdout.began).toBeTruthy();
    expect(await moving.textContent()).toMatch(/since the experiment began \(\d{1,2} \w{3} \d{4}\)/);
    // The table's conversion lift says "not significant" here (no waiting brings a verdict), or nothing.
    expect(await conversion.last().textContent()).not.toContain("not yet significant");
    // No lift tile waits for a verdict here ("not yet"): each is not significant, or not a result for want of one.
    for (const title of ["Click-through lift", "Orders per recommendation lift"]) {
      const tile = app.page.locator(".tile").filter({ has: app.page.getByRole("heading", { name: title }) });
      await tile.getByText(/^Not (significant: |a result: a moving window has no verdict\.)/).waitFor();
      expect(await tile.textContent()).not.toContain("the verdict, on conversion, is still open");
    }
    await moving.getByRole("link", { name: "since the experiment began" }).click();
    await expect.poll(() => new URL(app.page.url()).search).toBe("");
    await app.page.getByRole("status").filter({ hasText: holdout.verdict.text }).waitFor();

    // A shelf served so long ago that the retention (400 days) is about to drop it: the start moves
    // each day now, and the page gives no verdict from it either.
    await queryLocalD1(app.worker.persistDir, experimentRows("holdout", 1, 0, 399.5).join(" "), "EVENTS_DB");
    await openFromNav("Models");
    await openFromNav("Experiments");
    await app.page
      .getByRole("status")
      .filter({ hasText: "No verdict: the experiment's start is no longer kept" })
      .waitFor();
    expect(await app.page.getByRole("status").filter({ hasText: holdout.verdict.text }).count()).toBe(0);
  }, 120_000);

  it("Rules: names a bad field, previews and simulates a boost, publishes it and the shopper's recommendations change; edits and disables it with its history", async () => {
    // A category on the shopper's shelf that does not lead it: the boost must move it up.
    const before = await shelf();
    expect(before.arm).toBe("personalized");
    const leading = before.items[0]?.categoryId;
    const target = before.items.findLast((item) => item.categoryId !== leading)?.categoryId ?? "";
    expect(target).not.toBe("");
    const rule = { name: `Boost ${target}`, action: "boost", targetType: "category", targetId: target, strength: 10 };

    await openFromNav("Rules");
    await app.page.getByText("No rules yet").waitFor();
    await app.page.getByRole("link", { name: "New rule" }).click();
    // Tried before it has a target: what the draft lacks, in the form's words, not the API's.
    await app.page.getByRole("button", { name: "Simulate over 200 shoppers" }).click();
    const lacks = app.page.getByRole("alert").filter({ hasText: "The rule above cannot be tried yet:" });
    await lacks.getByText("Target id must not be empty").waitFor();
    expect(await app.page.getByText("Invalid request body").count()).toBe(0);
    // No name: the API's message shows under the Name field, and nothing is saved.
    await app.page.getByLabel("Target id", { exact: true }).fill(target);
    await app.page.getByRole("button", { name: "Create rule" }).click();
    const nameField = app.page.locator(".field").filter({ has: app.page.getByLabel("Name", { exact: true }) });
    await nameField.getByText("Name must not be empty").waitFor();
    // Above the buttons, in words for the person at the form, not the API's "Invalid request body".
    await app.page
      .getByRole("alert")
      .filter({ hasText: "Not saved: fix what is marked under the fields above." })
      .waitFor();
    expect(await app.page.getByText("Invalid request body").count()).toBe(0);
    expect(await app.page.getByLabel("Name", { exact: true }).getAttribute("aria-invalid")).toBe("true");
    // Focus moves to the field the API named, not left on the button.
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.id)).toBe("rule-name");
    expect(await admin<unknown[]>("GET", "/v1/admin/rules")).toEqual([]);

    await screenshot("rule-invalid");
    // A draft is tried before it has a name: the simulation runs (it failed on "name must not be empty").
    await app.page.getByLabel("Strength").fill(String(rule.strength));
    await app.page.getByRole("button", { name: "Simulate over 200 shoppers" }).click();
    await app.page.getByRole("heading", { name: /^Simulation over \d+ shoppers$/ }).waitFor();
    expect(await app.page.getByText("Simulation failed").count()).toBe(0);
    expect(await admin<unknown[]>("GET", "/v1/admin/rules")).toEqual([]);
    // Editing the field clears its message: the message was about the value sent.
    await app.page.getByLabel("Name", { exact: true }).fill(rule.name);
    await nameField.getByText("Name must not be empty").waitFor({ state: "detached" });
    expect(await app.page.getByLabel("Name", { exact: true }).getAttribute("aria-invalid")).toBeNull();
    await app.page.getByLabel("Strength").fill(String(rule.strength));
    // Preview with no id says what it needs and puts the focus in the field (it did nothing). The live
    // region it says it in is in the page, empty, before: one that appears with its text may go unsaid.
    const ask = app.page.locator("#preview-customer-ask");
    expect([await ask.getAttribute("role"), await ask.textContent()]).toEqual(["alert", ""]);
    await app.page.getByRole("button", { name: "Preview" }).click();
    await app.page.getByRole("alert").filter({ hasText: "Type a customer id to preview their shelf." }).waitFor();
    expect(await app.page.evaluate(() => document.activeElement?.id)).toBe("preview-customer");
    expect(await app.page.getByLabel("Customer id").getAttribute("aria-invalid")).toBe("true");
    // Pressed again, the sentence is put in anew (a new node), so it is said again.
    const said = await ask.locator("span").elementHandle();
    await app.page.getByRole("button", { name: "Preview" }).click();
    await expect.poll(() => said?.evaluate((node) => node.isConnected)).toBe(false);
    expect(await ask.textContent()).toBe("Type a customer id to preview their shelf.");
    // An account id is not a customer id: the 404 says where to find theirs.
    await app.page.getByLabel("Customer id").fill("demo-full-price");
    await app.page.getByRole("button", { name: "Preview" }).click();
    await app.page.getByText("“demo-full-price” is not a customer id, which starts with c_").waitFor();
    await app.page.getByLabel("Customer id").fill(shopperId);
    expect(await app.page.getByRole("alert").filter({ hasText: "Type a customer id" }).count()).toBe(0);
    await app.page.getByRole("button", { name: "Preview" }).click();
    await app.page.getByRole("heading", { name: `Preview for ${shopperId}` }).waitFor();
    await app.page.getByText("This rule changes this customer's shelf").waitFor();
    // The shelves side by side are the API's for the same draft: the boosted category now leads.
    const preview = await admin<{ before: PreviewItem[]; after: PreviewItem[] }>("POST", "/v1/admin/rules/preview", {
      rule,
      customerId: shopperId,
    });
    expect(preview.before[0]?.categoryId).not.toBe(target);
    expect(preview.after[0]?.categoryId).toBe(target);
    const shelfTitles = (side: string) =>
      app.page
        .locator(".side-by-side .card")
        .filter({ has: app.page.getByRole("heading", { name: side, exact: true }) })
        .locator("li strong");
    expect(await shelfTitles("Before").allTextContents()).toEqual(preview.before.map((item) => item.title));
    expect(await shelfTitles("After").allTextContents()).toEqual(preview.after.map((item) => item.title));
    // The target is in the catalog: no note says otherwise.
    expect(await app.page.getByText("The catalog has no").count()).toBe(0);
    // The same draft for a visitor who is not signed in: the popular shelf, as the API previews it.
    const anonymous = await admin<{ before: PreviewItem[]; after: PreviewItem[] }>("POST", "/v1/admin/rules/preview", {
      rule,
      anonymous: true,
    });
    await app.page.getByRole("button", { name: "Shelf for visitors not signed in" }).click();
    await app.page.getByRole("heading", { name: "Preview for a visitor who is not signed in" }).waitFor();
    await app.page.getByText("The popular shelf every visitor who is not signed in sees").waitFor();
    expect(await shelfTitles("Before").allTextContents()).toEqual(anonymous.before.map((item) => item.title));
    expect(await shelfTitles("After").allTextContents()).toEqual(anonymous.after.map((item) => item.title));

    const simulated = await admin<{
      shoppers: number;
      affected: number;
      storefrontShoppers: number;
      storefrontAffected: number;
      categoryExposure: { categoryId: string; categoryName: string }[];
    }>("POST", "/v1/admin/rules/simulate", {
      rule,
      sample: 200,
    });
    await app.page.getByRole("button", { name: "Simulate over 200 shoppers" }).click();
    await app.page.getByRole("heading", { name: `Simulation over ${simulated.shoppers} shoppers` }).waitFor();
    await app.page.getByText(`${simulated.affected} of ${simulated.shoppers} shoppers`).waitFor();
    // Categories by the catalog's names, each with its id beside it.
    const exposure = app.page.getByRole("table", { name: /^Item slots per category/ });
    const named = simulated.categoryExposure.map((row) =>
      row.categoryName === row.categoryId ? row.categoryId : `${row.categoryName} ${row.categoryId}`,
    );
    expect(simulated.categoryExposure.some((row) => row.categoryName !== row.categoryId)).toBe(true);
    expect(await exposure.locator("tbody th").allTextContents()).toEqual(named);
    // The demo's store-only customers are counted apart: they see no shelf online yet.
    expect(simulated.storefrontShoppers).toBeLessThan(simulated.shoppers);
    await app.page.getByText(`${simulated.storefrontShoppers} of them have a storefront account`).waitFor();
    // And how many of those see the change online today.
    await app.page
      .getByText(`(${simulated.storefrontAffected} of ${simulated.storefrontShoppers} with a storefront account)`)
      .waitFor();
    await screenshot("rule-form");
    // Previewing and simulating stored nothing.
    expect(await admin<unknown[]>("GET", "/v1/admin/rules")).toEqual([]);

    // Publish: the storefront's shelf for this shopper now leads with the boosted category, by the rule.
    await app.page.getByRole("button", { name: "Create rule" }).click();
    await app.page.waitForURL(/\/console\/rules\/r_/);
    const history = app.page
      .getByRole("table")
      .filter({ has: app.page.getByRole("columnheader", { name: "Rule as changed" }) });
    const changes = () => history.locator("tbody tr td:nth-child(2)").allTextContents();
    await expect.poll(changes).toEqual(["create"]);
    // By the name given at sign-in, also in the header.
    expect(await history.locator("tbody tr td:nth-child(4)").allTextContents()).toEqual([consoleUserName]);
    await app.page.getByRole("banner").getByText(consoleUserName).waitFor();
    await expect
      .poll(async () => (await shelf()).items[0]?.categoryId, { timeout: 30_000, interval: 500 })
      .toBe(target);
    expect((await shelf()).items[0]?.reasons.some((reason) => reason.code === "rule")).toBe(true);

    // Edit: a new version in the history.
    await app.page.getByLabel("Strength").fill("12");
    await app.page.getByRole("button", { name: "Save changes" }).click();
    await expect.poll(changes).toEqual(["update", "create"]);
    // What each version changed, in words: a rename or a new strength shows, though the rule reads alike.
    const changed = () => history.locator("tbody tr td:nth-child(3)").allTextContents();
    expect(await changed()).toEqual([`strength ${rule.strength} → 12`, "–"]);
    // The form says so, and the keyboard's focus stays on its button (the reload of the saved rule as a
    // new version used to remount the form: no "Saved." and focus back at the page).
    await app.page.getByRole("status").getByText("Saved.", { exact: true }).waitFor();
    expect(await app.page.evaluate(() => document.activeElement?.textContent)).toBe("Save changes");
    await history.getByText(`boost category ${target}: score × 13, for everyone`).waitFor();
    // Previewing the saved rule unticked shows the shelf without it: the draft takes the saved rule's
    // place (ruleId) rather than adding to it, which would leave the shelf as it is.
    await app.page.getByLabel("Enabled").uncheck();
    await app.page.getByLabel("Customer id").fill(shopperId);
    await app.page.getByRole("button", { name: "Preview" }).click();
    await app.page.getByText("This rule changes this customer's shelf").waitFor();
    await app.page.getByLabel("Enabled").check();
    // A rename: the rule reads as before, and the history says what changed.
    await app.page.getByLabel("Name", { exact: true }).fill(`${rule.name} now`);
    await app.page.getByRole("button", { name: "Save changes" }).click();
    await expect.poll(changes).toEqual(["update", "update", "create"]);
    expect(await changed()).toEqual([
      `name “${rule.name}” → “${rule.name} now”`,
      `strength ${rule.strength} → 12`,
      "–",
    ]);

    // Disable from the list: the shelf goes back to what the shopper's own model ranks.
    await openFromNav("Rules");
    const row = app.page.getByRole("row", { name: new RegExp(rule.name) });
    await row.getByRole("button", { name: `Disable ${rule.name}` }).click();
    await row.getByText("disabled").waitFor();
    await screenshot("rules");
    await expect
      .poll(async () => (await shelf()).items.map((item) => item.id), { timeout: 30_000, interval: 500 })
      .toEqual(before.items.map((item) => item.id));
    await row.getByRole("link", { name: rule.name }).click();
    await expect.poll(changes).toEqual(["disable", "update", "update", "create"]);
    expect((await changed())[0]).toBe("disabled");
    // The page's history is the API's, newest first.
    const ruleId = decodeURIComponent(app.page.url().split("/").pop() ?? "");
    const versions = await admin<RuleVersion[]>("GET", `/v1/admin/rules/${encodeURIComponent(ruleId)}/versions`);
    expect(versions.map((version) => version.change).reverse()).toEqual(await changes());
    await screenshot("rule-history");
  }, 180_000);

  it("Rules: a target the catalog lacks is said in the preview, the simulation, on the rule's page and in the list", async () => {
    const name = "Boost a typo";
    const note = "The catalog has no category “hats-and-scarvez” now";
    await openFromNav("Rules");
    await app.page.getByRole("link", { name: "New rule" }).click();
    await app.page.getByLabel("Name", { exact: true }).fill(name);
    await app.page.getByLabel("Target id", { exact: true }).fill("hats-and-scarvez");
    await app.page.getByLabel("Strength").fill("1");
    await app.page.getByLabel("Customer id").fill(shopperId);
    await app.page.getByRole("button", { name: "Preview" }).click();
    await app.page.getByText("This rule does not change this customer's shelf.").waitFor();
    await app.page.getByText(note).waitFor();
    await app.page.getByRole("button", { name: "Simulate over 200 shoppers" }).click();
    await app.page.getByRole("heading", { name: /^Simulation over/ }).waitFor();
    expect(await app.page.getByText(note).count()).toBe(2);

    await app.page.getByRole("button", { name: "Create rule" }).click();
    await app.page.waitForURL(/\/console\/rules\/r_/);
    // The rule's own page (its history), whose one note is the saved rule's, under the Target id field.
    await app.page.getByRole("columnheader", { name: "Rule as changed" }).waitFor();
    await app.page.getByRole("note").getByText(note).waitFor();
    expect(await app.page.getByRole("note").count()).toBe(1);
    // The note describes the Target id field, for a screen reader too.
    const noteId = await app.page.getByRole("note").getAttribute("id");
    expect(noteId).toBeTruthy();
    expect(await app.page.getByLabel("Target id", { exact: true }).getAttribute("aria-describedby")).toContain(noteId);
    // Fixing the id hides the saved rule's note before saving: it is about the saved target.
    await app.page.getByLabel("Target id", { exact: true }).fill("hats");
    await app.page.getByRole("note").waitFor({ state: "detached" });

    await openFromNav("Rules");
    const row = app.page.getByRole("row", { name: new RegExp(name) });
    await row.getByText("not in the catalog").waitFor();
    const href = (await row.getByRole("link", { name }).getAttribute("href")) ?? "";
    await admin("POST", `/v1/admin/rules/${href.split("/").pop() ?? ""}/disable`);
  }, 120_000);

  it("Rules: the Target id field shows the catalog's nearest categories and products as typed, typos included, and one fixes a saved typo", async () => {
    const name = "Boost candles, typed wrong";
    const suggestions = () => app.page.locator(".suggestions button").allTextContents();
    await openFromNav("Rules");
    await app.page.getByRole("link", { name: "New rule" }).click();
    const field = app.page.getByLabel("Target id", { exact: true });
    await field.fill("hanbags");
    await expect.poll(suggestions).toContain("Handbags (handbags)");
    // Products by a word of their title, each offered by its title and id.
    await app.page.getByLabel("Target type").selectOption("product");
    await field.fill("satin");
    await expect
      .poll(async () => {
        const offered = await suggestions();
        return offered.length > 0 && offered.every((text) => /^Satin .* \(heels-\d{3}\)$/.test(text));
      })
      .toBe(true);
    // Chosen, the id is the field's and the list goes; the keyboard stays on the field.
    const first = (await suggestions())[0] ?? "";
    await app.page.locator(".suggestions button").first().click();
    expect(await field.inputValue()).toBe(/\((heels-\d{3})\)$/.exec(first)?.[1]);
    expect(await field.evaluate((element) => element === document.activeElement)).toBe(true);
    await app.page.locator(".suggestions").waitFor({ state: "detached" });

    // Saved with a typo: the note says the catalog lacks it, and the nearest category fixes the draft.
    await app.page.getByLabel("Target type").selectOption("category");
    await app.page.getByLabel("Name", { exact: true }).fill(name);
    await field.fill("candels");
    await app.page.getByLabel("Strength").fill("1");
    await app.page.getByRole("button", { name: "Create rule" }).click();
    await app.page.waitForURL(/\/console\/rules\/r_/);
    await app.page.getByRole("note").getByText("The catalog has no category “candels” now").waitFor();
    await app.page.getByRole("button", { name: "Candles (candles)" }).click();
    expect(await field.inputValue()).toBe("candles");
    await app.page.getByRole("note").waitFor({ state: "detached" });
    await app.page.getByRole("button", { name: "Save changes" }).click();
    await app.page.getByRole("status").getByText("Saved.", { exact: true }).waitFor();
    const ruleId = decodeURIComponent(app.page.url().split("/").pop() ?? "");
    const saved = await admin<{ targetId: string; targetInCatalog: boolean }>(
      "GET",
      `/v1/admin/rules/${encodeURIComponent(ruleId)}`,
    );
    expect(saved).toMatchObject({ targetId: "candles", targetInCatalog: true });
    await admin("POST", `/v1/admin/rules/${encodeURIComponent(ruleId)}/disable`);
  }, 120_000);

  it("Rules: a session that ends while a rule is written keeps the draft, out of sight, behind the sign-in form; signing in again saves it", async () => {
    const name = "Written across a session";
    await openFromNav("Rules");
    await app.page.getByRole("link", { name: "New rule" }).click();
    await app.page.getByLabel("Name", { exact: true }).fill(name);
    await app.page.getByLabel("Target id", { exact: true }).fill("candles");
    await app.page.getByLabel("Strength").fill("3");
    // The session ends (its cookie gone, as after 12 hours), and the save is answered 401.
    await app.context.clearCookies();
    await app.page.getByRole("button", { name: "Create rule" }).click();
    await app.page.getByRole("heading", { name: "Your session ended" }).waitFor();
    // The focus is in the key's field, which is described by why: the session ended, and what is kept.
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.id)).toBe("admin-key");
    expect(await focusedDescription(app.page)).toMatch(
      /^Your session ended Sign in again to carry on: the page you were on is kept as it was/,
    );
    // Nothing of the page shows to whoever comes to the screen, its name in the tab included.
    expect(await app.page.getByRole("navigation", { name: "Console" }).count()).toBe(0);
    expect(await app.page.getByLabel("Strength").isVisible()).toBe(false);
    expect(await app.page.title()).toBe("Session ended · Patron console");
    await app.page.getByLabel("Admin key").fill(testSecrets.PATRON_ADMIN_KEY);
    await app.page.getByRole("button", { name: "Sign in" }).click();
    await app.page.getByRole("navigation", { name: "Console" }).waitFor();
    expect(await app.page.getByLabel("Name", { exact: true }).inputValue()).toBe(name);
    expect(await app.page.getByLabel("Strength").inputValue()).toBe("3");
    expect(await app.page.title()).toBe("New rule · Patron console");
    // The keyboard's focus is on the page brought back, and the refusal it met is said as what it was.
    await expect.poll(() => app.page.evaluate(() => document.activeElement?.id)).toBe("main");
    await app.page.getByText("This was sent after the session had ended, so it was not carried out").waitFor();
    await app.page.getByRole("button", { name: "Create rule" }).click();
    await app.page.waitForURL(/\/console\/rules\/r_/);
    const id = app.page.url().split("/").pop() ?? "";
    expect(await admin<{ name: string; strength: number }>("GET", `/v1/admin/rules/${id}`)).toMatchObject({
      name,
      strength: 3,
    });
    await admin("POST", `/v1/admin/rules/${id}/disable`);
  }, 120_000);

  it("Rules: a pin's form says which other pin holds the same slot, and where each then shows", async () => {
    const other = await admin<{ id: string }>("POST", "/v1/admin/rules", {
      name: "Candles first",
      action: "pin",
      targetType: "category",
      targetId: "candles",
      slot: 1,
      enabled: true,
    });
    try {
      await openFromNav("Rules");
      await app.page.getByRole("link", { name: "New rule" }).click();
      await app.page.getByLabel("Action").selectOption("pin");
      await app.page.getByLabel("Slot").fill("1");
      const note = app.page.getByRole("note").filter({ hasText: "Slot 1 is pinned by" });
      await note.waitFor();
      expect(await note.textContent()).toBe(
        "Slot 1 is pinned by “Candles first” (live) too: where both reach a shelf, one shows at slot 1 and the other right after it.",
      );
      expect(await app.page.getByLabel("Slot").getAttribute("aria-describedby")).toContain("rule-slot-shared");
      // Another slot, or a product pin (another list), shares nothing.
      await app.page.getByLabel("Slot").fill("2");
      await note.waitFor({ state: "detached" });
      await app.page.getByLabel("Slot").fill("1");
      await note.waitFor();
      await app.page.getByLabel("Target type").selectOption("product");
      await note.waitFor({ state: "detached" });
    } finally {
      await admin("POST", `/v1/admin/rules/${other.id}/disable`);
    }
  }, 120_000);

  it("Rules: the form names the other live or scheduled rules on the same target, which apply together with it", async () => {
    const other = await admin<{ id: string }>("POST", "/v1/admin/rules", {
      name: "No candles",
      action: "exclude",
      targetType: "category",
      targetId: "candles",
      enabled: true,
    });
    try {
      await openFromNav("Rules");
      await app.page.getByRole("link", { name: "New rule" }).click();
      await app.page.getByLabel("Target id", { exact: true }).fill("candles");
      const note = app.page.getByRole("note").filter({ hasText: "is also the target of" });
      await note.waitFor();
      expect(await note.textContent()).toBe(
        "Category candles is also the target of “No candles” (exclude category candles, for everyone; live): where they reach the same shelf they all apply, so boosts and buries multiply and a pin shows what an exclude removes.",
      );
      expect(await app.page.getByLabel("Target id", { exact: true }).getAttribute("aria-describedby")).toContain(
        "rule-targetId-others",
      );
      // Another target, or a product of the same id, shares nothing; a disabled rule applies to no shelf.
      await app.page.getByLabel("Target id", { exact: true }).fill("tea");
      await note.waitFor({ state: "detached" });
      await app.page.getByLabel("Target id", { exact: true }).fill("candles");
      await note.waitFor();
      await app.page.getByLabel("Target type").selectOption("product");
      await note.waitFor({ state: "detached" });
    } finally {
      await admin("POST", `/v1/admin/rules/${other.id}/disable`);
    }
  }, 120_000);

  it("Rules: a draft that does what a live rule does is said before saving; one saved elsewhere meanwhile is refused with the API's message and a link to it", async () => {
    const boost = { action: "boost", targetType: "category", targetId: "candles", enabled: true };
    const made: string[] = [];
    const make = async (name: string, strength: number) =>
      made.push((await admin<{ id: string }>("POST", "/v1/admin/rules", { ...boost, name, strength })).id);
    try {
      await make("Candles up", 4);
      await openFromNav("Rules");
      await app.page.getByRole("link", { name: "New rule" }).click();
      await app.page.getByLabel("Name", { exact: true }).fill("Candles up again");
      await app.page.getByLabel("Target id", { exact: true }).fill("candles");
      await app.page.getByLabel("Strength").fill("4");
      const note = app.page.getByRole("note").filter({ hasText: "already does exactly this" });
      await note.waitFor();
      expect(await note.textContent()).toBe(
        "“Candles up” (live) already does exactly this: the same action on the same target, with the same strength or slot, segment and schedule. A rule is not saved twice: open “Candles up” to change it, or make this one differ.",
      );
      expect(await note.getByRole("link").getAttribute("href")).toBe(`/console/rules/${made[0]}`);
      // The note on rules sharing the target leaves out the one this note names.
      const sharing = app.page.locator("#rule-targetId-others");
      expect(await sharing.count()).toBe(0);
      // A draft (Enabled unticked) is no double, and another strength is another rule.
      await app.page.getByLabel("Enabled").uncheck();
      await note.waitFor({ state: "detached" });
      await app.page.getByLabel("Enabled").check();
      await note.waitFor();
      await app.page.getByLabel("Strength").fill("5");
      await note.waitFor({ state: "detached" });
      // No longer its double: a rule on the same target, which the sharing note now names.
      await sharing.getByText("“Candles up” (boost", { exact: false }).waitFor();

      // Someone saves that very rule before this form does: the list the form read lacks it, the API does not.
      await make("Candles up more", 5);
      await app.page.getByRole("button", { name: "Create rule" }).click();
      await app.page
        .getByRole("alert")
        .getByText(`Rule ${made[1]} (“Candles up more”, live) already does this:`, { exact: false })
        .waitFor();
      await note.waitFor();
      expect(await note.getByRole("link").getAttribute("href")).toBe(`/console/rules/${made[1]}`);
      expect(app.page.url()).toMatch(/\/console\/rules\/new$/);
      await note.getByRole("link").click();
      await app.page.getByRole("heading", { level: 1, name: "Rule: Candles up more" }).waitFor();
      expect((await admin<{ name: string }[]>("GET", "/v1/admin/rules")).map((rule) => rule.name)).not.toContain(
        "Candles up again",
      );
    } finally {
      for (const id of made) await admin("POST", `/v1/admin/rules/${id}/disable`);
    }
  }, 120_000);

  it("Rules: a boost that leaves the shelf as it was says what to check, a larger strength among it", async () => {
    const leading = (await shelf()).items[0]?.categoryId ?? "";
    expect(leading).not.toBe("");
    await openFromNav("Rules");
    await app.page.getByRole("link", { name: "New rule" }).click();
    await app.page.getByLabel("Target id", { exact: true }).fill(leading);
    await app.page.getByLabel("Strength").fill("0.01");
    await app.page.getByLabel("Customer id").fill(shopperId);
    await app.page.getByRole("button", { name: "Preview" }).click();
    await app.page.getByRole("heading", { name: `Preview for ${shopperId}` }).waitFor();
    expect(await app.page.getByRole("status").filter({ hasText: "This rule does not change" }).textContent()).toBe(
      "This rule does not change this customer's shelf (check the segment, whether the target has anything in stock or already leads this shelf, or try a larger strength).",
    );
  }, 120_000);

  it("Rules: a save from a form someone else has saved since is refused, not written over theirs; a date without its time is refused", async () => {
    const name = "Edited twice";
    const created = await admin<{ id: string }>("POST", "/v1/admin/rules", {
      name,
      action: "boost",
      targetType: "category",
      targetId: "candles",
      strength: 1,
      enabled: false,
    });
    const route = `/v1/admin/rules/${encodeURIComponent(created.id)}`;
    await openFromNav("Rules");
    await app.page
      .getByRole("row", { name: new RegExp(name) })
      .getByRole("link", { name })
      .click();
    await app.page.getByRole("columnheader", { name: "Rule as changed" }).waitFor();
    // Another editor saves first; this form still holds version 1.
    await admin("PATCH", route, { strength: 5 });
    await app.page.getByLabel("Strength").fill("7");
    await app.page.getByRole("button", { name: "Save changes" }).click();
    await app.page.getByText(/^This rule was changed since version 1 was read: it is at version 2 now\./).waitFor();
    expect(await admin<{ strength: number; version: number }>("GET", route)).toMatchObject({ strength: 5, version: 2 });

    // A start date typed without its time: the field's value is empty, which would have saved no start.
    const starts = app.page.getByLabel("Starts");
    await starts.click();
    await app.page.keyboard.type("12202026");
    expect(await starts.evaluate((input) => (input as HTMLInputElement).validity.badInput)).toBe(true);
    await app.page.getByRole("button", { name: "Save changes" }).click();
    await app.page.getByText("Starts needs both a date and a time (or neither)").waitFor();
    expect(await starts.getAttribute("aria-invalid")).toBe("true");
    expect(await admin<{ startsAt: string | null; version: number }>("GET", route)).toMatchObject({
      startsAt: null,
      version: 2,
    });
  }, 120_000);

  it("Rules: each rule's state (live, scheduled, ended, disabled) in the list and on its page; a window already over is said when saved and in the preview, a scheduled draft is previewed as if started", async () => {
    // The datetime-local value of an instant `days` from now, on the retailer's clock (RETAILER_TIME_ZONE,
    // UTC here), which the form reads whatever the browser's zone.
    const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 16);
    const before = await shelf();
    const leading = before.items[0]?.categoryId;
    const target = before.items.findLast((item) => item.categoryId !== leading)?.categoryId ?? "";
    expect(target).not.toBe("");
    const fillRule = async (name: string, startsAt: string, endsAt: string) => {
      await openFromNav("Rules");
      await app.page.getByRole("link", { name: "New rule" }).click();
      await app.page.getByLabel("Name", { exact: true }).fill(name);
      await app.page.getByLabel("Target id", { exact: true }).fill(target);
      await app.page.getByLabel("Strength").fill("10");
      await app.page.getByLabel("Starts").fill(startsAt);
      await app.page.getByLabel("Ends").fill(endsAt);
      await app.page.getByLabel("Customer id").fill(shopperId);
      await app.page.getByRole("button", { name: "Preview" }).click();
      await app.page.getByRole("heading", { name: `Preview for ${shopperId}` }).waitFor();
    };

    // A window already over: the preview says it ended and changes nothing.
    await fillRule("Last January's sale", "2026-01-01T00:00", "2026-01-02T00:00");
    await app.page
      .getByRole("note")
      .getByText(/^Ended 2 Jan 2026, 00:00 UTC: this rule changes no shelf/)
      .waitFor();
    await app.page.getByText("This rule does not change this customer's shelf.").waitFor();
    // Saved anyway (201, as a typo is), its page says so: the state, and a note under the Ends field.
    await app.page.getByRole("button", { name: "Create rule" }).click();
    await app.page.waitForURL(/\/console\/rules\/r_/);
    await app.page.getByRole("columnheader", { name: "Rule as changed" }).waitFor();
    await app.page.getByText("State:").locator(".badge").getByText("ended", { exact: true }).waitFor();
    const note = app.page.getByRole("note");
    await note.getByText(/^Ended 2 Jan 2026, 00:00 UTC: this rule changes no shelf/).waitFor();
    expect(await note.count()).toBe(1);
    expect(await app.page.getByLabel("Ends").getAttribute("aria-describedby")).toContain(
      (await note.getAttribute("id")) ?? "no id",
    );
    await screenshot("rule-ended");
    // A later end hides the note before saving: it is about the saved window.
    await app.page.getByLabel("Ends").fill(inDays(30));
    await note.waitFor({ state: "detached" });

    // A window that starts later: previewed and simulated as if it had started, and said so.
    await fillRule("Christmas week", inDays(19), inDays(26));
    await app.page
      .getByRole("note")
      .getByText(/^Scheduled: starts \d{1,2} \w{3} \d{4}, \d\d:\d\d UTC\./)
      .waitFor();
    await app.page.getByText("The preview applies it as if it had started").waitFor();
    await app.page.getByText("This rule will change this customer's shelf once it starts").waitFor();
    await app.page.getByRole("button", { name: "Simulate over 200 shoppers" }).click();
    await app.page.getByText("The simulation applies it as if it had started").waitFor();
    await app.page.getByRole("button", { name: "Create rule" }).click();
    await app.page.waitForURL(/\/console\/rules\/r_/);
    await app.page.getByText("State:").locator(".badge").getByText("scheduled", { exact: true }).waitFor();
    // Scheduled: the storefront's shelf is as it was.
    expect((await shelf()).items.map((item) => item.id)).toEqual(before.items.map((item) => item.id));

    // A live one, made through the API.
    const created = await fetch(`${app.worker.url}/v1/admin/rules`, {
      method: "POST",
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        name: "Bury it now",
        action: "bury",
        targetType: "category",
        targetId: target,
        strength: 1,
      }),
    });
    expect(created.status).toBe(201);

    // The list: each rule's state as the API has it, with its date; a boost or bury says what it does to the score.
    await openFromNav("Rules");
    const rules = await admin<{ name: string; state: string }[]>("GET", "/v1/admin/rules");
    const row = (name: string) => app.page.getByRole("row", { name: new RegExp(name) });
    await row("Bury it now").getByText(`bury category ${target}: score ÷ 2, for everyone`).waitFor();
    for (const [name, state, when] of [
      ["Bury it now", "live", null],
      ["Christmas week", "scheduled", /^ starts \d{1,2} \w{3} \d{4}, \d\d:\d\d UTC$/],
      ["Last January's sale", "ended", /^ on 2 Jan 2026, 00:00 UTC$/],
      ["Boost a typo", "disabled", null],
    ] as const) {
      expect(rules.find((rule) => rule.name === name)?.state, name).toBe(state);
      const cell = row(name).locator("td").nth(3);
      expect(await cell.locator(".badge").textContent(), name).toBe(state);
      if (when) expect(await cell.locator(".muted").textContent(), name).toMatch(when);
      else expect(await cell.locator(".muted").count(), name).toBe(0);
    }
    await row("Christmas week").getByText(`boost category ${target}: score × 11, for everyone`).waitFor();
    // A product is named by its title as well as its id, as the catalog has it now.
    const { targets } = await admin<{ targets: { id: string; name: string }[] }>(
      "GET",
      "/v1/admin/rules/targets?type=product&q=a",
    );
    const product = targets[0] as { id: string; name: string };
    const pinned = await fetch(`${app.worker.url}/v1/admin/rules`, {
      method: "POST",
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        name: "Pin a product",
        action: "pin",
        targetType: "product",
        targetId: product.id,
        slot: 2,
      }),
    });
    expect(pinned.status).toBe(201);
    await app.page.reload();
    await row("Pin a product")
      .getByText(`pin product ${product.name} (${product.id}) to slot 2, for everyone`)
      .waitFor();
    await screenshot("rules-states");
    for (const rule of await admin<{ id: string; enabled: boolean }[]>("GET", "/v1/admin/rules"))
      if (rule.enabled) await admin("POST", `/v1/admin/rules/${rule.id}/disable`);
  }, 180_000);

  it("Rules: the new-rule form fits a 390 px phone, its buttons wrapping under the customer id", async () => {
    await openFromNav("Rules");
    await app.page.getByRole("link", { name: "New rule" }).click();
    await app.page.getByLabel("Customer id").waitFor();
    await app.page.setViewportSize({ width: 390, height: 844 });
    try {
      const measured = await app.page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        input: document.getElementById("preview-customer")?.getBoundingClientRect().width ?? 0,
        buttons: [...document.querySelectorAll(".try-out button")].map(
          (button) => button.getBoundingClientRect().right,
        ),
      }));
      expect(measured.scrollWidth).toBeLessThanOrEqual(390);
      expect(measured.input).toBeGreaterThanOrEqual(120); // Room to type an id (it was squeezed to 10 px).
      expect(measured.buttons.length).toBe(3);
      for (const right of measured.buttons) expect(right).toBeLessThanOrEqual(390);
      await screenshot("rule-new-phone");
    } finally {
      await app.page.setViewportSize({ width: 1280, height: 900 });
    }
  }, 120_000);

  it("signs out: the session's cookie no longer opens an admin route", async () => {
    const session = (await app.context.cookies()).find((cookie) => cookie.name === "patron_session");
    expect(session).toBeDefined();
    const replay = () =>
      fetch(`${app.worker.url}/v1/admin/rules`, { headers: { Cookie: `patron_session=${session?.value}` } });
    expect((await replay()).status).toBe(200);
    await app.page.getByRole("button", { name: "Sign out" }).click();
    await app.page.getByLabel("Admin key").waitFor();
    expect((await app.context.cookies()).some((cookie) => cookie.name === "patron_session")).toBe(false);
    expect((await replay()).status).toBe(401);
    // A deep link now asks for the key instead of opening the page.
    await app.page.goto(`${app.worker.url}/console/models`);
    await app.page.getByLabel("Admin key").waitFor();
    expect(await app.page.getByRole("navigation", { name: "Console" }).count()).toBe(0);
  }, 120_000);

  it("kept the strict CSP: no script errors or violations on any page", () => {
    expect(app.errors).toEqual([]);
  });
});
