// The only place Patron's tables are declared. drizzle-kit generates db/migrations from this file;
// `npm run db:check` fails when the two disagree.

import { sql } from "drizzle-orm";
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** A unified customer. A merged-away customer keeps its row and points at the survivor. */
export const customers = sqliteTable(
  "customers",
  {
    id: text("id").primaryKey(),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
    mergedInto: text("merged_into"),
  },
  // Finds the customers merged into a survivor (attribution checks, erasure) without a scan.
  (t) => [index("customers_merged_into_idx").on(t.mergedInto)],
);

/**
 * One identifier (kind + keyed hash of the normalised value). `customerId` is null while the value is
 * shared by several customers (a shared value links nobody) or seen only on unverified links (it
 * identifies nobody). `masked` is the only readable form kept.
 */
export const identities = sqliteTable(
  "identities",
  {
    key: text("key").primaryKey(), // `${kind}:${hmacHex}`
    kind: text("kind").notNull(),
    customerId: text("customer_id"),
    masked: text("masked").notNull(),
    shared: integer("shared", { mode: "boolean" }).notNull().default(false),
    createdAt: text("created_at").notNull(),
    /**
     * Only with the EXPORT_MATCH_KEYS opt-in, for audience exports: the account id or loyalty number
     * as normalised, or the plain SHA-256 of the normalised email / phone. Null otherwise.
     */
    matchKey: text("match_key"),
  },
  (t) => [index("identities_customer_idx").on(t.customerId)],
);

/**
 * Which identifiers were seen together, and where: the evidence identity resolution is computed from.
 * `verified` is the link's trust: only verified links join customers (docs/identity.md). Rows stored
 * before trust existed are verified: their joins were already made.
 */
export const identityObservations = sqliteTable(
  "identity_observations",
  {
    source: text("source").notNull(), // `order:<id>` or `identify:<hash of the identifier set>`
    identityKey: text("identity_key").notNull(),
    verified: integer("verified", { mode: "boolean" }).notNull().default(true),
  },
  (t) => [primaryKey({ columns: [t.source, t.identityKey] }), index("identity_observations_key_idx").on(t.identityKey)],
);

/** Audit trail of merges, newest last. */
export const identityMerges = sqliteTable(
  "identity_merges",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    fromCustomerId: text("from_customer_id").notNull(),
    intoCustomerId: text("into_customer_id").notNull(),
    source: text("source").notNull(),
    at: text("at").notNull(),
  },
  (t) => [index("identity_merges_into_idx").on(t.intoCustomerId)],
);

/**
 * Optimistic concurrency for ingestion. A write batch starts by inserting a row whose `ok` is NULL
 * when the identity region it was planned from changed since it was read; the NOT NULL constraint
 * then aborts the whole batch and the request re-plans. The batch deletes its row before committing,
 * so the table is always empty.
 */
export const ingestChecks = sqliteTable("ingest_checks", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  ok: integer("ok").notNull(),
});

export const orders = sqliteTable(
  "orders",
  {
    id: text("id").primaryKey(), // the source system's id: the idempotency key
    customerId: text("customer_id").notNull(),
    channel: text("channel", { enum: ["web", "store", "app", "phone"] }).notNull(),
    storeId: text("store_id"),
    placedAt: text("placed_at").notNull(), // ISO 8601, UTC
    currency: text("currency").notNull(),
    total: real("total").notNull(),
    discountTotal: real("discount_total").notNull(),
    units: real("units").notNull(),
    discountedUnits: real("discounted_units").notNull(), // units bought below list price
    recommendationId: text("recommendation_id"),
    createdAt: text("created_at").notNull(),
    /**
     * The content the order was sent with, field by field (worker/core/orders/fingerprint.ts): a resend
     * of its id is compared with it and answered `changed` when it differs. Null for orders stored
     * before it existed (migration 0021): their resends answer `changed: null`.
     */
    fingerprint: text("fingerprint"),
  },
  (t) => [
    index("orders_customer_placed_idx").on(t.customerId, t.placedAt),
    // The nightly job's bounded reads of the newest orders (product sales, co-purchase); with the id
    // it covers product sales, which never read the order rows (co-purchase reads each one's
    // customer_id from its row, by rowid).
    index("orders_placed_idx").on(t.placedAt, t.id),
  ],
);

export const orderLines = sqliteTable(
  "order_lines",
  {
    orderId: text("order_id").notNull(),
    lineNo: integer("line_no").notNull(),
    productId: text("product_id").notNull(),
    categoryId: text("category_id").notNull(),
    quantity: real("quantity").notNull(),
    unitPrice: real("unit_price").notNull(),
    listPrice: real("list_price").notNull(),
  },
  (t) => [primaryKey({ columns: [t.orderId, t.lineNo] }), index("order_lines_product_idx").on(t.productId)],
);

/**
 * Co-purchase: for each product, the products bought in the same orders most often (at most
 * `maxPairsPerProduct` rows per product), rebuilt by the nightly job. Read by the product-page shelf
 * with one primary-key range query.
 */
