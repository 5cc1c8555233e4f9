/** @jsxRuntime classic */
/** @jsx h */
// The storefront widget's entry: reads its settings from its own <script> tag, mounts a shelf in an
// open shadow root on every [data-patron] element, and loads one shared answer for all of them.
// Every entry point is wrapped: whatever happens, the host page never sees an exception from here.
//
//   <link rel="stylesheet" href="https://<worker>/widget/v1.css">  (reserves each mount point's space)
//   <script async src="https://<worker>/widget/v1.js" data-token="<signed shopper token>"></script>
//   <div data-patron="picked-for-you" data-limit="8" data-title="Picked for you"></div>
//
// Script attributes: data-token, data-api (API origin; default the script's own), data-timeout (the
// whole time budget in ms for the shopper's picks and any popular fallback; default 1500), data-currency
// (default USD; a mount point may override it). Mount point attributes: data-limit (1-24, default 8),
// data-title, data-title-anonymous (default "Popular right now"), data-currency. Commands, queued by the stub before the script loads or called directly after:
// patron("setToken", token) (re-renders every shelf for the new shopper) and patron("mount") for
// mount points added after the page loaded.
// biome-ignore lint/correctness/noUnusedImports: `h` is the classic JSX factory named at the top of the file.
import { h, render } from "preact";
import { loadShelf } from "./api.ts";
import { configureEvents } from "./events.ts";
import { type FormatPrice, priceFormatter } from "./format.ts";
import { ShelfView } from "./shelf.tsx";
import css from "./styles.css";
import type { Shelf } from "./types.ts";

interface Mount {
  host: HTMLElement;
  root: HTMLElement;
  title: string;
  anonymous: string;
  limit: number;
  format: FormatPrice;
}

type Patron = ((command: string, ...args: unknown[]) => void) & { q?: unknown[][]; loaded?: boolean };
declare global {
  interface Window {
    patron?: Patron;
  }
}

function start(): void {
  if (window.patron?.loaded) return; // The script tag was included twice.
  const script = document.currentScript as HTMLScriptElement | null;
  const data = script?.dataset ?? {};
  const api = (data.api || new URL(script?.src || location.href).origin).replace(/\/+$/, "");
  const timeout = Number(data.timeout) || 1500;
  let sheet: CSSStyleSheet | undefined;
  let token = data.token ?? "";
  const mounts: Mount[] = [];
  /** undefined: not loaded yet; null: nothing to show. */
  let shelf: Shelf | null | undefined;
  let generation = 0;

  const paint = (mount: Mount) => {
    try {
      // Not even popular items: collapse once (the hidden attribute also drops v1.css's reservation).
      // Never un-hides: a mount point the page itself hid stays hidden.
      if (shelf === null) mount.host.hidden = true;
      const known = shelf ? shelf.customerKnown : token; // The skeleton guesses from the token.
      render(
        shelf === null ? null : <ShelfView {...mount} title={known ? mount.title : mount.anonymous} shelf={shelf} />,
        mount.root,
      );
    } catch {}
  };

  const load = async () => {
    const run = ++generation;
    configureEvents(api, token);
    const result = await loadShelf(api, token, Math.max(...mounts.map((mount) => mount.limit)), timeout);
    if (run !== generation) return; // A newer token arrived meanwhile.
    shelf = result;
    for (const mount of mounts) paint(mount);
  };

  const mountAll = () => {
    for (const host of document.querySelectorAll<HTMLElement>("[data-patron]")) {
      if (host.shadowRoot) continue; // Mounted already.
      try {
        const shadow = host.attachShadow({ mode: "open" });
        // A constructed stylesheet: allowed by a strict style-src that has no 'unsafe-inline'.
        sheet ??= new CSSStyleSheet();
        sheet.replaceSync(css);
        shadow.adoptedStyleSheets = [sheet];
        const root = shadow.appendChild(document.createElement("div"));
        const { title = "", titleAnonymous = "Popular right now", limit, currency } = host.dataset;
        const mount: Mount = {
          host,
          root,
          title,
          anonymous: titleAnonymous,
          // A whole number from 1 to 24; anything else (0, -2, 2.5, "abc") is clamped or means the default 8.
          limit: Math.min(Math.max(Math.round(Number(limit)) || 8, 1), 24),
          format: priceFormatter(currency || data.currency || "USD"),
        };
        mounts.push(mount);
        paint(mount);
      } catch {} // attachShadow refuses some elements.
    }
    if (!generation && mounts.length) load().catch(() => {});
  };

  const queued = window.patron?.q ?? [];
  const patron: Patron = (command, value) => {
    try {
      if (command === "mount") mountAll();
      if (command === "setToken") {
        token = String(value ?? "");
        if (generation) load().catch(() => {});
      }
    } catch {}
  };
  patron.loaded = true;
  window.patron = patron;
  for (const args of queued) patron(...(args as [string, unknown]));

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
}

try {
  start();
} catch {}
