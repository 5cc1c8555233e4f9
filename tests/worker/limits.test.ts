// Bad input and big input on every write route: field limits (400 with the issue's path), body limits
// (413 from Content-Length and from the bytes actually read), control characters, http(s)-only links,
// date ranges, duplicate ids inside a batch, and the largest valid batches, which must be stored whole
// even though their values are far bigger than one D1 value may be. Runs on both customer stores (D1 and
// the customer shards): customer rows are counted wherever they are stored.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import { maxBatchBodyBytes } from "../../worker/orders/orders.schemas.ts";
import { anonymousSubject, newRecommendationId } from "../../worker/recommendations/recommendation-id.ts";
import { adminKey, anOrder, apiKey, client, uniquePrefix } from "../fixtures/builders.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);

interface Envelope {
  error: {
    code: string;
    message: string;
    requestId: string;
    issues?: { path: (string | number)[]; message: string }[];
  };
}

async function rejected(response: Response, status: number, code: string): Promise<Envelope["error"]> {
  const body = (await response.json()) as Envelope;
  expect(response.status, JSON.stringify(body)).toBe(status);
  expect(body.error.code).toBe(code);
  expect(body.error.requestId).toBe(response.headers.get("X-Request-Id"));
  return body.error;
}

const paths = (error: Envelope["error"]) => (error.issues ?? []).map((issue) => issue.path.join("."));

/** Tables of shared state, in the main database whatever the store; widget events in the events database. */
const sharedTables = new Set(["products", "categories", "rules"]);

async function count(table: string, where = "1", ...values: unknown[]): Promise<number> {
  const query = `SELECT count(*) AS n FROM ${table} WHERE ${where}`;
  if (table === "events" || sharedTables.has(table)) {
    const database = table === "events" ? env.EVENTS_DB : env.DB;
    const row = await database
      .prepare(query)
      .bind(...values)
      .first<{ n: number }>();
    return row?.n ?? 0;
  }
  // Customer rows: in D1, or in every customer shard (one count per shard, added up).
  const rows = await storeRows<{ n: number }>(query, ...values);
  return rows.reduce((sum, row) => sum + row.n, 0);
}

/** A string of exactly `length` UTF-16 units: `prefix` padded with a three-byte (in UTF-8) character. */
const wide = (prefix: string, length: number) => prefix + "漢".repeat(length - prefix.length);

function post(path: string, body: BodyInit, init: { key?: string; headers?: Record<string, string> } = {}) {
  return SELF.fetch(`http://patron.test${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${init.key ?? apiKey}`, "Content-Type": "application/json", ...init.headers },
    body,
  });
}

/**
 * A POST over a route's body limit, handled by the app in this isolate. Through SELF the body would be
 * pumped from here into the worker, which answers 413 without reading it (or stops reading at the
 * limit): a stream's pump then aborts with an uncaught "Network connection lost" in the test's own
 * context, the last lines one CI run printed before it stalled; and a fresh-clone run of 2026-12-03
 * stalled at the start of this file, whose first test sent a body of several MB through SELF.
 */
