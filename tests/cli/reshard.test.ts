// `patron shards reshard --to 5` on a local deployment with SHARD_COUNT=3 (`wrangler dev`, real local
// Durable Objects): the walk and prepare under 3, the restart with SHARD_COUNT=5 on the same state, the
// run again that finishes. Every identifier finds the same customer with the same orders before, in
// between and after; a resent order is still a duplicate; new orders join their customers; the old
// shards keep no entry for a key homed in a new shard once finished. Then `patron shards rebalance` moves
// the regions of accounts homed in a new shard there, and every answer stays the same. Last,
// `patron shards reshard --to 3` shrinks the 5 shards back to 3: the drain empties shards 3 and 4
// under 5, the restart with 3, the finish; every answer stays the same throughout.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { adminKey, anOrder, client, verified } from "../fixtures/builders.ts";
import { type DevWorker, freePort, startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";

const root = path.resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

let scratch: string;
let persistDir: string;
let port: number;
let worker: DevWorker | undefined;

const start = async (shards: number) => {
  worker = await startDevWorker({ persistDir, port, vars: { SHARD_COUNT: String(shards) }, timeoutMs: 120_000 });
  return client({ fetch: (input, init) => fetch(input, init) }, worker.url);
};

async function patron(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(root, "cli/bin.mjs"), ...args], {
      cwd: scratch,
      env: { ...process.env, PATRON_ADMIN_KEY: testSecrets.PATRON_ADMIN_KEY },
    });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
  }
}

/** Shoppers with accounts, store cards and emails that join some of them (moves), and guests. */
function history() {
  return Array.from({ length: 60 }, (_, i) =>
    anOrder({
      id: `rs-${i}`,
      channel: i % 2 ? "store" : "web",
      placedAt: `2026-0${1 + (i % 9)}-1${i % 10}T10:00:00Z`,
      identifiers:
        i % 10 === 9
          ? { email: `guest-${i}@x.test` }
          : { account: `rs-acct-${i % 40}`, loyalty: `rs-card-${i % 45}`, email: verified(`rs-${i % 33}@x.test`) },
    }),
  );
}

/** Every account and store card the history holds. */
const identifiers = [
  ...new Set(
    history().flatMap(({ identifiers }) =>
      Object.entries(identifiers)
        .filter(([kind]) => kind === "account" || kind === "loyalty")
        .map(([kind, value]) => `${kind}\t${value}`),
    ),
  ),
].map((pair) => pair.split("\t") as [string, string]);

type Api = Awaited<ReturnType<typeof start>>;

/**
 * Each identifier's answer (its customer and orders, or why it names nobody: a card several customers
 * shared), and each customer's orders by id: what must not change. Most identifiers name a customer.
 */
async function picture(api: Api) {
  const seen: Record<string, unknown> = {};
  let found = 0;
  for (const [kind, value] of identifiers) {
    const response = await api.lookup(kind, value);
    if (response.status !== 200) {
      expect(response.status, `${kind} ${value}: ${await response.clone().text()}`).toBe(404);
      seen[`${kind}:${value}`] = ((await response.json()) as { error: { message: string } }).error.message;
      continue;
    }
    found++;
    const { data } = (await response.json()) as { data: { customerId: string; orders: { id: string }[] } };
    const orders = data.orders.map((order) => order.id).sort();
    seen[`${kind}:${value}`] = { customerId: data.customerId, orders };
    const byId = await api.customer(data.customerId);
    expect(byId.status, `customer ${data.customerId}: ${await byId.clone().text()}`).toBe(200);
    const own = ((await byId.json()) as { data: { orders: { id: string }[] } }).data.orders.map((order) => order.id);
    expect(own.sort()).toEqual(orders);
  }
  expect(found).toBeGreaterThan(identifiers.length / 2);
  return seen;
}

async function known(api: Api, account: string): Promise<boolean> {
  const token = await signShopperToken(account, testSecrets.SHOPPER_TOKEN_SECRET, 3600, new Date());
  const response = await api.call("GET", "/v1/recommendations?placement=home", undefined, token);
  expect(response.status, await response.clone().text()).toBe(200);
  return ((await response.json()) as { data: { customerKnown: boolean } }).data.customerKnown;
}

