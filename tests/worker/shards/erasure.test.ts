// DELETE /v1/customers/:id with customer data in four customer shards: the erasure reaches every place
// the customer's data lives (its shard, the events database, the directory entries at their homes, the
// suppression list in D1 and in the shard, the shards' records of the moves its region made), answers what D1's erasure answers for the same data, and a
// re-sent order for an erased identifier is suppressed.
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import * as eventsSchema from "../../../db/events-schema.ts";
import { createApp } from "../../../worker/app.ts";
import { customerKey, homeShard } from "../../../worker/core/shards/placement.ts";
import { eraseCustomer } from "../../../worker/customers/erasure.repo.ts";
import type { Db, EventsDb } from "../../../worker/env.ts";
import { hashIdentifiers } from "../../../worker/identity/identity.keys.ts";
import { identify } from "../../../worker/orders/ingest.ts";
import { orderSchema } from "../../../worker/orders/orders.schemas.ts";
import type { CustomerShard } from "../../../worker/shards/customer-shard.ts";
import { recordMoveOut } from "../../../worker/shards/moves.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { orderSuppressionKey, suppressedKeys } from "../../../worker/suppressions/suppressions.repo.ts";
import { adminKey, anOrder, apiKey, client, uniquePrefix, verified } from "../../fixtures/builders.ts";
import { d1, moveRegion, placeKeys, type Seeded, seedBoth, shardRows } from "../../fixtures/shard-seed-console.ts";

const api = client(SELF);
const day = 86_400_000;
const now = new Date();
const eventsDb = drizzle(env.EVENTS_DB, { schema: eventsSchema }) as unknown as EventsDb;
const at = (daysAgo: number) => new Date(now.getTime() - daysAgo * day).toISOString();
const orderKey = (orderId: string) => orderSuppressionKey(orderId, env.IDENTITY_HASH_SECRET);

/** The customer tables and the column that names the customer in each. */
const customerTables = [
  ["customers", "id"],
  ["identities", "customer_id"],
  ["orders", "customer_id"],
  ["customer_summaries", "customer_id"],
  ["customer_category_stats", "customer_id"],
  ["customer_products", "customer_id"],
  ["customer_scores", "customer_id"],
  ["customer_category_lapses", "customer_id"],
  ["stage_transitions", "customer_id"],
  ["customer_browse", "customer_id"],
  ["identity_merges", "from_customer_id"],
  ["identity_merges", "into_customer_id"],
  ["legacy_events", "customer_id"],
] as const;

interface Erased {
  p: string;
  shard: number;
  seeded: Seeded[];
  /** Survivor and merged-away customer, in the shard and in D1. */
  ids: string[];
  d1Ids: string[];
  orderIds: string[];
  /** The customer's identity keys and the directory keys that place it. */
  identityKeys: string[];
  directoryKeys: string[];
  neighbourKeys: string[];
}

/**
 * A customer (web orders under an account and email, a store order under a loyalty card and a household
 * card a neighbour shares, then an order under the account and the loyalty card, which merges the two)
 * and their neighbour, in the home shard of the account and in D1.
 */
async function seed(): Promise<Erased> {
  const p = uniquePrefix("erase");
  const account = `${p}-acct`;
  const web = [
    anOrder({ id: `${p}-w1`, placedAt: at(40), identifiers: { account, email: verified(`${p}@mail.test`) } }),
    anOrder({ id: `${p}-w2`, placedAt: at(30), identifiers: { account } }),
    anOrder({
      id: `${p}-s1`,
      channel: "store",
      placedAt: at(20),
      identifiers: { loyalty: verified(`${p}-L`), card: `${p}-family` },
    }),
  ];
  const first = await seedBoth(web, now);
  const neighbour = await seedBoth(
    [
      anOrder({
        id: `${p}-n1`,
        channel: "store",
        placedAt: at(15),
        identifiers: { loyalty: verified(`${p}-N`), card: `${p}-family` },
      }),
    ],
    now,
    first.shard,
  );
  const join = await seedBoth(
    [anOrder({ id: `${p}-j1`, placedAt: at(10), identifiers: { account, loyalty: verified(`${p}-L`) } })],
    now,
    first.shard,
  );
  const ids = [join.shardCustomer.get(`${p}-j1`), first.shardCustomer.get(`${p}-s1`)] as string[];
  const d1Ids = [join.d1Customer.get(`${p}-j1`), first.d1Customer.get(`${p}-s1`)] as string[];
  const orderIds = [`${p}-w1`, `${p}-w2`, `${p}-s1`, `${p}-j1`];
  const identityKeys = (
    await shardRows<{ key: string }>(
      first.shard,
      "SELECT key FROM identities WHERE customer_id IN (?, ?) AND shared = 0",
      ...ids,
    )
  ).map((row) => row.key);
  const neighbourId = neighbour.shardCustomer.get(`${p}-n1`) as string;
  const neighbourKeys = (
    await shardRows<{ key: string }>(first.shard, "SELECT key FROM identities WHERE customer_id = ?", neighbourId)
  ).map((row) => row.key);
  return {
    p,
    shard: first.shard,
    seeded: [first, neighbour, join],
    ids,
    d1Ids,
    orderIds,
    identityKeys,
    directoryKeys: [...identityKeys, ...ids.map(customerKey)],
    neighbourKeys,
  };
}