export const productPairs = sqliteTable(
  "product_pairs",
  {
    productId: text("product_id").notNull(),
    otherId: text("other_id").notNull(),
    /** Orders holding both products, in the nightly job's window. */
    orders: integer("orders").notNull(),
    computedAt: text("computed_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.productId, t.otherId] })],
);

export const categories = sqliteTable("categories", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  parentId: text("parent_id"),
  updatedAt: text("updated_at").notNull(),
});

export const products = sqliteTable(
  "products",
  {
    id: text("id").primaryKey(),
    title: text("title").notNull(),
    categoryId: text("category_id").notNull(),
    url: text("url"),
    imageUrl: text("image_url"),
    listPrice: real("list_price").notNull(),
    salePrice: real("sale_price"),
    inStock: integer("in_stock", { mode: "boolean" }).notNull().default(true),
    active: integer("active", { mode: "boolean" }).notNull().default(true),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [index("products_category_idx").on(t.categoryId, t.inStock)],
);

/**
 * The per-customer RFM-T summary and every aggregate the request path needs. Written in the same D1
 * batch as the orders, so it is never out of step: a new order is added to it, a merge or an erasure
 * rebuilds it from `orders` (worker/orders/orders.repo.ts).
 */
export const customerSummaries = sqliteTable("customer_summaries", {
  customerId: text("customer_id").primaryKey(),
  orders: integer("orders").notNull(),
  purchaseDays: integer("purchase_days").notNull(), // distinct UTC days with an order: BG/NBD counts these
  firstOrderAt: text("first_order_at").notNull(),
  lastOrderAt: text("last_order_at").notNull(),
  spend: real("spend").notNull(),
  positiveOrders: integer("positive_orders").notNull(), // orders with total > 0: the spend model's sample
  positiveSpend: real("positive_spend").notNull(),
  /** Total of the first order when positive (else 0): the spend model averages repeat orders only. */
  firstOrderSpend: real("first_order_spend").notNull().default(0),
  // Purchase occasions are days, for the spend model as for the frequency model (papers' convention).
  secondPurchaseAt: text("second_purchase_at"), // the second purchase day (YYYY-MM-DD), null before a repeat
  gapSquareSum: real("gap_square_sum").notNull().default(0), // Σ (days between consecutive purchase days)²
  positiveDays: integer("positive_days").notNull().default(0), // purchase days whose orders total > 0
  positiveDaySpend: real("positive_day_spend").notNull().default(0),
  firstDaySpend: real("first_day_spend").notNull().default(0), // the first purchase day's total when positive
  /** The last purchase day's total: a later order that day adds to it (worker/core/profile/customer-totals.ts). */
  lastDaySpend: real("last_day_spend").notNull().default(0),
  webOrders: integer("web_orders").notNull(),
  storeOrders: integer("store_orders").notNull(),
  appOrders: integer("app_orders").notNull(),
  phoneOrders: integer("phone_orders").notNull(),
  units: real("units").notNull(),
  discountedUnits: real("discounted_units").notNull(), // units bought below list price
  updatedAt: text("updated_at").notNull(),
  /**
   * A fresh random token on every write of the row (and of the customer's category rows with it): an
   * ingest batch that folded orders into the totals it read aborts when the token moved meanwhile.
   */
  revision: text("revision").notNull().default(""),
});

/** Per customer × category: counts, spend, last purchase, typical price paid, discounted share. */
export const customerCategoryStats = sqliteTable(
  "customer_category_stats",
  {
    customerId: text("customer_id").notNull(),
    categoryId: text("category_id").notNull(),
    orders: integer("orders").notNull(),
    purchaseDays: integer("purchase_days").notNull(),
    units: real("units").notNull(),
    spend: real("spend").notNull(),
    firstPurchaseAt: text("first_purchase_at").notNull(),
    lastPurchaseAt: text("last_purchase_at").notNull(),
    avgUnitPrice: real("avg_unit_price").notNull(), // unit-weighted mean price paid
    discountedUnits: real("discounted_units").notNull(),
    webUnits: real("web_units").notNull(),
    storeUnits: real("store_units").notNull(),
  },
  (t) => [primaryKey({ columns: [t.customerId, t.categoryId] }), index("ccs_category_idx").on(t.categoryId)],
);

/**
 * Per customer × product: in how many orders they bought it and when last. The shelf reads a shopper's
 * recent and usual products from here (one clustered range per customer) instead of joining their
 * orders to their lines. Kept as the category rows are: an ingested order adds to it, a merge, a moved
 * order or an erasure rebuilds it from the orders, and the nightly job fills it for the orders stored
 * before it existed (backfills). The migration creates it WITHOUT ROWID, so one customer's rows sit
 * together in the table's own b-tree (drizzle has no spelling for that).
 */
export const customerProducts = sqliteTable(
  "customer_products",
  {
    customerId: text("customer_id").notNull(),
    productId: text("product_id").notNull(),
    orders: integer("orders").notNull(),
    lastPurchasedAt: text("last_purchased_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.customerId, t.productId] })],
);

/**
 * Data filled in after a migration by the nightly job, page by page, where filling it inside the
 * migration could take longer than a migration may (a large database or shard). `cursor` is the last
 * customer id of the pass so far; `done_at` is set once a pass reached the last customer.
 */
export const backfills = sqliteTable("backfills", {
  name: text("name").primaryKey(),
  cursor: text("cursor").notNull().default(""),
  doneAt: text("done_at"),
});

/**
 * Population-level model parameters, one row per fit. The newest row of each model with `in_force_at`
 * set is in force: a nightly run sets it on its fits once every customer is scored with them, so a run
 * that fails before then leaves the last run's fits in force, with the scores they made.
 */
export const modelParams = sqliteTable(
  "model_params",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    model: text("model").notNull(), // "bgnbd" | "gamma_gamma" | "population"
    params: text("params", { mode: "json" }).notNull(),
    fittedAt: text("fitted_at").notNull(),
    sampleSize: integer("sample_size").notNull(),
    logLikelihood: real("log_likelihood"),
    // The default is for a writer that does not name the column (the code before it, during a deploy):
    // its fits stay in force at once, as they were. A nightly run writes null, then its time.
    inForceAt: text("in_force_at").default("1970-01-01T00:00:00.000Z"),
  },
  (t) => [
    index("model_params_model_idx").on(t.model, t.fittedAt),
    // The newest fit in force of each model (currentModels), read on the index alone.
    index("model_params_in_force_idx").on(t.model, t.id).where(sql`in_force_at IS NOT NULL`),
  ],
);

/** Per-customer scores materialised by the nightly job for segment queries (request paths recompute them). */
export const customerScores = sqliteTable(
  "customer_scores",
  {
    customerId: text("customer_id").primaryKey(),
    clv12: real("clv_12").notNull(),
    clv24: real("clv_24").notNull(),
    probabilityAlive: real("probability_alive").notNull(),
    stage: text("stage").notNull(),
    valueTier: text("value_tier").notNull(),
    discountSensitivity: text("discount_sensitivity"),
    scoredAt: text("scored_at").notNull(),
    runId: text("run_id").notNull(),
    // The console's list sorts (GET /v1/admin/customers). Rows scored before these existed read 0 / ''
    // until the next nightly run rescores them.
    /** A year of orders at the customer's own rhythm × (1 − P(alive)): the value lost if they have gone. */
    clvAtStake: real("clv_at_stake").notNull().default(0),
    overdueRatio: real("overdue_ratio").notNull().default(0),
    expectedNextOrderAt: text("expected_next_order_at").notNull().default(""),
    offerGuidance: text("offer_guidance"), // "no_incentive" | "modest" | "deal_driven"
    /**
     * Distinct days with a purchase when scored: 1 is a one-time buyer, whose overdue ratio and next
     * order date come from all customers' interval, not a rhythm of their own. 0 in rows scored before
     * the column existed, until the next nightly run rescores them.
     */
    purchaseDays: integer("purchase_days").notNull().default(0),
  },
  (t) => [
    index("customer_scores_stage_idx").on(t.stage),
    index("customer_scores_clv_idx").on(t.clv12),
    // Keyset paging: one index per sort, and per stage × sort (the fading / lapsed audiences).
    index("customer_scores_at_stake_idx").on(t.clvAtStake, t.customerId),
    index("customer_scores_overdue_idx").on(t.overdueRatio, t.customerId),
    index("customer_scores_alive_idx").on(t.probabilityAlive, t.customerId),
    index("customer_scores_next_idx").on(t.expectedNextOrderAt, t.customerId),
    index("customer_scores_stage_at_stake_idx").on(t.stage, t.clvAtStake, t.customerId),
    index("customer_scores_stage_overdue_idx").on(t.stage, t.overdueRatio, t.customerId),
    index("customer_scores_stage_alive_idx").on(t.stage, t.probabilityAlive, t.customerId),
    index("customer_scores_stage_next_idx").on(t.stage, t.expectedNextOrderAt, t.customerId),
  ],
);

/**
 * Categories an active customer has lapsed in (active overall, but their chance of still buying there
 * is low), written by the nightly job with the customer's score. The sort keys are copied from
 * customer_scores so a lapsed-category list pages on an index too.
 */
export const customerCategoryLapses = sqliteTable(
  "customer_category_lapses",
  {
    categoryId: text("category_id").notNull(),
    customerId: text("customer_id").notNull(),
    clvAtStake: real("clv_at_stake").notNull(),
    overdueRatio: real("overdue_ratio").notNull(),
    probabilityAlive: real("probability_alive").notNull(),
    expectedNextOrderAt: text("expected_next_order_at").notNull(),
    runId: text("run_id").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.categoryId, t.customerId] }),
    index("ccl_customer_idx").on(t.customerId),
    index("ccl_at_stake_idx").on(t.categoryId, t.clvAtStake, t.customerId),
    index("ccl_overdue_idx").on(t.categoryId, t.overdueRatio, t.customerId),
    index("ccl_alive_idx").on(t.categoryId, t.probabilityAlive, t.customerId),
    index("ccl_next_idx").on(t.categoryId, t.expectedNextOrderAt, t.customerId),
  ],
);

