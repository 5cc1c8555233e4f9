// Merchandiser rules, applied last to ranked categories and items: exclude, boost, bury, pin to a
// slot, and the allow/hide discount switches, each limited to a segment and a schedule. Every rule
// that changes an entry leaves a `{ code: "rule", ruleId, action }` reason. It does not score
// anything itself, store rules or validate them (the rules routes do).

import { type DiscountOverride, rankedItemOf } from "../ranking/items.ts";
import { defaultRankingOptions, type RankingOptions } from "../ranking/options.ts";
import type { Product, RankedCategory, RankedItem } from "../ranking/types.ts";
import type { Rule, RuleSegment, ShopperSegment } from "./types.ts";

export interface RuleContext {
  shopper: ShopperSegment;
  now: Date;
}

function listOf<T>(value: T | T[] | undefined): T[] | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value : [value];
}

/** True when every field the segment names matches the shopper (an unknown shopper field never matches). */
export function segmentMatches(segment: RuleSegment | null | undefined, shopper: ShopperSegment): boolean {
  if (!segment) return true;
  const fields = ["stage", "valueTier", "channelPreference", "discountSensitivity"] as const;
  return fields.every((field) => {
    const allowed = listOf<string>(segment[field]);
    if (allowed === undefined || allowed.length === 0) return true;
    const value = shopper[field];
    return value !== undefined && allowed.includes(value);
  });
}

/** Enabled, inside its schedule [startsAt, endsAt) at `now`, and matching the shopper's segment. */
export function ruleIsLive(rule: Rule, context: RuleContext): boolean {
  if (!rule.enabled) return false;
  const now = context.now.getTime();
  if (rule.startsAt && now < Date.parse(rule.startsAt)) return false;
  if (rule.endsAt && now >= Date.parse(rule.endsAt)) return false;
  return segmentMatches(rule.segment, context.shopper);
}

export function liveRules(rules: readonly Rule[], context: RuleContext): Rule[] {
  return rules.filter((rule) => ruleIsLive(rule, context));
}

/** The allow/hide discount switches that hold for this shopper now, for selectItems. */
export function discountOverridesFrom(rules: readonly Rule[], context: RuleContext): DiscountOverride[] {
  return liveRules(rules, context)
    .filter((rule) => rule.action === "allow_discounts" || rule.action === "hide_discounts")
    .map((rule) => ({
      scope: rule.targetId === "*" ? "all" : rule.targetType,
      targetId: rule.targetId,
      mode: rule.action === "allow_discounts" ? "allow" : "hide",
      ruleId: rule.id,
    }));
}

export interface RuleApplicationInput {
  categories: readonly RankedCategory[];
  items: readonly RankedItem[];
  rules: readonly Rule[];
  context: RuleContext;
  /** Lets a pinned product that the ranking did not pick be placed anyway (if in stock and active). */
  catalog?: readonly Product[];
  /** Cap on items after pins; defaults to options.items.maxItems. */
  maxItems?: number;
}

export interface RuleApplication {
  categories: RankedCategory[];
  items: RankedItem[];
  /** Ids of the live rules that changed something, in the order applied. */
  appliedRuleIds: string[];
}

function targetsCategory(rule: Rule, categoryId: string): boolean {
  return rule.targetType === "category" && rule.targetId === categoryId;
}

function targetsItem(rule: Rule, item: { productId: string; categoryId: string }): boolean {
  return rule.targetType === "product" ? rule.targetId === item.productId : rule.targetId === item.categoryId;
}

function multiplierOf(rule: Rule, options: RankingOptions): number {
  if (rule.action === "boost") return 1 + (rule.strength ?? options.rules.defaultBoostStrength);
  if (rule.action === "bury") return 1 / (1 + (rule.strength ?? options.rules.defaultBuryStrength));
  return 1;
}

function withRule<T extends { reasons: RankedItem["reasons"] }>(entry: T, rule: Rule): T {
  return { ...entry, reasons: [...entry.reasons, { code: "rule", ruleId: rule.id, action: rule.action }] };
}

