// GET and DELETE /v1/admin/suppressions: which erased value to check or lift.
import * as z from "zod";
import { trimPadding } from "../core/identity/normalize.ts";
import { identifierKinds } from "../core/vocabulary.ts";

export const suppressionKinds = ["order", ...identifierKinds] as const;

/** The raw value as the source system sends it: an order id, or an identifier (normalised like ingestion). */
/** The value with its padding dropped (only ASCII spaces, tabs and line ends: trimPadding). */
const paddedValue = z.string().transform(trimPadding);

export const suppressionSchema = z.strictObject({
  kind: z.enum(suppressionKinds),
  value: paddedValue.pipe(z.string().min(1, "value is required").max(254)),
});

export const suppressionQuerySchema = z.object({
  kind: z.enum(suppressionKinds).optional(),
  value: paddedValue.pipe(z.string().min(1).max(254)).optional(),
});

export type SuppressionInput = z.infer<typeof suppressionSchema>;
