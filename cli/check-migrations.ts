// Fails when a database's schema and its migrations disagree (db/databases.ts: db/schema.ts and
// db/migrations, db/events-schema.ts and db/events-migrations): drizzle-kit generates into a scratch
// copy of the migrations folder, and any new migration there means the schema changed without one
// being committed.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { databases } from "../db/databases.ts";

const root = path.resolve(import.meta.dirname, "..");
// drizzle-kit takes --out relative to the project, so the scratch copy lives under .wrangler/.
mkdirSync(path.join(root, ".wrangler"), { recursive: true });

/** The migrations drizzle-kit would add for the schema; none when they agree. */
function pendingMigrations(schema: string, migrations: string): string[] {
  const scratch = mkdtempSync(path.join(root, ".wrangler/migrations-check-"));
  try {
    cpSync(path.join(root, migrations), scratch, { recursive: true });
    const before = new Set(readdirSync(scratch));
    execFileSync(
      path.join(root, "node_modules/.bin/drizzle-kit"),
      [
        "generate",
        "--dialect",
        "sqlite",
        "--schema",
        schema,
        "--out",
        path.relative(root, scratch),
        "--name",
        "pending",
      ],
      { cwd: root, stdio: "pipe" },
    );
    return readdirSync(scratch).filter((file) => !before.has(file));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

let failed = false;
for (const { schema, migrations } of databases) {
  const added = pendingMigrations(schema, migrations);
  if (added.length > 0) {
    console.error(`${schema} has changes with no migration (${added.join(", ")}). Run: npm run db:generate`);
    failed = true;
  } else {
    console.log(`${schema} and ${migrations} agree.`);
  }
}
if (failed) process.exit(1);
