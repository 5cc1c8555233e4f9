// The server-side recipe of docs/embedding.md, run as a storefront would run it: examples/server-side-shelf.mjs
// as its own Node process against the real worker under `wrangler dev` (seeded with the demo retailer,
// refitted). Its pages carry the shelves as plain HTML with no script; the impressions it posts when
// rendering and the click it posts when a shelf's link is followed are stored with their placement and
// position; with Patron unreachable the page still renders, without a shelf.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postSeedData } from "../../cli/seed-demo.ts";
import { type DevWorker, freePort, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import { queryLocalD1 } from "../widget/harness.ts";

const root = path.resolve(import.meta.dirname, "../..");
const example = path.join(root, "examples/server-side-shelf.mjs");

let worker: DevWorker;
const children: ChildProcess[] = [];

/** Starts the example on a free port against `patronUrl`; resolves with its address once it listens. */
function startExample(patronUrl: string): Promise<string> {
  const child = spawn(process.execPath, [example], {
    env: { ...process.env, PATRON_URL: patronUrl, SHOPPER_TOKEN_SECRET: testSecrets.SHOPPER_TOKEN_SECRET, PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk;
      const listening = output.match(/listening on (http:\/\/\S+)/);
      if (listening) resolve(listening[1]!);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk));
    child.once("exit", (code) => reject(new Error(`the example exited (${code}):\n${output}`)));
  });
}

interface EventRow {
  type: string;
  productId: string;
  placement: string | null;
  position: number | null;
}

function eventsOf(recommendationId: string): Promise<EventRow[]> {
  return queryLocalD1<EventRow>(
    worker.persistDir,
    `select type, product_id as productId, placement, position from events where recommendation_id = '${recommendationId.replace(/'/g, "''")}' order by id`,
    "EVENTS_DB",
  );
}

/** The shelf's links (href, HTML-unescaped) in a rendered page. */
function shelfLinks(html: string): URL[] {
  return [...html.matchAll(/<li><a href="([^"]+)"/g)].map(
    (match) => new URL(match[1]!.replace(/&#38;/g, "&"), "http://shop.local"),
  );
}

beforeAll(async () => {
  worker = await startDevWorker();
  await postSeedData({ url: worker.url, apiKey: testSecrets.PATRON_API_KEY, customers: 40 });
  const refit = await fetch(`${worker.url}/v1/admin/jobs/nightly?wait=1`, {
    method: "POST",
    headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
  });
  if (!refit.ok) throw new Error(`nightly job failed: ${refit.status} ${await refit.text()}`);
}, 300_000);

afterAll(async () => {
  for (const child of children) child.kill();
  await worker?.stop();
});

describe("server-side shelves (examples/server-side-shelf.mjs)", () => {
  it("renders a known shopper's shelf as HTML, posts its impressions, and the click of a followed link", async () => {
    const shop = await startExample(worker.url);
    const home = await fetch(`${shop}/?account=demo-full-price`);
    expect(home.status).toBe(200);
    expect(home.headers.get("Cache-Control")).toBe("private, no-store");
    const html = await home.text();
    expect(html).toContain(">Picked for you</h2>");
    expect(html).not.toContain("<script");
    const links = shelfLinks(html);
    expect(links.length).toBeGreaterThan(0);
    const first = links[0]!;
    const recommendationId = first.searchParams.get("patron_rec")!;
    expect(recommendationId).toMatch(/^rec_/);
    expect(first.searchParams.get("patron_placement")).toBe("home");

    // The impressions are posted once the page is sent: one per card, with placement and position.
    await expect
      .poll(() => eventsOf(recommendationId), { timeout: 10_000 })
      .toEqual(
        links.map((link, index) => ({
          type: "impression",
          productId: decodeURIComponent(link.pathname.split("/").pop()!),
          placement: "home",
          position: index + 1,
        })),
      );

    // Following the first card: the product page posts the click, and shows what goes with the product.
    const productId = decodeURIComponent(first.pathname.split("/").pop()!);
    const product = await fetch(`${shop}${first.pathname}${first.search}`, {
      headers: { Cookie: home.headers.get("Set-Cookie")!.split(";")[0]! },
    });
    expect(product.status).toBe(200);
    const productHtml = await product.text();
    expect(productHtml).toContain(">Goes with this</h2>");
    const goesWith = shelfLinks(productHtml);
    expect(goesWith.length).toBeGreaterThan(0);
    expect(goesWith.map((link) => link.pathname)).not.toContain(first.pathname);
    expect(goesWith[0]!.searchParams.get("patron_placement")).toBe("product");
    await expect
      .poll(async () => (await eventsOf(recommendationId)).filter((event) => event.type === "click"), {
        timeout: 10_000,
      })
      .toEqual([{ type: "click", productId, placement: "home", position: 1 }]);
  }, 60_000);

  it("gives an anonymous visitor the popular shelf, its impressions stored too", async () => {
    const shop = await startExample(worker.url);
    const html = await (await fetch(`${shop}/`)).text();
    expect(html).toContain(">Popular right now</h2>");
    const links = shelfLinks(html);
    expect(links.length).toBeGreaterThan(0);
    const recommendationId = links[0]!.searchParams.get("patron_rec")!;
    await expect
      .poll(async () => (await eventsOf(recommendationId)).filter((event) => event.type === "impression").length, {
        timeout: 10_000,
      })
      .toBe(links.length);
  }, 60_000);

  it("still renders the page, without a shelf, when Patron cannot be reached", async () => {
    const shop = await startExample(`http://127.0.0.1:${await freePort()}`);
    const response = await fetch(`${shop}/?account=demo-full-price`);
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain("<h1>Shop</h1>");
    expect(html).not.toContain("<section");
  }, 60_000);
});