/**
 * What each value tier's customers share, one row per nightly run: customers per tier and, per tier,
 * how many have each trait (dimension × value). GET /v1/admin/insights/best-customers reads the newest.
 * `clvHistogram`: scored customers and their 12-month CLV per log-spaced bucket (core/insights/
 * clv-distribution.ts), for GET /v1/admin/insights/clv-distribution; null in rows stored before it existed.
 */
export const insightRollups = sqliteTable(
  "insight_rollups",
  {
    runId: text("run_id").primaryKey(),
    computedAt: text("computed_at").notNull(),
    asOf: text("as_of").notNull(),
    counts: text("counts", { mode: "json" }).notNull(),
    clvHistogram: text("clv_histogram", { mode: "json" }),
  },
  (t) => [index("insight_rollups_computed_idx").on(t.computedAt)],
);

/** Lifecycle stage changes (active → fading ...), recorded by the nightly job: the transitions feed. */
export const stageTransitions = sqliteTable(
  "stage_transitions",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    customerId: text("customer_id").notNull(),
    fromStage: text("from_stage"),
    toStage: text("to_stage").notNull(),
    at: text("at").notNull(),
    runId: text("run_id").notNull(),
    /**
     * The row's id in GET /v1/admin/transitions on customer shards (null on D1, whose feed shows `id`):
     * given when the row is written, from a range D1's feed_sequences hands out, and copied with the row
     * when its customer moves, so it does not depend on the shard it is in or on the shard count.
     */
    feedId: integer("feed_id"),
  },
  (t) => [
    index("stage_transitions_at_idx").on(t.at),
    // The sharded feed's pages: a range of feed ids.
    index("stage_transitions_feed_idx").on(t.feedId),
    uniqueIndex("stage_transitions_run_idx").on(t.customerId, t.runId),
    // One run's transitions (the nightly count and webhook pages), without reading every run's.
    index("stage_transitions_run_id_idx").on(t.runId),
  ],
);

