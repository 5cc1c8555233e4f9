// Impressions and clicks, sent to POST /v1/events with navigator.sendBeacon: a text/plain "simple"
// request (no CORS preflight) that the browser delivers even while the page unloads after a click.
import type { EventInput, EventType } from "../../worker/events/events.schemas.ts";

/** One card's beacon: the POST /v1/events fields the shelf sends (impressions and clicks only). */
export type ShelfEvent = Required<Pick<EventInput, "recommendationId" | "productId">> &
  Pick<EventInput, "arm" | "categoryId" | "placement" | "position"> & {
    type?: Extract<EventType, "impression" | "click">;
  };

let endpoint: string;
/** Undefined for an anonymous visitor: JSON leaves the field out. */
let shopperToken: string | undefined;
const impressed = new Set<string>();
const eventFor = new WeakMap<Element, ShelfEvent>();
const timers = new WeakMap<Element, ReturnType<typeof setTimeout>>();
let observer: IntersectionObserver | undefined;
/** Impressions counted and not sent yet: the cards that count within a fifth of a second go in one beacon. */
const counted: ShelfEvent[] = [];

export function configureEvents(api: string, token: string): void {
  // Impressions counted for the last shopper go now, with their token: under the next one's, the API
  // would not count them (the shelf was not theirs).
  if ((token || undefined) !== shopperToken) send();
  endpoint = `${api}/v1/events`;
  shopperToken = token || undefined;
}

/**
 * Sends the waiting events, emptying the list: at most 100 a beacon (the API's limit per request), more
 * in the next.
 * sendBeacon throws only for an endpoint it can never reach (not http or https): then nothing is sent, ever.
 */
function send(): void {
  try {
    // A string body goes out as text/plain;charset=UTF-8: no preflight, and it survives navigation.
    while (counted.length)
      navigator.sendBeacon(endpoint, JSON.stringify({ events: counted.splice(0, 100), token: shopperToken }));
  } catch {}
}

/**
 * A click: the primary button, Enter on the focused card (the browser fires click), the middle button,
 * or the card's "Add to cart" button. Sent at once, with the impressions still waiting to go: the page
 * may be leaving.
 */
export const trackClick = (event: ShelfEvent) => {
  counted.push({ ...event, type: "click" });
  send();
};

/**
 * Counts the card once it has been at least half visible for a whole second while the page, the shelf
 * and its ancestors are visible. `visibility: hidden` or `opacity: 0` keeps a box on screen for the
 * IntersectionObserver, so checkVisibility() (where the browser has it) decides when the timer fires;
 * a hidden page or shelf is asked again a second later.
 */
function impress(element: Element): void {
  const event = eventFor.get(element) as ShelfEvent;
  // A recommendation id starts with a nonce of fixed length, so no id is the start of another: the two
  // side by side name one card of one answer.
  const key = event.recommendationId + event.productId;
  if (!element.isConnected) return; // Unmounted meanwhile.
  if (document.hidden || element.checkVisibility?.({ visibilityProperty: true, opacityProperty: true }) === false) {
    timers.set(element, setTimeout(impress, 1000, element));
  } else if (!impressed.has(key)) {
    impressed.add(key);
    observer?.unobserve(element);
    // One beacon for the cards that count within a fifth of a second (the shelves that came into view
    // together, laid out over a few frames), not one per card: a shopper's event requests stay far below
    // the API's per-shopper limit. A click sends what is waiting at once (trackClick).
    if (counted.push({ ...event, type: "impression" }) < 2) setTimeout(send, 200);
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
