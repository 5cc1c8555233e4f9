// Batches of orders racing each other across the customer shards, with identifiers drawn from small
// pools so that customers merge across orders and batches: every order stored is answered as stored
// (created in a 200, or listed as stored in a 409 that asks for a retry), none is stored twice, a
// refused batch leaves no claim behind, and the batches resent alone go through at once. And a batch
// refused after some of its groups were stored: the answer lists them, their merges reach the events
// database, and its other orders' claims are dropped.
import { createExecutionContext, env, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../worker/app.ts";
import { homeShard } from "../../../worker/core/shards/placement.ts";
import { customerResponseSchema } from "../../../worker/customers/customers.schemas.ts";
import { identityKey, normalizeForKey } from "../../../worker/identity/identity.keys.ts";
import { ingestResultSchema } from "../../../worker/orders/orders.schemas.ts";
import { shardStub } from "../../../worker/shards/shards.ts";
import { anOrder, client, uniquePrefix, verified } from "../../fixtures/builders.ts";
import { storeRows } from "../../fixtures/store-rows.ts";
import { interceptedEnv } from "./intercepted-env.ts";

const api = client(SELF);
const count = 4;
const secret = "test-identity-secret";

/** A small seeded generator (mulberry32), so a failing draw can be run again. */
function generator(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `total` orders whose accounts, verified emails and loyalty cards come from pools of a few each. */
function overlappingOrders(p: string, total: number, random: () => number) {
  const pick = (size: number) => Math.floor(random() * size);
  return Array.from({ length: total }, (_, n) => {
    const identifiers: Record<string, string | { value: string; verified: boolean }> = {};
    // One to three of the three kinds, each from its own pool.
    while (Object.keys(identifiers).length === 0) {
      if (random() < 0.5) identifiers.account = `${p}-acct-${pick(10)}`;
      if (random() < 0.5) identifiers.email = verified(`${p}-${pick(10)}@example.com`);
      if (random() < 0.5) identifiers.loyalty = `${p}-CARD-${pick(10)}`;
    }
    return anOrder({
      id: `${p}-o${n}`,
      channel: identifiers.loyalty ? "store" : "web",
      placedAt: new Date(Date.UTC(2026, 0, 1 + n, 10)).toISOString(),
      identifiers,
    });
  });
}

/** `orders` cut into `batches` consecutive batches of 1–40 orders each. */
function cut<T>(orders: readonly T[], batches: number, random: () => number): T[][] {
  const sizes = Array.from({ length: batches }, () => 1);
  for (let left = orders.length - batches; left > 0; ) {
    const at = Math.floor(random() * batches);
    if ((sizes[at] as number) < 40) {
      sizes[at] = (sizes[at] as number) + 1;
      left--;
    }
  }
  let from = 0;
  return sizes.map((size) => {
    from += size;
    return orders.slice(from - size, from);
  });
}

type Answer =
  | { status: 200; created: string[]; duplicates: number; accepted: number }
  | { status: 409; retryAfter: string | null; stored: string[] };

/** POSTs one batch once and reads what its answer says was stored by it. */
async function send(batch: readonly { id: string }[]): Promise<Answer> {
  const response = await api.postOrders([...batch]);
  if (response.status === 409) {
    const body = (await response.json()) as { error: { issues?: { path: (string | number)[] }[] } };
    // A 409 lists the orders it stored before it gave up, each by its index in the batch.
    const stored = (body.error.issues ?? []).map((issue) => batch[issue.path[1] as number]?.id as string);
    return { status: 409, retryAfter: response.headers.get("Retry-After"), stored };
  }
  expect(response.status, await response.clone().text()).toBe(200);
  const { data } = ingestResultSchema.parse(await response.json());
  return {
    status: 200,
    created: data.results.filter((result) => result.status === "created").map((result) => result.id),
    duplicates: data.duplicates,
    accepted: data.accepted,
  };
}

/**
 * Sends the batches `parallel` at a time and answers each batch's answers in batch order: one each, or
 * with `retries`, a 409 with Retry-After sent again (at once, as the other tests' clients do) until it
 * is answered otherwise or `retries` resends were answered 409 too.
 */
async function sendAll(
  batches: readonly (readonly { id: string }[])[],
  parallel: number,
  retries = 0,
): Promise<Answer[][]> {
  const answers: Answer[][] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < batches.length) {
        const at = next++;
        const own: Answer[] = [];
        answers[at] = own;
        for (let attempt = 0; attempt <= retries; attempt++) {
          const answer = await send(batches[at] as { id: string }[]);
          own.push(answer);
          if (answer.status !== 409 || !answer.retryAfter) break;
        }
      }
    }),
  );
  return answers;
}

/** The orders the answers say were stored by them (created in a 200, listed in a 409), in answer order. */
const storedBy = (answers: readonly Answer[]) =>
  answers.flatMap((answer) => (answer.status === 200 ? answer.created : answer.stored));

