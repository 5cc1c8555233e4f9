// Column mappings: how rows of a CSV become wire-format orders (rows are order lines, grouped by an
// order id column) or products (one row each). A mapping is JSON data, so an integration can describe
// its export without code. Pure: lookups arrive as already-loaded tables, and nothing here reads files.
import { TZDate } from "@date-fns/tz";
import type { Identifiers, WireOrder, WireOrderLine, WireProduct } from "../../db/seed/wire.ts";
import { trustOf } from "../../worker/core/identity/trust.ts";
import { type Channel, type IdentifierKind, identifierKinds } from "../../worker/core/vocabulary.ts";
import { knownTimeZone } from "../../worker/http/config.ts";

export const transforms = [
  "trim",
  "lower",
  "upper",
  "slug",
  "title",
  "number",
  "integer",
  "boolean",
  "datetime",
] as const;
export type Transform = (typeof transforms)[number];

/**
 * Where one wire field comes from. A bare string is a column name.
 * - `{ value }`: a constant.
 * - `{ column, prefix?, suffix?, padStart?, transform?, default? }`: a column, transformed, then padded and wrapped.
 * - `{ lookup, column, field, ... }`: `column` is a key into a lookup table; `field` is read from the matched row.
 * - `{ sum: [columns], abs?, divideBy?, decimals?, default? }`: a number; `abs` takes each term's magnitude, which
 *   makes discounts add up whether the export writes them as positive or negative amounts; `default` is
 *   what an empty cell of those columns counts as (0 for a discount left blank), else an empty cell
 *   stops the run naming it; all of them empty and no `default` is an empty field.
 */
export type FieldSpec =
  | string
  | { value: string | number | boolean | null }
  | {
      column: string;
      lookup?: string;
      field?: string;
      prefix?: string;
      suffix?: string;
      /** Left-pad with zeros to this many characters (before prefixing): short ids survive junk blocking. */
      padStart?: number;
      transform?: Transform;
      default?: string | number | boolean | null;
    }
  | { sum: string[]; abs?: boolean; divideBy?: string; decimals?: number; default?: number };

export interface LookupSpec {
  /** A CSV file, relative to the mapping file (or, for presets, to the input file). */
  file: string;
  key: string;
}

export interface OrderMapping {
  kind: "orders";
  orderId: FieldSpec;
  channel: FieldSpec;
  storeId?: FieldSpec;
  placedAt: FieldSpec;
  /**
   * The IANA time zone of the export's clock (`America/New_York`): a date-time written without an
   * offset is read on it, daylight saving included. Default UTC.
   */
  timeZone?: string;
  currency?: FieldSpec;
  identifiers: Partial<Record<IdentifierKind, FieldSpec>>;
  /**
   * Kinds the source system vouches for (docs/identity.md): sent as `{ value, verified: true }`. The
   * others go as bare values, with their kind's default trust. A device can never be verified.
   */
  verified?: IdentifierKind[];
  line: {
    productId: FieldSpec;
    categoryId: FieldSpec;
    quantity: FieldSpec;
    unitPrice: FieldSpec;
    listPrice?: FieldSpec;
  };
  /**
   * Lines sold by measure, counted as one unit: where `when` reads a value the regular expression
   * `matches` finds, the line's quantity is 1 and its prices are the line's totals. Fuel whose
   * quantity is thousandths of a gallon is one fill-up, not 6,821 units.
   */
  countAsOneUnit?: { when: FieldSpec; matches: string };
  lookups?: Record<string, LookupSpec>;
}

export interface ProductMapping {
  kind: "products";
  product: {
    id: FieldSpec;
    title: FieldSpec;
    categoryId: FieldSpec;
    categoryName?: FieldSpec;
    parentCategoryId?: FieldSpec;
    url?: FieldSpec;
    imageUrl?: FieldSpec;
    listPrice: FieldSpec;
    salePrice?: FieldSpec;
    inStock?: FieldSpec;
    currency?: FieldSpec;
  };
  lookups?: Record<string, LookupSpec>;
}

export type Mapping = OrderMapping | ProductMapping;
export type Row = Record<string, string>;
export type LookupTables = Record<string, Map<string, Row>>;

export class MappingError extends Error {}