async function postHere(path: string, body: string | ReadableStream<Uint8Array>): Promise<Response> {
  // A string's size is announced, as a client sending it would; a stream's is not.
  const length: Record<string, string> =
    typeof body === "string" ? { "Content-Length": String(new TextEncoder().encode(body).length) } : {};
  const request = new Request(`http://patron.test${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json", ...length },
    body,
  });
  expect(request.headers.get("Content-Length")).toBe(length["Content-Length"] ?? null);
  const context = createExecutionContext();
  const response = await createApp().fetch(request, env, context);
  await waitOnExecutionContext(context);
  return response;
}

function streamed(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.slice(i, i + 64 * 1024));
      controller.close();
    },
  });
}

describe("request body size", () => {
  it("answers 413 when Content-Length is over the route's limit, and stores nothing", async () => {
    const p = uniquePrefix();
    const padding = "x".repeat(maxBatchBodyBytes);
    const body = JSON.stringify({ orders: [anOrder({ id: `${p}-1` })], padding });
    await rejected(await postHere("/v1/orders", body), 413, "payload_too_large");
    await rejected(
      await postHere("/v1/identify", JSON.stringify({ identifiers: { account: "x".repeat(70_000) } })),
      413,
      "payload_too_large",
    );
    expect(await count("orders", "id = ?", `${p}-1`)).toBe(0);
  });

  it("answers 413 from the bytes actually read when no Content-Length is sent", async () => {
    const p = uniquePrefix();
    const orders = JSON.stringify({ orders: [anOrder({ id: `${p}-1`, storeId: "y".repeat(maxBatchBodyBytes) })] });
    await rejected(await postHere("/v1/orders", streamed(orders)), 413, "payload_too_large");
    expect(await count("orders", "id = ?", `${p}-1`)).toBe(0);
    const event = JSON.stringify({ type: "view", productId: "z".repeat(70_000) });
    await rejected(await postHere("/v1/events", streamed(event)), 413, "payload_too_large");
    // Counted in bytes, not characters: 30,000 three-byte characters are 90,000 bytes.
    await rejected(
      await postHere("/v1/events", JSON.stringify({ type: "view", productId: "漢".repeat(30_000) })),
      413,
      "payload_too_large",
    );
  });

  it("accepts a streamed body under the limit", async () => {
    const p = uniquePrefix();
    const response = await postHere("/v1/orders", streamed(JSON.stringify({ orders: [anOrder({ id: `${p}-1` })] })));
    expect(response.status).toBe(200);
    expect(await count("orders", "id = ?", `${p}-1`)).toBe(1);
  });

  it("answers 400 for bytes that are not UTF-8 or not JSON", async () => {
    await rejected(await post("/v1/orders", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), 400, "invalid_request");
    await rejected(await post("/v1/products", '{"products": ['), 400, "invalid_request");
    await rejected(await post("/v1/admin/rules", "", { key: adminKey }), 400, "invalid_request");
  });

  it("says a compressed body is not accepted, and stores nothing", async () => {
    const p = uniquePrefix();
    const json = JSON.stringify({ orders: [anOrder({ id: `${p}-gz` })] });
    const gzipped = new Uint8Array(
      await new Response(new Blob([json]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
    );
    const error = await rejected(
      await post("/v1/orders", gzipped, { headers: { "Content-Encoding": "gzip" } }),
      400,
      "invalid_request",
    );
    expect(error.message).toBe(
      "Compressed request bodies are not accepted (Content-Encoding: gzip): send the body uncompressed.",
    );
    expect(await count("orders", "id = ?", `${p}-gz`)).toBe(0);
    // identity is no compression.
    expect((await post("/v1/orders", json, { headers: { "Content-Encoding": "identity" } })).status).toBe(200);
  });
});

describe("field limits", () => {
  it("refuses identifier values holding control characters, bare or with their trust", async () => {
    const p = uniquePrefix();
    const error = await rejected(
      await api.postOrders([
        anOrder({ id: `${p}-0`, identifiers: { account: `${p}\u0000acct` } }),
        anOrder({ id: `${p}-1`, identifiers: { email: { value: `${p}\u0007@mail.test`, verified: true } } }),
      ]),
      400,
      "invalid_request",
    );
    expect(paths(error).some((path) => path.startsWith("orders.0.identifiers.account"))).toBe(true);
    expect(paths(error).some((path) => path.startsWith("orders.1.identifiers.email"))).toBe(true);
    expect((await api.identify({ device: `${p}\u0000dev` })).status).toBe(400);
  });

  it("names the field of an id that is too long, empty or holds control characters", async () => {
    const p = uniquePrefix();
    const error = await rejected(
      await api.postOrders([
        anOrder({ id: "x".repeat(201) }),
        anOrder({ id: `${p}\u0000nul` }),
        anOrder({ id: "   " }),
        anOrder({ id: `${p}-4`, lines: [{ productId: "a\nb", categoryId: "c\u007f", quantity: 1, unitPrice: 1 }] }),
        anOrder({ id: `${p}-5`, storeId: "s\ud800", recommendationId: "r\u0085" }),
      ]),
      400,
      "invalid_request",
    );
    expect(paths(error)).toEqual(
      expect.arrayContaining([
        "orders.0.id",
        "orders.1.id",
        "orders.2.id",
        "orders.3.lines.0.productId",
        "orders.3.lines.0.categoryId",
        "orders.4.storeId",
        "orders.4.recommendationId",
      ]),
    );
    expect(error.issues?.find((issue) => issue.path.join(".") === "orders.1.id")?.message).toMatch(
      /control characters/,
    );
    expect(await count("orders", "id LIKE ?", `${p}%`)).toBe(0);
  });

  it("takes an empty recommendationId as none", async () => {
    const p = uniquePrefix();
    expect((await api.postOrders([{ ...anOrder({ id: `${p}-1` }), recommendationId: "" }])).status).toBe(200);
    expect(await count("orders", "id = ? AND recommendation_id IS NULL", `${p}-1`)).toBe(1);
  });

  it("stores multi-byte ids and titles exactly as sent", async () => {
    const id = wide(uniquePrefix("ö"), 200);
    const emoji = `${uniquePrefix()}-🛒-product`;
    expect(
      (
        await api.postOrders([
          anOrder({ id, lines: [{ productId: emoji, categoryId: "čaj", quantity: 1, unitPrice: 2 }] }),
        ])
      ).status,
    ).toBe(200);
    expect(await count("order_lines", "order_id = ? AND product_id = ? AND category_id = ?", id, emoji, "čaj")).toBe(1);
    const product = { id: emoji, title: "Grüner Tee\tLoose leaf\n250 g", categoryId: "čaj", listPrice: 4 };
    expect((await api.postProducts([product])).status).toBe(200);
    expect(await count("products", "id = ? AND title = ?", emoji, product.title)).toBe(1);
  });

  it("refuses numbers out of range, too many lines and too many orders", async () => {
    const p = uniquePrefix();
    const line = { productId: "a", categoryId: "b", quantity: 1, unitPrice: 1 };
    const error = await rejected(
      await api.postOrders([
        anOrder({
          id: `${p}-1`,
          lines: [
            { ...line, quantity: 0 },
            { ...line, unitPrice: 1e10 },
            { ...line, listPrice: -1 },
          ],
        }),
        anOrder({ id: `${p}-2`, lines: Array.from({ length: 501 }, () => line) }),
      ]),
      400,
      "invalid_request",
    );
    expect(paths(error)).toEqual(
      expect.arrayContaining([
        "orders.0.lines.0.quantity",
        "orders.0.lines.1.unitPrice",
        "orders.0.lines.2.listPrice",
        "orders.1.lines",
      ]),
    );
    const tooMany = Array.from({ length: 1001 }, (_, i) => anOrder({ id: `${p}-m${i}` }));
    expect(paths(await rejected(await api.postOrders(tooMany), 400, "invalid_request"))).toEqual(["orders"]);
  });

  it("lists at most 100 issues while counting them all", async () => {
    const orders = Array.from({ length: 150 }, () => anOrder({ id: "" }));
    const error = await rejected(await api.postOrders(orders), 400, "invalid_request");
    expect(error.issues).toHaveLength(100);
    const [, found] = /(\d+) problems found \(the first 100 are listed\)/.exec(error.message) ?? [];
    expect(Number(found)).toBeGreaterThanOrEqual(150);
  });
});

describe("links", () => {
  it("accepts only http(s) product and image URLs", async () => {
    const p = uniquePrefix();
    const product = (id: string, url: unknown, imageUrl: unknown = null) => ({
      id: `${p}-${id}`,
      title: "Thing",
      categoryId: "c",
      listPrice: 1,
      url,
      imageUrl,
    });
    const error = await rejected(
      await api.postProducts([
        product("js", "javascript:alert(document.cookie)"),
        product("data", "https://shop.test/a", "data:image/svg+xml,<svg onload=alert(1)>"),
        product("ftp", "ftp://shop.test/a"),
        product("relative", "/products/1"),
        product("long", `https://shop.test/${"a".repeat(2048)}`),
        product("ok", "https://shop.test/p/1", "http://127.0.0.1:8787/img/1.png"),
      ]),
      400,
      "invalid_request",
    );
    expect(paths(error).sort()).toEqual(
      ["products.0.url", "products.1.imageUrl", "products.2.url", "products.3.url", "products.4.url"].sort(),
    );
    expect(await count("products", "id LIKE ?", `${p}%`)).toBe(0);
    expect(
      (await api.postProducts([product("ok", "https://shop.test/p/1", "http://127.0.0.1:8787/img/1.png")])).status,
    ).toBe(200);
  });
});

