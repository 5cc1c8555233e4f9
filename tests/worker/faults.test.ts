// Faults: the real app, called with an env whose DB is the real local D1 wrapped so that it fails the
// way D1 does (busy/locked, overloaded, a generic D1_ERROR), either on every statement or only once a
// statement writes. Recommendations degrade to the last good popular shelf; writes answer 503
// `unavailable` with Retry-After and leave every table as it was. On the customer shards (the
// worker-shards project) an outage reaches the shards too: each shard's own SQLite fails the same way
// (inside its transactions, so a batch failing midway writes nothing) and so do the D1 bindings it
// reaches, and "every table" includes every shard's. Customer writes are also refused, writing nothing,
// when the customer store alone fails: D1, or the shards while D1 and EVENTS_DB stay healthy.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createApp } from "../../worker/app.ts";
import { classifyDatabaseError } from "../../worker/http/database-errors.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { forgetModels } from "../../worker/models/models.repo.ts";
import { forgetLastGoodShelves } from "../../worker/recommendations/last-good-shelf.ts";
import { anonymousSubject, newRecommendationId } from "../../worker/recommendations/recommendation-id.ts";
import { forgetCatalog } from "../../worker/recommendations/recommendations.repo.ts";
import { recommendationsResponseSchema } from "../../worker/recommendations/recommendations.schemas.ts";
import { forgetRules } from "../../worker/rules/rules.repo.ts";
import { forgetUnmigratedCheck } from "../../worker/shards/migration-guard.ts";
import { shardCount } from "../../worker/shards/shards.ts";
import { adminKey, anOrder, apiKey, client } from "../fixtures/builders.ts";
import { breakShards, onEachStorePart } from "../fixtures/events-store.ts";

const api = client(SELF);
const secret = "test-shopper-secret";
const day = 86_400_000;
const app = createApp();

const busy = "D1_ERROR: database is locked: SQLITE_BUSY";
const overloaded = "D1 DB is overloaded. Requests queued for too long.";
const generic = "D1_ERROR: internal error; reference = 7f3a9c0d1e";

type FailMode = "every statement" | "writes";

const writeSql = /\b(INSERT|UPDATE|DELETE|REPLACE)\b/i;

/** Which statements fail in `mode`. */
const failsIn = (mode: FailMode) => (sql: string) => mode === "every statement" || writeSql.test(sql);

/**
 * The real binding, failing with a D1-shaped error: on every query, or only on statements that write
 * (reads go through, so a route gets as far as its first write). Errors are async rejections, as D1's are.
 */
function failingDb(real: D1Database, message: string, mode: FailMode): D1Database {
  const fails = failsIn(mode);
  const reject = () => Promise.reject(new Error(message));
  const realOf = new WeakMap<object, D1PreparedStatement>();
  const sqlOf = new WeakMap<object, string>();
  const wrap = (statement: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const guard =
      <T>(call: () => Promise<T>) =>
      () =>
        fails(sql) ? (reject() as Promise<T>) : call();
    const fake = {
      bind: (...values: unknown[]) => wrap(statement.bind(...values), sql),
      first: (column?: string) => guard(() => statement.first(column as string))(),
      all: () => guard(() => statement.all())(),
      raw: (options?: { columnNames?: boolean }) =>
        guard(() => statement.raw(options as { columnNames: true }) as Promise<unknown[]>)(),
      run: () => guard(() => statement.run())(),
    } as unknown as D1PreparedStatement;
    realOf.set(fake, statement);
    sqlOf.set(fake, sql);
    return fake;
  };
  return {
    prepare: (sql: string) => wrap(real.prepare(sql), sql),
    batch: (statements: D1PreparedStatement[]) =>
      statements.some((statement) => fails(sqlOf.get(statement) ?? "INSERT"))
        ? reject()
        : real.batch(statements.map((statement) => realOf.get(statement) ?? statement)),
    exec: () => reject(),
    dump: () => reject(),
    withSession: () => {
      throw new Error(message);
    },
  } as unknown as D1Database;
}