/**
 * Nightly job runs and their progress, so a restarted run resumes where it stopped. The row is written
 * when a run is started (worker/jobs/nightly.start.ts) and is its claim: at most one row per kind is
 * `running` (a unique partial index), so two starts at once cannot both create a run.
 */
export const jobRuns = sqliteTable(
  "job_runs",
  {
    id: text("id").primaryKey(),
    kind: text("kind").notNull(),
    status: text("status").notNull(), // "running" | "done" | "errored" | "terminated" (released claims)
    cursor: text("cursor"),
    processed: integer("processed").notNull().default(0),
    startedAt: text("started_at").notNull(),
    finishedAt: text("finished_at"),
    detail: text("detail", { mode: "json" }),
    /** The instant the run fits and scores as of (ISO); null only on rows from before it was recorded. */
    asOf: text("as_of"),
    /**
     * The first transitions feed id a run on customer shards can be given (feed_sequences' next when it
     * started): while it runs, the sharded feed shows only ids below it.
     */
    feedFrom: integer("feed_from"),
  },
  (t) => [
    uniqueIndex("job_runs_one_running_idx").on(t.kind).where(sql`${t.status} = 'running'`),
    // The newest runs first (GET /v1/admin/jobs/nightly) and the latest finished run's asOf.
    index("job_runs_started_idx").on(t.kind, t.startedAt),
  ],
);

/**
 * Ranges of ids handed out in order (`name` "transitions": the sharded transitions feed). `next` is the
 * first id not yet handed out; a range is taken with one upsert (worker/jobs/feed-ids.repo.ts).
 */
export const feedSequences = sqliteTable("feed_sequences", {
  name: text("name").primaryKey(),
  next: integer("next").notNull(),
});

/** Merchandiser rules: boost, bury, pin, exclude a category or product, optionally for a segment and dates. */
export const rules = sqliteTable(
  "rules",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    action: text("action").notNull(), // "boost" | "bury" | "pin" | "exclude" | "allow_discounts" | "hide_discounts"
    targetType: text("target_type").notNull(), // "category" | "product"
    targetId: text("target_id").notNull(),
    strength: real("strength"),
    slot: integer("slot"),
    segment: text("segment", { mode: "json" }),
    startsAt: text("starts_at"),
    endsAt: text("ends_at"),
    enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
    version: integer("version").notNull(),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
    /**
     * What the rule does but when it starts, as one string (`effectKey`, worker/core/rules/same-effect.ts):
     * a rule is refused as another's double in the D1 batch that writes it, by this key and the start
     * (rules.repo.ts). Written with every rule; null on a row written before it existed, which the next
     * checked write fills in. A change of the key's format sets it back to null in a migration.
     */
    effectKey: text("effect_key"),
  },
  (t) => [index("rules_effect_key_idx").on(t.effectKey)],
);