describe("dates", () => {
  it("answers 400, never 500, for placedAt strings no date parser reads the same way", async () => {
    const p = uniquePrefix();
    const odd = [
      "x",
      "1e12",
      "2026-11-30T23:59:60Z",
      "2026-W48-1T00:00:00Z",
      "2026-11-30T10:00:00+99:00",
      "  2026-11-29T10:00:00Z  ",
    ];
    for (const [i, placedAt] of odd.entries()) {
      // Alone, and repeated in one batch (the duplicate check reads placedAt too).
      for (const orders of [
        [anOrder({ id: `${p}-${i}`, placedAt })],
        [anOrder({ id: `${p}-${i}d`, placedAt }), anOrder({ id: `${p}-${i}d`, placedAt })],
      ]) {
        const response = await api.postOrders(orders);
        expect(response.status, `${placedAt}: ${await response.clone().text()}`).toBe(400);
      }
    }
    // A local time with no Z or offset is ISO 8601 but names no instant: the message says what is missing.
    const local = await api.postOrders([anOrder({ id: `${p}-local`, placedAt: "2026-03-15T10:22:00" })]);
    expect(local.status).toBe(400);
    expect(await local.text()).toContain("must be an ISO 8601 date-time with Z or an offset");
  });

  it("refuses placedAt before 1970 or more than a day ahead, and accepts the edges", async () => {
    const p = uniquePrefix();
    const now = Date.now();
    const error = await rejected(
      await api.postOrders([
        anOrder({ id: `${p}-0`, placedAt: "0000-01-01T00:00:00Z" }),
        anOrder({ id: `${p}-1`, placedAt: "1969-12-31T23:59:59Z" }),
        anOrder({ id: `${p}-2`, placedAt: "1970-01-01T00:30:00+01:00" }),
        anOrder({ id: `${p}-3`, placedAt: new Date(now + 25 * 3600_000).toISOString() }),
        anOrder({ id: `${p}-4`, placedAt: "2026-02-30T10:00:00Z" }),
      ]),
      400,
      "invalid_request",
    );
    expect(paths(error)).toEqual(
      expect.arrayContaining(["orders.0.placedAt", "orders.1.placedAt", "orders.2.placedAt", "orders.4.placedAt"]),
    );
    expect(
      (
        await rejected(
          await api.postOrders([anOrder({ id: `${p}-3`, placedAt: new Date(now + 25 * 3600_000).toISOString() })]),
          400,
          "invalid_request",
        )
      ).issues?.[0]?.path,
    ).toEqual(["orders", 0, "placedAt"]);
    const edges = [
      anOrder({ id: `${p}-e1`, placedAt: "1970-01-01T00:00:00Z" }),
      anOrder({ id: `${p}-e2`, placedAt: new Date(now + 23 * 3600_000).toISOString() }),
    ];
    expect((await api.postOrders(edges)).status).toBe(200);
    expect(await count("orders", "id LIKE ?", `${p}-%`)).toBe(2);
  });

  it("refuses rule schedules and a model run dated before 1970", async () => {
    const rule = {
      name: "Old",
      action: "exclude",
      targetType: "category",
      targetId: "c",
      startsAt: "1969-07-20T20:17:00Z",
    };
    const error = await rejected(
      await post("/v1/admin/rules", JSON.stringify(rule), { key: adminKey }),
      400,
      "invalid_request",
    );
    expect(paths(error)).toEqual(["startsAt"]);
    const run = await post("/v1/admin/jobs/nightly", JSON.stringify({ asOf: "0001-01-01T00:00:00Z" }), {
      key: adminKey,
    });
    expect(paths(await rejected(run, 400, "invalid_request"))).toEqual(["asOf"]);
  });
});

