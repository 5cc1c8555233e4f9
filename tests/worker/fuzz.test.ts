// Property: whatever bytes reach a write route, the answer is never a 5xx; a 4xx is always the one
// error envelope with the request's id; and a rejected request changes no table's row count (nor the
// latest updated_at of a table that has one, which catches an in-place upsert).
// Payloads are random JSON, valid payloads with one part swapped for something hostile (oversized,
// multi-byte, NUL and other control characters, lone surrogates, wrong types, deep nesting, huge
// arrays, extreme numbers and dates, script links), duplicated keys, truncated or non-UTF-8 bytes.
// Seeded and a few hundred runs in `npm test`; `npm run bench -- fuzz [runs]` sets FUZZ_RUNS and
// reports runs, failures and time instead of stopping at the first failure.
import { env, SELF } from "cloudflare:test";
import fc from "fast-check";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { startNightlySchema } from "../../worker/admin/admin.schemas.ts";
import { adminKey, apiKey } from "../fixtures/builders.ts";

const defaultRuns = 300;
const requestedRuns = Number(env.FUZZ_RUNS ?? "");
const benchMode = Number.isInteger(requestedRuns) && requestedRuns > 0;
const runs = benchMode ? requestedRuns : defaultRuns;
const seed = benchMode && env.FUZZ_SEED ? Number(env.FUZZ_SEED) : 20261130;

const errorCodes = new Set([
  "invalid_request",
  "unauthorized",
  "forbidden",
  "not_found",
  "conflict",
  "payload_too_large",
  "rate_limited",
  "unavailable",
]);

// ---------------------------------------------------------------------------------------------------
// Hostile values

/** A value that is spliced into the JSON text as-is (deep nesting, numbers JSON.stringify cannot write). */
interface Raw {
  raw: string;
}
type Hostile = unknown | Raw;
const isRaw = (value: unknown): value is Raw =>
  typeof value === "object" && value !== null && "raw" in value && Object.keys(value).length === 1;

const controlCharacter = fc
  .integer({ min: 0, max: 0x9f })
  .filter((c) => c < 0x20 || c >= 0x7f)
  .map((c) => String.fromCharCode(c));

const hostileString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.tuple(fc.string({ maxLength: 10 }), controlCharacter, fc.string({ maxLength: 10 })).map(([a, c, b]) => a + c + b),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "a\u0000b",
    "\ud800",
    "\udfff\ud800",
    "\u202e",
    "\ufeff",
    "漢字",
    "🛒".repeat(150),
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https://shop.test/x",
    "0000-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "2026-02-30T10:00:00Z",
    "+275760-09-13T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
    "2026-03-14T10:22:00Z",
    "NaN",
    "__proto__",
    "constructor",
    "*",
  ),
  fc
    .constantFrom(201, 255, 501, 2049, 4097, 70_000)
    .chain((length) => fc.constantFrom("x", "漢", "🛒", "\u0000").map((unit) => unit.repeat(length))),
);

const hostileNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, -1, 0.5, 1e9, 1e9 + 1, 1e6 + 1, Number.MAX_SAFE_INTEGER + 2, 1e308, -1e308, 5e-324),
  fc.constantFrom<Raw>(
    { raw: "1e400" },
    { raw: "-1e400" },
    { raw: "1e-400" },
    { raw: "123456789012345678901234567890" },
  ),
);

