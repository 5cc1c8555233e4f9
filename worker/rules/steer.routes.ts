// Steering before publishing (admin): POST /v1/admin/rules/preview shows one shopper's shelf (or the
// popular shelf of a visitor who is not signed in) without and with a draft rule; POST
// /v1/admin/rules/simulate compares the two shelves over a sample of known shoppers. The draft is
// validated like a new rule and never stored. Shelves are computed by the same loaders and core
// (recommend) as GET /v1/recommendations, for a known shopper in the personalized arm: what a shopper
// outside the holdout sees. Mounted inside rulesRoutes, so the same admin check guards them.
import { Hono } from "hono";
import { buildPopulation } from "../core/ranking/population.ts";
import { type Recommendations, recommend } from "../core/ranking/recommend.ts";
import { own } from "../core/records.ts";
import { targetInCatalog } from "../core/rules/apply.ts";
import { sameShelf, simulateRule } from "../core/rules/simulate.ts";
import { ruleState } from "../core/rules/state.ts";
import type { Rule } from "../core/rules/types.ts";
import type { AppEnv, Db } from "../env.ts";
import { retailerTimeZone } from "../http/config.ts";
import { notFound } from "../http/errors.ts";
import { jsonBody } from "../http/validate.ts";
import { currentModels } from "../models/models.repo.ts";
import { cachedCatalog, type ShopperData } from "../recommendations/recommendations.repo.ts";
import { recommendationsQuerySchema } from "../recommendations/recommendations.schemas.ts";
import { shopperSegmentOf } from "../recommendations/segment.ts";
import { shelfOptions } from "../recommendations/shelf.ts";
import { shardedCustomerShopper, shardedShopperSample } from "../shards/console.ts";
import { customerShopperIn, shopperSampleIn } from "../shards/console-shard.ts";
import { shardCount } from "../shards/shards.ts";
import { findRule, liveRulesFor, ruleFields } from "./rules.repo.ts";
import { type PreviewRuleInput, previewRuleSchema, simulateRuleSchema } from "./steer.schemas.ts";

/** The shelf size a storefront gets when it asks for the defaults. */
const shelfDefaults = recommendationsQuerySchema.parse({});
/**
 * The storefront's options for a default shelf, with everyone in the personalized arm: the preview
 * shows the shelf a rule is meant to steer, ranked as GET /v1/recommendations ranks it (so a category
 * a rule removes is replaced by the next one, and a short shelf is filled).
 */
const options = shelfOptions(shelfDefaults, 0);

/** The draft as the core applies it: not stored, so it has no id of its own. */
export const draftRuleId = "draft";

/**
 * The draft as applied, and its state now. A draft scheduled to start later is applied as if it had
 * started (its startsAt dropped; its end kept), to the shelves as they are now: the shelf on its start
 * day depends on orders, stock and prices not known yet, so the preview shows what it does once live
 * rather than that it does nothing today. An ended or disabled draft is applied as it is: it changes nothing.
 */
function draftOf(input: PreviewRuleInput["rule"], now: Date) {
  const fields = ruleFields(input);
  const state = ruleState(fields, now);
  const asIfStarted = state === "scheduled";
  const draft: Rule = {
    id: draftRuleId,
    ...fields,
    segment: fields.segment ?? null,
    startsAt: asIfStarted ? null : fields.startsAt,
  };
  return { draft, ruleState: state, asIfStarted };
}

interface ShelfInputs {
  models: Awaited<ReturnType<typeof currentModels>>;
  catalog: Awaited<ReturnType<typeof cachedCatalog>>;
  live: Rule[];
  now: Date;
  /** The retailer's time zone, for the reasons' "yesterday". */
  timeZone: string;
}

async function shelfInputs(db: Db, now: Date, timeZone: string): Promise<ShelfInputs> {
  const [models, catalog, live] = await Promise.all([
    currentModels(db, now),
    cachedCatalog(db, now),
    liveRulesFor(db, now),
  ]);
  return { models, catalog, live, now, timeZone };
}

/**
 * The shopper's shelf under the published rules and under those plus the draft, which takes the place
 * of the saved rule it edits (`edits`), so an edit is not counted twice.
 */
function shelvesOf(
  customerId: string | null,
  shopper: ShopperData | undefined,
  draft: Rule,
  inputs: ShelfInputs,
  edits: string | undefined,
) {
  const { models, catalog, now } = inputs;
  const population = models.population ?? buildPopulation([], catalog.products, now);
  const summary = shopper?.summary ?? null;
  const segment = summary && models.customer ? shopperSegmentOf(summary, models.customer, now) : undefined;
  const shelf = (rules: readonly Rule[]) =>
    recommend(
      {
        customerId: summary ? customerId : null,
        summary,
        categoryStats: shopper?.categoryStats ?? [],
        browse: shopper?.browse,
        recentPurchases: shopper?.recentPurchases,
        segment,
        population,
        catalog: catalog.products,
        rules,
        categoryNames: catalog.categoryNames,
        now,
        timeZone: inputs.timeZone,
      },
      options,
    );
  // The draft where the saved rule sits (rules tied on a pin slot keep their order), else last.
  const after = inputs.live.some((rule) => rule.id === edits)
    ? inputs.live.map((rule) => (rule.id === edits ? draft : rule))
    : [...inputs.live, draft];
  return { before: shelf(inputs.live), after: shelf(after) };
}