const orderFields = [
  "kind",
  "orderId",
  "channel",
  "storeId",
  "placedAt",
  "timeZone",
  "currency",
  "identifiers",
  "verified",
  "line",
  "countAsOneUnit",
];
const lineFields = ["productId", "categoryId", "quantity", "unitPrice", "listPrice"];
const productFields = [
  "id",
  "title",
  "categoryId",
  "categoryName",
  "parentCategoryId",
  "url",
  "imageUrl",
  "listPrice",
  "salePrice",
  "inStock",
  "currency",
];
const columnSpecFields = ["column", "lookup", "field", "prefix", "suffix", "padStart", "transform", "default"];
const sumSpecFields = ["sum", "abs", "divideBy", "decimals", "default"];

/**
 * Fails on a key the mapping format does not have: a misspelt one ("storeID", "transfrom") would
 * otherwise be ignored, and its field silently left out of every record.
 */
function onlyKnownKeys(
  value: Record<string, unknown>,
  known: readonly string[],
  where: string,
  fail: (message: string) => never,
): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key) || key.startsWith("$")) continue; // "$comment" and the like: notes for people.
    const near = known.find((name) => name.toLowerCase() === key.toLowerCase());
    fail(
      `unknown key "${key}" in ${where}${near ? ` (did you mean "${near}"?)` : ""}; the keys there are ${known.join(", ")}`,
    );
  }
}

/** Checks a parsed mapping file's shape, naming the first problem. */
export function parseMapping(json: unknown): Mapping {
  const fail = (message: string): never => {
    throw new MappingError(`Invalid mapping: ${message}`);
  };
  if (!json || typeof json !== "object") fail("expected a JSON object");
  const mapping = json as Record<string, unknown>;
  const requireSpec = (value: unknown, name: string) => {
    if (value === undefined) fail(`"${name}" is required`);
    checkSpec(value, name, fail);
  };
  if (mapping.kind === "orders") {
    onlyKnownKeys(mapping, [...orderFields, "lookups"], "the mapping", fail);
    for (const name of ["orderId", "channel", "placedAt"]) requireSpec(mapping[name], name);
    for (const name of ["storeId", "currency"]) if (mapping[name] !== undefined) checkSpec(mapping[name], name, fail);
    if (mapping.timeZone !== undefined && !knownMappingTimeZone(mapping.timeZone))
      fail(
        `"timeZone" ${JSON.stringify(mapping.timeZone)} is not a time zone this machine knows: give an IANA name such as America/New_York or Europe/Berlin`,
      );
    const identifiers = mapping.identifiers as Record<string, unknown> | undefined;
    if (!identifiers || typeof identifiers !== "object" || Object.keys(identifiers).length === 0)
      fail(`"identifiers" must map at least one of ${identifierKinds.join(", ")}`);
    for (const [kind, spec] of Object.entries(identifiers ?? {})) {
      if (!identifierKinds.includes(kind as IdentifierKind)) fail(`unknown identifier kind "${kind}"`);
      checkSpec(spec, `identifiers.${kind}`, fail);
    }
    if (mapping.verified !== undefined) {
      if (!Array.isArray(mapping.verified)) fail(`"verified" must be a list of identifier kinds`);
      for (const kind of (mapping.verified as unknown[]) ?? []) {
        if (typeof kind !== "string" || !(kind in (identifiers ?? {})))
          fail(`"verified" lists ${JSON.stringify(kind)}, which "identifiers" does not map`);
        else if (trustOf(kind as IdentifierKind, true) === null) fail(`a ${kind} cannot be verified`);
      }
    }
    const line = mapping.line as Record<string, unknown> | undefined;
    if (!line || typeof line !== "object") fail(`"line" is required`);
    onlyKnownKeys(line ?? {}, lineFields, `"line"`, fail);
    for (const name of ["productId", "categoryId", "quantity", "unitPrice"]) requireSpec(line?.[name], `line.${name}`);
    if (line?.listPrice !== undefined) checkSpec(line.listPrice, "line.listPrice", fail);
    const oneUnit = mapping.countAsOneUnit as Record<string, unknown> | undefined;
    if (oneUnit !== undefined) {
      if (!oneUnit || typeof oneUnit !== "object") fail(`"countAsOneUnit" must be an object with "when" and "matches"`);
      onlyKnownKeys(oneUnit, ["when", "matches"], `"countAsOneUnit"`, fail);
      requireSpec(oneUnit.when, "countAsOneUnit.when");
      if (typeof oneUnit.matches !== "string" || oneUnit.matches === "")
        fail(`"countAsOneUnit.matches" must be a regular expression, such as "^GASOLINE"`);
      try {
        new RegExp(oneUnit.matches as string);
      } catch (error) {
        fail(`"countAsOneUnit.matches" is not a regular expression: ${(error as Error).message}`);
      }
    }
  } else if (mapping.kind === "products") {
    const product = mapping.product as Record<string, unknown> | undefined;
    if (!product || typeof product !== "object") fail(`"product" is required`);
    onlyKnownKeys(mapping, ["kind", "product", "lookups"], "the mapping", fail);
    onlyKnownKeys(product ?? {}, productFields, `"product"`, fail);
    for (const name of ["id", "title", "categoryId", "listPrice"]) requireSpec(product?.[name], `product.${name}`);
    for (const [name, spec] of Object.entries(product ?? {})) checkSpec(spec, `product.${name}`, fail);
  } else fail(`"kind" must be "orders" or "products"`);
  for (const [name, lookup] of Object.entries((mapping.lookups ?? {}) as Record<string, LookupSpec>)) {
    if (typeof lookup?.file !== "string" || typeof lookup?.key !== "string")
      fail(`lookups.${name} needs "file" and "key"`);
    onlyKnownKeys(lookup as unknown as Record<string, unknown>, ["file", "key"], `lookups.${name}`, fail);
  }
  return json as Mapping;
}

