// Merchandiser rules on ranked categories and items: exclude, boost, bury, pin to a slot, and the
// allow/hide discount switches, each limited to a segment and a schedule. recommend() steers the
// category list and filters the catalog before items are chosen, then steers the items. Every rule
// that changes an entry leaves a `{ code: "rule", ruleId, action }` reason. It does not score
// anything itself, store rules or validate them (the rules routes do).

import { type DiscountOverride, isOnSale, productIndex, productsByCategory, rankedItemOf } from "../ranking/items.ts";
import { defaultRankingOptions, type RankingOptions } from "../ranking/options.ts";
import type { Product, RankedCategory, RankedItem } from "../ranking/types.ts";
import { ruleState } from "./state.ts";
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

/** Enabled, inside its schedule [startsAt, endsAt) at `now` (state.ts), and matching the shopper's segment. */
export function ruleIsLive(rule: Rule, context: RuleContext): boolean {
  return ruleState(rule, context.now) === "live" && segmentMatches(rule.segment, context.shopper);
}

export function liveRules(rules: readonly Rule[], context: RuleContext): Rule[] {
  return rules.filter((rule) => ruleIsLive(rule, context));
}

/**
 * Whether the catalog has what a rule names: a product with the id, or a category with a product in it
 * (`catalog` is the active catalog the shelf ranks); always for `*`, every item. A rule on anything else
 * is kept, since the product may arrive later, and changes no shelf until then. The rules routes ask
 * the same of D1 (`targetsInCatalog` in rules/rules.repo.ts) without loading the catalog.
 */