let erased: Erased;
let fromD1: Response;
let response: Response;

/**
 * The customer's events: a view for each customer id in the events database and one from before it in
 * the main database's legacy_events, and a conversion of one order.
 */
async function addEvents(customerIds: string[], orderId: string) {
  for (const id of customerIds)
    for (const db of [env.EVENTS_DB, env.DB])
      await db
        .prepare(
          `INSERT OR IGNORE INTO ${db === env.DB ? "legacy_events" : "events"} (type, customer_id, category_id, at, dedupe_key)
           VALUES ('view', ?, 'heels', ?, ?)`,
        )
        .bind(id, now.toISOString(), `${id}-view`)
        .run();
  await env.EVENTS_DB.prepare(
    "INSERT OR IGNORE INTO conversions (order_id, recommendation_id, total, at) VALUES (?, 'r_test', 89, ?)",
  )
    .bind(orderId, now.toISOString())
    .run();
}

beforeAll(async () => {
  // A customer moved away from its id's home, so the erasure is forwarded and leaves a `customer:` entry to delete.
  erased = await seed();
  const away = (homeShard(customerKey(erased.ids[0] as string), 4) + 1) % 4;
  if (away !== erased.shard) {
    await moveRegion(
      erased.shard,
      away,
      ["w1", "w2", "s1", "n1", "j1"].map((order) => `${erased.p}-${order}`),
      now.toISOString(),
    );
    erased.shard = away;
  }
  // An order moved away from its `order:<id>` home (one placed by its id, as a guest's order is): its entry goes too.
  const orderEntry = `order:${erased.p}-s1`;
  await placeKeys([orderEntry], erased.shard, now.toISOString());
  erased.directoryKeys.push(orderEntry);
  // D1's erasure of the same data first: it writes D1's suppression list, which the shard's erasure
  // then adds to (changing nothing), while the shard's own list starts empty, as D1's did.
  await addEvents(erased.d1Ids, `${erased.p}-w1`);
  // The same worker's D1 path (SHARD_COUNT=0), for the same data in D1.
  fromD1 = await createApp().request(
    `http://patron.test/v1/customers/${erased.d1Ids[1]}`,
    { method: "DELETE", headers: { Authorization: `Bearer ${adminKey}` } },
    { ...env, SHARD_COUNT: "0" },
  );
  await addEvents(erased.ids, `${erased.p}-w1`);
  // Through the merged-away id: the erasure follows merged_into, as on D1.
  response = await api.call("DELETE", `/v1/customers/${erased.ids[1]}`, undefined, adminKey);
});

