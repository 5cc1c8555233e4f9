// `patron import` on a `.gz` file that is not whole gzip data (cut short in a download, or a plain file
// named .gz): one line naming the file and what to check, before anything is sent, instead of zlib's
// "unexpected end of file" and its stack. No worker is needed: the file is read before any request.
import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { wireOrder } from "../fixtures/wire-order.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const fixtures = path.join(root, "tests/fixtures/completejourney");
const workDir = mkdtempSync(path.join(tmpdir(), "patron-import-gzip-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** Runs the CLI against a worker that is not there: a request would fail with another message. */
async function patron(...args: string[]): Promise<{ stderr: string; code: number }> {
  const worker = ["--url", "http://127.0.0.1:59999", "--key", "test-api-key"];
  try {
    const { stderr } = await run(process.execPath, [path.join(root, "cli/bin.mjs"), ...args, ...worker], {
      cwd: workDir,
    });
    return { stderr, code: 0 };
  } catch (error) {
    const failed = error as { stderr: string; code: number };
    return { stderr: failed.stderr, code: failed.code };
  }
}

/** The first `share` of `bytes` gzipped: a download cut short. */
const cutShort = (bytes: Buffer, share = 0.5) => {
  const whole = gzipSync(bytes);
  return whole.subarray(0, Math.floor(whole.length * share));
};

const endsEarly = (file: string) =>
  `${file}: the gzip data ends early (unexpected end of file): the file was cut short, in a copy or a download. gunzip -t ${file} checks it.`;

describe("patron import of a damaged .gz file", () => {
  it("says which file ends early, for NDJSON orders through the queue and --direct", async () => {
    const orders = Array.from({ length: 400 }, (_, n) => wireOrder(`gz-${n}`)).join("\n");
    const file = path.join(workDir, "orders.ndjson.gz");
    writeFileSync(file, cutShort(Buffer.from(orders)));
    for (const extra of [[], ["--direct"]]) {
      const { stderr, code } = await patron("import", "orders", file, ...extra);
      expect(code).toBe(1);
      expect(stderr.split("\n")[0]).toBe(endsEarly(file));
      expect(stderr).not.toMatch(/\n\s+at /);
    }
  });

  it("says which file ends early for a CSV read through the preset, orders and products alike", async () => {
    copyFileSync(path.join(fixtures, "products.csv"), path.join(workDir, "products.csv"));
    const file = path.join(workDir, "transactions_sample.csv.gz");
    writeFileSync(file, cutShort(readFileSync(path.join(fixtures, "transactions_sample.csv"))));
    for (const kind of ["orders", "products"]) {
      const { stderr, code } = await patron("import", kind, file, "--preset", "completejourney");
      expect(code).toBe(1);
      expect(stderr).toBe(`${endsEarly(file)}\n`);
    }
  });

  it("says a file named .gz is not gzip data", async () => {
    const file = path.join(workDir, "plain.ndjson.gz");
    writeFileSync(file, `${wireOrder("gz-plain")}\n`);
    const { stderr, code } = await patron("import", "orders", file);
    expect(code).toBe(1);
    expect(stderr.split("\n")[0]).toBe(
      `${file}: not gzip data, or damaged (incorrect header check), though its name ends in .gz. gunzip -t ${file} checks it; a file that is not compressed is read under a name without .gz.`,
    );
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
