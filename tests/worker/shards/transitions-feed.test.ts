// GET /v1/admin/transitions over four customer shards: a row's feed id is given when the nightly job
// writes it and travels with it (worker/jobs/transitions-feed.repo.ts), so a client paging with `next`
// sees every row once, in order, across a move of the customer to another shard, and a running run's
// rows appear only when it has ended. Rows from before feed ids keep the ids the feed showed them by.
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import * as schema from "../../../db/schema.ts";
import { jobRunResponseSchema, transitionsResponseSchema } from "../../../worker/admin/admin.schemas.ts";
import type { Db } from "../../../worker/env.ts";
import { claimRun, releaseRun } from "../../../worker/jobs/nightly.repo.ts";
import { firstFeedId, takeFeedIds } from "../../../worker/jobs/transitions-feed.repo.ts";
import { shardCount, shardStub } from "../../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix, verified } from "../../fixtures/builders.ts";

const api = client(SELF);
const db = drizzle(env.DB, { schema }) as Db;
const asOf = new Date(Date.UTC(2026, 5, 1));
const since = "2000-01-01T00:00:00Z";
type Transition = { id: number; customerId: string; from: string | null; to: string; at: string; runId: string };

/** One read on shard `index`'s own database. */
const inShard = <T>(index: number, query: string, ...params: (string | number | null)[]) =>
  runInDurableObject(shardStub(env, index), (_instance, state) =>
    state.storage.sql.exec(query, ...params).toArray(),
  ) as Promise<T[]>;

/** The shard holding each customer's transitions. */
async function shardOfTransitions(): Promise<Map<string, number>> {
  const where = new Map<string, number>();
  for (let index = 0; index < shardCount(env); index++)
    for (const row of await inShard<{ customer_id: string }>(index, "SELECT customer_id FROM stage_transitions"))
      where.set(row.customer_id, index);
  return where;
}

/** One page of the feed after `after`. */
async function page(after: number, limit: number) {
  const response = await api.call(
    "GET",
    `/v1/admin/transitions?since=${since}&after=${after}&limit=${limit}`,
    undefined,
    adminKey,
  );
  expect(response.status, await response.clone().text()).toBe(200);
  return transitionsResponseSchema.parse(await response.json()).data as {
    transitions: Transition[];
    next: number | null;
  };
}

/** Every page from `after` on, following `next`. */
async function pagesFrom(after: number, limit: number): Promise<Transition[]> {
  const seen: Transition[] = [];
  for (let cursor: number | null = after, pages = 0; cursor !== null && pages < 500; pages++) {
    const { transitions, next } = await page(cursor, limit);
    seen.push(...transitions);
    cursor = next;
  }
  return seen;
}

const ids = (rows: Transition[]) => rows.map((row) => row.id);