/** Each stored order of prefix `p` with the shards holding it. */
async function holders(p: string): Promise<Map<string, number[]>> {
  const held = new Map<string, number[]>();
  for (let shard = 0; shard < count; shard++) {
    const rows = await runInDurableObject(shardStub(env, shard), (_instance, state) =>
      state.storage.sql.exec("SELECT id FROM orders WHERE id LIKE ?", `${p}-%`).toArray(),
    );
    for (const row of rows) held.set(String(row.id), [...(held.get(String(row.id)) ?? []), shard]);
  }
  return held;
}

/** Every `order:` entry of prefix `p` in the directories, with the shard it names. */
async function orderEntries(p: string): Promise<Map<string, number>> {
  const entries = new Map<string, number>();
  for (let shard = 0; shard < count; shard++) {
    const rows = await runInDurableObject(shardStub(env, shard), (_instance, state) =>
      state.storage.sql.exec("SELECT key, shard FROM shard_directory WHERE key LIKE ?", `order:${p}-%`).toArray(),
    );
    for (const row of rows) entries.set(String(row.key).slice("order:".length), Number(row.shard));
  }
  return entries;
}

/**
 * The directory agrees with the orders: every entry names the shard holding its order (no claim left
 * naming a shard that never stored it), and an order held away from its home has one.
 */
async function expectDirectoryAgrees(p: string) {
  const [held, entries] = await Promise.all([holders(p), orderEntries(p)]);
  const stale = [...entries].filter(([id, shard]) => held.get(id)?.[0] !== shard);
  expect(stale, "entries naming a shard that does not hold their order").toEqual([]);
  const unfound = [...held].filter(([id, [shard]]) => shard !== homeShard(`order:${id}`, count) && !entries.has(id));
  expect(unfound, "orders away from their home with no entry").toEqual([]);
}

describe("batches with overlapping identifiers racing each other", () => {
  it("answer every order they store as stored, store none twice, and go through when resent alone", async () => {
    const seed = 20261205;
    const random = generator(seed);
    const p = uniquePrefix("contend");
    const orders = overlappingOrders(p, 120, random);
    const batches = cut(orders, 24, random);

    const answers = (await sendAll(batches, 8)).map(([answer]) => answer as Answer);
    const held = await holders(p);
    expect(
      [...held].filter(([, shards]) => shards.length > 1),
      "orders stored twice",
    ).toEqual([]);
    // What the answers say was stored by them is what is stored: each order once, by one answer.
    const reported = storedBy(answers);
    expect(reported.length, "an order answered as stored by two requests").toBe(new Set(reported).size);
    expect(new Set(reported), `seed ${seed}`).toEqual(new Set(held.keys()));
    for (const answer of answers) if (answer.status === 409) expect(answer.retryAfter).toBe("1");
    for (const answer of answers)
      if (answer.status === 200) expect(answer.accepted + answer.duplicates).toBeGreaterThan(0);
    // A refused batch drops the claims of the orders it stored nowhere: no entry names a shard that
    // does not hold its order.
    await expectDirectoryAgrees(p);

    // Resent alone, the whole lot goes through at once: what was stored is a duplicate, the rest created.
    const storedBefore = held.size;
    const resent = await send(orders);
    expect(resent.status, JSON.stringify(resent)).toBe(200);
    if (resent.status !== 200) return;
    expect(resent.accepted).toBe(orders.length - storedBefore);
    expect(resent.duplicates).toBe(storedBefore);
    const after = await holders(p);
    expect(after.size).toBe(orders.length);
    expect(
      [...after].filter(([, shards]) => shards.length > 1),
      "orders stored twice",
    ).toEqual([]);
    await expectDirectoryAgrees(p);
    // Every order counted once in its customer's summary.
    const summaries = await storeRows<{ orders: number }>(
      `SELECT orders FROM customer_summaries WHERE customer_id IN
        (SELECT customer_id FROM orders WHERE id LIKE ?)`,
      `${p}-%`,
    );
    expect(summaries.reduce((sum, row) => sum + Number(row.orders), 0)).toBe(orders.length);
    // And once more: all duplicates.
    expect(await send(orders)).toMatchObject({ status: 200, accepted: 0, duplicates: orders.length });
  });

  it("go through when their clients resend each batch refused with Retry-After, and count each order once", async () => {
    const seed = 20261206;
    const random = generator(seed);
    const p = uniquePrefix("contend-retry");
    const orders = overlappingOrders(p, 120, random);
    const batches = cut(orders, 24, random);

    const answers = await sendAll(batches, 8, 10);
    // Every batch ends answered 200: a 409 asking for a retry clears by itself.
    expect(
      answers.map((own) => own.at(-1)?.status),
      `seed ${seed}`,
    ).toEqual(batches.map(() => 200));
    const held = await holders(p);
    expect(held.size).toBe(orders.length);
    expect(
      [...held].filter(([, shards]) => shards.length > 1),
      "orders stored twice",
    ).toEqual([]);
    // Over all the answers of all the batches each order is said stored once: created in a 200, or
    // listed by a 409 (and answered a duplicate by the batch's next answer).
    const reported = answers.flatMap(storedBy);
    expect(reported.length, "an order answered as stored twice").toBe(new Set(reported).size);
    expect(new Set(reported)).toEqual(new Set(orders.map((order) => order.id)));
    for (const own of answers) {
      const last = own.at(-1);
      if (last?.status === 200) expect(last.accepted).toBe(last.created.length);
    }
    await expectDirectoryAgrees(p);
  });
});