/** A mapping's `timeZone`: a name the runtime's time zone data has (as RETAILER_TIME_ZONE must be). */
function knownMappingTimeZone(timeZone: unknown): boolean {
  return typeof timeZone === "string" && timeZone.trim() !== "" && knownTimeZone(timeZone);
}

function checkSpec(spec: unknown, name: string, fail: (message: string) => never): void {
  if (typeof spec === "string") return;
  if (!spec || typeof spec !== "object") fail(`"${name}" must be a column name or an object`);
  const value = spec as Record<string, unknown>;
  if ("value" in value) {
    onlyKnownKeys(value, ["value"], `"${name}"`, fail);
    return;
  }
  if (Array.isArray(value.sum)) {
    onlyKnownKeys(value, sumSpecFields, `"${name}"`, fail);
    if (value.default !== undefined && !(typeof value.default === "number" && Number.isFinite(value.default)))
      fail(`"${name}": a sum's "default" is the number an empty cell counts as, such as 0`);
    return;
  }
  if (typeof value.column !== "string") fail(`"${name}" needs "column", "value" or "sum"`);
  onlyKnownKeys(value, columnSpecFields, `"${name}"`, fail);
  if (value.lookup !== undefined && typeof value.field !== "string") fail(`"${name}" uses a lookup without "field"`);
  if (value.transform !== undefined && !transforms.includes(value.transform as Transform))
    fail(
      `"${name}" has an unknown transform ${JSON.stringify(value.transform)}; the transforms are ${transforms.join(", ")}`,
    );
}

/** Every column a mapping reads from the input rows (lookup fields excluded), for a header check. */
export function columnsUsed(mapping: Mapping): string[] {
  const columns = new Set<string>();
  const visit = (spec: FieldSpec | undefined) => {
    if (spec === undefined) return;
    if (typeof spec === "string") columns.add(spec);
    else if ("sum" in spec) {
      for (const column of spec.sum) columns.add(column);
      if (spec.divideBy) columns.add(spec.divideBy);
    } else if ("column" in spec) columns.add(spec.column);
  };
  if (mapping.kind === "orders") {
    for (const spec of [mapping.orderId, mapping.channel, mapping.storeId, mapping.placedAt, mapping.currency])
      visit(spec);
    for (const spec of Object.values(mapping.identifiers)) visit(spec);
    for (const spec of Object.values(mapping.line)) visit(spec);
    visit(mapping.countAsOneUnit?.when);
  } else for (const spec of Object.values(mapping.product)) visit(spec);
  return [...columns];
}

/** Lookup name → the fields the mapping reads from it. */
export function lookupFieldsUsed(mapping: Mapping): Map<string, Set<string>> {
  const used = new Map<string, Set<string>>();
  const specs =
    mapping.kind === "orders"
      ? [
          mapping.orderId,
          mapping.channel,
          mapping.storeId,
          mapping.placedAt,
          mapping.currency,
          ...Object.values(mapping.identifiers),
          ...Object.values(mapping.line),
          mapping.countAsOneUnit?.when,
        ]
      : Object.values(mapping.product);
  for (const spec of specs)
    if (spec && typeof spec === "object" && "column" in spec && spec.lookup && spec.field)
      used.set(spec.lookup, (used.get(spec.lookup) ?? new Set()).add(spec.field));
  return used;
}