function itemsView(shelf: Recommendations, names: Readonly<Record<string, string>>) {
  return shelf.items.slice(0, shelfDefaults.limit).map((item, index) => ({
    rank: index + 1,
    id: item.productId,
    title: item.title,
    categoryId: item.categoryId,
    categoryName: own(names, item.categoryId) ?? item.categoryId,
    price: item.price,
    listPrice: item.listPrice,
    reasons: item.reasons,
    reason: item.sentence,
  }));
}

function categoriesView(shelf: Recommendations, names: Readonly<Record<string, string>>) {
  return shelf.categories.slice(0, shelfDefaults.categories).map((category, index) => ({
    rank: index + 1,
    id: category.categoryId,
    name: own(names, category.categoryId) ?? category.categoryId,
    reasons: category.reasons,
    reason: category.sentence,
  }));
}

export const steerRoutes = new Hono<AppEnv>()
  .post("/preview", async (c) => {
    const input = await jsonBody(c, previewRuleSchema);
    await editedRuleOrThrow(c.var.db, input.ruleId);
    const requested = input.customerId;
    const [found, inputs] = await Promise.all([
      requested === undefined
        ? anonymousVisitor
        : shardCount(c.env) > 0
          ? shardedCustomerShopper(c.env, requested, c.var.now)
          : customerShopperIn(c.var.db, requested, c.var.now),
      shelfInputs(c.var.db, c.var.now, retailerTimeZone(c.env.RETAILER_TIME_ZONE)),
    ]);
    if (!found) throw notFound(`No customer with id ${requested}.`);
    const { customerId, shopper, storefrontAccount } = found;
    const { draft, ...schedule } = draftOf(input.rule, c.var.now);
    const { before, after } = shelvesOf(customerId, shopper ?? undefined, draft, inputs, input.ruleId);
    const names = inputs.catalog.categoryNames;
    const view = {
      before: itemsView(before, names),
      after: itemsView(after, names),
      categories: { before: categoriesView(before, names), after: categoriesView(after, names) },
    };
    return c.json({
      data: {
        customerId,
        anonymous: requested === undefined,
        // Without a storefront account the customer sees the popular shelf online today; the preview
        // shows the personal shelf they would get once signed in.
        storefrontAccount,
        // As the simulation counts it: which categories and items, in which order (not their reasons).
        changed: !sameShelf(outline(before), outline(after)),
        targetInCatalog: targetInCatalog(input.rule, inputs.catalog.products),
        ...schedule,
        ...view,
      },
    });
  })
  .post("/simulate", async (c) => {
    const input = await jsonBody(c, simulateRuleSchema);
    await editedRuleOrThrow(c.var.db, input.ruleId);
    const [sample, inputs] = await Promise.all([
      shardCount(c.env) > 0
        ? shardedShopperSample(c.env, input.sample, c.var.now)
        : shopperSampleIn(c.var.db, input.sample, c.var.now),
      shelfInputs(c.var.db, c.var.now, retailerTimeZone(c.env.RETAILER_TIME_ZONE)),
    ]);
    const { draft, ...schedule } = draftOf(input.rule, c.var.now);
    const pairs = sample.map(({ customerId, shopper, storefrontAccount }) => {
      const { before, after } = shelvesOf(customerId, shopper ?? undefined, draft, inputs, input.ruleId);
      return { before: outline(before), after: outline(after), storefrontAccount };
    });
    // Shoppers who see a shelf online: the rest (store-only customers) would see it once signed in.
    const online = simulateRule(
      pairs.filter((pair) => pair.storefrontAccount),
      draft,
    );
    const simulated = simulateRule(pairs, draft);
    const names = inputs.catalog.categoryNames;
    return c.json({
      data: {
        ...simulated,
        categoryExposure: simulated.categoryExposure.map((row) => ({
          ...row,
          categoryName: own(names, row.categoryId) ?? row.categoryId,
        })),
        storefrontShoppers: online.shoppers,
        storefrontAffected: online.affected,
        storefrontAffectedShare: online.affectedShare,
        targetInCatalog: targetInCatalog(input.rule, inputs.catalog.products),
        ...schedule,
      },
    });
  });

/** The anonymous visitor previewed: no customer, no history, so the popular shelf that visitor is served. */
const anonymousVisitor = { customerId: null, shopper: null, storefrontAccount: false } as const;

/** 404 for a `ruleId` that names no saved rule, before anything is computed. */
async function editedRuleOrThrow(db: Db, ruleId: string | undefined) {
  if (ruleId !== undefined && !(await findRule(db, ruleId))) throw notFound(`No rule with id ${ruleId}.`);
}

/** The shelf as served: the storefront's default number of categories and items. */
function outline(shelf: Recommendations) {
  return {
    categories: shelf.categories.slice(0, shelfDefaults.categories),
    items: shelf.items.slice(0, shelfDefaults.limit),
  };
}