function pinInto<T>(list: T[], entry: T, slot: number): void {
  list.splice(Math.max(0, Math.min(list.length, slot - 1)), 0, entry);
}

/**
 * Applies live rules: exclude first, then boost/bury, then pins (lowest slot first), then the hide
 * switch as a last filter. Categories are re-sorted by adjusted score. Items keep the diversity
 * order from selectItems: each item's sort key is multiplier ÷ (position + 1), so a boost of
 * strength 1 moves an item about halfway to the top and untouched items keep their relative order.
 */
export function applyRules(
  input: RuleApplicationInput,
  options: RankingOptions = defaultRankingOptions,
): RuleApplication {
  const rules = liveRules(input.rules, input.context);
  const applied = new Set<string>();
  const mark = (rule: Rule) => applied.add(rule.id);

  const excludes = rules.filter((r) => r.action === "exclude");
  const weights = rules.filter((r) => r.action === "boost" || r.action === "bury");
  const pins = rules.filter((r) => r.action === "pin" && (r.slot ?? 0) >= 1).sort((a, b) => a.slot! - b.slot!);
  const hides = rules.filter((r) => r.action === "hide_discounts");

  let categories = input.categories.filter((category) => {
    const rule = excludes.find((r) => targetsCategory(r, category.categoryId));
    if (rule) mark(rule);
    return !rule;
  });
  let items = input.items.filter((item) => {
    const rule = excludes.find((r) => targetsItem(r, item));
    if (rule) mark(rule);
    return !rule;
  });

  categories = categories
    .map((category) => {
      let entry = category;
      for (const rule of weights.filter((r) => targetsCategory(r, category.categoryId))) {
        entry = withRule({ ...entry, score: entry.score * multiplierOf(rule, options) }, rule);
        mark(rule);
      }
      return entry;
    })
    .sort((a, b) => b.score - a.score || a.categoryId.localeCompare(b.categoryId));

  items = items
    .map((item, position) => {
      let entry = item;
      let key = 1 / (position + 1);
      for (const rule of weights.filter((r) => targetsItem(r, item))) {
        const multiplier = multiplierOf(rule, options);
        key *= multiplier;
        entry = withRule({ ...entry, score: entry.score * multiplier }, rule);
        mark(rule);
      }
      return { entry, key, position };
    })
    .sort((a, b) => b.key - a.key || a.position - b.position)
    .map(({ entry }) => entry);

  for (const rule of pins) {
    const slot = rule.slot!;
    if (rule.targetType === "category") {
      const index = categories.findIndex((c) => c.categoryId === rule.targetId);
      const pinned =
        index >= 0
          ? categories.splice(index, 1)[0]!
          : {
              categoryId: rule.targetId,
              score: categories[Math.min(categories.length, slot) - 1]?.score ?? 0,
              reasons: [],
              sentence: "Picked by our team",
            };
      pinInto(categories, withRule(pinned, rule), slot);
      mark(rule);
      continue;
    }
    const index = items.findIndex((item) => item.productId === rule.targetId);
    let pinned: RankedItem | undefined = index >= 0 ? items.splice(index, 1)[0] : undefined;
    if (!pinned) {
      const product = input.catalog?.find((p) => p.id === rule.targetId && p.inStock && p.active);
      if (!product) continue; // nothing sellable to pin: the rule is live but has no effect
      pinned = rankedItemOf(product, items[Math.min(items.length, slot) - 1]?.score ?? 0, [], "Picked by our team");
    }
    pinInto(items, withRule(pinned, rule), slot);
    mark(rule);
  }

  if (hides.length > 0) {
    items = items.filter((item) => {
      const rule = hides.find((r) => r.targetId === "*" || targetsItem(r, item));
      if (rule && item.onSale) {
        mark(rule);
        return false;
      }
      return true;
    });
  }

  return {
    categories,
    items: items.slice(0, input.maxItems ?? options.items.maxItems),
    appliedRuleIds: [...applied],
  };
}