describe("erasure across customer shards", () => {
  it("answers what D1's erasure answers for the same data", async () => {
    expect(response.status, await response.clone().text()).toBe(200);
    const body = (await response.json()) as {
      data: { customerId: string; deleted: Record<string, number>; suppressed: Record<string, number> };
    };
    expect(fromD1.status, await fromD1.clone().text()).toBe(200);
    const d1Body = (await fromD1.json()) as typeof body;
    expect(d1Body.data.customerId).toBe(erased.d1Ids[0]);
    expect(body.data.customerId).toBe(erased.ids[0]);
    expect(body.data.deleted).toEqual(d1Body.data.deleted);
    expect(body.data.suppressed).toEqual(d1Body.data.suppressed);
    expect(body.data.deleted).toMatchObject({ customers: 2, orders: 4, events: 4, conversions: 1 });
    expect(body.data.suppressed).toEqual({ identifiers: 3, orders: 4 });
  });

  it("leaves no row of the customer in any shard, and the neighbour's rows in place", async () => {
    for (const shard of [0, 1, 2, 3]) {
      for (const [table, column] of customerTables) {
        const rows = await shardRows(
          shard,
          `SELECT * FROM ${table} WHERE ${column} IN (?, ?)`,
          erased.ids[0],
          erased.ids[1],
        );
        expect(rows, `${table} in shard ${shard}`).toEqual([]);
      }
      const lines = await shardRows(
        shard,
        "SELECT * FROM order_lines WHERE order_id IN (?, ?, ?, ?)",
        ...erased.orderIds,
      );
      expect(lines).toEqual([]);
      const observations = await shardRows(
        shard,
        "SELECT * FROM identity_observations WHERE source IN (?, ?, ?, ?)",
        ...erased.orderIds.map((id) => `order:${id}`),
      );
      expect(observations).toEqual([]);
    }
    const neighbour = await shardRows(erased.shard, "SELECT id FROM orders WHERE id = ?", `${erased.p}-n1`);
    expect(neighbour).toHaveLength(1);
    // The household card, seen with the neighbour too, stays (owned by nobody), as it stays on D1.
    const card = await shardRows<{ key: string; shared: number; customer_id: string | null }>(
      erased.shard,
      "SELECT key, shared, customer_id FROM identities WHERE kind = 'card'",
    );
    expect(card).toHaveLength(1);
    expect(card[0]?.customer_id).toBeNull();
    const inD1 = await env.DB.prepare("SELECT key, shared, customer_id FROM identities WHERE key = ?")
      .bind(card[0]?.key)
      .all();
    expect(inD1.results).toEqual(card);
  });

  it("deletes the directory entries of its keys and ids at their homes, and keeps the neighbour's", async () => {
    expect(erased.identityKeys).toHaveLength(3);
    for (const shard of [0, 1, 2, 3]) {
      const left = await shardRows<{ key: string }>(shard, "SELECT key FROM shard_directory");
      const keys = new Set(left.map((row) => row.key));
      for (const key of erased.directoryKeys) expect(keys.has(key), `${key} in shard ${shard}`).toBe(false);
    }
    for (const key of erased.neighbourKeys) {
      const entry = await shardRows(homeShard(key, 4), "SELECT shard FROM shard_directory WHERE key = ?", key);
      expect(entry).toEqual([{ shard: erased.shard }]);
    }
  });

  it("deletes the events and conversions from the events database, and legacy events from D1", async () => {
    for (const id of erased.ids) {
      const events = await env.EVENTS_DB.prepare("SELECT count(*) AS n FROM events WHERE customer_id = ?")
        .bind(id)
        .first<{ n: number }>();
      expect(events?.n).toBe(0);
      const legacy = await env.DB.prepare("SELECT count(*) AS n FROM legacy_events WHERE customer_id = ?")
        .bind(id)
        .first<{ n: number }>();
      expect(legacy?.n).toBe(0);
    }
    const conversions = await env.EVENTS_DB.prepare("SELECT count(*) AS n FROM conversions WHERE order_id = ?")
      .bind(`${erased.p}-w1`)
      .first<{ n: number }>();
    expect(conversions?.n).toBe(0);
  });

  it("puts the keys on the suppression list in D1 (the router's check) and in the shard (its own guard)", async () => {
    const keys = [...erased.identityKeys, ...(await Promise.all(erased.orderIds.map(orderKey)))];
    expect([...(await suppressedKeys(d1, keys))].sort()).toEqual([...keys].sort());
    const inShard = await shardRows<{ key: string }>(erased.shard, "SELECT key FROM suppressions");
    expect(inShard.map((row) => row.key).sort()).toEqual([...keys].sort());
  });

  it("suppresses a re-sent order and a new order for an erased identifier in the shard", async () => {
    const resent = anOrder({
      id: `${erased.p}-w1`,
      placedAt: at(40),
      identifiers: { account: `${erased.p}-acct`, email: verified(`${erased.p}@mail.test`) },
    });
    const fresh = anOrder({ id: `${erased.p}-new`, placedAt: at(1), identifiers: { account: `${erased.p}-acct` } });
    const outcome = await shardStub(env, erased.shard).ingest([resent, fresh] as never, now.toISOString());
    expect(outcome.kind).toBe("ingested");
    if (outcome.kind !== "ingested") return;
    expect(outcome.result).toMatchObject({ accepted: 0, suppressed: 2 });
    const customers = await shardRows(
      erased.shard,
      "SELECT * FROM orders WHERE id IN (?, ?)",
      `${erased.p}-w1`,
      `${erased.p}-new`,
    );
    expect(customers).toEqual([]);
  });

  it("answers 404 once erased, for either id, and 401 without the admin key", async () => {
    for (const id of erased.ids) {
      expect((await api.call("DELETE", `/v1/customers/${id}`, undefined, adminKey)).status).toBe(404);
      expect((await api.call("GET", `/v1/customers/${id}/export`, undefined, adminKey)).status).toBe(404);
    }
    expect((await api.call("DELETE", `/v1/customers/${erased.ids[0]}`, undefined, apiKey)).status).toBe(401);
  });

  it("lifts a suppression from D1's list and the shard's, so the shard accepts the identifier again", async () => {
    const lift = await api.call(
      "DELETE",
      "/v1/admin/suppressions",
      { kind: "account", value: `${erased.p}-acct` },
      adminKey,
    );
    expect(lift.status, await lift.clone().text()).toBe(200);
    const accountKey = erased.identityKeys.find((key) => key.startsWith("account:")) as string;
    expect(await suppressedKeys(d1, [accountKey])).toEqual(new Set());
    expect(await shardRows(erased.shard, "SELECT key FROM suppressions WHERE key = ?", accountKey)).toEqual([]);
    const back = anOrder({ id: `${erased.p}-back`, placedAt: at(0), identifiers: { account: `${erased.p}-acct` } });
    const outcome = await shardStub(env, erased.shard).ingest([back] as never, now.toISOString());
    expect(outcome).toMatchObject({ kind: "ingested", result: { accepted: 1, suppressed: 0 } });
  });
});

