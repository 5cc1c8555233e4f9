import { describe, expect, it } from "vitest";
import { maskIdentifier, normalizeIdentifier } from "../../../worker/core/identity/normalize.ts";

describe("normalizeIdentifier", () => {
  it.each([
    ["email", "  Jane.Doe@Example.COM ", "jane.doe@example.com"],
    ["phone", "(415) 555-0142", "+14155550142"],
    ["phone", "+44 20 7946 0958", "+442079460958"],
    ["phone", "0044 20 7946 0958", "+442079460958"],
    ["phone", "1-415-555-0142", "+14155550142"],
    ["loyalty", " ab-1234 5678 ", "AB12345678"],
    ["card", "tok_9f8e", "TOK_9F8E"],
    ["account", " u-881 ", "u-881"],
    ["device", "d-7731aa", "d-7731aa"],
  ] as const)("%s %j → %j", (kind, raw, expected) => {
    expect(normalizeIdentifier(kind, raw)).toEqual({ ok: true, kind, value: expected });
  });

  it.each([
    ["email", ""],
    ["email", "n/a"],
    ["email", "noemail@gmail.com"],
    ["email", "xxxx@shop.com"],
    ["email", "not-an-email"],
    ["email", "till@example.invalid"],
    ["phone", "0000000000"],
    ["phone", "1234567890"],
    ["phone", "555"],
    ["loyalty", "0000"],
    ["loyalty", "12"],
    ["card", "NONE"],
    ["account", "   "],
    ["device", "undefined"],
  ] as const)("blocks %s %j", (kind, raw) => {
    expect(normalizeIdentifier(kind, raw).ok).toBe(false);
  });
});

describe("maskIdentifier", () => {
  it.each([
    ["email", "jane.doe@example.com", "j******@example.com"],
    ["phone", "+14155550142", "******0142"],
    ["loyalty", "AB12345678", "******5678"],
    ["account", "u-881", "u-8**"],
  ] as const)("%s %s → %s", (kind, value, masked) => {
    expect(maskIdentifier(kind, value)).toBe(masked);
    expect(maskIdentifier(kind, value)).not.toBe(value);
  });
});
