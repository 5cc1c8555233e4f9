// The suppression list an erasure leaves (admin key): check whether an erased order id or identifier
// is suppressed, count what is, and lift one so new data carrying it is accepted again.
import { Hono } from "hono";
import type { AppEnv, Env } from "../env.ts";
import { requireAdminKey } from "../http/auth.ts";
import { invalidRequest, notFound } from "../http/errors.ts";
import { jsonBody, queryParams } from "../http/validate.ts";
import { identityKey, normalizeForKey } from "../identity/identity.keys.ts";
import { phoneRegion } from "../identity/phone.ts";
import { liftSuppressionInShards } from "../shards/console.ts";
import { shardCount } from "../shards/shards.ts";
import { isSuppressed, liftSuppression, orderSuppressionKey, suppressionCounts } from "./suppressions.repo.ts";
import { type SuppressionInput, suppressionQuerySchema, suppressionSchema } from "./suppressions.schemas.ts";

/**
 * The suppression key of a raw value: computed the way ingestion computes it (phones to E.164 in
 * PHONE_DEFAULT_REGION), so it matches.
 */
async function keyOf({ kind, value }: SuppressionInput, env: Env): Promise<string> {
  const secret = env.IDENTITY_HASH_SECRET;
  if (kind === "order") return orderSuppressionKey(value, secret);
  const normalized = normalizeForKey(kind, value, phoneRegion(env.PHONE_DEFAULT_REGION));
  if (!normalized.ok) throw invalidRequest(`That ${kind} is not usable as an identifier: ${normalized.reason}.`);
  return identityKey(kind, normalized.value, secret);
}

export const suppressionsRoutes = new Hono<AppEnv>()
  .use("*", requireAdminKey)
  .get("/", async (c) => {
    const { kind, value } = queryParams(c, suppressionQuerySchema);
    if (kind === undefined && value === undefined) {
      return c.json({ data: { counts: await suppressionCounts(c.var.db) } });
    }
    if (kind === undefined || value === undefined) throw invalidRequest("Send both kind and value, or neither.");
    const key = await keyOf({ kind, value }, c.env);
    return c.json({ data: { kind, suppressed: await isSuppressed(c.var.db, key) } });
  })
  .delete("/", async (c) => {
    const input = await jsonBody(c, suppressionSchema);
    const key = await keyOf(input, c.env);
    // The shards' own lists first: until the main list's key goes, a retry finds it and lifts them again.
    if (shardCount(c.env) > 0) await liftSuppressionInShards(c.env, key);
    if (!(await liftSuppression(c.var.db, key))) throw notFound(`That ${input.kind} is not suppressed.`);
    return c.json({ data: { kind: input.kind, lifted: true } });
  });
