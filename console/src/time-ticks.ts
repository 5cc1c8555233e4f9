// The labels along a chart's axes: calendar ticks for a time axis, and how much room a label takes.
import { utcTicks } from "d3-time";
import { fromWall, toWall } from "./time-zone.ts";

/** Roughly how wide a label of `length` characters is at the charts' 13px, in viewBox units, with a gap. */
export const labelRoom = (length: number) => length * 8 + 10;

export interface PlacedTick {
  at: number;
  label: string;
  anchor: "start" | "middle" | "end";
}

/**
 * The ticks whose labels fit along an axis `width` wide, `x` placing each date, with each label's
 * anchor: centred under its date unless that would run past an edge (then starting or ending at its
 * date). A label that would overlap the one kept before it, as that one is anchored, is left out.
 */
export function placeLabels(
  ticks: readonly { at: number; label: string }[],
  x: (at: number) => number,
  width: number,
): PlacedTick[] {
  const placed: PlacedTick[] = [];
  let end = Number.NEGATIVE_INFINITY;
  for (const tick of ticks) {
    const room = labelRoom(tick.label.length);
    const at = x(tick.at);
    const anchor = at - room / 2 < 0 ? "start" : at + room / 2 > width ? "end" : "middle";
    const from = anchor === "start" ? at : anchor === "end" ? at - room : at - room / 2;
    if (from < end) continue;
    placed.push({ ...tick, anchor });
    end = from + room;
  }
  return placed;
}

// The ticks are found and labelled on the zone's wall clock written as UTC (time-zone.ts toWall).
const yearFormat = new Intl.DateTimeFormat("en-GB", { year: "numeric", timeZone: "UTC" });
const monthFormat = new Intl.DateTimeFormat("en-GB", { month: "short", year: "numeric", timeZone: "UTC" });
const dayFormat = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeZone: "UTC" });
const hourFormat = new Intl.DateTimeFormat("en-GB", {
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
  timeZone: "UTC",
});

/**
 * Calendar ticks between two instants on the clock of `timeZone` (d3-time: whole years, months, weeks,
 * days or hours there, whichever gives about `count`), each labelled as finely as the ticks need and no
 * finer ("2026", "Nov 2026", "3 Nov 2026"), so no two labels read the same.
 */
export function timeTicks(from: number, to: number, count: number, timeZone = "UTC"): { at: number; label: string }[] {
  const ticks = utcTicks(new Date(toWall(from, timeZone)), new Date(toWall(to, timeZone)), count);
  const all = (test: (date: Date) => boolean) => ticks.every(test);
  const midnight = (date: Date) => date.getUTCHours() === 0 && date.getUTCMinutes() === 0;
  const format = all((date) => midnight(date) && date.getUTCDate() === 1 && date.getUTCMonth() === 0)
    ? yearFormat
    : all((date) => midnight(date) && date.getUTCDate() === 1)
      ? monthFormat
      : all(midnight)
        ? dayFormat
        : hourFormat;
  return ticks
    .map((date) => ({ at: fromWall(date.getTime(), timeZone), label: format.format(date) }))
    .filter((tick) => tick.at >= from && tick.at <= to);
}
