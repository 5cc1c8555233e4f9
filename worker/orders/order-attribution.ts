// Which new orders' `recommendationId` counts: the id must have been served to the order's shopper
// (a customer holding one of the order's verified identifiers, one merged into it, or one of its
// verified storefront accounts: an unverified link unlocks nothing, attribution included), list at least one of the order's products, and have been issued at most
// ORDER_ATTRIBUTION_DAYS before the order was placed. An ignored attribution is not stored; the order is.

import type { Db } from "../env.ts";
import type { HashedIdentity } from "../identity/identity.keys.ts";
import { ownersOf } from "../recommendations/attribution.repo.ts";
import { type AttributionSettings, attributionOutcome, type IgnoredReason } from "../recommendations/attribution.ts";
import type { OrderInput } from "./orders.schemas.ts";

/** The orders whose recommendationId is ignored, by id, each with why. */
export async function ignoredAttributions(
  db: Db,
  orders: readonly { order: OrderInput; identities: readonly HashedIdentity[] }[],
  settings: AttributionSettings,
): Promise<Map<string, IgnoredReason>> {
  const ignored = new Map<string, IgnoredReason>();
  const attributed = orders.filter(({ order }) => order.recommendationId);
  if (attributed.length === 0) return ignored;
  const owners = await ownersOf(
    db,
    attributed.flatMap(({ identities }) =>
      identities.filter((identity) => identity.trust === "verified").map((identity) => identity.key),
    ),
  );
  for (const { order, identities: all } of attributed) {
    const identities = all.filter((identity) => identity.trust === "verified");
    const family = new Set(identities.flatMap((identity) => owners.get(identity.key)?.family ?? []));
    const outcome = await attributionOutcome(
      order.recommendationId as string,
      {
        claimant: {
          customerIds: [...family],
          accountKeys: identities.filter((identity) => identity.kind === "account").map((identity) => identity.key),
        },
        itemIds: order.lines.map((line) => line.productId),
        at: new Date(order.placedAt),
        windowDays: settings.orderWindowDays,
      },
      settings.secrets,
    );
    if ("ignored" in outcome) ignored.set(order.id, outcome.ignored);
  }
  return ignored;
}
