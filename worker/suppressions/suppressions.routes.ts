// The suppression list an erasure leaves (admin key): check whether an erased order id or identifier
// is suppressed (GET with query parameters, or POST /lookup with the value out of the URL), count what
// is, and lift one so new data carrying it is accepted again.
import { Hono } from "hono";
import { unlistErasedKey } from "../customers/erasure.repo.ts";
import type { AppEnv, Db, Env } from "../env.ts";
import { requireAdminKey } from "../http/auth.ts";
import { invalidRequest, notFound } from "../http/errors.ts";
import { jsonBody, queryParams } from "../http/validate.ts";
import {
  foldedEraKey,
  foldedKey,
  foldedValue,
  identityKey,
  normalizeForKey,
  suppressionKeysOf,
} from "../identity/identity.keys.ts";
import { phoneRegion } from "../identity/phone.ts";
import { liftSuppressionInShards } from "../shards/console.ts";
import { shardCount } from "../shards/shards.ts";
import {
  isSuppressed,
  liftSuppression,
  orderSuppressionKey,
  suppressedKeys,
  suppressionCounts,
} from "./suppressions.repo.ts";
import { type SuppressionInput, suppressionQuerySchema, suppressionSchema } from "./suppressions.schemas.ts";

/**
 * The suppression key of a raw value: computed the way ingestion computes it (phones to E.164 in
 * PHONE_DEFAULT_REGION), so it matches; and for an account or device id its folded key where it has
 * one (foldedKey), which ingestion checks too.
 */
async function keysOf({ kind, value }: SuppressionInput, env: Env): Promise<{ key: string; folded: string | null }> {
  const secret = env.IDENTITY_HASH_SECRET;
  if (kind === "order") return { key: await orderSuppressionKey(value, secret), folded: null };
  const normalized = normalizeForKey(kind, value, phoneRegion(env.PHONE_DEFAULT_REGION));
  if (!normalized.ok) throw invalidRequest(`That ${kind} is not usable as an identifier: ${normalized.reason}.`);
  return {
    key: await identityKey(kind, normalized.value, secret),
    folded: await foldedKey(kind, value, normalized.value, secret),
  };
}

/** Whether a value is on the list: suppressed too when an erasure made while account ids were NFKC-folded listed the folded form. */
async function suppressedAnswer(input: SuppressionInput, env: Env, db: Db) {
  const { key, folded } = await keysOf(input, env);
  const onList = await suppressedKeys(db, suppressionKeysOf([{ key, foldedKey: folded }]));
  return { kind: input.kind, suppressed: onList.size > 0 };
}

export const suppressionsRoutes = new Hono<AppEnv>()
  .use("*", requireAdminKey)
  .get("/", async (c) => {
    const { kind, value } = queryParams(c, suppressionQuerySchema);
    if (kind === undefined && value === undefined) {
      return c.json({ data: { counts: await suppressionCounts(c.var.db) } });
    }
    if (kind === undefined || value === undefined) throw invalidRequest("Send both kind and value, or neither.");
    return c.json({ data: await suppressedAnswer({ kind, value }, c.env, c.var.db) });
  })
  // The same check with the value in a JSON body, out of the URL (and so of request logs).
  .post("/lookup", async (c) => {
    const input = await jsonBody(c, suppressionSchema);
    return c.json({ data: await suppressedAnswer(input, c.env, c.var.db) });
  })
  .delete("/", async (c) => {
    const input = await jsonBody(c, suppressionSchema);
    const { key, folded } = await keysOf(input, c.env);
    // Off the events database's list of what erasures took out (an order sent again then has its
    // conversion recorded), and the shards' own lists, first: until the main list's key goes, a retry
    // finds it and does both again. While it is on the main list, the key is refused all the same.
    await unlistErasedKey(c.var.eventsDb, key);
    if (shardCount(c.env) > 0) await liftSuppressionInShards(c.env, key);
    if (!(await liftSuppression(c.var.db, key))) {
      if (folded && (await isSuppressed(c.var.db, foldedEraKey(folded))))
        throw notFound(
          `That ${input.kind} is not suppressed as sent, but its NFKC-folded form ${JSON.stringify(foldedValue(input.value))} is (an erasure made while ${input.kind} ids were folded), and that keeps it refused: lift that form.`,
        );
      throw notFound(`That ${input.kind} is not suppressed.`);
    }
    return c.json({ data: { kind: input.kind, lifted: true } });
  });