/** Every change to a rule: who changed what, when. */
export const ruleVersions = sqliteTable(
  "rule_versions",
  {
    ruleId: text("rule_id").notNull(),
    version: integer("version").notNull(),
    change: text("change").notNull(), // "create" | "update" | "disable" | "enable" | "delete"
    snapshot: text("snapshot", { mode: "json" }).notNull(),
    changedBy: text("changed_by").notNull(),
    changedAt: text("changed_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.ruleId, t.version] })],
);

/**
 * Widget events from before they moved to their own database (EVENTS_DB, db/events-schema.ts): the
 * old `events` table, renamed. The nightly job moves its rows into EVENTS_DB in pages and folds them
 * into `customer_browse` (worker/events/legacy-events.ts); empty on a deployment that started after.
 */
export const legacyEvents = sqliteTable(
  "legacy_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    type: text("type").notNull(),
    recommendationId: text("recommendation_id"),
    arm: text("arm"),
    customerId: text("customer_id"),
    productId: text("product_id"),
    categoryId: text("category_id"),
    placement: text("placement"),
    position: integer("position"),
    at: text("at").notNull(),
    dedupeKey: text("dedupe_key").notNull(),
  },
  // The old table's index names: SQLite keeps them through the rename. The customer index serves
  // erasure, export and merges until the rows have moved.
  (t) => [
    uniqueIndex("events_dedupe_idx").on(t.dedupeKey),
    index("events_recommendation_idx").on(t.recommendationId),
    index("events_customer_idx").on(t.customerId, t.at),
  ],
);

/**
 * A customer's browse signal: product and category views and clicks per category and UTC day, rolled
 * up by POST /v1/events from its new (not deduplicated) events. Customer data, kept with the customer
 * so a shelf reads it in the same round trip as the rest; the raw events live in EVENTS_DB. Days older
 * than the browse window are deleted by the nightly job.
 */
export const customerBrowse = sqliteTable(
  "customer_browse",
  {
    customerId: text("customer_id").notNull(),
    day: text("day").notNull(), // YYYY-MM-DD (UTC)
    categoryId: text("category_id").notNull(),
    views: integer("views").notNull(),
    lastViewedAt: text("last_viewed_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.customerId, t.day, t.categoryId] }), index("customer_browse_day_idx").on(t.day)],
);

/**
 * What an erasure leaves behind so erased data is not recreated: keyed hashes only (HMAC with
 * IDENTITY_HASH_SECRET), never a raw value. `key` is `order:<hash of the order id>` for an erased
 * order, or the erased customer's identity key (`email:<hash>` …) for an identifier that was theirs
 * alone. Orders, identify calls and events carrying a suppressed key are dropped until an admin
 * lifts it (DELETE /v1/admin/suppressions).
 */
export const suppressions = sqliteTable("suppressions", {
  key: text("key").primaryKey(),
  kind: text("kind").notNull(), // "order" or an identifier kind
  createdAt: text("created_at").notNull(),
  /**
   * 1 on the rows listed before this column existed, when account and device ids were keyed NFKC-folded
   * (identity.keys.ts foldedKey): only those are matched by an id's folded key. A row listed since is an
   * id keyed as sent: a full-width id folding to it is another person's.
   */
  foldedEra: integer("folded_era").notNull().default(0),
});

/**
 * Console sign-in sessions: only the SHA-256 of the random session id (the cookie's value) is kept, so
 * a copy of the database signs nobody in. A session ends at `expires_at` (12 h after sign-in, not
 * extended by use) or when it is signed out (the row is deleted). `user_name` is the name given at
 * sign-in, if any: who the rule history says made the session's changes. `admin_key_digest` is an
 * HMAC of the admin key the session was opened with (keyed with IDENTITY_HASH_SECRET, so a copy of the
 * database gives no way to test guesses at the key): once PATRON_ADMIN_KEY is another key, the session
 * is refused. Rows from before the column have none and are refused too.
 */
export const consoleSessions = sqliteTable(
  "console_sessions",
  {
    idHash: text("id_hash").primaryKey(),
    createdAt: text("created_at").notNull(),
    expiresAt: text("expires_at").notNull(),
    userName: text("user_name"),
    adminKeyDigest: text("admin_key_digest"),
  },
  (t) => [index("console_sessions_expires_idx").on(t.expiresAt)],
);

/**
 * Saved audiences: a customer-list filter (the GET /v1/admin/customers filters) with a name and,
 * optionally, a webhook the nightly job POSTs who joined and left to. `secret` is the webhook's signing
 * secret sealed with AES-GCM under a key derived from IDENTITY_HASH_SECRET (worker/audiences/secrets.ts):
 * shown once at creation, never readable again through the API, useless in a copy of the database.
 * `size` and the last delivery's outcome are written by the nightly job.
 */
export const audiences = sqliteTable(
  "audiences",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    filters: text("filters", { mode: "json" }).notNull(),
    webhookUrl: text("webhook_url"),
    matchKeys: text("match_keys", { mode: "json" }).notNull(),
    secret: text("secret").notNull(),
    /** Members at the last nightly run; null until the first run after creation. */
    size: integer("size"),
    sizedAt: text("sized_at"),
    /** Bumped by each nightly run that syncs the audience's members (audience_members.seen_seq). */
    syncSeq: integer("sync_seq").notNull().default(0),
    /**
     * Pages of webhook changes this sync's receiver accepted (0 when a sync starts), written with the
     * members each page marks: the next page's number, so a retried or later step numbers a page, and
     * gives its delivery id, as the receiver will see it, never reusing one for other members.
     */
    syncPagesSent: integer("sync_pages_sent").notNull().default(0),
    /**
     * The page being delivered, written before its POST (JSON: the sync, its number, kind, customer ids
     * and the exact body) and cleared when it is accepted: every try of it sends that body under that
     * number, whatever changed in between (a customer erased, a try that failed after the receiver took it).
     */
    syncPendingPage: text("sync_pending_page"),
    /**
     * The receiver's status code for this sync's last accepted page (null before one is): what the run's
     * delivery records, also when the step that sent it is retried and finds nothing left to send.
     */
    syncStatusCode: integer("sync_status_code"),
    lastDeliveryAt: text("last_delivery_at"),
    lastDeliveryRunId: text("last_delivery_run_id"),
    /** "delivered" | "failed" | "nothing_to_send" */
    lastDeliveryOutcome: text("last_delivery_outcome"),
    lastDeliveryStatusCode: integer("last_delivery_status_code"),
    lastDeliveryError: text("last_delivery_error"),
    lastDeliveryJoined: integer("last_delivery_joined"),
    lastDeliveryLeft: integer("last_delivery_left"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [index("audiences_created_idx").on(t.createdAt, t.id)],
);

/**
 * Members of the audiences that have a webhook, as their receiver was told: `delivered` once a page
 * naming them as joined was accepted, deleted once a page naming them as left was. `seen_seq` is the
 * audience's sync_seq of the last run that found them in it, so a run's joined (seen now, not yet
 * delivered) and left (delivered, not seen now) are each one range of the index. `shard` is the
 * customer shard the run found them in (0 on the one database): a page of joined members, read in
 * shard order, asks one or two shards for their rows rather than every shard.
 */
export const audienceMembers = sqliteTable(
  "audience_members",
  {
    audienceId: text("audience_id").notNull(),
    customerId: text("customer_id").notNull(),
    seenSeq: integer("seen_seq").notNull(),
    delivered: integer("delivered", { mode: "boolean" }).notNull().default(false),
    shard: integer("shard").notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.audienceId, t.customerId] }),
    index("audience_members_sync_idx").on(t.audienceId, t.delivered, t.seenSeq, t.shard, t.customerId),
    // A customer's export lists the audiences they are in without a scan.
    index("audience_members_customer_idx").on(t.customerId),
  ],
);

/**
 * Audiences whose members' delivery state is to be forgotten: deleted, or given another receiver (a new
 * or removed webhook URL). The route only records it here; the nightly job deletes the members a page
 * at a time before it syncs the audiences, since one statement over millions of members would run past
 * D1's 30 s per query. `requested_at` tells a request made while a purge was under way.
 */
export const audienceMemberPurges = sqliteTable("audience_member_purges", {
  audienceId: text("audience_id").primaryKey(),
  requestedAt: text("requested_at").notNull(),
});

/**
 * Bulk imports through the queue (worker/imports): a job that batches of orders are posted to. Its
 * progress and totals are read from its batches, so nothing here is a counter that a redelivered
 * queue message could add to twice.
 */
export const imports = sqliteTable(
  "imports",
  {
    id: text("id").primaryKey(),
    source: text("source"),
    expectedBatches: integer("expected_batches"),
    createdAt: text("created_at").notNull(),
  },
  // Newest first, a page at a time: GET /v1/imports.
  (t) => [index("imports_created_idx").on(t.createdAt, t.id)],
);

/**
 * One posted batch of an import, by its client-chosen sequence number: `queued` until the queue
 * consumer records it `done` (with the counts ingestion answered) or `failed` (with its error).
 * `received_at` is the instant the batch was accepted; its orders are written with it as their
 * created_at, so a redelivery can tell the orders this batch wrote from older duplicates. `digest`
 * is the SHA-256 of its orders, so a resent sequence with other orders is refused.
 */
export const importBatches = sqliteTable(
  "import_batches",
  {
    importId: text("import_id").notNull(),
    sequence: integer("sequence").notNull(),
    status: text("status", { enum: ["queued", "done", "failed"] }).notNull(),
    digest: text("digest").notNull(),
    orders: integer("orders").notNull(),
    accepted: integer("accepted").notNull().default(0),
    duplicates: integer("duplicates").notNull().default(0),
    suppressed: integer("suppressed").notNull().default(0),
    ignored: integer("ignored").notNull().default(0),
    merges: integer("merges").notNull().default(0),
    ignoredIdentifiers: integer("ignored_identifiers").notNull().default(0),
    /** Of the duplicates, those whose stored order has other content, and the first few of their ids (JSON). */
    changed: integer("changed").notNull().default(0),
    changedIds: text("changed_ids").notNull().default("[]"),
    /**
     * Orders of a done batch left out because their identifiers link more orders than a region may
     * hold (a placeholder), and the first few of their ids (JSON); the batch's other orders are stored.
     */
    setAside: integer("set_aside").notNull().default(0),
    setAsideIds: text("set_aside_ids").notNull().default("[]"),
    /**
     * A queued batch cut in halves whose invocation ran out of calls before it was through: where it
     * stopped (JSON, SplitProgress in worker/imports/imports.repo.ts), so the next delivery goes on from
     * there. Null otherwise, and once the batch is done.
     */
    splitProgress: text("split_progress"),
    attempts: integer("attempts").notNull().default(0),
    error: text("error"),
    receivedAt: text("received_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.importId, t.sequence] }),
    // Batches of one status, in sequence order: the paged list a client resumes from.
    index("import_batches_status_idx").on(t.importId, t.status, t.sequence),
    // The few batches that recorded changed duplicates: an erasure removes its order ids from them.
    index("import_batches_changed_idx").on(t.importId).where(sql`${t.changed} > 0`),
  ],
);

/**
 * Customer shards only (docs/scaling.md): where keys whose home is this shard are placed, when that is
 * not simply their home. A key is an identity key, `customer:<id>` or `order:<id>`; `shard` is the
 * index of the shard holding the key's data. No row: an identity key is unknown, and a customer or
 * order is at its home. Stays empty in the single D1 database.
 */
export const shardDirectory = sqliteTable(
  "shard_directory",
  {
    key: text("key").primaryKey(),
    shard: integer("shard").notNull(),
    updatedAt: text("updated_at").notNull(),
    /**
     * 1 on an entry a shrinking reshard's walk copied into a shard that stays, for a key homed in a
     * removed shard until the switch (worker/shards/reshard-shard.ts); null on every other entry. A
     * walk started over drops the marked entries, the reshard's finish clears the marks.
     */
    reshardWalk: integer("reshard_walk"),
    /**
     * On an `order:<id>` entry claimed before the order is stored (worker/shards/ingest-router.ts): the
     * claiming request's token, while that request alone may point the entry at another shard or drop
     * it (the order stored nowhere yet). Null once another request meant to store the order where it
     * names (it may be storing it there now), on an entry a move or a walk wrote, and on every other entry.
     */
    claimedBy: text("claimed_by"),
  },
  (t) => [index("shard_directory_reshard_walk_idx").on(t.reshardWalk).where(sql`${t.reshardWalk} IS NOT NULL`)],
);

/**
 * Customer shards only (worker/shards/moves.ts): the regions moved between shards. In the source a
 * row (`direction` "out") records a move before anything is copied; in the target a row ("in")
 * records a copy received whose source has not finished. `keys` and `customers` are JSON arrays of
 * the region's identity keys and customer ids (the requested keys included), `sources` its
 * observation sources. `status`: "copying" → "directory" → "deleting" → "finishing" → "done" in the source;
 * "copying" → "done" in the target. An erasure scrubs its customer from the lists of finished moves;
 * the shard's alarm deletes a record 7 days after its move finished. Stays empty in the single D1 database.
 */
export const shardMoves = sqliteTable(
  "shard_moves",
  {
    id: text("id").notNull(),
    direction: text("direction", { enum: ["out", "in"] }).notNull(),
    /** The other shard: the target of a move out, the source of a move in. */
    peer: integer("peer").notNull(),
    keys: text("keys", { mode: "json" }).notNull(),
    customers: text("customers", { mode: "json" }).notNull(),
    sources: text("sources", { mode: "json" }).notNull(),
    status: text("status").notNull(),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.direction] }),
    index("shard_moves_status_idx").on(t.status),
    // The nightly job's arrivals: moves into here since a run's first page here (nightlyRunStarts).
    index("shard_moves_arrived_idx").on(t.direction, t.createdAt),
  ],
);

