// The ingestion wire format (DESIGN.md, "Wire format for ingestion") as plain TypeScript types, for
// code that produces it outside the worker: the demo generator and the bulk importer. The worker's
// zod schemas stay the authority; `checkWireOrder` is a cheap local pre-flight, not a replacement.

import { type Channel, channels, type IdentifierKind, identifierKinds } from "../../worker/core/vocabulary.ts";

/**
 * One identifier: a bare value (its kind's default trust) or the value with the sender's word on
 * whether it vouches for it (docs/identity.md).
 */
export type WireIdentifier = string | { value: string; verified?: boolean };
export type Identifiers = Partial<Record<IdentifierKind, WireIdentifier>>;

/** An identifier the sender vouches for: a verified login email, the email or phone on a loyalty account, a card presented at the till. */
export const verified = (value: string): WireIdentifier => ({ value, verified: true });

/** The value of an identifier, whichever way it was sent. */
export const identifierValue = (identifier: WireIdentifier): string =>
  typeof identifier === "string" ? identifier : identifier.value;

export interface WireOrderLine {
  productId: string;
  categoryId: string;
  quantity: number;
  unitPrice: number;
  listPrice: number;
}

export interface WireOrder {
  id: string;
  channel: Channel;
  storeId: string | null;
  placedAt: string;
  /** ISO 4217; it must be the shop's (RETAILER_CURRENCY), which an order without it takes. */
  currency?: string;
  identifiers: Identifiers;
  lines: WireOrderLine[];
  recommendationId: string | null;
}

export interface WireProduct {
  id: string;
  title: string;
  categoryId: string;
  categoryName: string;
  /** An extension the worker accepts: the category's parent (apparel for heels). */
  parentCategoryId?: string | null;
  url: string | null;
  imageUrl: string | null;
  listPrice: number;
  salePrice: number | null;
  inStock: boolean;
  /** The prices' currency, when the feed says it: it must be the shop's (RETAILER_CURRENCY). */
  currency?: string;
}

export interface WireIssue {
  path: (string | number)[];
  message: string;
}

const isoInstant = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** Structural problems with one order, as issue paths relative to the order. Empty when it looks right. */
export function checkWireOrder(order: WireOrder): WireIssue[] {
  const issues: WireIssue[] = [];
  const fail = (path: (string | number)[], message: string) => issues.push({ path, message });
  if (typeof order.id !== "string" || order.id.length === 0) fail(["id"], "must be a non-empty string");
  if (!channels.includes(order.channel)) fail(["channel"], `must be one of ${channels.join(", ")}`);
  if (order.storeId !== null && typeof order.storeId !== "string") fail(["storeId"], "must be a string or null");
  if (
    typeof order.placedAt !== "string" ||
    !isoInstant.test(order.placedAt) ||
    Number.isNaN(Date.parse(order.placedAt))
  )
    fail(["placedAt"], "must be an ISO 8601 date-time with a zone");
  if (order.currency !== undefined && !/^[A-Z]{3}$/.test(order.currency))
    fail(["currency"], "must be a 3-letter ISO currency code");
  const kinds = Object.keys(order.identifiers ?? {});
  if (kinds.length === 0) fail(["identifiers"], "must carry at least one identifier");
  for (const kind of kinds) {
    if (!identifierKinds.includes(kind as IdentifierKind)) fail(["identifiers", kind], "unknown identifier kind");
    else {
      const identifier = order.identifiers[kind as IdentifierKind];
      const shaped =
        typeof identifier === "string" ||
        (typeof identifier === "object" &&
          identifier !== null &&
          typeof identifier.value === "string" &&
          (identifier.verified === undefined || typeof identifier.verified === "boolean"));
      if (!shaped) fail(["identifiers", kind], 'must be a string or { "value": string, "verified": boolean }');
      else if (kind === "device" && typeof identifier === "object" && identifier.verified)
        fail(["identifiers", kind], "a device cannot be verified");
    }
  }
  if (!Array.isArray(order.lines) || order.lines.length === 0) fail(["lines"], "must have at least one line");
  else
    order.lines.forEach((line, index) => {
      if (!line.productId) fail(["lines", index, "productId"], "must be a non-empty string");
      if (!line.categoryId) fail(["lines", index, "categoryId"], "must be a non-empty string");
      if (!Number.isInteger(line.quantity) || line.quantity <= 0)
        fail(["lines", index, "quantity"], "must be a positive integer");
      if (!Number.isFinite(line.unitPrice) || line.unitPrice < 0) fail(["lines", index, "unitPrice"], "must be ≥ 0");
      if (!Number.isFinite(line.listPrice) || line.listPrice < 0) fail(["lines", index, "listPrice"], "must be ≥ 0");
    });
  return issues;
}