describe("a guest's erasure across shards", () => {
  it("suppresses the guest's own unverified identifiers, not one a customer in another shard was seen with", async () => {
    // A guest order (email and phone typed, unverified) is placed at the home of its order id; a
    // stranger's order, under an account whose home is another shard, typed the same phone.
    let n = 0;
    const shardOf = (key: string) => homeShard(key, 4);
    const p = uniquePrefix("guest-apart");
    let guestOrder = `${p}-g${n}`;
    let stranger = `${p}-stranger${n}`;
    const accountKeyOf = async (account: string) =>
      (await hashIdentifiers({ account }, env.IDENTITY_HASH_SECRET)).identities[0]?.key as string;
    while (shardOf(`order:${guestOrder}`) === shardOf(await accountKeyOf(stranger))) {
      n++;
      guestOrder = `${p}-g${n}`;
      stranger = `${p}-stranger${n}`;
    }
    const email = `${p}@mail.test`;
    const phone = `+1 415 555 ${String(1000 + (Number.parseInt(p.replace(/\D/g, "").slice(-4) || "0", 10) % 9000))}`;
    const post = async (orders: unknown[]) => {
      const response = await api.postOrders(orders);
      expect(response.status, await response.clone().text()).toBe(200);
      return (await response.json()) as {
        data: { accepted: number; suppressed: number; results: { customerId: string | null }[] };
      };
    };
    const guest = await post([anOrder({ id: guestOrder, identifiers: { email, phone } })]);
    await post([anOrder({ id: `${p}-s1`, identifiers: { account: stranger, phone } })]);
    const sightings = await Promise.all(
      [0, 1, 2, 3].map(
        async (shard) =>
          (
            await shardRows(
              shard,
              "SELECT source FROM identity_observations WHERE source IN (?, ?)",
              `order:${guestOrder}`,
              `order:${p}-s1`,
            )
          ).length,
      ),
    );
    expect(sightings.filter((count) => count > 0).length, "the two orders are in two shards").toBe(2);

    const erased = await api.call("DELETE", `/v1/customers/${guest.data.results[0]?.customerId}`, undefined, adminKey);
    expect(erased.status, await erased.clone().text()).toBe(200);
    const body = (await erased.json()) as { data: { suppressed: { orders: number; identifiers: number } } };
    expect(body.data.suppressed).toEqual({ orders: 1, identifiers: 1 });
    // The phone stays known where its entry says, as D1 keeps it: a lookup says it identifies nobody.
    const looked = await api.lookup("phone", phone);
    expect(looked.status).toBe(404);
    expect(await looked.text()).toContain("only ever sent unverified");
    // The guest's email stays suppressed; the phone the stranger typed is nobody's alone.
    expect(
      (await post([anOrder({ id: `${p}-g2`, identifiers: { email: verified(email), account: `${p}-new` } })])).data,
    ).toMatchObject({ accepted: 0, suppressed: 1 });
    expect((await post([anOrder({ id: `${p}-s2`, identifiers: { phone } })])).data).toMatchObject({
      accepted: 1,
      suppressed: 0,
    });
  });
});

