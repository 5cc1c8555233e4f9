// Rules and their version history in D1, and the isolate cache the recommendations route reads rules
// through. Every write puts the rule row and its `rule_versions` row in one D1 batch, guarded by the
// version it was read at, so two concurrent edits cannot both land, and by the rule's double check
// (core/rules/same-effect.ts), so two rules of one effect cannot both be saved, however close together.
// It does not validate rules (the routes do) and never answers HTTP errors: it returns `{ kind: ... }`
// outcomes.
import { and, asc, desc, eq, getTableColumns, gt, isNull, or, type SQL, sql } from "drizzle-orm";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import { batchRows, jsonEach } from "../../db/batch.ts";
import { rules, ruleVersions } from "../../db/schema.ts";
import { type DoubleCheck, effectKey } from "../core/rules/same-effect.ts";
import type { Rule } from "../core/rules/types.ts";
import type { Db } from "../env.ts";
import type { ChangeKind, CreateRuleInput, RuleVersionView, RuleView } from "./rules.schemas.ts";
import type { TargetCandidate } from "./targets.ts";

type RuleRow = typeof rules.$inferSelect;
type RuleVersionRow = typeof ruleVersions.$inferSelect;

/** The fields a merchandiser sets; everything else on a rule is bookkeeping. */
export type RuleFields = Omit<RuleView, "id" | "version" | "createdAt" | "updatedAt">;