export type FieldValue = string | number | boolean | null;

/**
 * One field's value for a row; throws `MappingError` with the field name when a value cannot be read.
 * `timeZone`: the clock a `datetime` written without an offset is read on.
 */
export function readField(
  spec: FieldSpec,
  row: Row,
  lookups: LookupTables,
  name: string,
  timeZone = "UTC",
): FieldValue {
  // An empty cell is no value, as in the `{ "column" }` form: a web order's empty store cell is no store.
  if (typeof spec === "string") {
    const text = requireColumn(row, spec, name);
    return text.trim() === "" ? null : text;
  }
  if ("value" in spec) return spec.value;
  if ("sum" in spec) {
    const cells = spec.sum.map((column) => ({ column, text: requireColumn(row, column, name) }));
    // Every cell empty and no default: no value, which a field an order needs refuses by name.
    if (spec.default === undefined && cells.every(({ text }) => text.trim() === "")) return null;
    let total = 0;
    for (const { column, text } of cells) {
      if (text.trim() === "" && spec.default === undefined)
        throw new MappingError(
          `${name} (${column}): the cell is empty (give the sum a "default", such as 0 for a discount left blank, if that is right)`,
        );
      const term = text.trim() === "" ? (spec.default as number) : parseNumber(text, `${name} (${column})`);
      total += spec.abs ? Math.abs(term) : term;
    }
    if (spec.divideBy) {
      const divisor = parseNumber(requireColumn(row, spec.divideBy, name), `${name} (${spec.divideBy})`);
      if (divisor === 0) throw new MappingError(`${name}: ${spec.divideBy} is zero`);
      total /= divisor;
    }
    const factor = 10 ** (spec.decimals ?? 4);
    return Math.round(total * factor) / factor;
  }
  let raw: string | undefined = requireColumn(row, spec.column, name);
  if (spec.lookup) {
    const table = lookups[spec.lookup];
    if (!table) throw new MappingError(`${name}: lookup "${spec.lookup}" is not loaded`);
    const found = table.get(raw);
    raw = found && Object.hasOwn(found, spec.field ?? "") ? found[spec.field ?? ""] : undefined;
  }
  if (raw === undefined || raw.trim() === "") {
    if (spec.default !== undefined) return spec.default;
    if (spec.lookup) throw new MappingError(`${name}: no "${spec.field}" in lookup "${spec.lookup}" for this row`);
    return null;
  }
  const transformed = spec.transform ? applyTransform(spec.transform, raw, name, timeZone) : raw;
  if (typeof transformed !== "string") return transformed;
  const padded = spec.padStart ? transformed.padStart(spec.padStart, "0") : transformed;
  return `${spec.prefix ?? ""}${padded}${spec.suffix ?? ""}`;
}

function requireColumn(row: Row, column: string, name: string): string {
  // Own columns only: a column named "constructor" is not every row's Object.prototype member.
  const value = Object.hasOwn(row, column) ? row[column] : undefined;
  if (value === undefined) throw new MappingError(`${name}: the input has no column "${column}"`);
  return value;
}

/**
 * A field an order or product needs, read from the row: an empty cell (and no `default`) stops the
 * run naming the field, rather than sending "" or 0 (an empty price was a line at 0).
 */
function requireValue(
  spec: FieldSpec,
  row: Row,
  lookups: LookupTables,
  name: string,
  timeZone = "UTC",
): string | number | boolean {
  const value = readField(spec, row, lookups, name, timeZone);
  if (value === null || (typeof value === "string" && value.trim() === ""))
    throw new MappingError(`${name}: the cell is empty (give the mapping a "default" if that is right)`);
  return value;
}

