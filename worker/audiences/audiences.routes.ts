// Saved audiences (admin key or console session): a customer-list filter with a name and an optional
// webhook that the nightly job tells who joined and who left (worker/audiences/audiences.sync.ts).
// The signing secret is in the answer to POST, and to a PATCH with rotateSecret or that adds the first
// webhook URL, only.
import { Hono } from "hono";
import type { AppEnv, Db } from "../env.ts";
import { requireAdminKey } from "../http/auth.ts";
import { ApiError, notFound } from "../http/errors.ts";
import { jsonBody, parseOrThrow } from "../http/validate.ts";
import { enabledMatchKeys, type MatchKeyName } from "../identity/match-keys.ts";
import { targetsInCatalog } from "../rules/rules.repo.ts";
import { shardedAudienceCount } from "../shards/console.ts";
import { shardCount } from "../shards/shards.ts";
import {
  type AudienceRow,
  countMembers,
  deleteAudience,
  findAudience,
  insertAudience,
  listAudiences,
  recordSize,
  updateAudience,
} from "./audiences.repo.ts";
import {
  type AudienceFilters,
  type AudienceSettings,
  type AudienceView,
  audienceParamsSchema,
  createAudienceSchema,
  maxAudiences,
  updateAudienceSchema,
} from "./audiences.schemas.ts";
import { newSigningSecret, sealSecret } from "./secrets.ts";
import { allowsLocalWebhooks } from "./webhook-url.ts";

const settingsOf = (env: AppEnv["Bindings"]): AudienceSettings => ({
  allowLocalWebhooks: allowsLocalWebhooks(env.AUDIENCE_WEBHOOKS_ALLOW_LOCAL),
  enabledMatchKeys: enabledMatchKeys(env.EXPORT_MATCH_KEYS),
});

/**
 * Whether the catalog has each audience's lapsing category now (an active product in it): a typo
 * ("kitchn") saves, and lists nobody, so every answer says so, as rules say it of their target.
 */
async function catalogCheck(db: Db, rows: readonly AudienceRow[]) {
  const categories = rows.flatMap((row) => {
    const category = (row.filters as AudienceFilters).lapsedCategory;
    return category ? [{ targetType: "category" as const, targetId: category }] : [];
  });
  const inCatalog = await targetsInCatalog(db, categories);
  return (row: AudienceRow) => {
    const category = (row.filters as AudienceFilters).lapsedCategory;
    return category ? inCatalog({ targetType: "category", targetId: category }) : null;
  };
}