describe("duplicate ids inside one batch", () => {
  it("stores an order repeated with identical content once", async () => {
    const p = uniquePrefix();
    const order = anOrder({ id: `${p}-1`, placedAt: "2026-03-14T10:22:00Z" });
    const response = await api.postOrders([order, { ...order, placedAt: "2026-03-14T11:22:00+01:00" }]);
    expect(response.status).toBe(200);
    const { data } = (await response.json()) as { data: { accepted: number; duplicates: number } };
    expect(data).toMatchObject({ accepted: 1, duplicates: 1 });
    expect(await count("orders", "id = ?", order.id)).toBe(1);
  });

  it("refuses orders sharing an id with different content, naming both indexes, and stores nothing", async () => {
    const p = uniquePrefix();
    const order = anOrder({ id: `${p}-1` });
    const other = anOrder({ id: `${p}-2` });
    const error = await rejected(
      await api.postOrders([order, other, { ...order, lines: [{ ...order.lines[0]!, quantity: 2 }] }]),
      400,
      "invalid_request",
    );
    expect(error.issues).toEqual([
      { path: ["orders", 2, "id"], message: "orders[2] has the same id as orders[0] but different content" },
    ]);
    expect(await count("orders", "id LIKE ?", `${p}-%`)).toBe(0);
  });

  it("answers 400, not 500, when a repeated order also has a broken field", async () => {
    const p = uniquePrefix();
    const order = anOrder({ id: `${p}-1`, placedAt: "__proto__" });
    const error = await rejected(await api.postOrders([order, order]), 400, "invalid_request");
    expect(paths(error)).toEqual(["orders.0.placedAt", "orders.1.placedAt"]);
    const other = anOrder({ id: `${p}-2`, placedAt: "not a date" });
    const mixed = await rejected(
      await api.postOrders([other, { ...other, lines: "none" }, other]),
      400,
      "invalid_request",
    );
    expect(paths(mixed)).toEqual(expect.arrayContaining(["orders.0.placedAt", "orders.1.lines", "orders.2.placedAt"]));
    expect(await count("orders", "id LIKE ?", `${p}-%`)).toBe(0);
  });

  it("does the same for products", async () => {
    const p = uniquePrefix();
    const product = { id: `${p}-sku`, title: "Tea", categoryId: "tea", listPrice: 3 };
    const twice = await api.postProducts([product, product]);
    expect(twice.status).toBe(200);
    expect(((await twice.json()) as { data: { upserted: number } }).data.upserted).toBe(1);
    expect(await count("products", "id = ?", product.id)).toBe(1);
    const error = await rejected(
      await api.postProducts([
        { ...product, id: `${p}-2` },
        { ...product, id: `${p}-2`, listPrice: 4 },
      ]),
      400,
      "invalid_request",
    );
    expect(error.issues).toEqual([
      { path: ["products", 1, "id"], message: "products[1] has the same id as products[0] but different content" },
    ]);
    expect(await count("products", "id = ?", `${p}-2`)).toBe(0);
  });
});

