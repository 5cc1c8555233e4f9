// Identifier normalisation, junk blocking and masking. Pure: no hashing here (the worker keys the
// normalised value with HMAC), no I/O. It does not decide who is who; resolve.ts does.

import type { IdentifierKind } from "../vocabulary.ts";

export interface NormalizeOptions {
  /** Country calling code assumed for national phone numbers (10 digits in NANP). */
  defaultCountryCode: string;
  /** Email domains that belong to the retailer itself (a till's "store@shop.com" placeholder). */
  blockedEmailDomains: string[];
}

export const defaultNormalizeOptions: NormalizeOptions = {
  defaultCountryCode: "1",
  blockedEmailDomains: ["example.invalid"],
};

export type Normalized =
  | { ok: true; kind: IdentifierKind; value: string }
  | { ok: false; kind: IdentifierKind; reason: string };

// Values that tills and forms put in when the customer gave nothing.
const placeholderWords = new Set([
  "",
  "-",
  "--",
  ".",
  "0",
  "n/a",
  "na",
  "n.a.",
  "none",
  "null",
  "nil",
  "undefined",
  "unknown",
  "test",
  "x",
  "xx",
  "xxx",
  "no",
  "noemail",
  "walkin",
  "walk-in",
  "guest",
  "cash",
  "customer",
]);
const placeholderEmailLocals = new Set([
  "noemail",
  "no-email",
  "none",
  "no",
  "na",
  "n/a",
  "test",
  "unknown",
  "noreply",
  "no-reply",
  "donotreply",
  "walkin",
  "walk-in",
  "guest",
  "customer",
  "nobody",
  "null",
  "email",
  "declined",
  "refused",
]);

/**
 * What separates the groups of a loyalty or card number, all dropped: spaces (`\s` holds the Unicode
 * ones, no-break spaces included), "-", and what phone keyboards and autocorrect type for it: the
 * Unicode hyphens and dashes (U+2010–U+2015, en and em dashes among them), the minus sign (U+2212),
 * the two- and three-em dashes (U+2E3A, U+2E3B), and the invisible soft hyphen, zero-width space and
 * word joiner (U+00AD, U+200B, U+2060). NFKC has already made the small and full-width hyphen-minus
 * "-". These were kept before, so a number typed with them matched nobody; a value without them keeps
 * the key it had (docs/identity.md, Loyalty and card numbers).
 */
const numberSeparators = /[\s\-\u2010-\u2015\u2212\u2e3a\u2e3b\u00ad\u200b\u2060]/g;

/** What a file or form pads an id with at either end. */
const paddingAtEnds = /^[ \t\r\n]+|[ \t\r\n]+$/g;

/**
 * A value with what a file or form pads it with dropped (ASCII spaces, tabs, line ends), and nothing
 * else: an account id that starts with another space (`\u3000u-881`) is not `u-881`. Where a person
 * types an identifier to look it up (the console, the suppression routes, `patron token --sub`).
 */
export const trimPadding = (value: string) => value.replace(paddingAtEnds, "");

function isRepeatedCharacter(value: string): boolean {
  return value.length > 1 && /^(.)\1+$/.test(value);
}

export function normalizeIdentifier(
  kind: IdentifierKind,
  raw: string,
  options: NormalizeOptions = defaultNormalizeOptions,
): Normalized {
  const trimmed = raw.normalize("NFKC").trim();
  const blocked = (reason: string): Normalized => ({ ok: false, kind, reason });
  if (placeholderWords.has(trimmed.toLowerCase())) return blocked("placeholder value");
  if (trimmed.length > 254) return blocked("too long");

  switch (kind) {
    case "email": {
      const email = trimmed.toLowerCase();
      const match = email.match(/^([^\s@]+)@([^\s@]+\.[^\s@]+)$/);
      if (!match) return blocked("not an email address");
      const [, local = "", domain = ""] = match;
      if (placeholderEmailLocals.has(local) || isRepeatedCharacter(local)) return blocked("placeholder email");
      if (options.blockedEmailDomains.includes(domain)) return blocked("retailer's own email domain");
      return { ok: true, kind, value: email };
    }
    case "phone": {
      const international = trimmed.startsWith("+") || trimmed.startsWith("00");
      let digits = trimmed.replace(/\D/g, "");
      if (trimmed.startsWith("00")) digits = digits.slice(2);
      if (!international) {
        if (digits.length === 10) digits = options.defaultCountryCode + digits;
        else if (digits.length === 11 && digits.startsWith(options.defaultCountryCode)) {
          // already carries the default country code
        } else return blocked("national number of unexpected length");
      }
      if (digits.length < 8 || digits.length > 15) return blocked("not a phone number");
      const national = digits.slice(-9);
      if (isRepeatedCharacter(national) || "0123456789012".includes(national) || "9876543210".includes(national)) {
        return blocked("placeholder phone number");
      }
      return { ok: true, kind, value: `+${digits}` };
    }
    case "loyalty":
    case "card": {
      const code = trimmed.toUpperCase().replace(numberSeparators, "");
      if (code.length < 4) return blocked("too short");
      if (isRepeatedCharacter(code) || /^0+$/.test(code)) return blocked("placeholder number");
      return { ok: true, kind, value: code };
    }
    case "account":
    case "device": {
      // An id the storefront or the widget issued, compared as sent: NFKC would make two accounts one
      // ("ｊｏｈｎ" and "john", "ﬁ" and "fi") and show one shopper the other's history. Only the spaces,
      // tabs and line ends an export pads a field with are dropped.
      const id = raw.replace(paddingAtEnds, "");
      if (isRepeatedCharacter(id) && id.length < 12) return blocked("placeholder id");
      return { ok: true, kind, value: id };
    }
  }
}

/** The only readable form of an identifier Patron keeps: enough for a person to recognise it. */
export function maskIdentifier(kind: IdentifierKind, value: string): string {
  const stars = (n: number) => "*".repeat(Math.max(1, Math.min(n, 6)));
  switch (kind) {
    case "email": {
      // The first character of the part before @, but not all of a one-character one ("j@x.com").
      const [local = "", domain = ""] = value.split("@");
      const shown = Math.min(1, Math.floor(local.length / 2));
      return `${local.slice(0, shown)}${stars(local.length - shown)}@${domain}`;
    }
    case "phone":
    case "loyalty":
    case "card": {
      // The last four, but never more than half: a short loyalty number or card kept whole would be the
      // value itself in the clear, beside the keyed hash that exists so that it is not.
      const shown = Math.min(4, Math.floor(value.length / 2));
      return `${stars(value.length - shown)}${value.slice(value.length - shown)}`;
    }
    case "account":
    case "device": {
      // The first three (one of a short id), but never more than half, as above.
      const shown = Math.min(value.length <= 4 ? 1 : 3, Math.floor(value.length / 2));
      return `${value.slice(0, shown)}${stars(value.length - shown)}`;
    }
  }
}
