// `npm run db:generate [-- --name <short>]`: drizzle-kit generate for each database (db/databases.ts),
// with the same arguments. A database whose schema did not change gets no migration. Then the customer
// shards' list of the main database's migrations (cli/shard-migrations.ts) is rewritten.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { databases } from "../db/databases.ts";

const root = path.resolve(import.meta.dirname, "..");
for (const database of databases) {
  console.log(`${database.name} (${database.schema}):`);
  execFileSync(
    path.join(root, "node_modules/.bin/drizzle-kit"),
    ["generate", "--config", database.config, ...process.argv.slice(2)],
    { cwd: root, stdio: "inherit" },
  );
}
execFileSync(process.execPath, ["--import", "tsx", path.join(root, "cli/shard-migrations.ts")], {
  cwd: root,
  stdio: "inherit",
});
