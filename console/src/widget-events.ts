// Stands in for the storefront widget's events module (widget/storefront/events.ts) in the console
// bundle (console/build.ts swaps it in): a shelf previewed in the console is not a shopper seeing it,
// so its cards send no impression and no click, and the bundle carries no beacon code at all.
import type { ShelfEvent } from "../../widget/storefront/events.ts";

export function configureEvents(_api: string, _token: string): void {}

export function trackClick(_event: ShelfEvent): void {}

export function observeImpression(_element: Element, _event: ShelfEvent): void {}
