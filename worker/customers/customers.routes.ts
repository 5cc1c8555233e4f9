// The unified customer, for the console and support tools (admin key): by identifier or by id.
import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { requireAdminKey } from "../http/auth.ts";
import { retailerTimeZone } from "../http/config.ts";
import { ApiError, invalidRequest, notFound } from "../http/errors.ts";
import { parseOrThrow, queryParams } from "../http/validate.ts";
import { identityKey, normalizeForKey } from "../identity/identity.keys.ts";
import { customerIdByKey } from "../identity/identity.repo.ts";
import { phoneRegion } from "../identity/phone.ts";
import { orderSuppressionKey } from "../suppressions/suppressions.repo.ts";
import { loadCustomer, survivingCustomerId } from "./customers.repo.ts";
import { customerParamsSchema, lookupQuerySchema } from "./customers.schemas.ts";
import { eraseCustomer, exportCustomer } from "./erasure.repo.ts";

const orderLimit = 200;

export const customersRoutes = new Hono<AppEnv>()
  .use("*", requireAdminKey)
  .get("/lookup", async (c) => {
    const { kind, value } = queryParams(c, lookupQuerySchema);
    const normalized = normalizeForKey(kind, value, phoneRegion(c.env.PHONE_DEFAULT_REGION));
    if (!normalized.ok) throw invalidRequest(`That ${kind} is not usable as an identifier: ${normalized.reason}.`);
    const found = await customerIdByKey(
      c.var.db,
      await identityKey(kind, normalized.value, c.env.IDENTITY_HASH_SECRET),
    );
    if (!found) throw notFound(`No customer holds that ${kind}.`);
    if (!found.customerId)
      throw notFound(
        found.shared
          ? `That ${kind} is shared by several customers, so it identifies nobody.`
          : `That ${kind} was only ever sent unverified, so it identifies nobody.`,
      );
    const survivor = (await survivingCustomerId(c.var.db, found.customerId)) ?? found.customerId;
    return c.json({
      data: await loadCustomer(c.var.db, survivor, orderLimit, c.var.now, retailerTimeZone(c.env.RETAILER_TIME_ZONE)),
    });
  })
  .get("/:id", async (c) => {
    const { id } = parseOrThrow(customerParamsSchema, c.req.param(), "path");
    const survivor = await survivingCustomerId(c.var.db, id);
    if (!survivor) throw notFound(`No customer with id ${id}.`);
    return c.json({
      data: await loadCustomer(c.var.db, survivor, orderLimit, c.var.now, retailerTimeZone(c.env.RETAILER_TIME_ZONE)),
    });
  })
  .get("/:id/export", async (c) => {
    const { id } = parseOrThrow(customerParamsSchema, c.req.param(), "path");
    const survivor = await survivingCustomerId(c.var.db, id);
    if (!survivor) throw notFound(`No customer with id ${id}.`);
    c.header("Cache-Control", "no-store");
    return c.json({
      data: {
        customerId: survivor,
        exportedAt: c.var.now.toISOString(),
        ...(await exportCustomer(c.var.db, survivor)),
      },
    });
  })
  .delete("/:id", async (c) => {
    const { id } = parseOrThrow(customerParamsSchema, c.req.param(), "path");
    const survivor = await survivingCustomerId(c.var.db, id);
    if (!survivor) throw notFound(`No customer with id ${id}.`);
    const erasure = await eraseCustomer(
      c.var.db,
      survivor,
      (orderId) => orderSuppressionKey(orderId, c.env.IDENTITY_HASH_SECRET),
      c.var.now,
    );
    if (erasure.kind === "busy")
      throw new ApiError(409, "conflict", "New orders keep reaching this customer right now; retry the erasure.");
    return c.json({ data: { customerId: survivor, deleted: erasure.deleted, suppressed: erasure.suppressed } });
  });
