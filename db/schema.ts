// The only place Patron's tables are declared. drizzle-kit generates db/migrations from this file;
// `npm run db:check` fails when the two disagree.

import { index, integer, primaryKey, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** A unified customer. A merged-away customer keeps its row and points at the survivor. */
export const customers = sqliteTable("customers", {
  id: text("id").primaryKey(),
  createdAt: text("created_at").notNull(),
  updatedAt: text("updated_at").notNull(),
  mergedInto: text("merged_into"),
});

/**
 * One identifier (kind + keyed hash of the normalised value). `customerId` is null while the value is
 * shared by several customers: a shared value links nobody. `masked` is the only readable form kept.
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
  },
  (t) => [index("identities_customer_idx").on(t.customerId)],
);

/** Which identifiers were seen together, and where: the evidence identity resolution is computed from. */
export const identityObservations = sqliteTable(
  "identity_observations",
  {
    source: text("source").notNull(), // `order:<id>` or `identify:<hash of the identifier set>`
    identityKey: text("identity_key").notNull(),
  },
  (t) => [primaryKey({ columns: [t.source, t.identityKey] }), index("identity_observations_key_idx").on(t.identityKey)],
);

/** Audit trail of merges (and of refused merges), newest last. */
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
    recommendationId: text("recommendation_id"),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("orders_customer_placed_idx").on(t.customerId, t.placedAt)],
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
 * The per-customer RFM-T summary and every aggregate the request path needs. Rebuilt from `orders` in
 * the same D1 batch that writes an order, so it is never out of step.
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
  webOrders: integer("web_orders").notNull(),
  storeOrders: integer("store_orders").notNull(),
  appOrders: integer("app_orders").notNull(),
  phoneOrders: integer("phone_orders").notNull(),
  units: real("units").notNull(),
  discountedUnits: real("discounted_units").notNull(), // units bought below list price
  updatedAt: text("updated_at").notNull(),
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

