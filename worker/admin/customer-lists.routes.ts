// The console's customer lists and audience exports (admin key): scored customers filtered by stage,
// value tier, discount sensitivity and lapsing category, sorted, keyset-paged; `format=csv` streams
// the whole list as CSV.
import { Hono } from "hono";
import { csvLine } from "../core/insights/csv.ts";
import type { AppEnv, Db } from "../env.ts";
import { requireAdminKey } from "../http/auth.ts";
import { ApiError } from "../http/errors.ts";
import { queryParams } from "../http/validate.ts";
import { enabledMatchKeys, type MatchKeyName, matchKeyColumn } from "../identity/match-keys.ts";
import { shardedList } from "../shards/console.ts";
import { shardCount } from "../shards/shards.ts";
import { type ListedRow, type ListFilter, listCustomers, type SortColumn } from "./customer-lists.repo.ts";
import { csvHeader, listedCustomerView, matchKeysByCustomer } from "./customer-rows.ts";
import { type CustomerSortKey, customerListQuerySchema, listCursorSchema } from "./insights.schemas.ts";

export { csvHeader };

const columns: Record<CustomerSortKey, SortColumn> = {
  clvAtStake: "clv_at_stake",
  overdueRatio: "overdue_ratio",
  probabilityAlive: "probability_alive",
  expectedNextOrderAt: "expected_next_order_at",
};

/** Rows per D1 read while a CSV streams: D1 allows 1,000 queries per invocation (Workers Paid), 50 on Free. */
const csvPageSize = 5000;

const encodeCursor = (sort: string, row: ListedRow) =>
  btoa(JSON.stringify({ s: sort, v: row.sortValue, id: row.customerId }))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");

function decodeCursor(cursor: string, sort: string): ListFilter["after"] {
  const invalid = (message: string) =>
    new ApiError(400, "invalid_request", `Invalid query parameters: ${message}`, [{ path: ["cursor"], message }]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/")));
  } catch {
    throw invalid("cursor is not one this API returned: pass `next` from the previous page as it is.");
  }
  const result = listCursorSchema.safeParse(parsed);
  if (!result.success)
    throw invalid("cursor is not one this API returned: pass `next` from the previous page as it is.");
  if (result.data.s !== sort)
    throw invalid(
      `cursor belongs to sort=${result.data.s}: keep the same sort while paging, or start again without a cursor.`,
    );
  return { value: result.data.v, customerId: result.data.id };
}

/** Where a list's rows come from: the one database, or every customer shard merged. */
export interface CustomerListSource {
  /** A keyset page of the list: the first `filter.limit` rows after `filter.after`. */
  list(filter: ListFilter): Promise<ListedRow[]>;
  /** The asked match keys of the rows' customers (customer id → match key name → value). */
  matchKeys(rows: readonly ListedRow[], names: readonly MatchKeyName[]): Promise<Map<string, Record<string, string>>>;
}

/** The list read from one database. */
export const databaseList = (db: Db): CustomerListSource => ({
  list: (filter) => listCustomers(db, filter),
  matchKeys: (rows, names) => matchKeysByCustomer(db, rows, names),
});

/**
 * The list as a CSV stream, from the filter's cursor to the end, `pageSize` rows per read (a keyset
 * page each, so memory stays flat), with the asked match keys as extra columns.
 */
export function customerCsv(
  source: CustomerListSource,
  filter: ListFilter,
  names: readonly MatchKeyName[],
  pageSize: number,
): ReadableStream<Uint8Array> {
  let after = filter.after;
  let started = false;
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(encoder.encode(csvLine([...csvHeader, ...names.map((name) => matchKeyColumn[name])])));
      }
      const rows = await source.list({ ...filter, after, limit: pageSize });
      if (rows.length > 0) {
        const keys = names.length ? await source.matchKeys(rows, names) : new Map<string, Record<string, string>>();
        const text = rows
          .map((row) => {
            const v = listedCustomerView(row);
            const matches = keys.get(row.customerId) ?? {};
            return csvLine([...csvHeader.map((name) => v[name]), ...names.map((name) => matches[name] ?? "")]);
          })
          .join("");
        controller.enqueue(encoder.encode(text));
      }
      const last = rows[rows.length - 1];
      if (rows.length < pageSize || !last) controller.close();
      else after = { value: last.sortValue, customerId: last.customerId };
    },
  });
}

export const customerListRoutes = new Hono<AppEnv>().use("*", requireAdminKey).get("/", async (c) => {
  const query = queryParams(c, customerListQuerySchema);
  const descending = query.sort.startsWith("-");
  const filter: ListFilter = {
    stage: query.stage,
    valueTier: query.valueTier,
    discountSensitivity: query.discountSensitivity,
    lapsedCategory: query.lapsedCategory,
    column: columns[query.sort.replace(/^-/, "") as CustomerSortKey],
    descending,
    after: query.cursor ? decodeCursor(query.cursor, query.sort) : undefined,
    limit: query.limit,
  };
  const source = shardCount(c.env) > 0 ? shardedList(c.env) : databaseList(c.var.db);
  const asked = query.matchKeys ?? [];
  if (asked.length > 0) {
    const enabled = enabledMatchKeys(c.env.EXPORT_MATCH_KEYS);
    const problems = [
      ...(query.format !== "csv" ? ["match keys are only exported as CSV: add format=csv"] : []),
      ...asked
        .filter((name) => !enabled.has(name))
        .map((name) => `${name} is not enabled on this deployment (EXPORT_MATCH_KEYS)`),
    ];
    if (problems.length > 0)
      throw new ApiError(
        400,
        "invalid_request",
        `Invalid query parameters: ${problems.join("; ")}.`,
        problems.map((message) => ({ path: ["matchKeys"], message })),
      );
  }

  if (query.format === "csv") {
    const body = customerCsv(source, filter, asked, csvPageSize);
    return new Response(body, {
      headers: {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": `attachment; filename="patron-customers-${c.var.now.toISOString().slice(0, 10)}.csv"`,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Request-Id": c.var.requestId,
      },
    });
  }

  // One row more than asked tells whether there is a next page.
  const rows = await source.list({ ...filter, limit: query.limit + 1 });
  const page = rows.slice(0, query.limit);
  const last = page[page.length - 1];
  return c.json({
    data: {
      customers: page.map(listedCustomerView),
      sort: query.sort,
      // Pass as `cursor` (with the same filters and sort) for the next page; null on the last one.
      next: rows.length > query.limit && last ? encodeCursor(query.sort, last) : null,
    },
  });
});
