import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { maskIdentifier, normalizeIdentifier, trimPadding } from "../../../worker/core/identity/normalize.ts";

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

describe("loyalty and card numbers typed on a phone", () => {
  // En and em dashes, hyphens, the minus sign, no-break and other Unicode spaces, and invisible breaks
  // (soft hyphen, zero-width space, word joiner): what phone keyboards and autocorrect put for "-" and " ".
  it("keys a number typed with them as it keys LY-DEMO-0002", () => {
    for (const raw of [
      "LY–DEMO–0002",
      "LY—DEMO—0002",
      "LY‐DEMO‑0002",
      "LY‒DEMO―0002",
      "LY−DEMO−0002",
      "LY⸺DEMO⸻0002",
      "LY－DEMO﹣0002",
      "LY\u00a0DEMO\u202f0002",
      "LY\u2009DEMO\u3000\u20070002",
      "ly\u00adde\u200bmo\u20600002",
      " ly – demo – 0002 ",
    ]) {
      expect(normalizeIdentifier("loyalty", raw), JSON.stringify(raw)).toEqual({
        ok: true,
        kind: "loyalty",
        value: "LYDEMO0002",
      });
      expect(normalizeIdentifier("card", raw), JSON.stringify(raw)).toEqual({
        ok: true,
        kind: "card",
        value: "LYDEMO0002",
      });
    }
  });

  it("still blocks a number that is nothing but dashes, or too short without them", () => {
    expect(normalizeIdentifier("loyalty", "––––––").ok).toBe(false);
    expect(normalizeIdentifier("loyalty", "0–0–0–0")).toMatchObject({ ok: false, reason: "placeholder number" });
    expect(normalizeIdentifier("loyalty", "A—B—C")).toMatchObject({ ok: false, reason: "too short" });
  });

  // The values keyed before these characters were dropped keep their keys: a changed value would no
  // longer match the customer who holds it.
  it.each([
    [" ab-1234 5678 ", "AB12345678"],
    ["LY-DEMO-0002", "LYDEMO0002"],
    ["ly demo 0002", "LYDEMO0002"],
    ["C360-POP-12", "C360POP12"],
    ["tok_9f8e", "TOK_9F8E"],
    ["4111.1111.1111", "4111.1111.1111"],
    ["A/B#1234", "A/B#1234"],
    ["123~456", "123~456"],
    ["Ｌｙ１２３４", "LY1234"],
    ["straße-12", "STRASSE12"],
    ["ab〜cd", "AB〜CD"],
    ["ab_cd_ef", "AB_CD_EF"],
  ])("%j still keys as %j", (raw, value) => {
    expect(normalizeIdentifier("loyalty", raw)).toEqual({ ok: true, kind: "loyalty", value });
  });

  it("keys every value without the newly dropped characters as the earlier rule did", () => {
    const earlier = (raw: string) => raw.normalize("NFKC").trim().toUpperCase().replace(/[\s-]/g, "");
    const alphabet = [..."AZaz09 -_./#~", "\u00a0", "\u3000", "\t", "é", "ß", "Ｚ", "٣", "ﬁ", "〜", "_"];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...alphabet), { maxLength: 24 }), (characters) => {
        const raw = characters.join("");
        const now = normalizeIdentifier("loyalty", raw);
        if (now.ok) expect(now.value).toBe(earlier(raw));
        else
          expect(
            earlier(raw).length < 4 || /^(.)\1+$|^0+$/.test(earlier(raw)) || now.reason.includes("placeholder"),
          ).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("account and device ids are compared as sent", () => {
  it.each([
    ["ｊｏｈｎ", "john"],
    ["ﬁona", "fiona"],
    ["user²", "user2"],
    ["u\u00a0881", "u 881"],
    ["jose\u0301", "jos\u00e9"],
  ])("%j is not %j", (lookalike, original) => {
    for (const kind of ["account", "device"] as const) {
      const a = normalizeIdentifier(kind, lookalike);
      const b = normalizeIdentifier(kind, original);
      expect(a).toEqual({ ok: true, kind, value: lookalike });
      expect(b).toEqual({ ok: true, kind, value: original });
    }
  });

  it("drops only the spaces, tabs and line ends around an id", () => {
    expect(normalizeIdentifier("account", " \tu-881\r\n")).toEqual({ ok: true, kind: "account", value: "u-881" });
    expect(normalizeIdentifier("account", "\u3000u-881")).toEqual({ ok: true, kind: "account", value: "\u3000u-881" });
  });

  it("keys every printable ASCII id as the earlier NFKC rule did", () => {
    const earlier = (raw: string) => raw.normalize("NFKC").trim();
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."azAZ09 -_.@|:\t"), maxLength: 24 }), (raw) => {
        const now = normalizeIdentifier("account", raw);
        if (now.ok) expect(now.value).toBe(earlier(raw));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("trimPadding", () => {
  it("drops the ASCII spaces, tabs and line ends a file or form pads a value with, and no other space", () => {
    expect(trimPadding(" \t u-881\r\n")).toBe("u-881");
    expect(trimPadding("\u3000u-881")).toBe("\u3000u-881");
    expect(trimPadding("u-881\u00a0")).toBe("u-881\u00a0");
    expect(trimPadding(" a b ")).toBe("a b");
  });
});

describe("maskIdentifier", () => {
  it.each([
    ["email", "jane.doe@example.com", "j******@example.com"],
    ["phone", "+14155550142", "******0142"],
    ["loyalty", "AB12345678", "******5678"],
    ["account", "demo-store-loyal", "dem******"],
  ] as const)("%s %s → %s", (kind, value, masked) => {
    expect(maskIdentifier(kind, value)).toBe(masked);
    expect(maskIdentifier(kind, value)).not.toBe(value);
  });

  it.each([
    ["loyalty", "7391", "**91"],
    ["card", "4821", "**21"],
    ["loyalty", "LYH477", "***477"],
    ["loyalty", "12345", "***45"],
    ["loyalty", "7", "*"],
  ] as const)("a short %s %s shows at most half of it: %s", (kind, value, masked) => {
    expect(maskIdentifier(kind, value)).toBe(masked);
    const shown = masked.replace(/^\*+/, "");
    expect(shown.length).toBeLessThanOrEqual(value.length / 2);
  });

  it.each([
    ["account", "u-881", "u-***"],
    ["account", "a", "*"],
    ["account", "ab", "a*"],
    ["device", "d-1234", "d-1***"],
    ["email", "j@example.com", "*@example.com"],
    ["email", "jo@example.com", "j*@example.com"],
  ] as const)("a short %s %s shows at most half of it: %s", (kind, value, masked) => {
    expect(maskIdentifier(kind, value)).toBe(masked);
    const shown = masked.split("@")[0]?.replace(/\*+$/, "") ?? "";
    expect(shown.length).toBeLessThanOrEqual(value.split("@")[0]!.length / 2);
  });
});