const deepNesting = fc.tuple(fc.integer({ min: 50, max: 5000 }), fc.boolean()).map(
  ([depth, arrays]): Raw => ({
    raw: arrays ? `${"[".repeat(depth)}]${"]".repeat(depth - 1)}` : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`,
  }),
);

const hugeArray = fc
  .tuple(fc.integer({ min: 1001, max: 5000 }), fc.constantFrom<unknown>(1, "x", null, {}, []))
  .map(([length, item]) => Array.from({ length }, () => item));

const hostileLeaf: fc.Arbitrary<Hostile> = fc.oneof(
  { arbitrary: hostileString, weight: 4 },
  { arbitrary: hostileNumber, weight: 2 },
  { arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { "": "" }), weight: 1 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 },
  { arbitrary: deepNesting, weight: 1 },
  { arbitrary: hugeArray, weight: 1 },
);

// ---------------------------------------------------------------------------------------------------
// Valid payloads, per route, for mutations to start from

const idValue = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,15}$/);
const iso = fc
  .integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2026, 0, 1) })
  .map((ms) => new Date(ms).toISOString());

const validLine = fc.record({
  productId: idValue,
  categoryId: idValue,
  quantity: fc.integer({ min: 1, max: 5 }),
  unitPrice: fc.integer({ min: 0, max: 100 }),
});
const validOrder = fc.record({
  id: idValue.map((id) => `fz-${id}`),
  channel: fc.constantFrom("web", "store", "app", "phone"),
  storeId: fc.option(idValue),
  placedAt: iso,
  currency: fc.constant("USD"),
  identifiers: fc.record({ account: idValue.map((id) => `fz-acct-${id}`) }),
  lines: fc.array(validLine, { minLength: 1, maxLength: 3 }),
  recommendationId: fc.constant(null),
});
const validProduct = fc.record({
  id: idValue.map((id) => `fz-${id}`),
  title: fc.string({ minLength: 1, maxLength: 20 }).filter((t) => t.trim().length > 0),
  categoryId: idValue,
  listPrice: fc.integer({ min: 0, max: 100 }),
  url: fc.option(idValue.map((id) => `https://shop.test/p/${id}`)),
});
const validEvent = fc.record({
  type: fc.constantFrom("impression", "click", "view"),
  recommendationId: idValue.map((id) => `rec-fz-${id}`),
  productId: idValue,
});
const validRule = fc.record({
  name: fc.string({ minLength: 1, maxLength: 20 }).filter((t) => t.trim().length > 0),
  action: fc.constant("boost"),
  targetType: fc.constantFrom("category", "product"),
  targetId: idValue,
  strength: fc.integer({ min: 1, max: 10 }),
});

// Audience webhooks go to the local test receiver: a nightly run the fuzz starts delivers there, never
// to the internet.
const receiver = inject("webhookReceiver");
const validAudience = fc.record(
  {
    name: fc.string({ minLength: 1, maxLength: 20 }).filter((t) => t.trim().length > 0),
    filters: fc.record(
      {
        stage: fc.constantFrom("new", "active", "fading", "lapsed"),
        valueTier: fc.constantFrom("top", "high", "medium", "low"),
        lapsedCategory: idValue,
      },
      { requiredKeys: [] },
    ),
    webhookUrl: fc.option(idValue.map((id) => `${receiver}/hooks/fuzz-${id}`)),
  },
  { requiredKeys: ["name"] },
);

interface Route {
  name: string;
  method: "POST" | "PATCH" | "DELETE";
  /** The path; for routes with an id in the path, built from a (possibly hostile) segment. */
  path: (segment: string) => string;
  key: string;
  valid: fc.Arbitrary<unknown>;
  /** Payloads that would start real work the property cannot undo (a model run) are made invalid. */
  mustReject?: (body: unknown) => boolean;
  segment?: fc.Arbitrary<string>;
  noBody?: boolean;
  /** Headers the route needs besides the key (the console's own header). */
  headers?: Record<string, string>;
  /** Where it is sent, when not over plain http (the console signs in over https only). */
  origin?: string;
}

let ruleId = "";
let audienceId = "";

/** Any string as a path segment, percent-encoded; lone surrogates become the bytes of an encoded surrogate. */
const encodeSegment = (text: string) =>
  [...text]
    .map((character) => {
      try {
        return encodeURIComponent(character);
      } catch {
        return "%ED%A0%80";
      }
    })
    .join("");

const pathSegment = fc.oneof(
  hostileString.map(encodeSegment),
  fc.constantFrom("%", "%E0%A4%A", "%00", "%2F..%2F", "..", `c_${"a".repeat(200)}`, "%C0%AF"),
);

const routes: Route[] = [
  {
    name: "orders",
    method: "POST",
    path: () => "/v1/orders",
    key: apiKey,
    valid: fc.record({ orders: fc.array(validOrder, { minLength: 1, maxLength: 3 }) }),
  },
  {
    name: "identify",
    method: "POST",
    path: () => "/v1/identify",
    key: apiKey,
    valid: fc.record({ identifiers: fc.record({ account: idValue.map((id) => `fz-acct-${id}`), device: idValue }) }),
  },
  {
    name: "products",
    method: "POST",
    path: () => "/v1/products",
    key: apiKey,
    valid: fc.record({ products: fc.array(validProduct, { minLength: 1, maxLength: 3 }) }),
  },
  {
    name: "events",
    method: "POST",
    path: () => "/v1/events",
    key: apiKey,
    valid: fc.oneof(validEvent, fc.record({ events: fc.array(validEvent, { minLength: 1, maxLength: 3 }) })),
  },
  { name: "rules", method: "POST", path: () => "/v1/admin/rules", key: adminKey, valid: validRule },
  {
    name: "rule update",
    method: "PATCH",
    path: (segment) => `/v1/admin/rules/${segment}`,
    key: adminKey,
    valid: fc.record(
      { name: fc.string({ minLength: 1, maxLength: 20 }).filter((t) => t.trim().length > 0) },
      { requiredKeys: [] },
    ),
    segment: fc.oneof(
      fc.constant("").map(() => ruleId),
      pathSegment,
    ),
  },
  {
    name: "rule disable",
    method: "POST",
    path: (segment) => `/v1/admin/rules/${segment}/disable`,
    key: adminKey,
    valid: fc.constant({}),
    segment: pathSegment,
    noBody: true,
  },
  {
    name: "nightly",
    method: "POST",
    path: () => "/v1/admin/jobs/nightly",
    key: adminKey,
    valid: fc.record({ asOf: iso, pageSize: fc.integer({ min: 10, max: 5000 }) }),
    mustReject: (body) => startNightlySchema.safeParse(body).success,
  },
  {
    name: "console sign-in",
    method: "POST",
    path: () => "/v1/admin/session",
    key: adminKey,
    valid: fc.record({ key: fc.constantFrom(adminKey, "not-the-key") }),
    headers: { "X-Patron-Console": "1" },
    origin: "https://patron.test",
  },
  {
    name: "suppression lift",
    method: "DELETE",
    path: () => "/v1/admin/suppressions",
    key: adminKey,
    valid: fc.record({
      kind: fc.constantFrom("order", "account", "email", "phone", "loyalty", "card", "device"),
      value: idValue,
    }),
  },
  {
    name: "rule preview",
    method: "POST",
    path: () => "/v1/admin/rules/preview",
    key: adminKey,
    valid: fc.record({ rule: validRule, customerId: idValue.map((id) => `c_${id}`) }),
  },
  {
    name: "rule simulation",
    method: "POST",
    path: () => "/v1/admin/rules/simulate",
    key: adminKey,
    valid: fc.record({ rule: validRule, sample: fc.integer({ min: 1, max: 20 }) }),
  },
  { name: "audiences", method: "POST", path: () => "/v1/admin/audiences", key: adminKey, valid: validAudience },
  {
    name: "audience update",
    method: "PATCH",
    path: (segment) => `/v1/admin/audiences/${segment}`,
    key: adminKey,
    valid: fc.record(
      {
        name: fc.string({ minLength: 1, maxLength: 20 }).filter((t) => t.trim().length > 0),
        filters: fc.record({ stage: fc.constantFrom("new", "active", "fading", "lapsed") }, { requiredKeys: [] }),
        webhookUrl: fc.option(idValue.map((id) => `${receiver}/hooks/fuzz-${id}`)),
      },
      { requiredKeys: [] },
    ),
    segment: fc.oneof(
      fc.constant("").map(() => audienceId),
      pathSegment,
    ),
  },
  {
    name: "audience deletion",
    method: "DELETE",
    path: (segment) => `/v1/admin/audiences/${segment}`,
    key: adminKey,
    valid: fc.constant({}),
    segment: pathSegment,
    noBody: true,
  },
  {
    name: "customer erasure",
    method: "DELETE",
    path: (segment) => `/v1/customers/${segment}`,
    key: adminKey,
    valid: fc.constant({}),
    segment: pathSegment,
    noBody: true,
  },
];

// ---------------------------------------------------------------------------------------------------
// Mutations

type Step = string | number;

function pathsOf(value: unknown, at: Step[] = [], out: Step[][] = []): Step[][] {
  out.push(at);
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) pathsOf(item, [...at, i], out);
  } else if (value && typeof value === "object")
    for (const [key, item] of Object.entries(value)) pathsOf(item, [...at, key], out);
  return out;
}

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

