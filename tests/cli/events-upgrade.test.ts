// Upgrading a single-database deployment: a local D1 migrated only up to the last migration before the
// events database, holding widget events in its `events` table, is then started as the new version
// (`wrangler dev` with every migration of both databases applied, as `npm run deploy` applies them).
// The migration keeps the rows (renamed `legacy_events`), and the nightly job moves them into the events
// database and rolls recent browsing up, dropping what is past retention.
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postSeedData } from "../../cli/seed-demo.ts";
import { type DevWorker, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import { queryLocalD1 } from "../widget/harness.ts";

const root = path.resolve(import.meta.dirname, "../..");
const wrangler = path.join(root, "node_modules/.bin/wrangler");
const run = promisify(execFile);
const quietEnv = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" };
const day = 86_400_000;
/** The first migration of the events database's release: everything before it is the old version. */
const eventsMigration = "0011_events_db.sql";

let scratch: string;
let persistDir: string;
let worker: DevWorker | undefined;

/** wrangler.toml as the old version had it: the main database, its migrations up to before the events database. */
function oldConfig(): string {
  const migrations = path.join(scratch, "migrations");
  mkdirSync(migrations);
  for (const file of readdirSync(path.join(root, "db/migrations"))
    .filter((name) => name.endsWith(".sql"))
    .sort()) {
    if (file >= eventsMigration) break;
    cpSync(path.join(root, "db/migrations", file), path.join(migrations, file));
  }
  const config = readFileSync(path.join(root, "wrangler.toml"), "utf8")
    .replace('main = "worker/index.ts"', `main = "${path.join(root, "worker/index.ts")}"`)
    .replace('migrations_dir = "db/migrations"', `migrations_dir = "${migrations}"`)
    .replace('directory = "./dist/public"', `directory = "${path.join(root, "dist/public")}"`);
  const file = path.join(scratch, "wrangler.toml");
  writeFileSync(file, config);
  return file;
}

async function oldVersionSql(config: string, command: string) {
  await run(
    wrangler,
    ["d1", "execute", "DB", "--local", "--persist-to", persistDir, "--config", config, "--command", command],
    {
      cwd: root,
      env: quietEnv,
    },
  );
}

beforeAll(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), "patron-upgrade-"));
  persistDir = path.join(scratch, "state");
  const config = oldConfig();
  await run(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir, "--config", config], {
    cwd: root,
    env: quietEnv,
  });
  const at = (days: number) => new Date(Date.now() - days * day).toISOString();
  await oldVersionSql(
    config,
    [
      `INSERT INTO customers (id, created_at, updated_at) VALUES ('c_upgrade', '${at(30)}', '${at(30)}');`,
      "INSERT INTO events (type, recommendation_id, arm, customer_id, product_id, category_id, at, dedupe_key) VALUES",
      `('view', NULL, NULL, 'c_upgrade', 'tea-1', 'tea', '${at(2)}', 'up-view'),`,
      `('click', 'rid-up', 'personalized', 'c_upgrade', 'tea-2', 'tea', '${at(3)}', 'up-click'),`,
      `('impression', 'rid-up', 'personalized', 'c_upgrade', 'tea-2', NULL, '${at(3)}', 'up-impression'),`,
      `('view', NULL, NULL, 'c_upgrade', 'tea-3', 'tea', '${at(500)}', 'up-expired');`,
    ].join(" "),
  );
  worker = await startDevWorker({ persistDir, timeoutMs: 120_000 });
  // Some customers with orders, so the nightly job has models to fit before its events steps.
  await postSeedData({ url: worker.url, apiKey: testSecrets.PATRON_API_KEY, customers: 40 });
}, 300_000);

afterAll(async () => {
  await worker?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("upgrading a single-database deployment", () => {
  it("keeps the old events, then the nightly job moves them into the events database", async () => {
    expect(
      await queryLocalD1<{ dedupe_key: string }>(
        persistDir,
        "SELECT dedupe_key FROM legacy_events ORDER BY dedupe_key",
      ),
    ).toEqual([
      { dedupe_key: "up-click" },
      { dedupe_key: "up-expired" },
      { dedupe_key: "up-impression" },
      { dedupe_key: "up-view" },
    ]);

    const response = await fetch(`${worker!.url}/v1/admin/jobs/nightly?wait=1`, {
      method: "POST",
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    const body = (await response.json()) as { data: { status: string; detail: { events: unknown } } };
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.data.status).toBe("done");
    expect(body.data.detail.events).toMatchObject({ movedLegacyEvents: 4, complete: true });

    expect(await queryLocalD1(persistDir, "SELECT count(*) AS n FROM legacy_events")).toEqual([{ n: 0 }]);
    expect(
      await queryLocalD1(
        persistDir,
        "SELECT dedupe_key, type, arm, customer_id FROM events WHERE dedupe_key LIKE 'up-%' ORDER BY dedupe_key",
        "EVENTS_DB",
      ),
    ).toEqual([
      { dedupe_key: "up-click", type: "click", arm: "personalized", customer_id: "c_upgrade" },
      { dedupe_key: "up-impression", type: "impression", arm: "personalized", customer_id: "c_upgrade" },
      { dedupe_key: "up-view", type: "view", arm: null, customer_id: "c_upgrade" },
    ]);
    expect(
      await queryLocalD1(
        persistDir,
        "SELECT category_id, sum(views) AS views FROM customer_browse WHERE customer_id = 'c_upgrade' GROUP BY 1",
      ),
    ).toEqual([{ category_id: "tea", views: 2 }]);
  }, 180_000);
});
