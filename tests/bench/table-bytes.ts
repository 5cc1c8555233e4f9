// Bytes per table and index of a local D1 database, from SQLite's dbstat (the sqlite3 CLI reads the
// file wrangler keeps under a persist folder): how the benchmarks measure what a row costs on disk.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

/** Bytes per table and index (dbstat), when the sqlite3 CLI is installed; null otherwise. */
export async function tableBytes(persistDir: string): Promise<Record<string, number> | null> {
  const folder = path.join(persistDir, "v3/d1/miniflare-D1DatabaseObject");
  // The main database is the largest after seeding (the events database holds nothing yet), counting
  // its write-ahead log, which may not be checkpointed into the file yet.
  const bytesOf = (name: string) =>
    [name, `${name}-wal`].reduce((sum, file) => {
      const full = path.join(folder, file);
      return sum + (existsSync(full) ? statSync(full).size : 0);
    }, 0);
  const [file] = readdirSync(folder)
    .filter((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite")
    .sort((a, b) => bytesOf(b) - bytesOf(a));
  if (!file) return null;
  try {
    const { stdout } = await promisify(execFile)(
      "sqlite3",
      ["-readonly", "-json", path.join(folder, file), "SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name"],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    const rows = JSON.parse(stdout || "[]") as { name: string; bytes: number }[];
    return Object.fromEntries(rows.sort((a, b) => b.bytes - a.bytes).map((row) => [row.name, row.bytes]));
  } catch {
    return null;
  }
}
