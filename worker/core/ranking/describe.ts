// Small helpers that turn numbers into the words used in reason sentences ("about every 4 weeks",
// "online and in store"). Wording only: no scoring, no localisation beyond English.

export type ChannelMix = "web" | "store" | "web_and_store";

/** Which channels a category was bought through, from its web and store unit counters. */
export function channelMixOf(webUnits: number, storeUnits: number): ChannelMix | undefined {
  if (webUnits > 0 && storeUnits > 0) return "web_and_store";
  if (webUnits > 0) return "web";
  if (storeUnits > 0) return "store";
  return undefined;
}

export function describeChannel(mix: ChannelMix | undefined): string {
  if (mix === "web_and_store") return "online and in store";
  if (mix === "web") return "online";
  if (mix === "store") return "in store";
  return "";
}

/** "5 days", "4 weeks", "3 months", "2 years": the unit a shopper would use for that span. */
export function describeDays(days: number): string {
  const rounded = Math.max(1, Math.round(days));
  if (rounded < 14) return rounded === 1 ? "1 day" : `${rounded} days`;
  if (days < 9 * 7) return `${Math.round(days / 7)} weeks`;
  if (days < 730) {
    const months = Math.round(days / 30.44);
    return months === 1 ? "1 month" : `${months} months`;
  }
  const years = Math.round(days / 365.25);
  return years === 1 ? "1 year" : `${years} years`;
}

const dayMs = 86_400_000;
const calendars = new Map<string, Intl.DateTimeFormat>();

/** The date of an instant on the clock of `timeZone`, as days since 1970-01-01. */
function dayNumber(ms: number, timeZone: string): number {
  if (timeZone === "UTC") return Math.floor(ms / dayMs);
  let calendar = calendars.get(timeZone);
  if (!calendar) {
    // en-CA writes a date as YYYY-MM-DD, which Date.parse reads as midnight UTC of that date.
    calendar = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
    calendars.set(timeZone, calendar);
  }
  const day = Date.parse(calendar.format(ms)) / dayMs;
  return Number.isFinite(day) ? day : Math.floor(ms / dayMs); // A runtime writing dates otherwise: UTC's.
}

/**
 * Counts calendar days back from `now` on the clock of `timeZone` (0 on the same date, 1 the date
 * before), as a shopper counts them: a purchase at 22:00 the day before yesterday is 2 days ago at
 * 00:05 today, however few hours have passed. Never negative; 0 for an unreadable instant.
 */
export function calendarDaysBefore(now: Date, timeZone: string): (at: string) => number {
  const today = dayNumber(now.getTime(), timeZone);
  return (at) => {
    const ms = Date.parse(at);
    return Number.isFinite(ms) ? Math.max(0, Math.round(today - dayNumber(ms, timeZone))) : 0;
  };
}

/**
 * "today", "yesterday", "5 weeks ago": from whole calendar days (calendarDaysBefore), as the reasons'
 * `daysSinceLast` counts them, so the sentence and the number always agree.
 */
export function describeAgo(days: number): string {
  const whole = Math.round(days);
  if (whole < 1) return "today";
  if (whole === 1) return "yesterday";
  return `${describeDays(days)} ago`;
}

/** "about every 4 weeks", "about every day". */
export function describeEvery(days: number): string {
  return days < 1.5 ? "about every day" : `about every ${describeDays(days).replace(/^1 /, "")}`;
}
