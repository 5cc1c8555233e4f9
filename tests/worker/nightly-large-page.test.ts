// A scoring page whose rows are bound in several chunks (db/batch.ts jsonEach: an array over 500 KB
// is bound as several JSON values). A first run gives every customer a stage, so a page of thousands
// of customers records as many transitions; their rows once read json_each's `key` column, which the
// chunked form does not have, and the run errored ("no such column: key") on a real import.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { jobRunResponseSchema } from "../../worker/admin/admin.schemas.ts";
import { adminKey, anOrder, client } from "../fixtures/builders.ts";

const api = client(SELF);

describe("a nightly page of thousands of customers on the one database", () => {
  it("scores them all and records every first stage in one page", async () => {
    const customers = 2_400;
    const asOf = new Date();
    for (let from = 0; from < customers; from += 1_000) {
      const orders = Array.from({ length: Math.min(1_000, customers - from) }, (_, n) =>
        anOrder({
          id: `large-page-${from + n}`,
          placedAt: new Date(asOf.getTime() - ((from + n) % 300) * 86_400_000 - 3_600_000).toISOString(),
          identifiers: { account: `large-page-${from + n}` },
        }),
      );
      const posted = await api.postOrders(orders);
      expect(posted.status, await posted.clone().text()).toBe(200);
    }
    const response = await api.call(
      "POST",
      "/v1/admin/jobs/nightly?wait=1",
      { asOf: asOf.toISOString(), pageSize: 5_000 },
      adminKey,
    );
    expect(response.status, await response.clone().text()).toBe(200);
    const run = jobRunResponseSchema.parse(await response.json()).data;
    expect(run.error ?? null).toBeNull();
    expect(run.status).toBe("done");
    expect(run.processed).toBe(customers);
    const path = `/v1/admin/transitions?since=${encodeURIComponent(new Date(asOf.getTime() - 60_000).toISOString())}&limit=10000`;
    const feed = (await (await api.call("GET", path, undefined, adminKey)).json()) as {
      data: { transitions: unknown[] };
    };
    expect(feed.data.transitions).toHaveLength(customers);
  }, 240_000);
});
