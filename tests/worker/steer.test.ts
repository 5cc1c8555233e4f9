// POST /v1/admin/rules/preview and /simulate through the real worker: a planted shop where every
// shopper mostly buys coffee, so what a boost or an exclusion does is known in advance. Runs on both
// stores (D1, and customer shards in the worker-shards project): rules stay in D1, customer rows are
// read wherever the store keeps them.
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { previewResponseSchema, simulateResponseSchema } from "../../worker/rules/steer.schemas.ts";
import { adminKey, anOrder, client } from "../fixtures/builders.ts";
import { storeRows } from "../fixtures/store-rows.ts";

const api = client(SELF);
const day = 86_400_000;
const now = Date.now();
const categories = ["coffee", "mugs", "tea", "books", "plants"];
const others = categories.slice(1);
const shoppers = 12;

const products = categories.flatMap((categoryId, c) =>
  [0, 1, 2, 3].map((n) => ({
    id: `${categoryId}-${n}`,
    title: `${categoryId} ${n}`,
    categoryId,
    categoryName: categoryId[0]?.toUpperCase() + categoryId.slice(1),
    url: `https://shop.test/p/${categoryId}-${n}`,
    imageUrl: null,
    listPrice: 10 + c * 5 + n * 3,
    salePrice: null,
    inStock: true,
  })),
);

function call(path: string, body: unknown, key: string | null = adminKey) {
  return SELF.fetch(`http://patron.test/v1/admin/rules${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

// Books is on every planted shelf (bought by some, popular for the rest) but never first.
const boostBooks = {
  name: "Book week",
  action: "boost",
  targetType: "category",
  targetId: "books",
  strength: 1000,
};
const excludeCoffee = { name: "No coffee", action: "exclude", targetType: "category", targetId: "coffee" };

async function storedRules() {
  const rules = await env.DB.prepare("SELECT count(*) AS n FROM rules").first<{ n: number }>();
  const versions = await env.DB.prepare("SELECT count(*) AS n FROM rule_versions").first<{ n: number }>();
  return { rules: rules?.n, versions: versions?.n };
}

/** The ids of every customer with a summary, wherever the customer store keeps them. */
async function summarisedCustomers() {
  return (await storeRows<{ id: string }>("SELECT customer_id AS id FROM customer_summaries")).map((row) => row.id);
}

async function expectInvalid(response: Response, path: (string | number)[], message: string) {
  expect(response.status, await response.clone().text()).toBe(400);
  const body = (await response.json()) as { error: { code: string; requestId: string; issues?: unknown[] } };
  expect(body.error.code).toBe("invalid_request");
  expect(body.error.requestId).toBeTruthy();
  expect(body.error.issues).toContainEqual({ path, message });
}

let coffeeShopper = "";

beforeAll(async () => {
  expect((await api.postProducts(products)).status).toBe(200);
  // Each shopper: five coffee orders and one order from another category, so every category has buyers
  // and coffee is first on every personalized shelf.
  const orders = [];
  for (let s = 0; s < shoppers; s++) {
    for (let k = 0; k < 6; k++) {
      const categoryId = k < 5 ? "coffee" : (others[s % others.length] as string);
      orders.push(
        anOrder({
          id: `steer-${s}-${k}`,
          placedAt: new Date(now - (10 + (6 - k) * 20 + s) * day).toISOString(),
          identifiers: { account: `steer-${s}` },
          lines: [{ productId: `${categoryId}-0`, categoryId, quantity: 1, unitPrice: 12, listPrice: 12 }],
        }),
      );
    }
  }
  expect((await api.postOrders(orders)).status).toBe(200);
  const run = await SELF.fetch("http://patron.test/v1/admin/jobs/nightly?wait=1", {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}` },
  });
  expect(run.status, await run.clone().text()).toBe(200);
  coffeeShopper = (await summarisedCustomers()).sort()[0] ?? "";
  expect(coffeeShopper).not.toBe("");
});