/**
 * Customer shards only (worker/shards/moves.ts): the parts of a region copy too big for one call,
 * staged in the target until the copy's last call applies them with the rest, in one transaction.
 * `rows` is a JSON array of `table`'s rows, as the source's SELECT * gave them. The last call deletes
 * its move's parts; a part arriving after its copy was applied is not staged. Stays empty in the
 * single D1 database.
 */
export const shardMoveParts = sqliteTable(
  "shard_move_parts",
  {
    moveId: text("move_id").notNull(),
    part: integer("part").notNull(),
    /** The region table the rows are from (moves.ts regionTables: `seen_identities` included). */
    tableName: text("table_name").notNull(),
    rows: text("rows").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.moveId, t.part] })],
);

/**
 * Customer shards only: when each nightly run scored its first page here (this shard's clock). A
 * customer a move brings here after that may have arrived behind the run's pages: the run scores the
 * customers of the moves into here since then once its pages are done (worker/shards/nightly-shard.ts).
 * Kept 30 days. Stays empty in the single D1 database.
 */
export const shardNightlyRuns = sqliteTable("shard_nightly_runs", {
  runId: text("run_id").primaryKey(),
  startedAt: text("started_at").notNull(),
});

/**
 * Customer shards only (worker/shards/erasure-scrubs.ts): an erasure's part in the other shards and the
 * directory, kept in the shard that erased until it is done. `plan` is the JSON the scrub needs: the
 * family's customer ids, identity keys (keyed hashes) with their kinds, observation sources, order ids
 * (the directory's `order:<id>` entries) and this shard's index. The request that erased runs the
 * scrub at once; the shard's alarm runs it again at `due_at` (a pass after any move under way then has
 * finished) and deletes the row once a pass succeeds, or sets `due_at` later after a failure
 * (`attempts` counts them). Stays empty in the single D1 database.
 */