describe("other write routes", () => {
  it("refuses control characters in rule fields, the X-Patron-User header and path ids", async () => {
    const rule = { name: "Boost\u0000tea", action: "exclude", targetType: "category", targetId: "tea\u0007" };
    const error = await rejected(
      await post("/v1/admin/rules", JSON.stringify(rule), { key: adminKey }),
      400,
      "invalid_request",
    );
    expect(paths(error).sort()).toEqual(["name", "targetId"]);
    const erase = await SELF.fetch("http://patron.test/v1/customers/c_%00x", {
      method: "DELETE",
      headers: { Authorization: `Bearer ${adminKey}` },
    });
    expect(paths(await rejected(erase, 400, "invalid_request"))).toEqual(["id"]);
    const patch = await SELF.fetch(`http://patron.test/v1/admin/rules/${"r".repeat(101)}`, {
      method: "PATCH",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "x" }),
    });
    expect(paths(await rejected(patch, 400, "invalid_request"))).toEqual(["id"]);
  });
});

/** Spreads `lines` lines over `orders` orders, each field as long as allowed and multi-byte. */
function widestOrders(prefix: string, orders: number, linesPerOrder: number) {
  return Array.from({ length: orders }, (_, i) => ({
    id: wide(`${prefix}-${i}-`, 200),
    channel: "store",
    storeId: wide(`store-${i}-`, 200),
    placedAt: "2026-03-14T10:22:00Z",
    currency: "USD",
    identifiers: { account: wide(`${prefix}-acct-${i}-`, 254), device: wide(`${prefix}-dev-${i}-`, 254) },
    lines: Array.from({ length: linesPerOrder }, (_, l) => ({
      productId: wide(`p${l}-`, 200),
      categoryId: wide(`c${l}-`, 200),
      quantity: 999_999.5,
      unitPrice: 999_999_999.99,
      listPrice: 1_000_000_000,
    })),
    recommendationId: wide("rec-", 200),
  }));
}

