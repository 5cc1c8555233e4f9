// `patron seed --out` writes the demo retailer's files for `patron import`: their product and image
// urls point at the worker the import goes to (docs/import.md runs both on $PORT), or at --base-url.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { expect, it, onTestFinished } from "vitest";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");

async function firstProduct(env: Record<string, string | undefined>, ...args: string[]) {
  const out = mkdtempSync(path.join(tmpdir(), "patron-seed-"));
  onTestFinished(() => rmSync(out, { recursive: true, force: true }));
  const { PATRON_URL: _url, PORT: _port, ...rest } = process.env;
  await run("node", ["cli/bin.mjs", "seed", "--customers", "1", "--out", out, ...args], {
    cwd: root,
    env: { ...rest, ...env },
  });
  const [line] = readFileSync(path.join(out, "products.ndjson"), "utf8").split("\n");
  return JSON.parse(line ?? "{}") as { url: string; imageUrl: string };
}

it("points the products at the local worker on $PORT, at $PATRON_URL, or at --base-url", async () => {
  expect((await firstProduct({})).url).toMatch(/^http:\/\/127\.0\.0\.1:8787\/demo\/products\//);
  const onPort = await firstProduct({ PORT: "8899" });
  expect(onPort.url).toMatch(/^http:\/\/127\.0\.0\.1:8899\/demo\/products\//);
  expect(onPort.imageUrl).toMatch(/^http:\/\/127\.0\.0\.1:8899\/demo\/images\//);
  expect((await firstProduct({ PATRON_URL: "https://patron.shop.example" })).url).toMatch(
    /^https:\/\/patron\.shop\.example\/demo\/products\//,
  );
  expect((await firstProduct({ PORT: "8899" }, "--base-url", "https://cdn.example")).url).toMatch(
    /^https:\/\/cdn\.example\/demo\/products\//,
  );
}, 60_000);
