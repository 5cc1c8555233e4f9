// The slice of the GET /v1/recommendations answer the widget reads. Parsed defensively (api.ts):
// the widget must survive a field it does not expect rather than break a page.

export interface Reason {
  code?: string;
  text?: string;
}

export interface Item {
  id: string;
  title: string;
  url?: string;
  imageUrl?: string | null;
  /** What the shopper pays today (the sale price when on sale). */
  price: number;
  /** The full price; a struck-through list price shows only when `price < listPrice`. */
  listPrice?: number;
  categoryId?: string;
  /** The human sentence, as `reason` or as the `text` of a machine-readable reason. */
  reason?: string;
  reasons?: Reason[];
}

export interface Shelf {
  recommendationId: string;
  arm?: string;
  items: Item[];
}