type Operation = "replace" | "delete" | "add" | "wrap" | "duplicate";

function mutate(valid: unknown, pick: number, operation: Operation, leaf: Hostile, extraKey: string): unknown {
  const root = { value: clone(valid) } as Record<string, unknown>;
  const paths = pathsOf(root.value).map((path) => ["value", ...path]);
  const path = paths[pick % paths.length]!;
  // biome-ignore lint/suspicious/noExplicitAny: walking arbitrary JSON
  const parent = path.slice(0, -1).reduce<any>((node, step) => node[step], root);
  const last = path[path.length - 1]!;
  const target = parent[last];
  switch (operation) {
    case "replace":
      parent[last] = leaf;
      break;
    case "delete":
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
      break;
    case "add":
      if (target && typeof target === "object" && !Array.isArray(target)) target[extraKey] = leaf;
      else if (Array.isArray(target)) target.push(leaf);
      else parent[last] = leaf;
      break;
    case "wrap":
      parent[last] = [target];
      break;
    case "duplicate":
      if (Array.isArray(target)) target.push(...target.map(clone));
      else parent[last] = leaf;
      break;
  }
  return root.value;
}

/** JSON text with Raw markers spliced in. */
function serialize(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, item) => {
    if (isRaw(item)) {
      raws.push(item.raw);
      return `__raw_${raws.length - 1}__`;
    }
    return item;
  });
  return (text ?? "null").replace(/"__raw_(\d+)__"/g, (_match, index) => raws[Number(index)]!);
}

