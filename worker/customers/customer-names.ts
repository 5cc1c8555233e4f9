// The names a person reads on a customer's orders: each line's product title and category name, and
// each category's name in the summary, from the catalog (the isolate's copy: no read per line). A
// product or category the catalog does not hold (or no longer sells) keeps a null name; its id stays.
import { productIndex } from "../core/ranking/items.ts";
import type { Product } from "../core/ranking/types.ts";
import { own } from "../core/records.ts";
import type { CustomerView } from "../shards/customer-reads.ts";

export interface CatalogNames {
  products: readonly Product[];
  categoryNames: Readonly<Record<string, string>>;
}

/** The customer with `productTitle` and `categoryName` on each order line and `categoryName` on each summary category. */
export function withCatalogNames(customer: CustomerView, catalog: CatalogNames) {
  const products = productIndex(catalog.products);
  const categoryName = (id: string) => own(catalog.categoryNames, id) ?? null;
  return {
    ...customer,
    orders: customer.orders.map((order) => ({
      ...order,
      lines: order.lines.map((line) => ({
        ...line,
        productTitle: products.get(line.productId)?.title ?? null,
        categoryName: categoryName(line.categoryId),
      })),
    })),
    summary: customer.summary && {
      ...customer.summary,
      categories: customer.summary.categories.map((category) => ({
        ...category,
        categoryName: categoryName(category.categoryId),
      })),
    },
  };
}
