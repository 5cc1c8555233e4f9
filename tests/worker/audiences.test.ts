// Saved audiences through the real worker and real D1: create (the signing secret shown once, stored
// sealed), list, read, update, delete; the admin key or the console session (writes only with
// X-Patron-Console from the console's origin); every bad body a 400 in the error envelope that writes
// nothing; unknown ids a 404; the webhook URL rules (https to a public host, no credentials, bounded).
import { env, SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, inject, it } from "vitest";
import * as schema from "../../db/schema.ts";
import { insertAudience, memberQueries, updateAudience } from "../../worker/audiences/audiences.repo.ts";
import {
  audienceListResponseSchema,
  audienceResponseSchema,
  audienceWithSecretResponseSchema,
} from "../../worker/audiences/audiences.schemas.ts";
import { maxWebhookUrlLength, webhookUrlProblem } from "../../worker/audiences/webhook-url.ts";
import type { Db } from "../../worker/env.ts";
import { adminKey, apiKey, client, uniquePrefix } from "../fixtures/builders.ts";

const origin = "https://patron.test";
const api = client(SELF, origin);
const consoleHeaders = { "Content-Type": "application/json", "X-Patron-Console": "1", Origin: origin };

interface ErrorBody {
  error: {
    code: string;
    message: string;
    requestId: string;
    issues?: { path: (string | number)[]; message: string }[];
  };
}

async function storedAudiences(): Promise<number> {
  return ((await env.DB.prepare("SELECT count(*) AS n FROM audiences").first()) as { n: number }).n;
}

async function create(body: unknown, key: string | null = adminKey) {
  return api.call("POST", "/v1/admin/audiences", body, key);
}

async function signIn(): Promise<string> {
  const response = await SELF.fetch(`${origin}/v1/admin/session`, {
    method: "POST",
    headers: consoleHeaders,
    body: JSON.stringify({ key: adminKey }),
  });
  expect(response.status).toBe(201);
  return (response.headers.get("Set-Cookie") ?? "").split(";")[0] ?? "";
}

async function expectInvalid(response: Response, path: (string | number)[], message: RegExp) {
  const body = (await response.json()) as ErrorBody;
  expect(response.status, JSON.stringify(body)).toBe(400);
  expect(body.error.code).toBe("invalid_request");
  expect(body.error.requestId).toBeTruthy();
  expect(body.error.issues, JSON.stringify(body)).toContainEqual({ path, message: expect.stringMatching(message) });
}