export function ruleView(row: RuleRow): RuleView {
  return {
    id: row.id,
    name: row.name,
    action: row.action as RuleView["action"],
    targetType: row.targetType as RuleView["targetType"],
    targetId: row.targetId,
    strength: row.strength ?? null,
    slot: row.slot ?? null,
    segment: (row.segment as RuleView["segment"]) ?? null,
    startsAt: row.startsAt ?? null,
    endsAt: row.endsAt ?? null,
    enabled: row.enabled,
    version: row.version,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** The fields in one order with `null` for "not set", so two rules compare by their JSON. */
export function ruleFields(rule: CreateRuleInput | RuleFields): RuleFields {
  const segment =
    rule.segment && Object.values(rule.segment).some((value) => value !== undefined) ? rule.segment : null;
  return {
    name: rule.name,
    action: rule.action,
    targetType: rule.targetType,
    targetId: rule.targetId,
    strength: rule.strength ?? null,
    slot: rule.slot ?? null,
    segment,
    startsAt: rule.startsAt ?? null,
    endsAt: rule.endsAt ?? null,
    enabled: rule.enabled,
  };
}

function versionView(row: RuleVersionRow): RuleVersionView {
  return {
    ruleId: row.ruleId,
    version: row.version,
    change: row.change as ChangeKind,
    snapshot: row.snapshot as RuleView,
    changedBy: row.changedBy,
    changedAt: row.changedAt,
  };
}

const newRuleId = () => `r_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;

export async function listRules(db: Db, filter: { enabled?: boolean }): Promise<RuleView[]> {
  const rows = await db.query.rules.findMany({
    where: filter.enabled === undefined ? undefined : eq(rules.enabled, filter.enabled),
    orderBy: [desc(rules.createdAt), asc(rules.id)],
  });
  return rows.map(ruleView);
}

export async function findRule(db: Db, id: string): Promise<RuleView | null> {
  const row = await db.query.rules.findFirst({ where: eq(rules.id, id) });
  return row ? ruleView(row) : null;
}

type Target = Pick<RuleFields, "targetType" | "targetId">;

/** Where the catalog stands on rules' targets: whether it has each now, and the name it gives it. */
export interface CatalogView {
  inCatalog: (rule: Target) => boolean;
  /** The product's title or the category's name (its id where the catalog has none); null when absent, or `*`. */
  nameOf: (rule: Target) => string | null;
}

/**
 * Whether the catalog has each rule's target now: an active product with the id, or a category with an
 * active product in it; `*` (every item) always; and its name there. One indexed read for all of them
 * (the primary keys, and `products_category_idx` up to the first active product), not the whole
 * catalog. The same test as `targetInCatalog` (core/rules/apply.ts) makes on a catalog already loaded,
 * as the preview's is.
 */
export async function catalogView(db: Db, targets: readonly Target[]): Promise<CatalogView> {
  const named = (type: string) => [
    ...new Set(targets.filter((t) => t.targetType === type && t.targetId !== "*").map((t) => t.targetId)),
  ];
  const [products, categories] = [named("product"), named("category")];
  const rows =
    products.length + categories.length === 0
      ? []
      : await db.all<{ target: string; name: string }>(sql`
          SELECT 'product:' || t.value AS target, p.title AS name FROM ${jsonEach(products)} AS t
          JOIN products p ON p.id = t.value AND p.active = 1
          UNION ALL
          SELECT 'category:' || t.value, coalesce(nullif(c.name, ''), t.value) FROM ${jsonEach(categories)} AS t
          LEFT JOIN categories c ON c.id = t.value
          WHERE EXISTS (SELECT 1 FROM products WHERE category_id = t.value AND active = 1)`);
  const names = new Map(rows.map((row) => [row.target, row.name]));
  return {
    inCatalog: (rule) => rule.targetId === "*" || names.has(`${rule.targetType}:${rule.targetId}`),
    nameOf: (rule) => names.get(`${rule.targetType}:${rule.targetId}`) ?? null,
  };
}

/** Whether the catalog has each target now (catalogView's test alone). */
export async function targetsInCatalog(db: Db, targets: readonly Target[]): Promise<(rule: Target) => boolean> {
  return (await catalogView(db, targets)).inCatalog;
}

/** Candidates read for a product target at most: the nearest of them are answered. */
const productCandidates = 500;

/**
 * What the catalog has that a rule's target may mean (worker/rules/targets.ts picks the nearest):
 * every category with an active product, named by the catalog (its id where it has no name); or the
 * active products whose id or title holds `typed`, and those whose id starts like it (a typo further
 * on), up to `productCandidates` of each, read without loading the catalog.
 */
export async function catalogTargets(db: Db, type: "category" | "product", typed: string): Promise<TargetCandidate[]> {
  if (type === "category")
    // Each product's upsert writes its category's row: one row per category, each checked by
    // products_category_idx up to its first active product (no scan of the products).
    return db.all<TargetCandidate>(sql`
      SELECT c.id, coalesce(nullif(c.name, ''), c.id) AS name FROM categories c
      WHERE EXISTS (SELECT 1 FROM products p WHERE p.category_id = c.id AND p.active = 1)`);
  const query = typed.trim();
  if (query === "")
    return db.all<TargetCandidate>(
      sql`SELECT id, title AS name FROM products WHERE active = 1 ORDER BY id LIMIT ${productCandidates}`,
    );
  const holding = `%${query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  // The first two characters typed are taken as right: the ids from there on, by the primary key (as
  // typed, in lower and in upper case: ids compare by case there, the ranking does not).
  const start = query.slice(0, 2);
  const starts = [...new Set([start, start.toLowerCase(), start.toUpperCase()])];
  const found = await Promise.all([
    // Ids and titles starting with what was typed first, so a long list of matches keeps them.
    db.all<TargetCandidate>(sql`
      SELECT id, title AS name FROM products
      WHERE active = 1 AND (id LIKE ${holding} ESCAPE '\\' OR title LIKE ${holding} ESCAPE '\\')
      ORDER BY (id LIKE ${holding.slice(1)} ESCAPE '\\' OR title LIKE ${holding.slice(1)} ESCAPE '\\') DESC, id
      LIMIT ${productCandidates}`),
    ...starts.map((from) =>
      db.all<TargetCandidate>(sql`
        SELECT id, title AS name FROM products WHERE id >= ${from} AND active = 1 ORDER BY id
        LIMIT ${productCandidates}`),
    ),
  ]);
  return [...new Map(found.flat().map((product) => [product.id, product])).values()];
}

/** Oldest first, so versions read 1, 2, 3 ... */
export async function versionsOf(db: Db, id: string): Promise<RuleVersionView[]> {
  const rows = await db.query.ruleVersions.findMany({
    where: eq(ruleVersions.ruleId, id),
    orderBy: [asc(ruleVersions.version)],
  });
  return rows.map(versionView);
}

interface Change {
  changedBy: string;
  now: Date;
}

/** The rule that a write was refused for doubling, as the 409 names it. */
export type Twin = Pick<RuleView, "id" | "name" | "enabled" | "startsAt" | "endsAt">;

export type SaveOutcome =
  | { kind: "saved"; rule: RuleView }
  | { kind: "unchanged"; rule: RuleView }
  | { kind: "conflict" }
  | { kind: "doubled"; twin: Twin };

/**
 * The rules other than `id` that `check` refuses to double at `now`, newest first (as listRules): the
 * same effect key, enabled and not ended, and the same start as seen then: none or one already past
 * when `check.startingAt` is null, else that instant. doubles() in core/rules/same-effect.ts, in SQL;
 * starts and ends compare as text, as the API stores them (ISO instants in UTC, all of one length).
 */
function twinsOf(check: DoubleCheck, id: string, now: Date): SQL {
  const at = now.toISOString();
  const start =
    check.startingAt === null
      ? sql`(twin.starts_at IS NULL OR twin.starts_at <= ${at})`
      : sql`twin.starts_at = ${check.startingAt}`;
  return sql`SELECT twin.id, twin.name, twin.starts_at AS startsAt, twin.ends_at AS endsAt FROM rules AS twin
    WHERE twin.effect_key = ${check.key} AND twin.id <> ${id} AND twin.enabled = 1
      AND (twin.ends_at IS NULL OR twin.ends_at > ${at}) AND ${start}
    ORDER BY twin.created_at DESC, twin.id`;
}

/**
 * `INSERT INTO table (...) SELECT <row> WHERE condition`: drizzle's insert of one row, each value
 * encoded as its column's, written only when `condition` holds as the statement runs.
 */
function insertWhere<T extends SQLiteTable>(table: T, row: T["$inferInsert"], condition: SQL): SQL {
  const values = row as Record<string, unknown>;
  const columns = Object.entries(getTableColumns(table)).filter(([key]) => values[key] !== undefined);
  const names = sql.join(
    columns.map(([, column]) => sql.identifier(column.name)),
    sql`, `,
  );
  const params = sql.join(
    columns.map(([key, column]) => sql.param(values[key], column)),
    sql`, `,
  );
  return sql`INSERT INTO ${table} (${names}) SELECT ${params} WHERE ${condition}`;
}

/** The version row of `rule`, written when `condition` holds (always without one). */
function versionInsert(rule: RuleView, change: ChangeKind, by: Change, condition: SQL = sql`1`) {
  const changedAt = by.now.toISOString();
  return insertWhere(
    ruleVersions,
    { ruleId: rule.id, version: rule.version, change, snapshot: rule, changedBy: by.changedBy, changedAt },
    condition,
  );
}

/**
 * The statement that fills in the effect key of rows written before it was kept (null), so a double
 * check sees them; none when there are none, as after the first checked write. A row changed since it
 * was read has its key already (every write sets it), so only the version read is filled in.
 */
async function fillEffectKeys(db: Db): Promise<SQL[]> {
  const rows = await db.select().from(rules).where(isNull(rules.effectKey));
  if (rows.length === 0) return [];
  const keys = rows.map((row) => ({ id: row.id, version: row.version, key: effectKey(ruleView(row)) }));
  return [
    sql`UPDATE rules SET effect_key = k.value ->> 'key' FROM ${jsonEach(keys)} AS k
      WHERE rules.id = k.value ->> 'id' AND rules.version = k.value ->> 'version' AND rules.effect_key IS NULL`,
  ];
}

/**
 * Runs `write` (the rule's statements) as one D1 batch, a transaction. With a double check, the batch
 * first fills in missing effect keys, reads the first twin, and guards each write with there being
 * none, so the check and the write are one: of two rules of one effect sent at the same instant, the
 * second sees the first. A twin found is the outcome, and nothing of the rule was written.
 */
async function writeUnlessDoubled(
  db: Db,
  rule: RuleView,
  check: DoubleCheck | undefined,
  now: Date,
  write: (unlessDoubled: SQL) => SQL[],
): Promise<SaveOutcome> {
  if (!check) return writeVersion(db, rule, write(sql`1`));
  const twins = twinsOf(check, rule.id, now);
  const fill = await fillEffectKeys(db);
  const statements = [...fill, sql`${twins} LIMIT 1`, ...write(sql`NOT EXISTS (${twins})`)];
  return writeVersion(db, rule, statements, (results) => results[fill.length]?.[0]);
}

export async function createRule(
  db: Db,
  input: CreateRuleInput,
  check: DoubleCheck | undefined,
  by: Change,
): Promise<SaveOutcome> {
  const at = by.now.toISOString();
  const rule: RuleView = { id: newRuleId(), ...ruleFields(input), version: 1, createdAt: at, updatedAt: at };
  return writeUnlessDoubled(db, rule, check, by.now, (unlessDoubled) => [
    insertWhere(rules, { ...rule, effectKey: effectKey(rule) }, unlessDoubled),
    versionInsert(rule, "create", by, unlessDoubled),
  ]);
}

/**
 * Writes `fields` over `current` as version current.version + 1, unless `check` finds a twin (nothing
 * written). The update only matches the row at the version it was read at; if another edit got there
 * first, the version row's primary key (rule_id, version) collides, the whole batch rolls back, and the
 * outcome is a conflict.
 */
export async function saveRule(
  db: Db,
  current: RuleView,
  fields: RuleFields,
  change: ChangeKind,
  check: DoubleCheck | undefined,
  by: Change,
): Promise<SaveOutcome> {
  const next = ruleFields(fields);
  if (JSON.stringify(ruleFields(current)) === JSON.stringify(next)) return { kind: "unchanged", rule: current };
  const rule: RuleView = {
    ...next,
    id: current.id,
    version: current.version + 1,
    createdAt: current.createdAt,
    updatedAt: by.now.toISOString(),
  };
  const { id: _id, createdAt: _createdAt, ...columns } = rule;
  return writeUnlessDoubled(db, rule, check, by.now, (unlessDoubled) => [
    db
      .update(rules)
      .set({ ...columns, effectKey: effectKey(rule) })
      .where(and(eq(rules.id, current.id), eq(rules.version, current.version), unlessDoubled))
      .getSQL(),
    versionInsert(rule, change, by, unlessDoubled),
  ]);
}

/**
 * Runs a batch that writes `rule` as a new version. If another edit took that version first, its row's
 * primary key (rule_id, version) collides and the whole batch rolls back: a conflict, nothing written.
 * `twinOf` picks, from the batch's rows, the twin a double check read in it: then nothing was written.
 */
async function writeVersion(
  db: Db,
  rule: RuleView,
  statements: SQL[],
  twinOf: (results: Record<string, unknown>[][]) => Record<string, unknown> | undefined = () => undefined,
): Promise<SaveOutcome> {
  let results: Record<string, unknown>[][];
  try {
    results = await batchRows(db, statements);
  } catch (error) {
    if (/UNIQUE constraint failed: rule_versions/i.test(String((error as Error).message ?? error)))
      return { kind: "conflict" };
    throw error;
  }
  const twin = twinOf(results) as Omit<Twin, "enabled"> | undefined;
  if (twin) return { kind: "doubled", twin: { ...twin, enabled: true } };
  forgetRules();
  return { kind: "saved", rule };
}

/**
 * Deletes the rule as read at `current.version`, recording the deletion as version + 1 (the rule as it
 * was, `change: "delete"`), so its history outlives it. As in saveRule, an edit that got there first
 * makes the version row collide and the batch roll back: a conflict, nothing deleted.
 */
export async function deleteRule(db: Db, current: RuleView, by: Change): Promise<SaveOutcome> {
  const rule: RuleView = { ...current, version: current.version + 1, updatedAt: by.now.toISOString() };
  return writeVersion(db, rule, [
    versionInsert(rule, "delete", by),
    db
      .delete(rules)
      .where(and(eq(rules.id, current.id), eq(rules.version, current.version)))
      .getSQL(),
  ]);
}

// Isolate cache of the rules the recommendations route applies. A change made through this isolate
// calls forgetRules() and applies at once; other isolates pick it up within cacheTtlMs.
const cacheTtlMs = 5_000;
let cached: { loadedAt: number; rules: Promise<Rule[]> } | null = null;

export function forgetRules(): void {
  cached = null;
}

async function loadLiveRules(db: Db, now: Date): Promise<Rule[]> {
  // Rules whose schedule has ended can never apply again without an edit, so they are not loaded.
  const rows = await db.query.rules.findMany({
    where: and(eq(rules.enabled, true), or(isNull(rules.endsAt), gt(rules.endsAt, now.toISOString()))),
    orderBy: [asc(rules.createdAt), asc(rules.id)],
  });
  return rows.map((row): Rule => {
    const { version: _version, createdAt: _createdAt, updatedAt: _updatedAt, ...rule } = ruleView(row);
    return { ...rule, segment: rule.segment ?? null };
  });
}

/**
 * The enabled rules as the core applies them (schedule and segment are checked per request by
 * core/rules/apply.ts). Cached per isolate for at most cacheTtlMs; the load in flight is shared, so a
 * burst of requests after expiry makes one query.
 */
export function liveRulesFor(db: Db, now: Date): Promise<Rule[]> {
  const at = now.getTime();
  if (cached && at >= cached.loadedAt && at - cached.loadedAt < cacheTtlMs) return cached.rules;
  const entry = { loadedAt: at, rules: loadLiveRules(db, now) };
  cached = entry;
  entry.rules.catch(() => {
    if (cached === entry) cached = null;
  });
  return entry.rules;
}
