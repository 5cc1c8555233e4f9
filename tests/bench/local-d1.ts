// A fresh local D1 for the benchmarks that load data directly (through wrangler's platform proxy, the
// same local database `wrangler dev` then serves), and the bytes per table and index of it, from
// SQLite's dbstat (the sqlite3 CLI reads the file wrangler keeps under the persist folder).
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { getPlatformProxy } from "wrangler";
import { applyMigrations } from "../fixtures/wrangler-dev.ts";

const root = path.resolve(import.meta.dirname, "../..");

/**
 * A new persist folder (`patron-<name>-…` in the temporary directory; the caller removes it) with every
 * migration applied, and the platform proxy's D1 binding on it (the caller disposes of it).
 */
export async function freshLocalD1(name: string) {
  const persistDir = mkdtempSync(path.join(tmpdir(), `patron-${name}-`));
  await applyMigrations(persistDir);
  return { persistDir, proxy: await openLocalD1(persistDir) };
}

/** The platform proxy's D1 binding on a persist folder freshLocalD1 made (the caller disposes of it). */
export function openLocalD1(persistDir: string) {
  return getPlatformProxy<{ DB: D1Database }>({
    configPath: path.join(root, "wrangler.toml"),
    persist: { path: path.join(persistDir, "v3") },
  });
}

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
