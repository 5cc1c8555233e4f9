// A privacy request ("export / erase everything you hold about this email") through the real worker,
// on the one database and (project worker-shards) on four customer shards: GET /v1/customers/holders
// lists every customer holding the identifier or seen with it, whatever its trust, so each can be
// exported and erased; and a household phone shared by two customers becomes the other's once one is
// erased.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { homeShard } from "../../worker/core/shards/placement.ts";
import { identityKey } from "../../worker/identity/identity.keys.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, apiKey, client, uniquePrefix, verified } from "../fixtures/builders.ts";

const api = client(SELF);

interface Holder {
  customerId: string;
  held: boolean;
  trust: "verified" | "unverified";
  orders: number;
  firstSeenAt: string | null;
  lastSeenAt: string | null;
}
interface Holders {
  kind: string;
  masked: string;
  known: boolean;
  shared: boolean;
  suppressed: boolean;
  holders: Holder[];
  truncated: boolean;
}

const holdersPath = (kind: string, value: string) =>
  `/v1/customers/holders?kind=${encodeURIComponent(kind)}&value=${encodeURIComponent(value)}`;

async function holdersOf(kind: string, value: string): Promise<Holders> {
  const response = await api.call("GET", holdersPath(kind, value), undefined, adminKey);
  expect(response.status, await response.clone().text()).toBe(200);
  return ((await response.json()) as { data: Holders }).data;
}

async function customerIdOf(kind: string, value: string): Promise<string> {
  const response = await api.lookup(kind, value);
  expect(response.status, `${kind}: ${await response.clone().text()}`).toBe(200);
  return ((await response.json()) as { data: { customerId: string } }).data.customerId;
}

async function erase(customerId: string) {
  const response = await api.call("DELETE", `/v1/customers/${customerId}`, undefined, adminKey);
  expect(response.status, await response.clone().text()).toBe(200);
}

async function post(orders: unknown[]) {
  const response = await api.postOrders(orders);
  expect(response.status, await response.clone().text()).toBe(200);
}

/**
 * Order ids `${p}-<label>-<n>` whose homes (where an order with no verified identifier is placed) are
 * different shards, and not `avoid`: on shards, the records of one person end up in several.
 */
function idsInDistinctShards(p: string, labels: string[], avoid: number | null): string[] {
  const count = shardCount(env);
  const taken = new Set(avoid === null ? [] : [avoid]);
  return labels.map((label) => {
    for (let n = 0; ; n++) {
      const id = `${p}-${label}-${n}`;
      if (count === 0) return id;
      const home = homeShard(`order:${id}`, count);
      if (!taken.has(home)) {
        taken.add(home);
        return id;
      }
    }
  });
}

