// Wire format for ingestion (the contract: README.md, "Sending data", and docs/api.md, "Ingestion" and "Limits"): orders, identify calls and catalog upserts.
import * as z from "zod";
import { trustOf } from "../core/identity/trust.ts";
import { fingerprintFields } from "../core/orders/fingerprint.ts";
import { channels, type IdentifierKind, identifierKinds } from "../core/vocabulary.ts";
import {
  httpUrlField,
  idField,
  instantField,
  noControlCharacters,
  printable,
  textField,
  wholeNumberParam,
} from "../http/fields.schemas.ts";
import { ignoredReasons } from "../recommendations/attribution.ts";

/** Request bodies of POST /v1/orders and POST /v1/products are capped at this many bytes (413 beyond). */
export const maxBatchBodyBytes = 8 * 1024 * 1024;
export const maxOrdersPerBatch = 1000;
export const maxLinesPerOrder = 500;
export const maxLinesPerBatch = 50_000;
export const maxProductsPerBatch = 1000;

const id = idField(200);
const money = z.number().finite().nonnegative().max(1e9);

/**
 * One identifier: a bare value (the kind's default trust, worker/core/identity/trust.ts) or
 * `{ value, verified }` when the sender says whether it vouches for it. A device can never be verified.
 */
function identifierValue(kind: IdentifierKind) {
  const value = z.string().max(254).regex(printable, noControlCharacters);
  const withTrust = z
    .strictObject({ value, verified: z.boolean().optional() })
    .refine((sent) => trustOf(kind, sent.verified) !== null, {
      message: `a ${kind} cannot be verified: nobody can vouch for it; send it as a string or with "verified": false`,
      path: ["verified"],
    });
  return z.union([value, withTrust], { error: 'must be a string or { "value": string, "verified": boolean }' });
}

export const identifiersSchema = z
  .strictObject(
    Object.fromEntries(identifierKinds.map((kind) => [kind, identifierValue(kind).optional()])) as Record<
      IdentifierKind,
      z.ZodOptional<ReturnType<typeof identifierValue>>
    >,
  )
  .refine((value) => Object.values(value).some((v) => v !== undefined), {
    message: `at least one identifier is required (${identifierKinds.join(", ")})`,
  });

export const orderLineSchema = z.strictObject({
  productId: id,
  categoryId: id,
  quantity: z.number().finite().positive().max(1e6),
  unitPrice: money,
  listPrice: money.optional(),
});

const currencyCode = z.string().regex(/^[A-Z]{3}$/, { message: "must be an ISO 4217 code such as USD", abort: true });

/** Why an order (or a product) in another currency than the shop's is refused (an issue on its `currency`). */
export const foreignCurrency = (shopCurrency: string, amounts = "the order's amounts") =>
  `this shop's figures are in ${shopCurrency} (RETAILER_CURRENCY): convert ${amounts} to ${shopCurrency} first`;

/** An order as accepted (what is queued and stored): its currency filled in, the shop's. */
export const orderSchema = z.strictObject({
  id,
  channel: z.enum(channels),
  storeId: id.nullish(),
  placedAt: instantField(),
  currency: currencyCode,
  identifiers: identifiersSchema,
  lines: z
    .array(orderLineSchema)
    .min(1, "an order needs at least one line")
    .max(maxLinesPerOrder, `an order has at most ${maxLinesPerOrder} lines`),
  // An empty recommendationId (a storefront forwarding an absent `patron_rec`) means none, as before.
  recommendationId: z.preprocess((value) => (value === "" ? null : value), idField(200).nullish()),
});

/**
 * An order as sent to a shop whose amounts are in `shopCurrency` (RETAILER_CURRENCY). Every figure adds
 * amounts up (spend, CLV, price bands), so an order in another currency is refused; one without
 * `currency` takes the shop's.
 */
export function orderSchemaIn(shopCurrency: string) {
  return orderSchema.extend({
    currency: currencyCode.refine((code) => code === shopCurrency, foreignCurrency(shopCurrency)).default(shopCurrency),
  });
}

/** One schema per shop currency, built on first use (a deployment has one currency). */
export function perCurrency<T>(build: (shopCurrency: string) => T): (shopCurrency: string) => T {
  const built = new Map<string, T>();
  return (shopCurrency) => {
    if (!built.has(shopCurrency)) built.set(shopCurrency, build(shopCurrency));
    return built.get(shopCurrency) as T;
  };
}

/** One spelling per instant (`…T11:22:00+01:00` and `…T10:22:00Z` are the same); anything else as it is. */
function sameInstant(value: unknown): unknown {
  const at = typeof value === "string" ? Date.parse(value) : Number.NaN;
  return Number.isNaN(at) ? value : new Date(at).toISOString();
}

/**
 * Items of one batch that share an id: identical content is a harmless repeat (stored once), other
 * content is an error naming both places, since storing either one would silently drop the other.
 */
