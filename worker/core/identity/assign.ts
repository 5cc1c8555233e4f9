// Maps a freshly resolved partition onto existing customer ids: which customer survives a merge,
// which customers are merged away, and where new customers start. Pure: ids for new customers come
// from the caller. It does not decide which identifiers belong together; resolve.ts does.

import type { IdentityRef } from "./resolve.ts";

export interface AssignmentInput {
  components: IdentityRef[][];
  /** Current owner of each already-known identity key (absent or null when new or shared). */
  currentOwner: ReadonlyMap<string, string | null>;
  /** Orders per existing customer: the larger customer survives a merge. */
  customerWeight: ReadonlyMap<string, number>;
  newCustomerId: () => string;
}

export interface Assignment {
  /** Customer id of each component, parallel to `components`. */
  customerOfComponent: string[];
  /** Old customers that no longer own a component, and the customer that absorbed most of them. */
  merges: { from: string; into: string }[];
  created: string[];
}

export function assignCustomers(input: AssignmentInput): Assignment {
  const { components, currentOwner, customerWeight } = input;
  const candidates: { component: number; customer: string; keys: number }[] = [];
  components.forEach((component, index) => {
    const counts = new Map<string, number>();
    for (const ref of component) {
      const owner = currentOwner.get(ref.key);
      if (owner) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    for (const [customer, keys] of counts) candidates.push({ component: index, customer, keys });
  });
  // Strongest claims first: the customer with most orders keeps its id (smaller merges into larger),
  // then the one holding most of the component's identifiers; ids break ties so the result is stable,
  // compared from their last character: the nightly job samples customers by their ids' order from the
  // first (fitSampleQuery), and survivors chosen by that same order would gather at the low end of it
  // (the smaller of two random ids), over-representing merged customers in every fit.
  candidates.sort(
    (x, y) =>
      (customerWeight.get(y.customer) ?? 0) - (customerWeight.get(x.customer) ?? 0) ||
      y.keys - x.keys ||
      compareFromEnd(x.customer, y.customer) ||
      x.component - y.component,
  );

  const customerOfComponent: (string | undefined)[] = components.map(() => undefined);
  const assigned = new Set<string>();
  for (const { component, customer } of candidates) {
    if (customerOfComponent[component] !== undefined || assigned.has(customer)) continue;
    customerOfComponent[component] = customer;
    assigned.add(customer);
  }

  const created: string[] = [];
  const result = customerOfComponent.map((customer) => {
    if (customer !== undefined) return customer;
    const id = input.newCustomerId();
    created.push(id);
    return id;
  });

  // A customer left without a component was merged into the component holding most of its identifiers.
  const merges: { from: string; into: string }[] = [];
  const best = new Map<string, { component: number; keys: number }>();
  for (const { component, customer, keys } of candidates) {
    if (assigned.has(customer)) continue;
    const current = best.get(customer);
    if (!current || keys > current.keys || (keys === current.keys && component < current.component)) {
      best.set(customer, { component, keys });
    }
  }
  for (const [from, { component }] of [...best].sort(([a], [b]) => (a < b ? -1 : 1))) {
    merges.push({ from, into: result[component] as string });
  }
  return { customerOfComponent: result, merges, created };
}

/** Two ids compared character by character from their last: a tie-break that is stable and blind to their order. */
function compareFromEnd(x: string, y: string): number {
  for (let i = 1; i <= Math.max(x.length, y.length); i++) {
    const [a, b] = [x.charCodeAt(x.length - i), y.charCodeAt(y.length - i)];
    if (a !== b) return (Number.isNaN(a) ? -1 : a) - (Number.isNaN(b) ? -1 : b);
  }
  return 0;
}