export function applyTransform(transform: Transform, raw: string, name = "value", timeZone = "UTC"): FieldValue {
  switch (transform) {
    case "trim":
      return raw.trim();
    case "lower":
      return raw.trim().toLowerCase();
    case "upper":
      return raw.trim().toUpperCase();
    case "slug":
      return slugify(raw);
    case "title":
      return titleCase(raw);
    case "number":
      return parseNumber(raw, name);
    case "integer": {
      const number = parseNumber(raw, name);
      if (!Number.isInteger(number)) throw new MappingError(`${name}: "${raw}" is not a whole number`);
      return number;
    }
    case "boolean": {
      // Only what plainly says yes or no: an export's own wording ("In Stock") guessed as false would
      // take products off every shelf in silence.
      const word = raw.trim().toLowerCase();
      if (/^(1|true|yes|y|t|on)$/.test(word)) return true;
      if (/^(0|false|no|n|f|off)$/.test(word)) return false;
      throw new MappingError(
        `${name}: "${raw}" is not a yes or no (1/0, true/false, yes/no, y/n, t/f, on/off); map other words with a lookup`,
      );
    }
    case "datetime":
      return toIsoInstant(raw, name, timeZone);
    default:
      throw new MappingError(`${name}: unknown transform ${JSON.stringify(transform)}`);
  }
}

export function slugify(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/&/g, " and ")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

export function titleCase(text: string): string {
  return text
    .trim()
    .replace(/\s+/g, " ")
    .toLowerCase()
    .replace(/(^|[\s/(-])([a-z])/g, (_, before: string, letter: string) => before + letter.toUpperCase());
}

function parseNumber(raw: string, name: string): number {
  const number = Number(raw.trim());
  if (raw.trim() === "" || !Number.isFinite(number)) throw new MappingError(`${name}: "${raw}" is not a number`);
  return number;
}

/** Whether the text's calendar date exists: Date.parse takes 2026-02-30 as 2 March, not as an error. */
function realDate(text: string): boolean {
  const [year, month, day] = text.slice(0, 10).split("-").map(Number) as [number, number, number];
  // The month's last day (setUTCFullYear: Date.UTC would read years 0–99 as 1900–1999).
  const last = new Date(0);
  last.setUTCFullYear(year, month, 0);
  return month >= 1 && month <= 12 && day >= 1 && day <= last.getUTCDate();
}

/**
 * An ISO instant in UTC (`2017-01-28T19:06:53Z`). Accepts offsets written `-0500` (common in exports,
 * not ISO 8601 extended form) or `+01` (whole hours), a space for the `T` and bare dates (midnight). A date-time without an
 * offset is read on the clock of `timeZone` (an IANA name, daylight saving included; a time a clock
 * change skips reads as the hour after). Nothing else: `05/03/2026` is the 3rd of May in one export
 * and the 5th of March in another, and the JavaScript engine would read it month first, in the
 * importing machine's time zone.
 */
export function toIsoInstant(raw: string, name = "value", timeZone = "UTC"): string {
  let text = raw.trim().replace(" ", "T");
  text = text.replace(/([+-])(\d{2})(\d{2})$/, "$1$2:$3");
  // An offset of whole hours after a time (`+01`, ISO 8601's short form): how PostgreSQL writes a
  // timestamptz (`2026-03-14 10:22:00+01`), so a database export reads as written.
  text = text.replace(/(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?[+-]\d{2})$/i, "$1:00");
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) text += "T00:00:00";
  const local = /T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/i.test(text);
  if (local) text += "Z";
  const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(text);
  let ms = iso && realDate(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms))
    throw new MappingError(
      `${name}: "${raw}" is not a date-time (ISO 8601 is read: 2026-03-05, 2026-03-05 10:00:00, 2026-03-05T10:00:00-0500)`,
    );
  if (local && timeZone !== "UTC") {
    // The wall-clock time read as UTC above, placed on the export's clock.
    const wall = new Date(ms);
    ms = new TZDate(
      wall.getUTCFullYear(),
      wall.getUTCMonth(),
      wall.getUTCDate(),
      wall.getUTCHours(),
      wall.getUTCMinutes(),
      wall.getUTCSeconds(),
      wall.getUTCMilliseconds(),
      timeZone,
    ).getTime();
  }
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

export interface MappedLine {
  orderId: string;
  header: Omit<WireOrder, "lines">;
  /** Null when the row is skipped (zero or negative quantity): counted, not sent. */
  line: WireOrderLine | null;
  skipReason?: string;
  /** True when `countAsOneUnit` made the line one unit. */
  countedAsOneUnit?: true;
}

const patterns = new Map<string, RegExp>();
const patternOf = (source: string): RegExp => {
  const known = patterns.get(source);
  if (known) return known;
  const pattern = new RegExp(source);
  patterns.set(source, pattern);
  return pattern;
};

