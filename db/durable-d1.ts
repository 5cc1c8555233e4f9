// D1's statement interface (prepare, bind, all, first, run, raw, batch) over a Durable Object's own
// SQLite storage, so the repositories, drizzle's D1 driver and db/batch.ts run unchanged inside a
// customer shard. Both are SQLite: the SQL is the same; only the calling convention differs (D1 is
// reached over the network and answers promises; a Durable Object's database is in-process and
// synchronous). What D1 guarantees is kept: a batch is one transaction (all or nothing), and every
// result carries D1's `meta` (changes, last_row_id, rows_read, rows_written, size_after).
//
// Only usable inside the Durable Object that owns `storage`.

type Value = string | number | ArrayBuffer | null;

/** D1 binds booleans as 1/0 and refuses undefined; the Durable Object's SQL takes neither. */
function bindable(value: unknown, index: number): Value {
  if (value === null || typeof value === "string" || typeof value === "number" || value instanceof ArrayBuffer)
    return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "bigint") return Number(value);
  if (ArrayBuffer.isView(value))
    return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer;
  throw new Error(`D1_TYPE_ERROR: Type '${typeof value}' not supported for value at position ${index + 1}`);
}

interface Executed {
  columns: string[];
  rows: Value[][];
  meta: D1Meta & Record<string, unknown>;
}

function execute(storage: DurableObjectStorage, query: string, params: readonly Value[]): Executed {
  const started = Date.now();
  const cursor = storage.sql.exec(query, ...params);
  // Reading the cursor to the end runs the statement to completion.
  const rows = [...cursor.raw()] as Value[][];
  // Only a statement that wrote has changes to report (reads, the shelf's path, skip the two lookups).
  const wrote = cursor.rowsWritten > 0;
  const changes = wrote ? Number(storage.sql.exec("SELECT changes() AS n").one().n) : 0;
  const lastRowId = wrote ? Number(storage.sql.exec("SELECT last_insert_rowid() AS n").one().n) : 0;
  return {
    columns: cursor.columnNames,
    rows,
    meta: {
      duration: Date.now() - started,
      // Read only when asked for: the size is two PRAGMA statements, and no read on the shelf's path wants it.
      get size_after() {
        return storage.sql.databaseSize;
      },
      rows_read: cursor.rowsRead,
      rows_written: cursor.rowsWritten,
      last_row_id: lastRowId,
      changed_db: wrote,
      changes,
    },
  };
}

function objects({ columns, rows }: Executed): Record<string, Value>[] {
  return rows.map((row) => {
    const object: Record<string, Value> = {};
    for (let i = 0; i < columns.length; i++) object[columns[i] as string] = row[i] ?? null;
    return object;
  });
}

function resultOf(executed: Executed): D1Result<Record<string, Value>> {
  return { success: true, results: objects(executed), meta: executed.meta };
}

class DurableStatement {
  constructor(
    private readonly storage: DurableObjectStorage,
    readonly query: string,
    readonly params: readonly Value[] = [],
  ) {}

  bind(...values: unknown[]): DurableStatement {
    return new DurableStatement(this.storage, this.query, values.map(bindable));
  }

  run(): D1Result<Record<string, Value>> {
    return resultOf(execute(this.storage, this.query, this.params));
  }

  async all() {
    return this.run();
  }

  async first(column?: string) {
    const [row] = objects(execute(this.storage, this.query, this.params));
    if (row === undefined) return null;
    return column === undefined ? row : (row[column] ?? null);
  }

  async raw(options?: { columnNames?: boolean }) {
    const executed = execute(this.storage, this.query, this.params);
    return options?.columnNames ? [executed.columns, ...executed.rows] : executed.rows;
  }
}

/** A D1Database whose statements run on `storage` (a SQLite-backed Durable Object's storage). */
export function durableD1(storage: DurableObjectStorage): D1Database {
  const database = {
    prepare: (query: string) => new DurableStatement(storage, query),
    // One transaction, as D1's batch: a statement that fails rolls back the ones before it. A single
    // statement is atomic by itself, so it runs without opening one (the directory lookup is such).
    // (A batch of reads would need none either, but each statement then opens SQLite's own read
    // transaction: measured with `npm run bench -- profile`, the time moved into it, none was saved.)
    batch: async (statements: DurableStatement[]) =>
      statements.length === 1
        ? [statements[0]!.run()]
        : storage.transactionSync(() => statements.map((statement) => statement.run())),
    exec: async (query: string) => {
      const started = Date.now();
      const count = storage.sql.exec(query).rowsWritten;
      return { count, duration: Date.now() - started };
    },
  };
  // The Sessions API and dump() have no meaning for a database inside the object itself.
  return database as unknown as D1Database;
}
