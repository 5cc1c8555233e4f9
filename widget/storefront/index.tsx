/** @jsxRuntime classic */
/** @jsx h */
// The storefront widget's entry: reads its settings from its own <script> tag, mounts a shelf in an
// open shadow root on every [data-patron] element (styled by /widget/v1-shelf.css, linked inside it),
// and loads one answer per distinct page context
// (placement, product, exclude), all within one time budget. Every entry point is wrapped: whatever
// happens, the host page never sees an exception from here. docs/embedding.md documents every
// attribute, command and hook:
//
//   <link rel="stylesheet" href="https://<worker>/widget/v1.css">  (reserves each mount point's space)
//   <script async src="https://<worker>/widget/v1.js" data-token="<signed shopper token>"></script>
//   <div data-patron="picked-for-you" data-limit="8" data-title="Picked for you"></div>
//
// Shelves on one page never repeat a product: every context's request over-fetches (the sum of the
// page's data-limit values, at most 48) and each shelf, in the order it was mounted (page order), takes
// its first items that no shelf before it shows. The requests run in parallel, so one budget covers them.
// biome-ignore lint/correctness/noUnusedImports: `h` is the classic JSX factory named at the top of the file.
import { h, render } from "preact";
import { contextQuery, loadShelf, type Report, refreshPopular } from "./api.ts";
import { forgetImpression } from "./events.ts";
import { type FormatPrice, priceFormatter } from "./format.ts";
import { ShelfView } from "./shelf.tsx";
import type { CartButton, Item, LoadPart, Shelf } from "./types.ts";

interface Mount {
  host: HTMLElement;
  root: HTMLElement;
  /** The headings: data-title over a known shopper's picks, data-title-anonymous over the popular shelf. */
  title: string;
  anonymous: string;
  limit: number;
  /** The heading's level, data-heading-level: h2 unless the page's outline needs another. */
  level: number;
  format: FormatPrice;
  placement?: string;
  /** The mount point's attributes as they were when it mounted: the context its answer is asked with. */
  context: Record<string, unknown>;
  /** The answer (undefined while loading, null when there is none) and this shelf's share of it. */
  shelf?: Shelf | null;
  items?: Item[];
}

type Hook = (detail: unknown) => unknown;
type Patron = ((command: string, ...args: unknown[]) => unknown) & { q?: unknown[][]; loaded?: boolean };
declare global {
  interface Window {
    patron?: Patron;
  }
}

/**
 * A whole number from 1 to `most`; anything else (0, -2, 2.5, "abc") is clamped or means `fallback`:
 * data-limit (1 to 24, else 8) and data-heading-level (1 to 6, else 2).
 */
// Math.round reads a string as Number() does: "2.5" is 3, " 4 " 4, "abc" NaN.
const clamp = (value: unknown, most: number, fallback: number) =>
  Math.min(Math.max(Math.round(value as number) || fallback, 1), most);
const clampLimit = (limit: unknown) => clamp(limit, 24, 8);
const ignore = () => {};

