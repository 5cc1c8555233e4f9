// Customer read API: query parameters and the response shape.
import * as z from "zod";
import { identityKinds } from "../core/identity/normalize.ts";

export const lookupQuerySchema = z.object({
  kind: z.enum(identityKinds),
  value: z.string().min(1, "value is required").max(254),
});

export const customerParamsSchema = z.object({ id: z.string().min(1).max(100) });

const categoryStatSchema = z.object({
  categoryId: z.string(),
  orders: z.number(),
  purchaseDays: z.number(),
  units: z.number(),
  spend: z.number(),
  lastPurchaseAt: z.string(),
  typicalPricePaid: z.number(),
  discountedShare: z.number(),
  onlineUnits: z.number(),
  storeUnits: z.number(),
});

export const customerResponseSchema = z.object({
  data: z.object({
    customerId: z.string(),
    mergedFrom: z.array(z.string()),
    identities: z.array(z.object({ kind: z.enum(identityKinds), masked: z.string() })),
    orders: z.array(
      z.object({
        id: z.string(),
        channel: z.enum(["web", "store", "app", "phone"]),
        storeId: z.string().nullable(),
        placedAt: z.string(),
        total: z.number(),
        discountTotal: z.number(),
        currency: z.string(),
        lines: z.array(
          z.object({
            productId: z.string(),
            categoryId: z.string(),
            quantity: z.number(),
            unitPrice: z.number(),
            listPrice: z.number(),
          }),
        ),
      }),
    ),
    summary: z
      .object({
        orders: z.number(),
        purchaseDays: z.number(),
        firstOrderAt: z.string(),
        lastOrderAt: z.string(),
        spend: z.number(),
        channels: z.object({ web: z.number(), store: z.number(), app: z.number(), phone: z.number() }),
        units: z.number(),
        discountedUnits: z.number(),
        discountedShare: z.number(),
        categories: z.array(categoryStatSchema),
      })
      .nullable(),
  }),
});
export type CustomerResponse = z.infer<typeof customerResponseSchema>;
