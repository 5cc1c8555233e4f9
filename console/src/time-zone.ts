// The retailer's clock: the console shows every date and time in one IANA time zone, the retailer's
// (RETAILER_TIME_ZONE, which GET /v1/admin/session answers), whatever zone the browser is in. Plain
// functions of an instant and a zone name, so they are tested in Node.

const offsetFormats = new Map<string, Intl.DateTimeFormat>();

/** How far the zone's wall clock is ahead of UTC at `at` (ms since the epoch), in ms: 9 h for Tokyo. */
export function zoneOffset(at: number, timeZone: string): number {
  let format = offsetFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    offsetFormats.set(timeZone, format);
  }
  const part: Record<string, number> = {};
  for (const { type, value } of format.formatToParts(at)) part[type] = Number(value);
  const wall = Date.UTC(part.year!, part.month! - 1, part.day!, part.hour!, part.minute!, part.second!);
  return wall - (at - (((at % 1000) + 1000) % 1000));
}

/** The zone's wall clock at `at`, written as if it were UTC (so getUTCHours() is the hour on that clock). */
export const toWall = (at: number, timeZone: string) => at + zoneOffset(at, timeZone);

/** The instant a wall-clock time (as toWall writes it) happens in the zone; in a gap at a DST change, just after. */
export function fromWall(wall: number, timeZone: string): number {
  const guess = wall - zoneOffset(wall, timeZone);
  return wall - zoneOffset(guess, timeZone);
}

/** A `datetime-local` input's value ("2026-12-01T09:30") for an ISO instant, on the zone's clock. */
export function toZoneInput(iso: string | null, timeZone: string): string {
  if (!iso) return "";
  const at = Date.parse(iso);
  return Number.isNaN(at) ? "" : new Date(toWall(at, timeZone)).toISOString().slice(0, 16);
}

/** The ISO instant a `datetime-local` input's value names on the zone's clock; null when empty. */
export function fromZoneInput(value: string, timeZone: string): string | null {
  if (!value) return null;
  const wall = Date.parse(`${value}Z`);
  return Number.isNaN(wall) ? value : new Date(fromWall(wall, timeZone)).toISOString();
}

const nameFormats = new Map<string, Intl.DateTimeFormat>();

/** The zone's short name at `at`, as en-GB writes it: "GMT", "BST", "GMT+9", "GMT-5", "UTC". */
export function zoneAbbreviation(at: number, timeZone: string): string {
  let format = nameFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-GB", { timeZone, timeZoneName: "short" });
    nameFormats.set(timeZone, format);
  }
  return format.formatToParts(at).find((part) => part.type === "timeZoneName")?.value ?? timeZone;
}