function start(): void {
  if (window.patron?.loaded) return; // The script tag was included twice.
  const script = document.currentScript as HTMLScriptElement | null;
  const data = script?.dataset ?? {};
  // data-api pasted with the routes' /v1 at its end (https://x.example/v1, with or without a slash): the
  // widget adds /v1/... itself, so a trailing /v1 would make every request /v1/v1/... and hide every shelf.
  const api = (data.api || new URL(script?.src || location.href).origin).replace(/(\/v1)?\/*$/i, "");
  // data-timeout: a number of milliseconds above 0, at most a minute; anything else ("-1", "abc") is 1500.
  const timeout = Math.min(+(data.timeout as string) > 0 ? +(data.timeout as string) : 1500, 6e4);
  /** The shadow roots this script attached: a remount reuses them, never one the page made. */
  const ours = new WeakSet<ShadowRoot>();
  /** The mount points this script hid for want of items, across remounts: only these it shows again. */
  const collapsed = new WeakSet<HTMLElement>();
  /** The mount points that cannot hold a shadow root, hidden once: a remount passes them by. */
  const refused = new WeakSet<HTMLElement>();
  // A template's line break or spaces around the token are no part of it: the API would refuse the token.
  let token = data.token?.trim() ?? "";
  let mounts: Mount[] = [];
  /** One answer per page context, kept for remounts; `asked` is the limit it was requested with. */
  let answers: Record<string, { asked: number; shelf: Promise<Shelf | null> }> = {};
  let generation = 0;
  const hooks: Record<string, Hook[]> = {};

  /**
   * A file the worker serves beside this script: the shelf's stylesheet and the optional parts, from
   * data-api's /widget/ when the page names the API (a copy of v1.js served elsewhere has none beside it).
   */
  const near = (file: string) => new URL(file, (!data.api && script?.src) || `${api}/widget/`).href;
  // The optional parts, ES modules next to this script, each imported the first time the page uses it:
  // v1-debug.js (data-debug) and v1-cart.js (an addToCart hook).
  const parts: Record<string, Promise<unknown>> = {};
  const load: LoadPart = (name) => {
    parts[name] ??= import(near(`v1-${name}.js`));
    return parts[name] as Promise<never>;
  };
  /** Set once v1-cart.js has arrived for an addToCart hook. */
  let cart: CartButton | undefined;

  // data-debug: why the popular shelf shows, explained on the console by v1-debug.js. It never sees the
  // token: the API's refusal messages and the error names do not contain it.
  const report: Report | undefined =
    data.debug != null
      ? (problem) => {
          load<typeof import("./debug.ts")>("debug").then((debug) => debug.explain(problem, timeout, api), ignore);
        }
      : undefined;

  /** Calls the page's hooks; their errors (thrown or rejected) never reach the page from here. */
  function emit(name: string, detail?: unknown): void {
    for (const hook of hooks[name] ?? []) {
      try {
        (hook(detail) as Promise<unknown>)?.catch?.(ignore);
      } catch {}
    }
  }

  /** Stops the impression timers of a shelf's cards before they are replaced or unmounted. */
  const forgetCards = (mount: Mount) => {
    for (const card of mount.root.querySelectorAll("li")) forgetImpression(card);
  };

  const paint = (mount: Mount) => {
    try {
      const { shelf, items, host } = mount;
      forgetCards(mount);
      // Nothing to show: collapse (the hidden attribute also drops v1.css's reservation). A shelf that gets
      // items again (a new token, a remount) shows again; a mount point the page itself hid stays hidden.
      if (items?.length === 0 && !host.hidden) {
        host.hidden = true;
        collapsed.add(host);
      }
      if (items?.length && collapsed.delete(host)) host.hidden = false;
      // Until the answer says whether the API knows a token's shopper, the skeleton's heading is drawn
      // but not shown: it would flip from data-title to data-title-anonymous for an unknown account.
      render(
        items?.length === 0 ? null : (
          <ShelfView
            {...mount}
            title={(shelf ? shelf.customerKnown : token) ? mount.title : mount.anonymous}
            unsure={!items && !!token}
            emit={emit}
            cart={hooks.addToCart?.length ? cart : undefined}
            cartLabel={data.cartLabel}
          />
        ),
        mount.root,
      );
    } catch {}
  };

  /** The answer for a page context, fetched again when the shelves now mounted need more than it asked. */
  const answerFor = ({ context }: Mount, need: number) => {
    // Mounts with the same context share an answer.
    const query = contextQuery(context);
    const known = answers[query];
    if (known && known.asked >= need) return known.shelf;
    const shelf = loadShelf(api, token, context, need, timeout, report);
    answers[query] = { asked: need, shelf };
    return shelf;
  };

  /**
   * The last fill's share-out (or, after setToken, a plain value: nothing of the last shopper's to wait
   * for): each waits for the one before, so shelves take their items in mount order.
   */
  let sharing: unknown;

  /** Loads the answers `fresh` mounts need, then gives each its share in mount order and paints it. */
  const fill = (fresh: Mount[]) => {
    const run = generation;
    const need = Math.min(
      mounts.reduce((sum, mount) => sum + mount.limit, 0),
      48,
    );
    // Asked at once, shared out in turn: a later mount's answer can arrive before an earlier one's.
    sharing = Promise.all([sharing, Promise.all(fresh.map((mount) => answerFor(mount, need)))])
      .then(([, shelves]) => {
        if (run !== generation) return; // A newer token arrived meanwhile.
        const shown = new Set(mounts.flatMap((mount) => mount.items ?? []).map((item) => item.id));
        fresh.forEach((mount, index) => {
          if (!mounts.includes(mount)) return; // Unmounted meanwhile.
          mount.shelf = shelves[index];
          const items = (mount.shelf?.items ?? []).filter((item) => !shown.has(item.id)).slice(0, mount.limit);
          mount.items = items;
          for (const item of items) shown.add(item.id);
          paint(mount);
          emit(items.length ? "render" : "empty", { element: mount.host, placement: mount.placement, items });
        });
        // The shelves are up: if any answer came, the popular shelf can be cached for the next visit.
        if (shelves.some(Boolean)) refreshPopular(api, timeout);
      })
      .catch(ignore);
  };

  const mountAll = () => {
    // Shelves whose mount point left the page without patron("unmount") go now, and those whose page
    // context (data-placement, data-product, data-exclude) changed since they mounted (a view that kept
    // the element for another product) mount again.
    drop((mount) => !mount.host.isConnected || contextQuery(mount.host.dataset) !== contextQuery(mount.context));
    const fresh: Mount[] = [];
    for (const host of document.querySelectorAll<HTMLElement>("[data-patron]")) {
      if (mounts.some((mount) => mount.host === host)) continue; // Mounted already.
      try {
        // A remount after patron("unmount") finds the shadow root it left (has(null) is false: none yet).
        const left = host.shadowRoot as ShadowRoot;
        const shadow = ours.has(left) ? left : host.attachShadow({ mode: "open" });
        ours.add(shadow);
        // The shelf's stylesheet, a file from the worker's origin: allowed by a strict style-src that
        // allows the worker, with no 'unsafe-inline'. Linked before the answer is requested (fill, below),
        // so both load in parallel; the browser fetches it once for every shelf. Until it has loaded the
        // shelf stays hidden inside the space v1.css reserved: nothing unstyled shows, nothing moves.
        const link = shadow.appendChild(document.createElement("link"));
        link.rel = "stylesheet";
        link.href = near("v1-shelf.css");
        const root = shadow.appendChild(document.createElement("div"));
        root.hidden = true;
        link.onload = () => (root.hidden = false);
        const { title, titleAnonymous, limit, currency, headingLevel } = host.dataset;
        // As the request has it (contextQuery): the events and hooks carry no placement the API would refuse.
        const placement = host.dataset.placement?.trim() || undefined;
        const mount: Mount = {
          host,
          root,
          // An absent, empty or blank attribute means the default: no heading is empty, so the region always has a name.
          title: title?.trim() || "Picked for you",
          anonymous: titleAnonymous?.trim() || "Popular right now",
          limit: clampLimit(limit),
          level: clamp(headingLevel, 6, 2),
          format: priceFormatter((currency || data.currency || "USD").trim()),
          placement,
          context: { ...host.dataset },
        };
        // Unstyled, the shelf would spill out of its space: it collapses like a shelf with nothing to show.
        link.onerror = () => {
          host.hidden = true;
          collapsed.add(host); // A remount shows it again.
          drop((other) => other === mount);
          // Once for a shelf already said to be empty (its answer came first), as for any other.
          if (mount.items?.length !== 0) emit("empty", { element: host, placement, items: [] });
          report?.({ name: "StylesheetError", message: link.href } as Error);
        };
        mounts.push(mount);
        fresh.push(mount);
        paint(mount);
      } catch (error) {
        // attachShadow refuses some elements (a <li>, a <ul>): the mount point collapses, once, and data-debug
        // says why. One with a shadow root of the page's own (a custom element) is the page's: left as it is.
        if (!host.shadowRoot && !refused.has(host)) {
          refused.add(host);
          host.hidden = true;
          emit("empty", { element: host, placement: host.dataset.placement, items: [] });
          report?.(error as Error);
        }
      }
    }
    if (fresh.length) fill(fresh);
  };

  /** Takes down the shelves `picks` chooses: no node, observer or timer of theirs is left. */
  function drop(picks: (mount: Mount) => boolean): void {
    const leaving = mounts.filter(picks);
    for (const mount of leaving) {
      forgetCards(mount);
      render(null, mount.root);
      // The shadow root is the widget's own: its stylesheet link goes too.
      (mount.root.parentNode as ShadowRoot).replaceChildren();
    }
    mounts = mounts.filter((mount) => !leaving.includes(mount));
  }

  const queued = window.patron?.q ?? [];
  const patron: Patron = (command, value, hook) => {
    try {
      if (command === "mount") mountAll();
      // The shelves on the element or inside it.
      if (command === "unmount") drop((mount) => value instanceof Node && value.contains(mount.host));
      if (command === "on" && typeof hook === "function") {
        hooks[value as string] = [...(hooks[value as string] ?? []), hook as Hook];
        // The buttons arrive with their module: the shelves already shown get them then.
        if (value === "addToCart") {
          load<typeof import("./cart.ts")>("cart").then((module) => {
            cart = module.cartButton;
            for (const mount of mounts) paint(mount);
          }, ignore);
        }
      }
      if (command === "off") hooks[value as string] = (hooks[value as string] ?? []).filter((fn) => fn !== hook);
      if (command === "setToken") {
        token = String(value ?? "").trim();
        generation++;
        answers = sharing = {};
        // The last shopper's picks go at once (a shared device, a sign-out): the skeleton until the answer.
        for (const mount of mounts) {
          mount.items = mount.shelf = undefined;
          paint(mount);
        }
        fill(mounts);
      }
      if (command === "fetch") {
        // Headless: the same token and time budget; resolves to the answer's JSON or null, never rejects.
        const options = (value ?? {}) as Record<string, unknown>;
        return loadShelf(api, token, options, clampLimit(options.limit), timeout, report);
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
