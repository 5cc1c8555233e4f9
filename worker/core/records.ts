// Records keyed by the retailer's ids (categories, products, stores) or the shopper's (a browsed
// category). A plain object inherits "constructor", "toString", "valueOf" … from Object.prototype, so
// `record[id]` of such an id finds a function where it should find nothing, and `record["__proto__"] =`
// replaces the object's prototype instead of adding a key. Such records are built with
// Object.fromEntries (which adds every key as its own, "__proto__" too) and read with `own`.

/** The record's own value for `key`: undefined when it has none, never a member of Object.prototype. */
export function own<T>(record: Readonly<Record<string, T>> | null | undefined, key: string): T | undefined {
  return record != null && Object.hasOwn(record, key) ? record[key] : undefined;
}
