import { spawnSync } from "node:child_process";
import path from "node:path";
import { expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");

it("db/schema.ts and the committed migrations agree", () => {
  const result = spawnSync(process.execPath, ["--import", "tsx", "cli/check-migrations.ts"], {
    cwd: root,
    encoding: "utf8",
  });
  expect(result.stderr).not.toMatch(/no migration/);
  expect(result.status).toBe(0);
}, 60_000);
