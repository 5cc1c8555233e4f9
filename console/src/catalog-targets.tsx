// The catalog's categories or products nearest to what a field holds (GET /v1/admin/rules/targets: id,
// name or title, a typo allowed per three characters), for the fields that take a catalog id: a rule's
// Target id and the customer list's lapsing category.
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.ts";

/** A category or product the catalog has, as GET /v1/admin/rules/targets answers it. */
export interface CatalogTarget {
  id: string;
  name: string;
}

/**
 * The catalog's categories or products nearest to what the Target id field holds, asked for a moment
 * after typing stops; none for `*` or when the request fails (the field still takes any id).
 */
export function useCatalogTargets(type: string, typed: string): CatalogTarget[] {
  const [targets, setTargets] = useState<CatalogTarget[]>([]);
  // Another type's list is not offered while this type's is asked for.
  useEffect(() => setTargets([]), [type]);
  useEffect(() => {
    const query = typed.trim();
    // Nothing typed asks nothing: a field's list shows what is nearest to what is in it.
    if (query === "*" || query === "") {
      setTargets([]);
      return;
    }
    let current = true;
    const timer = setTimeout(() => {
      api<{ targets: CatalogTarget[] }>(
        "GET",
        `/v1/admin/rules/targets?type=${encodeURIComponent(type)}&q=${encodeURIComponent(query)}`,
      ).then(
        (data) => current && setTargets(data.targets),
        () => current && setTargets([]),
      );
    }, 200);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [type, typed]);
  return targets;
}

/**
 * The five nearest as buttons under a field ("In the catalog: Handbags (handbags)"), each putting its
 * id in the field (`pick`) and giving the keyboard back to it (`fieldId`); nothing once the field holds
 * one of their ids.
 */
export function CatalogSuggestions({
  targets,
  typed,
  fieldId,
  pick,
}: {
  targets: CatalogTarget[];
  typed: string;
  fieldId: string;
  pick: (id: string) => void;
}) {
  const value = typed.trim();
  if (targets.length === 0 || targets.some((each) => each.id === value)) return null;
  return (
    <div class="suggestions">
      <small class="muted">In the catalog:</small>
      {targets.slice(0, 5).map((each) => (
        <button
          key={each.id}
          type="button"
          class="link"
          onClick={() => {
            pick(each.id);
            // The list goes once the id is the catalog's: the keyboard stays on the field.
            document.getElementById(fieldId)?.focus();
          }}
        >
          {each.name === each.id ? each.id : `${each.name} (${each.id})`}
        </button>
      ))}
    </div>
  );
}
