// GET /v1/customers/lookup and GET /v1/customers/:id with customer data in shards: the Worker asks the
// home shard of the key or of `customer:<id>`; the home answers from its own data, or forwards once to
// the shard its directory entry names (design rule 6), which answers from local data or "not found".
// A merged-away id follows merged_into there: a merged customer moves with its survivor.
import { customerKey, homeShard } from "../core/shards/placement.ts";
import { loadCustomer, survivingCustomerId } from "../customers/customers.repo.ts";
import type { Db } from "../env.ts";
import { customerIdByKey } from "../identity/identity.repo.ts";
import type { CurrentModels } from "../models/models.repo.ts";

/** What a customer read needs that is not in the shard: the clock, the page size, the models. */
export interface CustomerReadRequest {
  orderLimit: number;
  now: string;
  timeZone: string;
  models: CurrentModels;
}

export type CustomerView = Awaited<ReturnType<typeof loadCustomer>>;

export type CustomerRead =
  | { kind: "found"; customer: CustomerView }
  | { kind: "not_found" }
  /** The identifier is known but identifies nobody: shared by several customers, or only seen unverified. */
  | { kind: "shared" | "unverified" };

/** Where this shard reads from: itself, or the one its directory names for a key it is the home of. */
export interface ReadContext {
  db: Db;
  index: number;
  count: number;
  placementOf: (key: string) => Promise<number | null>;
  forward: (shard: number) => Promise<CustomerRead>;
}

async function read(db: Db, customerId: string, request: CustomerReadRequest): Promise<CustomerRead> {
  const survivor = await survivingCustomerId(db, customerId);
  if (!survivor) return { kind: "not_found" };
  const { orderLimit, now, timeZone, models } = request;
  return { kind: "found", customer: await loadCustomer(db, survivor, orderLimit, new Date(now), timeZone, models) };
}

/**
 * The customer with this id. At its home with no entry (or an entry naming the home), it is here;
 * an entry naming another shard forwards there once. A forwarded call only reads.
 */
export async function customerById(
  ctx: ReadContext,
  customerId: string,
  request: CustomerReadRequest,
  forwarded: boolean,
): Promise<CustomerRead> {
  if (!forwarded && homeShard(customerKey(customerId), ctx.count) === ctx.index) {
    const placed = await ctx.placementOf(customerKey(customerId));
    if (placed !== null && placed !== ctx.index) return ctx.forward(placed);
  }
  return read(ctx.db, customerId, request);
}

/** The customer holding an identity key: its home's entry says where its region is (none: unknown). */
export async function customerByKey(
  ctx: ReadContext,
  key: string,
  request: CustomerReadRequest,
  forwarded: boolean,
): Promise<CustomerRead> {
  if (!forwarded) {
    const placed = await ctx.placementOf(key);
    if (placed === null) return { kind: "not_found" };
    if (placed !== ctx.index) return ctx.forward(placed);
  }
  const found = await customerIdByKey(ctx.db, key);
  if (!found) return { kind: "not_found" };
  if (!found.customerId) return { kind: found.shared ? "shared" : "unverified" };
  return read(ctx.db, found.customerId, request);
}
