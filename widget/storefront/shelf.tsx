/** @jsxRuntime classic */
/** @jsx h */
// The shelf's markup: a skeleton with the same geometry as the cards (so nothing moves when data
// arrives), then a list of product cards. Stateless: index.tsx re-renders it when the data changes.
// Short tag names (i, b, em, p, ins) keep the byte budget; the stylesheet gives each one its role.
// biome-ignore lint/correctness/noUnusedImports: `h` is the classic JSX factory named at the top of the file.
import { h } from "preact";
import { observeImpression, type ShelfEvent, trackClick } from "./events.ts";
import { type FormatPrice, reasonOf, withRecommendation } from "./format.ts";
import type { Item, Shelf } from "./types.ts";

export interface ShelfProps {
  title: string;
  limit: number;
  format: FormatPrice;
  /** undefined while loading. */
  shelf?: Shelf | null;
}

function ProductCard({ item, index, shelf, format }: { item: Item; index: number; shelf: Shelf; format: FormatPrice }) {
  const event: ShelfEvent = {
    recommendationId: shelf.recommendationId,
    arm: shelf.arm,
    productId: item.id,
    categoryId: item.categoryId,
  };
  const listPrice = item.listPrice ?? item.price;
  const onSale = item.price < listPrice;
  const price = format(item.price);
  const was = format(listPrice);
  const reason = reasonOf(item);
  return (
    <li
      ref={(element) => {
        if (element) observeImpression(element, event);
      }}
    >
      <a
        href={withRecommendation(item.url, shelf.recommendationId)}
        aria-label={`${item.title}, ${price}${onSale ? `, was ${was}` : ""}`}
        aria-describedby={reason ? `why${index}` : undefined}
        onClick={() => trackClick(event)}
      >
        <i>
          {item.imageUrl && <img src={item.imageUrl} alt="" loading="lazy" />}
          {reason && <p id={`why${index}`}>{reason}</p>}
        </i>
        <b>{item.title}</b>
        <em>
          {onSale ? <ins>{price}</ins> : price}
          {onSale && <s>{was}</s>}
        </em>
      </a>
    </li>
  );
}

export function ShelfView({ title, limit, format, shelf }: ShelfProps) {
  return (
    <section aria-label={title || "Recommendations"} aria-busy={shelf ? undefined : "true"}>
      {title && <h2>{title}</h2>}
      {/* role="list": list-style:none makes Safari drop the list semantics otherwise. */}
      {/* biome-ignore lint/a11y/noRedundantRoles: see above */}
      <ul role="list">
        {shelf
          ? shelf.items
              .slice(0, limit)
              .map((item, index) => (
                <ProductCard key={item.id} item={item} index={index} shelf={shelf} format={format} />
              ))
          : Array.from({ length: limit }, () => (
              <li>
                <i />
                <b />
                <em />
              </li>
            ))}
      </ul>
    </section>
  );
}
