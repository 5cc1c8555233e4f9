// The storefront widget's own shelf (widget/storefront/shelf.tsx ShelfView), rendered in the console
// exactly as the widget renders it on a shop: in an open shadow root whose only stylesheet is the
// widget's, adopted as a constructed stylesheet (the console's CSP has no 'unsafe-inline', and a
// constructed sheet needs none). The console's build swaps the widget's events module for a silent one
// (widget-events.ts), so the preview records no impression or click.
import { render } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { priceFormatter } from "../../widget/storefront/format.ts";
import { ShelfView } from "../../widget/storefront/shelf.tsx";
import widgetCss from "../../widget/storefront/styles.css";
import type { Shelf } from "../../widget/storefront/types.ts";

let sheet: CSSStyleSheet | undefined;

function widgetSheet(): CSSStyleSheet {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(widgetCss as string);
  }
  return sheet;
}

export function ShelfPreview({
  title,
  shelf,
  limit,
  currency,
}: {
  title: string;
  shelf: Shelf;
  limit: number;
  currency: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const shadow = element.shadowRoot ?? element.attachShadow({ mode: "open" });
    shadow.adoptedStyleSheets = [widgetSheet()];
    const root = (shadow.firstElementChild as HTMLElement | null) ?? shadow.appendChild(document.createElement("div"));
    render(
      <ShelfView
        title={title}
        limit={limit}
        level={2}
        format={priceFormatter(currency)}
        shelf={shelf}
        items={shelf.items.slice(0, limit)}
        host={element}
        emit={() => {}}
      />,
      root,
    );
    return () => render(null, root);
  }, [title, shelf, limit, currency]);
  return <div ref={host} class="shelf-preview" />;
}
