// Merging the answers of every customer shard into the one answer the single database gives: each
// shard returns its own rows already sorted as the query asks (and at most as many as the page needs),
// so the first rows of the whole store are the first rows of a k-way merge of the shards' lists.
// Pure: the routes that fan out to the shards call these with the shards' rows.

/** A value SQLite sorts: NULL first, then numbers, then text (a column's values here are one of them). */
export type SortValue = number | string | null;

const typeRank = (value: SortValue) => (value === null ? 0 : typeof value === "number" ? 1 : 2);

/**
 * SQLite's ascending order of two values (NULLs first, numbers before text, text by code unit, as the
 * BINARY collation orders the ASCII the sort columns and ids hold).
 */
export function compareSqlValues(a: SortValue, b: SortValue): number {
  const byType = typeRank(a) - typeRank(b);
  if (byType !== 0 || a === null || b === null) return byType;
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

/** One term of an ORDER BY: the value a row sorts by, and its direction. */
export type OrderTerm<T> = readonly [value: (row: T) => SortValue, direction: "asc" | "desc"];

/** The order of `ORDER BY <term>, <term> …` in SQLite, as a comparator. */
export function sqlOrder<T>(...terms: readonly OrderTerm<T>[]) {
  return (a: T, b: T): number => {
    for (const [value, direction] of terms) {
      const order = compareSqlValues(value(a), value(b));
      if (order !== 0) return direction === "desc" ? -order : order;
    }
    return 0;
  };
}

/**
 * The first `limit` rows of the union of `lists`, each already sorted by `compare`, in that order. Ties
 * between lists keep the lower list first, so the result is deterministic. Reads each list once, from
 * the front (k heads compared per row: k is the shard count, small next to a page).
 */
export function mergeSorted<T>(lists: readonly (readonly T[])[], compare: (a: T, b: T) => number, limit: number): T[] {
  const heads = lists.map(() => 0);
  const merged: T[] = [];
  while (merged.length < limit) {
    let best: { list: number; row: T } | undefined;
    lists.forEach((list, i) => {
      const head = heads[i] ?? 0;
      if (head >= list.length) return;
      const row = list[head] as T;
      if (best === undefined || compare(row, best.row) < 0) best = { list: i, row };
    });
    if (best === undefined) break;
    merged.push(best.row);
    heads[best.list] = (heads[best.list] ?? 0) + 1;
  }
  return merged;
}

/**
 * Rows grouped by a key and summed, as `GROUP BY` over the union of every shard's groups: `key(row)`
 * names a group, `add` folds one shard's row into the group's total so far (the first row starts it).
 */
export function sumGroups<T>(lists: readonly (readonly T[])[], key: (row: T) => string, add: (total: T, row: T) => T) {
  const groups = new Map<string, T>();
  for (const list of lists)
    for (const row of list) {
      const name = key(row);
      const total = groups.get(name);
      groups.set(name, total === undefined ? row : add(total, row));
    }
  return [...groups.values()];
}
