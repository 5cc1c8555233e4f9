// Reading input files into records with their line numbers: NDJSON (one wire-format object per
// line) streamed, CSV through a mapping (orders are grouped in memory by order id, since rows of one
// order may be anywhere in the file; sort by order id first if a file is larger than memory). Any
// input may be gzipped (`.gz`).
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { CsvError, parse } from "csv-parse";
import type { WireOrder, WireProduct } from "../../db/seed/wire.ts";
import { openInput, pipeOnward } from "./files.ts";
import {
  columnsUsed,
  type GroupingStats,
  groupOrderLines,
  type LookupTables,
  lookupFieldsUsed,
  type Mapping,
  MappingError,
  mapOrderRow,
  mapProductRow,
  type OrderMapping,
  type ProductMapping,
  type Row,
  type RowToGroup,
} from "./mapping.ts";
import type { SourceRecord } from "./run.ts";

/** The input cannot be used as it is; `line` is the input line at fault, when there is one. */
export class InputError extends Error {
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = "InputError";
  }
}

/** Where a JSON array file's NDJSON can go: beside it, under another name than its own. */
function ndjsonName(file: string): string {
  const base = file.replace(/(\.gz)?$/i, "").replace(/\.(json|ndjson|jsonl)$/i, "");
  return /\.ndjson$/i.test(file) ? `${base}.lines.ndjson` : `${base}.ndjson`;
}

/**
 * Non-empty lines parsed as JSON, with their line numbers. A line that is not a JSON object stops the
 * read; a file that opens with `[` is a JSON array, not NDJSON, and is said to be one.
 */
export async function* readNdjson<T>(file: string): AsyncGenerator<SourceRecord<T>> {
  const lines = createInterface({ input: openInput(file).setEncoding("utf8"), crlfDelay: Number.POSITIVE_INFINITY });
  let number = 0;
  let first = true;
  for await (const text of lines) {
    number++;
    if (text.trim() === "") continue;
    if (first && text.trimStart().startsWith("["))
      throw new InputError(
        `${file}:${number}: a JSON array; patron import reads NDJSON, one JSON object per line. Convert it first, e.g. jq -c '.[]' ${file} > ${ndjsonName(file)}`,
        number,
      );
    first = false;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new InputError(`${file}:${number}: not valid JSON (${(error as Error).message})`, number);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value))
      throw new InputError(`${file}:${number}: not a JSON object (one record per line)`, number);
    yield { value: value as T, lines: [number] };
  }
}

/** Non-empty lines in a file, without parsing: the progress bar's total. */
export async function countNonEmptyLines(file: string): Promise<number> {
  let count = 0;
  let lineHasContent = false;
  for await (const chunk of openInput(file)) {
    for (const byte of chunk as Buffer) {
      if (byte === 10) {
        if (lineHasContent) count++;
        lineHasContent = false;
      } else if (byte !== 13 && byte !== 32) lineHasContent = true;
    }
  }
  return lineHasContent ? count + 1 : count;
}

/** CSV rows as objects keyed by header, with the line number each record ends on. A malformed row stops the read. */
export async function* readCsvRows(file: string): AsyncGenerator<{ row: Row; line: number }> {
  const parser = pipeOnward(
    openInput(file),
    parse({ columns: true, bom: true, skip_empty_lines: true, trim: true, info: true, relax_column_count: false }),
  );
  // The line the last record read ended on (the header's, before the first).
  let last = 1;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: Row; info: { lines: number } }>) {
      last = info.lines;
      yield { row: record, line: info.lines };
    }
  } catch (error) {
    // An unclosed quote is found at the end of the file, and csv-parse names that line: the quote
    // opened in the record after the last one read.
    if (error instanceof CsvError && error.code === "CSV_QUOTE_NOT_CLOSED")
      throw new InputError(
        `${file}: a quote opened on line ${last + 1} or after is never closed (the file ends inside a quoted field)`,
      );
    // csv-parse's own words name the line ("Invalid Record Length: … on line 2"); without its stack. A
    // header read as one column holding a ; tab or | is a file delimited otherwise (decimal commas then
    // split its rows): said so.
    if (error instanceof CsvError) {
      const columns = (error as CsvError & { columns?: { name?: string }[] }).columns;
      const only = columns?.length === 1 ? columns[0]?.name : undefined;
      throw new InputError(`${file}: ${error.message}${only ? delimiterHint(only) : ""}`);
    }
    throw error;
  }
}

export async function loadLookupTable(file: string, key: string): Promise<Map<string, Row>> {
  const table = new Map<string, Row>();
  for await (const { row, line } of readCsvRows(file)) {
    const value = Object.hasOwn(row, key) ? row[key] : undefined;
    if (value === undefined) throw new InputError(`${file}:${line}: no "${key}" column for the lookup`, line);
    table.set(value, row);
  }
  return table;
}

export async function loadLookups(mapping: Mapping, resolve: (file: string) => string): Promise<LookupTables> {
  const tables: LookupTables = {};
  const fields = lookupFieldsUsed(mapping);
  for (const [name, lookup] of Object.entries(mapping.lookups ?? {})) {
    const file = resolve(lookup.file);
    if (!existsSync(file))
      throw new InputError(
        `No such file: ${file}: the "${name}" lookup is read from ${lookup.file} (or ${lookup.file}.gz) in ${path.dirname(file)} (beside the file imported with --preset, beside the mapping file with --mapping); put it there, or name another file in the mapping's "lookups".`,
      );
    const table = await loadLookupTable(file, lookup.key);
    // A misspelt "field" would read nothing for every row, and its default (or a stop) for all of them.
    const [first] = table.values();
    const missing = first ? [...(fields.get(name) ?? [])].filter((field) => !Object.hasOwn(first, field)) : [];
    if (missing.length > 0)
      throw new InputError(
        `${file}: the mapping reads field(s) ${missing.join(", ")} of lookup "${name}", which the file does not have; its columns are ${Object.keys(first ?? {}).join(", ")}`,
      );
    tables[name] = table;
  }
  return tables;
}