describe("GET /v1/customers/holders: every record that holds an identifier", () => {
  it("lists a guest's, a till's and an account's customers for one email, so each can be exported and erased", async () => {
    const p = uniquePrefix("privacy");
    const email = `erin.${p}@post.org`;
    // Not 0100–0199: the household tests below use fixed numbers there, and this file's tests share one
    // database.
    const phone = `+1 415 555 02${String(Math.floor(Math.random() * 90) + 10)}`;
    const account = `${p}-erin`;
    const accountHome =
      shardCount(env) > 0
        ? homeShard(await identityKey("account", account, "test-identity-secret"), shardCount(env))
        : null;
    const [guestId, tillId] = idsInDistinctShards(p, ["guest", "till"], accountHome);
    await post([
      anOrder({ id: guestId, placedAt: "2026-02-01T10:00:00.000Z", identifiers: { email } }),
      anOrder({ id: tillId, channel: "store", placedAt: "2026-03-01T10:00:00.000Z", identifiers: { email, phone } }),
      anOrder({
        id: `${p}-acct`,
        placedAt: "2026-04-01T10:00:00.000Z",
        identifiers: { account, email: verified(email) },
      }),
    ]);
    // The storefront saw the phone typed in while the account was signed in: not vouched for.
    expect((await api.identify({ account, phone })).status).toBe(200);
    const accountCustomer = await customerIdOf("account", account);

    // The lookup by phone finds nobody and says where to look instead.
    const lookup = await api.lookup("phone", phone);
    expect(lookup.status).toBe(404);
    const { error } = (await lookup.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("not_found");
    expect(error.message).toContain("only ever sent unverified, so it identifies nobody.");
    expect(error.message).toContain("POST /v1/customers/holders");

    const byEmail = await holdersOf("email", email);
    expect(byEmail.kind).toBe("email");
    expect(byEmail.masked).toMatch(/^e\*+@post\.org$/);
    expect([byEmail.known, byEmail.shared, byEmail.suppressed, byEmail.truncated]).toEqual([true, false, false, false]);
    expect(byEmail.holders).toHaveLength(3);
    const held = byEmail.holders.find((holder) => holder.customerId === accountCustomer);
    expect(held).toEqual({
      customerId: accountCustomer,
      held: true,
      trust: "verified",
      orders: 1,
      firstSeenAt: "2026-04-01T10:00:00.000Z",
      lastSeenAt: "2026-04-01T10:00:00.000Z",
    });
    const others = byEmail.holders.filter((holder) => holder.customerId !== accountCustomer);
    expect(others.map(({ held, trust, orders }) => ({ held, trust, orders }))).toEqual([
      { held: false, trust: "unverified", orders: 1 },
      { held: false, trust: "unverified", orders: 1 },
    ]);
    expect(others.map((holder) => holder.firstSeenAt).sort()).toEqual([
      "2026-02-01T10:00:00.000Z",
      "2026-03-01T10:00:00.000Z",
    ]);
    expect(JSON.stringify(byEmail)).not.toContain(email);

    // The phone: the till's customer (its order) and the account's (the identify call, no order).
    const byPhone = await holdersOf("phone", phone);
    expect(
      byPhone.holders.map(({ customerId, held, trust, orders, firstSeenAt }) => ({
        customerId,
        held,
        trust,
        orders,
        firstSeenAt,
      })),
    ).toEqual(
      [
        { customerId: accountCustomer, held: false, trust: "unverified", orders: 0, firstSeenAt: null },
        {
          customerId: others.find((o) => o.firstSeenAt === "2026-03-01T10:00:00.000Z")?.customerId,
          held: false,
          trust: "unverified",
          orders: 1,
          firstSeenAt: "2026-03-01T10:00:00.000Z",
        },
      ].sort((a, b) => ((a.customerId ?? "") < (b.customerId ?? "") ? -1 : 1)),
    );

    // The request carried out: export each, then erase each.
    for (const holder of byEmail.holders) {
      const exported = await api.call("GET", `/v1/customers/${holder.customerId}/export`, undefined, adminKey);
      expect(exported.status).toBe(200);
      await erase(holder.customerId);
    }
    const after = await holdersOf("email", email);
    expect([after.holders, after.suppressed]).toEqual([[], true]);
    expect((await holdersOf("phone", phone)).holders).toEqual([]);
    for (const holder of byEmail.holders) expect((await api.customer(holder.customerId)).status).toBe(404);
  });

  it("erasing the customer who holds an email takes it off a guest who typed it, in any shard, not the order", async () => {
    const p = uniquePrefix("typed");
    const email = `tina.${p}@post.org`;
    const account = `${p}-tina`;
    const accountHome =
      shardCount(env) > 0
        ? homeShard(await identityKey("account", account, "test-identity-secret"), shardCount(env))
        : null;
    const [guestOrder] = idsInDistinctShards(p, ["guest"], accountHome);
    await post([
      anOrder({ id: `${p}-acct`, identifiers: { account, email: verified(email) } }),
      anOrder({ id: guestOrder, identifiers: { email, phone: "+1 415 555 0377" } }),
    ]);
    const tina = await customerIdOf("account", account);
    const guest = (await holdersOf("email", email)).holders.find((holder) => holder.customerId !== tina)?.customerId;
    expect(guest).toBeDefined();
    const exported = await api.call("GET", `/v1/customers/${tina}/export`, undefined, adminKey);
    const links = ((await exported.json()) as { data: { identityLinks: unknown[] } }).data.identityLinks.length;

    const erased = await api.call("DELETE", `/v1/customers/${tina}`, undefined, adminKey);
    expect(erased.status).toBe(200);
    const { deleted } = ((await erased.json()) as { data: { deleted: Record<string, number> } }).data;
    const kept = await api.customer(guest ?? "");
    expect(kept.status).toBe(200);
    const view = (await kept.json()) as { data: { identities: { kind: string }[]; orders: { id: string }[] } };
    expect(view.data.orders.map((order) => order.id)).toEqual([guestOrder]);
    const after = await holdersOf("email", email);
    expect(after.suppressed).toBe(true);
    // Tina's two links (account, email) and the guest's email: one more row than her export showed. On
    // shards the guest's order is in another shard, which forgets its sighting as the one database does.
    expect([links, deleted.identity_observations]).toEqual([2, 3]);
    expect(view.data.identities.map((identity) => identity.kind)).toEqual(["phone"]);
    expect(after.holders).toEqual([]);
  });

  it("answers an identifier nobody was seen with with no holders, refuses a bad value and needs the admin key", async () => {
    const unseen = await holdersOf("email", `${uniquePrefix("nobody")}@post.org`);
    expect([unseen.known, unseen.holders, unseen.suppressed]).toEqual([false, [], false]);
    const bad = await api.call("GET", holdersPath("email", "not-an-email"), undefined, adminKey);
    expect(bad.status).toBe(400);
    expect((await api.call("GET", holdersPath("kind", "x"), undefined, adminKey)).status).toBe(400);
    expect((await api.call("GET", holdersPath("email", "a@post.org"), undefined, apiKey)).status).toBe(401);
  });
});

describe("a household phone after one holder's erasure", () => {
  const household = async (p: string, members: string[], phone: string) => {
    await post(
      members.map((member, n) =>
        anOrder({
          id: `${p}-${member}`,
          channel: "store",
          placedAt: `2026-0${n + 1}-10T10:00:00Z`,
          identifiers: { loyalty: `${p}-${member}`, phone: verified(phone) },
        }),
      ),
    );
    return Promise.all(members.map((member) => customerIdOf("loyalty", `${p}-${member}`)));
  };

  it("becomes the other holder's again when it was shared by the erased customer and one other", async () => {
    const p = uniquePrefix("home").toUpperCase();
    const phone = "+1 415 555 0142";
    const [first, second] = await household(p, ["LA", "LB"], phone);
    const shared = await api.lookup("phone", phone);
    expect(shared.status).toBe(404);
    expect(((await shared.json()) as { error: { message: string } }).error.message).toContain(
      "shared by several customers, so it identifies nobody. To find every customer seen with it",
    );
    const before = await holdersOf("phone", phone);
    expect(before.shared).toBe(true);
    expect(before.holders.map(({ customerId, held, trust }) => ({ customerId, held, trust }))).toEqual(
      [first, second].sort().map((customerId) => ({ customerId, held: false, trust: "verified" })),
    );

    await erase(first as string);
    expect(await customerIdOf("phone", phone)).toBe(second);
    const customer = (await (await api.customer(second as string)).json()) as {
      data: { identities: { kind: string; trust: string; shared: boolean }[] };
    };
    expect(customer.data.identities.find((identity) => identity.kind === "phone")).toMatchObject({
      trust: "verified",
      shared: false,
    });
    const after = await holdersOf("phone", phone);
    expect([after.shared, after.holders.map((h) => [h.customerId, h.held])]).toEqual([false, [[second, true]]]);
  });

  it("stays shared while two other holders are left", async () => {
    const p = uniquePrefix("flat").toUpperCase();
    const phone = "+1 415 555 0177";
    const [first, second, third] = await household(p, ["LA", "LB", "LC"], phone);
    await erase(first as string);
    expect((await api.lookup("phone", phone)).status).toBe(404);
    const after = await holdersOf("phone", phone);
    expect([after.shared, after.holders.map((h) => h.customerId)]).toEqual([true, [second, third].sort()]);
  });
});
