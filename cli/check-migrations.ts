// Fails when db/schema.ts and db/migrations disagree: drizzle-kit generates into a scratch copy of the
// migrations folder, and any new migration there means the schema changed without one being committed.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
// drizzle-kit takes --out relative to the project, so the scratch copy lives under .wrangler/.
mkdirSync(path.join(root, ".wrangler"), { recursive: true });
const scratch = mkdtempSync(path.join(root, ".wrangler/migrations-check-"));
try {
  cpSync(path.join(root, "db/migrations"), scratch, { recursive: true });
  const before = new Set(readdirSync(scratch));
  execFileSync(
    path.join(root, "node_modules/.bin/drizzle-kit"),
    [
      "generate",
      "--dialect",
      "sqlite",
      "--schema",
      "db/schema.ts",
      "--out",
      path.relative(root, scratch),
      "--name",
      "pending",
    ],
    { cwd: root, stdio: "pipe" },
  );
  const added = readdirSync(scratch).filter((file) => !before.has(file));
  if (added.length > 0) {
    console.error(`db/schema.ts has changes with no migration (${added.join(", ")}). Run: npm run db:generate`);
    process.exit(1);
  }
  console.log("db/schema.ts and db/migrations agree.");
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
