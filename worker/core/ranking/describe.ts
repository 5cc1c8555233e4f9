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

/**
 * "today", "yesterday", "5 weeks ago": from the days rounded to a whole number, as the reasons'
 * `daysSinceLast` is, so 1.7 days is "2 days ago" beside `daysSinceLast: 2`, not "yesterday".
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