describe("an erasure racing an ingestion in the customer's shard", () => {
  it("aborts the batch an identifier reached after the plan, and the retry erases and suppresses it too", async () => {
    const p = uniquePrefix("race");
    const account = `${p}-acct`;
    const { shard, shardCustomer } = await seedBoth(
      [anOrder({ id: `${p}-w1`, placedAt: at(20), identifiers: { account } })],
      now,
    );
    const customerId = shardCustomer.get(`${p}-w1`) as string;
    // Between the first plan and its batch, an identify call adds a verified email to the customer.
    const result = await runInDurableObject(shardStub(env, shard), async (instance) => {
      const db = (instance as unknown as { db: Db }).db;
      let attempts = 0;
      const erasure = await eraseCustomer(db, eventsDb, customerId, orderKey, now, async () => {
        attempts += 1;
        if (attempts === 1) {
          const identified = await identify(
            db,
            env.IDENTITY_HASH_SECRET,
            { account, email: verified(`${p}@late.test`) },
            now,
          );
          expect(identified.kind).toBe("identified");
        }
        return { events: 0 };
      });
      return { erasure, attempts };
    });
    expect(result.attempts).toBe(2);
    expect(result.erasure).toMatchObject({ kind: "erased", suppressed: { identifiers: 2, orders: 1 } });
    const { identities } = await hashIdentifiers({ email: verified(`${p}@late.test`) }, env.IDENTITY_HASH_SECRET);
    const emailKey = identities[0]?.key as string;
    expect(await shardRows(shard, "SELECT key FROM suppressions WHERE key = ?", emailKey)).toEqual([{ key: emailKey }]);
    expect(await shardRows(shard, "SELECT key FROM identities WHERE key = ?", emailKey)).toEqual([]);
  });
});

