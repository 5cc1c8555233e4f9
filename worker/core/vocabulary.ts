// The product's closed word lists, each written once: sales channels, lifecycle stages, value tiers,
// discount sensitivities and identifier kinds. Zod enums, segment rules, the seed generator, the CLI
// and (through `import type`) the widget build on these. Values only: what a stage or tier means is
// decided in models/lifecycle.ts and models/preferences.ts. The strings are on the wire and in D1, so
// a value here is never renamed, and the order is the one lists and messages show.

/** Where an order was placed. */
export const channels = ["web", "store", "app", "phone"] as const;
export type Channel = (typeof channels)[number];

/** Where a customer stands in their buying rhythm (models/lifecycle.ts). */
export const lifecycleStages = ["new", "active", "fading", "lapsed"] as const;
export type LifecycleStage = (typeof lifecycleStages)[number];

/** A customer's predicted value against the population's CLV quantiles, best first (models/lifecycle.ts). */
export const valueTiers = ["top", "high", "medium", "low"] as const;
export type ValueTier = (typeof valueTiers)[number];

/** How much of a customer's buying happens below list price (models/preferences.ts). */
export const discountSensitivities = ["full_price", "mixed", "deal_seeker"] as const;
export type DiscountSensitivity = (typeof discountSensitivities)[number];

/** The kinds of identifier an order or identify call may carry (identity/normalize.ts, resolve.ts). */
export const identifierKinds = ["account", "email", "phone", "loyalty", "card", "device"] as const;
export type IdentifierKind = (typeof identifierKinds)[number];
