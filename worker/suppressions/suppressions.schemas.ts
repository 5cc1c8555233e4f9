// GET and DELETE /v1/admin/suppressions: which erased value to check or lift.
import * as z from "zod";
import { identifierKinds } from "../core/vocabulary.ts";

export const suppressionKinds = ["order", ...identifierKinds] as const;

/** The raw value as the source system sends it: an order id, or an identifier (normalised like ingestion). */
export const suppressionSchema = z.strictObject({
  kind: z.enum(suppressionKinds),
  value: z.string().trim().min(1, "value is required").max(254),
});

export const suppressionQuerySchema = z.object({
  kind: z.enum(suppressionKinds).optional(),
  value: z.string().trim().min(1).max(254).optional(),
});

export type SuppressionInput = z.infer<typeof suppressionSchema>;
