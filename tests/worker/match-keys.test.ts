// Match keys in audience exports: off unless the deployment opts in (EXPORT_MATCH_KEYS), then the
// normalised account id / loyalty number and SHA-256 of the normalised email / phone, stored at
// ingestion; never a raw email or phone, never an identifier shared with someone else.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import { adminKey, anOrder, client, type OrderOverrides, verified } from "../fixtures/builders.ts";

const asOf = new Date();
const day = 86_400_000;

/** The same worker with the opt-in set, as a deployment with EXPORT_MATCH_KEYS would run. */
const app = createApp();
const optedIn = {
  fetch: async (input: string, init?: RequestInit) => {
    const context = createExecutionContext();
    const response = await app.fetch(
      new Request(input, init),
      { ...env, EXPORT_MATCH_KEYS: "account,loyalty,email_sha256,phone_sha256" },
      context,
    );
    await waitOnExecutionContext(context);
    return response;
  },
};
const plain = client(SELF);
const opted = client(optedIn);

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
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM identities WHERE match_key IS NOT NULL").first<{
      n: number;
    }>();
    expect(stored?.n).toBe(0);
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
    expect(header?.endsWith(",offerGuidance,emailSha256,phoneSha256,loyalty,account")).toBe(true);
    const on = rows.find((row) => row.endsWith(",LOYON77,acct-on"));
    expect(on, text).toBeDefined();
    expect(on).toContain(`,${await sha256("on.person@mail.test")},${await sha256("+442079460958")},`);
    const other = rows.find((row) => row.endsWith(",LOYOTHER,acct-other"));
    expect(other).toMatch(/,,,LOYOTHER,acct-other$/);
    // The customer stored before the opt-in has no keys; no raw email or phone anywhere.
    expect(rows.some((row) => row.endsWith(",,,,"))).toBe(true);
    expect(text).not.toMatch(/@|7946|acct-off/i);

    // Asking for fewer keys gives fewer columns, in the order asked.
    const one = await csv(opted, "matchKeys=account");
    expect(one.text.split("\r\n")[0]?.endsWith(",offerGuidance,account")).toBe(true);
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
    expect((await opted.call("DELETE", `/v1/customers/${id}`, undefined, adminKey)).status).toBe(200);
    const left = await env.DB.prepare("SELECT count(*) AS n FROM identities WHERE match_key = ?")
      .bind(await sha256("on.person@mail.test"))
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
  });
});