type Body = string | Uint8Array | null;

const encoder = new TextEncoder();

/** A JSON object text with `key` written twice: first (later one wins) or last (hostile one wins). */
function duplicatedKey(valid: unknown, pick: number, leaf: Hostile, hostileWins: boolean): string {
  const text = serialize(valid);
  if (!valid || typeof valid !== "object" || Array.isArray(valid)) return text;
  const keys = Object.keys(valid);
  if (keys.length === 0) return text;
  const key = JSON.stringify(keys[pick % keys.length]);
  const extra = `${key}:${serialize(leaf)}`;
  return hostileWins ? `${text.slice(0, -1)},${extra}}` : `{${extra},${text.slice(1)}`;
}

function bodyArbitrary(route: Route): fc.Arbitrary<{ body: Body; shape: string }> {
  const mutation = fc
    .tuple(
      route.valid,
      fc.nat(),
      fc.constantFrom<Operation>("replace", "delete", "add", "wrap", "duplicate"),
      hostileLeaf,
      fc.constantFrom("x", "__proto__", "constructor", "id", ""),
    )
    .map(([valid, pick, operation, leaf, key]) => ({
      body: serialize(mutate(valid, pick, operation, leaf, key)),
      shape: `mutated (${operation})`,
    }));
  const randomJson = fc.jsonValue({ maxDepth: 4 }).map((value) => ({ body: serialize(value), shape: "random JSON" }));
  const duplicate = fc
    .tuple(route.valid, fc.nat(), hostileLeaf, fc.boolean())
    .map(([valid, pick, leaf, wins]) => ({ body: duplicatedKey(valid, pick, leaf, wins), shape: "duplicated key" }));
  const broken = fc
    .tuple(route.valid, fc.nat(), fc.constantFrom("truncate", "invalid utf-8", "bom", "empty", "whitespace", "garbage"))
    .map(([valid, pick, kind]): { body: Body; shape: string } => {
      const text = serialize(valid);
      switch (kind) {
        case "truncate":
          return { body: text.slice(0, pick % Math.max(1, text.length)), shape: kind };
        case "invalid utf-8": {
          const bytes = encoder.encode(text);
          const at = pick % bytes.length;
          return { body: new Uint8Array([...bytes.slice(0, at), 0xc3, 0x28, 0xff, ...bytes.slice(at)]), shape: kind };
        }
        case "bom":
          return { body: `\ufeff${text}`, shape: kind };
        case "empty":
          return { body: "", shape: kind };
        case "whitespace":
          return { body: " \n\t".repeat(1 + (pick % 1000)), shape: kind };
        default:
          return { body: "\u0000{]}".repeat(1 + (pick % 100)), shape: kind };
      }
    });
  const valid = route.valid.map((value) => ({ body: serialize(value), shape: "valid" }));
  return fc.oneof(
    { arbitrary: mutation, weight: 6 },
    { arbitrary: randomJson, weight: 2 },
    { arbitrary: duplicate, weight: 2 },
    { arbitrary: broken, weight: 2 },
    { arbitrary: valid, weight: 1 },
  );
}

const contentType = fc.constantFrom<string | null>(
  "application/json",
  "application/json",
  "text/plain",
  "application/x-www-form-urlencoded",
  null,
);
/** Header values: any printable ASCII (the Fetch API refuses control characters and NUL in headers). */
const patronUser = fc.option(
  fc.oneof(
    fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 }),
    fc.constantFrom("ops@shop.test", "a".repeat(201)),
  ),
);

