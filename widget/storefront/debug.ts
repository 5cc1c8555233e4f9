// data-debug on the widget's script: explains on the console why a shelf shows the popular picks (or
// nothing). Built as its own module, /widget/v1-debug.js, and imported only by pages that ask for it,
// so it costs the other pages nothing. Never prints the shopper token: it prints only the response's
// status, the API's messages and what its answer says, or the error's name and message, never a URL
// (it reads the request's only to tell whether a token went with it).

const prefix = "Patron widget:";
/** What was printed already: one explanation per cause and page, not one per shelf or request. */
const printed = new Set<string>();

function say(line: string): void {
  if (printed.has(line)) return;
  printed.add(line);
  console.info(line);
}

/**
 * What v1.js reports (api.ts, Report): each answer of the API (a copy), or the error a request or a
 * mount point met. Explains why the shelf is not the shopper's own: a refusal, a token the API took
 * but whose account it does not know, a degraded answer, no answer, or a mount point that cannot hold
 * a shelf. A personal shelf, or any answer to a request without a token, says nothing.
 */
export async function explain(problem: Response | Error, timeoutMs: number, api: string): Promise<void> {
  let fallback = "showing the popular shelf if there is one (cached or fetched without the token), else nothing.";
  if (problem instanceof Response) {
    const body = await problem.json().catch(() => null);
    if (problem.ok) {
      const shelf = body?.data;
      if (!new URL(problem.url, location.href).searchParams.has("token") || !shelf || shelf.customerKnown) return;
      say(
        shelf.degraded
          ? `${prefix} the API could not read its database just now (a degraded answer): showing the last popular shelf it kept, else nothing, until it can.`
          : `${prefix} the API took the shopper token but knows no customer with its account (the token's sub): showing the popular shelf. The sub must be the account id the shop's orders send as identifiers.account; a shopper with no order sent yet is not known.`,
      );
      return;
    }
    const message: string = body?.error?.message ?? problem.statusText;
    // Which setting the API refused and why, e.g. `placement: …` for a data-placement it does not take.
    const issues: { path?: unknown[]; message?: string }[] = Array.isArray(body?.error?.issues)
      ? body.error.issues
      : [];
    const details = issues.map((issue) => ` ${issue.path?.join(".") || "request"}: ${issue.message}.`).join("");
    // A 400 on the token (over the API's length limit) is the token's; v1.js asks again without it. On the
    // shelf's own settings it does not: they would be refused again.
    const onToken = issues.some((issue) => issue.path?.[0] === "token");
    if (problem.status === 400 && !onToken)
      fallback =
        "showing the popular shelf if one is cached, else nothing (these settings are refused with or without a token).";
    const why =
      problem.status === 401 || onToken
        ? "the API refused the shopper token" // Its message says why: expired, not yet valid, signed otherwise…
        : problem.status === 429
          ? "the API is rate-limiting this shopper"
          : problem.status === 400
            ? "the API refused the shelf's settings (check the mount point's data- attributes)"
            : `the API answered ${problem.status}`;
    say(`${prefix} ${why}: "${message}"${details}; ${fallback}`);
  } else if (problem.name === "NotSupportedError") {
    // attachShadow refused the mount point: v1.js collapsed it.
    say(
      `${prefix} a mount point (data-patron) cannot hold a shelf: "${problem.message}". Put data-patron on an element of its own, such as a <div>, <section>, <aside> or <span> (not a <li>, <ul> or <a>); this one is hidden.`,
    );
  } else if (problem.name === "StylesheetError") {
    // v1.js hid the shelf: unstyled, it would spill out of its space.
    say(
      `${prefix} the shelf's stylesheet ${problem.message} did not load, so the shelf is hidden: allow the API's origin in the page's Content-Security-Policy style-src, and check the file is served there.`,
    );
  } else if (problem.name === "AbortError") {
    say(
      `${prefix} the API did not answer within data-timeout (${timeoutMs} ms, the whole budget); showing the popular shelf if one is cached, else nothing.`,
    );
  } else {
    // An opaque (no-cors) request needs no CORS permission: if it gets through, the API is up and it
    // was this page's origin that the browser was not allowed to read answers for. Past the HTTP cache,
    // which holds v1.css for a day (the page's own link loaded it): a cached copy is no sign of life.
    const reachable = await fetch(`${api}/widget/v1.css`, { mode: "no-cors", cache: "no-store" }).then(
      () => true,
      () => false,
    );
    // Reachable, the likely cause is the origin; a proxy or an extension blocking the one request looks the same.
    const why = reachable
      ? `the browser could not read the API's answer, though the API is reachable: most likely this page's origin (${location.origin}) is not in the API's ALLOWED_ORIGINS, else something on the way (a proxy, an extension) blocked the request`
      : `the API at ${api} is unreachable`;
    // No answer came, so v1.js does not ask again without the token: it would fail the same way.
    say(`${prefix} ${why}; showing the popular shelf if one is cached, else nothing.`);
  }
}
