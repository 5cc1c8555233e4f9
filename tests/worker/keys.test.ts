// API and admin keys through the real worker: the exact key only (no prefix, suffix or case variant),
// compared in constant time by `timingSafeEqual` (SHA-256 of both sides, crypto.subtle.timingSafeEqual).
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { timingSafeEqual } from "../../worker/http/auth.ts";
import { adminKey, apiKey } from "../fixtures/builders.ts";

const get = (path: string, key: string | null) =>
  SELF.fetch(`http://patron.test${path}`, { headers: key === null ? {} : { Authorization: `Bearer ${key}` } });
const ingest = "/v1/products";
const admin = "/v1/admin/models";

describe("key checks", () => {
  it.each([
    ["the API key on an ingestion route", ingest, apiKey, true],
    ["the admin key on an ingestion route", ingest, adminKey, true],
    ["the admin key on an admin route", admin, adminKey, true],
    ["the API key on an admin route", admin, apiKey, false],
    ["a prefix of the key", ingest, apiKey.slice(0, -1), false],
    ["the key with a character more", ingest, `${apiKey}x`, false],
    ["the key in upper case", ingest, apiKey.toUpperCase(), false],
    ["an empty bearer", ingest, "", false],
    ["no header", ingest, null, false],
  ])("%s", async (_, path, key, accepted) => {
    const response = await (path === ingest
      ? SELF.fetch(`http://patron.test${path}`, {
          method: "POST",
          headers: { "Content-Type": "application/json", ...(key === null ? {} : { Authorization: `Bearer ${key}` }) },
          body: JSON.stringify({ products: [] }),
        })
      : get(path, key));
    if (accepted) expect(response.status).not.toBe(401);
    else {
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    }
  });

  it("compares strings exactly, whatever their lengths", async () => {
    expect(await timingSafeEqual("same-key", "same-key")).toBe(true);
    expect(await timingSafeEqual("same-key", "same-kez")).toBe(false);
    expect(await timingSafeEqual("short", "a much longer string than short")).toBe(false);
    expect(await timingSafeEqual("", "")).toBe(true);
    expect(await timingSafeEqual("é", "e\u0301")).toBe(false);
  });
});
