// Phone numbers to E.164 for any country, with libphonenumber-js's minimal metadata (country calling
// codes, lengths and number patterns; no type or carrier data). Kept outside core, which imports no
// packages: core's normalizeIdentifier then sees only E.164 values and applies the junk rules.
import type { CountryCode } from "libphonenumber-js/min";
import {
  getCountryCallingCode,
  isSupportedCountry,
  parsePhoneNumberFromString,
  validatePhoneNumberLength,
} from "libphonenumber-js/min";
import { type Normalized, normalizeIdentifier } from "../core/identity/normalize.ts";
import type { IdentifierKind } from "../core/vocabulary.ts";

export const defaultPhoneRegion: CountryCode = "US";

/** PHONE_DEFAULT_REGION as a country libphonenumber knows; the default (US), with a warning, otherwise. */
export function phoneRegion(setting: string | undefined): CountryCode {
  const region = setting?.trim().toUpperCase();
  if (!region) return defaultPhoneRegion;
  if (isSupportedCountry(region)) return region;
  console.warn(JSON.stringify({ warning: "PHONE_DEFAULT_REGION is not a known country code; using US", setting }));
  return defaultPhoneRegion;
}

/** A number's length as validatePhoneNumberLength finds it wrong (NOT_A_NUMBER and INVALID_COUNTRY apart). */
const lengthReasons: Record<string, string> = {
  TOO_SHORT: "phone number too short",
  TOO_LONG: "phone number too long",
  INVALID_LENGTH: "phone number of invalid length",
};

export type PhoneResult = { ok: true; e164: string } | { ok: false; reason: string };

/**
 * A phone number as typed anywhere ("020 7946 0958", "+44 20 7946 0958", "0044 20 7946 0958", or a
 * "tel:+44-20-7946-0958" link) to
 * E.164 ("+442079460958"). National numbers are read in `region`. A number that is not valid for its
 * country is refused with a reason, never guessed at. The reason names the country it was read in: its
 * own when the number gives one (+44, 0044, or 011 44 dialled from the US), else `region`, saying so and
 * how to write a number from elsewhere (a UK mobile typed "07911 123456" in the US is too long for the US).
 */
export function toE164(raw: string, region: CountryCode = defaultPhoneRegion): PhoneResult {
  // A tel: link's number (RFC 3966, "tel:+1-212-736-5000", as copied from a web page or a contact card).
  const trimmed = raw.normalize("NFKC").trim().replace(/^tel:/i, "").trim();
  // "00" is the international prefix in most of the world (not in North America, where no number starts with it).
  const input = trimmed.startsWith("00") ? `+${trimmed.slice(2)}` : trimmed;
  const lengthProblem = validatePhoneNumberLength(input, region);
  if (lengthProblem === "INVALID_COUNTRY") return { ok: false, reason: "phone number without a known country code" };
  const parsed = parsePhoneNumberFromString(input, region);
  if (parsed && !lengthProblem && parsed.isValid()) return { ok: true, e164: parsed.number };
  if (lengthProblem === "NOT_A_NUMBER" || (!parsed && !lengthProblem))
    return { ok: false, reason: "not a phone number" };
  const wrong = lengthProblem ? (lengthReasons[lengthProblem] ?? "not a phone number") : "not a valid phone number";
  const code = parsed?.countryCallingCode;
  if (input.startsWith("+") || (code && code !== getCountryCallingCode(region)))
    return { ok: false, reason: code ? `${wrong} for country code +${code}` : wrong };
  const elsewhere = region === "GB" ? "+1 for the US" : "+44 for the UK";
  return {
    ok: false,
    reason:
      `${wrong} for the default region, ${region} (a number without a country code is read as one from there); ` +
      `write a number from another country with + and its country code, such as ${elsewhere}`,
  };
}

/**
 * Normalises one raw identifier as every path that computes a key must (ingestion, identify, the
 * console's lookup): phones to E.164 in the retailer's default region, then core's rules for the kind.
 */
export function normalizeForKey(
  kind: IdentifierKind,
  raw: string,
  region: CountryCode = defaultPhoneRegion,
): Normalized {
  if (kind !== "phone") return normalizeIdentifier(kind, raw);
  const placeholder = normalizeIdentifier(kind, raw);
  if (!placeholder.ok && placeholder.reason === "placeholder value") return placeholder;
  const phone = toE164(raw, region);
  if (!phone.ok) return { ok: false, kind, reason: phone.reason };
  return normalizeIdentifier(kind, phone.e164);
}