interface Attempt {
  route: Route;
  path: string;
  body: Body;
  shape: string;
  contentType: string | null;
  user: string | null;
}

const attempt: fc.Arbitrary<Attempt> = fc.constantFrom(...routes).chain((route) =>
  fc
    .record({
      segment: route.segment ?? fc.constant(""),
      payload: route.noBody ? fc.constant({ body: null as Body, shape: "no body" }) : bodyArbitrary(route),
      contentType,
      user: patronUser,
    })
    .map(({ segment, payload, contentType, user }) => {
      let { body, shape } = payload;
      if (route.mustReject && (body === null || body === "" || parsesValid(body, route.mustReject))) {
        body = '{"asOf":"not a date"}';
        shape = "forced invalid";
      }
      return { route, path: route.path(segment), body, shape, contentType, user };
    }),
);

function parsesValid(body: Body, check: (value: unknown) => boolean): boolean {
  try {
    const text = typeof body === "string" ? body : new TextDecoder().decode(body ?? new Uint8Array());
    return check(JSON.parse(text.replace(/^\ufeff/, "")));
  } catch {
    return false;
  }
}

const describeAttempt = (a: Attempt) =>
  `${a.route.method} ${a.path} [${a.shape}] ${a.contentType ?? "no content-type"} body=${
    a.body === null
      ? "none"
      : typeof a.body === "string"
        ? JSON.stringify(a.body.slice(0, 300))
        : `${a.body.length} bytes`
  }`;

// ---------------------------------------------------------------------------------------------------
// The property

let tables: string[] = [];
/** The events database's tables (EVENTS_DB: widget events, conversions), counted like the main ones. */
let eventTables: string[] = [];
/** Tables with an `updated_at` column: an in-place update (an upsert) changes its maximum, not the count. */
let updatedTables = new Set<string>();

/** Each table's row count, and its latest `updated_at` where it has one. */
async function rowCounts(): Promise<Record<string, number | string>> {
  const terms = tables.flatMap((t, i) => [
    `(SELECT count(*) FROM "${t}") AS c${i}`,
    ...(updatedTables.has(t) ? [`(SELECT coalesce(max(updated_at), '') FROM "${t}") AS u${i}`] : []),
  ]);
  const row = await env.DB.prepare(`SELECT ${terms.join(", ")}`).first<Record<string, number | string>>();
  const events = await env.EVENTS_DB.prepare(
    `SELECT ${eventTables.map((t, i) => `(SELECT count(*) FROM "${t}") AS c${i}`).join(", ")}`,
  ).first<Record<string, number>>();
  return Object.fromEntries([
    ...tables.flatMap((t, i) => [
      [t, row?.[`c${i}`] ?? -1],
      ...(updatedTables.has(t) ? [[`${t}.updated_at`, row?.[`u${i}`] ?? ""]] : []),
    ]),
    ...eventTables.map((t, i) => [t, events?.[`c${i}`] ?? -1]),
  ]);
}

let counts: Record<string, number | string> = {};

/** Sends one attempt; its status and what was wrong with the answer (empty when nothing). */
async function check(a: Attempt): Promise<{ status: number; problems: string[] }> {
  const headers: Record<string, string> = { Authorization: `Bearer ${a.route.key}`, ...a.route.headers };
  if (a.contentType) headers["Content-Type"] = a.contentType;
  if (a.user !== null) headers["X-Patron-User"] = a.user;
  const response = await SELF.fetch(`${a.route.origin ?? "http://patron.test"}${a.path}`, {
    method: a.route.method,
    headers,
    body: a.body,
  });
  const text = await response.text();
  const problems: string[] = [];
  if (response.status >= 500) problems.push(`answered ${response.status}: ${text.slice(0, 300)}`);
  if (response.status >= 400) {
    let envelope: { error?: Record<string, unknown> } | undefined;
    try {
      envelope = JSON.parse(text);
    } catch {
      problems.push(`error body is not JSON: ${text.slice(0, 200)}`);
    }
    const error = envelope?.error;
    if (envelope && (!error || Object.keys(envelope).length !== 1))
      problems.push(`not the envelope: ${text.slice(0, 200)}`);
    if (error) {
      if (!errorCodes.has(error.code as string)) problems.push(`unknown code ${String(error.code)}`);
      if (typeof error.message !== "string" || error.message.length === 0) problems.push("no message");
      if (error.requestId !== response.headers.get("X-Request-Id") || !error.requestId)
        problems.push("requestId is not the X-Request-Id");
      const issues = error.issues;
      if (
        issues !== undefined &&
        !(
          Array.isArray(issues) &&
          issues.every((issue) => Array.isArray(issue?.path) && typeof issue?.message === "string")
        )
      )
        problems.push("issues are not [{ path, message }]");
    }
    const after = await rowCounts();
    for (const table of Object.keys(after))
      if (after[table] !== counts[table])
        problems.push(`rejected with ${response.status} but ${table} changed from ${counts[table]} to ${after[table]}`);
    counts = after; // so one bad write is reported once, not again by every later request
  } else {
    counts = await rowCounts();
  }
  return { status: response.status, problems };
}