describe("POST /v1/admin/rules/preview", () => {
  it("shows the shopper's shelf without and with a draft boost, and stores nothing", async () => {
    const stored = await storedRules();
    const response = await call("/preview", { rule: boostBooks, customerId: coffeeShopper });
    expect(response.status, await response.clone().text()).toBe(200);
    const { data } = previewResponseSchema.parse(await response.json());
    expect(data.customerId).toBe(coffeeShopper);
    expect(data.changed).toBe(true);
    // Before: the coffee regular's shelf leads with coffee and carries no rule reason.
    expect(data.categories.before[0]?.id).toBe("coffee");
    expect(data.before[0]?.categoryId).toBe("coffee");
    expect(data.before.length).toBeGreaterThan(0);
    expect(JSON.stringify(data.before)).not.toContain('"rule"');
    for (const item of data.before) expect(item).toMatchObject({ id: expect.any(String), title: expect.any(String) });
    // After: books first, with the draft rule named as the reason.
    expect(data.categories.after[0]?.id).toBe("books");
    expect(data.after[0]).toMatchObject({ categoryId: "books", categoryName: "Books" });
    expect(data.after[0]?.reasons).toContainEqual({ code: "rule", ruleId: "draft", action: "boost" });
    expect(data.after.map((item) => item.rank)).toEqual(data.after.map((_, index) => index + 1));
    expect(await storedRules()).toEqual(stored);
  });

  it("shows the storefront's shelf: the one GET /v1/customers/:id/shelf serves, refilled after an exclusion", async () => {
    let compared = 0;
    for (const customerId of await summarisedCustomers()) {
      const shelf = await SELF.fetch(`http://patron.test/v1/customers/${customerId}/shelf`, {
        headers: { Authorization: `Bearer ${adminKey}` },
      });
      expect(shelf.status, await shelf.clone().text()).toBe(200);
      const served = (await shelf.json()) as {
        data: { arm: string; items: { id: string }[]; categories: { id: string }[] };
      };
      const preview = previewResponseSchema.parse(
        await (await call("/preview", { rule: excludeCoffee, customerId })).json(),
      ).data;
      // The preview puts everyone in the personalized arm; the served shelf's holdout is 10%.
      if (served.data.arm !== "personalized") continue;
      compared += 1;
      expect(preview.before.map((item) => item.id)).toEqual(served.data.items.map((item) => item.id));
      expect(preview.categories.before.map((category) => category.id)).toEqual(
        served.data.categories.map((category) => category.id),
      );
      // Without coffee, the four other categories take its place and fill the shelf, as the storefront
      // would show them.
      expect(preview.categories.after.map((category) => category.id).sort()).toEqual([...others].sort());
      expect(preview.after).toHaveLength(preview.before.length);
      expect(preview.after.some((item) => item.categoryId === "coffee")).toBe(false);
    }
    expect(compared).toBeGreaterThan(0);
  });

  it("previews a visitor who is not signed in: the popular shelf GET /v1/recommendations serves them", async () => {
    const served = (await (await SELF.fetch("http://patron.test/v1/recommendations?limit=8&categories=4")).json()) as {
      data: { customerKnown: boolean; items: { id: string }[]; categories: { id: string }[] };
    };
    expect(served.data.customerKnown).toBe(false);
    const response = await call("/preview", { rule: excludeCoffee, anonymous: true });
    expect(response.status, await response.clone().text()).toBe(200);
    const preview = previewResponseSchema.parse(await response.json()).data;
    expect(preview).toMatchObject({ customerId: null, anonymous: true, storefrontAccount: false, changed: true });
    expect(preview.before.map((item) => item.id)).toEqual(served.data.items.map((item) => item.id));
    expect(preview.categories.before.map((category) => category.id)).toEqual(
      served.data.categories.map((category) => category.id),
    );
    // Coffee, the planted shop's best seller, leads the popular shelf before and is gone after.
    expect(preview.before.some((item) => item.categoryId === "coffee")).toBe(true);
    expect(preview.after.some((item) => item.categoryId === "coffee")).toBe(false);
    expect(preview.after).toHaveLength(preview.before.length);
    // Published, the rule gives visitors the preview's "after" (the shelf is cached per set of rules).
    const saved = await call("", excludeCoffee);
    expect(saved.status, await saved.clone().text()).toBe(201);
    const ruleId = ((await saved.json()) as { data: { id: string } }).data.id;
    try {
      const after = (await (await SELF.fetch("http://patron.test/v1/recommendations?limit=8&categories=4")).json()) as {
        data: { items: { id: string }[]; categories: { id: string }[] };
      };
      expect(after.data.items.map((item) => item.id)).toEqual(preview.after.map((item) => item.id));
      expect(after.data.categories.map((category) => category.id)).toEqual(
        preview.categories.after.map((category) => category.id),
      );
    } finally {
      expect((await call(`/${ruleId}/disable`, {})).status).toBe(200);
    }
    // A segment rule never applies to a visitor nobody knows.
    const segmented = previewResponseSchema.parse(
      await (
        await call("/preview", { rule: { ...excludeCoffee, segment: { stage: "active" } }, anonymous: true })
      ).json(),
    ).data;
    expect(segmented.changed).toBe(false);
  });

  it("applies a segment rule only to shoppers in the segment", async () => {
    const [score] = await storeRows<{ stage: string }>(
      "SELECT stage FROM customer_scores WHERE customer_id = ?",
      coffeeShopper,
    );
    const stage = score?.stage ?? "";
    expect(stage).not.toBe("");
    const elsewhere = ["new", "active", "fading", "lapsed"].filter((other) => other !== stage);
    const outside = previewResponseSchema.parse(
      await (
        await call("/preview", { rule: { ...boostBooks, segment: { stage: elsewhere } }, customerId: coffeeShopper })
      ).json(),
    ).data;
    expect(outside.changed).toBe(false);
    expect(outside.after).toEqual(outside.before);
    const inside = previewResponseSchema.parse(
      await (await call("/preview", { rule: { ...boostBooks, segment: { stage } }, customerId: coffeeShopper })).json(),
    ).data;
    expect(inside.changed).toBe(true);
    expect(inside.categories.after[0]?.id).toBe("books");
  });

  it("says whether the catalog has the draft's target: a typo changes nothing and says why", async () => {
    const preview = (rule: object) =>
      call("/preview", { rule, customerId: coffeeShopper }).then(
        async (r) => previewResponseSchema.parse(await r.json()).data,
      );
    const known = await preview(boostBooks);
    expect(known).toMatchObject({ changed: true, targetInCatalog: true });
    const typo = await preview({ ...boostBooks, targetId: "bokos" });
    expect(typo).toMatchObject({ changed: false, targetInCatalog: false });
    const product = await preview({ ...boostBooks, targetType: "product", targetId: "books-1" });
    expect(product.targetInCatalog).toBe(true);
    const simulated = simulateResponseSchema.parse(
      await (await call("/simulate", { rule: { ...boostBooks, targetId: "bokos" } })).json(),
    ).data;
    expect(simulated).toMatchObject({ targetInCatalog: false, affected: 0 });
  });

  it("says when the draft is not live: a scheduled one is applied as if started, an ended one changes nothing", async () => {
    const inDays = (days: number) => new Date(Date.now() + days * day).toISOString();
    const preview = async (rule: object) => {
      const response = await call("/preview", { rule, customerId: coffeeShopper });
      expect(response.status, await response.clone().text()).toBe(200);
      return previewResponseSchema.parse(await response.json()).data;
    };
    const simulate = async (rule: object) =>
      simulateResponseSchema.parse(await (await call("/simulate", { rule })).json()).data;

    expect(await preview(boostBooks)).toMatchObject({ ruleState: "live", asIfStarted: false, changed: true });
    const scheduled = { ...boostBooks, startsAt: inDays(19), endsAt: inDays(26) };
    const ahead = await preview(scheduled);
    expect(ahead).toMatchObject({ ruleState: "scheduled", asIfStarted: true, changed: true });
    expect(ahead.categories.after[0]?.id).toBe("books");
    expect(await simulate(scheduled)).toMatchObject({ ruleState: "scheduled", asIfStarted: true, affected: shoppers });

    const ended = { ...boostBooks, startsAt: "2026-01-01T00:00:00Z", endsAt: "2026-01-02T00:00:00Z" };
    expect(await preview(ended)).toMatchObject({ ruleState: "ended", asIfStarted: false, changed: false });
    expect(await simulate(ended)).toMatchObject({ ruleState: "ended", asIfStarted: false, affected: 0 });
    const disabled = { ...boostBooks, enabled: false, startsAt: inDays(19) };
    expect(await preview(disabled)).toMatchObject({ ruleState: "disabled", asIfStarted: false, changed: false });
  });

  it("answers 404 for an unknown customer", async () => {
    const response = await call("/preview", { rule: boostBooks, customerId: "c_nobody" });
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: "not_found", message: "No customer with id c_nobody." });
  });

  it("validates the draft exactly like POST /v1/admin/rules, and writes nothing", async () => {
    const stored = await storedRules();
    await expectInvalid(
      await call("/preview", { rule: { ...boostBooks, strength: undefined }, customerId: coffeeShopper }),
      ["rule", "strength"],
      "strength is required when action is boost",
    );
    await expectInvalid(
      await call("/preview", { rule: { ...boostBooks, action: "promote" }, customerId: coffeeShopper }),
      ["rule", "action"],
      "action must be one of boost, bury, pin, exclude, allow_discounts, hide_discounts",
    );
    await expectInvalid(await call("/preview", { customerId: coffeeShopper }), ["rule"], "rule is required");
    await expectInvalid(
      await call("/preview", { rule: boostBooks }),
      ["customerId"],
      'customerId is required (or "anonymous": true for a visitor who is not signed in)',
    );
    await expectInvalid(
      await call("/preview", { rule: boostBooks, customerId: coffeeShopper, anonymous: true }),
      ["anonymous"],
      "give customerId or anonymous, not both",
    );
    await expectInvalid(
      await call("/preview", { rule: boostBooks, anonymous: false }),
      ["anonymous"],
      "anonymous must be true when given",
    );
    await expectInvalid(
      await call("/preview", { rule: boostBooks, customerId: coffeeShopper, extra: 1 }),
      [],
      "unknown field(s): extra",
    );
    // Every problem at once: the draft's (a field's own and one between fields) and the preview's own.
    const all = await call("/preview", {
      rule: { ...boostBooks, strength: undefined, segment: { stage: "sleeping" } },
    });
    expect(all.status).toBe(400);
    expect(((await all.json()) as { error: { issues: unknown[] } }).error.issues).toEqual([
      {
        path: ["rule", "segment", "stage"],
        message: "segment.stage must be one of new, active, fading, lapsed, or a list of them",
      },
      { path: ["rule", "strength"], message: "strength is required when action is boost" },
      {
        path: ["customerId"],
        message: 'customerId is required (or "anonymous": true for a visitor who is not signed in)',
      },
    ]);
    const notJson = await call("/preview", "{");
    expect(notJson.status).toBe(400);
    expect(await storedRules()).toEqual(stored);
  });

  it("needs the admin key", async () => {
    expect((await call("/preview", { rule: boostBooks, customerId: coffeeShopper }, null)).status).toBe(401);
    expect((await call("/preview", { rule: boostBooks, customerId: coffeeShopper }, "test-api-key")).status).toBe(401);
    expect((await call("/simulate", { rule: boostBooks }, null)).status).toBe(401);
  });
});

