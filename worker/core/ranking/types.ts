// Plain-data shapes the ranking core reads and returns. They mirror the D1 rows the worker loads
// (db/schema.ts: customer_category_stats, customer_summaries, products) but import nothing from db/.
// No behaviour lives here; scoring is in categories.ts and items.ts.

/** One customer × category aggregate (customer_category_stats). Dates are ISO 8601 strings. */
export interface CategoryStat {
  categoryId: string;
  orders: number;
  purchaseDays: number;
  units: number;
  spend: number;
  firstPurchaseAt: string;
  lastPurchaseAt: string;
  /** Unit-weighted mean price paid. */
  avgUnitPrice: number;
  discountedUnits: number;
  webUnits: number;
  storeUnits: number;
}

/** Product views in a category (widget events), newest view date. */
export interface BrowseSignal {
  categoryId: string;
  views: number;
  lastViewedAt: string;
}

/** The customer summary (customer_summaries) fields ranking uses. */
export interface CustomerSummary {
  orders: number;
  purchaseDays: number;
  firstOrderAt: string;
  lastOrderAt: string;
  spend: number;
  webOrders: number;
  storeOrders: number;
  appOrders: number;
  phoneOrders: number;
  units: number;
  discountedUnits: number;
}

export interface Product {
  id: string;
  title: string;
  categoryId: string;
  url: string | null;
  imageUrl: string | null;
  listPrice: number;
  salePrice: number | null;
  inStock: boolean;
  active: boolean;
}

/**
 * A machine-readable reason. `code` names the signal; the other fields are numbers or short labels
 * so the console can render them and tests can assert on them without parsing sentences.
 */
export interface Reason {
  code: string;
  [field: string]: string | number | boolean | undefined;
}

export interface Explained {
  reasons: Reason[];
  /** One short human sentence summarising the strongest reasons. */
  sentence: string;
}

export interface RankedCategory extends Explained {
  categoryId: string;
  score: number;
}

export interface RankedItem extends Explained {
  productId: string;
  categoryId: string;
  title: string;
  url: string | null;
  imageUrl: string | null;
  /** What the shopper pays now: the sale price when on sale, else the list price. */
  price: number;
  listPrice: number;
  onSale: boolean;
  score: number;
}
