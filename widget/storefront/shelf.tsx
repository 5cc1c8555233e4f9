/** @jsxRuntime classic */
/** @jsx h */
// The shelf's markup: a skeleton with the same geometry as the cards (so nothing moves when data
// arrives), then a row of product cards. Stateless: index.tsx builds it again when the data changes.
// Short tag names (i, b, em, p, ins) keep the byte budget; the stylesheet gives each one its role.
import { h } from "preact";
import { placementPattern } from "../../worker/core/placement.ts";
import { observeImpression, type ShelfEvent, trackClick } from "./events.ts";
import { type FormatPrice, withRecommendation } from "./format.ts";
import type { CartButton, Item, Shelf } from "./types.ts";

/** What a card tells the page's click and addToCart hooks. */
export interface CardDetail {
  element: HTMLElement;
  placement?: string;
  item: Item;
  position: number;
  recommendationId: string;
  /** The click hook's: the browser's click (or middle-button auxclick); preventDefault() keeps the page where it is. */
  event?: MouseEvent;
}

export interface ShelfProps {
  /** The heading, never empty: data-title for a shopper the API knows, data-title-anonymous for the popular shelf. */
  title: string;
  /** A token's skeleton: whether the API knows the shopper is not known yet, so the heading keeps its space unseen. */
  unsure?: boolean;
  limit: number;
  /** The heading's level, 1 to 6 (data-heading-level). */
  level: number;
  format: FormatPrice;
  host: HTMLElement;
  placement?: string;
  /** The answer the items come from; undefined while loading. */
  shelf?: Shelf | null;
  /** This shelf's share of the answer (no product another shelf on the page shows). */
  items?: Item[];
  /** Calls the page's hooks: "click", and "addToCart" when `cart` is set. */
  emit: (hook: string, detail: CardDetail) => void;
  /** Draws a card's "Add to cart" button (v1-cart.js), once the page registered an addToCart hook. */
  cart?: CartButton;
  /** The "Add to cart" button's text: data-cart-label (v1-cart.js falls back to English). */
  cartLabel?: string;
}

function ProductCard({ item, position, shelf, ...props }: ShelfProps & { item: Item; position: number; shelf: Shelf }) {
  const { format, emit, placement } = props;
  const beacon: ShelfEvent = {
    recommendationId: shelf.recommendationId,
    arm: shelf.arm,
    productId: item.id,
    categoryId: item.categoryId,
    // Only a placement the API takes (the rule its query schema uses, worker/core/placement.ts): a shelf
    // whose data-placement it refused shows the cached popular shelf, and a beacon carrying that placement
    // would be refused with every shelf's events in it. The hooks still see the page's own.
    placement: placementPattern.test(placement as string) ? placement : undefined,
    position,
  };
  const detail: CardDetail = {
    element: props.host,
    placement,
    item,
    position,
    recommendationId: shelf.recommendationId,
  };
  // The hook runs before the browser follows the link: a single-page app can route itself instead.
  const click = (event: MouseEvent) => {
    trackClick(beacon);
    emit("click", { ...detail, event });
  };
  const listPrice = item.listPrice ?? item.price;
  const onSale = item.price < listPrice;
  const price = format(item.price);
  const was = format(listPrice);
  return (
    <li
      ref={(element) => {
        if (element) observeImpression(element, beacon);
      }}
    >
      {/* Named by its own text, in the order it shows (WCAG 2.5.3), the struck price read out as "was". */}
      {/* One tab stop for the row (roving tabindex): the arrow keys move between cards. */}
      <a
        href={withRecommendation(item.url, shelf.recommendationId)}
        tabIndex={position > 1 ? -1 : 0}
        onClick={click}
        onAuxClick={(mouse) => mouse.button === 1 && click(mouse)}
      >
        {/* alt="": a picture that fails to load shows no broken-image icon, only the tile's neutral ground. */}
        <i>{item.imageUrl && <img src={item.imageUrl} alt="" loading="lazy" />}</i>
        {/* The API's sentence. Should it be anything but text, Preact renders nothing for a plain object. */}
        <p title={item.reason}>{item.reason}</p>
        <b>{item.title}</b>
        <em>
          {onSale ? <ins>{price}</ins> : price}
          {/* Between the prices, not inside <s>: Chromium then keeps its spaces in the name. */}
          {onSale && <span class="was"> was </span>}
          {onSale && <s>{was}</s>}
        </em>
      </a>
      {props.cart?.(h, props.cartLabel, item.title, () => {
        trackClick(beacon);
        emit("addToCart", detail);
      })}
    </li>
  );
}

