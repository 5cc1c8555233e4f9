/** @jsxRuntime classic */
/** @jsx h */
// The shelf's markup: a skeleton with the same geometry as the cards (so nothing moves when data
// arrives), then a row of product cards. Stateless: index.tsx re-renders it when the data changes.
// Short tag names (i, b, em, p, ins) keep the byte budget; the stylesheet gives each one its role.
// biome-ignore lint/correctness/noUnusedImports: `h` is the classic JSX factory named at the top of the file.
import { h } from "preact";
import { observeImpression, type ShelfEvent, trackClick } from "./events.ts";
import { type FormatPrice, reasonOf, withRecommendation } from "./format.ts";
import type { Item, Shelf } from "./types.ts";

export interface ShelfProps {
  /** The heading: data-title for a shopper the API knows, data-title-anonymous for the popular shelf. */
  title: string;
  limit: number;
  format: FormatPrice;
  /** undefined while loading. */
  shelf?: Shelf | null;
}

function ProductCard({ item, shelf, format }: { item: Item; shelf: Shelf; format: FormatPrice }) {
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
      {/* The name holds all the visible text (WCAG 2.5.3), the struck price read out as "was". */}
      <a
        href={withRecommendation(item.url, shelf.recommendationId)}
        aria-label={`${item.title}, ${price}${onSale ? `, was ${was}` : ""}${reason ? `. ${reason}` : ""}`}
        onClick={() => trackClick(event)}
        onAuxClick={(click) => click.button === 1 && trackClick(event)}
      >
        <i>{item.imageUrl && <img src={item.imageUrl} alt="" loading="lazy" />}</i>
        <p>{reason}</p>
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
    // The region is named by its heading, not by a second copy of it.
    <section aria-labelledby={title ? "title" : undefined} aria-busy={shelf ? undefined : "true"}>
      <h2 id="title">{title}</h2>
      {/* role="list": list-style:none makes Safari drop the list semantics otherwise. */}
      {/* biome-ignore lint/a11y/noRedundantRoles: see above */}
      <ul role="list">
        {shelf
          ? shelf.items
              .slice(0, limit)
              .map((item) => <ProductCard key={item.id} item={item} shelf={shelf} format={format} />)
          : Array.from({ length: limit }, () => (
              <li>
                <i />
              </li>
            ))}
      </ul>
    </section>
  );
}
