// Impressions and clicks, sent to POST /v1/events with navigator.sendBeacon: a text/plain "simple"
// request (no CORS preflight) that the browser delivers even while the page unloads after a click.
import type { EventInput, EventType } from "../../worker/events/events.schemas.ts";

/** One card's beacon: the POST /v1/events fields the shelf sends (impressions and clicks only). */
export type ShelfEvent = Required<Pick<EventInput, "recommendationId" | "productId">> &
  Pick<EventInput, "arm" | "categoryId" | "placement" | "position"> & {
    type?: Extract<EventType, "impression" | "click">;
  };

let endpoint = "";
let shopperToken = "";
const impressed = new Set<string>();
const eventFor = new WeakMap<Element, ShelfEvent>();
const timers = new WeakMap<Element, ReturnType<typeof setTimeout>>();
let observer: IntersectionObserver | undefined;
/** Impressions counted and not sent yet: the cards that count together go in one beacon. */
const counted: ShelfEvent[] = [];

export function configureEvents(api: string, token: string): void {
  endpoint = `${api}/v1/events`;
  shopperToken = token;
}

function send(events: ShelfEvent[]): void {
  try {
    // A string body goes out as text/plain;charset=UTF-8: no preflight, and it survives navigation.
    navigator.sendBeacon(endpoint, JSON.stringify({ events, token: shopperToken || undefined }));
  } catch {}
}

/**
 * A click: the primary button, Enter on the focused card (the browser fires click), the middle button,
 * or the card's "Add to cart" button.
 */
export const trackClick = (event: ShelfEvent) => send([{ ...event, type: "click" }]);

/**
 * Counts the card once it has been at least half visible for a whole second while the page, the shelf
 * and its ancestors are visible. `visibility: hidden` or `opacity: 0` keeps a box on screen for the
 * IntersectionObserver, so checkVisibility() (where the browser has it) decides when the timer fires;
 * a hidden page or shelf is asked again a second later.
 */
function impress(element: Element): void {
  const event = eventFor.get(element) as ShelfEvent;
  const key = `${event.recommendationId}|${event.productId}`;
  if (!element.isConnected) return; // Unmounted meanwhile.
  if (document.hidden || element.checkVisibility?.({ visibilityProperty: true, opacityProperty: true }) === false) {
    timers.set(element, setTimeout(impress, 1000, element));
  } else if (!impressed.has(key)) {
    impressed.add(key);
    observer?.unobserve(element);
    // One beacon for the cards that count within a fifth of a second (a page of shelves seen at once),
    // not one per card: a shopper's event requests stay far below the API's per-shopper limit.
    if (counted.push({ ...event, type: "impression" }) < 2) setTimeout(() => send(counted.splice(0)), 200);
  }
}

/**
 * Starts a one-second timer when the card becomes at least half visible and stops it when it drops below.
 * Without IntersectionObserver (very old browsers) the shelf still works; it just reports no impressions.
 */
export function observeImpression(element: Element, event: ShelfEvent): void {
  try {
    observer ??= new IntersectionObserver(
      (entries) => {
        for (const { target, intersectionRatio } of entries) {
          clearTimeout(timers.get(target));
          // An entry can arrive after its card was unmounted: a timer would keep the card alive.
          if (intersectionRatio >= 0.5 && target.isConnected) timers.set(target, setTimeout(impress, 1000, target));
        }
      },
      { threshold: 0.5 },
    );
    eventFor.set(element, event);
    observer.observe(element);
  } catch {}
}

/** An unmounted card: no timer, no observation left to keep it alive. */
export function forgetImpression(element: Element): void {
  clearTimeout(timers.get(element));
  observer?.unobserve(element);
}