export const erasureScrubs = sqliteTable(
  "erasure_scrubs",
  {
    customerId: text("customer_id").primaryKey(),
    plan: text("plan").notNull(),
    dueAt: text("due_at").notNull(),
    attempts: integer("attempts").notNull().default(0),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("erasure_scrubs_due_idx").on(t.dueAt)],
);

/**
 * Customer shards only: the identity keys whose region a move took (or is taking) out of this shard.
 * Ingestion refuses a fenced key (its data is, or is about to be, elsewhere); a move that brings the
 * key back deletes its fence, an erasure of the key's customer once its move finished (suppressing the
 * key here instead), and the alarm 7 days after its move finished. Stays empty in the single D1 database.
 */
export const shardFences = sqliteTable("shard_fences", {
  key: text("key").primaryKey(),
  moveId: text("move_id").notNull(),
  createdAt: text("created_at").notNull(),
});

/**
 * The one migration of a single-database deployment's customer data into customer shards
 * (`patron shards migrate`, docs/scaling.md): the shard count it places for, and how far it got.
 * A `full` pass visits every customer in id order; `cursor` is the last one visited, so a rerun
 * resumes after it. A `catch_up` pass copies again only what D1 wrote after `since` (the start of the
 * pass before it), in phases: "collect" (`cursor` counts the tables scanned into
 * shard_migration_changes), "prune" (`cursor` is `<shard>:<last customer id>`: customers the shards
 * hold that D1 erased) and "copy" (`cursor` is the last changed customer visited).
 */
