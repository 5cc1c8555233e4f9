// What a merchandiser may mean by a rule's target id: the catalog's categories or products nearest to
// what was typed, listed under the console's Target id field (a typo's fix included). A pure function (outside worker/core for its one package, the edit distance);
// the route reads the candidates (rules/rules.repo.ts, catalogTargets).
import { distance } from "fastest-levenshtein";

export interface TargetCandidate {
  id: string;
  /** The category's name or the product's title (the id where the catalog has none). */
  name: string;
}

/**
 * The most typos a match may have: one per three characters typed, at least one, at most three (two
 * letters swapped count as two: `candels` for `candles`).
 */
export function typosAllowed(typed: string): number {
  return Math.min(3, Math.max(1, Math.floor(typed.length / 3)));
}

/**
 * How near a candidate is to `typed` (lower is nearer), or null when it is not a match: the id itself,
 * the name itself, an id or a name starting with it, an id or a name holding it, then an id or a
 * name's word within a few typos of it (`heelz` for `heels`), fewer typos first. Case is ignored.
 */
export function targetNearness(typed: string, candidate: TargetCandidate): number | null {
  const query = typed.trim().toLowerCase();
  const id = candidate.id.toLowerCase();
  const name = candidate.name.toLowerCase();
  if (query === "") return null;
  if (id === query) return 0;
  if (name === query) return 1;
  if (id.startsWith(query)) return 2;
  if (name.startsWith(query)) return 3;
  if (id.includes(query)) return 4;
  if (name.includes(query)) return 5;
  // Fewer typos first; of as many, one in the id before one in a word of the name.
  const allowed = typosAllowed(query);
  const inId = distance(id, query);
  const inName = Math.min(...name.split(/\s+/).map((word) => distance(word, query)));
  if (inId <= allowed && inId <= inName) return 6 + 2 * inId;
  return inName <= allowed ? 7 + 2 * inName : null;
}

/**
 * The `limit` candidates nearest to `typed`, nearest first (ties by id); with nothing typed, the first
 * `limit` by name, so an empty field still shows what the catalog has.
 */
export function nearestTargets(
  typed: string,
  candidates: readonly TargetCandidate[],
  limit: number,
): TargetCandidate[] {
  if (typed.trim() === "")
    return [...candidates].sort((a, b) => a.name.localeCompare(b.name) || compare(a.id, b.id)).slice(0, limit);
  return candidates
    .map((candidate) => ({ candidate, nearness: targetNearness(typed, candidate) }))
    .filter((each): each is { candidate: TargetCandidate; nearness: number } => each.nearness !== null)
    .sort((a, b) => a.nearness - b.nearness || compare(a.candidate.id, b.candidate.id))
    .slice(0, limit)
    .map((each) => each.candidate);
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