async function ingest(api: Api, orders: unknown[]) {
  const response = await api.postOrders(orders);
  expect(response.status, await response.clone().text()).toBe(200);
  return ((await response.json()) as { data: { accepted: number; duplicates: number } }).data;
}

beforeAll(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), "patron-reshard-"));
  persistDir = path.join(scratch, "state");
  port = await freePort();
}, 30_000);

afterAll(async () => {
  await worker?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("patron shards reshard", () => {
  it("grows 3 shards to 5 with every customer found the same before, in between and after", async () => {
    let api = await start(3);
    expect(await ingest(api, history())).toMatchObject({ accepted: 60 });
    const before = await picture(api);
    expect(await known(api, "rs-acct-7")).toBe(true);

    const prepared = await patron("shards", "reshard", "--to", "5", "--url", worker?.url ?? "", "--limit", "7");
    expect(prepared.code, prepared.stderr).toBe(0);
    expect(prepared.stdout).toMatch(/prepared 3 shards for 5: walked \d+ rows and wrote \d+ directory entries/);
    // A --url on this machine is the local worker: the count is set in .dev.vars.
    expect(prepared.stdout).toMatch(/Now set SHARD_COUNT=5 in \.dev\.vars and restart npm start/);
    expect(await picture(api)).toEqual(before);
    const refused = await api.postOrders([anOrder({ id: "rs-between", identifiers: { account: "rs-acct-1" } })]);
    expect(refused.status).toBe(503);

    await worker?.stop();
    api = await start(5);
    expect(await picture(api)).toEqual(before);
    expect(await known(api, "rs-acct-7")).toBe(true);
    // A resend writes nothing; new orders join their customers, and a new shopper is placed.
    expect(await ingest(api, history())).toMatchObject({ accepted: 0, duplicates: 60 });
    await expectNewOrdersJoin(api, before, "rs-after-1", "rs-new");

    const finished = await patron("shards", "reshard", "--to", "5", "--url", worker?.url ?? "", "--limit", "7");
    expect(finished.code, finished.stderr).toBe(0);
    expect(finished.stdout).toMatch(/finished: the deployment runs 5 shards; the old 3 shards' \d+ entries/);
    expect(finished.stdout).toMatch(/run patron shards rebalance to move them/);
    const status = await api.call("GET", "/v1/admin/shards/reshard", undefined, adminKey);
    const { data } = (await status.json()) as {
      data: { phase: string; removed: number; running: number; cursor: string };
    };
    // Done, it keeps no key of its last page as its cursor (an erasure would leave it named there).
    expect(data).toMatchObject({ phase: "done", running: 5, cursor: "" });
    expect(data.removed).toBeGreaterThan(0);
    // As before, with the one order added since.
    const after = (await picture(api)) as Record<string, { orders?: string[] }>;
    const { orders = [] } = after["account:rs-acct-7"] ?? {};
    after["account:rs-acct-7"] = { ...after["account:rs-acct-7"], orders: orders.filter((id) => id !== "rs-after-1") };
    expect(after).toEqual(before);
    expect(await known(api, "rs-acct-7")).toBe(true);
    expect(await ingest(api, history())).toMatchObject({ accepted: 0, duplicates: 60 });

    // Finished: another run says so again.
    const again = await patron("shards", "reshard", "--to", "5", "--url", worker?.url ?? "");
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/finished: the deployment runs 5 shards/);

    // The regions of accounts homed in a new shard now move there, and every answer stays; run again, nothing moves.
    const beforeRebalance = await picture(api);
    const rebalanced = await patron("shards", "rebalance", "--url", worker?.url ?? "", "--limit", "5");
    expect(rebalanced.code, rebalanced.stderr).toBe(0);
    const moved = /visited (\d+) customers in 5 shards: moved (\d+) to their home shard, in (\d+) moves/.exec(
      rebalanced.stdout,
    );
    expect(moved, rebalanced.stdout).not.toBeNull();
    expect(Number(moved?.[2])).toBeGreaterThan(0);
    expect(await picture(api)).toEqual(beforeRebalance);
    expect(await known(api, "rs-acct-7")).toBe(true);
    expect(await ingest(api, history())).toMatchObject({ accepted: 0, duplicates: 60 });
    const second = await patron("shards", "rebalance", "--url", worker?.url ?? "");
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/in 5 shards: moved 0 to their home shard, in 0 moves/);

    // The old shards are the new count's now: set back to 3, they refuse rather than miss customers.
    await worker?.stop();
    api = await start(3);
    const refusedAfter = await api.lookup("account", "rs-acct-7");
    expect(refusedAfter.status).toBe(503);
    expect(((await refusedAfter.json()) as { error: { message: string } }).error.message).toMatch(
      /SHARD_COUNT is 3, but the customer shards were placed for 5\. Set it back to 5, or, with it set back, run patron shards reshard --to 3 first/,
    );
  }, 600_000);

  it("shrinks 5 shards back to 3 with every customer found the same before, in between and after", async () => {
    await worker?.stop();
    let api = await start(5);
    const before = await picture(api);
    const held = await shardCustomers(api);
    expect(held.slice(3).reduce((sum, n) => sum + n, 0)).toBeGreaterThan(0);

    const prepared = await patron("shards", "reshard", "--to", "3", "--url", worker?.url ?? "", "--limit", "7");
    expect(prepared.code, prepared.stderr).toBe(0);
    const moved =
      /prepared 5 shards for 3: moved (\d+) customers out of shards 3 to 4 in (\d+) moves \(1 pass\), walked \d+ rows and wrote \d+ directory entries/.exec(
        prepared.stdout,
      );
    expect(moved, prepared.stdout).not.toBeNull();
    expect(Number(moved?.[1])).toBe(held.slice(3).reduce((sum, n) => sum + n, 0));
    expect(prepared.stdout).toMatch(/Now set SHARD_COUNT=3 in \.dev\.vars and restart npm start/);
    expect(await picture(api)).toEqual(before);
    expect((await shardCustomers(api)).slice(3)).toEqual([0, 0]);

    await worker?.stop();
    api = await start(3);
    expect(await picture(api)).toEqual(before);
    expect(await known(api, "rs-acct-7")).toBe(true);
    expect(await ingest(api, history())).toMatchObject({ accepted: 0, duplicates: 60 });

    const finished = await patron("shards", "reshard", "--to", "3", "--url", worker?.url ?? "");
    expect(finished.code, finished.stderr).toBe(0);
    expect(finished.stdout).toMatch(/finished: the deployment runs 3 shards; shards 3 to 4 are emptied/);
    expect(await picture(api)).toEqual(before);
    expect(await ingest(api, history())).toMatchObject({ accepted: 0, duplicates: 60 });
    await expectNewOrdersJoin(api, before, "rs-shrunk-1", "rs-newer");
    const status = await patron("shards", "status", "--url", worker?.url ?? "", "--json");
    expect(status.code, status.stderr).toBe(0);
    const shards = (JSON.parse(status.stdout) as { count: number; shards: { shard: number }[] }).shards;
    expect(shards.map((part) => part.shard)).toEqual([0, 1, 2]);
  }, 600_000);
});

/**
 * A new order of rs-acct-7 (`orderId`) joins the customer `before` found for it, and a new shopper
 * (`newAccount`) is placed and found.
 */
async function expectNewOrdersJoin(api: Api, before: Record<string, unknown>, orderId: string, newAccount: string) {
  expect(
    await ingest(api, [
      anOrder({ id: orderId, identifiers: { account: "rs-acct-7" } }),
      anOrder({ id: `${orderId}-new`, identifiers: { account: newAccount } }),
    ]),
  ).toMatchObject({ accepted: 2 });
  const joined = (await (await api.lookup("account", "rs-acct-7")).json()) as {
    data: { customerId: string; orders: { id: string }[] };
  };
  expect(joined.data.customerId).toBe((before["account:rs-acct-7"] as { customerId: string }).customerId);
  expect(joined.data.orders.map((order) => order.id)).toContain(orderId);
  expect((await api.lookup("account", newAccount)).status).toBe(200);
}

/** Customers each shard holds, by `GET /v1/admin/shards`. */
async function shardCustomers(api: Api): Promise<number[]> {
  const response = await api.call("GET", "/v1/admin/shards", undefined, adminKey);
  expect(response.status, await response.clone().text()).toBe(200);
  const { data } = (await response.json()) as { data: { shards: { shard: number; customers: number }[] } };
  return data.shards.map((part) => part.customers);
}