describe("saved audiences API", () => {
  it("creates an audience, shows its signing secret once and stores it sealed", async () => {
    const receiver = inject("webhookReceiver");
    const response = await create({
      name: "  Fading full-price shoppers ",
      filters: { stage: "fading", discountSensitivity: "full_price" },
      webhookUrl: `${receiver}/hooks/api-create`,
    });
    expect(response.status).toBe(201);
    const created = audienceWithSecretResponseSchema.parse(await response.json()).data;
    expect(created).toMatchObject({
      name: "Fading full-price shoppers",
      filters: { stage: "fading", discountSensitivity: "full_price" },
      webhookUrl: `${receiver}/hooks/api-create`,
      matchKeys: [],
      // Sized as it is saved: nobody is scored in this database.
      size: 0,
      lastDelivery: null,
    });
    expect(created.id).toMatch(/^aud_[0-9a-f]{32}$/);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const read = await api.call("GET", `/v1/admin/audiences/${created.id}`, undefined, adminKey);
    expect(read.status).toBe(200);
    const readBody = (await read.json()) as Record<string, Record<string, unknown>>;
    expect(readBody.data).not.toHaveProperty("secret");
    expect(audienceResponseSchema.parse(readBody).data.name).toBe("Fading full-price shoppers");

    const listed = audienceListResponseSchema.parse(
      await (await api.call("GET", "/v1/admin/audiences", undefined, adminKey)).json(),
    ).data.audiences;
    expect(listed.map((a) => a.id)).toContain(created.id);
    expect(JSON.stringify(listed)).not.toContain(created.secret.slice(6));

    // D1 holds the secret sealed: neither the secret nor its key bytes appear in the row.
    const row = (await env.DB.prepare("SELECT secret FROM audiences WHERE id = ?").bind(created.id).first()) as {
      secret: string;
    };
    expect(row.secret).toMatch(/^v1\./);
    expect(row.secret).not.toContain(created.secret.slice(6, 20));
  });

  it("refuses requests without the admin key, and with the API key", async () => {
    const before = await storedAudiences();
    for (const key of [null, apiKey, `${adminKey}x`]) {
      expect((await api.call("GET", "/v1/admin/audiences", undefined, key)).status).toBe(401);
      expect((await create({ name: "Nope" }, key)).status).toBe(401);
      expect((await api.call("DELETE", "/v1/admin/audiences/aud_x", undefined, key)).status).toBe(401);
    }
    expect(await storedAudiences()).toBe(before);
  });

  it("accepts the console session, and its writes only with X-Patron-Console from the console's origin", async () => {
    const cookie = await signIn();
    const listed = await SELF.fetch(`${origin}/v1/admin/audiences`, { headers: { Cookie: cookie } });
    expect(listed.status).toBe(200);
    expect(listed.headers.get("Cache-Control")).toMatch(/no-store/);

    const before = await storedAudiences();
    const body = JSON.stringify({ name: "Lapsed top tier", filters: { stage: "lapsed", valueTier: "top" } });
    const withoutHeader = await SELF.fetch(`${origin}/v1/admin/audiences`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Cookie: cookie },
      body,
    });
    expect(withoutHeader.status).toBe(403);
    const otherSite = await SELF.fetch(`${origin}/v1/admin/audiences`, {
      method: "POST",
      headers: { ...consoleHeaders, Origin: "https://evil.example", Cookie: cookie },
      body,
    });
    expect(otherSite.status).toBe(403);
    expect(await storedAudiences()).toBe(before);

    const created = await SELF.fetch(`${origin}/v1/admin/audiences`, {
      method: "POST",
      headers: { ...consoleHeaders, Cookie: cookie },
      body,
    });
    expect(created.status).toBe(201);
    const { id } = audienceWithSecretResponseSchema.parse(await created.json()).data;
    const patchWithoutHeader = await SELF.fetch(`${origin}/v1/admin/audiences/${id}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", Cookie: cookie },
      body: JSON.stringify({ name: "Renamed" }),
    });
    expect(patchWithoutHeader.status).toBe(403);
    const patched = await SELF.fetch(`${origin}/v1/admin/audiences/${id}`, {
      method: "PATCH",
      headers: { ...consoleHeaders, Cookie: cookie },
      body: JSON.stringify({ name: "Renamed" }),
    });
    expect(patched.status).toBe(200);
    expect(audienceResponseSchema.parse(await patched.json()).data.name).toBe("Renamed");
    const deleteWithoutHeader = await SELF.fetch(`${origin}/v1/admin/audiences/${id}`, {
      method: "DELETE",
      headers: { Cookie: cookie },
    });
    expect(deleteWithoutHeader.status).toBe(403);
    const deleted = await SELF.fetch(`${origin}/v1/admin/audiences/${id}`, {
      method: "DELETE",
      headers: { ...consoleHeaders, Cookie: cookie },
    });
    expect(deleted.status).toBe(204);
    expect(await storedAudiences()).toBe(before);
  });

  it("answers every bad body with a 400 naming the field, and writes nothing", async () => {
    const receiver = inject("webhookReceiver");
    const before = await storedAudiences();
    await expectInvalid(await create({}), ["name"], /name is required/);
    await expectInvalid(await create({ name: "   " }), ["name"], /must not be empty/);
    await expectInvalid(await create({ name: "x".repeat(101) }), ["name"], /at most 100/);
    await expectInvalid(await create({ name: "A", filters: { stage: "gone" } }), ["filters", "stage"], /one of/);
    await expectInvalid(
      await create({ name: "A", filters: { valueTier: "gold" } }),
      ["filters", "valueTier"],
      /one of/,
    );
    await expectInvalid(await create({ name: "A", filters: { stages: "fading" } }), ["filters"], /unknown field/);
    await expectInvalid(await create({ name: "A", colour: "red" }), [], /unknown field/);
    await expectInvalid(await create({ name: "A", matchKeys: ["passport"] }), ["matchKeys", 0], /matchKeys are among/);
    // This deployment (the tests') has not opted in to any match key.
    await expectInvalid(await create({ name: "A", matchKeys: ["loyalty"] }), ["matchKeys", 0], /not enabled/);
    for (const [url, message] of [
      ["http://hooks.example.com/patron", /https/],
      ["https://user:pass@hooks.example.com/patron", /credentials/],
      ["https://203.0.113.7/patron", /not an IP address/],
      ["https://[2001:db8::1]/patron", /not an IP address/],
      ["https://crm.internal/patron", /public host/],
      ["https://localhost/patron", /public host/],
      ["https://localhost./patron", /public host/],
      ["https://foo.localhost./patron", /public host/],
      ["https://metadata.google.internal./patron", /public host/],
      ["https://hooks.example.com:8443/patron", /default https port/],
      ["ftp://hooks.example.com/patron", /https/],
      ["hooks.example.com/patron", /absolute URL/],
      [`https://hooks.example.com/${"a".repeat(maxWebhookUrlLength)}`, /at most 2048/],
      [`${receiver.replace("127.0.0.1", "10.0.0.8")}/hooks/x`, /https/],
    ] as const)
      await expectInvalid(await create({ name: "A", webhookUrl: url }), ["webhookUrl"], message);

    const notJson = await SELF.fetch(`${origin}/v1/admin/audiences`, {
      method: "POST",
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: "{name:",
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as ErrorBody).error.code).toBe("invalid_request");
    expect(await storedAudiences()).toBe(before);
  });

  it("updates name, filters and webhook, rotates the secret on request, and refuses an empty or bad change", async () => {
    const receiver = inject("webhookReceiver");
    const created = audienceWithSecretResponseSchema.parse(
      await (await create({ name: "Active", filters: { stage: "active" } })).json(),
    ).data;
    const path = `/v1/admin/audiences/${created.id}`;

    const renamed = await api.call(
      "PATCH",
      path,
      { name: "Active regulars", filters: { stage: "active", valueTier: "top" } },
      adminKey,
    );
    expect(renamed.status).toBe(200);
    const renamedBody = (await renamed.json()) as { data: Record<string, unknown> };
    expect(renamedBody.data).not.toHaveProperty("secret");
    expect(audienceResponseSchema.parse(renamedBody).data).toMatchObject({
      name: "Active regulars",
      filters: { stage: "active", valueTier: "top" },
      webhookUrl: null,
    });

    // The first webhook URL comes with a fresh secret in the answer (the creation's was never shown for one).
    const hooked = audienceWithSecretResponseSchema.parse(
      await (await api.call("PATCH", path, { webhookUrl: `${receiver}/hooks/api-patch` }, adminKey)).json(),
    ).data;
    expect(hooked.webhookUrl).toBe(`${receiver}/hooks/api-patch`);
    expect(hooked.name).toBe("Active regulars");
    expect(hooked.secret).toMatch(/^whsec_/);
    expect(hooked.secret).not.toBe(created.secret);
    // Moving an existing webhook keeps its secret.
    const moved = await api.call("PATCH", path, { webhookUrl: `${receiver}/hooks/api-patch-2` }, adminKey);
    expect(((await moved.json()) as { data: Record<string, unknown> }).data).not.toHaveProperty("secret");

    const rotated = audienceWithSecretResponseSchema.parse(
      await (await api.call("PATCH", path, { rotateSecret: true }, adminKey)).json(),
    ).data;
    expect(rotated.secret).not.toBe(hooked.secret);

    const cleared = audienceResponseSchema.parse(
      await (await api.call("PATCH", path, { webhookUrl: null }, adminKey)).json(),
    ).data;
    expect(cleared.webhookUrl).toBeNull();

    const updatedAt = cleared.updatedAt;
    await expectInvalid(await api.call("PATCH", path, {}, adminKey), [], /nothing to change/);
    await expectInvalid(
      await api.call("PATCH", path, { rotateSecret: false }, adminKey),
      ["rotateSecret"],
      /must be true/,
    );
    await expectInvalid(
      await api.call("PATCH", path, { name: "Other", webhookUrl: "http://example.com/x" }, adminKey),
      ["webhookUrl"],
      /https/,
    );
    const after = audienceResponseSchema.parse(await (await api.call("GET", path, undefined, adminKey)).json()).data;
    expect(after).toMatchObject({ name: "Active regulars", webhookUrl: null, updatedAt });
  });

  it("refuses a second audience with the same name, letter case aside, on create and rename, writing nothing", async () => {
    const first = audienceWithSecretResponseSchema.parse(
      await (await create({ name: "Weekend shoppers", filters: { stage: "active" } })).json(),
    ).data;
    const other = audienceWithSecretResponseSchema.parse(
      await (await create({ name: "Weekday shoppers", filters: {} })).json(),
    ).data;
    const count = await storedAudiences();
    const again = await create({ name: "weekend SHOPPERS", filters: { stage: "fading" } });
    expect(again.status).toBe(409);
    const body = (await again.json()) as ErrorBody;
    expect(body.error.code).toBe("conflict");
    expect(body.error.message).toBe('An audience named "weekend SHOPPERS" is saved already: choose another name.');
    expect(body.error.issues).toEqual([
      { path: ["name"], message: 'an audience named "weekend SHOPPERS" is saved already: choose another name' },
    ]);
    expect(await storedAudiences()).toBe(count);
    const path = `/v1/admin/audiences/${other.id}`;
    const renamed = await api.call("PATCH", path, { name: "Weekend Shoppers", filters: { stage: "new" } }, adminKey);
    expect(renamed.status).toBe(409);
    const unchanged = audienceResponseSchema.parse(
      await (await api.call("GET", path, undefined, adminKey)).json(),
    ).data;
    expect(unchanged).toMatchObject({ name: "Weekday shoppers", filters: {}, updatedAt: other.updatedAt });
    // Its own name, in other letters, is no clash.
    const recased = await api.call("PATCH", `/v1/admin/audiences/${first.id}`, { name: "Weekend Shoppers" }, adminKey);
    expect(recased.status, await recased.clone().text()).toBe(200);
  });

  it("checks a rename's name in the write itself: one taken since the audience was read is refused, writing nothing", async () => {
    // Two renames at the same moment each read their audience before either writes: the write that
    // comes second must find the name taken by the first, so the check cannot be a read before it.
    const p = uniquePrefix("aud-race");
    const [first, second] = await Promise.all(
      ["a", "b"].map(
        async (name) =>
          audienceWithSecretResponseSchema.parse(await (await create({ name: `${p} ${name}`, filters: {} })).json())
            .data,
      ),
    );
    const db = drizzle(env.DB, { schema }) as Db;
    const now = new Date();
    const target = `${p} taken`;
    // The first rename has written; the second goes on from what it read before.
    await env.DB.prepare("UPDATE audiences SET name = ? WHERE id = ?").bind(target, first?.id).run();
    const webhookUrl = "https://crm.example.com/hooks/race";
    expect(await updateAudience(db, second?.id as string, { name: target.toUpperCase(), webhookUrl }, now)).toBe(
      "name_taken",
    );
    const stored = await env.DB.prepare(
      "SELECT name, webhook_url AS webhookUrl, updated_at AS updatedAt FROM audiences WHERE id = ?",
    )
      .bind(second?.id)
      .first();
    expect(stored).toEqual({ name: `${p} b`, webhookUrl: null, updatedAt: second?.updatedAt });
    const purges = await env.DB.prepare("SELECT count(*) AS n FROM audience_member_purges WHERE audience_id = ?")
      .bind(second?.id)
      .first<{ n: number }>();
    expect(purges?.n).toBe(0);
    // A name free, or its own in other letters, is written.
    expect(await updateAudience(db, second?.id as string, { name: `${p} B` }, now)).toMatchObject({ name: `${p} B` });
    expect(await updateAudience(db, "aud_none", { name: `${p} c` }, now)).toBeUndefined();
  });

  it("says whether the catalog has an audience's lapsing category, so a typo is seen when saved", async () => {
    const p = uniquePrefix("aud-cat");
    const posted = await api.postProducts([
      { id: `${p}-mug`, title: "Mug", categoryId: `${p}-kitchen`, categoryName: "Kitchen", listPrice: 12 },
    ]);
    expect(posted.status, await posted.clone().text()).toBe(200);
    const saved = async (name: string, filters: Record<string, string>) =>
      audienceWithSecretResponseSchema.parse(await (await create({ name: `${p} ${name}`, filters })).json()).data;
    expect((await saved("typo", { lapsedCategory: `${p}-kitchn` })).lapsedCategoryInCatalog).toBe(false);
    expect((await saved("kitchen", { lapsedCategory: `${p}-kitchen` })).lapsedCategoryInCatalog).toBe(true);
    expect((await saved("everyone", { stage: "active" })).lapsedCategoryInCatalog).toBeNull();
    const listed = audienceListResponseSchema
      .parse(await (await api.call("GET", "/v1/admin/audiences", undefined, adminKey)).json())
      .data.audiences.filter((audience) => audience.name.startsWith(p));
    expect(Object.fromEntries(listed.map((audience) => [audience.name, audience.lapsedCategoryInCatalog]))).toEqual({
      [`${p} typo`]: false,
      [`${p} kitchen`]: true,
      [`${p} everyone`]: null,
    });
  });

  it("answers 404 for an audience that does not exist, and after it was deleted", async () => {
    const created = audienceWithSecretResponseSchema.parse(await (await create({ name: "Short-lived" })).json()).data;
    const path = `/v1/admin/audiences/${created.id}`;
    expect((await api.call("DELETE", path, undefined, adminKey)).status).toBe(204);
    for (const [method, body] of [
      ["GET", undefined],
      ["PATCH", { name: "Back" }],
      ["DELETE", undefined],
    ] as const) {
      const response = await api.call(method, path, body, adminKey);
      expect(response.status, method).toBe(404);
      expect(((await response.json()) as ErrorBody).error.code).toBe("not_found");
    }
    const unknown = await api.call("GET", "/v1/admin/audiences/aud_missing", undefined, adminKey);
    expect(unknown.status).toBe(404);
  });

  it("stops at the per-deployment limit in the same statement that inserts", async () => {
    const db = drizzle(env.DB, { schema }) as Db;
    const count = await storedAudiences();
    const row = (id: string) => ({
      id,
      name: id,
      filters: {},
      matchKeys: [],
      secret: "v1.x.y",
      createdAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
    });
    expect(await insertAudience(db, row("aud_limit_over"), count)).toBe("limit");
    expect(await insertAudience(db, row("aud_limit_under"), count + 1)).toBe("saved");
    expect(await storedAudiences()).toBe(count + 1);
  });
});