describe("POST /v1/admin/rules/simulate", () => {
  it("measures an exclusion on the planted shop: coffee leaves every shelf from first place", async () => {
    const stored = await storedRules();
    const response = await call("/simulate", { rule: excludeCoffee });
    expect(response.status, await response.clone().text()).toBe(200);
    const { data } = simulateResponseSchema.parse(await response.json());
    expect(data).toMatchObject({
      shoppers,
      storefrontShoppers: shoppers,
      storefrontAffected: shoppers,
      storefrontAffectedShare: 1,
      affected: shoppers,
      affectedShare: 1,
      targetShoppers: shoppers,
      enteredShare: 0,
      leftShare: 1,
      // First of four categories before; after, off the shelf (the fifth category takes its place, as on
      // the storefront), counted one past the four shown: 1 − 5.
      meanRankChange: -4,
    });
    expect(data.categoriesLosingExposure).toEqual(["coffee"]);
    const coffee = data.categoryExposure.find((entry) => entry.categoryId === "coffee");
    expect(coffee?.categoryName).toBe("Coffee");
    expect(coffee?.after).toBe(0);
    expect(coffee?.before).toBeGreaterThanOrEqual(shoppers);
    expect(coffee?.change).toBe(-(coffee?.before ?? 0));
    expect(await storedRules()).toEqual(stored);
  });

  it("measures a boost: books moves to the top of every shelf", async () => {
    const { data } = simulateResponseSchema.parse(await (await call("/simulate", { rule: boostBooks })).json());
    expect(data.shoppers).toBe(shoppers);
    expect(data.targetInCatalog).toBe(true);
    expect(data.affectedShare).toBe(1);
    expect(data).toMatchObject({ targetShoppers: shoppers, enteredShare: 0, leftShare: 0 });
    // From second (books buyers) or third (the rest) to first.
    expect(data.meanRankChange).toBeGreaterThan(1);
    expect(data.meanRankChange).toBeLessThan(2);
    expect(data.categoriesLosingExposure).not.toContain("books");
  });

  it("agrees with the previews of every sampled shopper", async () => {
    // Leaving out one tea product touches only the shelves that show it.
    const rule = { name: "No tea-1", action: "exclude", targetType: "product", targetId: "tea-1" };
    const simulated = simulateResponseSchema.parse(await (await call("/simulate", { rule })).json()).data;
    const ids = await summarisedCustomers();
    let changed = 0;
    let shown = 0;
    for (const id of ids) {
      const preview = previewResponseSchema.parse(await (await call("/preview", { rule, customerId: id })).json()).data;
      if (preview.changed) changed++;
      if (preview.before.some((item) => item.id === "tea-1")) shown++;
      expect(preview.after.some((item) => item.id === "tea-1")).toBe(false);
    }
    expect(ids).toHaveLength(shoppers);
    expect(simulated.affected).toBe(changed);
    expect(simulated).toMatchObject({
      targetShoppers: shown,
      leftShare: Math.round((shown / shoppers) * 10_000) / 10_000,
    });
    // Some shelves but not all (3 of 12 when written), so the agreement is not trivially all or none.
    expect(shown).toBeGreaterThan(0);
    expect(shown).toBeLessThan(shoppers);
  });

  it("looks at the requested sample size, the same shoppers each time", async () => {
    const first = simulateResponseSchema.parse(await (await call("/simulate", { rule: boostBooks, sample: 5 })).json());
    const second = simulateResponseSchema.parse(
      await (await call("/simulate", { rule: boostBooks, sample: 5 })).json(),
    );
    expect(first.data.shoppers).toBe(5);
    expect(second.data).toEqual(first.data);
  });

  it("validates the rule and the sample size", async () => {
    const message = "sample must be a whole number from 1 to 1000";
    await expectInvalid(await call("/simulate", { rule: boostBooks, sample: 0 }), ["sample"], message);
    await expectInvalid(await call("/simulate", { rule: boostBooks, sample: 1001 }), ["sample"], message);
    await expectInvalid(await call("/simulate", { rule: boostBooks, sample: 2.5 }), ["sample"], message);
    await expectInvalid(
      await call("/simulate", { rule: { ...excludeCoffee, slot: 2 } }),
      ["rule", "slot"],
      "slot only applies when action is pin, not exclude",
    );
  });
});

