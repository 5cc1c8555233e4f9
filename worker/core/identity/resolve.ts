// Identity resolution: which identifiers belong to one person. A pure function of the set of
// observations (identifiers seen together on one order or identify call), so the same evidence in
// any arrival order gives the same partition. It does not choose customer ids; assign.ts does.
//
// 1. Shared values: a value whose observations, taken together, mention more values of some kind
//    than one customer may hold (a household phone seen with two loyalty numbers, a family card with
//    five) is marked shared and links nobody.
// 2. The remaining links are applied as a union-find in one canonical order: strongest kinds first
//    (account, loyalty, then email, phone, card, device), ties broken by key. A union that would give a
//    component more values of a kind than allowed (two loyalty numbers) is refused. Because the order
//    is canonical, not arrival order, the result does not depend on when evidence arrived.
//
// Only verified links (trust.ts) take part: `identities` are the links an observation's sender vouched
// for; `unverified` ones are carried for the record and never read here, so they can neither join,
// split, nor mark anything shared.

import type { IdentifierKind } from "../vocabulary.ts";

export interface IdentityRef {
  kind: IdentifierKind;
  /** Unique across kinds, e.g. `email:<hash>`. */
  key: string;
}

export interface Observation {
  source: string;
  /** Verified links: the only ones that join customers and count toward limits and sharing. */
  identities: IdentityRef[];
  /** Links seen but not vouched for (a typed email, a device cookie): recorded, never resolved. */
  unverified?: IdentityRef[];
}

export interface ResolveOptions {
  /** Most values of a kind that one customer may hold. */
  maxPerCustomer: Record<IdentifierKind, number>;
  /** Which link wins when two disagree: higher first. */
  priority: Record<IdentifierKind, number>;
  /** Kinds that are never marked shared (a storefront login is one person by definition). */
  neverShared: IdentifierKind[];
}

export const defaultResolveOptions: ResolveOptions = {
  maxPerCustomer: { account: 1, loyalty: 1, email: 4, phone: 3, card: 6, device: 30 },
  priority: { account: 6, loyalty: 5, email: 4, phone: 3, card: 2, device: 1 },
  neverShared: ["account"],
};

export interface Partition {
  /** Components of non-shared identities, each sorted by key; sorted by their first key. */
  components: IdentityRef[][];
  /** Keys that link nobody, sorted. */
  shared: string[];
  /** Links that were refused because they would break a per-kind limit, as [key, key]. */
  refused: [string, string][];
}

const byKey = (a: IdentityRef, b: IdentityRef) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

function uniqueRefs(observations: Observation[]): Map<string, IdentityRef> {
  const refs = new Map<string, IdentityRef>();
  for (const observation of observations) for (const ref of observation.identities) refs.set(ref.key, ref);
  return refs;
}

/** Keys whose observations mention more values of another kind than one customer may hold. */
export function findSharedKeys(
  observations: Observation[],
  options: ResolveOptions = defaultResolveOptions,
): Set<string> {
  const seenWith = new Map<string, Map<IdentifierKind, Set<string>>>();
  for (const observation of observations) {
    for (const ref of observation.identities) {
      let byKind = seenWith.get(ref.key);
      if (!byKind) {
        byKind = new Map();
        seenWith.set(ref.key, byKind);
      }
      for (const other of observation.identities) {
        if (other.key === ref.key || other.kind === ref.kind) continue;
        const keys = byKind.get(other.kind) ?? new Set<string>();
        byKind.set(other.kind, keys);
        keys.add(other.key);
      }
    }
  }
  const shared = new Set<string>();
  for (const ref of uniqueRefs(observations).values()) {
    if (options.neverShared.includes(ref.kind)) continue;
    for (const [kind, keys] of seenWith.get(ref.key) ?? []) {
      if (keys.size > options.maxPerCustomer[kind]) shared.add(ref.key);
    }
  }
  return shared;
}

/**
 * `alreadyShared` carries values known to be shared from evidence not passed in (sharing only grows
 * as evidence arrives, so it is safe to keep; only an erasure, which removes evidence, decides a
 * value's sharing again from all of its remaining observations: plan.ts, `recheckShared`).
 */