async function callApp(request: Request, db: D1Database = env.DB, eventsDb: D1Database = env.EVENTS_DB) {
  const context = createExecutionContext();
  const response = await app.fetch(request, { ...env, DB: db, EVENTS_DB: eventsDb }, context);
  await waitOnExecutionContext(context);
  return response;
}

/**
 * The app during an outage of the store: D1 failing as `mode` says (and EVENTS_DB with it when `events`),
 * and every customer shard with them when there are shards (breakShards).
 */
async function callDuringOutage(request: Request, message: string, mode: FailMode, { events = false } = {}) {
  const restoreShards = await breakShards({
    message,
    fails: failsIn(mode),
    d1: (real) => failingDb(real, message, mode),
  });
  try {
    const eventsDb = events ? failingDb(env.EVENTS_DB, message, mode) : env.EVENTS_DB;
    return await callApp(request, failingDb(env.DB, message, mode), eventsDb);
  } finally {
    await restoreShards();
  }
}

function get(path: string, token?: string) {
  return new Request(`http://patron.test${path}`, {
    headers: {
      "X-Request-Id": `faults-${crypto.randomUUID()}`,
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
  });
}

/** Row counts of every table of one database (or shard), keyed `<prefix><table>`. */
async function tableCounts(prefix: string, database: D1Database): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const { results } = await database
    .prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'",
    )
    .all<{ name: string }>();
  for (const { name } of results) {
    const row = await database.prepare(`SELECT count(*) AS n FROM "${name}"`).first<{ n: number }>();
    counts[`${prefix}${name}`] = row?.n ?? 0;
  }
  return counts;
}

/**
 * Row counts of every table in both databases (the events database's prefixed `EVENTS_DB.`) and, with
 * customer shards, in every shard (`shard-<i>.`), to show a refused request wrote nothing.
 */
async function rowCounts(): Promise<Record<string, number>> {
  const shards =
    shardCount(env) > 0 ? await onEachStorePart((database, index) => tableCounts(`shard-${index}.`, database)) : [];
  return Object.assign(await tableCounts("", env.DB), await tableCounts("EVENTS_DB.", env.EVENTS_DB), ...shards);
}

/** Drops every isolate cache in front of D1, so the next request has to read it. */
function forgetIsolateCaches() {
  forgetModels();
  forgetCatalog();
  forgetRules();
  // On shards, a new isolate first checks D1 for customers never migrated: while D1 is down that check
  // has no answer, and the request goes on as it would have.
  forgetUnmigratedCheck();
}

const shelfKeys = ["8:4", "2:4", "3:1"];
const now = Date.now();
const knownAccount = "faults-regular";