export function targetInCatalog(rule: Pick<Rule, "targetType" | "targetId">, catalog: readonly Product[]): boolean {
  if (rule.targetId === "*") return true;
  return rule.targetType === "product"
    ? productIndex(catalog).has(rule.targetId)
    : productsByCategory(catalog).has(rule.targetId);
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

/** The hide-discounts switch (of `hides`) that keeps an item on sale off the shelf; none when it may show. */
function hidingSwitch(
  hides: readonly Rule[],
  item: { productId: string; categoryId: string; onSale: boolean },
): Rule | undefined {
  return item.onSale ? hides.find((rule) => rule.targetId === "*" || targetsItem(rule, item)) : undefined;
}

/** What the live rules take out of the catalog before items are chosen. */
export interface Exclusions {
  /** False when no exclude rule or hide-discounts switch is live: nothing needs checking. */
  any: boolean;
  /** The same for the same rules (their ids, actions and targets): what a filtered catalog is remembered by. */
  key: string;
  /** The exclude rule, or for an on-sale product the hide-discounts switch, that keeps it off; none: it may show. */
  ruleFor(product: Product): Rule | undefined;
  /** The hide-discounts switch that keeps this product off (on sale), whatever else holds. */
  hiddenBy(product: Product): Rule | undefined;
}

/**
 * The live exclude rules that hold: all but a category's exclusion when a live pin puts that category
 * in the list (`liftPinned`), since a pin is the one rule that can show what is excluded (a product pin
 * an excluded product; a category pin its category, and items chosen from it).
 */
function excludesOf(live: readonly Rule[], liftPinned = true): Rule[] {
  const pinned = new Set(
    liftPinned
      ? live.filter((rule) => rule.action === "pin" && rule.targetType === "category").map((rule) => rule.targetId)
      : [],
  );
  return live.filter(
    (rule) => rule.action === "exclude" && !(rule.targetType === "category" && pinned.has(rule.targetId)),
  );
}

/**
 * The live exclude rules and hide-discounts switches (`live`: from liveRules) as a filter on the
 * catalog. recommend() applies it before choosing items, so a shelf that loses a product fills with the
 * next best instead of coming up short; steerItems drops the same items afterwards, where a pin is the
 * one rule that can place an excluded product. `liftPinned`: a pinned category's exclusion does not
 * hold (for the items chosen from categories); without it every exclusion holds (co-purchases, which
 * are not chosen by category).
 */
export function exclusionsFrom(
  live: readonly Rule[],
  { liftPinned = true }: { liftPinned?: boolean } = {},
): Exclusions {
  const excludes = excludesOf(live, liftPinned);
  const hides = live.filter((rule) => rule.action === "hide_discounts");
  const hiddenBy = (product: Product) =>
    hidingSwitch(hides, { productId: product.id, categoryId: product.categoryId, onSale: isOnSale(product) });
  return {
    any: excludes.length > 0 || hides.length > 0,
    key: JSON.stringify([...excludes, ...hides].map((rule) => [rule.id, rule.action, rule.targetType, rule.targetId])),
    ruleFor(product) {
      const item = { productId: product.id, categoryId: product.categoryId };
      return excludes.find((rule) => targetsItem(rule, item)) ?? hiddenBy(product);
    },
    hiddenBy,
  };
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
 * Takes every entry `pins` name out of `list` before any is placed, so that placing one pin never
 * shifts another already in its slot (a later pin's target taken from above it would), and answers
 * them by id.
 */
function takePinned<T>(list: T[], pins: readonly Rule[], idOf: (entry: T) => string): Map<string, T> {
  const targets = new Set(pins.map((rule) => rule.targetId));
  const taken = new Map<string, T>();
  for (let i = list.length - 1; i >= 0; i--) {
    const entry = list[i] as T;
    if (targets.has(idOf(entry))) taken.set(idOf(entry), list.splice(i, 1)[0] as T);
  }
  return taken;
}

/** Rules applied to one list: the list after them, and the ids of the live rules that changed it. */
export interface Steered<T> {
  list: T[];
  appliedRuleIds: string[];
}

/**
 * The category list under the live rules: excluded categories out, boost/bury as score multipliers
 * (then re-sorted by adjusted score), pins into their slots (lowest slot first, a category the
 * ranking did not pick included) when `offers` says the category has something this shelf may offer: a
 * pin of a category with nothing to show (none in stock, or all excluded, hidden or unknown) places
 * nothing and leaves the category where the ranking put it. recommend() runs it before items are
 * chosen, so a boosted or pinned category brings its items with it.
 */
export function steerCategories(
  categories: readonly RankedCategory[],
  liveRuleList: readonly Rule[],
  options: RankingOptions = defaultRankingOptions,
  offers: (categoryId: string) => boolean = () => true,
): Steered<RankedCategory> {
  const applied = new Set<string>();
  const mark = (rule: Rule) => applied.add(rule.id);
  const excludes = excludesOf(liveRuleList);
  const weights = liveRuleList.filter((r) => r.action === "boost" || r.action === "bury");
  const list = categories
    .filter((category) => {
      const rule = excludes.find((r) => targetsCategory(r, category.categoryId));
      if (rule) mark(rule);
      return !rule;
    })
    .map((category) => {
      let entry = category;
      for (const rule of weights.filter((r) => targetsCategory(r, category.categoryId))) {
        entry = withRule({ ...entry, score: entry.score * multiplierOf(rule, options) }, rule);
        mark(rule);
      }
      return entry;
    })
    .sort((a, b) => b.score - a.score || a.categoryId.localeCompare(b.categoryId));
  const pins = pinsOf(liveRuleList).filter((rule) => rule.targetType === "category" && offers(rule.targetId));
  const ranked = takePinned(list, pins, (category) => category.categoryId);
  for (const rule of pins) {
    if (list.some((c) => c.categoryId === rule.targetId)) continue; // pinned already, at a lower slot
    const slot = rule.slot!;
    const pinned = ranked.get(rule.targetId) ?? {
      categoryId: rule.targetId,
      score: list[Math.min(list.length, slot) - 1]?.score ?? 0,
      reasons: [],
      sentence: "Picked by our team",
    };
    pinInto(list, withRule(pinned, rule), slot);
    mark(rule);
  }
  return { list, appliedRuleIds: [...applied] };
}

/** A rule that moves its target within a list: boost, bury or pin. */
const reorders = (rule: Rule) => rule.action === "boost" || rule.action === "bury" || rule.action === "pin";

/**
 * How deep items must be chosen for a shelf of `maxItems` to be exactly the first `maxItems` of the
 * order product rules make from every item: `maxItems` with no product boost, bury or pin that can
 * reach the shelf (`canShow`: the product can be offered; a pin's from the whole catalog).
 * steerItems sorts by multiplier ÷ (position + 1), a product's multiplier being the product of every
 * boost and bury naming it. The shelf needs at most `maxItems` untouched items, which lie within
 * `maxItems + T` positions (T: the products the rules name); a boosted item from position p can only
 * reach the shelf when m ÷ (p + 1) beats 1 ÷ (maxItems + T + 1), so p stays below m·(maxItems + T + 1)
 * for the largest multiplier m. A pinned item is built the same way wherever it was found. Capped at
 * `options.rules.itemDepth` (48): every longer shelf then is cut from the same 48, so the prefix still
 * holds, but a boost strong enough to lift an item from below 48 is not followed.
 */
export function itemDepthFor(
  live: readonly Rule[],
  maxItems: number,
  options: RankingOptions,
  canShow: (rule: Rule) => boolean = () => true,
): number {
  const multipliers = new Map<string, number>();
  for (const rule of live) {
    if (rule.targetType !== "product" || !reorders(rule) || !canShow(rule)) continue;
    const weight = rule.action === "pin" ? 1 : multiplierOf(rule, options);
    multipliers.set(rule.targetId, (multipliers.get(rule.targetId) ?? 1) * weight);
  }
  if (multipliers.size === 0) return maxItems;
  const largest = Math.max(1, ...multipliers.values());
  const depth = Math.ceil(largest * (maxItems + multipliers.size + 1));
  return Math.max(maxItems, Math.min(depth, options.rules.itemDepth));
}

function pinsOf(rules: readonly Rule[]): Rule[] {
  return rules.filter((r) => r.action === "pin" && (r.slot ?? 0) >= 1).sort((a, b) => a.slot! - b.slot!);
}

/**
 * The items under the live rules: excluded ones out, boost/bury (by product or by category), the
 * hide-discounts switch, then pins (a product the ranking did not pick is placed when it can be sold
 * and no switch hides it), capped at `maxItems`. Items keep the diversity order from selectItems: each item's
 * sort key is multiplier ÷ (position + 1), so a boost of strength 1 moves an item about halfway to the
 * top and untouched items keep their relative order.
 */
export function steerItems(
  items: readonly RankedItem[],
  liveRuleList: readonly Rule[],
  catalog: readonly Product[] | undefined,
  maxItems: number,
  options: RankingOptions = defaultRankingOptions,
  { categoriesSteered = false }: { categoriesSteered?: boolean } = {},
): Steered<RankedItem> {
  const excludes = excludesOf(liveRuleList);
  const hides = liveRuleList.filter((r) => r.action === "hide_discounts");
  // Items chosen from a steered category list already follow a category's boost, bury or pin: they
  // carry its reason, but are not moved again.
  const categoryRules = categoriesSteered ? liveRuleList.filter((r) => r.targetType === "category" && reorders(r)) : [];
  const weights = liveRuleList.filter(
    (r) => (r.action === "boost" || r.action === "bury") && !(categoriesSteered && r.targetType === "category"),
  );
  // A rule counts as applied when it changed what the shelf shows: its target on the shelf before or
  // after it (the same at any depth the items were chosen to), or something it took off the shelf.
  const applied = new Set<string>();
  const unsteered = items.slice(0, maxItems);
  let list = items
    .filter((item, position) => {
      const rule = excludes.find((r) => targetsItem(r, item));
      if (rule && position < maxItems) applied.add(rule.id);
      return !rule;
    })
    .map((item, position) => {
      let entry = item;
      for (const rule of categoryRules.filter((r) => r.targetId === item.categoryId)) entry = withRule(entry, rule);
      let key = 1 / (position + 1);
      for (const rule of weights.filter((r) => targetsItem(r, item))) {
        const multiplier = multiplierOf(rule, options);
        key *= multiplier;
        entry = withRule({ ...entry, score: entry.score * multiplier }, rule);
      }
      return { entry, key, position };
    })
    .sort((a, b) => b.key - a.key || a.position - b.position)
    .map(({ entry }) => entry);

  // Hidden discounts go before pins, and a pin of an item they hide places nothing, so every other
  // pin keeps its slot.
  const hiddenBy = (item: RankedItem) => hidingSwitch(hides, item);
  if (hides.length > 0) {
    list = list.filter((item, position) => {
      const rule = hiddenBy(item);
      if (rule && position < maxItems) applied.add(rule.id);
      return !rule;
    });
  }

  const pins = pinsOf(liveRuleList).filter((rule) => rule.targetType === "product");
  const sellable = pins.length > 0 && catalog ? productIndex(catalog) : undefined;
  const taken = takePinned(list, pins, (item) => item.productId);
  for (const rule of pins) {
    if (list.some((item) => item.productId === rule.targetId)) continue; // pinned already, at a lower slot
    const slot = rule.slot!;
    const ranked = taken.get(rule.targetId);
    // From the catalog when there is one, whether the ranking picked it or not, so a pinned item reads
    // the same however deep the items were chosen; its score is that of the item it pushes down.
    const product = sellable?.get(rule.targetId);
    const offered = product?.inStock && product.active ? product : undefined;
    const score = list[Math.min(list.length, slot) - 1]?.score ?? ranked?.score ?? 0;
    const pinned = offered ? rankedItemOf(offered, score, [], "Picked by our team") : ranked;
    if (!pinned || hiddenBy(pinned)) continue; // nothing that may show to pin: live, but no effect
    pinInto(list, withRule(pinned, rule), slot);
  }

  const shelf = list.slice(0, maxItems);
  const shown = [...unsteered, ...shelf];
  for (const rule of [...categoryRules, ...weights])
    if (shown.some((item) => targetsItem(rule, item))) applied.add(rule.id);
  for (const rule of pins) if (shelf.some((item) => item.productId === rule.targetId)) applied.add(rule.id);
  return { list: shelf, appliedRuleIds: [...applied] };
}

/** Applies the live rules to categories (steerCategories) and items (steerItems) as ranked. */
export function applyRules(
  input: RuleApplicationInput,
  options: RankingOptions = defaultRankingOptions,
): RuleApplication {
  const live = liveRules(input.rules, input.context);
  const categories = steerCategories(input.categories, live, options);
  const items = steerItems(input.items, live, input.catalog, input.maxItems ?? options.items.maxItems, options);
  return {
    categories: categories.list,
    items: items.list,
    appliedRuleIds: [...new Set([...categories.appliedRuleIds, ...items.appliedRuleIds])],
  };
}
