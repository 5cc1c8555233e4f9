// CSV for audience exports (RFC 4180), safe to open in a spreadsheet. Pure.

/** Text a spreadsheet would run as a formula when it opens the file. */
const formulaStart = /^[=+\-@\t\r]/;
const numeric = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i;

/**
 * One field: quoted when it holds a comma, semicolon, quote, CR or LF (quotes doubled). The semicolon
 * separates fields where Excel's list separator is ";" (much of Europe): unquoted, `a;=1+1` would
 * open as two cells, the second a formula. Text that a spreadsheet would read as a formula (=, +, -,
 * @, tab, CR first) is prefixed with an apostrophe. Numbers are written as they are; null and
 * undefined are empty.
 */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  let text = value;
  if (formulaStart.test(text) && !numeric.test(text)) text = `'${text}`;
  return /[",;\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One record, CRLF-terminated as RFC 4180 has it. */
export function csvLine(values: readonly (string | number | null | undefined)[]): string {
  return `${values.map(csvField).join(",")}\r\n`;
}