export function mapOrderRow(mapping: OrderMapping, row: Row, lookups: LookupTables = {}): MappedLine {
  const text = (spec: FieldSpec | undefined, name: string): string | null => {
    if (spec === undefined) return null;
    const value = readField(spec, row, lookups, name);
    return value === null ? null : String(value);
  };
  const orderId = text(mapping.orderId, "orderId");
  if (!orderId) throw new MappingError("orderId: empty");
  const identifiers: Identifiers = {};
  for (const [kind, spec] of Object.entries(mapping.identifiers)) {
    const value = text(spec, `identifiers.${kind}`);
    if (value !== null && value !== "")
      identifiers[kind as IdentifierKind] = mapping.verified?.includes(kind as IdentifierKind)
        ? { value, verified: true }
        : value;
  }
  // Without a currency the worker takes the shop's (RETAILER_CURRENCY); with one, it must be the shop's.
  const currency = text(mapping.currency, "currency");
  const header: Omit<WireOrder, "lines"> = {
    id: orderId,
    channel: String(requireValue(mapping.channel, row, lookups, "channel")) as Channel,
    storeId: text(mapping.storeId, "storeId"),
    placedAt: toIsoInstant(
      String(requireValue(mapping.placedAt, row, lookups, "placedAt", mapping.timeZone)),
      "placedAt",
      mapping.timeZone,
    ),
    ...(currency === null ? {} : { currency }),
    identifiers,
    recommendationId: null,
  };
  const quantityValue = requireValue(mapping.line.quantity, row, lookups, "line.quantity");
  const quantity = typeof quantityValue === "number" ? quantityValue : Number(quantityValue);
  if (!Number.isFinite(quantity) || quantity <= 0)
    return { orderId, header, line: null, skipReason: `quantity ${quantityValue}` };
  const oneUnit = mapping.countAsOneUnit;
  const byMeasure =
    oneUnit !== undefined &&
    patternOf(oneUnit.matches).test(String(readField(oneUnit.when, row, lookups, "countAsOneUnit.when") ?? ""));
  // By measure, a price is the line's total: a sum divided by the quantity column read without that
  // division (exact), any other price times the quantity.
  const quantitySpec = mapping.line.quantity;
  // The quantity's own column: not a lookup's key column, which holds no quantity.
  const quantityColumn =
    typeof quantitySpec === "string"
      ? quantitySpec
      : "column" in quantitySpec && !quantitySpec.lookup
        ? quantitySpec.column
        : null;
  const price = (spec: FieldSpec, name: string): FieldValue => {
    if (!byMeasure) return readField(spec, row, lookups, name);
    if (typeof spec === "object" && "sum" in spec && spec.divideBy && spec.divideBy === quantityColumn) {
      const { divideBy: _perUnit, ...total } = spec;
      return readField(total, row, lookups, name);
    }
    const perUnit = readField(spec, row, lookups, name);
    return perUnit === null ? null : Math.round(Number(perUnit) * quantity * 1e4) / 1e4;
  };
  const unitPrice = price(mapping.line.unitPrice, "line.unitPrice");
  if (unitPrice === null || (typeof unitPrice === "string" && unitPrice.trim() === ""))
    throw new MappingError(`line.unitPrice: the cell is empty (give the mapping a "default" if that is right)`);
  const listPrice = mapping.line.listPrice === undefined ? null : price(mapping.line.listPrice, "line.listPrice");
  const line: WireOrderLine = {
    productId: String(requireValue(mapping.line.productId, row, lookups, "line.productId")),
    categoryId: String(requireValue(mapping.line.categoryId, row, lookups, "line.categoryId")),
    quantity: byMeasure ? 1 : quantity,
    unitPrice: Number(unitPrice),
    listPrice: listPrice === null ? Number(unitPrice) : Math.max(Number(listPrice), Number(unitPrice)),
  };
  return byMeasure ? { orderId, header, line, countedAsOneUnit: true } : { orderId, header, line };
}