describe("audience member reads", () => {
  it("are ranges of audience_members_sync_idx: no scan, no sort, and the reads from the index alone", async () => {
    const db = drizzle(env.DB, { schema }) as Db;
    for (const [name, query] of Object.entries({
      pending: memberQueries.pending("aud_x", 3),
      joined: memberQueries.joined("aud_x", 3, 500),
      left: memberQueries.left("aud_x", 3, 500),
      undelivered: memberQueries.undelivered("aud_x", 3),
    })) {
      const plan = (await db.all<{ detail: string }>(sql`EXPLAIN QUERY PLAN ${query}`)).map((row) => row.detail);
      const reads = plan.filter((detail) => /^(SEARCH|SCAN)/.test(detail) && detail !== "SCAN CONSTANT ROW");
      expect(reads.length, `${name}: ${plan.join(" | ")}`).toBeGreaterThan(0);
      // The delete reads the rows it deletes; the reads need nothing the index does not hold.
      const covering = name === "undelivered" ? "(COVERING )?" : "COVERING ";
      for (const detail of reads)
        expect(detail, `${name}: ${plan.join(" | ")}`).toMatch(
          new RegExp(`^SEARCH audience_members USING ${covering}INDEX audience_members_sync_idx`),
        );
      expect(plan.join(" | "), name).not.toMatch(/TEMP B-TREE/);
    }
  });
});