/** 1, or -1 on a right-to-left row, which runs from the right (getComputedStyle, not :dir(rtl), which older browsers refuse). */
const forwards = (row: Element) => (getComputedStyle(row).direction === "rtl" ? -1 : 1);

/** Left and right arrows, Home and End move focus (and the row's one tab stop) between the cards' links and buttons. */
function moveFocus(key: KeyboardEvent): void {
  const stops = [...(key.currentTarget as Element).querySelectorAll<HTMLElement>("a,button")];
  const at = stops.indexOf(key.target as HTMLElement);
  // On a right-to-left page the right arrow goes back in DOM order.
  const step = forwards(key.currentTarget as Element);
  const next = stops[{ ArrowRight: at + step, ArrowLeft: at - step, Home: 0, End: stops.length - 1 }[key.key] ?? -1];
  if (next) {
    key.preventDefault();
    for (const stop of stops) stop.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  }
}

/**
 * Marks each scroll button by whether the row can scroll its way. One that cannot is aria-disabled, never
 * disabled: a focused Next that reached the row's end keeps focus (a disabled one would drop it on the page,
 * and moving it to a card would make the next Enter follow that card's link), and pressing it again scrolls
 * nothing. It leaves the tab order (tabIndex -1) until it can scroll again, so Tab passes it by.
 */
function markEnds(row: HTMLElement): void {
  // Negative on a right-to-left row, which scrolls leftwards from 0.
  const scrolled = Math.abs(row.scrollLeft);
  const next = row.previousSibling as HTMLElement;
  [scrolled + row.clientWidth + 1 < row.scrollWidth, scrolled > 0].forEach((can, index) => {
    const button = (index ? next.previousSibling : next) as HTMLElement;
    // The attribute, not the ariaDisabled property, which Firefox before 119 lacks (the styles read the attribute).
    button.setAttribute("aria-disabled", `${!can}`);
    button.tabIndex = can ? 0 : -1;
  });
}

/** Previous (-1) and Next (1): scroll the row by most of its width; at its end, nothing moves. */
const scrollButton = (way: number, name: string, arrow: string) => (
  <button
    type="button"
    aria-label={name}
    onClick={(click) => {
      const row = (click.currentTarget as Element).parentNode!.lastChild as HTMLElement;
      row.scrollBy(way * forwards(row) * row.clientWidth * 0.8, 0);
    }}
  >
    {arrow}
  </button>
);

export function ShelfView(props: ShelfProps) {
  const { title, limit, shelf, items } = props;
  // data-heading-level: the page's outline decides the heading's level.
  const Heading = `h${props.level}` as "h2";
  // Loading: "true" while the answer has not come.
  const busy = items ? undefined : "true";
  return (
    // The region is named by its heading (never empty: index.tsx defaults both), not by a second copy of it.
    // While it loads a screen reader meets no heading and no name, only a busy section: the heading may yet
    // turn out wrong (a signed-in shopper the API does not know gets data-title-anonymous) or the shelf
    // end up hidden (nothing to show). The region, named by its heading, comes with the cards.
    <section aria-labelledby={items && "title"} aria-busy={busy}>
      <Heading id="title" class={props.unsure ? "unsure" : undefined} aria-hidden={busy}>
        {title}
      </Heading>
      {/* No scroll buttons for the skeleton: nothing in it to scroll to. */}
      {items && scrollButton(-1, "Previous", "‹")}
      {items && scrollButton(1, "Next", "›")}
      {/* role="list": list-style:none makes Safari drop the list semantics otherwise. */}
      {/* The skeleton is hidden from assistive technology: a list of empty items would be read out. */}
      <ul
        // biome-ignore lint/a11y/noRedundantRoles: see above
        role="list"
        onKeyDown={moveFocus}
        // Only a row of cards has scroll buttons (a skeleton's can still scroll: a grid's snap points move it).
        onScroll={items && ((scroll) => markEnds(scroll.currentTarget as HTMLElement))}
        // Marked again after each render, and whenever the row's size changes (the stylesheet has loaded, the page was resized).
        ref={(row) => {
          if (row && items) {
            markEnds(row);
            const sizes = new ResizeObserver(() => markEnds(row));
            sizes.observe(row);
            return () => sizes.disconnect();
          }
        }}
        aria-hidden={busy}
      >
        {shelf && items
          ? items.map((item, index) => (
              <ProductCard key={item.id} {...props} item={item} position={index + 1} shelf={shelf} />
            ))
          : Array.from({ length: limit }, () => (
              <li>
                <i />
              </li>
            ))}
      </ul>
    </section>
  );
}
