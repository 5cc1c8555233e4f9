// What a migration's catch-up pass scans in D1 for the customers changed since the pass before it
// (worker/shards/migrate.ts): a table and the column naming the customer, in the order scanned. The
// pass's `collect` cursor is `<index in this list>:<last rowid read>`.
export const changeScans = [
  { table: "customers", customer: "id" },
  { table: "orders", customer: "customer_id" },
  { table: "identities", customer: "customer_id" },
  { table: "identity_merges", customer: "from_customer_id" },
  { table: "identity_merges", customer: "into_customer_id" },
  { table: "customer_summaries", customer: "customer_id" },
  { table: "customer_scores", customer: "customer_id" },
  { table: "customer_category_lapses", customer: "customer_id" },
  { table: "stage_transitions", customer: "customer_id" },
  { table: "customer_browse", customer: "customer_id" },
] as const;

export type ChangeScanTable = (typeof changeScans)[number]["table"];

/** The table a collect cursor is at (the last one once past the end). */
export function scannedTable(cursor: string | null): ChangeScanTable {
  const index = Number((cursor ?? "0").split(":")[0]) || 0;
  return changeScans[Math.min(index, changeScans.length - 1)]?.table ?? "customers";
}