function view(row: AudienceRow, inCatalog: (row: AudienceRow) => boolean | null): AudienceView {
  return {
    id: row.id,
    name: row.name,
    filters: row.filters as AudienceFilters,
    lapsedCategoryInCatalog: inCatalog(row),
    webhookUrl: row.webhookUrl,
    matchKeys: row.matchKeys as MatchKeyName[],
    size: row.size,
    sizedAt: row.sizedAt,
    lastDelivery:
      row.lastDeliveryAt && row.lastDeliveryRunId && row.lastDeliveryOutcome
        ? {
            at: row.lastDeliveryAt,
            runId: row.lastDeliveryRunId,
            outcome: row.lastDeliveryOutcome as "delivered" | "failed" | "no_changes",
            statusCode: row.lastDeliveryStatusCode,
            error: row.lastDeliveryError,
            joined: row.lastDeliveryJoined ?? 0,
            left: row.lastDeliveryLeft ?? 0,
          }
        : null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/**
 * Sizes a saved audience now, as each nightly run sizes it (its filters over the scores in force,
 * counted along the customer list's index; on every shard with customer shards), so the marketer sees
 * how many it holds without waiting for the night. A count that fails leaves the size to the next run.
 */
async function sizeNow(env: AppEnv["Bindings"], db: Db, id: string, filters: AudienceFilters, now: Date) {
  try {
    const size = shardCount(env) > 0 ? await shardedAudienceCount(env, filters) : await countMembers(db, filters);
    await recordSize(db, id, size, now, filters);
  } catch (error) {
    console.warn(
      JSON.stringify({ warning: "audience left unsized until the next nightly run", id, error: String(error) }),
    );
  }
}

const idOf = (param: Record<string, string>) => parseOrThrow(audienceParamsSchema, param, "path").id;
const noSuchAudience = (id: string) => notFound(`No audience with id ${id}.`);
/** Two audiences with one name could not be told apart in the console, in exports or at the receiver. */
const nameInUse = (name: string) => {
  const message = `an audience named "${name}" is saved already: choose another name`;
  return new ApiError(409, "conflict", `An audience named "${name}" is saved already: choose another name.`, [
    { path: ["name"], message },
  ]);
};

export const audienceRoutes = new Hono<AppEnv>()
  .use("*", requireAdminKey)
  .get("/", async (c) => {
    const rows = await listAudiences(c.var.db);
    const inCatalog = await catalogCheck(c.var.db, rows);
    return c.json({ data: { audiences: rows.map((row) => view(row, inCatalog)) } });
  })
  .post("/", async (c) => {
    const body = await jsonBody(c, createAudienceSchema(settingsOf(c.env)));
    const id = `aud_${crypto.randomUUID().replaceAll("-", "")}`;
    const secret = newSigningSecret();
    const at = c.var.now.toISOString();
    const row = {
      id,
      name: body.name,
      filters: body.filters,
      webhookUrl: body.webhookUrl ?? null,
      matchKeys: body.matchKeys,
      secret: await sealSecret(secret, id, c.env.IDENTITY_HASH_SECRET),
      createdAt: at,
      updatedAt: at,
    };
    const outcome = await insertAudience(c.var.db, row, maxAudiences);
    if (outcome === "name_taken") throw nameInUse(body.name);
    if (outcome === "limit")
      throw new ApiError(
        409,
        "conflict",
        `At most ${maxAudiences} audiences can be saved: delete one you no longer use first.`,
      );
    await sizeNow(c.env, c.var.db, id, body.filters, c.var.now);
    const saved = await findAudience(c.var.db, id);
    if (!saved) throw noSuchAudience(id);
    // The secret is shown this once: store it with the receiver, it verifies `webhook-signature`.
    return c.json({ data: { ...view(saved, await catalogCheck(c.var.db, [saved])), secret } }, 201);
  })
  .get("/:id", async (c) => {
    const id = idOf(c.req.param());
    const row = await findAudience(c.var.db, id);
    if (!row) throw noSuchAudience(id);
    return c.json({ data: view(row, await catalogCheck(c.var.db, [row])) });
  })
  .patch("/:id", async (c) => {
    const id = idOf(c.req.param());
    const { rotateSecret, ...change } = await jsonBody(c, updateAudienceSchema(settingsOf(c.env)));
    const before = await findAudience(c.var.db, id);
    if (!before) throw noSuchAudience(id);
    // A first webhook gets a fresh secret in this answer: the one made at creation was never shown for it.
    const secret = rotateSecret || (change.webhookUrl && !before.webhookUrl) ? newSigningSecret() : undefined;
    const sealed = secret ? await sealSecret(secret, id, c.env.IDENTITY_HASH_SECRET) : undefined;
    const updated = await updateAudience(c.var.db, id, { ...change, secret: sealed }, c.var.now);
    if (updated === "name_taken") throw nameInUse(change.name ?? before.name);
    if (!updated) throw noSuchAudience(id);
    // New filters: a new size (the old one counted another list).
    if (change.filters) await sizeNow(c.env, c.var.db, id, change.filters, c.var.now);
    const row = change.filters ? await findAudience(c.var.db, id) : updated;
    if (!row) throw noSuchAudience(id);
    return c.json({ data: { ...view(row, await catalogCheck(c.var.db, [row])), ...(secret ? { secret } : {}) } });
  })
  .delete("/:id", async (c) => {
    const id = idOf(c.req.param());
    if (!(await deleteAudience(c.var.db, id, c.var.now))) throw noSuchAudience(id);
    return c.body(null, 204);
  });