describe("an erasure racing a move of the customer's region", () => {
  /** Orders `n` stored for `prefix` in each of the four shards. */
  const ordersPerShard = async (prefix: string) => {
    const counts: number[] = [];
    for (let shard = 0; shard < 4; shard++)
      counts.push((await shardRows(shard, "SELECT id FROM orders WHERE id LIKE ?", `${prefix}%`)).length);
    return counts;
  };

  /**
   * Erases the customer of `${p}-w1` in its shard with `meanwhile` run once between the first plan and its
   * batch, as a move out of the shard can be (the erasure awaits D1 there); answers the erasure.
   */
  async function eraseWhile(p: string, meanwhile: (shard: CustomerShard, keys: string[]) => Promise<void>) {
    const account = `${p}-acct`;
    const { shard, shardCustomer } = await seedBoth(
      [anOrder({ id: `${p}-w1`, placedAt: at(20), identifiers: { account } })],
      now,
    );
    const customerId = shardCustomer.get(`${p}-w1`) as string;
    const keys = (
      await shardRows<{ key: string }>(shard, "SELECT key FROM identities WHERE customer_id = ?", customerId)
    ).map((row) => row.key);
    const { erasure, attempts } = await runInDurableObject(shardStub(env, shard), async (instance) => {
      const db = (instance as unknown as { db: Db }).db;
      let attempts = 0;
      const erasure = await eraseCustomer(db, eventsDb, customerId, orderKey, now, async () => {
        attempts += 1;
        if (attempts === 1) await meanwhile(instance as unknown as CustomerShard, keys);
        return { events: 0 };
      });
      return { erasure, attempts };
    });
    return { shard, customerId, erasure, attempts };
  }

  it("is busy when the move finished meanwhile, and the retry erases the customer in the shard it moved to", async () => {
    const p = uniquePrefix("race-moved");
    let target = -1;
    const { shard, customerId, erasure, attempts } = await eraseWhile(p, async (instance, keys) => {
      target = (instance.index + 1) % 4;
      expect(await instance.moveOut(keys, target, 4)).toEqual({ kind: "moved" });
    });
    expect(erasure.kind).toBe("busy");
    // Answered at once: no attempt here can find the customer again.
    expect(attempts).toBe(1);
    const counts = await ordersPerShard(p);
    expect(counts[shard]).toBe(0);
    expect(counts[target]).toBe(1);
    // The retry (the route answers 409 with Retry-After) follows the directory to the customer.
    const retried = await api.call("DELETE", `/v1/customers/${customerId}`, undefined, adminKey);
    expect(retried.status, await retried.clone().text()).toBe(200);
    expect(await ordersPerShard(p)).toEqual([0, 0, 0, 0]);
  });

  it("is busy, deleting nothing, while a move that takes the customer is under way", async () => {
    const p = uniquePrefix("race-moving");
    const { shard, erasure } = await eraseWhile(p, async (instance, keys) => {
      // The move is recorded and fenced; its copy may already be in the target.
      const placement = (instance as unknown as { placement: Parameters<typeof recordMoveOut>[0] }).placement;
      expect(await recordMoveOut(placement, keys, (instance.index + 1) % 4)).toMatchObject({ kind: "recorded" });
    });
    expect(erasure.kind).toBe("busy");
    expect((await ordersPerShard(p))[shard]).toBe(1);
  });
});

describe("an erasure of a customer whose region moved between shards", () => {
  it("leaves no trace of it in any shard's move records or fences, and its keys still refused where they were", async () => {
    // Two orders joined by a verified email, and a card customer whose key's home is another shard.
    const p = uniquePrefix("moved");
    const keyOf = async (identifiers: Record<string, { value: string; verified: boolean }>) =>
      (await hashIdentifiers(identifiers, env.IDENTITY_HASH_SECRET)).identities[0]?.key as string;
    let [email, card] = [`${p}-0@mail.test`, `${p}-card-0`];
    for (
      let n = 1;
      homeShard(await keyOf({ email: verified(email) }), 4) === homeShard(await keyOf({ card: verified(card) }), 4);
      n++
    )
      [email, card] = [`${p}-${n}@mail.test`, `${p}-card-${n}`];
    const [emailKey, cardKey] = [await keyOf({ email: verified(email) }), await keyOf({ card: verified(card) })];
    const posted = async (orders: unknown[]) => {
      const response = await api.postOrders(orders);
      expect(response.status, await response.clone().text()).toBe(200);
      return (await response.json()) as { data: { results: { customerId: string }[] } };
    };
    const web = await posted([1, 2].map((n) => anOrder({ id: `${p}-o${n}`, identifiers: { email: verified(email) } })));
    await posted([anOrder({ id: `${p}-c1`, channel: "store", identifiers: { card: verified(card) } })]);
    // An identify call merges the card customer in: one region moves into the other's shard.
    const identified = await api.identify({ email: verified(email), card: verified(card) });
    expect(identified.status, await identified.clone().text()).toBe(200);

    const everything = async (shard: number) => ({
      moves: await shardRows<Record<string, string>>(shard, "SELECT * FROM shard_moves"),
      fences: await shardRows<{ key: string }>(shard, "SELECT key FROM shard_fences"),
    });
    const named = (shard: { moves: Record<string, string>[] }) =>
      shard.moves.filter((move) => move.keys?.includes(emailKey) || move.keys?.includes(cardKey));
    const before = await Promise.all([0, 1, 2, 3].map(everything));
    const moved = before.flatMap(named);
    expect(moved.map((move) => move.direction).sort()).toEqual(["in", "out"]);
    const source = before.findIndex((shard) => named(shard).some((move) => move.direction === "out"));
    const movedKey = moved[0]?.keys?.includes(emailKey) ? emailKey : cardKey;
    expect(before[source]?.fences.map((fence) => fence.key)).toContain(movedKey);
    const customers = JSON.parse(moved[0]?.customers ?? "[]") as string[];
    expect(customers.length).toBeGreaterThan(0);

    const erased = await api.call("DELETE", `/v1/customers/${web.data.results[0]?.customerId}`, undefined, adminKey);
    expect(erased.status, await erased.clone().text()).toBe(200);

    // The records stay, by move id, with nothing of the customer: no key, customer id or order id.
    const traces = [emailKey, cardKey, ...customers, `${p}-o1`, `${p}-o2`, `${p}-c1`];
    for (const shard of [0, 1, 2, 3]) {
      const after = await everything(shard);
      const text = JSON.stringify(after);
      for (const trace of traces) expect(text.includes(trace), `${trace} in shard ${shard}`).toBe(false);
      const same = (a: Record<string, string>, b: Record<string, string>) =>
        a.id === b.id && a.direction === b.direction;
      for (const move of moved.filter((row) => before[shard]?.moves.some((mine) => same(mine, row))))
        expect(after.moves.find((row) => same(row, move))).toMatchObject({
          keys: "[]",
          customers: "[]",
          sources: "[]",
          status: "done",
        });
    }
    // A router that located the moved key in its old shard before the move is still refused there:
    // its fence is gone, and the shard's own suppression list holds the key instead.
    const identifiers: Record<string, { value: string; verified: boolean }> =
      movedKey === emailKey ? { email: verified(email) } : { card: verified(card) };
    const late = orderSchema.parse(anOrder({ id: `${p}-late`, identifiers }));
    const stale = await shardStub(env, source).ingestGroups([late], [movedKey], now.toISOString(), [], 4);
    expect(stale).toMatchObject({ kind: "ingested", result: { accepted: 0, suppressed: 1 } });
    expect(await shardRows(source, "SELECT id FROM orders WHERE id = ?", late.id)).toEqual([]);
  });
});