describe("GET /v1/admin/transitions over four shards", () => {
  const p = uniquePrefix("feed");
  const accounts = Array.from({ length: 24 }, (_, i) => `${p}-acct-${i}`);
  const cards = Array.from({ length: 24 }, (_, i) => ({ loyalty: `${p}-CARD-${i}`, phone: `+1 415 555 01${10 + i}` }));
  let all: Transition[] = [];

  it("gives the nightly job's rows feed ids from D1's ranges, increasing page to page", async () => {
    expect(shardCount(env)).toBe(4);
    const orders = [
      ...accounts.map((account, i) =>
        anOrder({ id: `${p}-a${i}`, placedAt: "2026-05-20T10:00:00Z", identifiers: { account } }),
      ),
      ...cards.map((card, i) =>
        anOrder({
          id: `${p}-c${i}`,
          channel: "store",
          placedAt: "2026-01-10T10:00:00Z",
          identifiers: { loyalty: card.loyalty, phone: verified(card.phone) },
        }),
      ),
    ];
    expect((await api.postOrders(orders)).status).toBe(200);
    const response = await api.call(
      "POST",
      "/v1/admin/jobs/nightly?wait=1",
      { asOf: asOf.toISOString(), pageSize: 10 },
      adminKey,
    );
    expect(response.status, await response.clone().text()).toBe(200);
    const run = jobRunResponseSchema.parse(await response.json()).data;
    expect(run.status).toBe("done");

    all = await pagesFrom(0, 1_000);
    // A first run records every scored customer's stage (from null).
    expect(all.length).toBe(48);
    expect(all.every((row) => row.runId === run.runId && row.from === null)).toBe(true);
    expect(new Set(all.map((row) => row.customerId)).size).toBe(48);
    expect(all.every((row) => row.id >= firstFeedId)).toBe(true);
    expect(ids(all)).toEqual([...ids(all)].sort((a, b) => a - b));
    // The ids are the shards' stored ones, in the ranges D1 handed out (below its next).
    const stored = (
      await Promise.all(
        [0, 1, 2, 3].map((index) => inShard<{ feed_id: number }>(index, "SELECT feed_id FROM stage_transitions")),
      )
    )
      .flat()
      .map((row) => row.feed_id);
    expect(stored.sort((a, b) => a - b)).toEqual(ids(all));
    const next = await env.DB.prepare("SELECT next FROM feed_sequences WHERE name = 'transitions'").first<{
      next: number;
    }>();
    expect(next?.next).toBeGreaterThan(Math.max(...ids(all)));

    // Paged 5 at a time, the same rows.
    expect(await pagesFrom(0, 5)).toEqual(all);
  });

  it("keeps a row's feed id when its customer moves to another shard: paging across the move sees it once", async () => {
    const before = await shardOfTransitions();
    const customerOf = async (kind: string, value: string) => {
      const response = await api.lookup(kind, value);
      expect(response.status).toBe(200);
      return ((await response.json()) as { data: { customerId: string } }).data.customerId;
    };
    // An account customer and a card customer in different shards.
    let pair: { account: string; card: (typeof cards)[number]; from: [string, string] } | null = null;
    for (const account of accounts)
      for (const card of cards) {
        if (pair) break;
        const a = await customerOf("account", account);
        const c = await customerOf("loyalty", card.loyalty);
        if (before.get(a) !== before.get(c)) pair = { account, card, from: [a, c] };
      }
    if (!pair) throw new Error("every customer in one shard");

    // A client half-way through the feed.
    const first = await page(0, 7);
    expect(first.next).not.toBeNull();

    // The account signs in with the card's verified phone: the two customers merge, one region moves.
    const join = await api.postOrders([
      anOrder({ id: `${p}-join`, identifiers: { account: pair.account, phone: verified(pair.card.phone) } }),
    ]);
    expect(join.status, await join.clone().text()).toBe(200);
    const after = await shardOfTransitions();
    const [a, c] = pair.from;
    expect(after.get(a)).toBe(after.get(c));
    expect([before.get(a), before.get(c)]).toContain(after.get(a));

    // The rest of the feed from the client's cursor: every row once, with the ids it had.
    const rest = await pagesFrom(first.next as number, 7);
    expect([...first.transitions, ...rest]).toEqual(all);
  });

  it("shows a running run's rows only once it has ended, above every id shown before", async () => {
    const shown = await pagesFrom(0, 1_000);
    const last = Math.max(...ids(shown));
    const runId = `${p}-held`;
    expect(await claimRun(db, runId, new Date(asOf.getTime() + 86_400_000).toISOString(), new Date(), false)).toEqual({
      claimed: true,
    });
    // The run writes in two shards, the later range first.
    const early = await takeFeedIds(db, 2);
    const late = await takeFeedIds(db, 2);
    const write = (index: number, feedId: number, customerId: string) =>
      inShard(
        index,
        "INSERT INTO stage_transitions (customer_id, from_stage, to_stage, at, run_id, feed_id) VALUES (?, 'active', 'fading', ?, ?, ?)",
        customerId,
        asOf.toISOString(),
        runId,
        feedId,
      );
    await write(3, late, `${p}-late`);
    expect(await pagesFrom(last, 1_000)).toEqual([]);
    await write(1, early, `${p}-early`);
    expect(await pagesFrom(last, 1_000)).toEqual([]);

    await releaseRun(db, runId, "errored", new Date());
    const appeared = await pagesFrom(last, 1_000);
    expect(appeared.map((row) => [row.id, row.customerId])).toEqual([
      [early, `${p}-early`],
      [late, `${p}-late`],
    ]);
    expect(early).toBeGreaterThan(last);
  });

  it("numbers rows written without a feed id as the feed showed them before: local id × 4 + shard", async () => {
    await inShard(
      2,
      "INSERT INTO stage_transitions (customer_id, from_stage, to_stage, at, run_id) VALUES (?, 'active', 'lapsed', ?, ?)",
      `${p}-older`,
      "2026-01-01T00:00:00.000Z",
      `${p}-older-run`,
    );
    const [row] = await inShard<{ id: number }>(
      2,
      "SELECT id FROM stage_transitions WHERE customer_id = ?",
      `${p}-older`,
    );
    const feed = await pagesFrom(0, 1_000);
    const older = feed.find((transition) => transition.customerId === `${p}-older`);
    expect(older?.id).toBe((row?.id as number) * 4 + 2);
    // It comes first: below the ids the nightly job hands out.
    expect(feed[0]?.customerId).toBe(`${p}-older`);
    const [numbered] = await inShard<{ feed_id: number }>(
      2,
      "SELECT feed_id FROM stage_transitions WHERE customer_id = ?",
      `${p}-older`,
    );
    expect(numbered?.feed_id).toBe(older?.id);
  });
});