describe("webhook URL rules", () => {
  it("allow plain http only to localhost or 127.0.0.1, and only with the development setting", () => {
    expect(webhookUrlProblem("https://hooks.example.com/patron?list=1", false)).toBeNull();
    expect(webhookUrlProblem("https://hooks.example.com:443/patron", false)).toBeNull();
    expect(webhookUrlProblem("http://127.0.0.1:9000/hook", true)).toBeNull();
    expect(webhookUrlProblem("http://localhost:9000/hook", true)).toBeNull();
    expect(webhookUrlProblem("http://127.0.0.1:9000/hook", false)).toMatch(/AUDIENCE_WEBHOOKS_ALLOW_LOCAL/);
    expect(webhookUrlProblem("http://localhost/hook", false)).toMatch(/https/);
    expect(webhookUrlProblem("http://192.168.1.4/hook", true)).toMatch(/https/);
    expect(webhookUrlProblem("http://user@localhost/hook", true)).toMatch(/credentials/);
    expect(webhookUrlProblem("https://printer.local/hook", true)).toMatch(/public host/);
    expect(webhookUrlProblem("https://intranet/hook", true)).toMatch(/public host/);
  });

  it.each([
    "https://localhost.localdomain/hook",
    "https://crm.test/hook",
    "https://crm.invalid/hook",
    "https://crm.example/hook",
    "https://hidden.onion/hook",
    "https://crm.alt/hook",
    "https://4.2.0.192.in-addr.arpa/hook",
    "https://kubernetes.default.svc/hook",
  ])("refuse %s: a special-use name, never a public host", (url) => {
    expect(webhookUrlProblem(url, true)).toMatch(/public host/);
  });
});