export function mapProductRow(mapping: ProductMapping, row: Row, lookups: LookupTables = {}): WireProduct {
  const spec = mapping.product;
  const read = (field: FieldSpec | undefined, name: string): FieldValue =>
    field === undefined ? null : readField(field, row, lookups, `product.${name}`);
  const asText = (value: FieldValue) => (value === null ? null : String(value));
  const salePrice = read(spec.salePrice, "salePrice");
  const inStock = read(spec.inStock, "inStock");
  const product: WireProduct = {
    id: String(requireValue(spec.id, row, lookups, "product.id")),
    title: String(requireValue(spec.title, row, lookups, "product.title")),
    categoryId: String(requireValue(spec.categoryId, row, lookups, "product.categoryId")),
    categoryName: asText(read(spec.categoryName, "categoryName")) ?? String(read(spec.categoryId, "categoryId") ?? ""),
    url: asText(read(spec.url, "url")),
    imageUrl: asText(read(spec.imageUrl, "imageUrl")),
    listPrice: Number(requireValue(spec.listPrice, row, lookups, "product.listPrice")),
    salePrice: salePrice === null ? null : Number(salePrice),
    // A column read without a transform is read as the boolean transform reads it (an empty cell, as
    // there, is in stock): a word that is not a yes or a no stops the run rather than take the product
    // off the shelves.
    inStock:
      typeof inStock === "string"
        ? inStock.trim() === "" || applyTransform("boolean", inStock, "product.inStock") === true
        : inStock === null || inStock === true,
  };
  if (spec.parentCategoryId !== undefined)
    product.parentCategoryId = asText(read(spec.parentCategoryId, "parentCategoryId"));
  // Without a currency the worker takes the shop's; with one, it must be the shop's.
  const currency = asText(read(spec.currency, "currency"));
  if (currency !== null && currency !== "") product.currency = currency;
  return product;
}

export interface GroupedOrder {
  order: WireOrder;
  /** 1-based input line numbers of the rows that made this order. */
  lines: number[];
}

export interface GroupingStats {
  rows: number;
  skippedLines: number;
  skipReasons: Record<string, number>;
  /** Orders all of whose lines were skipped: not sent. */
  emptyOrders: number;
  /** Orders none of whose rows named an identifier (an anonymous till sale): not sent, as they belong to no customer. */
  anonymousOrders: number;
  /** The first such order, to name in the note. */
  firstAnonymous?: { orderId: string; line: number };
  /** Lines sold by measure, sent as one unit each (`countAsOneUnit`). */
  countedAsOneUnit: number;
  /** Rows whose order header (date, channel, store, currency, identifiers) differs from their order's first row's. */
  headerConflicts: number;
  /** The first such row, to name in the warning. */
  firstConflict?: HeaderConflict;
  /**
   * Rows sent as lines that repeat an earlier row exactly (their `rowKey`s equal: every cell alike,
   * so of the same order too): an export glitch, a file concatenated twice or a doubling join, or a
   * till's line per unit. Kept as lines of their own unless `dropRepeatedRows`.
   */
  repeatedRows: number;
  /** The orders holding such rows. */
  ordersWithRepeats: number;
  /** The first such row, to name in the note. */
  firstRepeat?: RepeatedRow;
}

export interface RepeatedRow {
  orderId: string;
  /** The row that repeats and the row it repeats (1-based input lines). */
  line: number;
  firstLine: number;
}

export interface HeaderConflict {
  orderId: string;
  /** The row that differs and the order's first row (1-based input lines). */
  line: number;
  firstLine: number;
  /** The header fields that differ, in wire names. */
  fields: string[];
}

/**
 * The header fields in which `b` contradicts `a`: both have a value and the values differ (identifiers
 * kind by kind). A cell left empty on a later line is no contradiction: many exports fill an order's
 * own columns (email, currency, store) on its first line only.
 */
function differingFields(a: Omit<WireOrder, "lines">, b: Omit<WireOrder, "lines">): string[] {
  const filled = (value: unknown) => value !== null && value !== undefined && value !== "";
  const differs = (x: unknown, y: unknown) => filled(x) && filled(y) && JSON.stringify(x) !== JSON.stringify(y);
  const fields: string[] = (["channel", "storeId", "placedAt", "currency"] as const).filter((key) =>
    differs(a[key], b[key]),
  );
  const ids = a.identifiers as Record<string, unknown>;
  const others = b.identifiers as Record<string, unknown>;
  if (Object.keys(others).some((kind) => differs(ids[kind], others[kind]))) fields.push("identifiers");
  return fields;
}

/**
 * One mapped row to group. `rowKey` stands for the row's cells, every column (the reader's digest of
 * them): two rows with the same key are the same row repeated. Without one a row is never a repeat.
 */
