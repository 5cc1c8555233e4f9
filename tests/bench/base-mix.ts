// The scale bench's seeded base, in one place: which generated customers are known how (a web account,
// a store loyalty card, both), and the identifiers their orders carry. Pure and deterministic: the
// scale bench, the shard route bench and the benches seeding as they do (shard, migrate, nightly,
// profile) take it, and tests/core/bench-base-mix.test.ts checks its shares.
import type { WireOrder } from "../../db/seed/wire.ts";
import type { OrderInput } from "../../worker/orders/orders.schemas.ts";

/**
 * The seeded base's shape, as an omnichannel retailer's customers arrive: change it here.
 * - `shares`, of the generated customers (they sum to 1): `web`, known only by a storefront account,
 *   their orders web orders; `store`, known only by a loyalty card, their orders store orders; `both`,
 *   holding an account and a card, joined: their orders alternate between the channels, store orders
 *   with the card and web orders with the account, the first store order carrying both (the join).
 * - Every web order carries the email typed at checkout, unverified: it joins nobody, and is kept owned
 *   by nobody (docs/identity.md). `receiptEmailShare` of store orders carry it too (an e-receipt).
 * - `sharedEmailShare` of the pairs of neighbouring customers (0 and 1, 2 and 3, …) type one household
 *   email: one identity seen on both customers' orders.
 */
export const baseMix = {
  shares: { web: 0.5, store: 0.25, both: 0.25 },
  receiptEmailShare: 0.25,
  sharedEmailShare: 0.1,
} as const;

export type SeededKind = keyof typeof baseMix.shares;

/**
 * A point of [0, 1) for `n` from a golden-ratio sequence: each kind lands at about its share in every
 * stretch of the base, and customer `n` is the same kind at any base size (deterministic, no draws).
 * The receipts and household emails use other irrational steps, so they do not follow the kinds.
 */
const spread = (n: number, step = 0.6180339887498949) => (n * step) % 1;

/** How generated customer `index` is known (baseMix.shares). */
export function kindOf(index: number): SeededKind {
  const at = spread(index);
  const { web, store } = baseMix.shares;
  return at < web ? "web" : at < web + store ? "store" : "both";
}

/** Whether generated customer `index` holds a storefront account (and so may ask for a shelf). */
export const hasAccount = (index: number) => kindOf(index) !== "store";

/**
 * The first generated customer from `index` on who holds an account: recommendations are asked for by
 * signed-in shoppers only, so the benches pick their shoppers among these.
 */
export function accountHolderFrom(index: number): number {
  if (baseMix.shares.store >= 1) throw new Error("the base mix gives no customer an account: nobody asks for a shelf");
  let at = index;
  while (!hasAccount(at)) at++;
  return at;
}

/** The share of the base holding an account. */
export const accountShare = 1 - baseMix.shares.store;

export const accountOf = (index: number) => `scale-${index}`;
export const loyaltyOf = (index: number) => `LC-scale-${index}`;
/** The email customer `index` types: its own, or its household's, shared with its neighbour. */
export const emailOf = (index: number) =>
  spread(Math.floor(index / 2), 0.7548776662466927) < baseMix.sharedEmailShare
    ? `household-${Math.floor(index / 2)}@example.com`
    : `scale-${index}@example.com`;
/**
 * Customer `index`'s generated orders with the channel and identifiers its kind gives them (baseMix):
 * web orders with the account and the typed email, store orders with the card (a share with the
 * e-receipt email), a joined customer's orders alternating, store first, its first store order with
 * the card and the account.
 */
export function ordersOfKind(index: number, orders: readonly WireOrder[]): OrderInput[] {
  const kind = kindOf(index);
  const account = accountOf(index);
  const loyalty = loyaltyOf(index);
  const email = emailOf(index);
  const homeStore = `store-${String((index % 12) + 1).padStart(2, "0")}`;
  return orders.map((order, k) => {
    const inStore = kind === "store" || (kind === "both" && k % 2 === 0);
    const receipt = spread(index * 64 + k, 0.5698402909980532) < baseMix.receiptEmailShare;
    const identifiers = !inStore
      ? { account, email }
      : kind === "both" && k === 0
        ? { loyalty, account }
        : receipt
          ? { loyalty, email }
          : { loyalty };
    return {
      ...order,
      id: `${account}-${order.id}`,
      channel: inStore ? "store" : "web",
      storeId: inStore ? (order.storeId ?? homeStore) : null,
      identifiers,
    } as OrderInput;
  });
}
