// Impressions and clicks, sent to POST /v1/events with navigator.sendBeacon: a text/plain "simple"
// request (no CORS preflight) that the browser delivers even while the page unloads after a click.
import type { EventInput, EventType } from "../../worker/events/events.schemas.ts";

/** One card's beacon: the POST /v1/events fields the shelf sends (impressions and clicks only). */
export type ShelfEvent = Required<Pick<EventInput, "recommendationId" | "productId">> &
  Pick<EventInput, "arm" | "categoryId"> & { type?: Extract<EventType, "impression" | "click"> };

let endpoint = "";
let shopperToken = "";
const impressed = new Set<string>();
const eventFor = new WeakMap<Element, ShelfEvent>();

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

export const trackClick = (event: ShelfEvent) => send([{ ...event, type: "click" }]);

// One observer for every card; each callback's newly half-visible cards go out as one beacon. (Every
// browser that parses this ES2022 bundle has IntersectionObserver.)
const observer = new IntersectionObserver(
  (entries) => {
    const fresh: ShelfEvent[] = [];
    for (const entry of entries) {
      const event = eventFor.get(entry.target);
      const key = `${event?.recommendationId}|${event?.productId}`;
      if (!event || entry.intersectionRatio < 0.5 || impressed.has(key)) continue;
      impressed.add(key);
      observer.unobserve(entry.target);
      fresh.push({ ...event, type: "impression" });
    }
    if (fresh.length) send(fresh);
  },
  { threshold: 0.5 },
);

/** Counts the card once it is at least half visible, once per recommendation and product. */
export function observeImpression(element: Element, event: ShelfEvent): void {
  eventFor.set(element, event);
  observer.observe(element);
}