export interface RowToGroup {
  mapped: MappedLine;
  line: number;
  rowKey?: string;
}

/**
 * Groups mapped rows into orders by order id, in order of first appearance (so batches, and with
 * them resumable runs, are the same every time the same file is read). Rows of one order need not
 * be adjacent; the header fields come from the order's first row. A later row with another header (a
 * receipt number reused by another store or day, say) is counted in `headerConflicts`: the caller
 * warns, since merging it puts one purchase under another's customer and date. A row that repeats an
 * earlier one exactly, wherever it is in the file, is counted in `repeatedRows` and kept as a line of
 * its own (a till may write a line per unit), or left out with `dropRepeatedRows` (a file exported
 * or joined twice would otherwise double its orders' lines and totals).
 */
export function groupOrderLines(
  rows: Iterable<RowToGroup>,
  options: { dropRepeatedRows?: boolean } = {},
): {
  orders: GroupedOrder[];
  stats: GroupingStats;
} {
  const byId = new Map<string, GroupedOrder>();
  // Row key → the line it was first seen on. Only rows sent as lines: a repeated skipped row adds nothing.
  const seenRows = new Map<string, number>();
  const ordersWithRepeats = new Set<string>();
  const stats: GroupingStats = {
    rows: 0,
    skippedLines: 0,
    skipReasons: {},
    emptyOrders: 0,
    anonymousOrders: 0,
    countedAsOneUnit: 0,
    headerConflicts: 0,
    repeatedRows: 0,
    ordersWithRepeats: 0,
  };
  for (const { mapped, line, rowKey } of rows) {
    stats.rows++;
    if (mapped.line && rowKey !== undefined) {
      const firstLine = seenRows.get(rowKey);
      if (firstLine === undefined) seenRows.set(rowKey, line);
      else {
        stats.repeatedRows++;
        ordersWithRepeats.add(mapped.orderId);
        stats.firstRepeat ??= { orderId: mapped.orderId, line, firstLine };
        // Its order is already grouped from the row it repeats, header and all: nothing else to take.
        if (options.dropRepeatedRows) continue;
      }
    }
    let grouped = byId.get(mapped.orderId);
    if (!grouped) {
      grouped = { order: { ...mapped.header, lines: [] }, lines: [] };
      byId.set(mapped.orderId, grouped);
    } else {
      const { lines: _, ...header } = grouped.order;
      const fields = differingFields(header, mapped.header);
      if (fields.length > 0) {
        stats.headerConflicts++;
        stats.firstConflict ??= { orderId: mapped.orderId, line, firstLine: grouped.lines[0] ?? line, fields };
      }
      fillEmptyFields(grouped.order, mapped.header);
    }
    grouped.lines.push(line);
    if (mapped.countedAsOneUnit) stats.countedAsOneUnit++;
    if (mapped.line) grouped.order.lines.push(mapped.line);
    else {
      stats.skippedLines++;
      const reason = mapped.skipReason ?? "skipped";
      stats.skipReasons[reason] = (stats.skipReasons[reason] ?? 0) + 1;
    }
  }
  stats.ordersWithRepeats = ordersWithRepeats.size;
  const orders: GroupedOrder[] = [];
  for (const grouped of byId.values()) {
    if (grouped.order.lines.length === 0) stats.emptyOrders++;
    else if (Object.keys(grouped.order.identifiers).length === 0) {
      stats.anonymousOrders++;
      stats.firstAnonymous ??= { orderId: grouped.order.id, line: grouped.lines[0] ?? 0 };
    } else orders.push(grouped);
  }
  return { orders, stats };
}

/**
 * Fills the order's store, currency and identifiers (kind by kind) that its rows so far left empty from
 * a later row that has them: an export that names the customer on one line of the receipt only (not
 * always the first) still gives the order its customer.
 */
function fillEmptyFields(order: WireOrder, later: Omit<WireOrder, "lines">): void {
  const empty = (value: unknown) => value === null || value === undefined || value === "";
  if (empty(order.storeId) && !empty(later.storeId)) order.storeId = later.storeId;
  if (empty(order.currency) && !empty(later.currency)) order.currency = later.currency;
  for (const [kind, value] of Object.entries(later.identifiers) as [IdentifierKind, Identifiers[IdentifierKind]][])
    if (order.identifiers[kind] === undefined && value !== undefined) order.identifiers[kind] = value;
}