describe("an erasure's scrub of the other shards, kept in the erasing shard until a pass succeeds", () => {
  const shards = [0, 1, 2, 3];
  const sightingsOf = (shard: number, source: string) =>
    shardRows<Record<string, unknown>>(shard, "SELECT * FROM identity_observations WHERE source = ?", source);

  /** A customer (account and verified email) and a guest order typing the email, placed in another shard. */
  async function typedElsewhere(p: string) {
    const email = `tina.${p}@post.org`;
    const account = `${p}-tina`;
    const accountKey = (await hashIdentifiers({ account }, env.IDENTITY_HASH_SECRET)).identities[0]?.key as string;
    let n = 0;
    while (homeShard(`order:${p}-guest${n}`, 4) === homeShard(accountKey, 4)) n++;
    const guestOrder = `${p}-guest${n}`;
    const posted = await api.postOrders([
      anOrder({ id: `${p}-acct`, identifiers: { account, email: verified(email) } }),
      anOrder({ id: guestOrder, identifiers: { email, phone: "+1 415 555 0378" } }),
    ]);
    expect(posted.status, await posted.clone().text()).toBe(200);
    const { results } = ((await posted.json()) as { data: { results: { customerId: string }[] } }).data;
    const guestShard = homeShard(`order:${guestOrder}`, 4);
    const sighting = await sightingsOf(guestShard, `order:${guestOrder}`);
    expect(sighting.length, "the guest's email and phone").toBe(2);
    return { tina: results[0]?.customerId as string, guestOrder, guestShard, sighting, home: homeShard(accountKey, 4) };
  }

  /** Puts rows back into a shard's identity_observations: what a shard that missed the scrub still has. */
  const putBack = (shard: number, rows: Record<string, unknown>[]) =>
    runInDurableObject(shardStub(env, shard), (_instance, state) => {
      for (const row of rows) {
        const columns = Object.keys(row);
        state.storage.sql.exec(
          `INSERT OR IGNORE INTO identity_observations (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
          ...columns.map((column) => row[column]),
        );
      }
    });

  it("runs once more from the erasing shard's alarm, taking a sighting a shard kept, then is done", async () => {
    const p = uniquePrefix("scrub-later");
    const { tina, guestOrder, guestShard, sighting, home } = await typedElsewhere(p);
    const erased = await api.call("DELETE", `/v1/customers/${tina}`, undefined, adminKey);
    expect(erased.status, await erased.clone().text()).toBe(200);
    // The request's own pass took the email off the guest's order; the phone is the guest's.
    expect((await sightingsOf(guestShard, `order:${guestOrder}`)).length).toBe(1);
    // Kept in the erasing shard alone, due for its later pass about ten minutes on, with the alarm set for it.
    const kept = await Promise.all(
      shards.map((shard) =>
        shardRows<{ due_at: string; attempts: number; plan: string }>(
          shard,
          "SELECT due_at, attempts, plan FROM erasure_scrubs WHERE customer_id = ?",
          tina,
        ),
      ),
    );
    expect(kept.map((rows) => rows.length)).toEqual(shards.map((shard) => (shard === home ? 1 : 0)));
    const [todo] = kept[home] ?? [];
    // Only what the scrub needs: no shared or linked identifiers of other people, no suppression keys.
    const plan = JSON.parse(todo?.plan ?? "{}");
    expect(Object.keys(plan).sort()).toEqual(["customerIds", "identifiers", "orderIds", "shard", "sources"]);
    expect(plan).toMatchObject({ customerIds: [tina], orderIds: [`${p}-acct`], shard: home });
    // Its orders' sources are kept as their ids only (the pass rebuilds them): each order stored once.
    expect(plan.sources.filter((source: string) => source.startsWith("order:"))).toEqual([]);
    const dueIn = Date.parse(todo?.due_at ?? "") - Date.now();
    expect(dueIn).toBeGreaterThan(9 * 60_000);
    expect(dueIn).toBeLessThanOrEqual(10 * 60_000);
    const alarm = await runInDurableObject(shardStub(env, home), (_instance, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm).toBeLessThanOrEqual(Date.parse(todo?.due_at ?? ""));

    // A shard that did not answer (or a move that carried the row in after its scrub) still has the email's sighting.
    await putBack(guestShard, sighting);
    expect((await sightingsOf(guestShard, `order:${guestOrder}`)).length).toBe(2);
    await shardRows(
      home,
      "UPDATE erasure_scrubs SET due_at = ? WHERE customer_id = ?",
      new Date(0).toISOString(),
      tina,
    );
    expect(await runDurableObjectAlarm(shardStub(env, home))).toBe(true);
    const left = await sightingsOf(guestShard, `order:${guestOrder}`);
    expect(left.map((row) => row.identity_key)).toEqual(
      sighting.filter((row) => String(row.identity_key).startsWith("phone:")).map((row) => row.identity_key),
    );
    expect(await shardRows(home, "SELECT * FROM erasure_scrubs WHERE customer_id = ?", tina)).toEqual([]);
  });

  it("keeps a pass that fails, due again later with the alarm set for it", async () => {
    const p = uniquePrefix("scrub-fails");
    const { tina, home } = await typedElsewhere(p);
    const erased = await api.call("DELETE", `/v1/customers/${tina}`, undefined, adminKey);
    expect(erased.status).toBe(200);
    // A plan the pass cannot read (its directory keys cannot be listed): the pass throws before any call.
    await shardRows(
      home,
      "UPDATE erasure_scrubs SET due_at = ?, plan = ? WHERE customer_id = ?",
      new Date(0).toISOString(),
      JSON.stringify({ customerIds: [tina], orderIds: [], identifiers: null, sources: [], shard: home }),
      tina,
    );
    const before = Date.now();
    expect(await runDurableObjectAlarm(shardStub(env, home))).toBe(true);
    const [todo] = await shardRows<{ due_at: string; attempts: number }>(
      home,
      "SELECT due_at, attempts FROM erasure_scrubs WHERE customer_id = ?",
      tina,
    );
    expect(todo?.attempts).toBe(1);
    expect(Date.parse(todo?.due_at ?? "")).toBeGreaterThanOrEqual(before + 60_000);
    const alarm = await runInDurableObject(shardStub(env, home), (_instance, state) => state.storage.getAlarm());
    expect(alarm).toBeLessThanOrEqual(Date.parse(todo?.due_at ?? ""));
    await shardRows(home, "DELETE FROM erasure_scrubs WHERE customer_id = ?", tina);
  });
});