export function resolveIdentities(
  observations: Observation[],
  options: ResolveOptions = defaultResolveOptions,
  alreadyShared: ReadonlySet<string> = new Set(),
): Partition {
  const refs = uniqueRefs(observations);
  const shared = findSharedKeys(observations, options);
  for (const key of alreadyShared) if (refs.has(key)) shared.add(key);
  const rank = (ref: IdentityRef) => options.priority[ref.kind];
  const strongestFirst = (a: IdentityRef, b: IdentityRef) => rank(b) - rank(a) || byKey(a, b);

  // Star edges from each observation's strongest usable identity to the others connect it fully.
  const edges: [IdentityRef, IdentityRef][] = [];
  for (const observation of observations) {
    const usable = observation.identities.filter((ref) => !shared.has(ref.key)).sort(strongestFirst);
    const [anchor, ...rest] = usable;
    if (anchor) for (const ref of rest) if (ref.key !== anchor.key) edges.push([anchor, ref]);
  }
  edges.sort(([a1, b1], [a2, b2]) => rank(a2) - rank(a1) || rank(b2) - rank(b1) || byKey(a1, a2) || byKey(b1, b2));

  const parent = new Map<string, string>();
  const counts = new Map<string, Partial<Record<IdentifierKind, number>>>();
  for (const ref of refs.values()) {
    if (shared.has(ref.key)) continue;
    parent.set(ref.key, ref.key);
    counts.set(ref.key, { [ref.kind]: 1 });
  }
  const find = (key: string): string => {
    let root = key;
    while (parent.get(root) !== root) root = parent.get(root) as string;
    for (let node = key; node !== root; ) {
      const next = parent.get(node) as string;
      parent.set(node, root);
      node = next;
    }
    return root;
  };

  const refused: [string, string][] = [];
  for (const [a, b] of edges) {
    const rootA = find(a.key);
    const rootB = find(b.key);
    if (rootA === rootB) continue;
    const countA = counts.get(rootA) ?? {};
    const countB = counts.get(rootB) ?? {};
    const merged: Partial<Record<IdentifierKind, number>> = { ...countA };
    let allowed = true;
    for (const [kind, n] of Object.entries(countB) as [IdentifierKind, number][]) {
      merged[kind] = (merged[kind] ?? 0) + n;
      if ((merged[kind] ?? 0) > options.maxPerCustomer[kind]) allowed = false;
    }
    if (!allowed) {
      refused.push([a.key, b.key]);
      continue;
    }
    // The smaller key becomes the root, so roots are canonical too.
    const [root, child] = rootA < rootB ? [rootA, rootB] : [rootB, rootA];
    parent.set(child, root);
    counts.set(root, merged);
    counts.delete(child);
  }

  const groups = new Map<string, IdentityRef[]>();
  for (const ref of refs.values()) {
    if (shared.has(ref.key)) continue;
    const root = find(ref.key);
    const group = groups.get(root);
    if (group) group.push(ref);
    else groups.set(root, [ref]);
  }
  const components = [...groups.values()].map((group) => group.sort(byKey));
  components.sort((a, b) => byKey(a[0] as IdentityRef, b[0] as IdentityRef));
  return { components, shared: [...shared].sort(), refused };
}

/**
 * The identity an order or call belongs to: its strongest non-shared identifier (priority decides
 * which link wins when its identifiers ended up in different customers). Null when all are shared.
 */
export function owningIdentity(
  identities: IdentityRef[],
  shared: ReadonlySet<string>,
  options: ResolveOptions = defaultResolveOptions,
): IdentityRef | null {
  let best: IdentityRef | null = null;
  for (const ref of identities) {
    if (shared.has(ref.key)) continue;
    if (
      !best ||
      options.priority[ref.kind] > options.priority[best.kind] ||
      (options.priority[ref.kind] === options.priority[best.kind] && ref.key < best.key)
    ) {
      best = ref;
    }
  }
  return best;
}
