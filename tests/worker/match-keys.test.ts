// Match keys in audience exports: off unless the deployment opts in (EXPORT_MATCH_KEYS), then the
// normalised account id / loyalty number and SHA-256 of the normalised email / phone, stored at
// ingestion; never a raw email or phone, never an identifier shared with someone else. Runs on both
// customer stores (D1 and the customer shards): stored identities are counted wherever they live.
import { createExecutionContext, env, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import type { Env } from "../../worker/env.ts";
import { shardCount, shardStub } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, client, type OrderOverrides, verified } from "../fixtures/builders.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const asOf = new Date();
const day = 86_400_000;

const optIn = "account,loyalty,email_sha256,phone_sha256";
/** This test deployment's own setting (unset: not opted in), put back in the shards after each call. */
const deploymentSetting = env.EXPORT_MATCH_KEYS;

/**
 * Sets EXPORT_MATCH_KEYS in every customer shard (none on the D1 store): a deployment's setting reaches
 * its Durable Objects too, and the shards hash the identifiers they store with their own environment.
 */
async function setShardsMatchKeys(value: string | undefined) {
  await Promise.all(
    Array.from({ length: shardCount(env) }, (_, index) =>
      runInDurableObject(shardStub(env, index), (instance) => {
        (instance as unknown as { env: Env }).env.EXPORT_MATCH_KEYS = value;
      }),
    ),
  );
}

/** The same worker with the opt-in set, as a deployment with EXPORT_MATCH_KEYS would run. */
const app = createApp();
const optedIn = {
  fetch: async (input: string, init?: RequestInit) => {
    const context = createExecutionContext();
    await setShardsMatchKeys(optIn);
    try {
      const response = await app.fetch(new Request(input, init), { ...env, EXPORT_MATCH_KEYS: optIn }, context);
      await waitOnExecutionContext(context);
      return response;
    } finally {
      await setShardsMatchKeys(deploymentSetting);
    }
  },
};
const plain = client(SELF);
const opted = client(optedIn);

/** How many stored identities match `where`: in D1, or in every customer shard added up. */
async function identitiesWhere(where: string, ...values: unknown[]): Promise<number> {
  const counts = await storeRows<{ n: number }>(`SELECT count(*) AS n FROM identities WHERE ${where}`, ...values);
  return counts.reduce((sum, row) => sum + row.n, 0);
}