function duplicateIds(field: "orders" | "products", items: { id: string }[], context: z.RefinementCtx) {
  const first = new Map<string, { index: number; content: string }>();
  for (const [index, item] of items.entries()) {
    if (typeof item?.id !== "string") continue;
    const content = JSON.stringify(item);
    const seen = first.get(item.id);
    if (!seen) first.set(item.id, { index, content });
    else if (seen.content !== content)
      context.addIssue({
        code: "custom",
        path: [field, index, "id"],
        message: `${field}[${index}] has the same id as ${field}[${seen.index}] but different content`,
      });
  }
}

/** The body of POST /v1/orders for a shop whose amounts are in `shopCurrency`. */
export const ordersBatchSchemaIn = perCurrency((shopCurrency) =>
  z
    .strictObject({
      orders: z
        .array(orderSchemaIn(shopCurrency))
        .min(1, "send at least one order")
        .max(maxOrdersPerBatch, "send at most 1,000 orders per batch"),
    })
    // zod runs this even when single orders have problems, so it reads nothing it has not checked.
    .superRefine(({ orders }, context) => {
      if (!Array.isArray(orders)) return;
      const lines = orders.reduce((sum, order) => sum + (Array.isArray(order?.lines) ? order.lines.length : 0), 0);
      if (lines > maxLinesPerBatch)
        context.addIssue({
          code: "custom",
          path: ["orders"],
          message: `send at most ${maxLinesPerBatch.toLocaleString("en-US")} order lines per batch (this one has ${lines})`,
        });
      duplicateIds(
        "orders",
        orders.map((order) => ({ ...order, placedAt: sameInstant(order?.placedAt) })),
        context,
      );
    }),
);

export const identifySchema = z.strictObject({ identifiers: identifiersSchema });

export const productSchema = z.strictObject({
  id,
  title: textField(500),
  categoryId: id,
  categoryName: textField(200).optional(),
  parentCategoryId: id.nullish(),
  url: httpUrlField().nullish(),
  imageUrl: httpUrlField().nullish(),
  listPrice: money,
  salePrice: money.nullish(),
  inStock: z.boolean().default(true),
  active: z.boolean().default(true),
});

/**
 * A product as sent to a shop whose amounts are in `shopCurrency`: a feed may say its prices' currency,
 * which must be the shop's (prices are compared with what customers paid); the catalog keeps none.
 */
export function productSchemaIn(shopCurrency: string) {
  return productSchema
    .extend({
      currency: currencyCode
        .refine((code) => code === shopCurrency, foreignCurrency(shopCurrency, "the product's prices"))
        .optional(),
    })
    .transform(({ currency: _shops, ...product }) => product);
}

/** The body of POST /v1/products for a shop whose amounts are in `shopCurrency`. */
export const productsBatchSchemaIn = perCurrency((shopCurrency) =>
  z
    .strictObject({
      products: z
        .array(productSchemaIn(shopCurrency))
        .min(1, "send at least one product")
        .max(maxProductsPerBatch, "send at most 1,000 products per batch"),
    })
    .superRefine(({ products }, context) => {
      if (Array.isArray(products)) duplicateIds("products", products, context);
    }),
);

/** GET /v1/products/:id: the product's id as sent (URL-encoded in the path). */
export const productIdParamSchema = z.strictObject({ id });

/** GET /v1/products: a page of the catalog in id order. */
export const productsQuerySchema = z.strictObject({
  /** The `next` of the previous page: products with a greater id. */
  after: id.optional(),
  limit: wholeNumberParam("limit", 1, 500).default(100),
});

/** A product as the catalog stores it, with its category's name and parent. */
export const productViewSchema = z.object({
  id: z.string(),
  title: z.string(),
  categoryId: z.string(),
  categoryName: z.string().nullable(),
  parentCategoryId: z.string().nullable(),
  url: z.string().nullable(),
  imageUrl: z.string().nullable(),
  listPrice: z.number(),
  salePrice: z.number().nullable(),
  inStock: z.boolean(),
  active: z.boolean(),
  updatedAt: z.string(),
});
export type ProductView = z.infer<typeof productViewSchema>;
export const productResponseSchema = z.object({ data: productViewSchema });
export const productsResponseSchema = z.object({
  data: z.object({ products: z.array(productViewSchema), next: z.string().nullable() }),
});

export type OrderInput = z.infer<typeof orderSchema>;
export type IdentifiersInput = z.infer<typeof identifiersSchema>;
export type ProductInput = z.infer<typeof productSchema>;

export const ingestResultSchema = z.object({
  data: z.object({
    accepted: z.number(),
    duplicates: z.number(),
    changed: z.number(),
    suppressed: z.number(),
    ignored: z.number(),
    merges: z.number(),
    results: z.array(
      z.object({
        id: z.string(),
        customerId: z.string().nullable(),
        status: z.enum(["created", "duplicate", "suppressed"]),
        attribution: z.enum(["counted", "ignored"]).optional(),
        attributionIgnored: z.enum(ignoredReasons).optional(),
        changed: z.boolean().nullable().optional(),
        changedFields: z.array(z.enum(fingerprintFields)).optional(),
      }),
    ),
    ignoredIdentifiers: z.array(z.object({ index: z.number(), kind: z.string(), reason: z.string() })),
  }),
});
