// Erasure that sticks, for a guest checkout: the erased guest's own unverified identifiers are
// suppressed, never one somebody else was seen with. On the sharded store the other customer's
// sighting is in another shard, which the erasing shard asks (worker/shards/console-shard.ts).
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ingestResultSchema } from "../../worker/orders/orders.schemas.ts";
import { adminKey, anOrder, client, uniquePrefix, verified } from "../fixtures/builders.ts";

const api = client(SELF);

async function ingest(orders: unknown[]) {
  const response = await api.postOrders(orders);
  expect(response.status, await response.clone().text()).toBe(200);
  return ingestResultSchema.parse(await response.json()).data;
}

describe("erasure that sticks, for a guest", () => {
  it("suppresses a guest's own unverified identifiers, but never one somebody else was seen with", async () => {
    const p = uniquePrefix("guest");
    const guestEmail = `${p}@mail.test`;
    const phone = `+1 415 555 ${String(Math.floor(Math.random() * 9000) + 1000)}`;
    // A guest checkout (email and phone typed, unverified); a stranger once typed the same phone.
    const guest = await ingest([anOrder({ id: `${p}-g1`, identifiers: { email: guestEmail, phone } })]);
    await ingest([anOrder({ id: `${p}-s1`, identifiers: { account: `${p}-stranger`, phone } })]);
    const customerId = guest.results[0]?.customerId as string;
    const erased = await api.call("DELETE", `/v1/customers/${customerId}`, undefined, adminKey);
    expect(erased.status, await erased.clone().text()).toBe(200);
    const body = (await erased.json()) as { data: { suppressed: { orders: number; identifiers: number } } };
    expect(body.data.suppressed).toEqual({ orders: 1, identifiers: 1 });
    // New data with the guest's email is suppressed, even sent verified.
    expect(
      await ingest([anOrder({ id: `${p}-g2`, identifiers: { email: verified(guestEmail), account: `${p}-new` } })]),
    ).toMatchObject({ accepted: 0, suppressed: 1 });
    // The phone stays known (the stranger still saw it): a lookup says it identifies nobody.
    const looked = await api.lookup("phone", phone);
    expect(looked.status).toBe(404);
    expect(await looked.text()).toContain("only ever sent unverified");
    // The phone the stranger was seen with too is nobody's alone: it is not suppressed.
    expect(await ingest([anOrder({ id: `${p}-s2`, identifiers: { phone } })])).toMatchObject({
      accepted: 1,
      suppressed: 0,
    });
  });
});