export const shardMigration = sqliteTable("shard_migration", {
  id: text("id").primaryKey(),
  shards: integer("shards").notNull(),
  cursor: text("cursor"),
  visited: integer("visited").notNull().default(0),
  regions: integer("regions").notNull().default(0),
  customers: integer("customers").notNull().default(0),
  startedAt: text("started_at").notNull(),
  updatedAt: text("updated_at").notNull(),
  finishedAt: text("finished_at"),
  mode: text("mode").notNull().default("full"),
  phase: text("phase"),
  since: text("since"),
  /** A catch-up pass: the customers D1 changed after `since`, and those its prune dropped. */
  changed: integer("changed").notNull().default(0),
  pruned: integer("pruned").notNull().default(0),
  /**
   * When `patron shards migrate --pause-writes` paused customer writes on D1 for the last pass (null:
   * open): while it is set, a deployment on D1 answers them 503 with Retry-After
   * (worker/shards/write-pause.ts). A deployment on the shards never reads it.
   */
  writesPausedAt: text("writes_paused_at"),
});

/** The customers a catch-up pass copies again (shard_migration's `collect` and `prune` phases fill it). */
export const shardMigrationChanges = sqliteTable("shard_migration_changes", {
  customerId: text("customer_id").primaryKey(),
});

/**
 * A reshard of the customer shards from `from_count` to `to_count` (`patron shards reshard`,
 * docs/scaling.md, resharding). `phase`: "draining" (shrinking only) moves every customer and identify
 * call out of the shards the reshard removes, in passes; "copying" walks the old shards' directories, customers,
 * orders and identify calls and writes every key's entry at its home among the new count, while the deployment still runs
 * with the old one; "prepared" once the walk found no write since it began (`started_at`) and marked
 * the old shards to accept the new count; after the switch, "cleaning" deletes the entries the old
 * shards keep for keys homed elsewhere now; then "done". `shard`, `part` and `cursor` (the last key or
 * id visited, "" at a part's start and once a phase's walk is done: no key is kept past it) say where the
 * walk is, so a rerun resumes there.
 */
export const shardReshard = sqliteTable("shard_reshard", {
  id: text("id").primaryKey(),
  fromCount: integer("from_count").notNull(),
  toCount: integer("to_count").notNull(),
  phase: text("phase", { enum: ["draining", "copying", "prepared", "cleaning", "done"] }).notNull(),
  shard: integer("shard").notNull(),
  part: text("part", { enum: ["directory", "customers", "orders", "identify"] }).notNull(),
  cursor: text("cursor").notNull(),
  /** Rows the phase visited, of `total` (the old shards' rows it walks, counted when it began). */
  scanned: integer("scanned").notNull().default(0),
  total: integer("total").notNull().default(0),
  /**
   * Directory entries written at their new homes (copying), and deleted from the old shards (cleaning);
   * draining, the customers moved in this pass, and the moves.
   */
  written: integer("written").notNull().default(0),
  removed: integer("removed").notNull().default(0),
  /** A shrink's drain over all its passes: customers moved out of the shards removed, the moves, the passes begun. */
  drained: integer("drained").notNull().default(0),
  drainMoves: integer("drain_moves").notNull().default(0),
  drainPasses: integer("drain_passes").notNull().default(0),
  startedAt: text("started_at").notNull(),
  updatedAt: text("updated_at").notNull(),
  preparedAt: text("prepared_at"),
  finishedAt: text("finished_at"),
});

/**
 * A pass of `patron shards rebalance` (one row, id "rebalance"): each customer shard in turn, a page of
 * its customers at a time after `cursor` ("" once the pass is done), moves the identity regions whose
 * account keys are all homed in another shard to the home of one of them, so their shelves cost one shard
 * call again.
 */
export const shardRebalance = sqliteTable("shard_rebalance", {
  id: text("id").primaryKey(),
  /** The shard count the pass places regions by (SHARD_COUNT when it began). */
  shardCount: integer("shard_count").notNull(),
  shard: integer("shard").notNull(),
  cursor: text("cursor").notNull(),
  /** Customers the pass visited, of `total` (the shards' customers, counted when it began). */
  scanned: integer("scanned").notNull().default(0),
  total: integer("total").notNull().default(0),
  /** Customers moved, in how many moves; customers left because a move held them, or too large a region. */
  moved: integer("moved").notNull().default(0),
  moves: integer("moves").notNull().default(0),
  busy: integer("busy").notNull().default(0),
  tooLarge: integer("too_large").notNull().default(0),
  startedAt: text("started_at").notNull(),
  updatedAt: text("updated_at").notNull(),
  finishedAt: text("finished_at"),
});

/**
 * A nightly run's progress in each customer shard (SHARD_COUNT > 0): the customers the shard's pages
 * scored so far and its last customer id. Each page sets its shard's row and job_runs.processed to
 * the sum, in one batch, so pages of different shards scored at once each count once, and a retried
 * page sets the same figures again. Stays empty in a single-database deployment.
 */
export const jobRunShards = sqliteTable(
  "job_run_shards",
  {
    runId: text("run_id").notNull(),
    shard: integer("shard").notNull(),
    processed: integer("processed").notNull(),
    cursor: text("cursor").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.shard] })],
);
