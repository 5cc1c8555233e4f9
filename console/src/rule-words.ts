// A rule's versions in words, for its History (pages/rules.tsx): what a version changed, and when it applies.
import { dateTime } from "./api.ts";

/** The fields of a rule version these words read. */
export interface RuleVersionFields {
  name: string;
  action: string;
  targetType: string;
  targetId: string;
  strength: number | null;
  slot: number | null;
  segment: unknown;
  startsAt: string | null;
  endsAt: string | null;
  enabled: boolean;
}

/** "always", "from 20 Dec 2026, 00:00 UTC", "until …", "from … until …", on the retailer's clock. */
export function scheduleWords(rule: Pick<RuleVersionFields, "startsAt" | "endsAt">): string {
  const from = rule.startsAt ? `from ${dateTime(rule.startsAt)}` : "";
  const until = rule.endsAt ? `until ${dateTime(rule.endsAt)}` : "";
  return [from, until].filter(Boolean).join(" ") || "always";
}

/** What a version changed from the one before, in words: "name “A” → “B”, strength 2 → 3"; "–" for the first. */
export function whatChanged(before: RuleVersionFields | undefined, after: RuleVersionFields): string {
  if (!before) return "–";
  const changes: string[] = [];
  const from = (value: unknown) => (value === null || value === undefined ? "none" : String(value));
  if (before.name !== after.name) changes.push(`name “${before.name}” → “${after.name}”`);
  if (before.action !== after.action) changes.push(`action ${before.action} → ${after.action}`);
  if (before.targetType !== after.targetType || before.targetId !== after.targetId)
    changes.push(`target ${before.targetType} ${before.targetId} → ${after.targetType} ${after.targetId}`);
  if (before.strength !== after.strength) changes.push(`strength ${from(before.strength)} → ${from(after.strength)}`);
  if (before.slot !== after.slot) changes.push(`slot ${from(before.slot)} → ${from(after.slot)}`);
  if (JSON.stringify(before.segment ?? null) !== JSON.stringify(after.segment ?? null)) changes.push("segment");
  if (before.startsAt !== after.startsAt || before.endsAt !== after.endsAt)
    changes.push(`schedule ${scheduleWords(before)} → ${scheduleWords(after)}`);
  if (before.enabled !== after.enabled) changes.push(after.enabled ? "enabled" : "disabled");
  return changes.length > 0 ? changes.join(", ") : "nothing";
}

/**
 * What to check when a draft leaves the shelf as it was, by what the action can fail at (the segment
 * always): a boost may name what already leads, and a boost or bury may be too weak to pass (or fall
 * behind) its neighbours; a bury or exclude may name nothing on this shelf; a pin may name what is
 * already at its slot; a discount switch may cover nothing on sale, or sale items these shoppers see
 * (allow) or that are not on this shelf (hide) anyway.
 */
export function unchangedWhy(action: string): string {
  switch (action) {
    case "boost":
      return "check the segment, whether the target has anything in stock or already leads this shelf, or try a larger strength";
    case "bury":
      return "check the segment, whether the target is on this shelf, or try a larger strength";
    case "exclude":
      return "check the segment, or whether the target is on this shelf";
    case "allow_discounts":
      return "check the segment, whether the target has anything on sale in stock, or whether these shoppers see its sale items already";
    case "hide_discounts":
      return "check the segment, or whether anything of the target on sale is on this shelf";
    default:
      return "check the segment, whether the target has anything in stock, or whether it holds that slot on this shelf already";
  }
}

/** What a preview answers of the draft, as previewVerdict reads it. */
export interface PreviewOutcome {
  action: string;
  changed: boolean;
  targetInCatalog: boolean;
  ruleState: string;
  /** A draft scheduled to start later, applied as if it had started. */
  asIfStarted: boolean;
}

/**
 * What a preview says of the draft on `whose` shelf, changed or not: a draft that starts later in the
 * future tense whichever way it goes ("will change … once it starts", "will not change … once it starts
 * (check …)"), any other in the present, so the advice reads the same either way.
 */
export function previewVerdict(preview: PreviewOutcome, whose: string): string {
  if (preview.changed)
    return preview.asIfStarted
      ? `This rule will change ${whose} once it starts; changed items are marked.`
      : `This rule changes ${whose}; changed items are marked.`;
  const unchanged = preview.asIfStarted
    ? `This rule will not change ${whose} once it starts`
    : `This rule does not change ${whose}`;
  if (!preview.targetInCatalog || preview.ruleState === "ended") return `${unchanged}.`;
  if (preview.ruleState === "disabled") return `${unchanged}: it is not enabled.`;
  return `${unchanged} (${unchangedWhy(preview.action)}).`;
}