const sha256 = async (text: string) =>
  [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");

const orders = (label: string, identifiers: OrderOverrides["identifiers"]) =>
  [0, 1, 2].map((k) =>
    anOrder({
      id: `${label}-${k}`,
      placedAt: new Date(asOf.getTime() - (5 + k * 20) * day).toISOString(),
      identifiers,
    }),
  );

async function csv(target: ReturnType<typeof client>, query: string) {
  const response = await target.call("GET", `/v1/admin/customers?format=csv&${query}`, undefined, adminKey);
  return { status: response.status, text: await response.text() };
}

describe("match keys in exports", () => {
  it("stores none and exports none while the deployment has not opted in", async () => {
    expect(
      (
        await plain.postOrders(
          orders("off", { account: "acct-off", loyalty: "LOY-OFF-1", email: verified("Off.Person@Mail.test ") }),
        )
      ).status,
    ).toBe(200);
    expect(await identitiesWhere("kind IN ('account', 'loyalty', 'email')")).toBeGreaterThanOrEqual(3);
    expect(await identitiesWhere("match_key IS NOT NULL")).toBe(0);
    const refused = await csv(plain, "matchKeys=email_sha256");
    expect(refused.status).toBe(400);
    expect(refused.text).toMatch(/EXPORT_MATCH_KEYS/);
    expect((await csv(plain, "matchKeys=email")).status).toBe(400);
    expect((await plain.call("GET", "/v1/admin/customers?matchKeys=account", undefined, adminKey)).status).toBe(400);
  });

  it("exports the opted-in keys of identifiers a customer holds, hashed as customer-list matching expects", async () => {
    expect(
      (
        await opted.postOrders(
          orders("on", {
            account: "acct-on",
            loyalty: "loy-on 77",
            email: verified("  On.Person@Mail.TEST"),
            phone: verified("+44 20 7946 0958"),
          }),
        )
      ).status,
    ).toBe(200);
    // A second customer with no email or phone: those columns stay empty.
    expect((await opted.postOrders(orders("other", { account: "acct-other", loyalty: "LOY-OTHER" }))).status).toBe(200);
    const run = await opted.call("POST", "/v1/admin/jobs/nightly?wait=1", { asOf: asOf.toISOString() }, adminKey);
    expect(run.status, await run.clone().text()).toBe(200);

    const { status, text } = await csv(opted, "matchKeys=email_sha256,phone_sha256,loyalty,account");
    expect(status).toBe(200);
    const [header, ...rows] = text.trimEnd().split("\r\n");
    expect(header?.endsWith(",offerGuidance,purchaseDays,emailSha256,phoneSha256,loyalty,account")).toBe(true);
    const on = rows.find((row) => row.endsWith(",LOYON77,acct-on"));
    expect(on, text).toBeDefined();
    expect(on).toContain(`,${await sha256("on.person@mail.test")},${await sha256("+442079460958")},`);
    const other = rows.find((row) => row.endsWith(",LOYOTHER,acct-other"));
    expect(other).toMatch(/,,,LOYOTHER,acct-other$/);
    // The customer stored before the opt-in has no keys; no raw email or phone anywhere. The phone's
    // digits are matched whole: a short run such as "7946" can occur in a random id or a hash.
    expect(rows.some((row) => row.endsWith(",,,,"))).toBe(true);
    expect(text).not.toMatch(/@|2079460958|7946 0958|acct-off|loy-?off/i);

    // Asking for fewer keys gives fewer columns, in the order asked.
    const one = await csv(opted, "matchKeys=account");
    expect(one.text.split("\r\n")[0]?.endsWith(",offerGuidance,purchaseDays,account")).toBe(true);
  });

  it("quotes an account id with a semicolon, so no spreadsheet splits a formula out of it", async () => {
    // An account id is what the storefront sends: a shopper-chosen user name, perhaps. Excel in
    // locales whose list separator is ";" splits an unquoted field there and runs what follows.
    const account = "acct-semi;=HYPERLINK(1)";
    expect((await opted.postOrders(orders("semi", { account }))).status).toBe(200);
    const run = await opted.call("POST", "/v1/admin/jobs/nightly?wait=1", { asOf: asOf.toISOString() }, adminKey);
    expect(run.status, await run.clone().text()).toBe(200);
    const { status, text } = await csv(opted, "matchKeys=account");
    expect(status).toBe(200);
    const row = text.split("\r\n").find((line) => line.includes("acct-semi"));
    expect(row, text).toBeDefined();
    expect(row?.endsWith(`,"${account}"`)).toBe(true);
  });

  it("erasure removes the customer's match keys with the rest", async () => {
    const lookup = (await (await opted.lookup("account", "acct-on")).json()) as { data: { customerId: string } };
    const id = lookup.data.customerId;
    const exported = (await (await opted.call("GET", `/v1/customers/${id}/export`, undefined, adminKey)).json()) as {
      data: { identities: { kind: string; matchKey: string | null }[] };
    };
    expect(exported.data.identities.find((i) => i.kind === "email")?.matchKey).toBe(
      await sha256("on.person@mail.test"),
    );
    expect(await identitiesWhere("match_key = ?", await sha256("on.person@mail.test"))).toBe(1);
    expect((await opted.call("DELETE", `/v1/customers/${id}`, undefined, adminKey)).status).toBe(200);
    expect(await identitiesWhere("match_key = ?", await sha256("on.person@mail.test"))).toBe(0);
  });
});
