// Moving regions to their home shards (`POST /v1/admin/shards/rebalance`, docs/scaling.md,
// rebalancing), SHARD_COUNT=4: regions moved away from their account key's home (as a reshard or a
// merge leaves them) go back by the recorded moves ingestion runs, while the deployment takes writes;
// a merged customer's region moves whole; a region a move holds is left for the next pass; every account
// and card answers the same customer and orders after; a second pass moves nothing; a card-only
// customer and a guest held away go to their card's and their order's home; a reshard and a pass refuse
// to run at once.
import { createExecutionContext, env, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../worker/app.ts";
import { homeShard } from "../../../worker/core/shards/placement.ts";
import { signShopperToken } from "../../../worker/http/shopper-token.ts";
import { type MoveContext, moveRegionOut } from "../../../worker/shards/moves.ts";
import type { RebalanceView } from "../../../worker/shards/rebalance-view.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { adminKey, anOrder, client, uniquePrefix } from "../../fixtures/builders.ts";
import { errorOf } from "../../fixtures/errors.ts";
import { accountKeyOf, shardRows } from "../../fixtures/shard-seed.ts";

const api = client(SELF);
const rebalance = (body: unknown = {}, key: string | null = adminKey) =>
  api.call("POST", "/v1/admin/shards/rebalance", body, key);

/** Runs a pass to its end, `limit` customers per step; answers the last view and the steps it took. */
async function runPass(limit: number, between?: (step: number) => Promise<void>) {
  let view: RebalanceView | null = null;
  let steps = 0;
  while (!view?.done && steps < 500) {
    const response = await rebalance({ limit });
    expect(response.status, await response.clone().text()).toBe(200);
    view = ((await response.json()) as { data: RebalanceView }).data;
    steps++;
    await between?.(steps);
  }
  return { view: view as RebalanceView, steps };
}

/** The shard holding the customer of each account key, from every shard's identities. */
async function heldIn(keys: readonly string[]): Promise<Map<string, number>> {
  const held = new Map<string, number>();
  for (let shard = 0; shard < 4; shard++) {
    const rows = await shardRows<{ key: string }>(
      shard,
      "SELECT key FROM identities WHERE customer_id IS NOT NULL AND key IN (SELECT value FROM json_each(?))",
      JSON.stringify(keys),
    );
    for (const row of rows) {
      expect(held.has(row.key), `${row.key} held in two shards`).toBe(false);
      held.set(row.key, shard);
    }
  }
  return held;
}

type Lookup = { customerId: string; orders: string[] };
async function lookup(kind: string, value: string): Promise<Lookup> {
  const response = await api.lookup(kind, value);
  expect(response.status, await response.clone().text()).toBe(200);
  const { data } = (await response.json()) as { data: { customerId: string; orders: { id: string }[] } };
  return { customerId: data.customerId, orders: data.orders.map((order) => order.id).sort() };
}

/** What a shopper's shelf shows: whether they are known, and its categories and products. */
async function shelfOf(account: string) {
  const token = await signShopperToken(account, env.SHOPPER_TOKEN_SECRET, 3600, new Date());
  const response = await SELF.fetch("http://patron.test/v1/recommendations?limit=6", {
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(response.status, await response.clone().text()).toBe(200);
  const { data } = (await response.json()) as {
    data: { customerKnown: boolean; categories: { id: string }[]; items: { id: string }[] };
  };
  return {
    customerKnown: data.customerKnown,
    categories: data.categories.map((category) => category.id),
    items: data.items.map((item) => item.id),
  };
}

describe("the rebalance route", () => {
  it("answers 401 without the admin key, 400 for a bad body, 404 before a pass, 409 on the one D1 database", async () => {
    expect((await rebalance({}, null)).status).toBe(401);
    expect((await rebalance({}, "test-api-key")).status).toBe(401);
    expect((await api.call("GET", "/v1/admin/shards/rebalance", undefined, null)).status).toBe(401);
    for (const body of [{ limit: 0 }, { limit: 1001 }, { limit: 2.5 }, { limit: "5" }, { extra: true }, []])
      expect((await errorOf(await rebalance(body), 400)).code).toBe("invalid_request");
    expect((await api.call("GET", "/v1/admin/shards/rebalance", undefined, adminKey)).status).toBe(404);

    const context = createExecutionContext();
    const response = await createApp().fetch(
      new Request("http://patron.test/v1/admin/shards/rebalance", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${adminKey}` },
        body: "{}",
      }),
      { ...env, SHARD_COUNT: "0" },
      context,
    );
    await waitOnExecutionContext(context);
    expect((await errorOf(response, 409)).message).toMatch(/one D1 database .* patron shards migrate/);
  });
});

describe("a rebalance pass over four shards", () => {
  it("moves regions held away from their account key's home there, takes writes meanwhile, and changes no answer", async () => {
    const p = uniquePrefix("rebal");
    const shoppers = Array.from({ length: 16 }, (_, i) => ({ account: `${p}-acct-${i}`, card: `${p}-card-${i}` }));
    const orders = shoppers.flatMap(({ account, card }, i) => [
      anOrder({ id: `${p}-${i}-web`, identifiers: { account } }),
      anOrder({ id: `${p}-${i}-store`, channel: "store", identifiers: { account, loyalty: card } }),
    ]);
    const cardOnly = `${p}-card-only`;
    orders.push(anOrder({ id: `${p}-card-only`, channel: "store", identifiers: { loyalty: cardOnly } }));
    // A guest: an email typed at checkout is not verified, so the region is placed by its order id.
    const guestEmail = `${p}-guest@example.com`;
    orders.push(anOrder({ id: `${p}-guest`, identifiers: { email: guestEmail } }));
    const posted = await api.postOrders(orders);
    expect(posted.status).toBe(200);
    const guestCustomer = ((await posted.json()) as { data: { results: { customerId: string }[] } }).data.results.at(-1)
      ?.customerId as string;

    // A shopper whose account and card began as two customers, merged by an order naming both.
    const merged = { account: `${p}-acct-m`, card: `${p}-card-m` };
    expect(
      (
        await api.postOrders([
          anOrder({ id: `${p}-m-1`, identifiers: { account: merged.account } }),
          anOrder({ id: `${p}-m-2`, channel: "store", identifiers: { loyalty: merged.card } }),
        ])
      ).status,
    ).toBe(200);
    expect(
      (
        await api.postOrders([
          anOrder({ id: `${p}-m-3`, identifiers: { account: merged.account, loyalty: merged.card } }),
        ])
      ).status,
    ).toBe(200);
    const mergedCustomer = (await lookup("account", merged.account)).customerId;
    expect((await lookup("loyalty", merged.card)).customerId).toBe(mergedCustomer);

    const keys = await Promise.all(shoppers.map(({ account }) => accountKeyOf(account)));
    const mergedKey = await accountKeyOf(merged.account);
    const home = (key: string) => homeShard(key, 4);
    const placed = await heldIn(keys);
    for (const key of keys) expect(placed.get(key), "a new region is placed at its account key's home").toBe(home(key));
    const cardOnlyCustomer = (await lookup("loyalty", cardOnly)).customerId;
    const holding = async (customerId: string) => {
      const shards: number[] = [];
      for (let shard = 0; shard < 4; shard++)
        if ((await shardRows(shard, "SELECT id FROM customers WHERE id = ?", customerId)).length > 0)
          shards.push(shard);
      return shards;
    };
    const [cardAt] = await holding(cardOnlyCustomer);
    const [cardKey] = (
      await shardRows<{ key: string }>(
        cardAt as number,
        "SELECT key FROM identities WHERE customer_id = ?",
        cardOnlyCustomer,
      )
    ).map((row) => row.key);
    if (cardKey === undefined) throw new Error("the card-only customer has no identity key");
    expect(await holding(cardOnlyCustomer)).toEqual([home(cardKey)]);
    expect(await holding(guestCustomer)).toEqual([home(`order:${p}-guest`)]);

    // The card-only customer and the guest held away from home, as a reshard leaves them: they go back.
    expect(await shardStub(env, home(cardKey)).moveOut([cardKey], (home(cardKey) + 1) % 4, 4)).toEqual({
      kind: "moved",
    });
    const guestHome = home(`order:${p}-guest`);
    const guestMoved = await runInDurableObject(shardStub(env, guestHome), (instance) =>
      moveRegionOut((instance as unknown as { placement: MoveContext }).placement, [], (guestHome + 2) % 4, undefined, {
        customers: [guestCustomer],
      }),
    );
    expect(guestMoved).toEqual({ kind: "moved" });
    expect(await holding(cardOnlyCustomer)).toEqual([(home(cardKey) + 1) % 4]);
    expect(await holding(guestCustomer)).toEqual([(guestHome + 2) % 4]);

    // Ten regions moved away from their homes, as a reshard or a merge leaves them, and the merged one.
    for (const key of keys.slice(0, 10)) {
      const outcome = await shardStub(env, home(key)).moveOut([key], (home(key) + 1) % 4, 4);
      expect(outcome).toEqual({ kind: "moved" });
    }
    const mergedAt = (await heldIn([mergedKey])).get(mergedKey) as number;
    if (mergedAt === home(mergedKey))
      expect(await shardStub(env, mergedAt).moveOut([mergedKey], (mergedAt + 1) % 4, 4)).toEqual({ kind: "moved" });
    const mergedShard = (await heldIn([mergedKey])).get(mergedKey) as number;
    expect(mergedShard).not.toBe(home(mergedKey));
    const mergedRows = await shardRows<{ id: string }>(
      mergedShard,
      "SELECT id FROM customers WHERE id = ? OR merged_into = ?",
      mergedCustomer,
      mergedCustomer,
    );
    expect(mergedRows.length).toBeGreaterThanOrEqual(2);
    const away = await heldIn(keys);
    expect(keys.filter((key) => away.get(key) !== home(key))).toHaveLength(10);

    // One of them held by a move under way (its key fenced): left for now, the others still go.
    const held = keys[3] as string;
    const fence = (sql: string) => shardRows(away.get(held) as number, sql, held).then(() => undefined);
    await fence("INSERT INTO shard_fences (key, move_id, created_at) VALUES (?, 'a-move-under-way', '2026-01-01')");

    const everyone = [...shoppers, merged];
    const cardOnlyBefore = await lookup("loyalty", cardOnly);
    const guestBefore = await api.customer(guestCustomer).then((response) => response.json());
    const before = await Promise.all(everyone.map(({ account }) => lookup("account", account)));
    // Shelves of moved shoppers (forwarded once from their home) and of one left at home.
    const shelved = [1, 2, 12].map((i) => shoppers[i]?.account as string);
    const shelvesBefore = await Promise.all(shelved.map(shelfOf));
    for (const shelf of shelvesBefore) expect(shelf.customerKnown).toBe(true);

    // A pass in steps of 3 customers, with an order for a moved shopper after its first step.
    const { view, steps } = await runPass(3, async (step) => {
      if (step !== 1) return;
      const late = anOrder({ id: `${p}-late`, identifiers: { account: shoppers[0]?.account as string } });
      expect((await api.postOrders([late])).status).toBe(200);
    });
    expect(steps).toBeGreaterThan(4);
    // Finished, it keeps no cursor: its last page began at a customer id, which an erasure would leave there.
    expect(view).toMatchObject({ count: 4, running: 4, done: true, busy: 1, tooLarge: 0, cursor: "" });
    expect(view.moved).toBe(9 + mergedRows.length + 2);
    expect(view.moves).toBeGreaterThanOrEqual(1);
    expect(view.scanned).toBe(view.total);

    const after = await heldIn([...keys, mergedKey]);
    expect([...keys, mergedKey].filter((key) => after.get(key) !== home(key))).toEqual([held]);
    expect(await holding(cardOnlyCustomer)).toEqual([home(cardKey)]);
    expect(await holding(guestCustomer)).toEqual([guestHome]);
    // The same customers and orders, found by account and by card, with the order taken meanwhile.
    const expected = before.map((found, i) =>
      i === 0 ? { ...found, orders: [...found.orders, `${p}-late`].sort() } : found,
    );
    expect(await Promise.all(everyone.map(({ account }) => lookup("account", account)))).toEqual(expected);
    expect(await Promise.all(everyone.map(({ card }) => lookup("loyalty", card)))).toEqual(expected);
    expect(await lookup("loyalty", cardOnly)).toEqual(cardOnlyBefore);
    expect(await api.customer(guestCustomer).then((response) => response.json())).toEqual(guestBefore);
    expect(await Promise.all(shelved.map(shelfOf))).toEqual(shelvesBefore);

    // The move done, a pass takes the region it held; run again, a pass finds nothing away.
    await fence("DELETE FROM shard_fences WHERE key = ?");
    expect((await runPass(1000)).view).toMatchObject({ done: true, moved: 1, moves: 1, busy: 0 });
    expect((await heldIn([held])).get(held)).toBe(home(held));
    const again = await runPass(1000);
    expect(again.view).toMatchObject({ done: true, moved: 0, moves: 0, busy: 0 });
    const status = await api.call("GET", "/v1/admin/shards/rebalance", undefined, adminKey);
    expect(((await status.json()) as { data: RebalanceView }).data).toEqual(again.view);
  });

  it("is refused while a reshard is under way, and a reshard is refused while a pass is", async () => {
    const at = new Date().toISOString();
    await env.DB.prepare(
      `INSERT INTO shard_reshard (id, from_count, to_count, phase, shard, part, cursor, started_at, updated_at)
       VALUES ('reshard', 4, 7, 'copying', 0, 'directory', '', ?, ?)`,
    )
      .bind(at, at)
      .run();
    expect((await errorOf(await rebalance({}), 409)).message).toMatch(
      /A reshard from 4 to 7 shards is under way \(copying\): finish it with patron shards reshard --to 7, then rebalance/,
    );
    // Prepared under the old count: the count is switched first.
    await env.DB.prepare("UPDATE shard_reshard SET phase = 'prepared'").run();
    expect((await errorOf(await rebalance({}), 409)).message).toMatch(
      /\(prepared\): set SHARD_COUNT to 7 and deploy \(or restart npm start\), then finish it with patron shards reshard --to 7, then rebalance/,
    );
    await env.DB.prepare("DELETE FROM shard_reshard").run();

    // A pass begun and not finished: one step of one customer.
    expect((await api.postOrders([anOrder({ identifiers: { account: uniquePrefix("one") } })])).status).toBe(200);
    const first = await rebalance({ limit: 1 });
    expect(((await first.json()) as { data: RebalanceView }).data.done).toBe(false);
    const refused = await errorOf(await api.call("POST", "/v1/admin/shards/reshard", { to: 5 }, adminKey), 409);
    expect(refused.message).toMatch(/A rebalance pass is under way .*Finish it first with patron shards rebalance/);
    const { view } = await runPass(1000);
    expect(view.done).toBe(true);
  });
});
