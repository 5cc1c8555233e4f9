// Wire format for ingestion (the contract in DESIGN.md): orders, identify calls and catalog upserts.
import * as z from "zod";
import { trustOf } from "../core/identity/trust.ts";
import { channels, type IdentifierKind, identifierKinds } from "../core/vocabulary.ts";

const id = z.string().trim().min(1, "must not be empty").max(200);
const money = z.number().finite().nonnegative().max(1e9);

/**
 * One identifier: a bare value (the kind's default trust, worker/core/identity/trust.ts) or
 * `{ value, verified }` when the sender says whether it vouches for it. A device can never be verified.
 */
function identifierValue(kind: IdentifierKind) {
  const value = z.string().max(254);
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

export const orderSchema = z.strictObject({
  id,
  channel: z.enum(channels),
  storeId: id.nullish(),
  placedAt: z.iso.datetime({ offset: true }),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, "must be an ISO 4217 code such as USD")
    .default("USD"),
  identifiers: identifiersSchema,
  lines: z.array(orderLineSchema).min(1, "an order needs at least one line").max(500),
  recommendationId: z.string().max(200).nullish(),
});

export const ordersBatchSchema = z.strictObject({
  orders: z.array(orderSchema).min(1, "send at least one order").max(1000, "send at most 1,000 orders per batch"),
});

export const identifySchema = z.strictObject({ identifiers: identifiersSchema });

export const productSchema = z.strictObject({
  id,
  title: z.string().trim().min(1).max(500),
  categoryId: id,
  categoryName: z.string().trim().min(1).max(200).optional(),
  parentCategoryId: id.nullish(),
  url: z.url().nullish(),
  imageUrl: z.url().nullish(),
  listPrice: money,
  salePrice: money.nullish(),
  inStock: z.boolean().default(true),
  active: z.boolean().default(true),
});

export const productsBatchSchema = z.strictObject({
  products: z.array(productSchema).min(1).max(1000, "send at most 1,000 products per batch"),
});

export type OrderInput = z.infer<typeof orderSchema>;
export type IdentifiersInput = z.infer<typeof identifiersSchema>;
export type ProductInput = z.infer<typeof productSchema>;

export const ingestResultSchema = z.object({
  data: z.object({
    accepted: z.number(),
    duplicates: z.number(),
    suppressed: z.number(),
    ignored: z.number(),
    merges: z.number(),
    results: z.array(
      z.object({
        id: z.string(),
        customerId: z.string().nullable(),
        status: z.enum(["created", "duplicate", "suppressed"]),
        attribution: z.enum(["counted", "ignored"]).optional(),
      }),
    ),
    ignoredIdentifiers: z.array(z.object({ index: z.number(), kind: z.string(), reason: z.string() })),
  }),
});
