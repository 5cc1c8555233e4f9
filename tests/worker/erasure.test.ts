import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { isRetryableStatus } from "../../cli/import/client.ts";
import { erasureBusyError } from "../../worker/customers/customers.routes.ts";
import { adminKey, anOrder, client, uniquePrefix, verified } from "../fixtures/builders.ts";
import { dataTables, eventTables } from "../fixtures/tables.ts";

const api = client(SELF);

async function counts() {
  const result: Record<string, number> = {};
  for (const table of dataTables) {
    result[table] = (await env.DB.prepare(`SELECT count(*) AS n FROM ${table}`).first<{ n: number }>())?.n ?? 0;
  }
  for (const table of eventTables) {
    result[table] = (await env.EVENTS_DB.prepare(`SELECT count(*) AS n FROM ${table}`).first<{ n: number }>())?.n ?? 0;
  }
  return result;
}

describe("export and erasure of one customer", () => {
  it("exports everything held about a merged customer, then deletes it from every table", async () => {
    const p = uniquePrefix("gdpr");
    // A neighbour who shares a household card: must survive the erasure untouched.
    await api.postOrders([
      anOrder({ id: `${p}-n1`, channel: "store", identifiers: { loyalty: `${p}-N`, card: `${p}-family` } }),
    ]);
    const before = await counts();
    await api.postOrders([
      anOrder({ id: `${p}-w1`, identifiers: { account: `${p}-acct`, email: verified(`${p}@mail.test`) } }),
      anOrder({ id: `${p}-s1`, channel: "store", identifiers: { loyalty: `${p}-L`, card: `${p}-family` } }),
    ]);
    await api.identify({ account: `${p}-acct`, loyalty: `${p}-L` }); // merges the web and store customers
    const customer = (await (await api.lookup("account", `${p}-acct`)).json()) as {
      data: { customerId: string; mergedFrom: string[] };
    };
    expect(customer.data.mergedFrom).toHaveLength(1);

    const exported = await api.call("GET", `/v1/customers/${customer.data.customerId}/export`, undefined, adminKey);
    expect(exported.status).toBe(200);
    const body = (await exported.json()) as {
      data: {
        orders: { id: string }[];
        identities: { kind: string; masked: string }[];
        customers: unknown[];
        products: { productId: string; orders: number; lastPurchasedAt: string }[];
      };
    };
    expect(body.data.orders.map((o) => o.id).sort()).toEqual([`${p}-s1`, `${p}-w1`]);
    // The product rows as the shelf reads them: both orders held sku-1.
    expect(body.data.products.map((row) => row.productId)).toEqual(body.data.products.map(() => "sku-1"));
    expect(body.data.products.reduce((sum, row) => sum + row.orders, 0)).toBe(2);
    for (const row of body.data.products) expect(Date.parse(row.lastPurchasedAt)).not.toBeNaN();
    expect(body.data.identities.map((i) => i.kind).sort()).toEqual(["account", "email", "loyalty"]);
    expect(body.data.customers).toHaveLength(2);
    expect(JSON.stringify(body)).not.toContain(`${p}@mail.test`);

    const erased = await api.call("DELETE", `/v1/customers/${customer.data.customerId}`, undefined, adminKey);
    expect(erased.status).toBe(200);
    const after = await counts();
    // Only the neighbour's rows are left of this test's data (the household card, shared by the two, is now
    // the neighbour's alone: privacy-request.test.ts).
    expect(after.orders).toBe(before.orders);
    expect(after.order_lines).toBe(before.order_lines);
    expect(after.customer_summaries).toBe(before.customer_summaries);
    expect(after.customers).toBe(before.customers);
    expect(after.identity_merges).toBe(before.identity_merges);
    expect((await api.lookup("account", `${p}-acct`)).status).toBe(404);
    expect((await api.customer(customer.data.mergedFrom[0] as string)).status).toBe(404);
    expect((await api.lookup("loyalty", `${p}-N`)).status).toBe(200);
  });

  it("answers 404 for an unknown customer and 401 without the admin key", async () => {
    expect((await api.call("DELETE", "/v1/customers/c_nobody", undefined, adminKey)).status).toBe(404);
    expect((await api.call("GET", "/v1/customers/c_nobody/export", undefined, adminKey)).status).toBe(404);
    expect((await api.call("DELETE", "/v1/customers/c_nobody", undefined, "test-api-key")).status).toBe(401);
  });

  it("erases nothing for a query parameter it does not take, and answers 400 for an id of only spaces", async () => {
    const p = uniquePrefix("dry-run");
    expect((await api.postOrders([anOrder({ id: `${p}-1`, identifiers: { account: `${p}-acct` } })])).status).toBe(200);
    const found = (await (await api.lookup("account", `${p}-acct`)).json()) as { data: { customerId: string } };
    const id = found.data.customerId;
    const dryRun = await api.call("DELETE", `/v1/customers/${id}?dryRun=true`, undefined, adminKey);
    expect(dryRun.status).toBe(400);
    expect(((await dryRun.json()) as { error: { code: string; message: string } }).error.message).toMatch(/dryRun/);
    expect((await api.lookup("account", `${p}-acct`)).status).toBe(200);
    for (const method of ["GET", "DELETE"] as const) {
      const blank = await api.call(method, "/v1/customers/%20", undefined, adminKey);
      expect(blank.status).toBe(400);
      expect(((await blank.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
    }
    // Padding around an id is dropped, as for every path id.
    expect((await api.call("GET", `/v1/customers/%20${id}%20`, undefined, adminKey)).status).toBe(200);
  });
});

describe("the other DELETE routes", () => {
  it("delete nothing for a query parameter they do not take: a suppression, a rule, an audience", async () => {
    const p = uniquePrefix("dry-delete");
    const refused = async (path: string, body?: unknown) => {
      const response = await api.call("DELETE", `${path}?dryRun=true`, body, adminKey);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { message: string } }).error.message).toBe(
        "Invalid query parameters: dryRun is not a parameter of this route; it takes none.",
      );
    };
    // An erased account stays suppressed: the erased person's data is not taken in again.
    expect((await api.postOrders([anOrder({ id: `${p}-1`, identifiers: { account: `${p}-acct` } })])).status).toBe(200);
    const found = (await (await api.lookup("account", `${p}-acct`)).json()) as { data: { customerId: string } };
    expect((await api.call("DELETE", `/v1/customers/${found.data.customerId}`, undefined, adminKey)).status).toBe(200);
    await refused("/v1/admin/suppressions", { kind: "account", value: `${p}-acct` });
    const listed = await api.call("GET", `/v1/admin/suppressions?kind=account&value=${p}-acct`, undefined, adminKey);
    expect(((await listed.json()) as { data: { suppressed: boolean } }).data.suppressed).toBe(true);

    const rule = await api.call(
      "POST",
      "/v1/admin/rules",
      { name: `${p} rule`, action: "boost", targetType: "category", targetId: "candles", strength: 1, enabled: false },
      adminKey,
    );
    const ruleId = ((await rule.json()) as { data: { id: string } }).data.id;
    await refused(`/v1/admin/rules/${ruleId}`);
    expect((await api.call("GET", `/v1/admin/rules/${ruleId}`, undefined, adminKey)).status).toBe(200);

    const audience = await api.call("POST", "/v1/admin/audiences", { name: `${p} audience` }, adminKey);
    const audienceId = ((await audience.json()) as { data: { id: string } }).data.id;
    await refused(`/v1/admin/audiences/${audienceId}`);
    expect((await api.call("GET", `/v1/admin/audiences/${audienceId}`, undefined, adminKey)).status).toBe(200);
  });
});

describe("an erasure that keeps meeting new orders", () => {
  it("answers a 409 that carries Retry-After, the mark of a conflict that clears by itself", () => {
    const busy = erasureBusyError();
    expect([busy.status, busy.code, busy.retryAfterSeconds]).toEqual([409, "conflict", 1]);
    expect(isRetryableStatus(busy.status, String(busy.retryAfterSeconds))).toBe(true);
  });
});