describe("a draft that edits a saved rule (ruleId)", () => {
  const rules = (method: string, path: string, body?: unknown) =>
    SELF.fetch(`http://patron.test/v1/admin/rules${path}`, {
      method,
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${adminKey}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it("takes the saved rule's place instead of adding to it, and answers 404 for a rule that does not exist", async () => {
    const created = await rules("POST", "", boostBooks);
    expect(created.status, await created.clone().text()).toBe(201);
    const { data: saved } = (await created.json()) as { data: { id: string } };
    try {
      // The saved rule, unchanged: nothing changes.
      const same = previewResponseSchema.parse(
        await (await call("/preview", { rule: boostBooks, ruleId: saved.id, customerId: coffeeShopper })).json(),
      ).data;
      expect(same.changed).toBe(false);
      expect(same.categories.before[0]?.id).toBe("books");
      const sameOverAll = simulateResponseSchema.parse(
        await (await call("/simulate", { rule: boostBooks, ruleId: saved.id })).json(),
      ).data;
      expect(sameOverAll.affected).toBe(0);
      // Disabling it, in the draft: books leaves the top, as it would once saved.
      const off = previewResponseSchema.parse(
        await (
          await call("/preview", {
            rule: { ...boostBooks, enabled: false },
            ruleId: saved.id,
            customerId: coffeeShopper,
          })
        ).json(),
      ).data;
      expect(off.changed).toBe(true);
      expect(off.categories.after[0]?.id).toBe("coffee");

      const unknown = await call("/preview", { rule: boostBooks, ruleId: "r_nobody", customerId: coffeeShopper });
      expect(unknown.status).toBe(404);
      expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe(
        "No rule with id r_nobody.",
      );
      expect((await call("/simulate", { rule: boostBooks, ruleId: "r_nobody" })).status).toBe(404);
      await expectInvalid(
        await call("/simulate", { rule: boostBooks, ruleId: "" }),
        ["ruleId"],
        "ruleId must not be empty",
      );
    } finally {
      expect((await rules("PATCH", `/${saved.id}`, { enabled: false })).status).toBe(200);
    }
  });

  it("keeps the saved rule's place among the others: two pins on one slot keep their order", async () => {
    const pinBooks = { name: "Books first", action: "pin", targetType: "category", targetId: "books", slot: 1 };
    const pinTea = { name: "Tea first", action: "pin", targetType: "category", targetId: "tea", slot: 1 };
    const ids: string[] = [];
    try {
      for (const rule of [pinBooks, pinTea]) {
        const created = await rules("POST", "", rule);
        expect(created.status, await created.clone().text()).toBe(201);
        ids.push(((await created.json()) as { data: { id: string } }).data.id);
      }
      const same = previewResponseSchema.parse(
        await (await call("/preview", { rule: pinBooks, ruleId: ids[0], customerId: coffeeShopper })).json(),
      ).data;
      expect(same.categories.before.slice(0, 2).map((category) => category.id)).toEqual(["tea", "books"]);
      expect(same.changed).toBe(false);
      const overAll = simulateResponseSchema.parse(
        await (await call("/simulate", { rule: pinBooks, ruleId: ids[0] })).json(),
      ).data;
      expect(overAll.affected).toBe(0);
    } finally {
      for (const id of ids) expect((await rules("PATCH", `/${id}`, { enabled: false })).status).toBe(200);
    }
  });
});

describe("a customer without a storefront account", () => {
  it("is previewed with the personal shelf they would get once signed in, and says so (storefrontAccount)", async () => {
    const withAccount = previewResponseSchema.parse(
      await (await call("/preview", { rule: boostBooks, customerId: coffeeShopper })).json(),
    ).data;
    expect(withAccount.storefrontAccount).toBe(true);
    const order = anOrder({
      id: "steer-store-only",
      channel: "store",
      placedAt: new Date(now - 20 * day).toISOString(),
      identifiers: { loyalty: "steer-store-only" },
      lines: [{ productId: "tea-0", categoryId: "tea", quantity: 1, unitPrice: 12, listPrice: 12 }],
    });
    expect((await api.postOrders([order])).status).toBe(200);
    const [row] = await storeRows<{ id: string }>(
      "SELECT customer_id AS id FROM orders WHERE id = ?",
      "steer-store-only",
    );
    const storeOnly = previewResponseSchema.parse(
      await (await call("/preview", { rule: boostBooks, customerId: row?.id })).json(),
    ).data;
    expect(storeOnly.storefrontAccount).toBe(false);
    expect(storeOnly.after[0]?.categoryId).toBe("books");
    // The simulation counts them apart: one of the sampled shoppers sees no shelf online today.
    const simulated = simulateResponseSchema.parse(await (await call("/simulate", { rule: boostBooks })).json()).data;
    expect(simulated.shoppers).toBe(shoppers + 1);
    expect(simulated.storefrontShoppers).toBe(shoppers);
    // Every shelf changes, the store-only customer's too; online, the storefront shoppers' alone.
    expect(simulated).toMatchObject({
      affected: shoppers + 1,
      storefrontAffected: shoppers,
      storefrontAffectedShare: 1,
    });
  });
});
