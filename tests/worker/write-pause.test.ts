// Customer writes paused on D1 for a migration's last pass (`patron shards migrate --pause-writes`):
// order batches, identify calls and erasures answer 503 with Retry-After and write nothing, the import
// consumer sends its batch to the queue again (spending no retry), no nightly run starts, a known shopper's events are recorded without browse days, reads go on,
// and writes go through again once resumed. Where the deployment is on shards already (the
// worker-shards project) the pause is refused and writes go on.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { importResponseSchema } from "../../worker/imports/imports.schemas.ts";
import { importMaxRetries } from "../../worker/imports/retries.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, apiKey, client, uniquePrefix, verified } from "../fixtures/builders.ts";
import { deliver, recordedBatch } from "../fixtures/import-queue.ts";

const api = client(SELF);
const setPause = (paused: boolean) => api.call("POST", "/v1/admin/shards/migrate/writes", { paused }, adminKey);

/** Row counts of every table of a database. */
async function tableCounts(database: D1Database): Promise<Record<string, number>> {
  const { results } = await database
    .prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'",
    )
    .all<{ name: string }>();
  const counts: Record<string, number> = {};
  for (const { name } of results)
    counts[name] = (await database.prepare(`SELECT count(*) AS n FROM "${name}"`).first<{ n: number }>())?.n ?? 0;
  return counts;
}

