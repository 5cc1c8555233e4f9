// A scoring page writes nothing for a customer erased (or merged away) after it read them: on D1 the
// erasure can commit between the page's read and its write, and the customer must not come back as a
// score, a lapse or a stage change. The erasure is simulated by deleting the customer's summary just
// before the page's write batch. Runs on both stores (on shards each shard's own page).
import { env, SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { PopulationModels } from "../../worker/core/profile/population-models.ts";
import { scorePageStep } from "../../worker/jobs/nightly.repo.ts";
import { modelsById } from "../../worker/models/models.repo.ts";
import { anOrder, client, uniquePrefix } from "../fixtures/builders.ts";
import { beforeTheWrite, d1Db, nightlyStore, onEachCustomerDb } from "../fixtures/nightly-store.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);
const day = 86_400_000;

describe("a customer erased between a scoring page's read and its write", () => {
  it("gets no score, lapse or stage change back; the rest of the page is written", async () => {
    const p = uniquePrefix("erased-mid-page");
    const asOf = new Date();
    const orders = Array.from({ length: 24 }, (_, c) =>
      [0, 1, 2, 3].map((k) =>
        anOrder({
          id: `${p}-${c}-${k}`,
          placedAt: new Date(asOf.getTime() - (5 + k * (10 + c)) * day).toISOString(),
          identifiers: { account: `${p}-${c}` },
          lines: [{ productId: `sku-${c % 4}`, categoryId: `cat-${(c + k) % 3}`, quantity: 1, unitPrice: 10 + c }],
        }),
      ),
    ).flat();
    const posted = await api.postOrders(orders);
    expect(posted.status, await posted.clone().text()).toBe(200);
    const fit = await nightlyStore(env, d1Db()).fitCustomerModels(asOf);
    const models = await modelsById<PopulationModels>(d1Db(), fit.id);
    const runId = `${p}-run`;
    const erased = (
      await onEachCustomerDb(async (db) => {
        const [first] = await db.all<{ id: string }>(
          sql`SELECT customer_id AS id FROM customer_summaries ORDER BY customer_id LIMIT 1`,
        );
        if (!first) return [];
        const erase = sql`DELETE FROM customer_summaries WHERE customer_id = ${first.id}`;
        await scorePageStep(beforeTheWrite(db, erase), models, "", 1_000, runId, asOf);
        return [first.id];
      })
    ).flat();
    expect(erased.length).toBeGreaterThan(0);
    const marks = erased.map(() => "?").join(", ");
    for (const table of ["customer_scores", "customer_category_lapses", "stage_transitions"])
      expect(await storeRows(`SELECT customer_id FROM ${table} WHERE customer_id IN (${marks})`, ...erased)).toEqual(
        [],
      );
    // The others on the page were scored, and their first stages recorded, by this page.
    const written = await storeRows<{ n: number }>("SELECT count(*) AS n FROM customer_scores WHERE run_id = ?", runId);
    expect(written.reduce((sum, row) => sum + Number(row.n), 0)).toBeGreaterThan(0);
    const changes = await storeRows<{ n: number }>(
      "SELECT count(*) AS n FROM stage_transitions WHERE run_id = ?",
      runId,
    );
    expect(changes.reduce((sum, row) => sum + Number(row.n), 0)).toBeGreaterThan(0);
  });
});
