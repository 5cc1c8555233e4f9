import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import * as schema from "../../db/schema.ts";
import { createApp } from "../../worker/app.ts";
import type { Db } from "../../worker/env.ts";
import { forgetRules, liveRulesFor } from "../../worker/rules/rules.repo.ts";
import {
  type RuleStatusView,
  ruleResponseSchema,
  rulesListResponseSchema,
  ruleVersionsResponseSchema,
  ruleWithHistoryResponseSchema,
} from "../../worker/rules/rules.schemas.ts";
import { adminKey, apiKey, client, uniquePrefix } from "../fixtures/builders.ts";

const base = "http://patron.test/v1/admin/rules";
const drizzleDb = () => drizzle(env.DB, { schema }) as Db;

function call(method: string, path: string, body?: unknown, options: { key?: string | null; user?: string } = {}) {
  const key = options.key === undefined ? adminKey : options.key;
  return SELF.fetch(`${base}${path}`, {
    method,
    headers: {
      "Content-Type": "application/json",
      ...(key ? { Authorization: `Bearer ${key}` } : {}),
      ...(options.user ? { "X-Patron-User": options.user } : {}),
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

function aRule(overrides: Record<string, unknown> = {}) {
  return {
    name: `Boost heels ${uniquePrefix()}`,
    action: "boost",
    targetType: "category",
    targetId: `heels-${uniquePrefix()}`,
    strength: 0.5,
    ...overrides,
  };
}

async function create(body: Record<string, unknown>, user?: string) {
  const response = await call("POST", "", body, { user });
  expect(response.status, await response.clone().text()).toBe(201);
  return ruleResponseSchema.parse(await response.json()).data;
}

interface ErrorBody {
  error: {
    code: string;
    message: string;
    requestId: string;
    issues?: { path: (string | number)[]; message: string }[];
  };
}

async function expectInvalid(response: Response, path: (string | number)[], message: string) {
  expect(response.status).toBe(400);
  expect(response.headers.get("Cache-Control")).toBe("no-store");
  const body = (await response.json()) as ErrorBody;
  expect(body.error.code).toBe("invalid_request");
  expect(body.error.issues).toContainEqual({ path, message });
  return body;
}

async function tableContents() {
  const rules = (await env.DB.prepare("SELECT * FROM rules ORDER BY id").all()).results;
  const versions = (await env.DB.prepare("SELECT * FROM rule_versions ORDER BY rule_id, version").all()).results;
  return { rules, versions };
}

describe("rules API: a rule's life", () => {
  it("creates, lists, reads, updates, disables and keeps who changed what and when", async () => {
    const created = await create(
      aRule({ name: "Fading shoppers: boost boots", segment: { stage: ["fading", "lapsed"], valueTier: "top" } }),
      "maria@shop.example",
    );
    expect(created).toMatchObject({
      name: "Fading shoppers: boost boots",
      action: "boost",
      strength: 0.5,
      slot: null,
      segment: { stage: ["fading", "lapsed"], valueTier: "top" },
      enabled: true,
      version: 1,
    });
    expect(created.id).toMatch(/^r_/);

    const list = rulesListResponseSchema.parse(await (await call("GET", "")).json()).data;
    expect(list.map((rule) => rule.id)).toContain(created.id);

    const got = ruleWithHistoryResponseSchema.parse(await (await call("GET", `/${created.id}`)).json()).data;
    expect(got).toMatchObject({
      ...created,
      versions: [{ version: 1, change: "create", changedBy: "maria@shop.example" }],
    });

    const patched = await call("PATCH", `/${created.id}`, { strength: 2, endsAt: "2030-01-01T00:00:00+01:00" });
    expect(patched.status, await patched.clone().text()).toBe(200);
    const updated = ruleResponseSchema.parse(await patched.json()).data;
    expect(updated).toMatchObject({
      id: created.id,
      name: created.name,
      strength: 2,
      endsAt: "2029-12-31T23:00:00.000Z",
      segment: created.segment,
      version: 2,
      createdAt: created.createdAt,
    });

    const disabled = await call("POST", `/${created.id}/disable`, undefined, { user: "sam" });
    expect(disabled.status).toBe(200);
    expect(ruleResponseSchema.parse(await disabled.json()).data).toMatchObject({ enabled: false, version: 3 });

    const versionsResponse = await call("GET", `/${created.id}/versions`);
    expect(versionsResponse.status).toBe(200);
    const versions = ruleVersionsResponseSchema.parse(await versionsResponse.json()).data;
    expect(versions.map((v) => [v.version, v.change, v.changedBy])).toEqual([
      [1, "create", "maria@shop.example"],
      [2, "update", "admin"],
      [3, "disable", "sam"],
    ]);
    for (const version of versions) {
      expect(version.ruleId).toBe(created.id);
      expect(Number.isNaN(Date.parse(version.changedAt))).toBe(false);
      expect(version.snapshot.version).toBe(version.version);
    }
    // A snapshot is the rule as saved, without what the answer adds (whether the catalog has the target,
    // the rule's state now).
    const saved = ({ targetInCatalog: _found, targetName: _name, state: _state, ...rule }: RuleStatusView) => rule;
    expect(versions[0]?.snapshot).toEqual(saved(created));
    expect(versions[1]?.snapshot).toEqual(saved(updated));
    expect(versions[1]?.snapshot.strength).toBe(2);
    expect(versions[2]?.snapshot.enabled).toBe(false);

    const enabledOnly = rulesListResponseSchema.parse(await (await call("GET", "?enabled=true")).json()).data;
    const disabledOnly = rulesListResponseSchema.parse(await (await call("GET", "?enabled=false")).json()).data;
    expect(enabledOnly.map((rule) => rule.id)).not.toContain(created.id);
    expect(disabledOnly.map((rule) => rule.id)).toContain(created.id);
    expect(disabledOnly.every((rule) => !rule.enabled)).toBe(true);

    const enabled = ruleResponseSchema.parse(await (await call("POST", `/${created.id}/enable`)).json()).data;
    expect(enabled).toMatchObject({ enabled: true, version: 4 });
    const history = ruleWithHistoryResponseSchema.parse(await (await call("GET", `/${created.id}`)).json()).data;
    expect(history.versions.map((v) => v.change)).toEqual(["create", "update", "disable", "enable"]);
  });

  it("switches action to pin when the slot is given and the old strength cleared", async () => {
    const rule = await create(aRule({ targetType: "product", targetId: "sku-1" }));
    const response = await call("PATCH", `/${rule.id}`, { action: "pin", slot: 1, strength: null });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(ruleResponseSchema.parse(await response.json()).data).toMatchObject({
      action: "pin",
      slot: 1,
      strength: null,
      version: 2,
    });
  });

  it("records a PATCH of only `enabled` as a disable, and a change that changes nothing as no version", async () => {
    const rule = await create(aRule());
    const response = await call("PATCH", `/${rule.id}`, { enabled: false });
    expect(ruleResponseSchema.parse(await response.json()).data.enabled).toBe(false);
    const again = await call("POST", `/${rule.id}/disable`);
    expect(again.status).toBe(200);
    const unchanged = await call("PATCH", `/${rule.id}`, { name: rule.name });
    expect(ruleResponseSchema.parse(await unchanged.json()).data.version).toBe(2);
    const versions = ruleVersionsResponseSchema.parse(await (await call("GET", `/${rule.id}/versions`)).json()).data;
    expect(versions.map((v) => v.change)).toEqual(["create", "disable"]);
  });

  it("refuses a PATCH made from a version the rule has moved past (two editors), and overwrites nothing", async () => {
    const rule = await create(aRule({ strength: 2 }));
    // Editor A, who read version 1, saves first.
    const first = await call("PATCH", `/${rule.id}`, { name: "Boost tea for fading", strength: 12, version: 1 });
    expect(first.status, await first.clone().text()).toBe(200);
    const before = await tableContents();
    // Editor B read version 1 too: their save would undo A's name and strength.
    const stale = await call("PATCH", `/${rule.id}`, { strength: 3, version: 1 });
    expect(stale.status).toBe(409);
    const body = (await stale.json()) as ErrorBody;
    expect(body.error.code).toBe("conflict");
    expect(body.error.message).toBe(
      "This rule was changed since version 1 was read: it is at version 2 now. Nothing was saved. Reload it to see the change, then make yours again.",
    );
    expect(await tableContents()).toEqual(before);
    // From the version now, it saves; a version alone changes nothing and is refused.
    const fresh = await call("PATCH", `/${rule.id}`, { strength: 3, version: 2 });
    expect(ruleResponseSchema.parse(await fresh.json()).data).toMatchObject({ strength: 3, version: 3 });
    await expectInvalid(await call("PATCH", `/${rule.id}`, { version: 3 }), [], "send at least one field to change");
    await expectInvalid(
      await call("PATCH", `/${rule.id}`, { strength: 4, version: 0 }),
      ["version"],
      "version must be a whole number from 1: the rule's version the change was made from",
    );
  });

  it("deletes a rule: gone from the list and the shelf at once, its history kept with the deletion last", async () => {
    const rule = await create(aRule(), "maria@shop.example");
    expect((await liveRulesFor(drizzleDb(), new Date())).map((r) => r.id)).toContain(rule.id);
    const response = await call("DELETE", `/${rule.id}`, undefined, { user: "sam@shop.example" });
    expect(response.status, await response.clone().text()).toBe(204);
    expect((await call("GET", `/${rule.id}`)).status).toBe(404);
    const listed = rulesListResponseSchema.parse(await (await call("GET", "")).json()).data;
    expect(listed.map((r) => r.id)).not.toContain(rule.id);
    // Deleted through this isolate: the recommendations route stops applying it at once.
    expect((await liveRulesFor(drizzleDb(), new Date())).map((r) => r.id)).not.toContain(rule.id);
    const versions = ruleVersionsResponseSchema.parse(await (await call("GET", `/${rule.id}/versions`)).json()).data;
    expect(versions.map((v) => [v.version, v.change, v.changedBy])).toEqual([
      [1, "create", "maria@shop.example"],
      [2, "delete", "sam@shop.example"],
    ]);
    expect(versions[1]?.snapshot).toMatchObject({ id: rule.id, name: rule.name, targetId: rule.targetId, version: 2 });
    // Deleting again, or changing it, finds no rule and writes nothing.
    const before = await tableContents();
    for (const [method, path, body] of [
      ["DELETE", "", undefined],
      ["PATCH", "", { strength: 2 }],
      ["POST", "/enable", undefined],
    ] as const) {
      const again = await call(method, `/${rule.id}${path}`, body);
      expect(again.status, `${method} ${path}`).toBe(404);
    }
    expect(await tableContents()).toEqual(before);
  });

  it("accepts the discount switches for every item with targetId *", async () => {
    const rule = await create({
      name: "No discounts for full-price shoppers",
      action: "hide_discounts",
      targetType: "product",
      targetId: "*",
      segment: { discountSensitivity: "full_price" },
    });
    expect(rule).toMatchObject({ targetId: "*", strength: null, slot: null });
  });
});

describe("rules API: whether the catalog has the target", () => {
  it("says so on every answer, so a typo is seen at once; `*` is always there", async () => {
    const prefix = uniquePrefix();
    const shoe = { id: `${prefix}-shoe`, title: "Shoe", categoryId: `${prefix}-heels`, listPrice: 80 };
    const posted = await client(SELF).postProducts([shoe]);
    expect(posted.status, await posted.clone().text()).toBe(200);
    const product = await create(aRule({ targetType: "product", targetId: shoe.id }));
    const category = await create(aRule({ targetId: shoe.categoryId }));
    const typo = await create(aRule({ targetId: `${prefix}-heelz` }));
    const everything = await create(aRule({ action: "hide_discounts", targetId: "*", strength: undefined }));
    expect([product, category, typo, everything].map((rule) => rule.targetInCatalog)).toEqual([
      true,
      true,
      false,
      true,
    ]);
    // Each named as the catalog names it (a category without a name of its own by its id): null when absent.
    expect([product, category, typo, everything].map((rule) => rule.targetName)).toEqual([
      "Shoe",
      shoe.categoryId,
      null,
      null,
    ]);
    // A product id named as a category is not that category.
    expect((await create(aRule({ targetId: shoe.id }))).targetInCatalog).toBe(false);

    const listed = rulesListResponseSchema.parse(await (await call("GET", "")).json()).data;
    expect(listed.find((rule) => rule.id === typo.id)?.targetInCatalog).toBe(false);
    expect(listed.find((rule) => rule.id === category.id)?.targetInCatalog).toBe(true);
    const raw = (await (await call("GET", `/${typo.id}`)).json()) as { data: RuleStatusView & { versions: unknown[] } };
    expect(ruleWithHistoryResponseSchema.parse(raw).data.targetInCatalog).toBe(false);
    // The snapshot in the history is the rule itself: whether the catalog has the target is not kept.
    expect(raw.data.versions[0]).toMatchObject({ snapshot: { id: typo.id } });
    expect(raw.data.versions[0]).not.toHaveProperty("snapshot.targetInCatalog");
    expect(raw.data.versions[0]).not.toHaveProperty("snapshot.targetName");

    // Fixed, with a strength of its own: the same boost as `category` would be its double (409).
    const fixed = await call("PATCH", `/${typo.id}`, { targetId: shoe.categoryId, strength: 2 });
    expect(fixed.status, await fixed.clone().text()).toBe(200);
    expect(ruleResponseSchema.parse(await fixed.json()).data).toMatchObject({ version: 2, targetInCatalog: true });
    const disabled = await call("POST", `/${product.id}/disable`);
    expect(ruleResponseSchema.parse(await disabled.json()).data).toMatchObject({
      enabled: false,
      targetInCatalog: true,
    });

    // A product taken out of the catalog leaves its rule in place, no longer found.
    expect((await client(SELF).postProducts([{ ...shoe, active: false }])).status).toBe(200);
    const after = ruleWithHistoryResponseSchema.parse(await (await call("GET", `/${product.id}`)).json()).data;
    expect(after.targetInCatalog).toBe(false);
  });
});

describe("rules API: each rule's state (live, scheduled, ended, disabled)", () => {
  const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();

  it("says it on every answer, so a window already over is seen at once; it is not kept in the history", async () => {
    const live = await create(aRule());
    const scheduled = await create(aRule({ startsAt: inDays(19), endsAt: inDays(26) }));
    const ended = await create(aRule({ startsAt: "2026-01-01T00:00:00Z", endsAt: "2026-01-02T00:00:00Z" }));
    const off = await create(aRule({ enabled: false, startsAt: inDays(19) }));
    expect([live, scheduled, ended, off].map((rule) => rule.state)).toEqual(["live", "scheduled", "ended", "disabled"]);

    const listed = rulesListResponseSchema.parse(await (await call("GET", "")).json()).data;
    const stateOf = (id: string) => listed.find((rule) => rule.id === id)?.state;
    expect([live, scheduled, ended, off].map((rule) => stateOf(rule.id))).toEqual([
      "live",
      "scheduled",
      "ended",
      "disabled",
    ]);
    const raw = (await (await call("GET", `/${ended.id}`)).json()) as {
      data: RuleStatusView & { versions: unknown[] };
    };
    expect(ruleWithHistoryResponseSchema.parse(raw).data.state).toBe("ended");
    expect(raw.data.versions[0]).not.toHaveProperty("snapshot.state");

    // An edit answers the state it leaves the rule in: a later end makes it live again.
    const reopened = await call("PATCH", `/${ended.id}`, { endsAt: inDays(7) });
    expect(reopened.status, await reopened.clone().text()).toBe(200);
    expect(ruleResponseSchema.parse(await reopened.json()).data.state).toBe("live");
    const closed = await call("PATCH", `/${live.id}`, { endsAt: "2026-01-02T00:00:00Z" });
    expect(ruleResponseSchema.parse(await closed.json()).data.state).toBe("ended");
    const disabled = await call("POST", `/${scheduled.id}/disable`);
    expect(ruleResponseSchema.parse(await disabled.json()).data.state).toBe("disabled");
    const enabled = await call("POST", `/${off.id}/enable`);
    expect(ruleResponseSchema.parse(await enabled.json()).data.state).toBe("scheduled");
  });
});

describe("rules API: a rule that does what another already does", () => {
  const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();

  async function expectTwinOf(response: Response, twin: RuleStatusView) {
    expect(response.status, await response.clone().text()).toBe(409);
    expect(response.headers.get("Retry-After")).toBeNull();
    const body = (await response.json()) as ErrorBody;
    expect(body.error.code).toBe("conflict");
    expect(body.error.message).toBe(
      `Rule ${twin.id} (“${twin.name}”, ${twin.state}) already does this: the same action on the same target, with the same strength or slot, segment and schedule. Nothing was saved. Change that rule instead, or make this one differ.`,
    );
  }

  it("refuses a create sent twice (a retry), however its segment and dates are written, and writes nothing", async () => {
    const sent = aRule({
      segment: { stage: ["lapsed", "fading"] },
      startsAt: inDays(-1),
      endsAt: "2099-01-01T00:00:00Z",
    });
    const first = await create(sent);
    const before = await tableContents();
    await expectTwinOf(await call("POST", "", sent), first);
    // The same rule under another name, its segment in another order and its end in another offset.
    const rewritten = {
      name: "Fading boots again",
      action: first.action,
      targetType: first.targetType,
      targetId: ` ${first.targetId} `,
      strength: first.strength,
      segment: { stage: ["fading", "lapsed", "fading"] },
      startsAt: first.startsAt,
      endsAt: "2099-01-01T01:00:00+01:00",
    };
    await expectTwinOf(await call("POST", "", rewritten), first);
    expect(await tableContents()).toEqual(before);
    // Any field of its effect told apart makes another rule.
    for (const change of [
      { strength: 0.6 },
      { segment: { stage: "fading" } },
      { segment: null },
      { endsAt: null },
      { targetType: "product" },
    ])
      await create({ ...rewritten, ...change });
  });

  it("refuses a discount switch for every item (*) twice, whichever target type each names", async () => {
    // `*` is every item whether it is sent as a category or a product: the two switches are one.
    const everyItem = {
      name: "Full price for the loyal",
      action: "hide_discounts",
      targetType: "category",
      targetId: "*",
      segment: { stage: "active", discountSensitivity: "full_price" },
      endsAt: "2098-06-01T00:00:00Z",
    };
    const first = await create(everyItem);
    const before = await tableContents();
    await expectTwinOf(await call("POST", "", { ...everyItem, targetType: "product" }), first);
    expect(await tableContents()).toEqual(before);
  });

  it("counts a scheduled rule, not a draft (disabled) nor an ended one", async () => {
    const later = aRule({ startsAt: inDays(19), endsAt: inDays(26) });
    const scheduled = await create(later);
    await expectTwinOf(await call("POST", "", later), scheduled);
    const body = aRule({ startsAt: "2026-01-01T00:00:00Z", endsAt: "2026-01-02T00:00:00Z" });
    const ended = await create(body);
    expect((await create(body)).state).toBe("ended");
    const draft = aRule({ enabled: false });
    await create(draft);
    // A draft beside a live rule is saved too, and so is a live rule beside a draft.
    const live = await create({ ...draft, enabled: true });
    await create(draft);
    expect([ended.state, live.state]).toEqual(["ended", "live"]);
  });

  it("counts a start already past as no start (both act from now on), and a start to come as another rule", async () => {
    const always = await create(aRule());
    const before = await tableContents();
    await expectTwinOf(await call("POST", "", { ...aRule(), targetId: always.targetId, startsAt: inDays(-1) }), always);
    expect(await tableContents()).toEqual(before);
    const started = await create(aRule({ startsAt: inDays(-2) }));
    await expectTwinOf(await call("POST", "", { ...aRule(), targetId: started.targetId }), started);
    await expectTwinOf(
      await call("POST", "", { ...aRule(), targetId: started.targetId, startsAt: inDays(-1) }),
      started,
    );
    // A start still to come is a rule of its own, and so is a second one at another start to come.
    const scheduled = await create({ ...aRule(), targetId: always.targetId, startsAt: inDays(1) });
    expect(scheduled.state).toBe("scheduled");
    await create({ ...aRule(), targetId: always.targetId, startsAt: inDays(2) });
  });

  it("refuses an edit or an enable that makes a rule another's double, and writes nothing", async () => {
    const live = await create(aRule());
    const other = await create(aRule({ targetId: `${live.targetId}-other` }));
    const draft = await create({ ...aRule(), targetId: live.targetId, enabled: false });
    const before = await tableContents();
    await expectTwinOf(await call("PATCH", `/${other.id}`, { targetId: live.targetId, version: 1 }), live);
    await expectTwinOf(await call("POST", `/${draft.id}/enable`), live);
    await expectTwinOf(await call("PATCH", `/${draft.id}`, { enabled: true }), live);
    expect(await tableContents()).toEqual(before);
    // Renaming the rule, or editing the draft while it stays one, is no double.
    expect((await call("PATCH", `/${live.id}`, { name: "Boost heels, renamed" })).status).toBe(200);
    expect((await call("PATCH", `/${draft.id}`, { name: "Heels draft", strength: live.strength })).status).toBe(200);
    // Once the live rule is disabled, the draft may take its place.
    expect((await call("POST", `/${live.id}/disable`)).status).toBe(200);
    expect((await call("POST", `/${draft.id}/enable`)).status).toBe(200);
  });
});

describe("rules API: doubles sent at the same instant", () => {
  /**
   * The real D1 with its batches (each rule write is one) held until `writers` are waiting, then let
   * through together: every request has made its reads before any of them writes, the closest two
   * requests sent at the same instant can come, every time rather than when the scheduler allows.
   */
  function writesHeldTogether(real: D1Database, writers: number): D1Database {
    let waiting: (() => void)[] = [];
    const together = () =>
      new Promise<void>((release) => {
        waiting.push(release);
        if (waiting.length < writers) return;
        for (const next of waiting) next();
        waiting = [];
      });
    return {
      prepare: (query: string) => real.prepare(query),
      batch: async (statements: D1PreparedStatement[]) => {
        await together();
        return real.batch(statements);
      },
      exec: (query: string) => real.exec(query),
      dump: () => real.dump(),
    } as unknown as D1Database;
  }

  const app = createApp();
  /** Sends every request at once to the app on D1 whose writes wait for one another. */
  async function sentTogether(requests: { method: string; path: string; body?: unknown }[]) {
    const db = writesHeldTogether(env.DB, requests.length);
    return Promise.all(
      requests.map(async ({ method, path, body }) => {
        const context = createExecutionContext();
        const request = new Request(`${base}${path}`, {
          method,
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${adminKey}` },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const response = await app.fetch(request, { ...env, DB: db }, context);
        await waitOnExecutionContext(context);
        return response;
      }),
    );
  }

  const count = async (sql: string, ...values: unknown[]) =>
    (
      await env.DB.prepare(sql)
        .bind(...values)
        .first<{ n: number }>()
    )?.n ?? 0;

  it("saves one of ten identical creates sent at once, and refuses the others naming it", async () => {
    const body = aRule();
    const responses = await sentTogether(Array.from({ length: 10 }, () => ({ method: "POST", path: "", body })));
    const statuses = responses.map((response) => response.status).sort();
    expect(statuses).toEqual([201, ...Array(9).fill(409)]);
    const saved = ruleResponseSchema.parse(await responses.find((r) => r.status === 201)!.json()).data;
    for (const refused of responses.filter((r) => r.status === 409))
      expect(((await refused.json()) as ErrorBody).error.message).toMatch(
        new RegExp(`^Rule ${saved.id} \\(“${saved.name}”, live\\) already does this`),
      );
    expect(await count("SELECT count(*) AS n FROM rules WHERE target_id = ?", body.targetId)).toBe(1);
    expect(await count("SELECT count(*) AS n FROM rule_versions WHERE rule_id = ?", saved.id)).toBe(1);
  });

  it("finds the double of a rule written before effect keys were kept, and keeps its key from then on", async () => {
    const id = `r_before_keys_${uniquePrefix()}`;
    const targetId = `boots-${uniquePrefix()}`;
    const at = new Date().toISOString();
    // As the row stood before the effect_key column: no key.
    await env.DB.prepare(
      `INSERT INTO rules (id, name, action, target_type, target_id, strength, segment, enabled, version, created_at, updated_at)
       VALUES (?, 'Boots for the fading', 'boost', 'category', ?, 0.5, '{"stage":["lapsed","fading"]}', 1, 1, ?, ?)`,
    )
      .bind(id, targetId, at, at)
      .run();
    const body = aRule({ targetId, segment: { stage: ["fading", "lapsed"] } });
    const response = await call("POST", "", body);
    expect(response.status).toBe(409);
    expect(((await response.json()) as ErrorBody).error.message).toMatch(
      new RegExp(`^Rule ${id} \\(“Boots for the fading”, live\\)`),
    );
    expect(await count("SELECT count(*) AS n FROM rules WHERE target_id = ?", targetId)).toBe(1);
    expect(await count("SELECT count(*) AS n FROM rules WHERE effect_key IS NULL")).toBe(0);
  });

  it("enables one of ten drafts of one effect enabled at once", async () => {
    const body = aRule({ enabled: false });
    const drafts = [];
    for (let i = 0; i < 10; i++) drafts.push(await create({ ...body, name: `${body.name} ${i}` }));
    const responses = await sentTogether(drafts.map((draft) => ({ method: "POST", path: `/${draft.id}/enable` })));
    expect(responses.map((response) => response.status).sort()).toEqual([200, ...Array(9).fill(409)]);
    expect(await count("SELECT count(*) AS n FROM rules WHERE target_id = ? AND enabled = 1", body.targetId)).toBe(1);
    expect(
      await count(
        "SELECT count(*) AS n FROM rule_versions WHERE change = 'enable' AND snapshot ->> 'targetId' = ?",
        body.targetId,
      ),
    ).toBe(1);
  });
});

describe("rules API: a write whose catalog read fails", () => {
  it("answers the error before writing anything, so a client that retries does not save the rule twice", async () => {
    const stored = async () => (await env.DB.prepare("SELECT count(*) AS n FROM rules").first<{ n: number }>())?.n ?? 0;
    const existing = await create(aRule());
    const before = await stored();
    await env.DB.prepare("ALTER TABLE products RENAME TO products_away").run();
    try {
      const created = await call("POST", "", aRule());
      const patched = await call("PATCH", `/${existing.id}`, { strength: 3 });
      const disabled = await call("POST", `/${existing.id}/disable`);
      for (const response of [created, patched, disabled])
        expect(response.status, await response.clone().text()).toBeGreaterThanOrEqual(500);
    } finally {
      await env.DB.prepare("ALTER TABLE products_away RENAME TO products").run();
    }
    expect(await stored()).toBe(before);
    const read = ruleWithHistoryResponseSchema.parse(await (await call("GET", `/${existing.id}`)).json()).data;
    expect(read).toMatchObject({ version: 1, strength: existing.strength, enabled: true });
  });
});

describe("rules API: what the recommendations route reads", () => {
  it("liveRulesFor returns enabled rules with the segment parsed, and sees a change made here at once", async () => {
    const rule = await create(aRule({ segment: { channelPreference: "store" } }));
    const before = await liveRulesFor(drizzleDb(), new Date());
    expect(before.find((r) => r.id === rule.id)).toMatchObject({
      action: "boost",
      strength: 0.5,
      segment: { channelPreference: "store" },
      enabled: true,
    });
    // Within the cache lifetime, a disable through the API is still seen at once (the routes forget the cache).
    await call("POST", `/${rule.id}/disable`);
    const after = await liveRulesFor(drizzleDb(), new Date());
    expect(after.find((r) => r.id === rule.id)).toBeUndefined();
    expect(after.every((r) => r.enabled)).toBe(true);
  });
});

describe("rules API: caching and concurrent edits", () => {
  it("liveRulesFor keeps its rules for at most five seconds when the change came from elsewhere", async () => {
    forgetRules();
    const now = new Date();
    const first = await liveRulesFor(drizzleDb(), now);
    const id = `r_elsewhere_${uniquePrefix()}`;
    // Written straight to D1, as another isolate would: nothing here forgets the cache.
    await env.DB.prepare(
      `INSERT INTO rules (id, name, action, target_type, target_id, strength, enabled, version, created_at, updated_at)
       VALUES (?, 'From another isolate', 'bury', 'category', 'socks', 1, 1, 1, ?, ?)`,
    )
      .bind(id, now.toISOString(), now.toISOString())
      .run();
    const soon = await liveRulesFor(drizzleDb(), new Date(now.getTime() + 4_000));
    expect(soon).toBe(first);
    const later = await liveRulesFor(drizzleDb(), new Date(now.getTime() + 5_000));
    expect(later.find((rule) => rule.id === id)).toMatchObject({ action: "bury", strength: 1, segment: null });
  });

  it("answers 409 and writes nothing when the version it read was taken by another edit", async () => {
    const rule = await create(aRule());
    // Another edit wrote version 2 between this request's read and its write.
    await env.DB.prepare(
      "INSERT INTO rule_versions (rule_id, version, change, snapshot, changed_by, changed_at) VALUES (?, 2, 'update', '{}', 'other', ?)",
    )
      .bind(rule.id, new Date().toISOString())
      .run();
    const before = await tableContents();
    const response = await call("PATCH", `/${rule.id}`, { strength: 4 });
    expect(response.status).toBe(409);
    expect(((await response.json()) as ErrorBody).error.code).toBe("conflict");
    expect(await tableContents()).toEqual(before);
    // A deletion that read the same version is refused the same way: the rule stays.
    const deletion = await call("DELETE", `/${rule.id}`);
    expect(deletion.status).toBe(409);
    expect(await tableContents()).toEqual(before);
  });
});

describe("rules API: validation", () => {
  it.each([
    [
      "slot is required for pin",
      { action: "pin", strength: undefined },
      ["slot"],
      "slot is required when action is pin",
    ],
    [
      "strength is required for boost",
      { strength: undefined },
      ["strength"],
      "strength is required when action is boost",
    ],
    [
      "strength is required for bury",
      { action: "bury", strength: undefined },
      ["strength"],
      "strength is required when action is bury",
    ],
    ["strength must be positive", { strength: 0 }, ["strength"], "strength must be greater than 0"],
    [
      "slot must be 1..50",
      { action: "pin", strength: undefined, slot: 51 },
      ["slot"],
      "slot must be a whole number from 1 to 50",
    ],
    [
      "slot must be whole",
      { action: "pin", strength: undefined, slot: 1.5 },
      ["slot"],
      "slot must be a whole number from 1 to 50",
    ],
    ["slot only for pin", { slot: 3 }, ["slot"], "slot only applies when action is pin, not boost"],
    [
      "strength only for boost/bury",
      { action: "exclude" },
      ["strength"],
      "strength only applies when action is boost or bury, not exclude",
    ],
    [
      "unknown action",
      { action: "promote" },
      ["action"],
      "action must be one of boost, bury, pin, exclude, allow_discounts, hide_discounts",
    ],
    ["unknown targetType", { targetType: "brand" }, ["targetType"], "targetType must be one of category, product"],
    ["name is required", { name: undefined }, ["name"], "name is required"],
    [
      "* only for discount switches",
      { targetId: "*" },
      ["targetId"],
      'targetId "*" (every item) is only allowed when action is allow_discounts or hide_discounts',
    ],
    [
      "endsAt after startsAt",
      { startsAt: "2026-12-01T00:00:00Z", endsAt: "2026-11-01T00:00:00Z" },
      ["endsAt"],
      "endsAt must be after startsAt",
    ],
    [
      "endsAt equal to startsAt",
      { startsAt: "2026-12-01T00:00:00Z", endsAt: "2026-12-01T01:00:00+01:00" },
      ["endsAt"],
      "endsAt must be after startsAt",
    ],
    [
      "dates are ISO",
      { startsAt: "next monday" },
      ["startsAt"],
      "startsAt must be an ISO 8601 date-time with Z or an offset, e.g. 2026-11-01T00:00:00Z or 2026-11-01T01:00:00+01:00",
    ],
    [
      "segment values",
      { segment: { stage: "sleepy" } },
      ["segment", "stage"],
      "segment.stage must be one of new, active, fading, lapsed, or a list of them",
    ],
    [
      "segment lists",
      { segment: { valueTier: [] } },
      ["segment", "valueTier"],
      "segment.valueTier must list at least one value",
    ],
    ["segment fields", { segment: { mood: "happy" } }, ["segment"], "unknown field(s): mood"],
    ["unknown fields", { priority: 1 }, [], "unknown field(s): priority"],
  ])("%s", async (_label, overrides, path, message) => {
    const before = await tableContents();
    await expectInvalid(await call("POST", "", aRule(overrides)), path, message);
    expect(await tableContents()).toEqual(before);
  });

  it("reports every problem of a body at once, and no check between fields about a field that failed", async () => {
    const before = await tableContents();
    const response = await call("POST", "", aRule({ segment: { stage: "sleeping" }, strength: undefined }));
    const body = await expectInvalid(
      response,
      ["segment", "stage"],
      "segment.stage must be one of new, active, fading, lapsed, or a list of them",
    );
    expect(body.error.issues).toContainEqual({
      path: ["strength"],
      message: "strength is required when action is boost",
    });
    expect(body.error.issues).toHaveLength(2);
    // Every kind at once: a field's own check, an unknown field, and the checks between valid fields.
    const many = await call(
      "POST",
      "",
      aRule({ name: "", slot: 2, extra: 1, startsAt: "2026-12-01T00:00:00Z", endsAt: "2026-11-01T00:00:00Z" }),
    );
    const manyBody = await expectInvalid(many, ["name"], "name must not be empty");
    expect(manyBody.error.issues).toEqual(
      expect.arrayContaining([
        { path: [], message: "unknown field(s): extra" },
        { path: ["slot"], message: "slot only applies when action is pin, not boost" },
        { path: ["endsAt"], message: "endsAt must be after startsAt" },
      ]),
    );
    // An unknown action is reported alone: "strength only applies ..., not promote" would be about it.
    const promote = await expectInvalid(
      await call("POST", "", aRule({ action: "promote" })),
      ["action"],
      "action must be one of boost, bury, pin, exclude, allow_discounts, hide_discounts",
    );
    expect(promote.error.issues).toHaveLength(1);
    // An update too: the patch's own problem and the rule's as it would be after it.
    const rule = await create(aRule());
    const saved = await tableContents();
    const patched = await expectInvalid(
      await call("PATCH", `/${rule.id}`, { action: "pin", strength: -1 }),
      ["strength"],
      "strength must be greater than 0",
    );
    expect(patched.error.issues).toEqual([
      { path: ["strength"], message: "strength must be greater than 0" },
      { path: ["slot"], message: "slot is required when action is pin" },
    ]);
    expect(await tableContents()).toEqual(saved);
    expect(before.rules.length).toBe(saved.rules.length - 1);
  });

  it("rejects a body that is not JSON", async () => {
    const response = await call("POST", "", "{not json");
    expect(response.status).toBe(400);
    expect(((await response.json()) as ErrorBody).error.message).toBe("Request body must be valid JSON.");
  });

  it("checks an update against the whole rule and writes nothing when it is invalid", async () => {
    const rule = await create(aRule());
    const before = await tableContents();
    const toPin = await call("PATCH", `/${rule.id}`, { action: "pin" });
    const body = await expectInvalid(toPin, ["slot"], "slot is required when action is pin");
    expect(body.error.issues).toContainEqual({
      path: ["strength"],
      message: "strength only applies when action is boost or bury, not pin",
    });
    await expectInvalid(
      await call("PATCH", `/${rule.id}`, { startsAt: "2026-12-01T00:00:00Z", endsAt: "2026-01-01T00:00:00Z" }),
      ["endsAt"],
      "endsAt must be after startsAt",
    );
    await expectInvalid(
      await call("PATCH", `/${rule.id}`, { strength: -1 }),
      ["strength"],
      "strength must be greater than 0",
    );
    await expectInvalid(await call("PATCH", `/${rule.id}`, {}), [], "send at least one field to change");
    expect(await tableContents()).toEqual(before);
  });

  it("rejects an unknown enabled filter", async () => {
    await expectInvalid(await call("GET", "?enabled=maybe"), ["enabled"], "enabled must be true or false");
  });
});

describe("rules API: unknown ids and keys", () => {
  it.each([
    ["GET", "", undefined],
    ["GET", "/versions", undefined],
    ["PATCH", "", { name: "x" }],
    ["POST", "/disable", undefined],
    ["POST", "/enable", undefined],
    ["DELETE", "", undefined],
  ])("%s /rules/:id%s answers 404 for an unknown id", async (method, suffix, body) => {
    const before = await tableContents();
    const response = await call(method, `/r_missing${suffix}`, body);
    expect(response.status).toBe(404);
    const error = ((await response.json()) as ErrorBody).error;
    expect(error).toMatchObject({ code: "not_found", message: "No rule with id r_missing." });
    expect(await tableContents()).toEqual(before);
  });

  it.each([
    ["GET", ""],
    ["GET", "/versions"],
    ["POST", "/disable"],
    ["DELETE", ""],
  ])("%s /rules/:id%s answers 400 naming id for a blank id or one with a control character", async (method, suffix) => {
    const before = await tableContents();
    for (const id of ["%20%20", "r_1%00"]) {
      const response = await call(method, `/${id}${suffix}`);
      expect(response.status, id).toBe(400);
      const error = ((await response.json()) as ErrorBody).error;
      expect(error.code).toBe("invalid_request");
      expect(error.issues?.[0]?.path).toEqual(["id"]);
    }
    expect(await tableContents()).toEqual(before);
  });

  it.each([
    ["no key", null],
    ["the API key", apiKey],
    ["a wrong key", "nope"],
  ])("answers 401 with %s and writes nothing", async (_label, key) => {
    const rule = await create(aRule());
    const before = await tableContents();
    for (const [method, path, body] of [
      ["POST", "", aRule()],
      ["GET", "", undefined],
      ["GET", `/${rule.id}`, undefined],
      ["PATCH", `/${rule.id}`, { strength: 3 }],
      ["POST", `/${rule.id}/disable`, undefined],
      ["GET", `/${rule.id}/versions`, undefined],
      ["DELETE", `/${rule.id}`, undefined],
    ] as const) {
      const response = await call(method, path, body, { key });
      expect(response.status, `${method} ${path}`).toBe(401);
      expect(((await response.json()) as ErrorBody).error.code).toBe("unauthorized");
    }
    expect(await tableContents()).toEqual(before);
  });
});

describe("rules API: what a target may mean (GET /v1/admin/rules/targets)", () => {
  const targets = async (query: string, key: string | null = adminKey) => {
    const response = await call("GET", `/targets?${query}`, undefined, { key });
    return {
      status: response.status,
      body: (await response.json()) as { data: { targets: { id: string; name: string }[] } } & ErrorBody,
    };
  };

  it("answers the catalog's categories and products nearest to what was typed, typos and titles included", async () => {
    const prefix = uniquePrefix();
    const products = [
      {
        id: `${prefix}-sku-1001`,
        title: "Red court shoe",
        categoryId: `${prefix}-heels`,
        categoryName: "Heels",
        listPrice: 80,
      },
      { id: `${prefix}-sku-1002`, title: "Suede ankle boot", categoryId: `${prefix}-boots`, listPrice: 120 },
      {
        id: `${prefix}-sku-1003`,
        title: "Retired sandal",
        categoryId: `${prefix}-sandals`,
        listPrice: 40,
        active: false,
      },
    ];
    expect((await client(SELF).postProducts(products)).status).toBe(200);

    const category = await targets(`type=category&q=${prefix}-heelz`);
    expect(category.status).toBe(200);
    expect(category.body.data.targets[0]).toEqual({ id: `${prefix}-heels`, name: "Heels" });
    // A category named by no product's categoryName is named by its id; one with no active product is not offered.
    const boots = await targets(`type=category&q=${prefix}-boot`);
    expect(boots.body.data.targets).toEqual([{ id: `${prefix}-boots`, name: `${prefix}-boots` }]);
    expect((await targets(`type=category&q=${prefix}-sandals`)).body.data.targets.map((t) => t.id)).not.toContain(
      `${prefix}-sandals`,
    );

    // Products by a word of the title, or by an id with a typo past its start.
    const byTitle = await targets(`type=product&q=ankle`);
    expect(byTitle.body.data.targets.map((t) => t.id)).toContain(`${prefix}-sku-1002`);
    const byTypo = await targets(`type=product&q=${prefix}-sku-1012&limit=1`);
    expect(byTypo.body.data.targets).toEqual([{ id: `${prefix}-sku-1002`, name: "Suede ankle boot" }]);
    // A `%` typed offers no product whose id or title lacks it.
    expect((await targets(`type=product&q=${encodeURIComponent(`${prefix}%`)}`)).body.data.targets).toEqual([]);
    // An id in capitals, typed in lower case with a typo: still found (ids compare by case in the index).
    const capitals = { id: `ZQ-${prefix}-1001`, title: "Velvet slipper", categoryId: `${prefix}-heels`, listPrice: 60 };
    expect((await client(SELF).postProducts([capitals])).status).toBe(200);
    expect((await targets(`type=product&q=zq-${prefix}-1011&limit=1`)).body.data.targets).toEqual([
      { id: capitals.id, name: "Velvet slipper" },
    ]);
  });

  it("refuses a missing or unknown type, a bad limit and an unknown parameter with 400, and no admin key with 401", async () => {
    expect((await targets("type=category", null)).status).toBe(401);
    expect((await targets("type=category", apiKey)).status).toBe(401);
    for (const [query, path] of [
      ["q=heels", "type"],
      ["type=brand", "type"],
      ["type=category&limit=0", "limit"],
      ["type=category&limit=21", "limit"],
    ] as const) {
      const refused = await targets(query);
      expect(refused.status, query).toBe(400);
      expect(refused.body.error.code).toBe("invalid_request");
      expect(refused.body.error.issues?.map((issue) => issue.path[0])).toContain(path);
    }
    expect((await targets("type=category&search=heels")).body.error.message).toMatch(/search is not a parameter/);
  });
});