async function expectPaused(response: Response) {
  const body = (await response.json()) as { error: { code: string; message: string } };
  expect(response.status, JSON.stringify(body)).toBe(503);
  expect(body.error.code).toBe("unavailable");
  expect(body.error.message).toMatch(/paused while this deployment's customer data moves into customer shards/);
  expect(response.headers.get("Retry-After")).toBe("10");
}

describe("customer writes paused for a migration's last pass", () => {
  it("answers 401 without the admin key and 400 for a body without a boolean `paused`", async () => {
    expect((await api.call("POST", "/v1/admin/shards/migrate/writes", { paused: true }, apiKey)).status).toBe(401);
    for (const body of [{}, { paused: "yes" }, { paused: true, extra: 1 }]) {
      const response = await api.call("POST", "/v1/admin/shards/migrate/writes", body, adminKey);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
    }
  });

  it("refuses customer writes on D1 while paused, writing nothing, and takes them again once resumed", async () => {
    const p = uniquePrefix("pause");
    const account = `${p}-ann`;
    const first = await api.postOrders([anOrder({ id: `${p}-1`, identifiers: { account } })]);
    expect(first.status, await first.clone().text()).toBe(200);

    if (shardCount(env) > 0) {
      const refused = await setPause(true);
      expect(refused.status).toBe(409);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/shards already/);
      expect((await api.postOrders([anOrder({ id: `${p}-2`, identifiers: { account } })])).status).toBe(200);
      return;
    }

    // Nothing to pause before a migration is recorded: its full pass runs with writes going on.
    const early = await setPause(true);
    expect(early.status).toBe(404);
    expect(((await early.json()) as { error: { message: string } }).error.message).toMatch(/run patron shards migrate/);
    for (let done = false; !done; ) {
      const step = await api.call("POST", "/v1/admin/shards/migrate", { shards: 2, limit: 500 }, adminKey);
      expect(step.status, await step.clone().text()).toBe(200);
      done = ((await step.json()) as { data: { done: boolean } }).data.done;
    }

    // Opening writes that were never paused changes nothing, and says so.
    const notPaused = await setPause(false);
    expect(notPaused.status).toBe(200);
    expect(((await notPaused.json()) as { data: unknown }).data).toMatchObject({
      writesPausedAt: null,
      wasPausedAt: null,
    });

    const paused = await setPause(true);
    expect(paused.status, await paused.clone().text()).toBe(200);
    const { writesPausedAt, wasPausedAt, pauseSeenWithinSeconds } = (
      (await paused.json()) as {
        data: { writesPausedAt: string; wasPausedAt: string | null; pauseSeenWithinSeconds: number };
      }
    ).data;
    expect(Date.parse(writesPausedAt)).not.toBeNaN();
    expect(wasPausedAt).toBeNull();
    expect(pauseSeenWithinSeconds).toBe(5);
    // Pausing again keeps the first time; the migration's state shows it.
    const again = (await (await setPause(true)).json()) as { data: { writesPausedAt: string; wasPausedAt: string } };
    expect(again.data).toMatchObject({ writesPausedAt, wasPausedAt: writesPausedAt });
    const state = await api.call("GET", "/v1/admin/shards/migrate", undefined, adminKey);
    expect(((await state.json()) as { data: { writesPausedAt: string } }).data.writesPausedAt).toBe(writesPausedAt);

    const { customerId } = ((await (await api.lookup("account", account)).json()) as { data: { customerId: string } })
      .data;
    const before = await tableCounts(env.DB);
    await expectPaused(await api.postOrders([anOrder({ id: `${p}-2`, identifiers: { account } })]));
    await expectPaused(await api.postOrders([anOrder({ id: `${p}-3`, identifiers: { account: `${p}-new` } })]));
    await expectPaused(await api.identify({ account, email: verified(`${p}@shop.test`) }));
    await expectPaused(await api.call("DELETE", `/v1/customers/${customerId}`, undefined, adminKey));

    // An import batch waits: the consumer sends it to the queue again as a new message and writes none
    // of its orders. Even on what would be its last delivery it spends no retry and is not failed.
    const created = await api.call("POST", "/v1/imports", { expectedBatches: 1 }, apiKey);
    const job = importResponseSchema.parse(await created.json()).data;
    expect(job.writesPausedAt).toBe(writesPausedAt);
    const message = await recordedBatch(job.id, 0, [anOrder({ id: `${p}-imported`, identifiers: { account } })]);
    for (const attempts of [1, importMaxRetries + 1]) {
      const delivered = await deliver([{ body: message, attempts }]);
      expect(delivered.retryMessages).toEqual([]);
      expect(delivered.explicitAcks).toHaveLength(1);
      const progress = await api.call("GET", `/v1/imports/${job.id}`, undefined, apiKey);
      const view = importResponseSchema.parse(await progress.json()).data;
      expect(view.batches).toMatchObject({ queued: 1, failed: 0, done: 0 });
      // The import's progress says why its batches wait.
      expect(view.writesPausedAt).toBe(writesPausedAt);
    }

    // No nightly run starts: its scores would land behind the copy.
    const run = await api.call("POST", "/v1/admin/jobs/nightly", {}, adminKey);
    expect(run.status).toBe(409);
    expect(((await run.json()) as { error: { message: string } }).error.message).toMatch(
      /Customer writes are paused .* a run now would write scores behind the copy/,
    );

    // A known shopper's events are recorded; no browse day is added to their customer data.
    const token = await signShopperToken(account, env.SHOPPER_TOKEN_SECRET, 3600, new Date());
    const events = await SELF.fetch("http://patron.test/v1/events", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ token, events: [{ type: "view", productId: "sku-1", categoryId: "heels" }] }),
    });
    expect(events.status, await events.clone().text()).toBe(202);
    const recorded = await env.EVENTS_DB.prepare("SELECT count(*) AS n FROM events WHERE customer_id = ?")
      .bind(customerId)
      .first<{ n: number }>();
    expect(recorded?.n).toBe(1);

    // Reads go on.
    expect((await api.lookup("account", account)).status).toBe(200);
    const shelf = await SELF.fetch("http://patron.test/v1/recommendations", {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(shelf.status).toBe(200);

    const after = await tableCounts(env.DB);
    // The import's own records (its job and batch attempt) are not customer data.
    const { imports: _i, import_batches: _b, ...customerTables } = after;
    const { imports: _i0, import_batches: _b0, ...customerTablesBefore } = before;
    expect(customerTables).toEqual(customerTablesBefore);

    const resumed = await setPause(false);
    expect(resumed.status).toBe(200);
    expect(((await resumed.json()) as { data: unknown }).data).toMatchObject({
      writesPausedAt: null,
      wasPausedAt: writesPausedAt,
    });
    const written = await api.postOrders([anOrder({ id: `${p}-2`, identifiers: { account } })]);
    expect(written.status, await written.clone().text()).toBe(200);
    expect(((await written.json()) as { data: { accepted: number } }).data.accepted).toBe(1);
    expect((await deliver([{ body: message, attempts: 2 }])).explicitAcks).toHaveLength(1);
    const progress = await api.call("GET", `/v1/imports/${job.id}`, undefined, apiKey);
    const view = importResponseSchema.parse(await progress.json()).data;
    expect(view).toMatchObject({ status: "done", writesPausedAt: null });
  });
});
