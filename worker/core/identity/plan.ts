// One resolution step for the worker: given the region of the identity graph touched by new evidence
// (every observation reachable from it through non-shared identifiers), decide each identifier's
// customer, each order's customer, the merges, and which customer summaries must be rebuilt.
// Pure: the worker loads the region and writes the plan in one D1 batch.

import { assignCustomers } from "./assign.ts";
import {
  defaultResolveOptions,
  type IdentityRef,
  type Observation,
  owningIdentity,
  type ResolveOptions,
  resolveIdentities,
} from "./resolve.ts";

export interface IdentityState {
  customerId: string | null;
  shared: boolean;
}

export interface Region {
  /** Every observation in the region, stored and new. Order sources are `order:<id>`. */
  observations: Observation[];
  /** Stored state of identities already known. */
  identities: ReadonlyMap<string, IdentityState>;
  /** Stored customer of each order already known, by source. */
  orderCustomers: ReadonlyMap<string, string>;
  /** Orders per existing customer. */
  customerWeight: ReadonlyMap<string, number>;
  /** Customers that currently hold at least one identity (the other ones are single-order customers). */
  identityOwners: ReadonlySet<string>;
  /**
   * Stored-shared keys whose sharing is decided again from the region's observations, which hold every
   * verified observation of them (they started the region): after an erasure removed some of their
   * evidence. Any other stored-shared key stays shared.
   */
  recheckShared?: ReadonlySet<string>;
}

export interface ResolutionPlan {
  /** Identities whose state is new or changed. */
  identityChanges: (IdentityRef & IdentityState)[];
  /** Orders (by source) whose customer is new or changed. */
  orderChanges: { source: string; customerId: string }[];
  /** Merged-away customers, the survivor, and an observation that linked them (for the merge log). */
  merges: { from: string; into: string; source: string }[];
  created: string[];
  /** Customers whose summaries change (gained or lost orders). */
  affectedCustomers: string[];
  /**
   * Of those, the ones whose summaries must be recomputed from all their orders: they lost or gained a
   * stored order, or took part in a merge. A customer who only gains new orders has them added
   * (profile/customer-totals.ts).
   */
  recomputeCustomers: string[];
  refused: [string, string][];
}

export const orderSource = (orderId: string) => `order:${orderId}`;

export function planResolution(
  region: Region,
  newCustomerId: () => string,
  options: ResolveOptions = defaultResolveOptions,
): ResolutionPlan {
  const storedShared = new Set(
    [...region.identities]
      .filter(([key, state]) => state.shared && !region.recheckShared?.has(key))
      .map(([key]) => key),
  );
  const partition = resolveIdentities(region.observations, options, storedShared);
  const shared = new Set(partition.shared);
  const currentOwner = new Map([...region.identities].map(([key, state]) => [key, state.customerId]));
  const assignment = assignCustomers({
    components: partition.components,
    currentOwner,
    customerWeight: region.customerWeight,
    newCustomerId,
  });

  const customerOfKey = new Map<string, string>();
  partition.components.forEach((component, index) => {
    for (const ref of component) customerOfKey.set(ref.key, assignment.customerOfComponent[index] as string);
  });

  const identityChanges: (IdentityRef & IdentityState)[] = [];
  const seen = new Set<string>();
  for (const observation of region.observations) {
    for (const ref of observation.identities) {
      if (seen.has(ref.key)) continue;
      seen.add(ref.key);
      const next: IdentityState = { customerId: customerOfKey.get(ref.key) ?? null, shared: shared.has(ref.key) };
      const stored = region.identities.get(ref.key);
      if (!stored || stored.customerId !== next.customerId || stored.shared !== next.shared)
        identityChanges.push({ ...ref, ...next });
    }
  }

  const componentCustomers = new Set(assignment.customerOfComponent);
  const affected = new Set<string>();
  const recompute = new Set<string>();
  const orderChanges: { source: string; customerId: string }[] = [];
  const created = [...assignment.created];
  for (const observation of region.observations) {
    if (!observation.source.startsWith("order:")) continue;
    const stored = region.orderCustomers.get(observation.source);
    const owner = owningIdentity(observation.identities, shared, options);
    let customerId = owner ? customerOfKey.get(owner.key) : undefined;
    if (!customerId) {
      // Every identifier is shared or blocked: the order is a customer of its own. It keeps the
      // customer it has when that customer holds nothing else (no identity), so the answer is the
      // same whichever order the evidence came in.
      const solo = stored && !componentCustomers.has(stored) && !region.identityOwners.has(stored) ? stored : undefined;
      customerId = solo ?? newCustomerId();
      if (!solo) created.push(customerId);
    }
    if (customerId !== stored) {
      orderChanges.push({ source: observation.source, customerId });
      affected.add(customerId);
      if (stored) {
        affected.add(stored);
        recompute.add(stored);
        recompute.add(customerId);
      }
    }
  }
  for (const { from, into } of assignment.merges) {
    for (const customer of [from, into]) {
      affected.add(customer);
      recompute.add(customer);
    }
  }
  const merges = assignment.merges.map(({ from, into }) => {
    const linking = region.observations.find(
      (o) =>
        o.identities.some((ref) => currentOwner.get(ref.key) === from) &&
        o.identities.some((ref) => customerOfKey.get(ref.key) === into && currentOwner.get(ref.key) !== from),
    );
    return { from, into, source: linking?.source ?? "" };
  });
  return {
    identityChanges,
    orderChanges,
    merges,
    created,
    affectedCustomers: [...affected].sort(),
    recomputeCustomers: [...recompute].sort(),
    refused: partition.refused,
  };
}
