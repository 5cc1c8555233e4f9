// A D1 binding that adds up meta.rows_written of every batch and keeps the last meta.size_after: how
// the benchmarks count the rows a piece of code writes. No Node imports, so the shard benchmark's
// worker uses it too.
export function meteredD1(d1: D1Database) {
  const meter = { rowsWritten: 0, sizeAfter: 0 };
  const binding = new Proxy(d1, {
    get(target, property) {
      if (property === "batch")
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements);
          for (const result of results) {
            meter.rowsWritten += result.meta.rows_written ?? 0;
            meter.sizeAfter = result.meta.size_after ?? meter.sizeAfter;
          }
          return results;
        };
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { binding, meter };
}
