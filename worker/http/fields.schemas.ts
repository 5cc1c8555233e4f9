// The field types every write route builds its schema from, so one limit means the same thing on
// every route: lengths count characters (Unicode code points, as zod's string checks do: an emoji
// is one), ids may hold any printable character but no control character (NUL
// included), free text may also hold tabs and line breaks, links are http(s) only, and instants lie
// between 1970-01-01 and the year 9999. Limits are in docs/api.md.
import * as z from "zod";

/** No control character (C0, DEL, C1: NUL included) and no lone UTF-16 surrogate. */
export const printable = /^[^\p{Cc}\p{Cs}]*$/u;
/** The same, but tab, line feed and carriage return are allowed. */
export const printableText = /^(?:[\t\n\r]|[^\p{Cc}\p{Cs}])*$/u;

export const noControlCharacters = "must not contain control characters (NUL, tab, line breaks …)";
const noControlInText = "must not contain control characters other than tab and line breaks";

/** An id the client chooses (order, product, category, store …): trimmed, 1..max characters, printable. */
export function idField(max: number) {
  return z
    .string()
    .trim()
    .min(1, "must not be empty")
    .max(max, `must be at most ${max} characters`)
    .regex(printable, noControlCharacters);
}

/** Free text (a title, a name): trimmed, 1..max characters, no control characters but tab and line breaks. */
export function textField(max: number) {
  return z
    .string()
    .trim()
    .min(1, "must not be empty")
    .max(max, `must be at most ${max} characters`)
    .regex(printableText, noControlInText);
}

export const maxUrlLength = 2048;

/** An absolute http:// or https:// link (never javascript:, data: …), at most 2,048 characters. */
export function httpUrlField() {
  return z
    .string()
    .max(maxUrlLength, `must be at most ${maxUrlLength} characters`)
    .pipe(z.url({ protocol: /^https?$/, error: "must be an absolute http:// or https:// URL" }));
}

/** The earliest instant any date input may name. */
export const earliestInstant = "1970-01-01T00:00:00.000Z";

/** What an instant must be, in an error: a time without Z or an offset is ISO 8601 too, but no instant. */
export const instantRule =
  "must be an ISO 8601 date-time with Z or an offset, e.g. 2026-11-01T00:00:00Z or 2026-11-01T01:00:00+01:00";

/** An ISO 8601 date-time with offset, not before 1970-01-01 (the ISO format caps it at year 9999). */
export function instantField(message = instantRule) {
  return (
    z.iso
      .datetime({ offset: true, error: message })
      // A value that is no date at all already has the format issue; this one is only about the range.
      .refine((value) => !(Date.parse(value) < 0), { message: "must not be before 1970-01-01T00:00:00Z" })
  );
}

/**
 * A whole-number query parameter from `min` to `max` (e.g. `limit`): one message for any value that is
 * not one ("abc", 2.5, 0, an empty value), naming the parameter and the range.
 */
export function wholeNumberParam(name: string, min: number, max: number) {
  const message = `${name} must be a whole number from ${min} to ${max}`;
  // abort: a number too big to be an integer (1e20) fails once, not also as over `max`.
  return z.coerce.number({ error: message }).int({ error: message, abort: true }).min(min, message).max(max, message);
}