describe("fuzz: hostile payloads on every write route", () => {
  beforeAll(async () => {
    const { results } = await env.DB.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations' ORDER BY name",
    ).all<{ name: string }>();
    tables = results.map((row) => row.name);
    const { results: eventResults } = await env.EVENTS_DB.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations' ORDER BY name",
    ).all<{ name: string }>();
    eventTables = eventResults.map((row) => row.name);
    const withUpdatedAt = await Promise.all(
      tables.map(async (t) => {
        const { results: columns } = await env.DB.prepare(`PRAGMA table_info("${t}")`).all<{ name: string }>();
        return columns.some((column) => column.name === "updated_at") ? [t] : [];
      }),
    );
    updatedTables = new Set(withUpdatedAt.flat());
    const created = await SELF.fetch("http://patron.test/v1/admin/rules", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        name: "Fuzz target",
        action: "boost",
        targetType: "category",
        targetId: "tea",
        strength: 1,
      }),
    });
    ruleId = ((await created.json()) as { data: { id: string } }).data.id;
    const audience = await SELF.fetch("http://patron.test/v1/admin/audiences", {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "Fuzz audience", filters: { stage: "fading" } }),
    });
    audienceId = ((await audience.json()) as { data: { id: string } }).data.id;
    counts = await rowCounts();
  });

  it(
    `never answers 5xx, always the envelope on 4xx, and a rejected request writes nothing (${runs} runs)`,
    async () => {
      expect([...tables, ...eventTables]).toEqual(
        expect.arrayContaining([
          "orders",
          "order_lines",
          "identities",
          "products",
          "events",
          "rules",
          "rule_versions",
          "customers",
        ]),
      );
      expect([...updatedTables]).toEqual(expect.arrayContaining(["products", "categories", "rules"]));
      const started = performance.now();
      const failures: string[] = [];
      const statuses = new Map<number, number>();
      const slowest: { ms: number; what: string }[] = [];
      let count = 0;
      await fc.assert(
        fc.asyncProperty(attempt, async (a) => {
          count += 1;
          const sent = performance.now();
          const { status, problems } = await check(a).catch((error: Error) => ({
            status: 0,
            problems: [`the check itself threw: ${String(error?.stack ?? error).slice(0, 1500)}`],
          }));
          slowest.push({ ms: performance.now() - sent, what: `${status} ${describeAttempt(a).slice(0, 160)}` });
          slowest.sort((x, y) => y.ms - x.ms).splice(5);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (problems.length === 0) return;
          if (!benchMode) throw new Error(`${describeAttempt(a)}\n  ${problems.join("\n  ")}`);
          failures.push(`${describeAttempt(a)}\n  ${problems.join("\n  ")}`);
        }),
        { seed, numRuns: runs, endOnFailure: true },
      );
      const seconds = (performance.now() - started) / 1000;
      if (benchMode) {
        console.log(
          `FUZZ_RESULT ${JSON.stringify({ runs: count, failures: failures.length, seconds: Number(seconds.toFixed(2)), seed, statuses: Object.fromEntries(statuses) })}`,
        );
        for (const failure of failures.slice(0, 10)) console.log(`FUZZ_FAILURE ${failure}`);
        for (const slow of slowest) console.log(`FUZZ_SLOWEST ${slow.ms.toFixed(0)} ms ${slow.what}`);
      }
      expect(failures).toEqual([]);
      expect(count).toBe(runs);
    },
    benchMode ? Math.max(60_000, requestedRuns * 500) : 60_000,
  );
});
