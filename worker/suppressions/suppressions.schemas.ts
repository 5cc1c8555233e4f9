// GET and DELETE /v1/admin/suppressions: which erased value to check or lift.
import * as z from "zod";
import { trimPadding } from "../core/identity/normalize.ts";
import { identifierKinds } from "../core/vocabulary.ts";

export const suppressionKinds = ["order", ...identifierKinds] as const;

/**
 * The raw value as the source system sends it, trimmed as ingestion trims it: an order id of any
 * space (as the orders' id fields are), an identifier of its padding only (trimPadding: an account id
 * that starts with an ideographic space is another id), then normalised like ingestion.
 */
const trimmedFor = (kind: string | undefined, value: string) => (kind === "order" ? value.trim() : trimPadding(value));

export const suppressionSchema = z
  .strictObject({ kind: z.enum(suppressionKinds), value: z.string() })
  .transform(({ kind, value }) => ({ kind, value: trimmedFor(kind, value) }))
  .pipe(z.object({ kind: z.enum(suppressionKinds), value: z.string().min(1, "value is required").max(254) }));

export const suppressionQuerySchema = z
  .object({ kind: z.enum(suppressionKinds).optional(), value: z.string().optional() })
  .transform(({ kind, value }) => ({
    ...(kind && { kind }),
    ...(value !== undefined && { value: trimmedFor(kind, value) }),
  }))
  .pipe(z.object({ kind: z.enum(suppressionKinds).optional(), value: z.string().min(1).max(254).optional() }));

export type SuppressionInput = z.infer<typeof suppressionSchema>;
