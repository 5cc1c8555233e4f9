// How long raw events and conversions are kept in the events database: EVENT_RETENTION_DAYS, read as
// HOLDOUT_SHARE is (a missing or malformed value keeps the default, with a warning), and never shorter
// than the holdout reads' window plus both attribution windows, so the events and orders of every
// recommendation they count are still there.
import { defaultHoldoutWindowDays } from "../admin/admin.schemas.ts";
import type { AttributionSettings } from "../recommendations/attribution.ts";

/**
 * The longest moving window the holdout is read over: the console's Experiments page offers 7, 30 or
 * 90 days besides the whole experiment (since=start, everything kept; console/src/pages/experiments.tsx);
 * GET /v1/admin/holdout reads 30 without `since`.
 */
export const holdoutReadWindowDays = Math.max(defaultHoldoutWindowDays, 90);

/** A year and a month: a holdout read can still compare a period with the same period a year before. */
export const defaultEventRetentionDays = 400;
/** A hundred years: anything longer is a typo, not a retention. */
const maxEventRetentionDays = 36_500;

/** The shortest retention allowed with these attribution windows. */
export function minEventRetentionDays(attribution: Pick<AttributionSettings, "eventWindowDays" | "orderWindowDays">) {
  return Math.ceil(holdoutReadWindowDays + attribution.eventWindowDays + attribution.orderWindowDays);
}

export function eventRetentionDays(
  setting: string | undefined,
  attribution: Pick<AttributionSettings, "eventWindowDays" | "orderWindowDays">,
): number {
  let days = defaultEventRetentionDays;
  if (setting !== undefined && setting.trim() !== "") {
    const value = Number(setting);
    if (Number.isInteger(value) && value > 0 && value <= maxEventRetentionDays) days = value;
    else
      console.warn(
        JSON.stringify({
          warning: `EVENT_RETENTION_DAYS must be a whole number of days from 1 to ${maxEventRetentionDays}; using the default`,
          setting,
          days,
        }),
      );
  }
  const floor = minEventRetentionDays(attribution);
  if (days < floor) {
    console.warn(
      JSON.stringify({
        warning:
          "EVENT_RETENTION_DAYS is shorter than the holdout read's window plus the attribution windows; keeping that long",
        setting,
        days: floor,
      }),
    );
    days = floor;
  }
  return days;
}