/** The identity key of an account or a loyalty card, as the shards' directories hold it. */
async function keyOf(kind: "account" | "loyalty", value: string): Promise<string> {
  const normalized = normalizeForKey(kind, value);
  if (!normalized.ok) throw new Error(normalized.reason);
  return identityKey(kind, normalized.value, secret);
}

/** The first of `${p}-0`, `${p}-1`, … for which `accept` holds. */
async function firstOf(p: string, accept: (value: string) => Promise<boolean> | boolean): Promise<string> {
  for (let n = 0; ; n++) if (await accept(`${p}-${n}`)) return `${p}-${n}`;
}

/** An API client whose requests run with `bindings` (the test's own, some shard calls answered otherwise). */
function clientWith(bindings: typeof env) {
  const app = createApp();
  return client({
    async fetch(input: string, init?: RequestInit) {
      const context = createExecutionContext();
      const response = await app.fetch(new Request(input, init), bindings, context);
      await waitOnExecutionContext(context);
      return response;
    },
  });
}

/** The test's env with every `ingestGroups` call to shard `busy` answered busy, writing nothing. */
const busyShardEnv = (busy: number) =>
  interceptedEnv((shard, method, call) =>
    shard === `shard-${busy}` && method === "ingestGroups" ? async () => ({ kind: "busy" }) : call,
  );

describe("a batch refused after some of its groups were stored", () => {
  it("lists them, moves the events of their merges, drops its other claims, and its resend goes through", async () => {
    const p = uniquePrefix("partial");
    // A web account and a loyalty card homed in two shards, each with a customer of its own there.
    const account = `${p}-web`;
    const webShard = homeShard(await keyOf("account", account), count);
    const loyalty = await firstOf(
      `${p}-CARD`,
      async (value) => homeShard(await keyOf("loyalty", value), count) !== webShard,
    );
    const storeShard = homeShard(await keyOf("loyalty", loyalty), count);
    const target = Math.min(webShard, storeShard);
    await api.postOrders([anOrder({ id: `${p}-w1`, identifiers: { account } })]);
    await api.postOrders([anOrder({ id: `${p}-s1`, channel: "store", identifiers: { loyalty } })]);
    const customerOf = async (kind: string, value: string) =>
      customerResponseSchema.parse(await (await api.lookup(kind, value)).json()).data.customerId;
    const [web, store] = [await customerOf("account", account), await customerOf("loyalty", loyalty)];
    // Each has an event in the events database.
    for (const customerId of [web, store])
      await env.EVENTS_DB.prepare(
        "INSERT INTO events (type, customer_id, product_id, at, dedupe_key) VALUES ('view', ?, 'sku-1', ?, ?)",
      )
        .bind(customerId, "2026-03-01T10:00:00Z", `${p}-${customerId}`)
        .run();

    // The batch: an order linking the two (stored in `target`, the customers merged), and a new
    // customer's order whose shard answers busy every time; that order's id is homed elsewhere, so its
    // claim records an entry.
    const other = await firstOf(
      `${p}-acct`,
      async (value) => homeShard(await keyOf("account", value), count) !== target,
    );
    const otherShard = homeShard(await keyOf("account", other), count);
    const otherId = await firstOf(`${p}-other`, (id) => homeShard(`order:${id}`, count) !== otherShard);
    const batch = [
      anOrder({ id: `${p}-link`, channel: "store", identifiers: { account, loyalty } }),
      anOrder({ id: otherId, identifiers: { account: other } }),
    ];
    const refused = await clientWith(busyShardEnv(otherShard)).postOrders(batch);
    expect(refused.status).toBe(409);
    expect(refused.headers.get("Retry-After")).toBe("1");
    const { error } = (await refused.json()) as {
      error: { message: string; issues?: { path: (string | number)[]; message: string }[] };
    };
    expect(error.message).toContain("1 of its orders was stored before this answer");
    expect(error.issues).toEqual([{ path: ["orders", 0], message: "stored by this request before it was refused" }]);

    // The link is stored and the customers merged; the events of the one merged away follow it.
    const survivor = await customerOf("account", account);
    expect(await customerOf("loyalty", loyalty)).toBe(survivor);
    const events = await env.EVENTS_DB.prepare("SELECT customer_id FROM events WHERE dedupe_key LIKE ?")
      .bind(`${p}-%`)
      .all<{ customer_id: string }>();
    expect(events.results.map((row) => row.customer_id)).toEqual([survivor, survivor]);
    // The other order is stored nowhere, and its claim is gone.
    expect((await holders(p)).has(otherId)).toBe(false);
    expect((await orderEntries(p)).has(otherId)).toBe(false);

    // Resent: the link is a duplicate, the other order created.
    const resent = await send(batch);
    expect(resent).toMatchObject({ status: 200, accepted: 1, duplicates: 1, created: [otherId] });
    await expectDirectoryAgrees(p);
  });
});