/** For a header read as one column: the delimiter it seems to use instead of a comma, said; else nothing. */
function delimiterHint(header: string): string {
  const delimiter = header.match(/[;\t|]/)?.[0];
  if (!delimiter) return "";
  return `; the header looks delimited by ${delimiter === "\t" ? "tabs" : `"${delimiter}"`}, and the file is read as comma-separated: export it with commas`;
}

function checkHeader(file: string, header: Row, mapping: Mapping): void {
  const missing = columnsUsed(mapping).filter((column) => !Object.hasOwn(header, column));
  if (missing.length === 0) return;
  const columns = Object.keys(header);
  // Column names are matched exactly: say which differ only in case, and a delimiter other than a comma.
  const byCase = missing.flatMap((column) => {
    const found = columns.find((each) => each.toLowerCase() === column.toLowerCase());
    return found ? [`${found} for ${column}`] : [];
  });
  throw new InputError(
    [
      `${file}: the mapping reads column(s) ${missing.join(", ")}, which the file does not have; its columns are ${columns.join(", ")}`,
      byCase.length > 0
        ? `; names are matched exactly, case included (the file has ${byCase.join(", ")}): change the mapping or the header`
        : "",
      columns.length === 1 ? delimiterHint(columns[0] ?? "") : "",
    ].join(""),
  );
}

/** The most unreadable rows of a CSV a stop lists (it counts them all). */
export const unreadableListed = 20;

/**
 * Maps every row of a CSV with `map` (its header checked first), then stops on the rows the mapping
 * could not read: one error naming the first `unreadableListed` by line and counting them all, so an
 * export is fixed in one pass, not a row a run.
 */
async function mapEveryRow(file: string, mapping: Mapping, map: (row: Row, line: number) => void): Promise<void> {
  const listed: { line: number; message: string }[] = [];
  let rows = 0;
  let first = true;
  for await (const { row, line } of readCsvRows(file)) {
    if (first) checkHeader(file, row, mapping);
    first = false;
    try {
      map(row, line);
    } catch (error) {
      if (!(error instanceof MappingError)) throw error;
      rows++;
      if (listed.length < unreadableListed) listed.push({ line, message: `${file}:${line}: ${error.message}` });
    }
  }
  const [firstUnreadable] = listed;
  if (!firstUnreadable) return;
  const more = rows - listed.length;
  const summary =
    rows === 1
      ? []
      : [
          `${rows} rows the mapping cannot read${more > 0 ? ` (the first ${listed.length} above)` : ""}; nothing was sent`,
        ];
  throw new InputError([...listed.map((each) => each.message), ...summary].join("\n"), firstUnreadable.line);
}

/**
 * A row's cells, every column, as a short digest: what tells a row repeated exactly from another line
 * of its order (groupOrderLines). Every column, not only those the mapping reads: a line number or
 * scan time the mapping leaves out still tells two lines of a receipt apart. A digest, not the cells:
 * the rows are not held beside the orders (132 bits, so two different rows never share one in practice).
 */
export function rowKeyOf(row: Row): string {
  return createHash("sha256")
    .update(JSON.stringify(Object.values(row)))
    .digest("base64")
    .slice(0, 22);
}

/**
 * Maps every row and groups them into orders; the rows the mapping cannot read stop the run, each
 * named by its line (the first `unreadableListed`), after every row was read, before anything is sent.
 * `dropRepeatedRows`: a row that repeats an earlier one exactly is left out rather than sent as
 * another line of its order (it is counted either way).
 */
export async function readCsvOrders(
  file: string,
  mapping: OrderMapping,
  lookups: LookupTables,
  options: { dropRepeatedRows?: boolean } = {},
): Promise<{ orders: SourceRecord<WireOrder>[]; stats: GroupingStats }> {
  const mapped: RowToGroup[] = [];
  await mapEveryRow(file, mapping, (row, line) => {
    mapped.push({ mapped: mapOrderRow(mapping, row, lookups), line, rowKey: rowKeyOf(row) });
  });
  const { orders, stats } = groupOrderLines(mapped, options);
  return { orders: orders.map((grouped) => ({ value: grouped.order, lines: grouped.lines })), stats };
}

/**
 * Reads a products CSV once through before anything is sent, mapping every row and keeping none: the
 * rows the mapping cannot read stop the run as an orders CSV's do (a catalog is then streamed, so it
 * is never held whole).
 */
export async function checkCsvProducts(file: string, mapping: ProductMapping, lookups: LookupTables): Promise<void> {
  await mapEveryRow(file, mapping, (row) => {
    mapProductRow(mapping, row, lookups);
  });
}

export async function* readCsvProducts(
  file: string,
  mapping: ProductMapping,
  lookups: LookupTables,
): AsyncGenerator<SourceRecord<WireProduct>> {
  let first = true;
  for await (const { row, line } of readCsvRows(file)) {
    if (first) checkHeader(file, row, mapping);
    first = false;
    try {
      yield { value: mapProductRow(mapping, row, lookups), lines: [line] };
    } catch (error) {
      if (error instanceof MappingError) throw new InputError(`${file}:${line}: ${error.message}`, line);
      throw error;
    }
  }
}