beforeAll(async () => {
  const products = ["coffee", "tea", "mugs"].flatMap((categoryId, c) =>
    [0, 1, 2].map((n) => ({
      id: `f-${categoryId}-${n}`,
      title: `${categoryId} ${n}`,
      categoryId,
      categoryName: categoryId,
      url: `https://shop.test/p/${categoryId}-${n}`,
      imageUrl: null,
      listPrice: 10 + c + n,
      salePrice: null,
      inStock: true,
    })),
  );
  expect((await api.postProducts(products)).status).toBe(200);
  const orders = Array.from({ length: 30 }, (_, k) =>
    anOrder({
      id: `f-order-${k}`,
      placedAt: new Date(now - (k + 1) * day).toISOString(),
      identifiers: { account: k < 5 ? knownAccount : `f-crowd-${k}` },
      lines: [
        { productId: `f-coffee-${k % 3}`, categoryId: "coffee", quantity: 1, unitPrice: 10, listPrice: 10 },
        { productId: `f-tea-${k % 2}`, categoryId: "tea", quantity: 1, unitPrice: 11, listPrice: 11 },
      ],
    }),
  );
  expect((await api.postOrders(orders)).status).toBe(200);
  // The nightly fit gives the popular shelf its sales.
  const nightly = await api.call("POST", "/v1/admin/jobs/nightly?wait=1", {}, adminKey);
  expect(nightly.status, await nightly.clone().text()).toBe(200);
  await forgetLastGoodShelves(shelfKeys);
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("classifyDatabaseError", () => {
  it("reads D1's messages, through drizzle's cause chain, and leaves other errors alone", () => {
    const busyConditions = [
      busy,
      "D1_ERROR: database table is locked",
      overloaded,
      "D1 DB is overloaded. Too many requests queued.",
      "D1_ERROR: Network connection lost.",
      "D1_ERROR: Internal error in D1 DB storage caused object to be reset.",
      "D1 DB storage operation exceeded timeout which caused object to be reset.",
      "D1_ERROR: Cannot resolve D1 DB due to transient issue on remote node.",
      "D1 DB's isolate exceeded its memory limit and was reset.",
    ];
    for (const message of busyConditions) expect(classifyDatabaseError(new Error(message))?.kind, message).toBe("busy");
    const wrapped = new Error("Failed query: insert into orders ...", { cause: new Error(busy) });
    expect(classifyDatabaseError(wrapped)).toMatchObject({ kind: "busy", retryAfterSeconds: 1 });
    expect(classifyDatabaseError(new Error("D1_ERROR: string or blob too big: SQLITE_TOOBIG"))?.kind).toBe("too_big");
    expect(classifyDatabaseError(new Error(generic))?.kind).toBe("database");
    expect(classifyDatabaseError(new Error("D1_TYPE_ERROR: Type 'object' not supported"))?.kind).toBe("database");
    expect(classifyDatabaseError(new TypeError("cannot read properties of undefined"))).toBeNull();
    expect(classifyDatabaseError("a string")).toBeNull();
  });
});

describe("GET /v1/recommendations when D1 fails", () => {
  it("answers 200 degraded with no items when no good shelf was ever kept, for anonymous and known shoppers", async () => {
    forgetIsolateCaches();
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const token = await signShopperToken(knownAccount, secret, 3600, new Date());
    for (const message of [busy, generic]) {
      for (const shopper of [undefined, token]) {
        const response = await callDuringOutage(get("/v1/recommendations", shopper), message, "every statement");
        expect(response.status, await response.clone().text()).toBe(200);
        expect(response.headers.get("Cache-Control")).toBe("no-store");
        const data = recommendationsResponseSchema.parse(await response.json()).data;
        expect(data).toMatchObject({ degraded: true, customerKnown: false, items: [], categories: [] });
        expect(data.recommendationId).toMatch(/^rec_/);
      }
    }
  });

  it("serves the last good popular shelf, to anonymous and known shoppers, and logs the failure with the request id", async () => {
    forgetIsolateCaches();
    const fresh = await callApp(get("/v1/recommendations"));
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get("Cache-Control")).toBe("public, max-age=60");
    const good = recommendationsResponseSchema.parse(await fresh.json()).data;
    expect(good.degraded).toBeUndefined();
    expect(good.items.length).toBeGreaterThan(0);

    const token = await signShopperToken(knownAccount, secret, 3600, new Date());
    for (const message of [busy, overloaded, generic]) {
      for (const shopper of [undefined, token]) {
        forgetIsolateCaches(); // as if the isolate caches had expired
        const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
        const request = get("/v1/recommendations", shopper);
        const response = await callDuringOutage(request, message, "every statement");
        expect(response.status).toBe(200);
        expect(response.headers.get("Cache-Control")).toBe("no-store");
        const data = recommendationsResponseSchema.parse(await response.json()).data;
        expect(data.degraded).toBe(true);
        expect(data.customerKnown).toBe(false);
        expect(data.items.map((item) => item.id)).toEqual(good.items.map((item) => item.id));
        expect(data.categories.map((category) => category.id)).toEqual(good.categories.map((category) => category.id));
        expect(data.recommendationId).not.toBe(good.recommendationId);
        const logged = errors.mock.calls.map((call) => String(call[0]));
        const requestId = request.headers.get("X-Request-Id") as string;
        expect(logged.some((line) => line.includes(requestId) && line.includes(message.slice(0, 20)))).toBe(true);
        errors.mockRestore();
      }
    }

    // A smaller shelf than any kept is cut from the newest one kept.
    forgetIsolateCaches();
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const small = await callDuringOutage(get("/v1/recommendations?limit=2"), busy, "every statement");
    const smallData = recommendationsResponseSchema.parse(await small.json()).data;
    expect(smallData.degraded).toBe(true);
    expect(smallData.items.map((item) => item.id)).toEqual(good.items.slice(0, 2).map((item) => item.id));
  });

  it("finds the kept shelf in the Cache API when this isolate's memory has lost it", async () => {
    forgetIsolateCaches();
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const fresh = await callApp(get("/v1/recommendations?limit=3&categories=1"));
    const good = recommendationsResponseSchema.parse(await fresh.json()).data;
    expect(good.items.length).toBeGreaterThan(0);
    await forgetLastGoodShelves(); // memory only
    forgetIsolateCaches();
    const response = await callDuringOutage(
      get("/v1/recommendations?limit=3&categories=1"),
      generic,
      "every statement",
    );
    const data = recommendationsResponseSchema.parse(await response.json()).data;
    expect(data.degraded).toBe(true);
    expect(data.items.map((item) => item.id)).toEqual(good.items.map((item) => item.id));
  });

  it("keeps the popular shelf served to a signed-in account no customer holds, for a later outage", async () => {
    forgetIsolateCaches();
    await forgetLastGoodShelves(["5:2"]);
    const stranger = await signShopperToken(`faults-stranger-${crypto.randomUUID()}`, secret, 3600, new Date());
    const fresh = await callApp(get("/v1/recommendations?limit=5&categories=2", stranger));
    const good = recommendationsResponseSchema.parse(await fresh.json()).data;
    expect(good).toMatchObject({ customerKnown: false });
    expect(good.items.length).toBeGreaterThan(0);
    forgetIsolateCaches();
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const response = await callDuringOutage(get("/v1/recommendations?limit=5&categories=2"), busy, "every statement");
    const data = recommendationsResponseSchema.parse(await response.json()).data;
    expect(data.degraded).toBe(true);
    expect(data.items.map((item) => item.id)).toEqual(good.items.map((item) => item.id));
  });

  it("keeps the page context on a degraded shelf: no excluded id, not the page's product, nothing for buy-again", async () => {
    forgetIsolateCaches();
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const fresh = await callApp(get("/v1/recommendations?limit=3&categories=1"));
    const good = recommendationsResponseSchema.parse(await fresh.json()).data;
    expect(good.items.length).toBeGreaterThan(1);
    const [first, second] = good.items.map((item) => item.id);
    forgetIsolateCaches();
    const response = await callDuringOutage(
      get(`/v1/recommendations?limit=3&categories=1&placement=product&product=${second}&exclude=${first}`),
      generic,
      "every statement",
    );
    const data = recommendationsResponseSchema.parse(await response.json()).data;
    expect(data).toMatchObject({ degraded: true, placement: "product" });
    expect(data.items.map((item) => item.id)).toEqual(good.items.slice(2).map((item) => item.id));
    const buyAgain = recommendationsResponseSchema.parse(
      await (
        await callDuringOutage(
          get("/v1/recommendations?limit=3&categories=1&placement=buy-again"),
          generic,
          "every statement",
        )
      ).json(),
    ).data;
    expect(buyAgain).toMatchObject({ degraded: true, placement: "buy-again", items: [] });
  });

  it("still answers a bad token with 401 and a bad query with 400 while D1 is down", async () => {
    const during = (request: Request) => callDuringOutage(request, busy, "every statement");
    expect((await during(get("/v1/recommendations", "not-a-token"))).status).toBe(401);
    expect((await during(get("/v1/recommendations?limit=0"))).status).toBe(400);
  });
});

interface WriteCase {
  name: string;
  request: () => Promise<Request>;
}

const json = (method: string, path: string, body: unknown, key: string | null) =>
  new Request(`http://patron.test${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

async function existingCustomerId(): Promise<string> {
  const response = await api.lookup("account", knownAccount);
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: { customerId: string } }).data.customerId;
}

/** Rules made by existingRuleId: each with a strength of its own, as the same boost twice is refused (409). */
let rulesMade = 0;

async function existingRuleId(): Promise<string> {
  rulesMade += 1;
  const response = await api.call(
    "POST",
    "/v1/admin/rules",
    { name: "Boost tea", action: "boost", targetType: "category", targetId: "tea", strength: rulesMade },
    adminKey,
  );
  expect(response.status, await response.clone().text()).toBe(201);
  return ((await response.json()) as { data: { id: string } }).data.id;
}

/** An order of a new customer, an order and an identify call of `account`: writes of customer data only. */
function customerWriteCases(who: { newAccount: string; account: string; email: string; ago: number }): WriteCase[] {
  return [
    {
      name: "POST /v1/orders (new customer)",
      request: async () =>
        json("POST", "/v1/orders", { orders: [anOrder({ identifiers: { account: who.newAccount } })] }, apiKey),
    },
    {
      name: "POST /v1/orders (known customer)",
      request: async () =>
        json(
          "POST",
          "/v1/orders",
          {
            orders: [
              anOrder({ placedAt: new Date(now - who.ago).toISOString(), identifiers: { account: who.account } }),
            ],
          },
          apiKey,
        ),
    },
    {
      name: "POST /v1/identify",
      request: async () =>
        json("POST", "/v1/identify", { identifiers: { account: who.account, email: who.email } }, apiKey),
    },
  ];
}

const writeCases: WriteCase[] = [
  ...customerWriteCases({
    newAccount: "f-new-shopper",
    account: knownAccount,
    email: "f-regular@shop.test",
    ago: day / 2,
  }),
  {
    name: "POST /v1/products",
    request: async () =>
      json(
        "POST",
        "/v1/products",
        {
          products: [
            {
              id: "f-new-product",
              title: "New",
              categoryId: "coffee",
              categoryName: "coffee",
              url: null,
              imageUrl: null,
              listPrice: 5,
              salePrice: null,
              inStock: true,
            },
          ],
        },
        apiKey,
      ),
  },
  {
    name: "POST /v1/events",
    request: async () =>
      new Request("http://patron.test/v1/events", {
        method: "POST",
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body: JSON.stringify({
          events: [
            {
              type: "impression",
              recommendationId: await newRecommendationId(
                { arm: "anonymous", subject: anonymousSubject, itemIds: ["f-coffee-0"], issuedAt: new Date() },
                secret,
              ),
              arm: "anonymous",
              productId: "f-coffee-0",
            },
          ],
        }),
      }),
  },
  {
    name: "DELETE /v1/customers/:id",
    request: async () => json("DELETE", `/v1/customers/${await existingCustomerId()}`, undefined, adminKey),
  },
  {
    name: "POST /v1/admin/rules",
    request: async () =>
      json(
        "POST",
        "/v1/admin/rules",
        { name: "Bury mugs", action: "bury", targetType: "category", targetId: "mugs", strength: 0.5 },
        adminKey,
      ),
  },
  {
    name: "PATCH /v1/admin/rules/:id",
    request: async () => json("PATCH", `/v1/admin/rules/${await existingRuleId()}`, { strength: 0.9 }, adminKey),
  },
  {
    name: "POST /v1/admin/rules/:id/disable",
    request: async () => json("POST", `/v1/admin/rules/${await existingRuleId()}/disable`, undefined, adminKey),
  },
];

/** Sends `request` through `faulted` and checks the answer is 503 unavailable with Retry-After and no row changed anywhere. */
async function expectRefusedWritingNothing(
  label: string,
  request: Request,
  faulted: (request: Request) => Promise<Response>,
) {
  const before = await rowCounts();
  forgetIsolateCaches();
  const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
  const response = await faulted(request);
  errors.mockRestore();
  const body = (await response.json()) as { error: { code: string; message: string; requestId: string } };
  expect(response.status, `${label}: ${JSON.stringify(body)}`).toBe(503);
  expect(body.error.code).toBe("unavailable");
  expect(body.error.requestId).toBe(response.headers.get("X-Request-Id"));
  expect(Number(response.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
  expect(response.headers.get("Cache-Control")).toBe("no-store");
  expect(await rowCounts(), `wrote rows (${label})`).toEqual(before);
}

describe("writes when D1 is busy, locked or failing", () => {
  for (const write of writeCases) {
    it(`${write.name} answers 503 unavailable with Retry-After and writes nothing`, async () => {
      for (const mode of ["every statement", "writes"] as const) {
        for (const message of [busy, overloaded, generic]) {
          // An outage of D1 reaches both databases, and the customer shards when there are any.
          await expectRefusedWritingNothing(`${write.name}, ${mode} / ${message}`, await write.request(), (request) =>
            callDuringOutage(request, message, mode, { events: true }),
          );
        }
      }
      // The same request against the healthy database goes through: the refusal was the fault's doing.
      const healthy = await callApp(await write.request());
      expect(healthy.status, await healthy.clone().text()).toBeLessThan(300);
    });
  }

  it("answers a value D1 finds too big with 413 payload_too_large, not a 500", async () => {
    const before = await rowCounts();
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const response = await callDuringOutage(
      await (writeCases[3] as WriteCase).request(),
      "D1_ERROR: string or blob too big: SQLITE_TOOBIG",
      "writes",
    );
    errors.mockRestore();
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
    expect(response.headers.get("Retry-After")).toBeNull();
    expect(await rowCounts()).toEqual(before);
  });

  it("still answers bad input with 400 while D1 is down", async () => {
    const bad = await callDuringOutage(
      json("POST", "/v1/orders", { orders: [{ id: "" }] }, apiKey),
      busy,
      "every statement",
    );
    expect(bad.status).toBe(400);
  });
});

/**
 * The app while the customer store alone fails: the one D1 database, or (with shards) every shard's own
 * SQLite while D1 and EVENTS_DB stay healthy.
 */
async function callWhileCustomerStoreFails(request: Request, message: string, mode: FailMode) {
  if (shardCount(env) === 0) return callApp(request, failingDb(env.DB, message, mode));
  const restoreShards = await breakShards({ message, fails: failsIn(mode), d1: (real) => real });
  try {
    return await callApp(request);
  } finally {
    await restoreShards();
  }
}

/** A customer of its own: the writes above erase knownAccount's customer and suppress its keys. */
const storeAccount = "f-store-regular";

/** Writes whose only writes are customer data (in the shards when there are any). */
const customerWrites: WriteCase[] = customerWriteCases({
  newAccount: "f-store-new-shopper",
  account: storeAccount,
  email: "f-store@shop.test",
  ago: day / 3,
});

describe("customer writes when the customer store alone fails", () => {
  beforeAll(async () => {
    const seeded = await api.postOrders([anOrder({ identifiers: { account: storeAccount } })]);
    expect(seeded.status, await seeded.clone().text()).toBe(200);
  });

  for (const write of customerWrites) {
    it(`${write.name} answers 503 unavailable and writes nothing, with every other database healthy`, async () => {
      for (const mode of ["every statement", "writes"] as const) {
        for (const message of [busy, generic]) {
          await expectRefusedWritingNothing(`${write.name}, ${mode} / ${message}`, await write.request(), (request) =>
            callWhileCustomerStoreFails(request, message, mode),
          );
        }
      }
      // Healthy again (the shards put back), the same request goes through.
      const healthy = await callApp(await write.request());
      expect(healthy.status, await healthy.clone().text()).toBeLessThan(300);
    });
  }
});