describe("the largest valid batches", () => {
  it("stores 1,000 orders whose long multi-byte values fill the body limit", async () => {
    const p = uniquePrefix();
    // As many lines per order as fit under the body limit with every field at its maximum length.
    const bytesOf = (orders: unknown[]) => new TextEncoder().encode(JSON.stringify({ orders })).length;
    const perLine = bytesOf(widestOrders(p, 1, 2)) - bytesOf(widestOrders(p, 1, 1));
    const linesPerOrder = 1 + Math.floor((maxBatchBodyBytes - bytesOf(widestOrders(p, 1000, 1))) / (1000 * perLine));
    const orders = widestOrders(p, 1000, linesPerOrder);
    const body = JSON.stringify({ orders });
    const bytes = new TextEncoder().encode(body).length;
    expect(bytes).toBeLessThanOrEqual(maxBatchBodyBytes);
    // No room left for one more line in every order.
    expect(bytes + 1000 * perLine).toBeGreaterThan(maxBatchBodyBytes);
    const response = await post("/v1/orders", body);
    expect(
      response.status,
      await response
        .clone()
        .text()
        .then((t) => t.slice(0, 500)),
    ).toBe(200);
    const { data } = (await response.json()) as { data: { accepted: number } };
    expect(data.accepted).toBe(1000);
    expect(await count("orders", "id LIKE ?", `${p}-%`)).toBe(1000);
    expect(await count("order_lines l JOIN orders o ON o.id = l.order_id", "o.id LIKE ?", `${p}-%`)).toBe(
      1000 * linesPerOrder,
    );
    expect(
      await count(
        "orders",
        // The id is not one Patron served, so its attribution is ignored and not stored.
        "id = ? AND store_id = ? AND recommendation_id IS NULL",
        orders[999]!.id,
        orders[999]!.storeId,
      ),
    ).toBe(1);
    // A replay is recognised order by order, so nothing is stored twice.
    const replay = (await (await post("/v1/orders", body)).json()) as {
      data: { accepted: number; duplicates: number };
    };
    expect(replay.data).toMatchObject({ accepted: 0, duplicates: 1000 });
  });

  it("stores 100 events with the longest ids in one beacon", async () => {
    const p = uniquePrefix("ev");
    const products = Array.from({ length: 100 }, (_, i) => `p-${i}-`.padEnd(128, "p"));
    // Real recommendation ids (an event counts only for an item its id served): 34 items each.
    const ids = await Promise.all(
      [0, 1, 2].map((k) =>
        newRecommendationId(
          {
            arm: "anonymous",
            subject: anonymousSubject,
            itemIds: products.slice(k * 34, (k + 1) * 34),
            issuedAt: new Date(),
          },
          env.SHOPPER_TOKEN_SECRET,
        ),
      ),
    );
    const events = products.map((productId, i) => ({
      type: "impression",
      recommendationId: ids[Math.floor(i / 34)],
      productId,
      categoryId: `${p}-c-${i}-`.padEnd(128, "c"),
    }));
    const body = JSON.stringify({ events });
    expect(new TextEncoder().encode(body).length).toBeLessThanOrEqual(64 * 1024);
    const response = await post("/v1/events", body, { headers: { "Content-Type": "text/plain" } });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ data: { accepted: 100, duplicates: 0, ignored: 0, suppressed: 0 } });
    expect(await count("events", "category_id LIKE ?", `${p}-c-%`)).toBe(100);
  });

  it("links every identifier kind at its longest in one identify call", async () => {
    const p = uniquePrefix("id");
    const identifiers = {
      account: wide(`${p}-acct-`, 254),
      email: `${p}@${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.test`.slice(0, 254),
      phone: "+1 415 555 0134",
      loyalty: wide(`${p}-loyalty-`, 254),
      card: wide(`${p}-card-`, 254),
      device: wide(`${p}-device-`, 254),
    };
    const response = await api.identify(identifiers);
    expect(response.status).toBe(200);
    const { data } = (await response.json()) as { data: { linked: number; ignoredIdentifiers: unknown[] } };
    expect(data.linked + data.ignoredIdentifiers.length).toBe(6);
    expect(data.linked).toBeGreaterThanOrEqual(4);
  });

  it("stores a rule with the longest name and target", async () => {
    const rule = { name: wide("Regel ", 200), action: "exclude", targetType: "product", targetId: wide("sku-", 200) };
    const response = await post("/v1/admin/rules", JSON.stringify(rule), { key: adminKey });
    expect(response.status).toBe(201);
    expect(await count("rules", "name = ? AND target_id = ?", rule.name, rule.targetId)).toBe(1);
  });

  it("stores 1,000 products with the longest URLs and multi-byte titles", async () => {
    const p = uniquePrefix();
    const url = (kind: string, i: number) => {
      const start = `https://shop.test/${kind}/${i}/`;
      return start + "a".repeat(2048 - start.length);
    };
    const products = Array.from({ length: 1000 }, (_, i) => ({
      id: wide(`${p}-${i}-`, 200),
      title: wide(`Title ${i} `, 500),
      categoryId: wide(`${p}-cat-${i % 50}-`, 200),
      categoryName: wide(`Category ${i % 50} `, 200),
      parentCategoryId: wide(`${p}-parent-`, 200),
      url: url("p", i),
      imageUrl: url("img", i),
      listPrice: 1e9,
      salePrice: 0,
    }));
    const body = JSON.stringify({ products });
    expect(new TextEncoder().encode(body).length).toBeLessThanOrEqual(maxBatchBodyBytes);
    const response = await post("/v1/products", body);
    expect(
      response.status,
      await response
        .clone()
        .text()
        .then((t) => t.slice(0, 500)),
    ).toBe(200);
    expect(await count("products", "id LIKE ?", `${p}-%`)).toBe(1000);
    expect(
      await count(
        "products",
        "id = ? AND url = ? AND image_url = ?",
        products[7]!.id,
        products[7]!.url,
        products[7]!.imageUrl,
      ),
    ).toBe(1);
    expect(await count("categories", "id LIKE ?", `${p}-%`)).toBe(50);
  });
});
